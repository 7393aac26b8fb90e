package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/testenv"
	"github.com/aerodb/aerofn/internal/webhook"
)

// postWebhook sends a delivery to url's /webhooks/v1/{name}.
func postWebhook(t *testing.T, client *http.Client, url, name string, h map[string]string, body []byte) testenv.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/webhooks/v1/"+name, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return testenv.Response{Status: resp.StatusCode, Header: resp.Header, Body: buf.Bytes()}
}

func githubSignature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func setSecret(t *testing.T, e *testenv.Env, name, value string) {
	t.Helper()
	if r := e.JSONRequest("POST", "/admin/v1/secrets", e.ServiceKey, map[string]string{name: value}); r.Status != 200 {
		t.Fatalf("set secret: %d %s", r.Status, r.Body)
	}
}

// waitClaimed polls until a delivery of the function is being attempted.
func waitClaimed(t *testing.T, e *testenv.Env, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := e.Admin.QueryRow(context.Background(), `SELECT count(*) FROM aerofn.webhook_deliveries d JOIN aerofn.functions f ON f.id = d.function_id WHERE f.name = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no delivery of %s was claimed", name)
}

// A captured GitHub-signed delivery replayed with another X-GitHub-Delivery,
// or with none, does not run again: what is deduplicated is what the
// signature covers, not an unsigned header the replayer chooses.
func TestWebhookReplayWithNewDeliveryIDIsDuplicate(t *testing.T) {
	e := testenv.Start(t)
	const secret = "gh_secret_0123456789"
	setSecret(t, e, "GH_SECRET", secret)
	e.MustDeploy("gh", compile(t, watEcho), map[string]any{"triggers": []map[string]any{{"type": "webhook", "secret": "GH_SECRET"}}})
	body := []byte(`{"action":"opened","number":7}`)
	sig := githubSignature(secret, body)
	if r := postWebhook(t, e.HTTP, e.URL, "gh", map[string]string{"X-Hub-Signature-256": sig, "X-GitHub-Delivery": "gh-1"}, body); r.Status != 200 || r.JSON(t)["delivery_id"] != "gh-1" {
		t.Fatalf("first delivery: %d %s", r.Status, r.Body)
	}
	for _, h := range []map[string]string{
		{"X-Hub-Signature-256": sig, "X-GitHub-Delivery": "gh-1"},
		{"X-Hub-Signature-256": sig, "X-GitHub-Delivery": "gh-2"},
		{"X-Hub-Signature-256": sig},
		{"X-Hub-Signature-256": sig, "X-Aerofn-Delivery": "x", "Webhook-Id": "y"},
	} {
		if r := postWebhook(t, e.HTTP, e.URL, "gh", h, body); r.Status != 200 || !strings.Contains(string(r.Body), `"duplicate":true`) {
			t.Errorf("replay with %v ran again: %d %s", h, r.Status, r.Body)
		}
	}
	// Another body is another delivery.
	other := []byte(`{"action":"closed","number":7}`)
	if r := postWebhook(t, e.HTTP, e.URL, "gh", map[string]string{"X-Hub-Signature-256": githubSignature(secret, other)}, other); r.Status != 200 || strings.Contains(string(r.Body), "duplicate") {
		t.Fatalf("another delivery: %d %s", r.Status, r.Body)
	}
	e.Flush()
	recs := e.JSONRequest("GET", "/admin/v1/functions/gh/logs?trigger=webhook", e.ServiceKey, nil)
	if n := strings.Count(string(recs.Body), `"trigger":"webhook"`); n != 2 {
		t.Fatalf("%d runs, want 2: %s", n, recs.Body)
	}
}

// A retry that arrives while the first attempt holds its lease is told to
// come back later (409 with Retry-After), not that it is a duplicate; once
// that attempt has failed, the next retry runs.
func TestWebhookRetryDuringRunningAttempt(t *testing.T) {
	e := testenv.Start(t)
	const secret = "whsec_lease_0123456789"
	setSecret(t, e, "HOOK_SECRET", secret)
	trig := []map[string]any{{"type": "webhook", "secret": "HOOK_SECRET"}}
	e.MustDeploy("slow", compile(t, watLoop), map[string]any{"timeout": 2, "triggers": trig})
	body := []byte(`{"id":"evt_lease"}`)
	h := map[string]string{"X-Aerofn-Signature": webhook.Sign(secret, time.Now(), body), "X-Aerofn-Delivery": "d-lease"}
	first := make(chan testenv.Response, 1)
	go func() { first <- postWebhook(t, e.HTTP, e.URL, "slow", h, body) }()
	waitClaimed(t, e, "slow")
	r := postWebhook(t, e.HTTP, e.URL, "slow", h, body)
	if r.Status != http.StatusConflict || r.Code() != "delivery_in_progress" {
		t.Fatalf("retry during the first attempt: %d %s, want 409 delivery_in_progress", r.Status, r.Body)
	}
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if r := <-first; r.Status != http.StatusGatewayTimeout {
		t.Fatalf("first attempt: %d %s", r.Status, r.Body)
	}
	e.MustDeploy("slow", compile(t, watEcho), map[string]any{"triggers": trig})
	if r := postWebhook(t, e.HTTP, e.URL, "slow", h, body); r.Status != 200 || strings.Contains(string(r.Body), "duplicate") {
		t.Fatalf("retry after the failed attempt: %d %s", r.Status, r.Body)
	}
	if r := postWebhook(t, e.HTTP, e.URL, "slow", h, body); r.Status != 200 || !strings.Contains(string(r.Body), `"duplicate":true`) {
		t.Fatalf("retry after success: %d %s", r.Status, r.Body)
	}
}

// A node killed while it runs a delivery leaves a claim whose lease runs
// out: the sender's retry, on another node, runs instead of being called a
// duplicate (which used to lose the delivery for a week).
func TestWebhookRetryAfterNodeKilledRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two server processes")
	}
	dbURL := dbtest.NewDatabase(t)
	p1 := testenv.StartBinary(t, dbURL, "AEROFN_ROLE_POOL_SIZE=2")
	e := testenv.EnvFor(t, dbURL, p1)
	const secret = "whsec_kill_0123456789"
	setSecret(t, e, "HOOK_SECRET", secret)
	trig := []map[string]any{{"type": "webhook", "secret": "HOOK_SECRET"}}
	e.MustDeploy("victim", compile(t, watLoop), map[string]any{"timeout": 1, "triggers": trig})
	body := []byte(`{"id":"evt_kill"}`)
	h := map[string]string{"X-Aerofn-Signature": webhook.Sign(secret, time.Now(), body), "X-Aerofn-Delivery": "d-kill"}
	go func() {
		req, _ := http.NewRequest("POST", p1.URL+"/webhooks/v1/victim", bytes.NewReader(body))
		for k, v := range h {
			req.Header.Set(k, v)
		}
		if resp, err := e.HTTP.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitClaimed(t, e, "victim")
	p1.Kill()

	p2 := testenv.StartBinary(t, dbURL, "AEROFN_ROLE_POOL_SIZE=2")
	e2 := testenv.EnvFor(t, dbURL, p2)
	e2.MustDeploy("victim", compile(t, watEcho), map[string]any{"timeout": 1, "triggers": trig})
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := postWebhook(t, e2.HTTP, p2.URL, "victim", h, body)
		if r.Status == 200 && !strings.Contains(string(r.Body), "duplicate") {
			break
		}
		if r.Status != http.StatusConflict || r.Header.Get("Retry-After") == "" {
			t.Fatalf("retry after the node died: %d %s, want 409 with Retry-After until the lease ends, then a run", r.Status, r.Body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead node's lease never ended: %d %s", r.Status, r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Webhook calls pass neither credentials nor cookies on to the function.
func TestWebhookDropsCredentials(t *testing.T) {
	e := testenv.Start(t)
	const secret = "whsec_creds_0123456789"
	setSecret(t, e, "HOOK_SECRET", secret)
	e.MustDeploy("hook", compile(t, watEcho), map[string]any{"triggers": []map[string]any{{"type": "webhook", "secret": "HOOK_SECRET"}}})
	body := []byte(`{"id":"evt_creds"}`)
	r := postWebhook(t, e.HTTP, e.URL, "hook", map[string]string{
		"X-Aerofn-Signature": webhook.Sign(secret, time.Now(), body),
		"Authorization":      "Bearer " + e.ServiceKey, "apikey": e.AnonKey, "Cookie": "session=s3cret",
		"Proxy-Authorization": "Basic eDp5", "X-Custom": "kept",
	}, body)
	if r.Status != 200 {
		t.Fatalf("delivery: %d %s", r.Status, r.Body)
	}
	hd := r.JSON(t)["headers"].(map[string]any)
	for _, k := range []string{"authorization", "apikey", "cookie", "proxy-authorization"} {
		if v, ok := hd[k]; ok {
			t.Errorf("%s reached the function: %v", k, v)
		}
	}
	if hd["x-custom"] != "kept" || hd["x-aerofn-signature"] == nil {
		t.Errorf("other headers lost: %v", hd)
	}
}

// A function that answers non-2xx (its own statusCode) has not handled the
// delivery: the sender's retry runs, and only a 2xx makes later copies
// duplicates.
func TestWebhookNon2xxAnswerIsNotDone(t *testing.T) {
	e := testenv.Start(t)
	const secret = "whsec_non2xx_0123456789"
	setSecret(t, e, "HOOK_SECRET", secret)
	trig := []map[string]any{{"type": "webhook", "secret": "HOOK_SECRET"}}
	e.MustDeploy("busy", constModule(t, `{"statusCode":503,"body":"try later"}`, 0), map[string]any{"triggers": trig})
	body := []byte(`{"id":"evt_503"}`)
	h := map[string]string{"X-Aerofn-Signature": webhook.Sign(secret, time.Now(), body)}
	for i := range 2 {
		if r := postWebhook(t, e.HTTP, e.URL, "busy", h, body); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("attempt %d: %d %s, want the function's 503", i, r.Status, r.Body)
		}
	}
	e.MustDeploy("busy", compile(t, watEcho), map[string]any{"triggers": trig})
	if r := postWebhook(t, e.HTTP, e.URL, "busy", h, body); r.Status != 200 || strings.Contains(string(r.Body), "duplicate") {
		t.Fatalf("retry after 503s: %d %s", r.Status, r.Body)
	}
	if r := postWebhook(t, e.HTTP, e.URL, "busy", h, body); r.Status != 200 || !strings.Contains(string(r.Body), `"duplicate":true`) {
		t.Fatalf("copy after the 2xx: %d %s", r.Status, r.Body)
	}
}

package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
	"github.com/aerodb/aerofn/internal/webhook"
)

func TestSignedWebhooks(t *testing.T) {
	e := testenv.Start(t)
	const secret = "whsec_0123456789abcdef"
	if r := e.JSONRequest("POST", "/admin/v1/secrets", e.ServiceKey, map[string]string{"HOOK_SECRET": secret}); r.Status != 200 {
		t.Fatalf("set secret: %d %s", r.Status, r.Body)
	}
	e.MustDeploy("hook", compile(t, watEcho), map[string]any{"triggers": []map[string]any{{"type": "webhook", "secret": "HOOK_SECRET"}}})
	e.MustDeploy("nohook", compile(t, watEcho), nil)
	if r := e.Deploy("bad", compile(t, watEcho), map[string]any{"triggers": []map[string]any{{"type": "webhook"}}}); r.Status != 400 || !strings.Contains(string(r.Body), "triggers[0].secret") {
		t.Fatalf("webhook without secret: %d %s", r.Status, r.Body)
	}

	body := []byte(`{"type":"payment_intent.succeeded","id":"evt_1"}`)
	post := func(name string, h map[string]string, b []byte) testenv.Response {
		return postWebhook(t, e.HTTP, e.URL, name, h, b)
	}

	sig := webhook.Sign(secret, time.Now(), body)
	r := post("hook", map[string]string{"X-Aerofn-Signature": sig, "X-Aerofn-Delivery": "d-1"}, body)
	ev := r.JSON(t)
	if r.Status != 200 || ev["trigger"] != "webhook" || ev["delivery_id"] != "d-1" || ev["body"].(map[string]any)["id"] != "evt_1" || ev["timestamp"] == "" {
		t.Fatalf("signed delivery: %d %s", r.Status, r.Body)
	}
	// The same delivery again is not run twice.
	r = post("hook", map[string]string{"X-Aerofn-Signature": sig, "X-Aerofn-Delivery": "d-1"}, body)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"duplicate":true`) {
		t.Fatalf("duplicate delivery: %d %s", r.Status, r.Body)
	}
	// GitHub's scheme.
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	r = post("hook", map[string]string{"X-Hub-Signature-256": "sha256=" + hex.EncodeToString(m.Sum(nil)), "X-GitHub-Delivery": "gh-1"}, body)
	if r.Status != 200 || r.JSON(t)["delivery_id"] != "gh-1" {
		t.Fatalf("github delivery: %d %s", r.Status, r.Body)
	}
	// Refusals.
	for name, h := range map[string]map[string]string{
		"unsigned":       {},
		"wrong secret":   {"X-Aerofn-Signature": webhook.Sign("another-secret", time.Now(), body)},
		"old timestamp":  {"X-Aerofn-Signature": webhook.Sign(secret, time.Now().Add(-10*time.Minute), body)},
		"malformed":      {"X-Aerofn-Signature": "v1=abc"},
		"tampered body":  {"X-Aerofn-Signature": webhook.Sign(secret, time.Now(), []byte(`{"type":"other"}`))},
		"wrong github":   {"X-Hub-Signature-256": "sha256=00"},
		"jwt is no help": {"Authorization": "Bearer " + e.ServiceKey},
	} {
		if r := post("hook", h, body); r.Status != 401 || r.Code() != "invalid_signature" {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	if r := post("nohook", map[string]string{"X-Aerofn-Signature": webhook.Sign(secret, time.Now(), body)}, body); r.Status != 404 {
		t.Fatalf("function without webhook trigger: %d %s", r.Status, r.Body)
	}
	if r := post("missing", nil, body); r.Status != 404 {
		t.Fatalf("unknown function: %d", r.Status)
	}
	e.Flush()
	recs := e.JSONRequest("GET", "/admin/v1/functions/hook/logs?trigger=webhook", e.ServiceKey, nil)
	if strings.Count(string(recs.Body), `"trigger":"webhook"`) != 2 {
		t.Fatalf("webhook records: %s", recs.Body)
	}
}

// A delivery whose run failed is not remembered: the sender's retry runs.
func TestWebhookRetryAfterFailureRuns(t *testing.T) {
	e := testenv.Start(t)
	const secret = "whsec_retry_0123456789"
	e.JSONRequest("POST", "/admin/v1/secrets", e.ServiceKey, map[string]string{"HOOK_SECRET": secret})
	trig := map[string]any{"triggers": []map[string]any{{"type": "webhook", "secret": "HOOK_SECRET"}}}
	e.MustDeploy("hook", constModule(t, `broken`, 1), trig)
	body := []byte(`{}`)
	send := func() int {
		req, _ := http.NewRequest("POST", e.URL+"/webhooks/v1/hook", bytes.NewReader(body))
		req.Header.Set("X-Aerofn-Signature", webhook.Sign(secret, time.Now(), body))
		req.Header.Set("X-Aerofn-Delivery", "d-retry")
		resp, err := e.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := send(); s != 500 {
		t.Fatalf("failing delivery: %d", s)
	}
	e.MustDeploy("hook", compile(t, watEcho), trig)
	if s := send(); s != 200 {
		t.Fatalf("retry after failure: %d", s)
	}
}

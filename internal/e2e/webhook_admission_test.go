package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/testenv"
	"github.com/aerodb/aerofn/internal/testenv/wat"
	"github.com/aerodb/aerofn/internal/webhook"
)

const webhookTestSecret = "whsec_admission_0123456789"

// deployHook sets the signing secret and deploys name as a webhook function.
func deployHook(t *testing.T, e *testenv.Env, name string, wasm []byte) {
	t.Helper()
	if r := e.JSONRequest("POST", "/admin/v1/secrets", e.ServiceKey, map[string]string{"HOOK_SECRET": webhookTestSecret}); r.Status != 200 {
		t.Fatalf("set secret: %d %s", r.Status, r.Body)
	}
	e.MustDeploy(name, wasm, map[string]any{"triggers": []map[string]any{{"type": "webhook", "secret": "HOOK_SECRET"}}})
}

// postHook sends a signed delivery.
func postHook(t *testing.T, e *testenv.Env, name, delivery, ctype string, body []byte, extra http.Header) testenv.Response {
	t.Helper()
	h := http.Header{"Content-Type": {ctype}, "X-Aerofn-Delivery": {delivery},
		"X-Aerofn-Signature": {webhook.Sign(webhookTestSecret, time.Now(), body)}}
	for k, v := range extra {
		h[k] = v
	}
	return e.Send("POST", "/webhooks/v1/"+name, h, bytes.NewReader(body))
}

// TestWebhookEventEncoding: a webhook's event is encoded as an HTTP call's
// is: '<', '>' and '&' in the body and the headers reach the function as
// they were sent, not HTML-escaped (which also made each six bytes), and
// the 6 MiB limit applies to the event as encoded.
func TestWebhookEventEncoding(t *testing.T) {
	e := testenv.Start(t)
	deployHook(t, e, "hook", compile(t, watEcho))
	e.MustDeploy("echo", compile(t, watEcho), map[string]any{"verify_jwt": false})
	body := []byte(`{"html":"<b>a & b</b>"}`)
	note := http.Header{"X-Note": {"<&>"}}
	r := postHook(t, e, "hook", "enc-1", "application/json", body, note)
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(`"body":{"html":"<b>a & b</b>"}`)) || !bytes.Contains(r.Body, []byte(`"x-note":"<&>"`)) {
		t.Fatalf("webhook event: %d %s", r.Status, r.Body)
	}
	h := e.Send("POST", "/functions/v1/echo", http.Header{"Content-Type": {"application/json"}, "X-Note": {"<&>"}}, bytes.NewReader(body))
	if h.Status != 200 || !bytes.Contains(h.Body, []byte(`"body":{"html":"<b>a & b</b>"}`)) || !bytes.Contains(h.Body, []byte(`"x-note":"<&>"`)) {
		t.Fatalf("http event: %d %s", h.Status, h.Body)
	}
	// A text body keeps its characters too.
	r = postHook(t, e, "hook", "enc-2", "text/plain", []byte("x < y && y > z"), nil)
	if r.Status != 200 || !bytes.Contains(r.Body, []byte(`"body":"x < y && y > z"`)) {
		t.Fatalf("webhook text event: %d %s", r.Status, r.Body)
	}

	deployHook(t, e, "noop", compile(t, wat.Noop))
	// 5 MiB of '<' is a 5 MiB event, not a 30 MiB one.
	if r := postHook(t, e, "noop", "big-1", "application/json", []byte(`"`+strings.Repeat("<", 5<<20)+`"`), nil); r.Status != http.StatusNoContent {
		t.Fatalf("5 MiB of '<': %d %.300s", r.Status, r.Body)
	}
	// 5 MiB of a JSON body's escapes that stay six bytes is within the
	// limit as sent; 6 MiB of headers and body together is not.
	big := append([]byte(`"`), bytes.Repeat([]byte(`\u0001`), (6<<20)/6)...)
	big = append(big, '"')
	if r := postHook(t, e, "noop", "big-2", "application/json", big, nil); r.Status != http.StatusRequestEntityTooLarge || r.Code() != "payload_too_large" {
		t.Fatalf("event over 6 MiB: %d %.300s", r.Status, r.Body)
	}
}

// TestWebhookAdmissionBeforeBody: at its concurrency limit a node answers
// a webhook delivery 429 with Retry-After without reading its body (here
// one that never arrives) and without claiming the delivery, so the
// sender's retry runs once the node has room.
func TestWebhookAdmissionBeforeBody(t *testing.T) {
	e := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.MaxConcurrency = 1 }})
	deployHook(t, e, "hook", compile(t, watEcho))
	sig := newSignalServer(t, true)
	e.MustDeploy("hold", compile(t, watSignalThen(sig.URL+"/held", tailNone)), map[string]any{"verify_jwt": false, "allowed_hosts": []string{"127.0.0.1"}})
	release := sync.OnceFunc(func() { close(sig.Release) })
	defer release()
	held := make(chan testenv.Response, 1)
	go func() { held <- e.Invoke("hold", "", nil) }()
	sig.wait(t, 1, 10*time.Second) // the one slot is taken

	body := []byte(`{"id":"evt_admission"}`)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /webhooks/v1/hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Aerofn-Delivery: adm-1\r\nX-Aerofn-Signature: %s\r\nContent-Length: %d\r\n\r\n%s",
		webhook.Sign(webhookTestSecret, time.Now(), body), 6<<20, body)
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("a delivery refused for concurrency waited for its body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d, want 429 with Retry-After", resp.StatusCode)
	}
	release()
	if r := <-held; r.Status != 200 {
		t.Fatalf("hold: %d %s", r.Status, r.Body)
	}
	// The refused delivery was not claimed: its retry runs.
	r := postHook(t, e, "hook", "adm-1", "application/json", body, nil)
	if r.Status != 200 || bytes.Contains(r.Body, []byte(`"duplicate"`)) || !bytes.Contains(r.Body, []byte(`"evt_admission"`)) {
		t.Fatalf("retry after 429: %d %s", r.Status, r.Body)
	}
}

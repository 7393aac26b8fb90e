package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
)

type emailRequest struct {
	Method, Path, Authorization, ContentType, IdempotencyKey string
	Body                                                     map[string]any
}

// TestUseCaseSendWelcomeEmail is the seed's use case 1 end to end through
// examples/send-welcome-email: an INSERT into users fires the function
// (database trigger), which reads the user with db_query and sends the
// email through an HTTP email API, served here on loopback, with the secret
// API key in its Authorization header and the API's URL as a plain value.
// The key never appears in the invocation's record, its logs or its result.
func TestUseCaseSendWelcomeEmail(t *testing.T) {
	e := testenv.Start(t)
	ctx := context.Background()

	var mu sync.Mutex
	var got []emailRequest
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req := emailRequest{Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization"),
			ContentType: r.Header.Get("Content-Type"), IdempotencyKey: r.Header.Get("Idempotency-Key")}
		_ = json.Unmarshal(b, &req.Body)
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"email_0001"}`))
	}))
	defer api.Close()
	u, _ := url.Parse(api.URL)

	if _, err := e.Admin.Exec(ctx, `CREATE TABLE users (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text NOT NULL, name text);
		GRANT SELECT ON users TO service_role`); err != nil {
		t.Fatal(err)
	}
	const key = "re_live_4f9c2a7d1e8b3c6a5f0d"
	setSecret(t, e, "EMAIL_API_KEY", key)
	if r := e.JSONRequest("POST", "/admin/v1/env", e.ServiceKey, map[string]string{
		"EMAIL_API_URL": api.URL + "/emails", "EMAIL_FROM": "Acme <hello@acme.test>"}); r.Status != http.StatusOK {
		t.Fatalf("set values: %d %s", r.Status, r.Body)
	}
	e.MustDeploy("send-welcome-email", testenv.Example(t, "send-welcome-email"), map[string]any{
		"run_as": "service_role", "env": []string{"EMAIL_API_KEY", "EMAIL_API_URL", "EMAIL_FROM"},
		"allowed_hosts": []string{u.Hostname()},
		"triggers":      []map[string]any{{"type": "database", "table": "public.users", "events": []string{"INSERT"}}},
	})

	var userID string
	if err := e.Admin.QueryRow(ctx, `INSERT INTO users (email, name) VALUES ('ada@example.com', 'Ada') RETURNING id::text`).Scan(&userID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no request reached the email API")
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	req := got[0]
	mu.Unlock()
	if req.Method != "POST" || req.Path != "/emails" || req.Authorization != "Bearer "+key || req.ContentType != "application/json" ||
		!strings.HasPrefix(req.IdempotencyKey, "welcome-") {
		t.Fatalf("email API request: %+v", req)
	}
	if req.Body["from"] != "Acme <hello@acme.test>" || asJSON(req.Body["to"]) != `["ada@example.com"]` || req.Body["subject"] != "Welcome to AeroDB!" ||
		!strings.HasPrefix(req.Body["text"].(string), "Hello Ada,") {
		t.Fatalf("email: %v", req.Body)
	}

	// The call is recorded as a success with its log line; the key is
	// nowhere in what aerofn kept or shows.
	deadline = time.Now().Add(10 * time.Second)
	var logs string
	for {
		e.Flush()
		logs = string(e.JSONRequest("GET", "/admin/v1/functions/send-welcome-email/logs", e.ServiceKey, nil).Body)
		if strings.Contains(logs, `"status":"success"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no successful record: %s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs, "sent welcome email to user "+userID) || !strings.Contains(logs, `"trigger":"database"`) {
		t.Fatalf("logs: %s", logs)
	}
	var leaks int
	if err := e.Admin.QueryRow(ctx, `SELECT count(*) FROM aerofn.invocations WHERE row_to_json(invocations)::text LIKE '%'||$1||'%'`, key).Scan(&leaks); err != nil {
		t.Fatal(err)
	}
	if leaks != 0 || strings.Contains(logs, key) {
		t.Fatalf("the API key is in %d records (or in the logs API)", leaks)
	}
	// The delivery is marked succeeded after the call's record is written
	// (River completes jobs in batches): wait for it.
	for settle := time.Now().Add(10 * time.Second); ; {
		r := e.JSONRequest("GET", "/admin/v1/functions/send-welcome-email/events", e.ServiceKey, nil)
		if strings.Contains(string(r.Body), key) {
			t.Fatalf("the API key is in the events API: %s", r.Body)
		}
		if strings.Contains(string(r.Body), "succeeded") {
			break
		}
		if time.Now().After(settle) {
			t.Fatalf("events: %s", r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("%d emails for one user", len(got))
	}
}

// TestUseCaseCleanupOldData is the seed's Example 3 through
// examples/cleanup-old-data: deployed on a daily schedule and run now
// through the API, it deletes the log entries older than 30 days (then
// older than RETENTION_DAYS) and keeps the rest.
func TestUseCaseCleanupOldData(t *testing.T) {
	e := testenv.Start(t)
	ctx := context.Background()
	if _, err := e.Admin.Exec(ctx, `CREATE TABLE logs (id int PRIMARY KEY, message text, created_at timestamptz NOT NULL);
		INSERT INTO logs VALUES (1, 'old', now() - interval '90 days'), (2, 'old', now() - interval '31 days'),
			(3, 'recent', now() - interval '29 days'), (4, 'recent', now() - interval '10 days'), (5, 'new', now());
		GRANT SELECT, DELETE ON logs TO service_role`); err != nil {
		t.Fatal(err)
	}
	e.MustDeploy("cleanup-old-data", testenv.Example(t, "cleanup-old-data"), map[string]any{
		"env": []string{"RETENTION_DAYS"}, "triggers": []map[string]any{{"type": "schedule", "cron": "0 3 * * *"}}})
	remaining := func() string {
		var ids []int32
		if err := e.Admin.QueryRow(ctx, `SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM logs`).Scan(&ids); err != nil {
			t.Fatal(err)
		}
		return asJSON(ids)
	}
	run := func() map[string]any {
		r := e.JSONRequest("POST", "/admin/v1/functions/cleanup-old-data/run", e.ServiceKey, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("run now: %d %s", r.Status, r.Body)
		}
		return r.JSON(t)
	}
	out := run()
	if out["status"] != "success" || out["role"] != "service_role" || asJSON(out["result"]) != `{"deleted":2,"older_than_days":30}` {
		t.Fatalf("run: %v", out)
	}
	if ids := remaining(); ids != `[3,4,5]` {
		t.Fatalf("rows after the cleanup: %s, want [3,4,5]", ids)
	}
	e.Flush()
	if logs := e.JSONRequest("GET", "/admin/v1/functions/cleanup-old-data/logs", e.ServiceKey, nil); !strings.Contains(string(logs.Body), "Deleted 2 old log entries") ||
		!strings.Contains(string(logs.Body), `"trigger":"schedule"`) {
		t.Fatalf("logs: %s", logs.Body)
	}
	// Run again: nothing more to delete.
	if out := run(); asJSON(out["result"]) != `{"deleted":0,"older_than_days":30}` || remaining() != `[3,4,5]` {
		t.Fatalf("second run: %v, rows %s", out, remaining())
	}
	// A plain value changes the age.
	if r := e.JSONRequest("POST", "/admin/v1/env", e.ServiceKey, map[string]string{"RETENTION_DAYS": "7"}); r.Status != http.StatusOK {
		t.Fatalf("set RETENTION_DAYS: %d %s", r.Status, r.Body)
	}
	if out := run(); asJSON(out["result"]) != `{"deleted":2,"older_than_days":7}` || remaining() != `[5]` {
		t.Fatalf("run with RETENTION_DAYS=7: %v, rows %s", out, remaining())
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
)

// The seed's JavaScript, as the seed writes it (examples/js), deployed with
// the trigger each snippet names, through a real node, Postgres and HTTP.
// The one line that differs from the seed (use case 4's metadata path) is
// in docs/JS.md, "The seed's examples".

func seedJS(t *testing.T, name string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "js", name))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{name: string(b)}
}

// hostRouter is an http_fetch transport that sends each public name to a
// local TLS server (httptest's certificate covers *.example.com), so the
// seed's https://warehouse.example.com/ship is called as written.
func hostRouter(t *testing.T, routes map[string]*httptest.Server) http.RoundTripper {
	t.Helper()
	var first *httptest.Server
	for _, s := range routes {
		first = s
	}
	tr := first.Client().Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		s, ok := routes[host]
		if !ok {
			return nil, &net.DNSError{Err: "no route in the test", Name: host, IsNotFound: true}
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", s.Listener.Addr().String())
	}
	return tr
}

// recorder is a local HTTP API that keeps what it was sent.
type recorder struct {
	mu   sync.Mutex
	reqs []string // "METHOD path header-of-interest body"
}

func (rc *recorder) server(t *testing.T, header, answer string) *httptest.Server {
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, r.Method+" "+r.URL.Path+" "+r.Header.Get(header)+" "+string(b))
		rc.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(s.Close)
	return s
}

func (rc *recorder) all() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.reqs...)
}

func TestSeedJavaScriptExamples(t *testing.T) {
	var warehouse, mail recorder
	wh := warehouse.server(t, "Content-Type", `{}`)
	ml := mail.server(t, "Authorization", `{"id":"4ef9a417-02e9-4d39-ad75-9611e0fcc33c"}`)
	e := testenv.Start(t, testenv.WithJS(t), testenv.Options{FetchTransport: hostRouter(t, map[string]*httptest.Server{
		"warehouse.example.com": wh, "mail.example.com": ml})})
	ctx := context.Background()
	if _, err := e.Admin.Exec(ctx, `
		CREATE TABLE public.users (id bigint PRIMARY KEY, email text NOT NULL);
		CREATE TABLE public.profiles (user_id bigint PRIMARY KEY, display_name text);
		CREATE TABLE public.logs (id serial PRIMARY KEY, created_at timestamptz NOT NULL);
		INSERT INTO public.logs (created_at) VALUES (now() - interval '40 days'), (now() - interval '31 days'), (now());
		CREATE TABLE public.sessions (id serial PRIMARY KEY, expires_at timestamptz NOT NULL);
		INSERT INTO public.sessions (expires_at) VALUES (now() - interval '1 hour'), (now() - interval '1 minute'), (now() + interval '1 hour');
		CREATE TABLE public.products (id int PRIMARY KEY, stock int NOT NULL);
		INSERT INTO public.products VALUES (1, 10);
		CREATE TABLE public.orders (id int PRIMARY KEY, product_id int NOT NULL, quantity int NOT NULL);
		CREATE TABLE public.subscriptions (user_id text PRIMARY KEY, status text NOT NULL);
		INSERT INTO public.subscriptions VALUES ('7f0c8a52-9f8e-4c0b-9d59-3f1f3c1c2a01', 'incomplete'), ('someone-else', 'incomplete');
		GRANT ALL ON ALL TABLES IN SCHEMA public TO service_role;
		GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO service_role`); err != nil {
		t.Fatal(err)
	}
	one := func(sql string) string {
		t.Helper()
		var s string
		if err := e.Admin.QueryRow(ctx, sql).Scan(&s); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return s
	}
	runNow := func(name string) map[string]any {
		t.Helper()
		r := e.JSONRequest("POST", "/admin/v1/functions/"+name+"/run", e.ServiceKey, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("run %s now: %d %s", name, r.Status, r.Body)
		}
		return r.JSON(t)
	}

	t.Run("Example1_HTTP", func(t *testing.T) {
		// Deployed with the seed's curl (a script part where it names a wasm
		// one), invoked with its curl.
		ct, body := testenv.ScriptForm(map[string]string{"name": "hello"}, seedJS(t, "hello.js"))
		if r := e.Do("POST", "/functions/v1/deploy", e.ServiceKey, ct, body); r.Status != http.StatusCreated {
			t.Fatalf("deploy: %d %s", r.Status, r.Body)
		}
		r := e.Invoke("hello", e.AnonKey, map[string]string{"name": "World"})
		if r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"message":"Hello, World!"}` {
			t.Fatalf("invoke: %d %s", r.Status, r.Body)
		}
	})

	t.Run("Example2_DatabaseInsert", func(t *testing.T) {
		e.MustDeployScript("on-user-created", seedJS(t, "on-user-created.js"), map[string]any{"run_as": "service_role",
			"triggers": []map[string]any{{"type": "database", "table": "public.users", "events": []string{"INSERT"}}}})
		if _, err := e.Admin.Exec(ctx, `INSERT INTO public.users VALUES (7, 'ada@example.com')`); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 30*time.Second, func() bool {
			var name string
			return e.Admin.QueryRow(ctx, `SELECT display_name FROM public.profiles WHERE user_id = 7`).Scan(&name) == nil && name == "ada"
		}, "the profile of user 7")
	})

	t.Run("Example3_Schedule", func(t *testing.T) {
		e.MustDeployScript("cleanup-old-data", seedJS(t, "cleanup-old-data.js"), map[string]any{"run_as": "service_role",
			"triggers": []map[string]any{{"type": "schedule", "cron": "0 3 * * *"}}})
		if out := runNow("cleanup-old-data"); out["status"] != "success" {
			t.Fatalf("run: %v", out)
		}
		if n := one(`SELECT count(*)::text FROM public.logs`); n != "1" {
			t.Fatalf("logs left: %s", n)
		}
		if status, _, logs, _ := lastRecord(t, e, "cleanup-old-data"); status != "success" || len(logs) != 1 || logs[0]["message"] != "Deleted 2 old log entries" {
			t.Fatalf("record: %s %v", status, logs)
		}
	})

	t.Run("UseCase1_HTTP_WelcomeEmail", func(t *testing.T) {
		// email.send posts to the email API named by the function's env.
		setSecret(t, e, "EMAIL_API_KEY", "re_test_4f1c9b7e")
		if r := e.JSONRequest("POST", "/admin/v1/env", e.ServiceKey, map[string]string{"EMAIL_API_URL": "https://mail.example.com/emails", "EMAIL_FROM": "AeroDB <hello@example.com>"}); r.Status != http.StatusOK {
			t.Fatalf("env: %d %s", r.Status, r.Body)
		}
		e.MustDeployScript("send-welcome-email", seedJS(t, "send-welcome-email.js"), map[string]any{"run_as": "service_role",
			"env": []string{"EMAIL_API_URL", "EMAIL_API_KEY", "EMAIL_FROM"}, "allowed_hosts": []string{"mail.example.com"}})
		r := e.Invoke("send-welcome-email", e.ServiceKey, map[string]any{"user_id": 7})
		if r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"status":"sent"}` {
			t.Fatalf("invoke: %d %s", r.Status, r.Body)
		}
		got := mail.all()
		want := `POST /emails Bearer re_test_4f1c9b7e {"from":"AeroDB <hello@example.com>","to":["ada@example.com"],"subject":"Welcome to AeroDB!","text":"Welcome to AeroDB!"}`
		if len(got) != 1 || got[0] != want {
			t.Fatalf("email API got %q, want %q", got, want)
		}
	})

	t.Run("UseCase2_DatabaseInsert_Warehouse", func(t *testing.T) {
		e.MustDeployScript("on-order-created", seedJS(t, "on-order-created.js"), map[string]any{"run_as": "service_role",
			"allowed_hosts": []string{"warehouse.example.com"},
			"triggers":      []map[string]any{{"type": "database", "table": "public.orders", "events": []string{"INSERT"}}}})
		if _, err := e.Admin.Exec(ctx, `INSERT INTO public.orders VALUES (1, 1, 3)`); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 30*time.Second, func() bool { return len(warehouse.all()) == 1 }, "the warehouse notice")
		// The order is the new row alone, posted as JSON.
		got := warehouse.all()[0]
		var order map[string]any
		head, js, _ := strings.Cut(got, " {")
		if head != "POST /ship application/json" || json.Unmarshal([]byte("{"+js), &order) != nil ||
			asJSON(order) != `{"id":1,"product_id":1,"quantity":3}` {
			t.Fatalf("warehouse got %q", got)
		}
		if n := one(`SELECT stock::text FROM public.products WHERE id = 1`); n != "7" {
			t.Fatalf("stock %s", n)
		}
	})

	t.Run("UseCase3_Schedule", func(t *testing.T) {
		// The seed's "0 2 * * *" fires daily; "@every 1s" lets the test see
		// the ticker itself run it.
		e.MustDeployScript("cleanup-expired-sessions", seedJS(t, "cleanup-expired-sessions.js"), map[string]any{"run_as": "service_role",
			"triggers": []map[string]any{{"type": "schedule", "cron": "@every 1s"}}})
		waitUntil(t, 30*time.Second, func() bool { return one(`SELECT count(*)::text FROM public.sessions`) == "1" }, "the expired sessions to go")
		e.Flush()
		var trig, msg string
		if err := e.Admin.QueryRow(ctx, `SELECT trigger, logs->0->>'message' FROM aerofn.invocations
			WHERE function_name = 'cleanup-expired-sessions' AND status = 'success' ORDER BY created_at LIMIT 1`).Scan(&trig, &msg); err != nil ||
			trig != "schedule" || msg != "Cleaned up expired sessions" {
			t.Fatalf("record: %q %q %v", trig, msg, err)
		}
	})

	t.Run("UseCase4_StripeWebhook", func(t *testing.T) {
		const secret = "whsec_5f1ad6c4b8e3d2f7a9c0e1b2d3f4a5b6"
		setSecret(t, e, "STRIPE_WEBHOOK_SECRET", secret)
		e.MustDeployScript("stripe-webhook", seedJS(t, "stripe-webhook.js"), map[string]any{"run_as": "service_role",
			"triggers": []map[string]any{{"type": "webhook", "secret": "STRIPE_WEBHOOK_SECRET"}}})
		body := []byte(`{"id": "evt_3PqXkZ2eZvKYlo2C1ABCDEF0", "object": "event", "api_version": "2024-06-20", "created": 1724000000,
  "type": "payment_intent.succeeded", "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
  "data": {"object": {"id": "pi_3PqXkZ2eZvKYlo2C1XYZ", "object": "payment_intent", "amount": 2000, "currency": "usd",
    "status": "succeeded", "metadata": {"user_id": "7f0c8a52-9f8e-4c0b-9d59-3f1f3c1c2a01"}}}}`)
		r := postWebhook(t, e.HTTP, e.URL, "stripe-webhook", map[string]string{"Stripe-Signature": stripeSignature(secret, time.Now(), body)}, body)
		if r.Status >= 300 {
			t.Fatalf("delivery: %d %s", r.Status, r.Body)
		}
		waitUntil(t, 30*time.Second, func() bool {
			return one(`SELECT status FROM public.subscriptions WHERE user_id = '7f0c8a52-9f8e-4c0b-9d59-3f1f3c1c2a01'`) == "active"
		}, "the subscription to be active")
		if s := one(`SELECT status FROM public.subscriptions WHERE user_id = 'someone-else'`); s != "incomplete" {
			t.Fatalf("another subscription is %q", s)
		}
		// Another event type changes nothing; an unsigned one is refused.
		other := []byte(`{"id":"evt_2","object":"event","type":"payment_intent.payment_failed","data":{"object":{"metadata":{"user_id":"someone-else"}}}}`)
		if r := postWebhook(t, e.HTTP, e.URL, "stripe-webhook", map[string]string{"Stripe-Signature": stripeSignature(secret, time.Now(), other)}, other); r.Status >= 300 {
			t.Fatalf("other delivery: %d %s", r.Status, r.Body)
		}
		if r := postWebhook(t, e.HTTP, e.URL, "stripe-webhook", nil, body); r.Status != http.StatusUnauthorized {
			t.Fatalf("unsigned delivery: %d %s", r.Status, r.Body)
		}
		e.Flush()
		waitUntil(t, 30*time.Second, func() bool {
			return one(`SELECT count(*)::text FROM aerofn.invocations WHERE function_name = 'stripe-webhook' AND trigger = 'webhook' AND status = 'success'`) == "2"
		}, "both deliveries to be recorded")
		if s := one(`SELECT status FROM public.subscriptions WHERE user_id = 'someone-else'`); s != "incomplete" {
			t.Fatalf("a failed payment activated a subscription: %q", s)
		}
	})
}

// db.query's result can be read as its first row; its own fields win.
func TestJSQueryResultReadsAsFirstRow(t *testing.T) {
	e := testenv.Start(t, testenv.WithJS(t))
	e.MustDeployScript("q", map[string]string{"q.js": `export async function handler() {
  const one = await db.query("SELECT 'ada@example.com' AS email, 5 AS \"rowCount\"");
  const none = await db.query("SELECT 1 WHERE false");
  return { email: one.email, rowCount: one.rowCount, first: one.rows[0].rowCount, json: JSON.stringify(one),
    noneEmail: none.email === undefined, noneRows: none.rows.length };
}`}, nil)
	r := e.Invoke("q", e.ServiceKey, nil)
	var got map[string]any
	if r.Status != 200 || json.Unmarshal(r.Body, &got) != nil {
		t.Fatalf("invoke: %d %s", r.Status, r.Body)
	}
	if got["email"] != "ada@example.com" || got["rowCount"] != float64(1) || got["first"] != float64(5) ||
		got["json"] != `{"rows":[{"email":"ada@example.com","rowCount":5}],"rowCount":1,"command":"SELECT"}` ||
		got["noneEmail"] != true || got["noneRows"] != float64(0) {
		t.Fatalf("got %s", r.Body)
	}
}

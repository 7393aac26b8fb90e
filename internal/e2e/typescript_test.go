package e2e

import (
	"context"
	"encoding/json"
	"io"
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

// TypeScript and JavaScript functions, through a real node and Postgres:
// the seed's examples (examples/ts), deployed as scripts, bundled by the
// server, run by aerofn's JavaScript runtime inside the wasm sandbox.

func tsExample(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "ts", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// record is the latest invocation record of a function.
func lastRecord(t *testing.T, e *testenv.Env, fn string) (status, errText string, logs []map[string]any, memMB float64) {
	t.Helper()
	e.Flush()
	var raw []byte
	var errp *string
	if err := e.Admin.QueryRow(context.Background(), `SELECT status, error, logs, memory_peak_mb FROM aerofn.invocations
		WHERE function_name = $1 ORDER BY created_at DESC LIMIT 1`, fn).Scan(&status, &errp, &raw, &memMB); err != nil {
		t.Fatalf("record of %s: %v", fn, err)
	}
	if errp != nil {
		errText = *errp
	}
	_ = json.Unmarshal(raw, &logs)
	return
}

func TestTypeScriptHelloExample(t *testing.T) {
	e := testenv.Start(t, testenv.WithJS(t))
	start := time.Now()
	d := e.MustDeployScript("hello", map[string]string{"hello.ts": tsExample(t, "hello.ts")}, nil)
	t.Logf("deploy took %v", time.Since(start))
	if d["version"].(float64) != 1 {
		t.Fatalf("deploy: %v", d)
	}
	r := e.Invoke("hello", e.AnonKey, map[string]string{"name": "World"})
	if r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"message":"Hello, World!"}` {
		t.Fatalf("invoke: %d %s", r.Status, r.Body)
	}
	status, _, _, mem := lastRecord(t, e, "hello")
	if status != "success" || mem <= 0 {
		t.Fatalf("record: %s, %v MiB", status, mem)
	}
	// The deploy compiled the script to bytecode once; calls run it, here
	// and on a node that got it with the version's shared artifact.
	b := testenv.StartOn(t, e.DatabaseURL, testenv.WithJS(t))
	for range 3 {
		for _, n := range []*testenv.Env{e, b} {
			if r := n.Invoke("hello", n.AnonKey, map[string]string{"name": "B"}); r.Status != 200 {
				t.Fatalf("invoke: %d %s", r.Status, r.Body)
			}
		}
	}
	for i, n := range []*testenv.Env{e, b} {
		compiles, sourceRuns := loadMetric(t, n, "aerofn_js_bytecode_compiles_total"), loadMetric(t, n, "aerofn_js_source_runs_total")
		if want := []string{"1", "0"}[i]; compiles != want || sourceRuns != "0" {
			t.Fatalf("node %d: %s compiles to bytecode (want %s), %s calls from the source (want 0)", i, compiles, want, sourceRuns)
		}
	}
	// The version lists the stored script's size: the user's, not the runtime's.
	v := e.Do("GET", "/admin/v1/functions/hello/versions", e.ServiceKey, "", nil)
	var vs []map[string]any
	if err := json.Unmarshal(v.Body, &vs); err != nil || len(vs) != 1 || vs[0]["size"].(float64) > 64<<10 {
		t.Fatalf("versions: %s", v.Body)
	}
}

func TestTypeScriptDatabaseExamples(t *testing.T) {
	e := testenv.Start(t, testenv.WithJS(t))
	ctx := context.Background()
	if _, err := e.Admin.Exec(ctx, `
		CREATE TABLE public.users (id bigint PRIMARY KEY, email text);
		CREATE TABLE public.profiles (user_id bigint PRIMARY KEY, display_name text);
		CREATE TABLE public.logs (id serial PRIMARY KEY, created_at timestamptz NOT NULL);
		INSERT INTO public.logs (created_at) VALUES (now() - interval '40 days'), (now() - interval '31 days'), (now());
		CREATE TABLE public.sessions (id serial PRIMARY KEY, expires_at timestamptz NOT NULL);
		INSERT INTO public.sessions (expires_at) VALUES (now() - interval '1 hour'), (now() + interval '1 hour');
		CREATE TABLE public.products (id int PRIMARY KEY, stock int NOT NULL);
		INSERT INTO public.products VALUES (1, 10);
		CREATE TABLE public.orders (id int PRIMARY KEY, product_id int NOT NULL, quantity int NOT NULL);
		CREATE TABLE public.subscriptions (user_id text PRIMARY KEY, status text NOT NULL);
		INSERT INTO public.subscriptions VALUES ('u1', 'pending');
		GRANT ALL ON ALL TABLES IN SCHEMA public TO service_role`); err != nil {
		t.Fatal(err)
	}
	svc := map[string]any{"run_as": "service_role"}

	// Example 2: onUserCreated on INSERT into users.
	e.MustDeployScript("on-user-created", map[string]string{"on-user-created.ts": tsExample(t, "on-user-created.ts")},
		map[string]any{"run_as": "service_role", "triggers": []map[string]any{{"type": "database", "table": "public.users", "events": []string{"INSERT"}}}})
	if _, err := e.Admin.Exec(ctx, `INSERT INTO public.users VALUES (7, 'ada@example.com')`); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, func() bool {
		var name string
		return e.Admin.QueryRow(ctx, `SELECT display_name FROM public.profiles WHERE user_id = 7`).Scan(&name) == nil && name == "ada"
	}, "the profile of user 7")

	// Example 3 and use case 3: the cleanups, and their log lines.
	e.MustDeployScript("cleanup-old-data", map[string]string{"cleanup-old-data.ts": tsExample(t, "cleanup-old-data.ts")}, svc)
	if r := e.Invoke("cleanup-old-data", e.ServiceKey, nil); r.Status != 204 {
		t.Fatalf("cleanup-old-data: %d %s", r.Status, r.Body)
	}
	if _, _, logs, _ := lastRecord(t, e, "cleanup-old-data"); len(logs) != 1 || logs[0]["message"] != "Deleted 2 old log entries" {
		t.Fatalf("logs %v", logs)
	}
	e.MustDeployScript("cleanup-expired-sessions", map[string]string{"c.ts": tsExample(t, "cleanup-expired-sessions.ts")}, svc)
	if r := e.Invoke("cleanup-expired-sessions", e.ServiceKey, nil); r.Status != 204 {
		t.Fatalf("cleanup-expired-sessions: %d %s", r.Status, r.Body)
	}
	var n int
	if err := e.Admin.QueryRow(ctx, `SELECT count(*) FROM public.sessions`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("sessions left: %d %v", n, err)
	}

	// Use case 2: onOrderCreated updates stock and posts to the warehouse.
	var mu sync.Mutex
	var shipped []string
	wh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		shipped = append(shipped, r.URL.Path+" "+r.Header.Get("Content-Type")+" "+string(b))
		mu.Unlock()
	}))
	defer wh.Close()
	e.MustDeployScript("on-order-created", map[string]string{"o.ts": tsExample(t, "on-order-created.ts")},
		map[string]any{"run_as": "service_role", "env": []string{"WAREHOUSE_URL"}, "allowed_hosts": []string{"127.0.0.1"},
			"triggers": []map[string]any{{"type": "database", "table": "public.orders", "events": []string{"INSERT"}}}})
	if r := e.JSONRequest("POST", "/admin/v1/secrets", e.ServiceKey, map[string]string{"WAREHOUSE_URL": wh.URL}); r.Status >= 300 {
		t.Fatalf("secret: %d %s", r.Status, r.Body)
	}
	if _, err := e.Admin.Exec(ctx, `INSERT INTO public.orders VALUES (1, 1, 3)`); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(shipped) == 1
	}, "the warehouse notice")
	if !strings.HasPrefix(shipped[0], "/ship application/json ") || !strings.Contains(shipped[0], `"quantity":3`) || strings.Contains(shipped[0], `"trigger"`) {
		t.Fatalf("shipped %q", shipped[0])
	}
	if err := e.Admin.QueryRow(ctx, `SELECT stock FROM public.products WHERE id = 1`).Scan(&n); err != nil || n != 7 {
		t.Fatalf("stock %d %v", n, err)
	}

	// Use case 4: the webhook handler, called over HTTP with Stripe's body.
	e.MustDeployScript("stripe", map[string]string{"s.ts": tsExample(t, "stripe-webhook.ts")}, svc)
	if r := e.Invoke("stripe", e.ServiceKey, map[string]any{"type": "payment_intent.succeeded", "metadata": map[string]string{"user_id": "u1"}}); r.Status != 204 {
		t.Fatalf("stripe: %d %s", r.Status, r.Body)
	}
	var st string
	if err := e.Admin.QueryRow(ctx, `SELECT status FROM public.subscriptions WHERE user_id = 'u1'`).Scan(&st); err != nil || st != "active" {
		t.Fatalf("subscription %q %v", st, err)
	}

	// Use case 1: a directory with a local import, db_query and http_fetch.
	var mails []string
	mail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		mails = append(mails, string(b))
		mu.Unlock()
	}))
	defer mail.Close()
	e.MustDeployScript("send-welcome-email", map[string]string{
		"index.ts": tsExample(t, "send-welcome-email/index.ts"), "email.ts": tsExample(t, "send-welcome-email/email.ts"),
	}, map[string]any{"run_as": "service_role", "env": []string{"MAIL_API_URL"}, "allowed_hosts": []string{"127.0.0.1"}})
	if r := e.JSONRequest("POST", "/admin/v1/secrets", e.ServiceKey, map[string]string{"MAIL_API_URL": mail.URL}); r.Status >= 300 {
		t.Fatalf("secret: %d %s", r.Status, r.Body)
	}
	if r := e.Invoke("send-welcome-email", e.ServiceKey, map[string]any{"user_id": 7}); r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"status":"sent"}` {
		t.Fatalf("send-welcome-email: %d %s", r.Status, r.Body)
	}
	if len(mails) != 1 || mails[0] != `{"to":"ada@example.com","subject":"Welcome to AeroDB!"}` {
		t.Fatalf("mails %q", mails)
	}
}

func waitUntil(t *testing.T, d time.Duration, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A hostile or broken script meets the same limits and errors as a module.
func TestTypeScriptLimitsAndErrors(t *testing.T) {
	e := testenv.Start(t, testenv.WithJS(t))

	// Bad scripts are refused at deploy with the file and line, and store nothing.
	r := e.DeployScript("broken", map[string]string{"fn.ts": "export function handler() {\n  return {;\n}\n"}, nil)
	if r.Status != 400 || !strings.Contains(string(r.Body), `"invalid_script"`) || !strings.Contains(string(r.Body), "fn.ts:2:") {
		t.Fatalf("syntax error: %d %s", r.Status, r.Body)
	}
	r = e.DeployScript("broken", map[string]string{"fn.ts": "import x from 'left-pad';\nexport default x;\n"}, nil)
	if r.Status != 400 || !strings.Contains(string(r.Body), "only relative imports") {
		t.Fatalf("package import: %d %s", r.Status, r.Body)
	}
	if g := e.Do("GET", "/admin/v1/functions/broken", e.ServiceKey, "", nil); g.Status != 404 {
		t.Fatalf("a refused deploy stored a function: %d %s", g.Status, g.Body)
	}
	big := "export const s = \"" + strings.Repeat("x", 11<<20) + "\";\nexport function handler() { return s.length; }\n"
	if r := e.DeployScript("big", map[string]string{"fn.js": big}, nil); r.Status != 413 {
		t.Fatalf("oversized script: %d %s", r.Status, r.Body)
	}

	// A thrown error names the user's file and line (the bundle's source map).
	e.MustDeployScript("thrower", map[string]string{"index.ts": "import { fail } from './lib';\nexport async function handler() {\n  return fail();\n}\n",
		"lib.ts": "// a helper\nexport function fail(): never {\n  throw new Error(\"boom\");\n}\n"}, nil)
	if r := e.Invoke("thrower", e.AnonKey, nil); r.Status != 500 {
		t.Fatalf("thrower: %d %s", r.Status, r.Body)
	}
	if status, errText, _, _ := lastRecord(t, e, "thrower"); status != "error" || !strings.Contains(errText, "Error: boom") || !strings.Contains(errText, "lib.ts:3") {
		t.Fatalf("thrower record: %s %q", status, errText)
	}

	// Memory: a script that grows without bound ends memory_exceeded (507).
	e.MustDeployScript("hog", map[string]string{"fn.js": "export function handler() { const a = []; for (;;) a.push(new Array(100000).fill(1)); }\n"},
		map[string]any{"max_memory": 32 << 20})
	if r := e.Invoke("hog", e.AnonKey, nil); r.Status != 507 {
		t.Fatalf("hog: %d %s", r.Status, r.Body)
	}

	// Time: a loop that never ends is stopped at the function's timeout (504).
	e.MustDeployScript("spin", map[string]string{"fn.js": "export function handler() { for (;;) {} }\n"}, map[string]any{"timeout": 1})
	start := time.Now()
	if r := e.Invoke("spin", e.AnonKey, nil); r.Status != 504 {
		t.Fatalf("spin: %d %s", r.Status, r.Body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("spin stopped after %v", d)
	}
}

// Package e2e drives real aerofn nodes over real HTTP against a real
// PostgreSQL: deploy, invoke, records, rollback, delete, every 4xx, and
// hostile modules.
package e2e

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
	"github.com/aerodb/aerofn/internal/testenv/wat"
)

func constModule(t *testing.T, json string, ret int) []byte {
	return compile(t, wat.Const(json, ret))
}

func TestDeployInvokeRecordRollbackDelete(t *testing.T) {
	e := testenv.Start(t)
	hello := testenv.Example(t, "hello")

	d := e.MustDeploy("hello", hello, nil)
	if d["version"].(float64) != 1 || d["name"] != "hello" || len(d["wasm_hash"].(string)) != 64 || d["id"] == "" || d["created_at"] == "" {
		t.Fatalf("deploy response: %v", d)
	}
	r := e.Invoke("hello", e.AnonKey, map[string]string{"name": "World"})
	if r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"message":"Hello, World!"}` {
		t.Fatalf("invoke: %d %s", r.Status, r.Body)
	}
	// Same behaviour on /invoke/.
	r = e.JSONRequest("POST", "/functions/v1/invoke/hello", e.AnonKey, map[string]string{"name": "Ada"})
	if r.Status != 200 || !strings.Contains(string(r.Body), "Hello, Ada!") {
		t.Fatalf("invoke via /invoke/: %d %s", r.Status, r.Body)
	}

	// A second deploy is version 2 and current.
	v2 := constModule(t, `{"message":"v2"}`, 0)
	d2 := e.MustDeploy("hello", v2, nil)
	if d2["version"].(float64) != 2 {
		t.Fatalf("second deploy: %v", d2)
	}
	if r := e.Invoke("hello", e.AnonKey, nil); !strings.Contains(string(r.Body), "v2") {
		t.Fatalf("v2 not current: %s", r.Body)
	}
	vs := e.JSONRequest("GET", "/admin/v1/functions/hello/versions", e.ServiceKey, nil)
	if vs.Status != 200 || strings.Count(string(vs.Body), `"version"`) != 2 {
		t.Fatalf("versions: %d %s", vs.Status, vs.Body)
	}

	// Roll back by version, then forward again by hash.
	rb := e.JSONRequest("POST", "/admin/v1/functions/hello/rollback", e.ServiceKey, map[string]int{"version": 1})
	if rb.Status != 200 || rb.JSON(t)["version"].(float64) != 1 {
		t.Fatalf("rollback: %d %s", rb.Status, rb.Body)
	}
	if r := e.Invoke("hello", e.AnonKey, map[string]string{"name": "World"}); !strings.Contains(string(r.Body), "Hello, World!") {
		t.Fatalf("after rollback: %s", r.Body)
	}
	rb = e.JSONRequest("POST", "/admin/v1/functions/hello/rollback", e.ServiceKey, map[string]string{"wasm_hash": d2["wasm_hash"].(string)})
	if rb.Status != 200 || rb.JSON(t)["version"].(float64) != 2 {
		t.Fatalf("rollback by hash: %d %s", rb.Status, rb.Body)
	}
	if rb := e.JSONRequest("POST", "/admin/v1/functions/hello/rollback", e.ServiceKey, map[string]int{"version": 9}); rb.Status != 404 {
		t.Fatalf("rollback to missing version: %d %s", rb.Status, rb.Body)
	}

	// Records: every call so far, with the principal it ran as.
	e.Flush()
	logs := e.JSONRequest("GET", "/admin/v1/functions/hello/logs", e.ServiceKey, nil)
	if logs.Status != 200 || strings.Count(string(logs.Body), `"trigger":"http"`) != 4 || !strings.Contains(string(logs.Body), `"role":"anon"`) {
		t.Fatalf("logs: %d %s", logs.Status, logs.Body)
	}
	st := e.JSONRequest("GET", "/admin/v1/functions/hello/stats", e.ServiceKey, nil).JSON(t)
	if st["count"].(float64) != 4 || st["success_rate"].(float64) != 1 {
		t.Fatalf("stats: %v", st)
	}

	// Disable: 404 on invoke, still listed; enable again.
	p := e.JSONRequest("PATCH", "/admin/v1/functions/hello", e.ServiceKey, map[string]any{"enabled": false, "description": "off"})
	if p.Status != 200 || p.JSON(t)["enabled"] != false {
		t.Fatalf("patch: %d %s", p.Status, p.Body)
	}
	if r := e.Invoke("hello", e.AnonKey, nil); r.Status != 404 || r.Code() != "not_found" {
		t.Fatalf("disabled invoke: %d %s", r.Status, r.Body)
	}
	e.JSONRequest("PATCH", "/admin/v1/functions/hello", e.ServiceKey, map[string]any{"enabled": true})
	if r := e.Invoke("hello", e.AnonKey, nil); r.Status != 200 {
		t.Fatalf("re-enabled invoke: %d %s", r.Status, r.Body)
	}
	list := e.JSONRequest("GET", "/functions/v1", e.ServiceKey, nil)
	if list.Status != 200 || !strings.Contains(string(list.Body), `"name":"hello"`) {
		t.Fatalf("list: %d %s", list.Status, list.Body)
	}

	// Delete: gone for invoke and inspect; records stay.
	if r := e.JSONRequest("DELETE", "/admin/v1/functions/hello", e.ServiceKey, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := e.Invoke("hello", e.AnonKey, nil); r.Status != 404 {
		t.Fatalf("deleted invoke: %d", r.Status)
	}
	if r := e.JSONRequest("GET", "/admin/v1/functions/hello", e.ServiceKey, nil); r.Status != 404 {
		t.Fatalf("deleted get: %d", r.Status)
	}
	if r := e.JSONRequest("DELETE", "/admin/v1/functions/hello", e.ServiceKey, nil); r.Status != 404 {
		t.Fatalf("second delete: %d", r.Status)
	}
}

func TestDeployRejectsBadInputAndStoresNothing(t *testing.T) {
	e := testenv.Start(t)
	good := compile(t, watEcho)
	e.MustDeploy("keep", good, nil)

	cases := []struct {
		name   string
		fields map[string]string
		wasm   []byte
		token  string
		status int
		code   string
		msg    string
	}{
		{"bad name", map[string]string{"name": "Bad Name"}, good, e.ServiceKey, 400, "invalid_name", "must match"},
		{"reserved name", map[string]string{"name": "deploy"}, good, e.ServiceKey, 400, "invalid_name", "reserved"},
		{"long name", map[string]string{"name": "a" + strings.Repeat("b", 64)}, good, e.ServiceKey, 400, "invalid_name", ""},
		{"not wasm", map[string]string{"name": "x"}, []byte("hello, I am not wasm"), e.ServiceKey, 400, "invalid_module", ""},
		{"foreign import", map[string]string{"name": "x"}, compile(t, watBadImport), e.ServiceKey, 400, "invalid_module", "env.socket_open"},
		{"no handler", map[string]string{"name": "x"}, compile(t, watNoHandler), e.ServiceKey, 400, "invalid_module", "handler"},
		{"no module", map[string]string{"name": "x"}, nil, e.ServiceKey, 400, "missing_module", ""},
		{"timeout too big", map[string]string{"name": "x", "config": `{"timeout": 301}`}, good, e.ServiceKey, 400, "invalid_config", "timeout"},
		{"timeout too small", map[string]string{"name": "x", "config": `{"timeout": -1}`}, good, e.ServiceKey, 400, "invalid_config", "timeout"},
		{"memory too small", map[string]string{"name": "x", "config": `{"max_memory": 1048576}`}, good, e.ServiceKey, 400, "invalid_config", "max_memory"},
		{"memory too big", map[string]string{"name": "x", "config": `{"max_memory": 1073741824}`}, good, e.ServiceKey, 400, "invalid_config", "max_memory"},
		{"unknown config field", map[string]string{"name": "x", "config": `{"timeuot": 5}`}, good, e.ServiceKey, 400, "invalid_config", "timeuot"},
		{"config not json", map[string]string{"name": "x", "config": `{`}, good, e.ServiceKey, 400, "invalid_config", ""},
		{"unknown trigger", map[string]string{"name": "x", "config": `{"triggers":[{"type":"carrier-pigeon"}]}`}, good, e.ServiceKey, 400, "invalid_config", "carrier-pigeon"},
		{"no token", map[string]string{"name": "x"}, good, "", 401, "missing_token", ""},
		{"bad token", map[string]string{"name": "x"}, good, "not.a.token", 401, "invalid_token", ""},
		{"anon token", map[string]string{"name": "x"}, good, e.AnonKey, 403, "forbidden", ""},
		{"user token", map[string]string{"name": "x"}, good, testenv.UserKey("u1"), 403, "forbidden", ""},
		{"bad name keeps old", map[string]string{"name": "keep", "config": `{"timeout": 0.5}`}, good, e.ServiceKey, 400, "invalid_config", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ct, body := testenv.DeployForm(c.fields, c.wasm)
			r := e.Do("POST", "/functions/v1/deploy", c.token, ct, body)
			if r.Status != c.status || r.Code() != c.code || !strings.Contains(string(r.Body), c.msg) {
				t.Fatalf("got %d %s, want %d %s containing %q", r.Status, r.Body, c.status, c.code, c.msg)
			}
			m := r.JSON(t)
			if m["error"] == "" || m["message"] == "" {
				t.Fatalf("error body lacks fields: %s", r.Body)
			}
		})
	}

	t.Run("module over 10 MiB is 413", func(t *testing.T) {
		big := make([]byte, 10<<20+1)
		ct, body := testenv.DeployForm(map[string]string{"name": "big"}, big)
		r := e.Do("POST", "/functions/v1/deploy", e.ServiceKey, ct, body)
		if r.Status != 413 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("body far over the limit is 413", func(t *testing.T) {
		big := make([]byte, 40<<20)
		ct, body := testenv.DeployForm(map[string]string{"name": "big"}, big)
		r := e.Do("POST", "/functions/v1/deploy", e.ServiceKey, ct, body)
		if r.Status != 413 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})

	// Nothing of the rejected deploys was stored; the good one is intact.
	var fns, versions, modules int
	ctx := context.Background()
	_ = e.Admin.QueryRow(ctx, "SELECT count(*) FROM aerofn.functions").Scan(&fns)
	_ = e.Admin.QueryRow(ctx, "SELECT count(*) FROM aerofn.versions").Scan(&versions)
	_ = e.Admin.QueryRow(ctx, "SELECT count(*) FROM aerofn.modules").Scan(&modules)
	if fns != 1 || versions != 1 || modules != 1 {
		t.Fatalf("rejected deploys left rows: functions=%d versions=%d modules=%d", fns, versions, modules)
	}
	if r := e.Invoke("keep", e.AnonKey, map[string]int{"a": 1}); r.Status != 200 {
		t.Fatalf("good function broken: %d %s", r.Status, r.Body)
	}
}

func TestInvokeAuthAndResponses(t *testing.T) {
	e := testenv.Start(t)
	echo := compile(t, watEcho)
	e.MustDeploy("echo", echo, nil)
	e.MustDeploy("open", echo, map[string]any{"verify_jwt": false})
	e.MustDeploy("postonly", echo, map[string]any{"methods": []string{"POST"}})
	e.MustDeploy("resp", constModule(t, `{"statusCode":201,"headers":{"x-made-by":"fn"},"body":"created"}`, 0), nil)
	e.MustDeploy("fail", constModule(t, `custom failure`, 1), nil)

	// Missing token: 401 unless verify_jwt is false; a bad token is always 401.
	if r := e.Invoke("echo", "", nil); r.Status != 401 || r.Code() != "missing_token" {
		t.Fatalf("no token: %d %s", r.Status, r.Body)
	}
	if r := e.Invoke("open", "", map[string]int{"x": 1}); r.Status != 200 || !strings.Contains(string(r.Body), `"role":"anon"`) {
		t.Fatalf("open without token: %d %s", r.Status, r.Body)
	}
	expired, _ := signExpired()
	for name, tok := range map[string]string{"garbage": "abc", "wrong secret": wrongSecretToken(), "expired": expired, "alg none": algNoneToken()} {
		for _, fn := range []string{"echo", "open"} {
			if r := e.Invoke(fn, tok, nil); r.Status != 401 || r.Code() != "invalid_token" {
				t.Fatalf("%s token on %s: %d %s", name, fn, r.Status, r.Body)
			}
		}
	}
	// The event: user id, role, headers lower-cased, query, parsed body; no credentials.
	r := e.Do("POST", "/functions/v1/echo?q=1&z=two", testenv.UserKey("user-42"), "application/json", strings.NewReader(`{"a":[1,2]}`))
	ev := r.JSON(t)
	if r.Status != 200 || ev["trigger"] != "http" || ev["user_id"] != "user-42" || ev["role"] != "authenticated" || ev["method"] != "POST" {
		t.Fatalf("event: %d %s", r.Status, r.Body)
	}
	if ev["query"].(map[string]any)["z"] != "two" || ev["headers"].(map[string]any)["content-type"] != "application/json" {
		t.Fatalf("event query/headers: %s", r.Body)
	}
	if _, ok := ev["headers"].(map[string]any)["authorization"]; ok {
		t.Fatalf("authorization header reached the function: %s", r.Body)
	}
	if ev["body"].(map[string]any)["a"] == nil || ev["request_id"] == "" {
		t.Fatalf("event body/request id: %s", r.Body)
	}
	// Text and binary bodies.
	r = e.Do("POST", "/functions/v1/echo", e.AnonKey, "text/plain", strings.NewReader("plain words"))
	if ev := r.JSON(t); ev["body"] != "plain words" {
		t.Fatalf("text body: %s", r.Body)
	}
	r = e.Do("POST", "/functions/v1/echo", e.AnonKey, "application/octet-stream", bytes.NewReader([]byte{0xff, 0x00, 0xfe}))
	if ev := r.JSON(t); ev["body"] != "/wD+" || ev["body_encoding"] != "base64" {
		t.Fatalf("binary body: %s", r.Body)
	}
	// Other methods through /invoke/, with a sub-path; a method the function does not allow is 405.
	r = e.Do("GET", "/functions/v1/invoke/echo/items/7", e.AnonKey, "", nil)
	if ev := r.JSON(t); r.Status != 200 || ev["method"] != "GET" || ev["path"] != "/items/7" {
		t.Fatalf("GET via invoke: %d %s", r.Status, r.Body)
	}
	if r := e.Do("GET", "/functions/v1/invoke/postonly", e.AnonKey, "", nil); r.Status != 405 {
		t.Fatalf("disallowed method: %d %s", r.Status, r.Body)
	}
	// A response description.
	r = e.Invoke("resp", e.AnonKey, nil)
	if r.Status != 201 || string(r.Body) != "created" || r.Header.Get("X-Made-By") != "fn" {
		t.Fatalf("statusCode result: %d %v %s", r.Status, r.Header, r.Body)
	}
	// A function that reports failure: 500 with its message.
	r = e.Invoke("fail", e.AnonKey, nil)
	if r.Status != 500 || r.Code() != "function_error" || !strings.Contains(string(r.Body), "custom failure") {
		t.Fatalf("failing function: %d %s", r.Status, r.Body)
	}
	// Unknown function, huge body.
	if r := e.Invoke("nope", e.AnonKey, nil); r.Status != 404 {
		t.Fatalf("unknown: %d", r.Status)
	}
	big := bytes.Repeat([]byte("a"), 6<<20+1)
	if r := e.Do("POST", "/functions/v1/echo", e.AnonKey, "text/plain", bytes.NewReader(big)); r.Status != 413 || r.Code() != "payload_too_large" {
		t.Fatalf("huge body: %d %s", r.Status, r.Body)
	}
	// Management needs the service role.
	if r := e.JSONRequest("GET", "/functions/v1", e.AnonKey, nil); r.Status != 403 {
		t.Fatalf("list as anon: %d", r.Status)
	}
	if r := e.JSONRequest("GET", "/functions/v1", "", nil); r.Status != 401 {
		t.Fatalf("list without token: %d", r.Status)
	}
	if r := e.JSONRequest("PATCH", "/admin/v1/functions/echo", e.ServiceKey, map[string]any{"config": map[string]any{"timeout": 1000}}); r.Status != 400 {
		t.Fatalf("bad patch: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("PATCH", "/admin/v1/functions/missing", e.ServiceKey, map[string]any{"enabled": false}); r.Status != 404 {
		t.Fatalf("patch missing: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("POST", "/admin/v1/functions/echo/rollback", e.ServiceKey, map[string]any{}); r.Status != 400 {
		t.Fatalf("empty rollback: %d %s", r.Status, r.Body)
	}
}

func TestSecretsReachOnlyWhitelistedFunctionsAndNeverLeak(t *testing.T) {
	e := testenv.Start(t)
	const secret = "sk_live_very_secret_value_123"
	if r := e.JSONRequest("POST", "/admin/v1/secrets", e.ServiceKey, map[string]string{"API_KEY": secret}); r.Status != 200 {
		t.Fatalf("set secret: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("GET", "/admin/v1/secrets", e.ServiceKey, nil); r.Status != 200 || strings.Contains(string(r.Body), secret) || !strings.Contains(string(r.Body), "API_KEY") {
		t.Fatalf("list secrets: %d %s", r.Status, r.Body)
	}
	mod := compile(t, watEnv)
	e.MustDeploy("allowed", mod, map[string]any{"env": []string{"API_KEY"}})
	e.MustDeploy("denied", mod, nil)

	r := e.Invoke("allowed", e.AnonKey, nil)
	if r.Status != 200 || strings.Contains(string(r.Body), secret) || !strings.Contains(string(r.Body), "[REDACTED]") {
		t.Fatalf("whitelisted: %d %s", r.Status, r.Body)
	}
	if r := e.Invoke("denied", e.AnonKey, nil); r.Status != 500 {
		t.Fatalf("not whitelisted: %d %s", r.Status, r.Body)
	}
	e.Flush()
	var leaks int
	_ = e.Admin.QueryRow(context.Background(), `SELECT count(*) FROM aerofn.invocations WHERE logs::text LIKE '%'||$1||'%' OR error LIKE '%'||$1||'%'`, secret).Scan(&leaks)
	if leaks != 0 {
		t.Fatalf("secret value in %d records", leaks)
	}
	var stored int
	_ = e.Admin.QueryRow(context.Background(), `SELECT count(*) FROM aerofn.secrets WHERE position($1::bytea in ciphertext) > 0`, []byte(secret)).Scan(&stored)
	if stored != 0 {
		t.Fatal("secret stored in clear")
	}
	logs := e.JSONRequest("GET", "/admin/v1/functions/allowed/logs", e.ServiceKey, nil)
	if strings.Contains(string(logs.Body), secret) || !strings.Contains(string(logs.Body), "[REDACTED]") {
		t.Fatalf("logs: %s", logs.Body)
	}
	if r := e.JSONRequest("POST", "/admin/v1/secrets", e.ServiceKey, map[string]string{"bad name": "xxxxxxx"}); r.Status != 400 {
		t.Fatalf("bad secret name: %d", r.Status)
	}
	if r := e.JSONRequest("DELETE", "/admin/v1/secrets/API_KEY", e.ServiceKey, nil); r.Status != 204 {
		t.Fatalf("delete secret: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("DELETE", "/admin/v1/secrets/API_KEY", e.ServiceKey, nil); r.Status != 404 {
		t.Fatalf("delete missing secret: %d", r.Status)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := testenv.Start(t)
	if r := e.Do("GET", "/healthz", "", "", nil); r.Status != 200 {
		t.Fatalf("healthz: %d", r.Status)
	}
	e.MustDeploy("echo", compile(t, watEcho), nil)
	e.Invoke("echo", e.AnonKey, nil)
	r := e.Do("GET", "/metrics", "", "", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `aerofn_invocations_total{function="echo",status="success",trigger="http"} 1`) {
		t.Fatalf("metrics: %d %s", r.Status, r.Body)
	}
	for _, series := range []string{"aerofn_db_events_captured 0", "aerofn_db_events_held 0", "aerofn_queue_metrics_up 1", "aerofn_invocation_duration_seconds_bucket",
		`aerofn_db_query_calls_total{path="fast"}`, "aerofn_db_query_fallbacks_total", `aerofn_run_gate_wait_seconds_bucket{le="0"}`,
		"aerofn_run_gate_wait_seconds_count", "go_sched_latencies_seconds_bucket", "go_gc_pauses_seconds_bucket"} {
		if !strings.Contains(string(r.Body), series) {
			t.Errorf("metrics lack %q", series)
		}
	}
	if r := e.Do("GET", "/nothing/here", "", "", nil); r.Status != 404 || r.Code() != "not_found" {
		t.Fatalf("unknown route: %d %s", r.Status, r.Body)
	}
}

var _ = http.StatusOK
var _ = time.Second

// A function cannot set the headers that describe the connection or framing.
func TestFunctionCannotSetHopByHopHeaders(t *testing.T) {
	e := testenv.Start(t)
	e.MustDeploy("smuggler", constModule(t, `{"statusCode":200,"headers":{"Transfer-Encoding":"chunked","Content-Length":"1","Connection":"close","X-Ok":"yes"},"body":"hello"}`, 0), nil)
	r := e.Invoke("smuggler", e.AnonKey, nil)
	if r.Status != 200 || string(r.Body) != "hello" || r.Header.Get("X-Ok") != "yes" || r.Header.Get("Connection") == "close" {
		t.Fatalf("got %d %v %q", r.Status, r.Header, r.Body)
	}
	// The connection is still usable for the next call.
	if r := e.Invoke("smuggler", e.AnonKey, nil); r.Status != 200 || string(r.Body) != "hello" {
		t.Fatalf("second call: %d %q", r.Status, r.Body)
	}
}

// Dead letters show in /metrics, so an operator can alert on them.
func TestDeadLettersInMetrics(t *testing.T) {
	e := testenv.Start(t)
	if _, err := e.Admin.Exec(context.Background(), `CREATE TABLE public.things (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	e.MustDeploy("always-fails", constModule(t, "no", 1), map[string]any{"triggers": []map[string]any{
		{"type": "database", "table": "public.things", "events": []string{"INSERT"}, "max_attempts": 1}}})
	if _, err := e.Admin.Exec(context.Background(), `INSERT INTO public.things VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := e.Do("GET", "/metrics", "", "", nil)
		if strings.Contains(string(r.Body), `aerofn_db_deliveries{state="discarded"} 1`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter in metrics:\n%s", grepLines(string(r.Body), "aerofn_db_"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

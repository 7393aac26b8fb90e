package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/aerodb/aerofn/internal/testenv"
)

// cliEnv runs the command line in this process against a real node.
type cliEnv struct {
	t   *testing.T
	e   *testenv.Env
	env map[string]string
}

func newCLIEnv(t *testing.T, e *testenv.Env) *cliEnv {
	c := &cliEnv{t: t, e: e, env: map[string]string{
		"AEROFN_JWT_SECRET": testenv.JWTSecret,
		"AEROFN_CLI_CONFIG": filepath.Join(t.TempDir(), "none.json"),
	}}
	if e != nil {
		c.env["AEROFN_URL"] = e.URL
	}
	old := getenv
	getenv = func(k string) string { return c.env[k] }
	t.Cleanup(func() { getenv = old })
	return c
}

// run runs aerofn args with stdin and returns stdout, stderr and the exit
// code.
func (c *cliEnv) runIn(stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	var out, errb bytes.Buffer
	code := MainWithInput(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

// ok runs aerofn args and fails the test unless it exits 0.
func (c *cliEnv) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.runIn("", args...)
	if code != 0 {
		c.t.Fatalf("aerofn %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// fails runs aerofn args, wants a non-zero exit and returns stderr.
func (c *cliEnv) fails(args ...string) string {
	c.t.Helper()
	out, errs, code := c.runIn("", args...)
	if code == 0 {
		c.t.Fatalf("aerofn %s: exit 0, want a failure\nstdout: %s", strings.Join(args, " "), out)
	}
	return errs
}

// okJSON runs a command with -o json and decodes its output.
func (c *cliEnv) okJSON(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("aerofn %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// syncWriter is a buffer written by one goroutine and read by another.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func writeWasm(t *testing.T, name string) string {
	p := filepath.Join(t.TempDir(), name+".wasm")
	if err := os.WriteFile(p, testenv.Example(t, name), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every command and subcommand has examples in its --help.
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, sub := range cmd.Commands() {
			if sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			if sub.Runnable() && sub.Example == "" {
				t.Errorf("%s has no examples", sub.CommandPath())
			}
			walk(sub)
		}
	}
	root := newRoot(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	walk(root)
	c := newCLIEnv(t, nil)
	if out := c.ok("invoke", "--help"); !strings.Contains(out, "Examples:") || !strings.Contains(out, "--event") {
		t.Fatalf("invoke --help: %s", out)
	}
}

// The commands of a function's life against a real node, with the JSON
// shapes of --output json.
func TestFunctionCommands(t *testing.T) {
	e := testenv.Start(t)
	c := newCLIEnv(t, e)

	// deploy FILE.wasm: the name comes from the file, the config from
	// --config-file; the answer shows the version, hash and triggers.
	cfg := filepath.Join(t.TempDir(), "echo.json")
	if err := os.WriteFile(cfg, []byte(`{"timeout": 5, "verify_jwt": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	echo := writeWasm(t, "echo")
	var dep struct {
		Name        string                     `json:"name"`
		Version     int                        `json:"version"`
		WasmHash    string                     `json:"wasm_hash"`
		Config      map[string]any             `json:"config"`
		Propagation struct{ Nodes, Ready int } `json:"propagation"`
	}
	c.okJSON(&dep, "deploy", echo, "--config-file", cfg)
	if dep.Name != "echo" || dep.Version != 1 || len(dep.WasmHash) != 64 || dep.Config["timeout"] != 5.0 || dep.Propagation.Nodes != 1 || dep.Propagation.Ready != 1 {
		t.Fatalf("deploy: %+v", dep)
	}
	if out := c.ok("deploy", echo, "-o", "table"); !strings.Contains(out, "deployed echo version 2 (sha256 "+dep.WasmHash) || !strings.Contains(out, "trigger: http") ||
		!strings.Contains(out, "serving on 1 of 1 nodes") {
		t.Fatalf("deploy table: %s", out)
	}

	// ls and inspect.
	var fns []map[string]any
	c.okJSON(&fns, "ls")
	if len(fns) != 1 || fns[0]["name"] != "echo" || fns[0]["version"] != 2.0 {
		t.Fatalf("ls: %v", fns)
	}
	if out := c.ok("ls", "-o", "table"); !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "echo") {
		t.Fatalf("ls table: %s", out)
	}
	var fn map[string]any
	c.okJSON(&fn, "inspect", "echo")
	if fn["name"] != "echo" || fn["wasm_hash"] != dep.WasmHash || fn["enabled"] != true {
		t.Fatalf("inspect: %v", fn)
	}

	// invoke over HTTP: anon by default, method, path, query, headers, body.
	var ev map[string]any
	out := c.ok("invoke", "echo", "-X", "PUT", "--path", "/a/b", "-q", "x=1", "-q", "x=2", "-H", "X-Test: yes", "-d", `{"k":"v"}`)
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("invoke: %v: %s", err, out)
	}
	if ev["trigger"] != "http" || ev["method"] != "PUT" || ev["path"] != "/a/b" || ev["role"] != "anon" || ev["user_id"] != nil {
		t.Fatalf("invoke event: %v", ev)
	}
	if q := ev["query_all"].(map[string]any)["x"]; len(q.([]any)) != 2 || ev["headers"].(map[string]any)["x-test"] != "yes" ||
		ev["body"].(map[string]any)["k"] != "v" {
		t.Fatalf("invoke event: %v", ev)
	}
	out = c.ok("invoke", "echo", "--as", "user:6f1c2a3e-0000-4000-8000-000000000001")
	if !strings.Contains(out, `"role":"authenticated"`) || !strings.Contains(out, `"user_id":"6f1c2a3e-0000-4000-8000-000000000001"`) {
		t.Fatalf("invoke --as user: %s", out)
	}
	if out := c.ok("invoke", "echo", "--as", "service"); !strings.Contains(out, `"role":"service_role"`) {
		t.Fatalf("invoke --as service: %s", out)
	}
	if out := c.ok("invoke", "echo", "-i", "--data", "plain text"); !strings.HasPrefix(out, "HTTP/1.1 200 OK\n") || !strings.Contains(out, `"body":"plain text"`) {
		t.Fatalf("invoke -i: %s", out)
	}
	// logs -f streams a call as it finishes, with its trigger and role.
	var follow syncWriter
	fctx, stop := context.WithCancel(context.Background())
	followed := make(chan int)
	go func() {
		followed <- MainWithInput(fctx, []string{"logs", "echo", "-f", "-o", "json"}, strings.NewReader(""), &follow, &follow)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(follow.String(), `"request_id":"followed-call"`) {
		if time.Now().After(deadline) {
			t.Fatalf("logs -f showed no call: %s", follow.String())
		}
		c.ok("invoke", "echo", "-H", "X-Request-Id: followed-call")
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	if code := <-followed; code != 0 {
		t.Fatalf("logs -f exit %d: %s", code, follow.String())
	}
	// The followed call's line: the records of the calls made just before
	// the stream began may be written after it did, and come first.
	var rec map[string]any
	followOut := follow.String()
	start := strings.LastIndex(followOut[:strings.Index(followOut, `"request_id":"followed-call"`)], "\n") + 1
	line, _, _ := strings.Cut(followOut[start:], "\n")
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["trigger"] != "http" || rec["role"] != "anon" || rec["function"] != "echo" {
		t.Fatalf("logs -f line: %v %s", err, line)
	}

	// A call that finished just before logs -f started is shown too: the
	// follower started in the background of the shell that makes the call
	// next (docs/getting-started.md) may subscribe after it.
	c.ok("invoke", "echo", "-H", "X-Request-Id: before-follow")
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(c.ok("logs", "echo", "-o", "json"), `"before-follow"`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the call before logs -f was never stored")
		}
	}
	var early syncWriter
	ectx, stopEarly := context.WithCancel(context.Background())
	earlyDone := make(chan int)
	go func() {
		earlyDone <- MainWithInput(ectx, []string{"logs", "echo", "-f", "-o", "json"}, strings.NewReader(""), &early, &early)
	}()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(early.String(), `"request_id":"before-follow"`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("logs -f did not show the call that finished just before it started: %s", early.String())
		}
	}
	stopEarly()
	if code := <-earlyDone; code != 0 {
		t.Fatalf("logs -f exit %d: %s", code, early.String())
	}

	// Without the JWT secret or an anon key, --as anon says what to set.
	delete(c.env, "AEROFN_JWT_SECRET")
	c.env["AEROFN_SERVICE_KEY"] = e.ServiceKey
	if msg := c.fails("invoke", "echo"); !strings.Contains(msg, "AEROFN_ANON_KEY") {
		t.Fatalf("invoke without anon key: %s", msg)
	}
	c.env["AEROFN_ANON_KEY"] = e.AnonKey
	c.ok("invoke", "echo")
	if msg := c.fails("invoke", "echo", "--as", "user:u1"); !strings.Contains(msg, "AEROFN_JWT_SECRET") {
		t.Fatalf("invoke --as user without secret: %s", msg)
	}
	c.env["AEROFN_JWT_SECRET"] = testenv.JWTSecret

	// invoke --event: each trigger type, in its trigger's shape, recorded
	// with that trigger.
	for _, tc := range []struct {
		trigger string
		args    []string
		want    map[string]any
	}{
		{"database", []string{"--data", `{"table":"users","new":{"id":7}}`, "--as", "user:u-9"},
			map[string]any{"schema": "public", "table": "users", "operation": "INSERT", "attempt": 1.0, "user_id": "u-9", "role": "authenticated"}},
		{"schedule", nil, map[string]any{"cron": "@every 1m", "role": "service_role"}},
		{"webhook", []string{"-H", "Stripe-Signature: t=1", "--data", `{"body":{"type":"charge.succeeded"}}`}, map[string]any{"role": "anon"}},
	} {
		var res struct {
			InvocationID string         `json:"invocation_id"`
			Trigger      string         `json:"trigger"`
			Status       string         `json:"status"`
			Role         string         `json:"role"`
			Result       map[string]any `json:"result"`
			Logs         []any          `json:"logs"`
		}
		c.okJSON(&res, append([]string{"invoke", "echo", "--event", tc.trigger}, tc.args...)...)
		if res.Trigger != tc.trigger || res.Status != "success" || res.InvocationID == "" || res.Logs == nil || res.Result["trigger"] != tc.trigger {
			t.Fatalf("--event %s: %+v", tc.trigger, res)
		}
		for k, v := range tc.want {
			got := res.Result[k]
			if k == "role" {
				got = res.Role
			}
			if got != v {
				t.Fatalf("--event %s: %s = %v, want %v (%+v)", tc.trigger, k, got, v, res)
			}
		}
		switch tc.trigger {
		case "database":
			if res.Result["new"].(map[string]any)["id"] != 7.0 || res.Result["old"] != nil || res.Result["event_id"] == "" {
				t.Fatalf("database event: %v", res.Result)
			}
		case "schedule":
			if _, err := time.Parse(time.RFC3339, res.Result["scheduled_time"].(string)); err != nil {
				t.Fatalf("schedule event: %v", res.Result)
			}
		case "webhook":
			if res.Result["headers"].(map[string]any)["stripe-signature"] != "t=1" || res.Result["body"].(map[string]any)["type"] != "charge.succeeded" ||
				!strings.HasPrefix(res.Result["delivery_id"].(string), "cli-") {
				t.Fatalf("webhook event: %v", res.Result)
			}
		}
		// Without -o json, the result alone.
		if out := c.ok("invoke", "echo", "--event", tc.trigger); !strings.Contains(out, `"trigger": "`+tc.trigger+`"`) {
			t.Fatalf("--event %s: %s", tc.trigger, out)
		}
	}
	e.Flush()
	var recs []map[string]any
	c.okJSON(&recs, "logs", "echo", "--limit", "100")
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r["trigger"].(string)] = true
	}
	for _, tr := range []string{"http", "database", "schedule", "webhook"} {
		if !seen[tr] {
			t.Fatalf("no %s record in logs: %v", tr, recs)
		}
	}
	if out := c.ok("logs", "echo", "--since", "10m", "-o", "table"); !strings.Contains(out, "webhook") || !strings.Contains(out, "success") {
		t.Fatalf("logs table: %s", out)
	}
	c.okJSON(&recs, "logs", "echo", "--status", "error")
	if len(recs) != 0 {
		t.Fatalf("logs --status error: %v", recs)
	}
	var stats map[string]any
	c.okJSON(&stats, "logs", "echo", "--stats")
	if len(stats) == 0 {
		t.Fatal("logs --stats: empty")
	}

	// config get/set/edit.
	var cfgOut map[string]any
	c.okJSON(&cfgOut, "config", "get", "echo")
	if cfgOut["timeout"] != 5.0 {
		t.Fatalf("config get: %v", cfgOut)
	}
	c.ok("config", "set", "echo", "timeout=20", `env=["GREETING"]`)
	c.okJSON(&cfgOut, "config", "get", "echo")
	if cfgOut["timeout"] != 20.0 || cfgOut["verify_jwt"] != true {
		t.Fatalf("config set kept the rest? %v", cfgOut)
	}
	if out := c.ok("config", "set", "echo", `triggers=[{"type":"schedule","cron":"@every 1h"}]`, "-o", "table"); !strings.Contains(out, "trigger: schedule @every 1h") ||
		!strings.Contains(out, "next run:") {
		t.Fatalf("config set triggers: %s", out)
	}
	c.env["EDITOR"] = `sed -i 's/"timeout": 20/"timeout": 25/'`
	c.ok("config", "edit", "echo")
	var timeout float64
	c.okJSON(&timeout, "config", "get", "echo", "timeout")
	if timeout != 25 {
		t.Fatalf("config edit: timeout %v", timeout)
	}
	if msg := c.fails("config", "set", "echo", "timeout"); !strings.Contains(msg, "FIELD=VALUE") {
		t.Fatalf("config set without =: %s", msg)
	}

	// runs and run.
	var runRes map[string]any
	c.okJSON(&runRes, "run", "echo")
	if runRes["status"] != "success" || runRes["invocation_id"] == "" {
		t.Fatalf("run: %v", runRes)
	}
	var runs struct {
		Schedules []map[string]any `json:"schedules"`
		Runs      []map[string]any `json:"runs"`
	}
	c.okJSON(&runs, "runs", "echo")
	if len(runs.Schedules) != 1 || len(runs.Runs) != 1 || runs.Runs[0]["kind"] != "manual" {
		t.Fatalf("runs: %+v", runs)
	}
	if out := c.ok("runs", "echo", "-o", "table"); !strings.Contains(out, "schedule 0: @every 1h") {
		t.Fatalf("runs table: %s", out)
	}

	// versions and rollback (to the version before the current one).
	var vs []map[string]any
	c.okJSON(&vs, "versions", "echo")
	if len(vs) != 2 {
		t.Fatalf("versions: %v", vs)
	}
	var rb map[string]any
	c.okJSON(&rb, "rollback", "echo")
	if rb["version"] != 1.0 {
		t.Fatalf("rollback: %v", rb)
	}
	if msg := c.fails("rollback", "echo"); !strings.Contains(msg, "no version before") {
		t.Fatalf("rollback past the first: %s", msg)
	}

	// disable and enable.
	c.ok("disable", "echo")
	if _, errs, code := c.runIn("", "invoke", "echo"); code != 2 || !strings.Contains(errs, "HTTP 404") {
		t.Fatalf("invoke disabled: %d %s", code, errs)
	}
	c.ok("enable", "echo")
	c.ok("invoke", "echo")

	// rm asks first.
	if _, errs, code := c.runIn("", "rm", "echo"); code == 0 || !strings.Contains(errs, "--yes") {
		t.Fatalf("rm without an answer: %d %s", code, errs)
	}
	if _, errs, code := c.runIn("n\n", "rm", "echo"); code == 0 || !strings.Contains(errs, "not deleted") {
		t.Fatalf("rm answered no: %d %s", code, errs)
	}
	if out, _, code := c.runIn("y\n", "rm", "echo"); code != 0 || !strings.Contains(out, "deleted echo") {
		t.Fatalf("rm answered yes: %d %s", code, out)
	}
	if msg := c.fails("inspect", "echo"); !strings.Contains(msg, "404") || !strings.Contains(msg, "aerofn ls") {
		t.Fatalf("inspect deleted: %s", msg)
	}
}

// Database events: a dead delivery is listed and replayed from the CLI.
func TestEventsAndReplay(t *testing.T) {
	e := testenv.Start(t)
	c := newCLIEnv(t, e)
	if _, err := e.Admin.Exec(context.Background(), `CREATE TABLE public.things (id int PRIMARY KEY, fail bool)`); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "flaky.json")
	if err := os.WriteFile(cfg, []byte(`{"triggers":[{"type":"database","table":"public.things","events":["INSERT"],"max_attempts":1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("deploy", writeWasm(t, "flaky"), "--config-file", cfg, "-o", "table"); !strings.Contains(out, "trigger: database public.things INSERT") {
		t.Fatalf("deploy: %s", out)
	}
	if _, err := e.Admin.Exec(context.Background(), `INSERT INTO public.things VALUES (1, true)`); err != nil {
		t.Fatal(err)
	}
	var res struct {
		State  string           `json:"state"`
		Events []map[string]any `json:"events"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.okJSON(&res, "events", "flaky", "--state", "dead")
		if len(res.Events) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead delivery: %+v", res)
		}
		time.Sleep(100 * time.Millisecond)
	}
	id := res.Events[0]["id"].(string)
	if res.State != "dead" || res.Events[0]["table"] != "public.things" || res.Events[0]["operation"] != "INSERT" {
		t.Fatalf("events: %+v", res)
	}
	if out := c.ok("events", "flaky", "-o", "table"); !strings.Contains(out, id) || !strings.Contains(out, "dead") {
		t.Fatalf("events table: %s", out)
	}
	var rep map[string]any
	c.okJSON(&rep, "replay", "flaky", id)
	if rep["id"] != id || rep["state"] == "dead" {
		t.Fatalf("replay: %v", rep)
	}
	if msg := c.fails("replay", "flaky", "999999"); !strings.Contains(msg, "404") {
		t.Fatalf("replay unknown: %s", msg)
	}
}

// secrets, env, keys and the profile file.
func TestSecretsKeysAndProfiles(t *testing.T) {
	e := testenv.Start(t)
	c := newCLIEnv(t, e)
	envFile := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(envFile, []byte("# keys\nexport API_KEY=abcd1234\nOTHER=\"quoted value\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("secrets", "set", "--from-env-file", envFile, "THIRD=xyz123"); !strings.Contains(out, "API_KEY, OTHER, THIRD") {
		t.Fatalf("secrets set: %s", out)
	}
	var secrets []map[string]any
	c.okJSON(&secrets, "secrets", "ls")
	if len(secrets) != 3 || secrets[0]["name"] != "API_KEY" || secrets[0]["value"] != nil {
		t.Fatalf("secrets ls: %v", secrets)
	}
	if out := c.ok("secrets", "ls", "-o", "table"); strings.Contains(out, "abcd1234") || !strings.Contains(out, "OTHER") {
		t.Fatalf("secrets ls table: %s", out)
	}
	c.ok("secrets", "rm", "OTHER", "THIRD")
	c.okJSON(&secrets, "secrets", "ls")
	if len(secrets) != 1 {
		t.Fatalf("after rm: %v", secrets)
	}
	if msg := c.fails("secrets", "set", "BAD"); !strings.Contains(msg, "NAME=VALUE") {
		t.Fatalf("secrets set BAD: %s", msg)
	}

	// Plain values: shown, any length, empty allowed.
	if out := c.ok("env", "set", "DEBUG=1", "EMPTY=", "GREETING=Hello there"); !strings.Contains(out, "DEBUG, EMPTY, GREETING") {
		t.Fatalf("env set: %s", out)
	}
	var env struct {
		Env []map[string]any `json:"env"`
	}
	c.okJSON(&env, "env", "ls")
	got := map[string]any{}
	for _, v := range env.Env {
		got[v["name"].(string)] = v["value"]
		if v["updated_at"] == nil {
			t.Fatalf("env ls: %v", env)
		}
	}
	if len(got) != 3 || got["DEBUG"] != "1" || got["EMPTY"] != "" || got["GREETING"] != "Hello there" {
		t.Fatalf("env ls: %v", env)
	}
	if out := c.ok("env", "ls", "-o", "table"); !strings.Contains(out, "Hello there") || !strings.HasPrefix(out, "NAME") {
		t.Fatalf("env ls table: %s", out)
	}
	c.ok("env", "rm", "EMPTY")
	c.okJSON(&env, "env", "ls")
	if len(env.Env) != 2 {
		t.Fatalf("env after rm: %v", env)
	}

	out := c.ok("keys", "--sub", "u-1")
	for _, k := range []string{"AEROFN_ANON_KEY=", "AEROFN_SERVICE_KEY=", "AEROFN_USER_KEY="} {
		if !strings.Contains(out, k) {
			t.Fatalf("keys: %s", out)
		}
	}

	// A profile gives the URL and keys when neither flags nor variables do.
	path := filepath.Join(t.TempDir(), "config.json")
	prof, _ := json.Marshal(map[string]any{"profiles": map[string]any{"staging": map[string]string{
		"url": e.URL, "service_key": e.ServiceKey, "anon_key": e.AnonKey}}})
	if err := os.WriteFile(path, prof, 0o600); err != nil {
		t.Fatal(err)
	}
	c.env = map[string]string{"AEROFN_CLI_CONFIG": path}
	if msg := c.fails("ls"); !strings.Contains(msg, "no service key") {
		t.Fatalf("ls without a profile: %s", msg)
	}
	c.ok("ls", "--profile", "staging")
	c.env["AEROFN_PROFILE"] = "staging"
	c.ok("secrets", "ls")
	if msg := c.fails("ls", "--profile", "nope"); !strings.Contains(msg, `no profile "nope"`) {
		t.Fatalf("unknown profile: %s", msg)
	}
	// A wrong URL says what to do.
	if msg := c.fails("ls", "--url", "http://127.0.0.1:1"); !strings.Contains(msg, "AEROFN_URL") {
		t.Fatalf("unreachable: %s", msg)
	}
}

// new refuses a bad name and an existing directory, and says what to do;
// build outside a project says so.
func TestNewAndBuildErrors(t *testing.T) {
	c := newCLIEnv(t, nil)
	dir := t.TempDir()
	if msg := c.fails("new", "Bad Name", "--dir", filepath.Join(dir, "x")); !strings.Contains(msg, "a-z") {
		t.Fatalf("new with a bad name: %s", msg)
	}
	c.ok("new", "fn", "--dir", filepath.Join(dir, "fn"))
	if msg := c.fails("new", "fn", "--dir", filepath.Join(dir, "fn")); !strings.Contains(msg, "already exists") {
		t.Fatalf("new over a directory: %s", msg)
	}
	for _, f := range []string{"go.mod", "main.go", "main_test.go", "config.json", "README.md", ".gitignore", "aerofn-sdk/go.mod", "aerofn-sdk/handler.go"} {
		if _, err := os.Stat(filepath.Join(dir, "fn", f)); err != nil {
			t.Fatalf("new wrote no %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "fn", "aerofn-sdk", "handler_test.go")); err == nil {
		t.Fatal("the SDK copy has its tests")
	}
	if name, err := projectName(filepath.Join(dir, "fn")); err != nil || name != "fn" {
		t.Fatalf("projectName: %q %v", name, err)
	}
	if msg := c.fails("build", t.TempDir()); !strings.Contains(msg, "aerofn new NAME") {
		t.Fatalf("build outside a project: %s", msg)
	}
}

// The SDK is a module of its own whose graph holds nothing but itself: a
// function's module pulls in no server dependency.
func TestSDKModuleHasNoDependencies(t *testing.T) {
	cmd := exec.Command("go", "list", "-m", "all")
	cmd.Dir = filepath.Join(testenv.RepoRoot(t), "sdk", "go")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOPROXY=off", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "github.com/aerodb/aerofn/sdk/go" {
		t.Fatalf("the SDK's module graph: %s", got)
	}
}

package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/testenv"
)

// TestBinary runs the real aerofn binary: migrate, serve, deploy with the
// CLI, invoke over HTTP, the one-line JSON record on stdout, a graceful
// stop, and a second node on the same database.
func TestBinary(t *testing.T) {
	dbURL := dbtest.NewDatabase(t)
	bin := testenv.Binary(t)
	env := []string{"AEROFN_DATABASE_URL=" + dbURL, "AEROFN_SECRETS_KEY=" + testenv.SecretsKey, "AEROFN_JWT_SECRET=" + testenv.JWTSecret}

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(cmd.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aerofn %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("migrate"); !strings.Contains(out, "applied migrations") {
		t.Fatalf("first migrate: %s", out)
	}
	if out := run("migrate"); !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate: %s", out)
	}

	p := testenv.StartBinary(t, dbURL)
	e := testenv.EnvFor(t, dbURL, p)
	wasmPath := t.TempDir() + "/hello.wasm"
	writeFile(t, wasmPath, testenv.Example(t, "hello"))
	out := run("deploy", "hello", wasmPath, "--url", p.URL)
	if !strings.Contains(out, `"version": 1`) {
		t.Fatalf("deploy: %s", out)
	}
	r := e.Invoke("hello", testenv.UserKey("user-7"), map[string]string{"name": "World"})
	if r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"message":"Hello, World!"}` {
		t.Fatalf("invoke: %d %s", r.Status, r.Body)
	}
	if out := run("invoke", "hello", "--url", p.URL, "-d", `{"name":"CLI"}`); !strings.Contains(out, "Hello, CLI!") {
		t.Fatalf("cli invoke: %s", out)
	}
	// One JSON line per call on stdout, in the seed's shape.
	deadline := time.Now().Add(5 * time.Second)
	var line map[string]any
	for time.Now().Before(deadline) && line == nil {
		for _, l := range p.StdoutLines() {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["user_id"] == "user-7" {
				line = m
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, k := range []string{"function", "trigger", "duration_ms", "memory_peak_mb", "status", "user_id", "timestamp"} {
		if _, ok := line[k]; !ok {
			t.Fatalf("stdout line lacks %q: %v (stdout %v)", k, line, p.StdoutLines())
		}
	}
	if line["function"] != "hello" || line["status"] != "success" || line["trigger"] != "http" {
		t.Fatalf("stdout line: %v", line)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, p.Output())
	}
	// A second node on the same database serves the function too.
	p2 := testenv.StartBinary(t, dbURL)
	e2 := testenv.EnvFor(t, dbURL, p2)
	if r := e2.Invoke("hello", e2.AnonKey, map[string]string{"name": "again"}); r.Status != 200 {
		t.Fatalf("after restart: %d %s", r.Status, r.Body)
	}
	if out := run("rm", "hello", "--yes", "--url", p2.URL); !strings.Contains(out, "deleted") {
		t.Fatalf("rm: %s", out)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := osWriteFile(path, b); err != nil {
		t.Fatal(err)
	}
}

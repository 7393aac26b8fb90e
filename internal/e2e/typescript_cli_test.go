package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/testenv"
)

// The real binary and its CLI: aerofn new --lang ts, aerofn deploy of a
// directory and of a single .ts file, then calls over HTTP.
func TestTypeScriptCLI(t *testing.T) {
	dbURL := dbtest.NewDatabase(t)
	p := testenv.StartBinary(t, dbURL, testenv.JSEnv(t)...)
	e := testenv.EnvFor(t, dbURL, p)
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(testenv.Binary(t), args...)
		cmd.Dir = dir
		cmd.Env = append(cmd.Environ(), "AEROFN_URL="+p.URL, "AEROFN_SERVICE_KEY="+e.ServiceKey, "AEROFN_JWT_SECRET="+testenv.JWTSecret)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aerofn %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("new", "tsfn", "--lang", "ts")
	for _, f := range []string{"index.ts", "aerofn.d.ts", "tsconfig.json", "config.json"} {
		if _, err := os.Stat(filepath.Join(dir, "tsfn", f)); err != nil {
			t.Fatalf("aerofn new --lang ts wrote no %s: %v", f, err)
		}
	}
	run("deploy", "./tsfn", "--url", p.URL)
	if r := e.Invoke("tsfn", e.ServiceKey, nil); r.Status != 200 || !strings.Contains(string(r.Body), "hello from tsfn") {
		t.Fatalf("tsfn: %d %s", r.Status, r.Body)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.ts"), []byte(tsExample(t, "hello.ts")), 0o644); err != nil {
		t.Fatal(err)
	}
	run("deploy", "hello.ts", "--url", p.URL)
	if r := e.Invoke("hello", e.AnonKey, map[string]string{"name": "CLI"}); r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"message":"Hello, CLI!"}` {
		t.Fatalf("hello: %d %s", r.Status, r.Body)
	}
}

package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/testenv"
)

// The JavaScript clients people call functions with, against the real
// binary: tests/js holds node:test files and a package.json pinning
// @supabase/supabase-js, @supabase/functions-js and playwright-core. The
// packages are installed with `npm ci` when node_modules is missing (make
// test and .ci/run do it first); node and, for the browser, Debian's
// chromium must be installed: a missing one fails the test.

func jsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "tests", "js")
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed (Node 20 or later runs tests/js)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@supabase", "supabase-js", "package.json")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in tests/js: %v\n%s", err, out)
		}
	}
	return dir
}

// nodeTest runs one node:test file with env added and fails the test with
// its report when any of its tests fails.
func nodeTest(t *testing.T, dir, file string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", file)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test %s: %v\n%s", file, err, out)
	}
	t.Logf("node --test %s:\n%s", file, out)
}

// jsNode starts the binary with the functions the JS tests call.
func jsNode(t *testing.T, corsOrigins string) (*testenv.Process, *testenv.Env) {
	t.Helper()
	dbURL := dbtest.NewDatabase(t)
	p := testenv.StartBinary(t, dbURL, "AEROFN_CORS_ORIGINS="+corsOrigins)
	e := testenv.EnvFor(t, dbURL, p)
	api := testenv.Example(t, "http-api")
	e.MustDeploy("http-api", api, nil)
	e.MustDeploy("postonly", api, map[string]any{"methods": []string{"POST"}})
	return p, e
}

// TestSupabaseJS: supabase-js and functions-js on Node call functions with
// JSON, text and binary bodies, GET/PUT/DELETE and sub-paths, read a 4xx of
// the function's own and aerofn's relay errors, and cannot reach management
// through functions.invoke (tests/js/supabase.test.mjs). Then the statuses
// the function answered are in its records and stats.
func TestSupabaseJS(t *testing.T) {
	dir := jsDir(t)
	p, e := jsNode(t, "*")
	nodeTest(t, dir, "supabase.test.mjs", "AEROFN_URL="+p.URL, "AEROFN_ANON_KEY="+e.AnonKey, "AEROFN_SERVICE_KEY="+e.ServiceKey)

	// Records are written in the background: wait for the 404 and 204 the
	// function answered, recorded as successful calls.
	deadline := time.Now().Add(30 * time.Second)
	var n404, n204, nNull int
	for time.Now().Before(deadline) {
		err := e.Admin.QueryRow(context.Background(), `SELECT
			count(*) FILTER (WHERE http_status = 404 AND status = 'success'),
			count(*) FILTER (WHERE http_status = 204 AND status = 'success'),
			count(*) FILTER (WHERE http_status IS NULL)
			FROM aerofn.invocations WHERE function_name = 'http-api'`).Scan(&n404, &n204, &nNull)
		if err != nil {
			t.Fatal(err)
		}
		if n404 >= 8 && n204 >= 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n404 < 8 || n204 < 1 || nNull != 0 {
		t.Fatalf("records: %d with 404, %d with 204, %d without a status", n404, n204, nNull)
	}
	st := e.JSONRequest("GET", "/admin/v1/functions/http-api/stats", e.ServiceKey, nil).JSON(t)
	by := st["by_http_status"].(map[string]any)
	if by["4xx"].(float64) < 8 || by["2xx"].(float64) < 1 || st["by_status"].(map[string]any)["success"] != st["count"] {
		t.Fatalf("stats: %v", st)
	}
}

// TestBrowserSupabaseJS: headless Chromium loads a page from another origin
// that calls a JWT-protected function with supabase-js and the anon key:
// from the allowed origin the call (preflight first) succeeds; from another
// it fails in the browser (tests/js/browser.test.mjs).
func TestBrowserSupabaseJS(t *testing.T) {
	dir := jsDir(t)
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("no Chromium at %s (Debian: apt-get install -y chromium; .ci/run installs it)", chromium)
	}
	page := http.NewServeMux()
	page.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, "page", "index.html"))
	})
	page.HandleFunc("GET /supabase.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, "node_modules", "@supabase", "supabase-js", "dist", "umd", "supabase.js"))
	})
	allowed := httptest.NewServer(page)
	defer allowed.Close()
	foreign := httptest.NewServer(page)
	defer foreign.Close()

	p, e := jsNode(t, allowed.URL)
	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") || p.URL == allowed.URL {
		t.Fatalf("the node (%s) must be on another loopback port than the page (%s)", p.URL, allowed.URL)
	}
	nodeTest(t, dir, "browser.test.mjs", "AEROFN_URL="+p.URL, "AEROFN_ANON_KEY="+e.AnonKey,
		"PAGE_ALLOWED="+allowed.URL, "PAGE_FOREIGN="+foreign.URL, "CHROMIUM="+chromium)
}

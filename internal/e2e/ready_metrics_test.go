package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/testenv"
)

// TestReadyz: /readyz answers 200 with each check's result on a serving
// node, and 503 JSON naming the failed check when the schema misses a
// migration; it recovers when the migration is back.
func TestReadyz(t *testing.T) {
	e := testenv.Start(t)
	r := e.Do("GET", "/readyz", "", "", nil)
	if r.Status != http.StatusOK || strings.TrimSpace(string(r.Body)) != `{"status":"ready","checks":{"database":"ok","engine":"ok","migrations":"ok"}}` {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
	ctx := context.Background()
	var version int
	var name string
	if err := e.Admin.QueryRow(ctx, `DELETE FROM aerofn.schema_migrations WHERE version = (SELECT max(version) FROM aerofn.schema_migrations) RETURNING version, name`).Scan(&version, &name); err != nil {
		t.Fatal(err)
	}
	r = e.Do("GET", "/readyz", "", "", nil)
	var body struct {
		Error, Code, Message string
		Failed               []string
		Checks               map[string]string
	}
	if r.Status != http.StatusServiceUnavailable || json.Unmarshal(r.Body, &body) != nil || body.Code != "not_ready" ||
		len(body.Failed) != 1 || body.Failed[0] != "migrations" || !strings.Contains(body.Checks["migrations"], name) ||
		body.Checks["database"] != "ok" || !strings.Contains(body.Error, "migrations") || r.Header.Get("x-relay-error") != "true" {
		t.Fatalf("readyz without migration %s: %d %s", name, r.Status, r.Body)
	}
	if _, err := e.Admin.Exec(ctx, `INSERT INTO aerofn.schema_migrations (version, name) VALUES ($1, $2)`, version, name); err != nil {
		t.Fatal(err)
	}
	if r := e.Do("GET", "/readyz", "", "", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz after restoring: %d %s", r.Status, r.Body)
	}
	if r := e.Do("POST", "/readyz", "", "", nil); r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("POST /readyz: %d", r.Status)
	}
}

// TestPhase12Metrics: the series AeroDB's Phase 12 names are served with
// the right labels and counts, and a deleted function's series go away.
func TestPhase12Metrics(t *testing.T) {
	e := testenv.Start(t)
	e.MustDeploy("ok", compile(t, watEcho), nil)
	e.MustDeploy("fails", constModule(t, `{"error":"no"}`, 1), nil)
	e.MustDeploy("loop", compile(t, watLoop), map[string]any{"timeout": 1})
	e.MustDeploy("grow", compile(t, watGrowOnce), map[string]any{"max_memory": 32 << 20})
	e.Invoke("ok", e.AnonKey, nil)
	e.Invoke("ok", e.AnonKey, nil)
	e.Invoke("fails", e.AnonKey, nil)
	e.Invoke("loop", e.AnonKey, nil)
	e.Invoke("grow", e.AnonKey, nil)

	m := string(e.Do("GET", "/metrics", "", "", nil).Body)
	for _, series := range []string{
		`functions_invocations_total{name="ok",status="success",trigger="http"} 2`,
		`functions_invocations_total{name="fails",status="error",trigger="http"} 1`,
		`functions_invocations_total{name="loop",status="timeout",trigger="http"} 1`,
		`functions_invocations_total{name="grow",status="memory_exceeded",trigger="http"} 1`,
		`functions_duration_seconds_count{name="ok"} 2`,
		`functions_duration_seconds_bucket{name="ok",le="+Inf"} 2`,
		`functions_memory_bytes_count{name="ok"} 2`,
		`functions_timeout_total{name="loop"} 1`,
		`functions_memory_exceeded_total{name="grow"} 1`,
		`functions_errors_total{error_type="error",name="fails"} 1`,
		`functions_errors_total{error_type="timeout",name="loop"} 1`,
		`functions_errors_total{error_type="memory_exceeded",name="grow"} 1`,
	} {
		if !strings.Contains(m, series+"\n") {
			t.Errorf("metrics lack %s", series)
		}
	}
	if strings.Contains(m, `functions_errors_total{error_type="error",name="ok"}`) || strings.Contains(m, `functions_timeout_total{name="ok"}`) {
		t.Errorf("a successful function has error series")
	}

	// Deleting a function drops its series (on every node: through the
	// registry's change notice).
	if r := e.JSONRequest("DELETE", "/admin/v1/functions/fails", e.ServiceKey, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d", r.Status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m = string(e.Do("GET", "/metrics", "", "", nil).Body)
		if !strings.Contains(m, `name="fails"`) && !strings.Contains(m, `function="fails"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("series of a deleted function remain")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(m, `functions_invocations_total{name="ok",status="success",trigger="http"} 2`) {
		t.Fatalf("deleting one function dropped another's series")
	}
}

// TestPprofListen: Go's profiler is served only when AEROFN_PPROF_LISTEN
// names an address, and only there, never on the API's listener.
func TestPprofListen(t *testing.T) {
	off := testenv.Start(t)
	if a := off.Server.PprofAddr(); a != "" {
		t.Fatalf("profiler listening on %s by default", a)
	}
	if r := off.Do("GET", "/debug/pprof/", "", "", nil); r.Status != http.StatusNotFound {
		t.Fatalf("API's /debug/pprof/: %d", r.Status)
	}
	on := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.PprofListen = "127.0.0.1:0" }})
	resp, err := on.HTTP.Get("http://" + on.Server.PprofAddr() + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "heap profile") {
		t.Fatalf("profiler's heap profile: %d %.200s", resp.StatusCode, body)
	}
	if r := on.Do("GET", "/debug/pprof/", "", "", nil); r.Status != http.StatusNotFound {
		t.Fatalf("API's /debug/pprof/ with the profiler on: %d", r.Status)
	}
}

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
)

// A call that is running when its function is disabled or deleted finishes;
// calls after that answer 404. The call holds itself open in an http_fetch
// to the test until the change is made, so no timing is involved.
func TestRunningCallsFinishAfterDisableAndDelete(t *testing.T) {
	e := testenv.Start(t)
	for _, change := range []struct {
		name, method string
		body         any
	}{
		{"disable", "PATCH", map[string]any{"enabled": false}},
		{"delete", "DELETE", nil},
	} {
		t.Run(change.name, func(t *testing.T) {
			sig := newSignalServer(t, true)
			name := "held-" + change.name
			e.MustDeploy(name, compile(t, watSignalThen(sig.URL+"/"+name, tailNone)), map[string]any{"allowed_hosts": []string{"127.0.0.1"}})
			done := make(chan testenv.Response, 1)
			go func() { done <- e.Invoke(name, e.AnonKey, nil) }()
			sig.wait(t, 1, 30*time.Second)
			if r := e.JSONRequest(change.method, "/admin/v1/functions/"+name, e.ServiceKey, change.body); r.Status >= 300 {
				t.Fatalf("%s: %d %s", change.name, r.Status, r.Body)
			}
			if r := e.Invoke(name, e.AnonKey, nil); r.Status != 404 {
				t.Fatalf("call after %s: %d %s", change.name, r.Status, r.Body)
			}
			close(sig.Release)
			r := <-done
			if r.Status != 200 || string(r.Body) != `{"done":true}` {
				t.Fatalf("running call after %s: %d %s", change.name, r.Status, r.Body)
			}
		})
	}
}

// Module bytes are verified against their SHA-256 when loaded: a stored
// module that was tampered with is refused, recorded, and not run.
func TestTamperedModuleIsRefused(t *testing.T) {
	e := testenv.Start(t)
	d := e.MustDeploy("victim", compile(t, watEcho), nil)
	// A fresh node without the compiled artifact (the one the deploy stored
	// was compiled from the genuine bytes) must read the bytes again.
	ctx := context.Background()
	if _, err := e.Admin.Exec(ctx, `DELETE FROM aerofn.artifacts`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Admin.Exec(ctx, `UPDATE aerofn.modules SET bytes = $1 WHERE hash = $2`, compile(t, watUnreachable), d["wasm_hash"]); err != nil {
		t.Fatal(err)
	}
	other := testenv.StartOn(t, e.DatabaseURL)
	// 503 not_ready while the background compile runs, then its failure.
	r := waitFor(t, time.Minute, func() testenv.Response { return other.Invoke("victim", other.AnonKey, nil) })
	if r.Status != 500 || r.Code() != "function_error" {
		t.Fatalf("tampered module: %d %s", r.Status, r.Body)
	}
	other.Flush()
	var msg string
	if err := e.Admin.QueryRow(ctx, `SELECT error FROM aerofn.invocations WHERE function_name = 'victim' ORDER BY created_at DESC LIMIT 1`).Scan(&msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "does not match its hash") {
		t.Fatalf("record error: %q", msg)
	}
}

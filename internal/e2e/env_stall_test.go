package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
)

// TestEnvSecretReadStalled: while the secrets table is locked by another
// session (so the store's reload query cannot finish), every call that reads
// a secret with env() is stopped at its own timeout and recorded as a
// timeout, a call with a longer timeout is not cut at a shorter one's, and
// functions that do not read env() keep being served meanwhile, even with
// more calls stalled in env() than the engine runs at once. Once the lock
// goes, env() reads the secret again.
func TestEnvSecretReadStalled(t *testing.T) {
	e := testenv.Start(t)
	const secret = "sk_test_stalled-read-0123456789"
	if r := e.JSONRequest("POST", "/admin/v1/secrets", e.ServiceKey, map[string]string{"API_KEY": secret}); r.Status != http.StatusOK {
		t.Fatalf("set secret: %d %s", r.Status, r.Body)
	}
	read := compile(t, watEnvValue("API_KEY"))
	e.MustDeploy("read-1s", read, map[string]any{"env": []string{"API_KEY"}, "timeout": 1})
	e.MustDeploy("read-2s", read, map[string]any{"env": []string{"API_KEY"}, "timeout": 2})
	e.MustDeploy("echo", compile(t, watEcho), nil)
	e.WaitOptimized()

	// Setting the secret dropped the store's cache, so the next env() reloads
	// it, and that reload waits for this lock.
	ctx := context.Background()
	tx, err := e.Admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			_ = tx.Rollback(ctx)
		}
	}
	defer release()
	if _, err := tx.Exec(ctx, `LOCK TABLE aerofn.secrets IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}

	// More calls stalled in env() than the engine runs at once (twice the
	// cores), so a call blocked in env() holding its run slot would stall the
	// whole server.
	type result struct {
		fn     string
		status int
		code   string
		took   time.Duration
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []result
	)
	calls := []string{"read-2s"}
	for i := 0; i < 8; i++ {
		calls = append(calls, "read-1s")
	}
	for _, fn := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			r := e.Invoke(fn, e.AnonKey, nil)
			mu.Lock()
			results = append(results, result{fn, r.Status, r.Code(), time.Since(start)})
			mu.Unlock()
		}()
	}
	// Other functions are served while those wait: once a read is blocked on
	// the lock.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := e.Admin.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'aerofn.secrets'::regclass`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no secrets read waited on the lock")
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	for i := 0; i < 5; i++ {
		start := time.Now()
		r := e.Invoke("echo", e.AnonKey, map[string]int{"i": i})
		if took := time.Since(start); r.Status != http.StatusOK || took > time.Second {
			t.Errorf("echo during the stalled reads: %d %s after %s", r.Status, r.Body, took)
			break
		}
	}

	// Without the fix the reads stay blocked until the lock is released:
	// release it after a while so the test fails rather than hangs.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(8 * time.Second):
		release()
		<-done
	}
	release()
	for _, r := range results {
		limit := time.Second
		if r.fn == "read-2s" {
			limit = 2 * time.Second
		}
		if r.status != http.StatusGatewayTimeout || r.code != "timeout" || r.took > limit+time.Second {
			t.Errorf("%s while the secrets were locked: %d %s after %s, want 504 timeout within %s", r.fn, r.status, r.code, r.took, limit+time.Second)
		}
	}

	// Recorded as timeouts, in about their timeouts, with no secret anywhere.
	e.Flush()
	rows, err := e.Admin.Query(ctx, `SELECT function_name, status, duration_ms, coalesce(error, '') FROM aerofn.invocations
		WHERE function_name LIKE 'read-%' ORDER BY created_at`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var fn, status, msg string
		var ms float64
		if err := rows.Scan(&fn, &status, &ms, &msg); err != nil {
			t.Fatal(err)
		}
		n++
		limit := 1000.0
		if fn == "read-2s" {
			limit = 2000
		}
		if status != "timeout" || ms < limit || ms > limit+500 || strings.Contains(msg, secret) {
			t.Errorf("record of %s: %s after %.1f ms (%q), want a timeout at %.0f ms", fn, status, ms, msg, limit)
		}
	}
	if rows.Err() != nil || n != len(calls) {
		t.Fatalf("%d records of the stalled reads, want %d (%v)", n, len(calls), rows.Err())
	}

	// The lock gone, env() reads the secret again (scrubbed from the answer).
	if r := e.Invoke("read-1s", e.AnonKey, nil); r.Status != http.StatusOK || strings.Contains(string(r.Body), secret) {
		t.Fatalf("after the lock: %d %s", r.Status, r.Body)
	}
}

package dbtrigger_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
)

// TestRollbackNeverFiresAndEveryFunctionGetsEveryEvent: several functions on
// one table each get every committed change (INSERT, UPDATE, DELETE, with
// old and new rows), and a rolled-back write reaches none of them.
func TestRollbackNeverFiresAndEveryFunctionGetsEveryEvent(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	handledTable(t, e)
	sqlExec(t, e, `CREATE TABLE items (id int PRIMARY KEY, name text)`)
	deployOn(t, e, "rec", recorder(t), map[string]any{"triggers": []any{dbTrigger("items")}})
	deployOn(t, e, "ok1", wat(t, watOK), map[string]any{"triggers": []any{dbTrigger("items")}})
	deployOn(t, e, "ok2", wat(t, watOK), map[string]any{"triggers": []any{dbTrigger("items", "INSERT")}})

	ctx := context.Background()
	tx, err := e.Admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO items VALUES (100, 'never'), (101, 'never')`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	sqlExec(t, e, `INSERT INTO items VALUES (1, 'a'), (2, 'b')`)
	sqlExec(t, e, `UPDATE items SET name = 'b2' WHERE id = 2`)
	sqlExec(t, e, `DELETE FROM items WHERE id = 1`)

	eventually(t, 10*time.Second, "four changes handled by rec", func() (bool, string) {
		n := queryInt(t, e, `SELECT count(*) FROM handled`)
		return n == 4, fmt.Sprintf("%d handled", n)
	})
	eventually(t, 5*time.Second, "ok1 4 events, ok2 2 inserts", func() (bool, string) {
		a, _ := successes(t, e, "ok1")
		b, _ := successes(t, e, "ok2")
		return a == 4 && b == 2, fmt.Sprintf("ok1 %d, ok2 %d", a, b)
	})
	if n := queryInt(t, e, `SELECT count(*) FROM handled WHERE row_id IN ('100', '101')`); n != 0 {
		t.Fatalf("a rolled-back insert was delivered %d times", n)
	}
	got := queryInt(t, e, `SELECT count(*) FROM handled WHERE (op, row_id) IN (('INSERT', '1'), ('INSERT', '2'), ('UPDATE', '2'), ('DELETE', '1'))
		AND tbl = 'items' AND attempt = 1 AND ok`)
	if got != 4 {
		t.Fatalf("handled rows: %d of the four expected", got)
	}
	// The listing shows them as succeeded, with old and new rows.
	// (River records completions in batches, a moment after the call.)
	eventually(t, 5*time.Second, "four succeeded deliveries listed", func() (bool, string) {
		r := e.JSONRequest("GET", "/admin/v1/functions/rec/events?state=succeeded", e.ServiceKey, nil)
		return r.Status == http.StatusOK && r.JSON(t)["count"].(float64) == 4 &&
			contains(string(r.Body), `"operation":"UPDATE"`, `"old":{"id":2,"name":"b"}`, `"new":{"id":2,"name":"b2"}`), string(r.Body)
	})
	if r := e.JSONRequest("GET", "/admin/v1/functions/rec/events?state=bogus", e.ServiceKey, nil); r.Status != http.StatusBadRequest {
		t.Fatalf("bad state: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("GET", "/admin/v1/functions/rec/events", e.AnonKey, nil); r.Status != http.StatusForbidden {
		t.Fatalf("listing as anon: %d %s", r.Status, r.Body)
	}
	if n := queryInt(t, e, `SELECT count(*) FROM aerofn.events`); n != 0 {
		t.Fatalf("%d captured changes left undispatched", n)
	}
}

// TestTenThousandRowTransaction: one transaction inserting 10,000 rows
// yields exactly 10,000 successful invocations, one per event.
func TestTenThousandRowTransaction(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	sqlExec(t, e, `CREATE TABLE bulk (id int PRIMARY KEY, v text, n int, at timestamptz, aerofn_writer text)`)
	deployOn(t, e, "trivial", wat(t, watOK), map[string]any{"triggers": []any{dbTrigger("public.bulk", "INSERT")}})
	t0 := time.Now()
	sqlExec(t, e, `INSERT INTO bulk SELECT g, 'row ' || g, g, now(), 'w' FROM generate_series(1, 10000) g`)
	commit := time.Since(t0)
	eventually(t, 90*time.Second, "10,000 successes", func() (bool, string) {
		total, distinct := successes(t, e, "trivial")
		return total >= 10000, fmt.Sprintf("%d successes, %d distinct events", total, distinct)
	})
	took := time.Since(t0)
	// Once every job has finished and nothing is left to dispatch, no
	// delivery can come later: a duplicate would be counted now.
	eventually(t, 30*time.Second, "every job finished", func() (bool, string) {
		open := queryInt(t, e, `SELECT count(*) FROM aerofn.river_job WHERE kind = 'aerofn_db_event'
			AND args->>'function' = 'trivial' AND state NOT IN ('completed', 'discarded', 'cancelled')`)
		left := queryInt(t, e, `SELECT count(*) FROM aerofn.events`)
		return open == 0 && left == 0, fmt.Sprintf("%d jobs open, %d changes undispatched", open, left)
	})
	total, distinct := successes(t, e, "trivial")
	if total != 10000 || distinct != 10000 {
		t.Fatalf("%d successes for %d distinct events, want exactly 10,000 of each", total, distinct)
	}
	t.Logf("10,000-row insert committed in %v (capture included); all 10,000 delivered %v after it started (%.0f events/s)",
		commit, took, 10000/took.Seconds())
}

// TestRetryDeadLetterReplay: a function that fails twice then succeeds is
// retried (with backoff) and ends a success; one that fails on every
// attempt ends in the dead letters, where the API lists it, and a replay
// runs it again; a module that can never run is dead at once.
func TestRetryDeadLetterReplay(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	handledTable(t, e)
	sqlExec(t, e, `CREATE TABLE jobs (id int PRIMARY KEY, fail_until int NOT NULL DEFAULT 0)`)
	deployOn(t, e, "flaky", recorder(t), map[string]any{"triggers": []any{
		map[string]any{"type": "database", "table": "jobs", "events": []string{"INSERT"}, "max_attempts": 3}}})

	// Row 1 fails on attempts 1 and 2 and succeeds on 3; row 3 fails on
	// attempt 1 and succeeds on 2.
	sqlExec(t, e, `INSERT INTO jobs VALUES (1, 3), (3, 2)`)
	// The deadlines bound the backoffs (about 1 + 4 s) plus however long a
	// loaded machine takes to run the attempts.
	eventually(t, 2*time.Minute, "success on the third attempt", func() (bool, string) {
		n := queryInt(t, e, `SELECT count(*) FROM handled WHERE row_id = '1' AND ok AND attempt = 3`)
		return n == 1, fmt.Sprintf("%d", n)
	})
	eventually(t, 2*time.Minute, "success on the second attempt", func() (bool, string) {
		n := queryInt(t, e, `SELECT count(*) FROM handled WHERE row_id = '3' AND ok AND attempt = 2`)
		return n == 1, fmt.Sprintf("%d", n)
	})
	// Each retry waited at least its backoff (1 s then 4 s, each ±25%): a
	// loaded machine only lengthens these gaps between the attempts.
	var gaps []float64
	rows, _ := e.Admin.Query(context.Background(), `SELECT extract(epoch FROM at - lag(at) OVER (ORDER BY attempt)) FROM handled WHERE row_id = '1' ORDER BY attempt`)
	for rows.Next() {
		var g *float64
		_ = rows.Scan(&g)
		if g != nil {
			gaps = append(gaps, *g)
		}
	}
	rows.Close()
	if len(gaps) != 2 || gaps[0] < 0.7 || gaps[1] < 2.9 {
		t.Fatalf("gaps between attempts: %v s, want at least about 1 s then 4 s", gaps)
	}
	// The backoffs themselves, as River scheduled them: a job's last retry
	// is scheduled (scheduled_at) its backoff after its last failed
	// attempt ends, and so a little more than that after the attempt
	// recorded itself. The bounds leave a loaded machine up to 1.6 s (then
	// 6.9 s) between the two, and still tell 1 s from 4 s, and 4 s from
	// 16 s. Row 3's job last failed on attempt 1, row 1's on attempt 2.
	backoff := func(row string) float64 {
		var d float64
		if err := e.Admin.QueryRow(context.Background(), `SELECT extract(epoch FROM j.scheduled_at - h.at)
			FROM aerofn.river_job j, (SELECT event_id, max(at) AS at FROM handled WHERE row_id = $1 AND NOT ok GROUP BY event_id) h
			WHERE j.kind = 'aerofn_db_event' AND j.args->>'event_id' = h.event_id`, row).Scan(&d); err != nil {
			t.Fatalf("row %s's job: %v", row, err)
		}
		return d
	}
	b1, b2 := backoff("3"), backoff("1")
	t.Logf("retries scheduled %.3f s then %.3f s after the failed attempts", b1, b2)
	if b1 < 0.7 || b1 >= 2.9 || b2 < 2.9 || b2 >= 11.9 {
		t.Fatalf("retries scheduled %.3f s then %.3f s after the failed attempts, want about 1 s then 4 s", b1, b2)
	}

	// Four attempts needed, three allowed: dead.
	sqlExec(t, e, `INSERT INTO jobs VALUES (2, 4)`)
	var eventID string
	eventually(t, 2*time.Minute, "a dead letter", func() (bool, string) {
		r := e.JSONRequest("GET", "/admin/v1/functions/flaky/events?state=dead", e.ServiceKey, nil)
		m := r.JSON(t)
		if m["count"].(float64) != 1 {
			return false, string(r.Body)
		}
		d := m["events"].([]any)[0].(map[string]any)
		eventID = d["id"].(string)
		return d["attempt"].(float64) == 3 && d["max_attempts"].(float64) == 3 && contains(d["last_error"].(string), "failing on purpose"), string(r.Body)
	})
	// Replay: one more attempt (the fourth), which succeeds.
	r := e.JSONRequest("POST", "/admin/v1/functions/flaky/events/"+eventID+"/replay", e.ServiceKey, nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	eventually(t, time.Minute, "the replay succeeds", func() (bool, string) {
		n := queryInt(t, e, `SELECT count(*) FROM handled WHERE row_id = '2' AND ok AND attempt = 4`)
		return n == 1, fmt.Sprintf("%d", n)
	})
	eventually(t, time.Minute, "no dead letters left", func() (bool, string) {
		r := e.JSONRequest("GET", "/admin/v1/functions/flaky/events?state=dead", e.ServiceKey, nil)
		return r.JSON(t)["count"].(float64) == 0, string(r.Body)
	})
	for path, want := range map[string]int{
		"/admin/v1/functions/flaky/events/999999/replay": http.StatusNotFound,
		"/admin/v1/functions/flaky/events/abc/replay":    http.StatusBadRequest,
		"/admin/v1/functions/nope/events/1/replay":       http.StatusNotFound,
	} {
		if r := e.JSONRequest("POST", path, e.ServiceKey, nil); r.Status != want {
			t.Errorf("POST %s: %d %s, want %d", path, r.Status, r.Body, want)
		}
	}

	// A module that always fails, and one deleted while its events wait.
	sqlExec(t, e, `CREATE TABLE other (id int PRIMARY KEY)`)
	deployOn(t, e, "broken", wat(t, watFail), map[string]any{"triggers": []any{
		map[string]any{"type": "database", "table": "other", "max_attempts": 1}}})
	sqlExec(t, e, `INSERT INTO other VALUES (1)`)
	eventually(t, time.Minute, "broken's event dead after one attempt", func() (bool, string) {
		r := e.JSONRequest("GET", "/admin/v1/functions/broken/events?state=dead", e.ServiceKey, nil)
		return r.JSON(t)["count"].(float64) == 1, string(r.Body)
	})
}

// TestDisablePausesEnableResumes: a disabled function's changes are held
// (and listed as held), and delivered once it is enabled again.
func TestDisablePausesEnableResumes(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	handledTable(t, e)
	sqlExec(t, e, `CREATE TABLE notes (id int PRIMARY KEY)`)
	deployOn(t, e, "rec", recorder(t), map[string]any{"triggers": []any{dbTrigger("notes", "INSERT")}})
	patch := func(enabled bool) {
		if r := e.JSONRequest("PATCH", "/admin/v1/functions/rec", e.ServiceKey, map[string]any{"enabled": enabled}); r.Status != http.StatusOK {
			t.Fatalf("patch enabled=%v: %d %s", enabled, r.Status, r.Body)
		}
	}
	sqlExec(t, e, `INSERT INTO notes VALUES (1)`)
	eventually(t, 10*time.Second, "first note", func() (bool, string) { return queryInt(t, e, `SELECT count(*) FROM handled`) == 1, "" })
	patch(false)
	sqlExec(t, e, `INSERT INTO notes SELECT g FROM generate_series(2, 6) g`)
	eventually(t, 10*time.Second, "five held", func() (bool, string) {
		r := e.JSONRequest("GET", "/admin/v1/functions/rec/events?state=held", e.ServiceKey, nil)
		return r.JSON(t)["count"].(float64) == 5, string(r.Body)
	})
	// Held means no job exists for them: nothing is there to run while the
	// function is disabled (the first note's job is the only one).
	if n := queryInt(t, e, `SELECT count(*) FROM aerofn.river_job WHERE kind = 'aerofn_db_event' AND args->>'function' = 'rec'`); n != 1 {
		t.Fatalf("%d jobs for a disabled function's events, want only the first note's", n)
	}
	if n := queryInt(t, e, `SELECT count(*) FROM handled`); n != 1 {
		t.Fatalf("a disabled function handled %d events", n-1)
	}
	patch(true)
	eventually(t, 10*time.Second, "all six handled once", func() (bool, string) {
		n := queryInt(t, e, `SELECT count(DISTINCT row_id) FROM handled`)
		return n == 6, fmt.Sprintf("%d", n)
	})
	if n := queryInt(t, e, `SELECT count(*) FROM handled`); n != 6 {
		t.Fatalf("%d deliveries for 6 events", n)
	}
}

// TestOrderedDelivery: an ordered function gets one event at a time, in
// commit order, and a failing head holds the events after it back until it
// succeeds.
func TestOrderedDelivery(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	handledTable(t, e)
	sqlExec(t, e, `CREATE TABLE seqs (id int PRIMARY KEY, fail_until int NOT NULL DEFAULT 0, v int NOT NULL DEFAULT 0)`)
	deployOn(t, e, "ordered", recorder(t), map[string]any{"triggers": []any{
		map[string]any{"type": "database", "table": "seqs", "ordered": true}}})
	ctx := context.Background()
	// Row 1's insert fails once; everything after it waits.
	sqlExec(t, e, `INSERT INTO seqs (id, fail_until) VALUES (1, 2)`)
	for i := 2; i <= 20; i++ {
		sqlExec(t, e, `INSERT INTO seqs (id) VALUES ($1)`, i)
		sqlExec(t, e, `UPDATE seqs SET v = v + 1 WHERE id = $1`, i-1)
	}
	// A transaction that starts first and commits last: its change comes
	// after those committed before it, whatever its id.
	tx, err := e.Admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO seqs (id) VALUES (100)`); err != nil {
		t.Fatal(err)
	}
	sqlExec(t, e, `INSERT INTO seqs (id) VALUES (101)`)
	// Commit only once a dispatch pass has taken 101's change (every
	// committed change has left aerofn.events; 100's is not visible yet):
	// the two commits are then separated by a pass, which is when dispatch
	// order is commit order (doc.go).
	eventually(t, 10*time.Second, "101 dispatched before 100 commits", func() (bool, string) {
		n := queryInt(t, e, `SELECT count(*) FROM aerofn.events`)
		return n == 0, fmt.Sprintf("%d changes undispatched", n)
	})
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// 20 inserts and 19 updates, plus one failed attempt each for row 1's
	// insert and update (fail_until 2), plus rows 100 and 101.
	const want = 20 + 19 + 2 + 2
	eventually(t, 30*time.Second, "all delivered", func() (bool, string) {
		n := queryInt(t, e, `SELECT count(*) FROM handled`)
		return n == want, fmt.Sprintf("%d of %d", n, want)
	})
	rows, err := e.Admin.Query(ctx, `SELECT event_id::bigint, op, row_id, ok FROM handled ORDER BY at`)
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	var last int64
	lastOK := false
	for rows.Next() {
		var id int64
		var op, row string
		var ok bool
		if err := rows.Scan(&id, &op, &row, &ok); err != nil {
			t.Fatal(err)
		}
		seq = append(seq, fmt.Sprintf("%s %s", op, row))
		if row == "100" || row == "101" {
			continue // compared below
		}
		if id < last || (id == last && lastOK) {
			t.Fatalf("event %d handled after event %d: %v", id, last, seq)
		}
		last, lastOK = id, ok
	}
	rows.Close()
	if n := len(seq); seq[0] != "INSERT 1" || seq[1] != "INSERT 1" || seq[2] != "INSERT 2" || seq[3] != "UPDATE 1" || seq[4] != "UPDATE 1" || seq[n-2] != "INSERT 101" || seq[n-1] != "INSERT 100" {
		t.Fatalf("order: %v", seq)
	}
	// One at a time: no invocation started before the previous one ended.
	e.Flush()
	if n := queryInt(t, e, `SELECT count(*) FROM (SELECT created_at, lag(created_at + duration_ms * interval '1 ms') OVER (ORDER BY created_at) AS prev_end
		FROM aerofn.invocations WHERE function_name = 'ordered') x WHERE created_at < prev_end`); n != 0 {
		t.Fatalf("%d invocations overlapped the one before", n)
	}
}

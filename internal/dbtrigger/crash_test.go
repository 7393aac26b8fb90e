package dbtrigger_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/testenv"
)

// TestCrashThreeNodes runs three real aerofn processes on one database and
// a steady stream of inserts, kills one with SIGKILL mid-stream and starts
// it again: every event is handled, and an event is handled twice only when
// an attempt of its delivery failed (the kill interrupted it and its job was
// rescued from the dead node, or the call timed out on a loaded machine).
// The counts are reported.
func TestCrashThreeNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three server processes")
	}
	// Not parallel: three nodes and their pools are a good part of a
	// default max_connections (100) already.
	dbURL := dbtest.NewDatabase(t)
	nodes := make([]*testenv.Process, 3)
	start := func() *testenv.Process { return testenv.StartBinary(t, dbURL, "AEROFN_ROLE_POOL_SIZE=3") }
	for i := range nodes {
		nodes[i] = start()
	}
	e := testenv.EnvFor(t, dbURL, nodes[1])
	handledTable(t, e)
	sqlExec(t, e, `CREATE TABLE stream (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())`)
	deployOn(t, e, "rec", recorder(t), map[string]any{"triggers": []any{dbTrigger("stream", "INSERT")}})

	ctx := context.Background()
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MaxConns = 4
	writer, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	var inserted atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := writer.Exec(ctx, `INSERT INTO stream DEFAULT VALUES`); err != nil {
					t.Errorf("insert: %v", err)
					return
				}
				inserted.Add(1)
			}
		}()
	}
	// Kill the node that leads (dispatch and rescue must move), or the first.
	victim := 0
	time.Sleep(2 * time.Second)
	handledBefore := queryInt(t, e, `SELECT count(*) FROM handled`)
	nodes[victim].Kill()
	killedAt := time.Now()
	time.Sleep(2 * time.Second)
	nodes[victim] = start()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	total := int(inserted.Load())

	eventually(t, 60*time.Second, "every event handled", func() (bool, string) {
		n := queryInt(t, e, `SELECT count(*) FROM stream s WHERE NOT EXISTS (
			SELECT 1 FROM handled h WHERE h.row_id = s.id::text AND h.ok)`)
		return n == 0, fmt.Sprintf("%d of %d not handled yet", n, total)
	})
	handled := queryInt(t, e, `SELECT count(*) FROM handled WHERE ok`)
	dups := queryInt(t, e, `SELECT count(*) - count(DISTINCT event_id) FROM handled WHERE ok`)
	rescued := queryInt(t, e, `SELECT count(*) FROM aerofn.river_job WHERE kind = 'aerofn_db_event' AND errors::text LIKE '%stopped while handling%'`)
	// Delivery is at least once: an attempt that ended badly after the
	// function's writes committed (cut off by the kill, or, on a loaded
	// machine, by the function's timeout) runs again. So every duplicated
	// event is one whose delivery has a failed attempt on record, and there
	// are no more duplicates than failed attempts.
	failed := queryInt(t, e, `SELECT coalesce(sum(coalesce(array_length(errors, 1), 0)), 0) FROM aerofn.river_job WHERE kind = 'aerofn_db_event'`)
	stray := queryInt(t, e, `SELECT count(*) FROM (SELECT event_id FROM handled WHERE ok GROUP BY event_id HAVING count(*) > 1) d
		WHERE d.event_id NOT IN (SELECT args->>'event_id' FROM aerofn.river_job WHERE kind = 'aerofn_db_event' AND coalesce(array_length(errors, 1), 0) > 0)`)
	t.Logf("%d events inserted by 4 writers over %v; node %d killed (SIGKILL) after %d were handled and restarted 2 s later; "+
		"%d handlings: %d duplicates, %d deliveries interrupted by the kill and rescued, %d failed attempts in all (%v after the kill the stream was fully handled)",
		total, 6*time.Second, victim, handledBefore, handled, dups, rescued, failed, time.Since(killedAt).Round(time.Millisecond))
	if queryInt(t, e, `SELECT count(*) FROM stream`) != total {
		t.Fatalf("stream has %d rows, %d inserted", queryInt(t, e, `SELECT count(*) FROM stream`), total)
	}
	if stray != 0 {
		// Say what happened to those deliveries, so that a failure here can
		// be told apart from at-least-once retries of failed attempts.
		rows, err := e.Admin.Query(ctx, `SELECT j.args->>'event_id', j.state::text, j.attempt, j.errors::text
			FROM aerofn.river_job j WHERE j.kind = 'aerofn_db_event' AND j.args->>'event_id' IN (
				SELECT event_id FROM handled WHERE ok GROUP BY event_id HAVING count(*) > 1) LIMIT 5`)
		if err == nil {
			for rows.Next() {
				var id, state, errs string
				var attempt int
				if rows.Scan(&id, &state, &attempt, &errs) == nil {
					t.Logf("duplicated event %s: job %s, attempt %d, errors %.600s", id, state, attempt, errs)
				}
			}
			rows.Close()
		}
		t.Fatalf("%d events were handled twice without a failed attempt of their delivery", stray)
	}
	if dups > failed {
		t.Fatalf("%d duplicates but only %d failed attempts", dups, failed)
	}
}

package scheduler_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aerodb/aerofn/internal/cluster"
	"github.com/aerodb/aerofn/internal/testenv"
)

// TestDisableStopsAtOnce: once a PATCH enabled=false has answered, no run
// starts, pending runs are cancelled, and re-enabling starts from now (the
// ticks that fell while disabled are not "missed").
func TestDisableStopsAtOnce(t *testing.T) {
	t.Parallel()
	e := startNode(t)
	e.MustDeploy("tick", echoModule(t), schedule("* * * * * *"))
	waitFor(t, 10*time.Second, "two runs", func() bool { return count(runs(t, e, "tick"), "succeeded") >= 2 })
	if r := e.JSONRequest("PATCH", "/admin/v1/functions/tick", e.ServiceKey, map[string]any{"enabled": false}); r.Status != 200 {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	off := dbNow(t, e)
	time.Sleep(2500 * time.Millisecond)
	for _, r := range runs(t, e, "tick") {
		if r.StartedAt != nil && r.StartedAt.After(off) {
			t.Fatalf("a run started after the disable: %+v (disabled at %s)", r, off)
		}
		if r.State == "pending" || r.State == "running" {
			t.Fatalf("run left open after the disable: %+v", r)
		}
	}
	if r := e.JSONRequest("PATCH", "/admin/v1/functions/tick", e.ServiceKey, map[string]any{"enabled": true}); r.Status != 200 {
		t.Fatalf("enable: %d %s", r.Status, r.Body)
	}
	on := dbNow(t, e)
	waitFor(t, 10*time.Second, "a run after re-enabling", func() bool {
		return len(runsWhere(t, e, "tick", "r.started_at > '"+on.Format(time.RFC3339Nano)+"'")) > 0
	})
	for _, r := range runs(t, e, "tick") {
		if r.ScheduledTime.After(off) && r.ScheduledTime.Before(on.Add(-time.Second)) || r.Kind != "tick" {
			t.Fatalf("a tick of the disabled time was recorded: %+v (off %s, on %s)", r, off, on)
		}
	}
}

// TestDeleteStops: deleting a function removes its schedule at once; its
// history stays readable.
func TestDeleteStops(t *testing.T) {
	t.Parallel()
	e := startNode(t)
	d := e.MustDeploy("tick", echoModule(t), schedule("* * * * * *"))
	id := d["id"].(string)
	waitFor(t, 10*time.Second, "two runs", func() bool { return count(runs(t, e, "tick"), "succeeded") >= 2 })
	if r := e.JSONRequest("DELETE", "/admin/v1/functions/tick", e.ServiceKey, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	gone := dbNow(t, e)
	time.Sleep(2500 * time.Millisecond)
	var schedules, later, open int
	if err := e.Admin.QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM aerofn.schedules WHERE function_id = $1),
			(SELECT count(*) FROM aerofn.schedule_runs WHERE function_id = $1 AND (started_at > $2 OR scheduled_time > $2)),
			(SELECT count(*) FROM aerofn.schedule_runs WHERE function_id = $1 AND state IN ('pending', 'running'))`,
		id, gone).Scan(&schedules, &later, &open); err != nil {
		t.Fatal(err)
	}
	if schedules != 0 || later != 0 || open != 0 {
		t.Fatalf("after delete: %d schedules, %d later runs, %d open runs", schedules, later, open)
	}
	// A new function of the same name is a new schedule, not the old one.
	e.MustDeploy("tick", echoModule(t), schedule("0 3 * * *"))
	if r := e.JSONRequest("GET", "/admin/v1/functions/tick/runs", e.ServiceKey, nil); r.Status != 200 || !strings.Contains(string(r.Body), `"runs":[]`) {
		t.Fatalf("runs of the new function: %d %s", r.Status, r.Body)
	}
}

// TestOverlapSkip: a tick that comes while the previous run is going is
// recorded as skipped_overlap, and runs of one trigger never overlap.
func TestOverlapSkip(t *testing.T) {
	t.Parallel()
	e := startNode(t)
	cfg := schedule("* * * * * *")
	cfg["timeout"] = 10
	e.MustDeploy("slow", sleepModule(t, 2500*time.Millisecond), cfg)
	waitFor(t, 20*time.Second, "two runs and skips", func() bool {
		rs := runs(t, e, "slow")
		return count(rs, "succeeded") >= 2 && count(rs, "skipped_overlap") >= 3
	})
	rs := runsWhere(t, e, "slow", "r.state IN ('succeeded', 'skipped_overlap')")
	var prevEnd time.Time
	for _, r := range rs {
		switch r.State {
		case "succeeded":
			if r.StartedAt.Before(prevEnd) {
				t.Fatalf("runs overlap: one ended %s, the next started %s", prevEnd, r.StartedAt)
			}
			prevEnd = *r.FinishedAt
		case "skipped_overlap":
			if r.StartedAt != nil || r.InvocationID != "" || !strings.Contains(r.Note, "still going") {
				t.Fatalf("skip record: %+v", r)
			}
		}
	}
}

// TestOverlapQueue: with overlap "queue" a tick waits for the previous run
// and then runs; nothing is skipped.
func TestOverlapQueue(t *testing.T) {
	t.Parallel()
	e := startNode(t)
	e.MustDeploy("slow", sleepModule(t, 1500*time.Millisecond), schedule("* * * * * *", map[string]any{"overlap": "queue"}))
	waitFor(t, 20*time.Second, "four runs", func() bool { return count(runs(t, e, "slow"), "succeeded") >= 4 })
	rs := runs(t, e, "slow")
	if n := count(rs, "skipped_overlap"); n != 0 {
		t.Fatalf("%d ticks skipped under overlap queue", n)
	}
	if count(rs, "pending") == 0 {
		t.Fatalf("no tick is waiting, yet each run takes 1.5 s: %+v", rs)
	}
	var prevEnd time.Time
	for _, r := range rs {
		if r.State != "succeeded" {
			continue
		}
		if r.StartedAt.Before(prevEnd) {
			t.Fatalf("queued runs overlap")
		}
		prevEnd = *r.FinishedAt
	}
}

// stopAndRewind stops the node of e, rewinds next_tick of name's schedule to
// at, and starts a new node on the same database: as if every node had been
// down since at.
func stopAndRewind(t *testing.T, e *testenv.Env, name string, at time.Time) *testenv.Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Server.Stop(ctx); err != nil {
		t.Fatalf("stopping the node: %v", err)
	}
	exec(t, e, `UPDATE aerofn.schedules SET next_tick = $2 WHERE function_id = (SELECT id FROM aerofn.functions WHERE name = $1)`, name, at)
	return testenv.StartOn(t, e.DatabaseURL)
}

// TestCatchUp: ticks missed while no node was up run once (catch_up "once",
// recorded with how many it stands for) or are recorded as skipped ("skip").
func TestCatchUp(t *testing.T) {
	t.Parallel()
	const yearly = "0 0 1 1 *"
	threeYearsAgo := time.Date(time.Now().UTC().Year()-2, 1, 1, 0, 0, 0, 0, time.UTC) // the last three New Years were missed
	t.Run("once", func(t *testing.T) {
		t.Parallel()
		e := startNode(t)
		e.MustDeploy("yearly", echoModule(t), schedule(yearly))
		e = stopAndRewind(t, e, "yearly", threeYearsAgo)
		waitFor(t, 10*time.Second, "the catch-up run", func() bool { return count(runs(t, e, "yearly"), "succeeded") == 1 })
		rs := runs(t, e, "yearly")
		last := time.Date(time.Now().UTC().Year(), 1, 1, 0, 0, 0, 0, time.UTC)
		if len(rs) != 1 || rs[0].Kind != "catch_up" || rs[0].Missed != 3 || !rs[0].ScheduledTime.Equal(last) || !strings.Contains(rs[0].Note, "3 ticks") {
			t.Fatalf("runs: %+v", rs)
		}
		if !strings.Contains(rs[0].Output, `"missed_count":3`) {
			t.Fatalf("the event does not say how many ticks the run stands for: %s", rs[0].Output)
		}
		var next time.Time
		if err := e.Admin.QueryRow(context.Background(), `SELECT next_tick FROM aerofn.schedules`).Scan(&next); err != nil {
			t.Fatal(err)
		}
		if !next.Equal(last.AddDate(1, 0, 0)) {
			t.Fatalf("next_tick %s", next)
		}
	})
	t.Run("skip", func(t *testing.T) {
		t.Parallel()
		e := startNode(t)
		e.MustDeploy("yearly", echoModule(t), schedule(yearly, map[string]any{"catch_up": "skip"}))
		e = stopAndRewind(t, e, "yearly", threeYearsAgo)
		waitFor(t, 10*time.Second, "the skip record", func() bool { return len(runs(t, e, "yearly")) == 1 })
		time.Sleep(500 * time.Millisecond)
		rs := runs(t, e, "yearly")
		if len(rs) != 1 || rs[0].State != "skipped_missed" || rs[0].Missed != 3 || rs[0].InvocationID != "" || !strings.Contains(rs[0].Note, "3 ticks missed") {
			t.Fatalf("runs: %+v", rs)
		}
	})
	t.Run("late but not missed", func(t *testing.T) {
		// A restart within the grace period only delays ticks: each runs.
		t.Parallel()
		e := startNode(t)
		e.MustDeploy("tick", echoModule(t), schedule("* * * * * *"))
		waitFor(t, 10*time.Second, "a run", func() bool { return count(runs(t, e, "tick"), "succeeded") >= 1 })
		// The restart, however long it takes on a loaded machine, must not
		// count towards how late the ticks are: the test holds the ticker
		// lock across it, and only once the new node is up rewinds
		// next_tick four seconds, as if the last ticker had stopped then,
		// and lets the new node tick. The four ticks from from on are then
		// late by less than Grace, so each must run, in order. Ticks due
		// after the rewind are ordinary ones, which the overlap policy may
		// skip on a loaded machine (a run still going after a second).
		ctx := context.Background()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := e.Server.Stop(sctx); err != nil {
			t.Fatalf("stopping the node: %v", err)
		}
		ticker := holdTicker(t, e.DatabaseURL)
		e = testenv.StartOn(t, e.DatabaseURL)
		// Nothing is inserted while no node ticks; runs the first node left
		// pending are claimed by the second, and must be done before the
		// rewind (a run going when the late ticks are planned would have
		// them skipped as overlapping it).
		waitFor(t, 10*time.Second, "the first node's runs finished", func() bool {
			return len(runsWhere(t, e, "tick", "r.state IN ('pending', 'running')")) == 0
		})
		var from time.Time
		if err := pgx.BeginFunc(ctx, ticker, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, `SELECT date_trunc('second', clock_timestamp()) - interval '4 seconds'`).Scan(&from); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM aerofn.schedule_runs WHERE scheduled_time >= $1`, from); err != nil {
				return err // ticks the first node inserted from from on, if it stopped after
			}
			_, err := tx.Exec(ctx, `UPDATE aerofn.schedules SET next_tick = $1`, from)
			return err
		}); err != nil {
			t.Fatalf("rewinding next_tick: %v", err)
		}
		if err := ticker.Close(ctx); err != nil { // the new node takes the ticker within 250 ms
			t.Fatal(err)
		}
		late := "r.scheduled_time >= '" + from.Format(time.RFC3339) + "' AND r.scheduled_time < '" + from.Add(4*time.Second).Format(time.RFC3339) + "'"
		waitFor(t, 10*time.Second, "the late ticks", func() bool {
			return len(runsWhere(t, e, "tick", "r.state = 'succeeded' AND "+late)) == 4
		})
		rs := runsWhere(t, e, "tick", late)
		if len(rs) != 4 {
			t.Fatalf("%d runs for the 4 late ticks: %+v", len(rs), rs)
		}
		for i, r := range rs {
			if r.Kind != "tick" || r.State != "succeeded" || !r.ScheduledTime.Equal(from.Add(time.Duration(i)*time.Second)) {
				t.Fatalf("run %d: %+v", i, r)
			}
		}
	})
}

// holdTicker takes the ticker lock on a connection of its own, waiting for
// the node holding it to let go: no node ticks until the connection closes.
func holdTicker(t testing.TB, dbURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1::int4, $2::int4)`, cluster.NodeSpace, cluster.TickerObject); err != nil {
		t.Fatalf("taking the ticker lock: %v", err)
	}
	return conn
}

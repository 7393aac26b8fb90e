package scheduler_test

import (
	"context"
	"testing"
	"time"

	watfix "github.com/aerodb/aerofn/internal/testenv/wat"
)

// TestHostileRunTextNeverWedgesASchedule: a run whose error or output holds
// NUL or invalid UTF-8 still ends (failed or succeeded, never left running),
// so the ticks queued after it run, and each run's invocation is recorded.
func TestHostileRunTextNeverWedgesASchedule(t *testing.T) {
	t.Parallel()
	e := startNode(t)
	// Overlap "queue": every tick must run, so a run left running would
	// hold the ticks after it pending for ever. Under "skip" a run still
	// going after a second on a loaded machine has the next tick skipped,
	// which is the policy working, not a wedged schedule.
	queue := map[string]any{"overlap": "queue"}
	e.MustDeploy("nulerr", wat(t, watfix.HostileText(1)), schedule("* * * * * *", queue))
	e.MustDeploy("nulout", wat(t, watfix.HostileText(0)), schedule("* * * * * *", queue))
	for fn, state := range map[string]string{"nulerr": "failed", "nulout": "succeeded"} {
		waitFor(t, 15*time.Second, "three ended runs of "+fn, func() bool { return count(runs(t, e, fn), state) >= 3 })
		rs := runsWhere(t, e, fn, "r.state NOT IN ('pending', 'running')")
		for _, r := range rs {
			if r.State != state {
				t.Fatalf("%s: run %+v, want every run %s", fn, r, state)
			}
			text := r.Output
			if state == "failed" {
				text = r.Error
			}
			if text != "bad\uFFFDtext\uFFFD" {
				t.Fatalf("%s: stored %q, want NUL and the invalid byte as U+FFFD", fn, text)
			}
		}
		e.Flush()
		var records int
		if err := e.Admin.QueryRow(context.Background(), `SELECT count(*) FROM aerofn.invocations
			WHERE function_name = $1 AND id IN (SELECT invocation_id FROM aerofn.schedule_runs)`, fn).Scan(&records); err != nil {
			t.Fatal(err)
		}
		if records < len(rs) {
			t.Fatalf("%s: %d invocation records for %d ended runs", fn, records, len(rs))
		}
	}
}

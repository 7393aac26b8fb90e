package scheduler

import (
	"time"

	"github.com/aerodb/aerofn/internal/scheduler/cronspec"
)

// Run kinds: why a row of aerofn.schedule_runs exists.
const (
	KindTick    = "tick"     // a due tick
	KindCatchUp = "catch_up" // one run standing for ticks missed while no node was up
	KindManual  = "manual"   // POST /admin/v1/functions/{name}/run
)

// Run states (see doc.go for the machine).
const (
	StatePending        = "pending"
	StateRunning        = "running"
	StateSucceeded      = "succeeded"
	StateFailed         = "failed"
	StateInterrupted    = "interrupted"
	StateSkippedOverlap = "skipped_overlap"
	StateSkippedMissed  = "skipped_missed"
	StateCancelled      = "cancelled"
)

// maxMissedCount bounds how many missed ticks the ticker counts one by one
// (about 0.1 s of work for a per-second schedule); past it missed_count
// records this many and the row's error says "at least".
const maxMissedCount = 100_000

// plannedRun is a row the ticker inserts for one schedule.
type plannedRun struct {
	At     time.Time
	Kind   string
	State  string // pending, or skipped_missed
	Missed int    // ticks the row stands for (catch-up and skip rows)
	Capped bool   // Missed stopped counting at maxMissedCount
}

// planTicks decides what the ticker inserts for a schedule whose next
// unhandled tick is next, at time now, and the schedule's new next tick.
//
// A tick no later than now-grace is missed: no node was up to run it in
// time (a leader change or a restart within the grace is only late, and its
// ticks all run). Missed ticks become one row, whatever their number: under
// catch_up "once" a catch-up run at the latest missed tick, under "skip" a
// skipped_missed record there; both carry the count. Ticks after now-grace
// each become a pending run.
func planTicks(spec *cronspec.Spec, next, now time.Time, grace time.Duration, catchUp string) ([]plannedRun, time.Time) {
	var out []plannedRun
	cutoff := now.Add(-grace)
	from := next.Add(-time.Second) // ticks are whole seconds; Between is (from, to]
	if !next.After(cutoff) {
		n, last, capped := countTicks(spec, from, cutoff, maxMissedCount)
		if n > 0 {
			r := plannedRun{At: last, Kind: KindCatchUp, State: StatePending, Missed: n, Capped: capped}
			if catchUp == CatchUpSkip {
				r.Kind, r.State = KindTick, StateSkippedMissed
			}
			out = append(out, r)
		}
		from = cutoff
	}
	// At most one tick per second fits in the grace, so this is bounded.
	for _, t := range spec.Between(from, now, int(grace/time.Second)+2) {
		out = append(out, plannedRun{At: t, Kind: KindTick, State: StatePending})
	}
	return out, spec.Next(now)
}

// countTicks counts the ticks in (from, to], up to limit, and returns the
// last of them. When it stops at limit the last tick is found by searching
// back from to.
func countTicks(spec *cronspec.Spec, from, to time.Time, limit int) (n int, last time.Time, capped bool) {
	for t := from; n < limit; {
		t = spec.Next(t)
		if t.IsZero() || t.After(to) {
			return n, last, false
		}
		n++
		last = t
	}
	if l := lastTickBy(spec, to); !l.IsZero() {
		last = l
	}
	return n, last, true
}

// lastTickBy returns the last tick at or before to, searching windows of
// growing size back from it (cronspec computes forward only).
func lastTickBy(spec *cronspec.Spec, to time.Time) time.Time {
	for _, w := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 32 * 24 * time.Hour, 400 * 24 * time.Hour, 9 * 366 * 24 * time.Hour} {
		var last time.Time
		for t := to.Add(-w); ; {
			t = spec.Next(t)
			if t.IsZero() || t.After(to) {
				break
			}
			last = t
		}
		if !last.IsZero() {
			return last
		}
	}
	return time.Time{}
}

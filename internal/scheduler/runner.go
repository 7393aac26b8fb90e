package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/db"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/invoker"
	"github.com/aerodb/aerofn/internal/registry"
	"github.com/aerodb/aerofn/internal/scheduler/cronspec"
)

// ErrNotScheduled: run-now on a function (or trigger index) that has no
// schedule trigger.
var ErrNotScheduled = errors.New("not scheduled")

// busyBackoff is how long a node at its concurrency limit leaves runs to
// the other nodes.
const busyBackoff = 200 * time.Millisecond

// maxOutput bounds the output kept with a run; the invocation record has
// the logs.
const maxOutput = 4 << 10

// claimed is a run this node committed as its own (state running) and is
// about to start.
type claimed struct {
	functionID    string
	name          string
	index         int
	scheduledTime time.Time
	kind          string
	cron          string
	timezone      string
	missed        int
	startedAt     time.Time
}

// claimAll claims every run this node may start now and starts each.
func (s *Scheduler) claimAll(ctx context.Context, conn *pgx.Conn) error {
	for range 20 {
		rows, err := conn.Query(ctx, `SELECT DISTINCT function_id, trigger_index FROM aerofn.schedule_runs
			WHERE state = 'pending' LIMIT 200`)
		if err != nil {
			return fmt.Errorf("finding pending runs: %w", err)
		}
		type key struct {
			fid string
			idx int
		}
		keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (key, error) {
			var k key
			err := r.Scan(&k.fid, &k.idx)
			return k, err
		})
		if err != nil {
			return fmt.Errorf("finding pending runs: %w", err)
		}
		progress := false
		for _, k := range keys {
			c, ok, err := s.claim(ctx, conn, k.fid, k.idx)
			if err != nil {
				return err
			}
			if ok {
				progress = true
				s.inflight.Add(1)
				go s.execute(c)
			}
		}
		if !progress {
			return nil
		}
	}
	return nil
}

// claim takes the oldest pending run of one trigger, if the trigger is
// enabled, not locked by another node, and has no run in progress (a
// trigger's runs never overlap; ticks that came during a run were already
// recorded as skipped under overlap "skip"). The claim commits before the
// function starts: whatever happens next, this tick is never started again.
// It runs on the node's session, which holds the liveness lock whose key
// the claim records: a claim never commits after that lock is gone.
func (s *Scheduler) claim(ctx context.Context, conn *pgx.Conn, functionID string, index int) (c claimed, ok bool, err error) {
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var enabled bool
		err := tx.QueryRow(ctx, `SELECT s.enabled, f.name FROM aerofn.schedules s JOIN aerofn.functions f ON f.id = s.function_id
			WHERE s.function_id = $1 AND s.trigger_index = $2 FOR UPDATE OF s SKIP LOCKED`, functionID, index).Scan(&enabled, &c.name)
		if errors.Is(err, pgx.ErrNoRows) {
			// Locked by another node (which claims it), or gone: the hook
			// cancels pending runs when it removes a schedule, so runs left
			// over can only come from a race with an older version.
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM aerofn.schedules WHERE function_id = $1 AND trigger_index = $2)`,
				functionID, index).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return cancelPending(ctx, tx, functionID, []int32{int32(index)}, "the schedule no longer exists")
			}
			return nil
		}
		if err != nil {
			return err
		}
		if !enabled {
			return cancelPending(ctx, tx, functionID, []int32{int32(index)}, "the function was disabled")
		}
		err = tx.QueryRow(ctx, `UPDATE aerofn.schedule_runs r SET state = 'running', node = $3, node_key = $4, started_at = clock_timestamp()
			WHERE (r.function_id, r.trigger_index, r.scheduled_time) = (
				SELECT function_id, trigger_index, scheduled_time FROM aerofn.schedule_runs
				WHERE function_id = $1 AND trigger_index = $2 AND state = 'pending' ORDER BY scheduled_time LIMIT 1)
			AND NOT EXISTS (SELECT 1 FROM aerofn.schedule_runs x
				WHERE x.function_id = $1 AND x.trigger_index = $2 AND x.state = 'running')
			RETURNING r.scheduled_time, r.kind, r.cron, r.timezone, r.missed_count, r.started_at`,
			functionID, index, s.node.Name(), s.node.Key()).Scan(&c.scheduledTime, &c.kind, &c.cron, &c.timezone, &c.missed, &c.startedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		ok = true
		return nil
	})
	if err != nil {
		return claimed{}, false, fmt.Errorf("claiming a run of %s trigger %d: %w", functionID, index, err)
	}
	c.functionID, c.index = functionID, index
	return c, ok, nil
}

// Event is what a scheduled function's handler receives.
type Event struct {
	Trigger       string `json:"trigger"`
	Cron          string `json:"cron"`
	Timezone      string `json:"timezone,omitempty"`
	ScheduledTime string `json:"scheduled_time"`
	ActualTime    string `json:"actual_time"`
	// MissedCount: a catch-up run stands for this many ticks missed while
	// no node was up.
	MissedCount int `json:"missed_count,omitempty"`
	// Manual: started by POST /admin/v1/functions/{name}/run.
	Manual bool `json:"manual,omitempty"`
}

func (c claimed) event() []byte {
	loc := location(c.cron, c.timezone)
	ev := Event{Trigger: TriggerType, Cron: c.cron, Timezone: c.timezone,
		ScheduledTime: c.scheduledTime.In(loc).Format(time.RFC3339Nano),
		ActualTime:    c.startedAt.In(loc).Format(time.RFC3339Nano),
		Manual:        c.kind == KindManual}
	if c.kind == KindCatchUp {
		ev.MissedCount = c.missed
	}
	b, _ := json.Marshal(ev)
	return b
}

// locations caches the zone of each expression seen, for events.
var locations sync.Map // cron + "\x00" + timezone → *time.Location

// location is the zone whose wall clock a stored schedule reads, which a
// CRON_TZ= prefix may name too.
func location(cron, tz string) *time.Location {
	k := cron + "\x00" + tz
	if l, ok := locations.Load(k); ok {
		return l.(*time.Location)
	}
	loc := time.UTC
	if sp, err := cronspec.Parse(cron, tz); err == nil {
		loc = sp.Location()
	}
	locations.Store(k, loc)
	return loc
}

// requestID names the tick in the invocation record, so that a tick's
// invocations can be counted (the answer is never more than one).
func (c claimed) requestID() string {
	return fmt.Sprintf("schedule/%s/%d/%s", c.functionID, c.index, c.scheduledTime.UTC().Format(time.RFC3339Nano))
}

// execute runs a claimed run through the invoker and records its end.
func (s *Scheduler) execute(c claimed) {
	defer s.inflight.Done()
	out, err := s.invoke(context.Background(), c)
	if invoker.Retryable(err) {
		// Nothing ran: hand the tick back for another node (or this one,
		// shortly) to claim.
		s.busyUntil.Store(time.Now().Add(busyBackoff).UnixNano())
		s.release(c)
		return
	}
	s.finish(c, out, err)
}

// invoke runs a claimed run, the function looked up afresh (a disable
// committed after the claim is seen here, so nothing starts after it), as
// the service role unless the function's run_as names another principal.
func (s *Scheduler) invoke(ctx context.Context, c claimed) (invoker.Outcome, error) {
	out, err := s.inv.Invoke(ctx, c.name, invoker.Call{Trigger: TriggerType, FunctionID: c.functionID, Fresh: true, Event: c.event(),
		Principal: auth.Service(), RequestID: c.requestID()})
	if errors.Is(err, invoker.ErrNotFound) || errors.Is(err, invoker.ErrDisabled) {
		return out, errCancelled
	}
	return out, err
}

var errCancelled = errors.New("the function was disabled or deleted before the run started")

// finish records how a run ended. It is retried for a while: a run that
// ran must not stay "running" because the database blinked.
func (s *Scheduler) finish(c claimed, out invoker.Outcome, runErr error) {
	state, errText, note := StateSucceeded, "", ""
	switch {
	case errors.Is(runErr, errCancelled):
		state, note = StateCancelled, runErr.Error()
	case runErr != nil:
		state, errText = StateFailed, runErr.Error()
	case out.Status == engine.StatusInterrupted:
		// This node stopped under the run: the same state a sweeper gives
		// the runs of a node that died.
		state, errText = StateInterrupted, out.Error
	case out.Status != engine.StatusSuccess:
		state, errText = StateFailed, out.Error
	}
	var invID, role, status *string
	if out.ID != "" {
		st, r := string(out.Status), string(out.Principal.Role)
		invID, role, status = &out.ID, &r, &st
	}
	// What the guest chose (its error, its output) is stored as valid text:
	// a NUL would make the update fail and leave the run running forever.
	errText, note = db.Text(errText), db.Text(note)
	output := db.Truncate(db.Text(string(out.Output)), maxOutput)
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := pgx.BeginFunc(ctx, s.cfg.Pool, func(tx pgx.Tx) error {
			// "interrupted" too: a sweeper that lost sight of this node (its
			// session dropped and came back) is corrected by the real outcome.
			if _, err := tx.Exec(ctx, `UPDATE aerofn.schedule_runs SET state = $5, finished_at = clock_timestamp(),
					invocation_id = $6, role = $7, status = $8, error = nullif($9::text, ''), output = nullif($10::text, ''),
					note = CASE WHEN $11::text <> '' THEN $11 WHEN state = 'interrupted' THEN NULL ELSE note END
				WHERE function_id = $1 AND trigger_index = $2 AND scheduled_time = $3 AND node = $4
					AND state IN ('running', 'interrupted')`,
				c.functionID, c.index, c.scheduledTime, s.node.Name(), state, invID, role, status, errText, output, note); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `SELECT pg_notify($1, 'done')`, WakeChannel)
			return err
		})
		cancel()
		if err == nil {
			return
		}
		if attempt >= 20 {
			s.log.Error("recording the end of a run; it stays running until this node stops", "function", c.name,
				"scheduled_time", c.scheduledTime, "state", state, "error", err)
			return
		}
		s.log.Warn("recording the end of a run; retrying", "function", c.name, "error", err)
		time.Sleep(min(time.Duration(1<<attempt)*100*time.Millisecond, 5*time.Second))
	}
}

// release hands back a claimed run that never started.
func (s *Scheduler) release(c claimed) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.cfg.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE aerofn.schedule_runs SET state = 'pending', node = NULL, node_key = NULL, started_at = NULL
			WHERE function_id = $1 AND trigger_index = $2 AND scheduled_time = $3 AND node = $4 AND state = 'running'`,
			c.functionID, c.index, c.scheduledTime, s.node.Name()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, 'released')`, WakeChannel)
		return err
	})
	if err != nil {
		// The sweeper cannot help (this node lives): record it as failed.
		s.log.Error("handing back a run this node could not start", "function", c.name, "error", err)
		s.finish(c, invoker.Outcome{}, fmt.Errorf("this node was at its concurrency limit: %w", invoker.ErrBusy))
	}
}

// RunNow runs fn's schedule trigger at index (the first one when index is
// negative) at once on this node, whatever its overlap policy, and records
// it as a manual run.
func (s *Scheduler) RunNow(ctx context.Context, fn registry.Function, index int) (Run, invoker.Outcome, error) {
	if !fn.Enabled {
		return Run{}, invoker.Outcome{}, invoker.ErrDisabled
	}
	ts, err := Triggers(fn)
	if err != nil {
		return Run{}, invoker.Outcome{}, err
	}
	var t *Trigger
	for i := range ts {
		if index < 0 || ts[i].Index == index {
			t = &ts[i]
			break
		}
	}
	if t == nil {
		if index >= 0 {
			return Run{}, invoker.Outcome{}, fmt.Errorf("%w: config.triggers[%d] of %s is not a schedule trigger", ErrNotScheduled, index, fn.Name)
		}
		return Run{}, invoker.Outcome{}, fmt.Errorf("%w: %s has no schedule trigger", ErrNotScheduled, fn.Name)
	}
	s.inflight.Add(1)
	defer s.inflight.Done()
	c := claimed{functionID: fn.ID, name: fn.Name, index: t.Index, kind: KindManual, cron: t.Cron, timezone: t.Timezone}
	if err := s.cfg.Pool.QueryRow(ctx, `INSERT INTO aerofn.schedule_runs
			(function_id, trigger_index, scheduled_time, kind, state, cron, timezone, node, node_key, started_at)
			VALUES ($1, $2, clock_timestamp(), 'manual', 'running', $3, $4, $5, $6, clock_timestamp())
			RETURNING scheduled_time, started_at`,
		fn.ID, t.Index, t.Cron, t.Timezone, s.node.Name(), s.node.Key()).Scan(&c.scheduledTime, &c.startedAt); err != nil {
		return Run{}, invoker.Outcome{}, fmt.Errorf("recording a manual run: %w", err)
	}
	out, err := s.inv.Invoke(context.WithoutCancel(ctx), fn.Name, invoker.Call{Trigger: TriggerType, FunctionID: fn.ID, Event: c.event(),
		Principal: auth.Service(), RequestID: c.requestID()})
	if errors.Is(err, invoker.ErrNotFound) || errors.Is(err, invoker.ErrDisabled) {
		// Disabled or deleted since fn was read: nothing ran.
		s.finish(c, invoker.Outcome{}, errCancelled)
		return Run{}, invoker.Outcome{}, err
	}
	if err != nil {
		// Refused (busy, not compiled yet) or not looked up: no run.
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, derr := s.cfg.Pool.Exec(dctx, `DELETE FROM aerofn.schedule_runs WHERE function_id = $1 AND trigger_index = $2 AND scheduled_time = $3`,
			fn.ID, t.Index, c.scheduledTime); derr != nil {
			s.finish(c, invoker.Outcome{}, err)
		}
		return Run{}, invoker.Outcome{}, err
	}
	s.finish(c, out, err)
	run, err := s.run(context.WithoutCancel(ctx), fn.ID, t.Index, c.scheduledTime)
	return run, out, err
}

package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aerodb/aerofn/internal/cluster"
)

// dueSchedule is a schedule whose next tick has come, locked by the ticker.
type dueSchedule struct {
	functionID     string
	index          int
	cron, timezone string
	catchUp        string
	overlap        string
	next           time.Time
	running        bool
	queued         int
}

// tick is the ticker's transaction: for every enabled schedule whose
// next_tick has come, insert its due ticks as runs and advance next_tick,
// both or neither. It returns how long to sleep until the earliest next tick.
//
// Time is the database's (clock_timestamp()), so nodes whose clocks
// disagree still agree on when a tick is due; the ticker sleeps by its own
// clock corrected by the offset measured here.
func (s *Scheduler) tick(ctx context.Context, conn *pgx.Conn) (time.Duration, error) {
	wait := maxWait
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		before := time.Now()
		var now time.Time
		if err := tx.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
			return fmt.Errorf("reading the database clock: %w", err)
		}
		after := time.Now()
		s.offset = now.Sub(before.Add(after.Sub(before) / 2))

		// SKIP LOCKED: a schedule being changed (Sync) or claimed right now
		// is taken on the next pass, which comes at once (min(next_tick) below
		// is still due), rather than stalling every other schedule.
		rows, err := tx.Query(ctx, `SELECT s.function_id, s.trigger_index, s.cron, s.timezone, s.catch_up, s.overlap, s.next_tick,
				EXISTS (SELECT 1 FROM aerofn.schedule_runs r WHERE r.function_id = s.function_id
					AND r.trigger_index = s.trigger_index AND r.state = 'running'),
				(SELECT count(*) FROM aerofn.schedule_runs r WHERE r.function_id = s.function_id
					AND r.trigger_index = s.trigger_index AND r.state = 'pending')
			FROM aerofn.schedules s
			WHERE s.enabled AND s.next_tick <= $1
			ORDER BY s.next_tick LIMIT 1000
			FOR UPDATE OF s SKIP LOCKED`, now)
		if err != nil {
			return fmt.Errorf("finding due schedules: %w", err)
		}
		due, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (dueSchedule, error) {
			var d dueSchedule
			err := row.Scan(&d.functionID, &d.index, &d.cron, &d.timezone, &d.catchUp, &d.overlap, &d.next, &d.running, &d.queued)
			return d, err
		})
		if err != nil {
			return fmt.Errorf("finding due schedules: %w", err)
		}
		batch := &pgx.Batch{}
		pending := 0
		for _, d := range due {
			pending += s.planSchedule(batch, d, now)
		}
		if pending > 0 {
			batch.Queue(`SELECT pg_notify($1, 'tick')`, WakeChannel)
		}
		if batch.Len() > 0 {
			if err := tx.SendBatch(ctx, batch).Close(); err != nil {
				return fmt.Errorf("inserting due ticks: %w", err)
			}
		}
		var next *time.Time
		if err := tx.QueryRow(ctx, `SELECT min(next_tick) FROM aerofn.schedules WHERE enabled`).Scan(&next); err != nil {
			return fmt.Errorf("finding the next tick: %w", err)
		}
		if next != nil {
			// A couple of milliseconds late rather than early: early finds
			// nothing due and costs a pass.
			w := next.Add(-s.offset).Sub(time.Now()) + 2*time.Millisecond
			wait = min(max(w, 5*time.Millisecond), maxWait)
		}
		return nil
	})
	return wait, err
}

// planSchedule queues the inserts for one due schedule and the move of its
// next_tick, and returns how many of the inserted runs are pending.
func (s *Scheduler) planSchedule(batch *pgx.Batch, d dueSchedule, now time.Time) int {
	spec, err := s.spec(d.cron, d.timezone)
	if err != nil {
		// Only a change of the parser's rules could get here: stop the
		// schedule rather than loop on it; a redeploy validates it again.
		s.log.Error("stored schedule no longer parses; it is stopped", "function_id", d.functionID,
			"trigger_index", d.index, "cron", d.cron, "error", err)
		batch.Queue(`UPDATE aerofn.schedules SET next_tick = NULL WHERE function_id = $1 AND trigger_index = $2`, d.functionID, d.index)
		return 0
	}
	runs, next := planTicks(spec, d.next, now, s.cfg.Grace, d.catchUp)
	pending := 0
	queued := d.queued
	for _, r := range runs {
		state, why := r.State, ""
		switch {
		case r.State == StateSkippedMissed:
			why = fmt.Sprintf("%s missed while no node was up; catch_up is %q", countText(r), CatchUpSkip)
		case d.overlap == OverlapSkip && d.running:
			state, why = StateSkippedOverlap, "the previous run was still going"
		case d.overlap == OverlapQueue && queued >= s.cfg.MaxQueued:
			state, why = StateSkippedOverlap, fmt.Sprintf("%d runs were already waiting for the previous run to end", queued)
		default:
			queued++
			pending++
			if r.Kind == KindCatchUp {
				why = fmt.Sprintf("one run for %s missed while no node was up; catch_up is %q", countText(r), CatchUpOnce)
			}
		}
		batch.Queue(`INSERT INTO aerofn.schedule_runs
			(function_id, trigger_index, scheduled_time, kind, state, cron, timezone, missed_count, note, finished_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, nullif($9::text, ''), CASE WHEN $5 = 'pending' THEN NULL ELSE clock_timestamp() END)
			ON CONFLICT DO NOTHING`,
			d.functionID, d.index, r.At, r.Kind, state, d.cron, d.timezone, r.Missed, why)
	}
	var nextTick *time.Time
	if !next.IsZero() {
		nextTick = &next
	}
	batch.Queue(`UPDATE aerofn.schedules SET next_tick = $3 WHERE function_id = $1 AND trigger_index = $2`, d.functionID, d.index, nextTick)
	return pending
}

func countText(r plannedRun) string {
	switch {
	case r.Capped:
		return fmt.Sprintf("at least %d ticks", r.Missed)
	case r.Missed == 1:
		return "1 tick"
	}
	return fmt.Sprintf("%d ticks", r.Missed)
}

// sweep marks as interrupted the runs whose node is gone: its session (and
// so its liveness lock) ended while the run was claimed. They are not run
// again; see doc.go for why. A run whose row is locked (its node is
// recording its end this moment, or froze doing so) is left for a later
// sweep rather than waited on.
func (s *Scheduler) sweep(ctx context.Context, conn *pgx.Conn) error {
	var n int
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `WITH gone AS (
				UPDATE aerofn.schedule_runs r SET state = 'interrupted', finished_at = clock_timestamp(),
					note = format('node %s stopped before the run ended; a tick runs at most once, so it is not run again', coalesce(r.node, 'unknown'))
				FROM (SELECT x.function_id, x.trigger_index, x.scheduled_time FROM aerofn.schedule_runs x
					WHERE x.state = 'running' AND NOT EXISTS (
						SELECT 1 FROM pg_locks l
						WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
							AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
							AND l.classid::int8 = $1 AND l.objid::int8 = x.node_key)
					FOR UPDATE SKIP LOCKED) g
				WHERE (r.function_id, r.trigger_index, r.scheduled_time) = (g.function_id, g.trigger_index, g.scheduled_time)
				RETURNING 1)
			SELECT count(*) FROM gone`, int64(cluster.NodeSpace)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			_, err := tx.Exec(ctx, `SELECT pg_notify($1, 'interrupted')`, WakeChannel)
			return err
		}
		return nil
	})
	if n > 0 && err == nil {
		s.log.Warn("runs of stopped nodes marked interrupted", "count", n)
	}
	return err
}

// prune keeps the newest KeepRuns finished runs of each schedule trigger,
// and a week of the runs of triggers that no longer exist. It needs no
// fence (it deletes only finished rows, which nothing writes again), so it
// goes through the pool and leaves the node's session free.
func (s *Scheduler) prune(ctx context.Context) error {
	if _, err := s.cfg.Pool.Exec(ctx, `DELETE FROM aerofn.schedule_runs r USING (
			SELECT s.function_id, s.trigger_index, (
				SELECT x.scheduled_time FROM aerofn.schedule_runs x
				WHERE x.function_id = s.function_id AND x.trigger_index = s.trigger_index
				ORDER BY x.scheduled_time DESC OFFSET $1 LIMIT 1) AS cutoff
			FROM aerofn.schedules s) c
		WHERE r.function_id = c.function_id AND r.trigger_index = c.trigger_index
			AND r.scheduled_time <= c.cutoff AND r.state NOT IN ('pending', 'running')`, s.cfg.KeepRuns); err != nil {
		return err
	}
	_, err := s.cfg.Pool.Exec(ctx, `DELETE FROM aerofn.schedule_runs r
		WHERE r.state NOT IN ('pending', 'running') AND r.created_at < now() - interval '7 days'
			AND NOT EXISTS (SELECT 1 FROM aerofn.schedules s WHERE s.function_id = r.function_id AND s.trigger_index = r.trigger_index)`)
	return err
}

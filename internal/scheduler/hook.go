package scheduler

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aerodb/aerofn/internal/registry"
)

// WakeChannel is the NOTIFY channel that wakes every node's scheduler: a
// schedule changed, ticks were inserted, or a run ended (a queued tick may
// start). The payload says which, for logs only.
const WakeChannel = "aerofn_schedules"

// Hook keeps aerofn.schedules in step with the registry, inside the
// registry's transaction: a deploy with a bad expression stores nothing, and
// a disable or delete has cancelled every pending run by the time it commits.
type Hook struct{}

var _ registry.Hook = Hook{}

// TriggerType implements registry.Hook.
func (Hook) TriggerType() string { return TriggerType }

// Validate implements registry.Hook: the expression, timezone and policies.
func (Hook) Validate(_ context.Context, _ pgx.Tx, t registry.Trigger, index int) error {
	_, err := ParseTrigger(t, index)
	return err
}

type storedSchedule struct {
	cron, timezone string
	enabled        bool
}

// Sync implements registry.Hook. A schedule whose expression, timezone and
// enabled state are unchanged keeps its next tick, so a redeploy neither
// loses nor repeats one; any other change starts from the next tick after
// now, so ticks that fell while a function was disabled are not "missed".
func (Hook) Sync(ctx context.Context, tx pgx.Tx, fn registry.Function) error {
	triggers, err := Triggers(fn)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT trigger_index, cron, timezone, enabled FROM aerofn.schedules
		WHERE function_id = $1 FOR UPDATE`, fn.ID)
	if err != nil {
		return fmt.Errorf("reading schedules: %w", err)
	}
	stored := map[int]storedSchedule{}
	for rows.Next() {
		var i int
		var s storedSchedule
		if err := rows.Scan(&i, &s.cron, &s.timezone, &s.enabled); err != nil {
			rows.Close()
			return fmt.Errorf("reading schedules: %w", err)
		}
		stored[i] = s
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading schedules: %w", err)
	}
	if len(stored) == 0 && len(triggers) == 0 {
		return nil
	}
	var now time.Time
	if err := tx.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return fmt.Errorf("reading the database clock: %w", err)
	}
	keep := make([]int32, 0, len(triggers))
	for _, t := range triggers {
		keep = append(keep, int32(t.Index))
		old, had := stored[t.Index]
		same := had && old.cron == t.Cron && old.timezone == t.Timezone && old.enabled == fn.Enabled
		var next *time.Time
		if n := t.Spec.Next(now); !n.IsZero() {
			next = &n
		}
		if _, err := tx.Exec(ctx, `INSERT INTO aerofn.schedules
			(function_id, trigger_index, cron, timezone, catch_up, overlap, next_tick, enabled)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (function_id, trigger_index) DO UPDATE SET
				cron = excluded.cron, timezone = excluded.timezone, catch_up = excluded.catch_up,
				overlap = excluded.overlap, enabled = excluded.enabled, updated_at = now(),
				next_tick = CASE WHEN $9 THEN schedules.next_tick ELSE excluded.next_tick END`,
			fn.ID, t.Index, t.Cron, t.Timezone, t.CatchUp, t.Overlap, next, fn.Enabled, same); err != nil {
			return fmt.Errorf("storing schedule of trigger %d: %w", t.Index, err)
		}
		if !fn.Enabled {
			if err := cancelPending(ctx, tx, fn.ID, []int32{int32(t.Index)}, "the function was disabled"); err != nil {
				return err
			}
		}
	}
	var gone []int32
	for i := range stored {
		if !slices.Contains(keep, int32(i)) {
			gone = append(gone, int32(i))
		}
	}
	if len(gone) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM aerofn.schedules WHERE function_id = $1 AND trigger_index = ANY($2)`, fn.ID, gone); err != nil {
			return fmt.Errorf("removing schedules: %w", err)
		}
		if err := cancelPending(ctx, tx, fn.ID, gone, "the schedule trigger was removed"); err != nil {
			return err
		}
	}
	return wake(ctx, tx, "sync")
}

// Remove implements registry.Hook: the function is being deleted.
func (Hook) Remove(ctx context.Context, tx pgx.Tx, fn registry.Function) error {
	tag, err := tx.Exec(ctx, `DELETE FROM aerofn.schedules WHERE function_id = $1`, fn.ID)
	if err != nil {
		return fmt.Errorf("removing schedules: %w", err)
	}
	if err := cancelPending(ctx, tx, fn.ID, nil, "the function was deleted"); err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	return wake(ctx, tx, "remove")
}

// cancelPending ends the pending runs of fn's triggers (all when indexes is
// nil): they never started and now never will.
func cancelPending(ctx context.Context, tx pgx.Tx, functionID string, indexes []int32, why string) error {
	if _, err := tx.Exec(ctx, `UPDATE aerofn.schedule_runs SET state = 'cancelled', finished_at = clock_timestamp(), note = $3
		WHERE function_id = $1 AND state = 'pending' AND ($2::int[] IS NULL OR trigger_index = ANY($2))`,
		functionID, indexes, why); err != nil {
		return fmt.Errorf("cancelling pending runs: %w", err)
	}
	return nil
}

func wake(ctx context.Context, tx pgx.Tx, why string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, WakeChannel, why); err != nil {
		return fmt.Errorf("waking schedulers: %w", err)
	}
	return nil
}

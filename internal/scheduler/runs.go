package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aerodb/aerofn/internal/db"
)

// Run is one row of aerofn.schedule_runs: a tick and what became of it.
type Run struct {
	TriggerIndex  int        `json:"trigger_index"`
	ScheduledTime time.Time  `json:"scheduled_time"`
	Kind          string     `json:"kind"`
	State         string     `json:"state"`
	Cron          string     `json:"cron"`
	Timezone      string     `json:"timezone,omitempty"`
	MissedCount   int        `json:"missed_count,omitempty"`
	Node          string     `json:"node,omitempty"`
	InvocationID  string     `json:"invocation_id,omitempty"`
	Role          string     `json:"role,omitempty"`
	Status        string     `json:"status,omitempty"`
	Error         string     `json:"error,omitempty"`
	Note          string     `json:"note,omitempty"`
	Output        string     `json:"output,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	StartedAt     *time.Time `json:"started_at,omitempty"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	// LateMS is how long after its scheduled time the run started.
	LateMS *float64 `json:"late_ms,omitempty"`
}

const runColumns = `trigger_index, scheduled_time, kind, state, cron, timezone, missed_count,
	coalesce(node, ''), coalesce(invocation_id::text, ''), coalesce(role, ''), coalesce(status, ''),
	coalesce(error, ''), coalesce(note, ''), coalesce(output, ''), created_at, started_at, finished_at`

func scanRun(row pgx.CollectableRow) (Run, error) {
	var r Run
	err := row.Scan(&r.TriggerIndex, &r.ScheduledTime, &r.Kind, &r.State, &r.Cron, &r.Timezone, &r.MissedCount,
		&r.Node, &r.InvocationID, &r.Role, &r.Status, &r.Error, &r.Note, &r.Output, &r.CreatedAt, &r.StartedAt, &r.FinishedAt)
	if err != nil {
		return r, err
	}
	if r.StartedAt != nil {
		ms := float64(r.StartedAt.Sub(r.ScheduledTime).Microseconds()) / 1000
		r.LateMS = &ms
	}
	return r, nil
}

// RunsQuery selects runs of one function, newest first.
type RunsQuery struct {
	FunctionID string
	Limit      int       // 1-1000, default 100
	State      string    // only runs in this state, when set
	Before     time.Time // only runs scheduled before this, when set (paging)
}

// Runs lists a function's recent runs.
func (s *Scheduler) Runs(ctx context.Context, q RunsQuery) ([]Run, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	var before *time.Time
	if !q.Before.IsZero() {
		before = &q.Before
	}
	rows, err := s.cfg.Pool.Query(ctx, `SELECT `+runColumns+` FROM aerofn.schedule_runs
		WHERE function_id = $1 AND ($2 = '' OR state = $2) AND ($3::timestamptz IS NULL OR scheduled_time < $3)
		ORDER BY scheduled_time DESC LIMIT $4`, q.FunctionID, q.State, before, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanRun)
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	if out == nil {
		out = []Run{}
	}
	return out, nil
}

func (s *Scheduler) run(ctx context.Context, functionID string, index int, at time.Time) (Run, error) {
	rows, err := s.cfg.Pool.Query(ctx, `SELECT `+runColumns+` FROM aerofn.schedule_runs
		WHERE function_id = $1 AND trigger_index = $2 AND scheduled_time = $3`, functionID, index, at)
	if err != nil {
		return Run{}, fmt.Errorf("reading run: %w", err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, db.ErrNotFound
	}
	if err != nil {
		return Run{}, fmt.Errorf("reading run: %w", err)
	}
	return r, nil
}

// Schedule is the stored state of one schedule trigger.
type Schedule struct {
	TriggerIndex int        `json:"trigger_index"`
	Cron         string     `json:"cron"`
	Timezone     string     `json:"timezone,omitempty"`
	CatchUp      string     `json:"catch_up"`
	Overlap      string     `json:"overlap"`
	Enabled      bool       `json:"enabled"`
	NextTick     *time.Time `json:"next_tick"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

// Schedules returns the stored schedules of a function, by trigger index.
func (s *Scheduler) Schedules(ctx context.Context, functionID string) ([]Schedule, error) {
	rows, err := s.cfg.Pool.Query(ctx, `SELECT trigger_index, cron, timezone, catch_up, overlap, enabled, next_tick, updated_at
		FROM aerofn.schedules WHERE function_id = $1 ORDER BY trigger_index`, functionID)
	if err != nil {
		return nil, fmt.Errorf("listing schedules: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Schedule, error) {
		var sc Schedule
		err := r.Scan(&sc.TriggerIndex, &sc.Cron, &sc.Timezone, &sc.CatchUp, &sc.Overlap, &sc.Enabled, &sc.NextTick, &sc.UpdatedAt)
		return sc, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing schedules: %w", err)
	}
	if out == nil {
		out = []Schedule{}
	}
	return out, nil
}

package sqlexec

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/latency"
)

// BenchResult compares one statement run through the Executor (the whole
// db_query path: acquire, BEGIN, identity, statement, COMMIT, DISCARD ALL)
// with the same statement run by bare pgx on an ordinary pool.
type BenchResult struct {
	SQL      string
	Executor latency.Summary
	Bare     latency.Summary
}

// BenchCompare runs sql n times each way, one call at a time, after a short
// warm-up, and returns both distributions. bare is any pool that may run sql
// (the admin pool is fine: row-level security costs little next to the round
// trips being measured).
func BenchCompare(ctx context.Context, e *Executor, bare *pgxpool.Pool, p auth.Principal, sql string, params []any, n int) (BenchResult, error) {
	out := BenchResult{SQL: sql}
	if n < 1 {
		n = 1
	}
	warm := min(n/10+1, 50)
	runExec := func() error {
		_, err := e.Query(ctx, p, sql, params)
		return err
	}
	runBare := func() error {
		rows, err := bare.Query(ctx, sql, params...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if _, err := rows.Values(); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		return rows.Err()
	}
	measure := func(f func() error) ([]time.Duration, error) {
		for range warm {
			if err := f(); err != nil {
				return nil, err
			}
		}
		ds := make([]time.Duration, 0, n)
		for range n {
			start := time.Now()
			if err := f(); err != nil {
				return nil, err
			}
			ds = append(ds, time.Since(start))
		}
		return ds, nil
	}
	ds, err := measure(runExec)
	if err != nil {
		return out, fmt.Errorf("benchmarking executor: %w", err)
	}
	out.Executor = latency.Summarize(ds)
	if ds, err = measure(runBare); err != nil {
		return out, fmt.Errorf("benchmarking bare pgx: %w", err)
	}
	out.Bare = latency.Summarize(ds)
	return out, nil
}

package sqlexec

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/auth"
)

// Distribution summarises latencies.
type Distribution struct {
	N             int
	P50, P95, P99 time.Duration
	Mean          time.Duration
}

// Summarize sorts ds and summarises it.
func Summarize(ds []time.Duration) Distribution {
	if len(ds) == 0 {
		return Distribution{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return Distribution{N: len(ds), P50: at(0.50), P95: at(0.95), P99: at(0.99), Mean: sum / time.Duration(len(ds))}
}

// BenchResult compares one statement run through the Executor (the whole
// db_query path: acquire, BEGIN, identity, statement, COMMIT, DISCARD ALL)
// with the same statement run by bare pgx on an ordinary pool.
type BenchResult struct {
	SQL      string
	Executor Distribution
	Bare     Distribution
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
	out.Executor = Summarize(ds)
	if ds, err = measure(runBare); err != nil {
		return out, fmt.Errorf("benchmarking bare pgx: %w", err)
	}
	out.Bare = Summarize(ds)
	return out, nil
}

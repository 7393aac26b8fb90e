package dbtrigger

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/registry"
)

// BenchConfig sets up BenchEvents on a database that a running node (or
// several) serves.
type BenchConfig struct {
	Pool     *pgxpool.Pool   // admin pool on that database
	Registry *registry.Store // to deploy the benchmark's functions (with the dbtrigger hook added)
	Wasm     []byte          // a trivial function (it should succeed at once)

	LatencyEvents int     // events of the latency phase (default 2000)
	LatencyRate   float64 // events per second offered in the latency phase (default 500)
	Events        int     // events of the throughput phase (default 20000)
	Writers       int     // concurrent writer connections (default 4)
	BatchRows     int     // rows per transaction in the throughput phase (default 50)
}

// BenchResult is what BenchEvents measured.
type BenchResult struct {
	// Latency is commit-to-handler-start of each event of the latency
	// phase: from the moment the writer's COMMIT returned to the moment the
	// invoker began the call (the invocation record's start time).
	Latency     []time.Duration
	LatencyRate float64 // events per second actually offered in that phase
	// Events were delivered in Elapsed, from the first commit of the
	// throughput phase to the end of the last call: PerSecond is the
	// sustained delivery rate with writers faster than delivery.
	Events    int
	Elapsed   time.Duration
	PerSecond float64
}

// BenchEvents measures database-trigger delivery end to end, through the
// real capture triggers, dispatcher, River and invoker of the node(s)
// serving cfg.Pool's database. It creates two tables and two functions
// (bench_latency, bench_throughput) and leaves them there.
func BenchEvents(ctx context.Context, cfg BenchConfig) (BenchResult, error) {
	if cfg.LatencyEvents <= 0 {
		cfg.LatencyEvents = 2000
	}
	if cfg.LatencyRate <= 0 {
		cfg.LatencyRate = 500
	}
	if cfg.Events <= 0 {
		cfg.Events = 20000
	}
	if cfg.Writers <= 0 {
		cfg.Writers = 4
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 50
	}
	var res BenchResult
	if _, err := cfg.Pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_latency (id bigserial PRIMARY KEY, payload text);
		CREATE TABLE IF NOT EXISTS bench_throughput (id bigserial PRIMARY KEY, payload text)`); err != nil {
		return res, fmt.Errorf("creating bench tables: %w", err)
	}
	for _, name := range []string{"bench_latency", "bench_throughput"} {
		cfgFn := registry.Config{Triggers: []registry.Trigger{{Type: TriggerType,
			Database: &registry.DatabaseTrigger{Table: "public." + name, Events: []string{"INSERT"}}}}}
		if _, err := cfg.Registry.Deploy(ctx, registry.DeployInput{Name: "bench-" + name[6:], Wasm: cfg.Wasm, Config: &cfgFn}); err != nil {
			return res, fmt.Errorf("deploying bench function: %w", err)
		}
	}

	// Latency: single-row transactions at a steady rate; each writer learns
	// its event's id (currval of the capture sequence) before it commits.
	commits := make(map[int64]time.Time, cfg.LatencyEvents)
	var mu sync.Mutex
	interval := time.Duration(float64(time.Second) * float64(cfg.Writers) / cfg.LatencyRate)
	var next atomic.Int64
	start := time.Now()
	err := parallel(cfg.Writers, func(w int) error {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for next.Add(1) <= int64(cfg.LatencyEvents) {
			<-tick.C
			var id int64
			err := pgx.BeginFunc(ctx, cfg.Pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO bench_latency (payload) VALUES ('x')`); err != nil {
					return err
				}
				return tx.QueryRow(ctx, `SELECT currval('aerofn.events_id_seq')`).Scan(&id)
			})
			at := time.Now()
			if err != nil {
				return fmt.Errorf("writing latency event: %w", err)
			}
			mu.Lock()
			commits[id] = at
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.LatencyRate = float64(cfg.LatencyEvents) / time.Since(start).Seconds()
	starts, err := waitStarts(ctx, cfg.Pool, "bench-latency", cfg.LatencyEvents)
	if err != nil {
		return res, err
	}
	for id, at := range commits {
		if s, ok := starts[id]; ok {
			res.Latency = append(res.Latency, s.Sub(at))
		}
	}
	slices.Sort(res.Latency)

	// Throughput: writers insert as fast as they can, in batches; delivery
	// is measured from the first commit to the end of the last call.
	var rows atomic.Int64
	start = time.Now()
	err = parallel(cfg.Writers, func(int) error {
		for {
			n := rows.Add(int64(cfg.BatchRows))
			k := int64(cfg.BatchRows)
			if n > int64(cfg.Events) {
				k -= n - int64(cfg.Events)
			}
			if k <= 0 {
				return nil
			}
			if _, err := cfg.Pool.Exec(ctx, `INSERT INTO bench_throughput (payload) SELECT 'x' FROM generate_series(1, $1)`, k); err != nil {
				return fmt.Errorf("writing throughput events: %w", err)
			}
		}
	})
	if err != nil {
		return res, err
	}
	if _, err := waitStarts(ctx, cfg.Pool, "bench-throughput", cfg.Events); err != nil {
		return res, err
	}
	var end time.Time
	if err := cfg.Pool.QueryRow(ctx, `SELECT max(created_at + duration_ms * interval '1 ms') FROM aerofn.invocations
		WHERE function_name = 'bench-throughput'`).Scan(&end); err != nil {
		return res, fmt.Errorf("reading last call: %w", err)
	}
	res.Events, res.Elapsed = cfg.Events, end.Sub(start)
	res.PerSecond = float64(res.Events) / res.Elapsed.Seconds()
	return res, nil
}

func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// waitStarts waits until a function has n successful invocation records
// (written in the background, a moment after each call) and returns each
// one's start time by event id.
func waitStarts(ctx context.Context, pool *pgxpool.Pool, fn string, n int) (map[int64]time.Time, error) {
	deadline := time.Now().Add(5*time.Minute + time.Duration(n)*time.Millisecond)
	for {
		var got int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM aerofn.invocations WHERE function_name = $1 AND status = 'success'`, fn).Scan(&got); err != nil {
			return nil, fmt.Errorf("counting calls: %w", err)
		}
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("waiting for %s: %d of %d events delivered", fn, got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rows, err := pool.Query(ctx, `SELECT request_id::bigint, created_at FROM aerofn.invocations WHERE function_name = $1 AND status = 'success'`, fn)
	if err != nil {
		return nil, fmt.Errorf("reading calls: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]time.Time, n)
	for rows.Next() {
		var id int64
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return nil, fmt.Errorf("reading calls: %w", err)
		}
		if prev, ok := out[id]; !ok || at.Before(prev) {
			out[id] = at
		}
	}
	return out, rows.Err()
}

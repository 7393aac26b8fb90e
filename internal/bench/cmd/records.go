package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/bench"
	"github.com/aerodb/aerofn/internal/latency"
	"github.com/aerodb/aerofn/internal/records"
	"github.com/aerodb/aerofn/internal/server"
)

// recordsSection measures GET .../stats over a million records, and the
// cost of writing invocation records: without the insert trigger (live
// logs and per-minute counts), with it, and with it while the pruner
// deletes in the background.
func recordsSection(ctx context.Context, srv *server.Server, n int) (bench.Section, error) {
	smoke := n < 1000
	seeded, perRound, rounds, statsCalls := 1_000_000, 10_000, 3, min(max(n/10, 20), 200)
	if smoke {
		seeded, perRound, rounds, statsCalls = 10_000, 1_000, 1, 10
	}
	// The busy function's calls spread over the last 20 hours, in
	// statements of 100,000 rows (each one trigger run).
	const chunk = 100_000
	t0 := time.Now()
	for done := 0; done < seeded; done += chunk {
		if _, err := srv.Pool.Exec(ctx, `INSERT INTO aerofn.invocations
			(id, function_id, function_name, version, trigger, status, http_status, duration_ms, memory_peak_mb, role, logs, created_at)
			SELECT gen_random_uuid(), '00000000-0000-0000-0000-000000000001', 'busy', 1, 'http',
				CASE WHEN i % 50 = 0 THEN 'error' ELSE 'success' END, CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END,
				random() * 20, 2 + random(), 'anon', '[{"level":"info","message":"hello"}]', now() - (i * (72000.0 / $2)) * interval '1 second'
			FROM generate_series($1::int, $1::int + $3 - 1) i`, done, seeded, min(chunk, seeded-done)); err != nil {
			return bench.Section{}, fmt.Errorf("seeding records: %w", err)
		}
	}
	if _, err := srv.Pool.Exec(ctx, `VACUUM ANALYZE aerofn.invocations`); err != nil {
		return bench.Section{}, err
	}
	fmt.Fprintf(os.Stderr, "records: seeded %d in %s\n", seeded, time.Since(t0).Round(time.Second))

	svc, _ := auth.Sign(jwtSecret, auth.RoleService, "", time.Hour)
	client := &http.Client{}
	var statsLat []time.Duration
	for i := range statsCalls + 2 {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+srv.Addr()+"/admin/v1/functions/busy/stats", nil)
		req.Header.Set("Authorization", "Bearer "+svc)
		t := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return bench.Section{}, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return bench.Section{}, fmt.Errorf("stats: HTTP %d", resp.StatusCode)
		}
		if i >= 2 { // warm-up
			statsLat = append(statsLat, time.Since(t))
		}
	}
	rows := []bench.Row{{Name: fmt.Sprintf("GET /admin/v1/functions/busy/stats over %d records (24 h window)", seeded), Dist: latency.Summarize(statsLat)}}
	bench.Check(&rows[0], 100*time.Millisecond)
	if !smoke {
		// What stats did before the per-minute counts: count and sort
		// every record of the window.
		var exact []time.Duration
		for range 3 {
			t := time.Now()
			if _, err := srv.Pool.Exec(ctx, `SELECT status, coalesce(http_status, 0), count(*) FROM aerofn.invocations
				WHERE function_name = 'busy' AND created_at >= now() - interval '24 hours' GROUP BY 1, 2`); err != nil {
				return bench.Section{}, err
			}
			if _, err := srv.Pool.Exec(ctx, `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms),
				percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms), max(duration_ms), percentile_cont(0.5) WITHIN GROUP (ORDER BY memory_peak_mb),
				percentile_cont(0.95) WITHIN GROUP (ORDER BY memory_peak_mb), percentile_cont(0.99) WITHIN GROUP (ORDER BY memory_peak_mb), max(memory_peak_mb)
				FROM aerofn.invocations WHERE function_name = 'busy' AND created_at >= now() - interval '24 hours'`); err != nil {
				return bench.Section{}, err
			}
			exact = append(exact, time.Since(t))
		}
		rows = append(rows, bench.Row{Name: "the same stats counted and sorted over every record (before, SQL only)", Dist: latency.Summarize(exact)})
	}
	fmt.Fprintln(os.Stderr, "records: stats done")

	// Writing: the same records through a Writer, by batches of up to 500,
	// interleaved round by round in three modes. The pruner caps busy at
	// 100,000 records, which keeps it deleting (1,000 rows, 100 ms pause)
	// through the pruning rounds.
	w := records.NewWriter(records.WriterConfig{Pool: srv.Pool})
	if err := w.Start(ctx); err != nil {
		return bench.Section{}, err
	}
	defer w.Stop(context.WithoutCancel(ctx)) //nolint:errcheck
	pruner := records.NewPruner(srv.Pool, records.RetentionConfig{MaxAge: 7 * 24 * time.Hour, MaxPerFunction: 100_000}, nil, nil)
	write := func() time.Duration {
		t := time.Now()
		for range perRound {
			w.Add(records.Record{ID: uuid.NewString(), FunctionID: uuid.NewString(), Function: "bench-write", Version: 1, Trigger: "http",
				Status: "success", HTTPStatus: 200, DurationMS: 1.5, MemoryPeakMB: 2, Role: "anon", Timestamp: time.Now()})
		}
		w.Flush()
		return time.Since(t) / time.Duration(perRound)
	}
	modes := []string{"no trigger (before live logs and per-minute counts)", "insert trigger", "insert trigger, pruner deleting"}
	perRecord := make([][]time.Duration, len(modes))
	var pruned int64
	for range rounds {
		for m := range modes {
			setTrigger := "ENABLE"
			if m == 0 {
				setTrigger = "DISABLE"
			}
			if _, err := srv.Pool.Exec(ctx, `ALTER TABLE aerofn.invocations `+setTrigger+` TRIGGER invocations_inserted`); err != nil {
				return bench.Section{}, err
			}
			var stop func() int64
			if m == 2 {
				pctx, cancel := context.WithCancel(ctx)
				done := make(chan int64)
				go func() {
					var total int64
					for pctx.Err() == nil {
						res, _ := pruner.PruneOnce(pctx)
						total += res.ByAge + res.ByCount
						if res.ByAge+res.ByCount == 0 {
							break
						}
					}
					done <- total
				}()
				stop = func() int64 { cancel(); return <-done }
			}
			perRecord[m] = append(perRecord[m], write())
			if stop != nil {
				pruned += stop()
			}
		}
	}
	if _, err := srv.Pool.Exec(ctx, `ALTER TABLE aerofn.invocations ENABLE TRIGGER invocations_inserted`); err != nil {
		return bench.Section{}, err
	}
	for m, name := range modes {
		d := latency.Summarize(perRecord[m])
		rows = append(rows, bench.Row{Name: "record write, " + name, Dist: d,
			Note: fmt.Sprintf("%.0f records/s (%d rounds of %d)", float64(time.Second)/float64(d.P50), rounds, perRound)})
	}
	fmt.Fprintln(os.Stderr, "records done")
	return bench.Section{
		Title: "Invocation records: stats over a million, and the cost of recording with pruning",
		About: fmt.Sprintf("One function with %d records over the last 20 hours (seeded with generate_series, through the insert trigger). Stats: sequential `GET .../stats` over loopback with the default 24 h window; counts and maxima come from per-minute totals, percentiles from the newest 10,000 records. Recording: a records.Writer writes %d records per round (COPY batches of up to 500, as the server does), rounds interleaved across the three modes; a row is the time per record from the first Add to Flush returning. The trigger adds each batch to the per-minute totals and sends the live-logs notice. In the pruning mode the pruner runs rounds the whole time, capping the seeded function at 100,000 records in batches of 1,000 with its 100 ms pause (%d records deleted during the measurement).", seeded, perRound, pruned),
		Rows:  rows,
		Ratio: fmt.Sprintf("Per record at p50: trigger / no trigger %.2fx; trigger with pruning / trigger alone %.2fx.",
			ratio(latency.Summarize(perRecord[1]).P50, latency.Summarize(perRecord[0]).P50), ratio(latency.Summarize(perRecord[2]).P50, latency.Summarize(perRecord[1]).P50)),
	}, nil
}

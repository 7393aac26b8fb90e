package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aerodb/aerofn/internal/bench"
	"github.com/aerodb/aerofn/internal/dbtrigger"
	"github.com/aerodb/aerofn/internal/latency"
	"github.com/aerodb/aerofn/internal/server"
	"github.com/aerodb/aerofn/internal/testenv/wat"
)

func init() { extraSections = append(extraSections, dbEvents) }

// dbEvents measures database-trigger delivery (internal/dbtrigger): commit
// to handler start, and sustained events per second, for a trivial function.
func dbEvents(ctx context.Context, srv *server.Server, _ string, n int) (bench.Section, error) {
	noop := wat.Compile(wat.Noop)
	res, err := dbtrigger.BenchEvents(ctx, dbtrigger.BenchConfig{Pool: srv.Pool, Registry: srv.Registry, Wasm: noop,
		LatencyEvents: n, LatencyRate: 500, Events: max(10*n, 20000)})
	if err != nil {
		return bench.Section{}, fmt.Errorf("benchmarking database events: %w", err)
	}
	lat := bench.Row{Name: fmt.Sprintf("commit → handler start, %.0f single-row commits/s", res.LatencyRate), Dist: latency.Summarize(res.Latency)}
	bench.Check(&lat, 100*time.Millisecond)
	met := "met"
	if res.PerSecond < 2000 {
		met = "NOT met"
	}
	tput := bench.Row{Name: "sustained delivery, writers ahead of delivery", Dist: latency.Summary{N: res.Events}, Target: "≥ 2,000 events/s", Met: met,
		Note: fmt.Sprintf("%.0f events/s (%d events in %s)", res.PerSecond, res.Events, res.Elapsed.Round(time.Millisecond))}
	fmt.Fprintln(os.Stderr, "database events done")
	return bench.Section{
		Title: "Database triggers: commit to handler start, and sustained events per second",
		About: "One node, a trivial function (`(i32.const 0)`) on INSERT. Latency: 4 writers commit single-row transactions at a steady rate; each event's latency runs from the moment its writer's COMMIT returned to the moment the invoker began the call (the invocation record's start), through the capture trigger, NOTIFY, the dispatcher, River and a worker. Throughput: 4 writers insert 50-row transactions as fast as they can, and the figure is events delivered per second from the first commit to the end of the last call.",
		Rows:  []bench.Row{lat, tput},
	}, nil
}

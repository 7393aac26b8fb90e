package dbtrigger_test

import (
	"context"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/dbtrigger"
	"github.com/aerodb/aerofn/internal/testenv"
)

// BenchmarkDelivery measures database-trigger delivery on one in-process
// node with a trivial function: commit-to-handler-start p50/p95 (b.N
// single-row commits at 500/s) and sustained events/s (10·b.N events, at
// least 1,000, written faster than they are delivered). make bench runs the
// same measurement through internal/bench/cmd.
func BenchmarkDelivery(b *testing.B) {
	e := testenv.Start(b)
	b.ResetTimer()
	res, err := dbtrigger.BenchEvents(context.Background(), dbtrigger.BenchConfig{Pool: e.Server.Pool, Registry: e.Server.Registry,
		Wasm: wat(b, watOK), LatencyEvents: b.N, LatencyRate: 500, Events: max(10*b.N, 1000)})
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	at := func(q float64) time.Duration {
		return res.Latency[min(len(res.Latency)-1, int(q*float64(len(res.Latency))))]
	}
	b.ReportMetric(float64(at(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(at(0.95).Microseconds())/1000, "p95-ms")
	b.ReportMetric(res.PerSecond, "events/s")
}

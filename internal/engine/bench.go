package engine

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// LatencySummary describes a set of call durations.
type LatencySummary struct {
	N                  int
	P50, P95, P99, Max time.Duration
}

func (s LatencySummary) String() string {
	return fmt.Sprintf("n=%d p50=%v p95=%v p99=%v max=%v", s.N, s.P50, s.P95, s.P99, s.Max)
}

// Summarize computes percentiles of durations (which it sorts).
func Summarize(durations []time.Duration) LatencySummary {
	if len(durations) == 0 {
		return LatencySummary{}
	}
	slices.Sort(durations)
	at := func(p float64) time.Duration {
		return durations[min(len(durations)-1, int(p*float64(len(durations))))]
	}
	return LatencySummary{N: len(durations), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: durations[len(durations)-1]}
}

// MeasureColdStart runs m n times, one after another, and summarizes how long
// each whole Run took: new store, instantiate, _initialize (unless the module
// is pre-initialised), handler, close.
// That is the cold start every call pays, since no instance is reused. It is
// meant for benchmarks and `make bench`; any call that does not succeed is an
// error.
func (e *Engine) MeasureColdStart(ctx context.Context, m *Module, input []byte, lim Limits, n int) (LatencySummary, error) {
	durations := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		res := e.Run(ctx, m, input, lim, nil)
		d := time.Since(t0)
		if res.Status != StatusSuccess {
			return LatencySummary{}, fmt.Errorf("measuring cold start: call ended %s: %v", res.Status, res.Err)
		}
		durations = append(durations, d)
	}
	return Summarize(durations), nil
}

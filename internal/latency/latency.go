// Package latency summarises a set of measured durations: the one summary
// that the engine's cold-start measurement, the db_query comparison and the
// benchmark report all print.
package latency

import (
	"fmt"
	"slices"
	"time"
)

// Summary describes a set of durations. A percentile is the sample at that
// rank (no interpolation).
type Summary struct {
	N                  int
	P50, P95, P99, Max time.Duration
	Mean               time.Duration
}

func (s Summary) String() string {
	return fmt.Sprintf("n=%d p50=%v p95=%v p99=%v max=%v", s.N, s.P50, s.P95, s.P99, s.Max)
}

// Summarize sorts ds and summarises it; an empty ds gives the zero Summary.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return Summary{N: len(ds), P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: ds[len(ds)-1], Mean: sum / time.Duration(len(ds))}
}

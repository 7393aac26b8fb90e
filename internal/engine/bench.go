package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/aerodb/aerofn/internal/latency"
)

// MeasureColdStart runs m n times, one after another, and summarizes how long
// each whole Run took: new store, instantiate, _initialize (unless the module
// is pre-initialised), handler, close.
// That is the cold start every call pays, since no instance is reused. It is
// meant for benchmarks and `make bench`; any call that does not succeed is an
// error.
func (e *Engine) MeasureColdStart(ctx context.Context, m *Module, input []byte, lim Limits, n int) (latency.Summary, error) {
	durations := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		res := e.Run(ctx, m, input, lim, nil)
		d := time.Since(t0)
		if res.Status != StatusSuccess {
			return latency.Summary{}, fmt.Errorf("measuring cold start: call ended %s: %v", res.Status, res.Err)
		}
		durations = append(durations, d)
	}
	return latency.Summarize(durations), nil
}

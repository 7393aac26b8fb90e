package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/aerodb/aerofn/internal/latency"
)

// MeasureColdStart runs m n times, one after another, and summarizes how long
// each whole Run took: an instance in the module's initial state (new, or
// for a pre-initialised module one reset after an earlier call, reuse.go),
// _initialize (unless the module is pre-initialised), handler, and closing
// or resetting the instance. That is the start every call pays. It is
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

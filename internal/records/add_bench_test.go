package records

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkAdd: counting a call in the metrics and queueing its record,
// on the caller's path.
func BenchmarkAdd(b *testing.B) {
	w := NewWriter(WriterConfig{Registry: prometheus.NewRegistry()})
	go func() {
		for range w.ch {
		}
	}()
	r := Record{ID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", FunctionID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", Function: "echo-wat",
		Version: 1, Trigger: "http", Status: "success", HTTPStatus: 200, DurationMS: 0.02, MemoryPeakMB: 1, Role: "anon",
		RequestID: "bench-echo-wat-c64-r0", Timestamp: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		w.Add(r)
	}
}

// BenchmarkBatchEncode: a batch's stdout lines and COPY rows, in the
// background writer, per record.
func BenchmarkBatchEncode(b *testing.B) {
	w := NewWriter(WriterConfig{Stdout: discard{}})
	batch := make([]Record, 200)
	for i := range batch {
		batch[i] = Record{ID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", FunctionID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", Function: "echo-wat",
			Version: 1, Trigger: "http", Status: "success", HTTPStatus: 200, DurationMS: 0.02, MemoryPeakMB: 1, Role: "anon",
			RequestID: "bench-echo-wat-c64-r0", Timestamp: time.Now()}
	}
	b.ReportAllocs()
	for b.Loop() {
		w.printLines(batch)
		for _, r := range batch {
			_ = row(r)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/record")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

package engine

import (
	"context"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/latency"
)

// BenchmarkColdStart is instantiate + call + close of a tiny module, the
// fixed cost of every invocation.
func BenchmarkColdStart(b *testing.B) {
	e := newEngine(b, Config{})
	benchColdStart(b, e, load(b, e, "hello"), nil)
}

// BenchmarkColdStartGo is the same for a Go guest, examples/hello (built, or
// taken from bin/examples), with and without pre-initialisation.
func BenchmarkColdStartGo(b *testing.B) {
	wasm := goGuest(b, "hello")
	input := []byte(`{"trigger":"http","method":"POST","path":"/","headers":{},"query":{},"body":{"name":"World"},"user_id":null,"role":"anon","request_id":"r"}`)
	for _, c := range []struct {
		name    string
		disable bool
	}{{"preinit", false}, {"init-per-call", true}} {
		b.Run(c.name, func(b *testing.B) {
			e := goEngine(b, Config{DisablePreinit: c.disable})
			m := loadBytes(b, e, "hello", wasm)
			if ok, _ := m.Preinitialized(); ok == c.disable {
				b.Fatalf("pre-initialised: %v", ok)
			}
			benchColdStart(b, e, m, input)
		})
	}
}

func benchColdStart(b *testing.B, e *Engine, m *Module, input []byte) {
	ctx := context.Background()
	durations := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		t0 := time.Now()
		res := e.Run(ctx, m, input, Limits{}, nil)
		durations = append(durations, time.Since(t0))
		if res.Status != StatusSuccess {
			b.Fatal(res.Err)
		}
	}
	s := latency.Summarize(durations)
	b.ReportMetric(float64(s.P50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(s.P95.Nanoseconds()), "p95-ns")
	b.ReportMetric(float64(s.P99.Nanoseconds()), "p99-ns")
}

func BenchmarkColdStartParallel(b *testing.B) {
	e := newEngine(b, Config{})
	m := load(b, e, "hello")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res := e.Run(context.Background(), m, nil, Limits{}, nil); res.Status != StatusSuccess {
				b.Error(res.Err)
				return
			}
		}
	})
}

func BenchmarkEcho1KiB(b *testing.B) {
	e := newEngine(b, Config{})
	m := load(b, e, "echo")
	in := make([]byte, 1024)
	for b.Loop() {
		if res := e.Run(context.Background(), m, in, Limits{}, nil); res.Status != StatusSuccess {
			b.Fatal(res.Err)
		}
	}
}

func BenchmarkLoadFromDisk(b *testing.B) {
	dir := b.TempDir()
	wasm := fixture(b, "echo")
	fetch := func() ([]byte, error) { return wasm, nil }
	e := newEngine(b, Config{CacheDir: dir})
	if _, err := e.Load("echo", fetch); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		e2, err := New(Config{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e2.Load("echo", fetch); err != nil {
			b.Fatal(err)
		}
		e2.Close()
	}
}

// TestColdStart reports the percentiles of a small run and checks they are
// in the expected range, far above the target so it does not flake on a
// loaded machine or under -race.
func TestColdStart(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "hello")
	s, err := e.MeasureColdStart(context.Background(), m, nil, Limits{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cold start: %v", s)
	if s.P50 > 2*time.Millisecond {
		t.Fatalf("cold start p50 %v", s.P50)
	}
}

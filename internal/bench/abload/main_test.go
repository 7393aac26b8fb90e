package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	const page = `# HELP aerofn_run_gate_wait_seconds Time a call waited at the run gate.
# TYPE aerofn_run_gate_wait_seconds histogram
aerofn_run_gate_wait_seconds_bucket{le="0"} 90
aerofn_run_gate_wait_seconds_bucket{le="0.001"} 95
aerofn_run_gate_wait_seconds_bucket{le="+Inf"} 100
aerofn_run_gate_wait_seconds_sum 0.25
aerofn_run_gate_wait_seconds_count 100
# TYPE go_memstats_mallocs_total counter
go_memstats_mallocs_total 1.234567e+06
go_memstats_frees_total 1.2e+06
`
	got := parseMetrics(strings.NewReader(page))
	want := metrics{gateCount: 100, gateFree: 90, gateSum: 0.25, mallocs: 1234567}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if d := got.sub(metrics{gateCount: 40, gateFree: 30, gateSum: 0.05, mallocs: 234567}); d.gateCount != 60 || d.gateFree != 60 || d.mallocs != 1e6 {
		t.Fatalf("sub: %+v", d)
	}
}

func TestPGDelta(t *testing.T) {
	before := map[int]time.Duration{10: time.Second, 11: 2 * time.Second, 12: time.Second}
	// 10 grew by 30 ms, 11 did not, 12 ended, 13 started and used 20 ms.
	after := map[int]time.Duration{10: time.Second + 30*time.Millisecond, 11: 2 * time.Second, 13: 20 * time.Millisecond}
	if d := pgDelta(before, after); d != 50*time.Millisecond {
		t.Fatal(d)
	}
}

func TestParseTargets(t *testing.T) {
	var cfg config
	if err := cfg.parse("1, 64", "echo-wat", "."); err != nil {
		t.Fatal(err)
	}
	if len(cfg.levels) != 2 || cfg.levels[1] != 64 || len(cfg.targets) != 1 || len(cfg.targets[0].wasm) == 0 {
		t.Fatalf("%+v", cfg)
	}
	if err := cfg.parse("0", "echo-wat", "."); err == nil {
		t.Fatal("-c 0: no error")
	}
	if err := cfg.parse("1", "nosuch", t.TempDir()); err == nil {
		t.Fatal("missing module: no error")
	}
}

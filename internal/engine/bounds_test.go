package engine

import (
	"strings"
	"sync"
	"testing"
)

// probeWAT's handler does what the length of its event says: 0 grows
// memory by a page and writes into it; 1-4 read or write past the end of
// its one page (just past it, straddling it, at 512 MiB, past 4 GiB with a
// static offset), each of which must trap; 5 reads the last word of the
// page, which must not.
const probeWAT = `(module
  (import "aerodb" "input_len" (func $input_len (result i32)))
  (memory (export "memory") 1)
  (func (export "handler") (result i32)
    (local $n i32)
    (local.set $n (call $input_len))
    (if (i32.eqz (local.get $n)) (then
      (drop (memory.grow (i32.const 1)))
      (i32.store (i32.const 65540) (i32.const -1))
      (return (i32.const 0))))
    (if (i32.eq (local.get $n) (i32.const 1)) (then (drop (i32.load (i32.const 65536)))))
    (if (i32.eq (local.get $n) (i32.const 2)) (then (drop (i64.load (i32.const 65532)))))
    (if (i32.eq (local.get $n) (i32.const 3)) (then (i32.store (i32.const 0x20000000) (i32.const 1))))
    (if (i32.eq (local.get $n) (i32.const 4)) (then (drop (i32.load offset=16 (i32.const -8)))))
    (if (i32.eq (local.get $n) (i32.const 5)) (then (drop (i32.load (i32.const 65532)))))
    (i32.const 0)))`

// Every access past a memory's current size traps, with bounds checks in
// the code or without them (the reservation and its guard pages catch it),
// also on a slot whose previous call had grown the memory over that
// address.
func TestOutOfBoundsAccessTraps(t *testing.T) {
	for name, cfg := range map[string]Config{
		"checked":      {PoolSlots: 1},
		"elided":       {PoolSlots: 1, ElideBoundsChecks: true},
		"without-pool": {DisablePooling: true},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEngine(t, cfg)
			if got, want := e.BoundsChecksElided(), name != "checked"; got != want {
				t.Fatalf("bounds checks elided: %v, want %v", got, want)
			}
			m := loadWAT(t, e, "probe", probeWAT)
			for _, n := range []int{1, 2, 3, 4} {
				wantStatus(t, run(t, e, m, "", Limits{}, nil), StatusSuccess) // grows over 65536
				res := run(t, e, m, strings.Repeat("x", n), Limits{}, nil)
				wantStatus(t, res, StatusError)
				if !strings.Contains(res.Err.Error(), "out of bounds") {
					t.Fatalf("probe %d: %v", n, res.Err)
				}
			}
			wantStatus(t, run(t, e, m, "xxxxx", Limits{}, nil), StatusSuccess)
		})
	}
}

// The memory caps hold on an engine without bounds checks: the slot's
// size and the call's limit (TestPoolMemoryCap's module), and no state
// crosses calls on one slot (TestPoolFreshStatePerCall's).
func TestElidedBoundsChecksLimits(t *testing.T) {
	e := newEngine(t, Config{PoolSlots: 2, MaxMemoryBytes: 2 << 20, ElideBoundsChecks: true})
	if !e.BoundsChecksElided() {
		t.Fatal("bounds checks not elided")
	}
	m := load(t, e, "membomb")
	res := run(t, e, m, "", Limits{MemoryBytes: 64 << 20}, nil)
	wantStatus(t, res, StatusMemoryExceeded)
	if res.MemoryPeak > 2<<20 {
		t.Fatalf("memory peak %d over the slot's 2 MiB", res.MemoryPeak)
	}
	res = run(t, e, m, "", Limits{MemoryBytes: 1 << 20}, nil)
	wantStatus(t, res, StatusMemoryExceeded)
	if res.MemoryPeak > 1<<20 {
		t.Fatalf("memory peak %d over the 1 MiB limit", res.MemoryPeak)
	}

	e = newEngine(t, Config{PoolSlots: 1, ElideBoundsChecks: true})
	d := load(t, e, "dirty")
	for i := range 5 {
		res := run(t, e, d, "", Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if want := "seed\x00\x00\x00\x00"; string(res.Output) != want {
			t.Fatalf("call %d saw %q, want %q", i, res.Output, want)
		}
	}
}

// Engines that ask for large reservations beyond what the process can
// give (40 engines of 1,000 slots would be 160 TiB) get the small one and
// still work; none aborts the process. Those given the large one differ
// from the rest in their fingerprint, so no artifact crosses.
func TestManyEnginesElidingBoundsChecks(t *testing.T) {
	wasm := fixture(t, "hello")
	var engines []*Engine
	elided := 0
	for range 40 {
		e := newEngine(t, Config{PoolSlots: 1000, ElideBoundsChecks: true})
		m, err := e.Load("hello", func() ([]byte, error) { return wasm, nil })
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, run(t, e, m, "", Limits{}, nil), StatusSuccess)
		engines = append(engines, e)
		if e.BoundsChecksElided() {
			elided++
		}
	}
	t.Logf("%d of %d engines elide bounds checks", elided, len(engines))
	if elided == 0 || elided == len(engines) {
		t.Fatalf("%d of %d engines elide bounds checks", elided, len(engines))
	}
	if engines[0].Fingerprint() == engines[len(engines)-1].Fingerprint() {
		t.Fatal("engines with and without bounds checks share a fingerprint")
	}
	var wg sync.WaitGroup
	for _, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, _ := e.Load("hello", nil)
			wantStatus(t, run(t, e, m, "", Limits{}, nil), StatusSuccess)
		}()
	}
	wg.Wait()
}

// Under an address space limit (ulimit -v) the large reservations keep to
// half of it, so a node started under one elides checks only if they fit.
func TestLargeReservationBudgetUnderLimit(t *testing.T) {
	for _, c := range []struct {
		limit uint64
		want  int64
	}{
		{rlimInfinity, LargeReservationBudget},
		{1 << 62, LargeReservationBudget},
		{8 << 40, 4 << 40},
		{16 << 30, 8 << 30}, // less than one server's slots: none elide
	} {
		if got := budgetUnder(c.limit); got != c.want {
			t.Errorf("limit %d: budget %d, want %d", c.limit, got, c.want)
		}
	}
}

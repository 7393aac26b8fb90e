package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// The cheap tier compiles with Winch, and its artifacts run only on the
// cheap tier's engine: the optimised engine refuses them. Fails when a
// wasmtime-go upgrade changes what setWinch relies on (the cheap tier then
// falls back to Cranelift without optimisation, a slower deploy).
func TestCheapTierIsWinch(t *testing.T) {
	e := newEngine(t, Config{PoolSlots: 4})
	if got := e.CheapCompiler(); got != "winch" {
		t.Fatalf("cheap compiler %q: wasmtime_config_strategy_set is not the code winch.go expects; update winch.go", got)
	}
	m, err := e.LoadFrom("init", Source{Wasm: func() ([]byte, error) { return fixture(t, "init"), nil }, Cheap: true})
	if err != nil {
		t.Fatal(err)
	}
	if m.Tier() != TierCheap {
		t.Fatalf("tier %v", m.Tier())
	}
	wantStatus(t, run(t, e, m, "", Limits{}, nil), StatusSuccess)
	art, tier, err := e.ArtifactOf("init")
	if err != nil || tier != TierCheap {
		t.Fatalf("artifact: %v %v", tier, err)
	}
	if _, err := wasmtime.NewModuleDeserialize(e.wt, art); err == nil || !strings.Contains(err.Error(), "Winch") {
		t.Fatalf("the optimised engine took a Winch artifact: %v", err)
	}

	// With Cranelift asked for, the cheap tier compiles with it.
	c := newEngine(t, Config{PoolSlots: 4, cheapCranelift: true})
	if c.CheapCompiler() != "cranelift" || c.CheapFingerprint() == e.CheapFingerprint() {
		t.Fatalf("cranelift cheap tier: %s, same key %v", c.CheapCompiler(), c.CheapFingerprint() == e.CheapFingerprint())
	}
}

// withInitialize gives a fixture an _initialize export, so that it is
// pre-initialised and a cheap Load compiles its snapshot on the cheap tier.
func withInitialize(t *testing.T, name string) []byte {
	t.Helper()
	src := string(fixtureText(t, name))
	i := strings.LastIndex(src, ")")
	wasm, err := wasmtime.Wat2Wasm(src[:i] + "\n  (func (export \"_initialize\")))")
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// Hostile modules on the cheap tier are stopped as on the optimised one:
// a loop at its deadline (the cheap tier's engine has its own epoch), a
// memory bomb at its cap, unbounded recursion, stray loads and stores.
func TestCheapTierHostile(t *testing.T) {
	for _, cranelift := range []bool{false, true} {
		e := newEngine(t, Config{PoolSlots: 4, ElideBoundsChecks: true, cheapCranelift: cranelift})
		load := func(name string) *Module {
			t.Helper()
			wasm := withInitialize(t, name)
			m, err := e.LoadFrom(name, Source{Wasm: func() ([]byte, error) { return wasm, nil }, Cheap: true})
			if err != nil {
				t.Fatal(err)
			}
			if m.Tier() != TierCheap {
				t.Fatalf("%s: tier %v", name, m.Tier())
			}
			return m
		}
		t.Logf("cheap compiler %s", e.CheapCompiler())

		const timeout = 200 * time.Millisecond
		loop := load("loop")
		res := promptly(t, timeout+100*time.Millisecond, func() Result { return run(t, e, loop, "", Limits{Timeout: timeout}, nil) })
		wantStatus(t, res, StatusTimeout)
		res = promptly(t, 150*time.Millisecond, func() Result {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return e.Run(ctx, loop, nil, Limits{Timeout: 10 * time.Second}, nil)
		})
		if res.Status != StatusError || !errors.Is(res.Err, context.Canceled) {
			t.Fatalf("cancelled loop: %s %v", res.Status, res.Err)
		}

		const limit = 16 << 20
		res = run(t, e, load("membomb"), "", Limits{MemoryBytes: limit}, nil)
		wantStatus(t, res, StatusMemoryExceeded)
		if res.MemoryPeak > limit || res.MemoryPeak < limit-wasmPage {
			t.Fatalf("membomb peak %d, want just under %d", res.MemoryPeak, limit)
		}

		res = run(t, e, load("recursion"), "", Limits{}, nil)
		wantStatus(t, res, StatusError)
		if !strings.Contains(res.Err.Error(), "call stack exhausted") {
			t.Fatalf("recursion: %v", res.Err)
		}

		res = run(t, e, load("oob"), "", Limits{}, nil)
		wantStatus(t, res, StatusError)
		if !strings.Contains(res.Err.Error(), "outside linear memory") {
			t.Fatalf("oob: %v", res.Err)
		}
		res = run(t, e, load("strayload"), "", Limits{}, nil)
		wantStatus(t, res, StatusError)
		if !strings.Contains(res.Err.Error(), "out of bounds memory access") {
			t.Fatalf("stray load: %v", res.Err)
		}
		res = run(t, e, load("unreachable"), "", Limits{}, nil)
		wantStatus(t, res, StatusError)
	}
}

// A cheap module's instances are reused as an optimised module's are, from
// the cheap tier's own pool: a cheap call that finds that pool full ends an
// idle cheap instance, never an optimised module's, and the swap gives the
// cheap tier's slots back.
func TestCheapTierReusesInItsPool(t *testing.T) {
	e := newEngine(t, Config{PoolSlots: 2, ElideBoundsChecks: true})
	cheap := func(name string) *Module {
		t.Helper()
		wasm := withInitialize(t, "hello")
		// A distinct module per name: a custom section changes the hash's bytes.
		wasm = append(wasm, 0, byte(2+len(name)), 1, 'x')
		wasm = append(wasm, name...)
		m, err := e.LoadFrom(name, Source{Wasm: func() ([]byte, error) { return wasm, nil }, Cheap: true})
		if err != nil {
			t.Fatal(err)
		}
		if m.Tier() != TierCheap || !e.reusable(m) {
			t.Fatalf("%s: tier %v, reusable %v", name, m.Tier(), e.reusable(m))
		}
		return m
	}
	opt, err := e.LoadFrom("opt", Source{Wasm: func() ([]byte, error) { return withInitialize(t, "hello"), nil }})
	if err != nil || opt.Tier() != TierOptimized {
		t.Fatalf("optimised load: %v", err)
	}
	a, b, c := cheap("a"), cheap("b"), cheap("c")
	before := e.Stats().Reused
	for _, m := range []*Module{opt, a, b, a, b, c, a, opt} {
		wantStatus(t, run(t, e, m, "", Limits{}, nil), StatusSuccess)
	}
	if got := e.Stats().Reused - before; got < 3 {
		t.Fatalf("%d calls reused an instance", got)
	}
	if n := len(e.tierRT.slots); n != 2 {
		t.Fatalf("cheap tier's pool: %d slots held, want 2 (idle cheap instances)", n)
	}
	if n := len(e.slots); n != 1 {
		t.Fatalf("the Engine's pool: %d slots held, want 1 (the optimised module's idle instance)", n)
	}
	for _, m := range []*Module{a, b, c} {
		if ok, err := e.Optimize(context.Background(), m.Hash(), nil); err != nil || !ok {
			t.Fatalf("optimize %s: %v %v", m.Hash(), ok, err)
		}
	}
	if n := len(e.tierRT.slots); n != 0 {
		t.Fatalf("after the swaps the cheap tier's pool holds %d slots", n)
	}
}

// A snapshot Winch cannot compile (here: a tail call, which Winch does not
// implement) is compiled with the Engine's settings instead: the module
// keeps its pre-initialisation, on the optimised tier.
func TestCheapTierFallsBackForWhatWinchLacks(t *testing.T) {
	e := newEngine(t, Config{PoolSlots: 4})
	wasm, err := wasmtime.Wat2Wasm(`(module
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $ready (mut i32) (i32.const 0))
  (data (i32.const 0) "initialized")
  (func $set (global.set $ready (i32.const 42)))
  (func (export "_initialize") (return_call $set))
  (func (export "handler") (result i32)
    (if (i32.ne (global.get $ready) (i32.const 42)) (then (return (i32.const 1))))
    (drop (call $output (i32.const 0) (i32.const 11)))
    (i32.const 0)))`)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.LoadFrom("tailcall", Source{Wasm: func() ([]byte, error) { return wasm, nil }, Cheap: true})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, run(t, e, m, "", Limits{}, nil), StatusSuccess)
	if ok, perr := m.Preinitialized(); !ok {
		t.Fatalf("lost pre-initialisation: tier %v, %v", m.Tier(), perr)
	}
	if m.Tier() != TierOptimized || e.Stats().CheapFallbacks != 1 {
		t.Fatalf("tier %v, %+v; want optimized, one fallback", m.Tier(), e.Stats())
	}
}

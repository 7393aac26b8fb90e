package engine

import (
	"context"
	"strings"
	"testing"
)

// A reused instance starts every call from the snapshot: memory written by
// the call before (a byte of the image, a byte of zeroed memory, the output
// buffer) and globals it set are back, whether the memory is compared with
// the snapshot (it is one wasm page), or its written pages are found by
// the kernel and copied back or dropped; with reuse off every call has a
// new instance.
func TestReuseFreshState(t *testing.T) {
	for name, c := range map[string]struct {
		cfg      Config
		scan     bool // the reset asks the kernel for the private pages, as for a larger memory
		drop     bool // and drops them instead of copying them
		reuseOff bool
	}{
		"compare":  {cfg: Config{PoolSlots: 1}},
		"copy":     {cfg: Config{PoolSlots: 1}, scan: true},
		"drop":     {cfg: Config{PoolSlots: 1}, scan: true, drop: true},
		"disabled": {cfg: Config{PoolSlots: 1, DisableReuse: true}, reuseOff: true},
	} {
		t.Run(name, func(t *testing.T) {
			if c.scan {
				old := reuseCompareMax
				reuseCompareMax = 0
				t.Cleanup(func() { reuseCompareMax = old })
			}
			if c.drop {
				old := reuseDirtyLimit
				reuseDirtyLimit = 0
				t.Cleanup(func() { reuseDirtyLimit = old })
			}
			e := newEngine(t, c.cfg)
			m := load(t, e, "reuse")
			if !m.info.preinit || !m.info.resettable {
				t.Fatalf("module info %+v: want a resettable snapshot", m.info)
			}
			if pagemapFD() < 0 {
				t.Skip("PAGEMAP_SCAN is not available on this kernel")
			}
			const calls = 5
			for i := range calls {
				res := run(t, e, m, "", Limits{}, nil)
				wantStatus(t, res, StatusSuccess)
				if want := "A079"; string(res.Output) != want {
					t.Fatalf("call %d saw %q, want %q: state crossed calls", i, res.Output, want)
				}
			}
			// The first call too: on the instance the load primed (prime.go).
			reused := e.Stats().Reused
			if c.reuseOff && reused != 0 || !c.reuseOff && reused != calls {
				t.Fatalf("%d calls reused an instance", reused)
			}
		})
	}
}

// A Go guest on a reused instance: each call counts from the snapshot, a
// call that grows memory (8 MiB) ends its instance, and the next one starts
// from the snapshot again.
func TestReuseGoGuest(t *testing.T) {
	if pagemapFD() < 0 {
		t.Skip("PAGEMAP_SCAN is not available on this kernel")
	}
	e := goEngine(t, Config{PoolSlots: 2})
	m := loadBytes(t, e, "goguest", goGuest(t, "goguest"))
	state := func() {
		t.Helper()
		res := run(t, e, m, `{"trigger":"http","body":{"do":"state"}}`, Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if !strings.Contains(string(res.Output), `"calls":1,`) {
			t.Fatalf("output %s: state crossed calls", res.Output)
		}
	}
	for range 5 {
		state()
	}
	// The first call too: on the instance the load primed (prime.go).
	if r := e.Stats().Reused; r != 5 {
		t.Fatalf("%d of 5 calls reused an instance, want 5", r)
	}
	wantStatus(t, run(t, e, m, `{"trigger":"http","body":{"do":"alloc","mib":8}}`, Limits{}, nil), StatusSuccess)
	state()
	state()
	// The grown instance was ended, not kept: the alloc call reused one
	// instance, the state call after it started a new one.
	if r := e.Stats().Reused; r != 7 {
		t.Fatalf("%d calls reused an instance, want 7", r)
	}
}

// JavaScript functions run on the runtime's snapshot, whose instances are
// reused too: a global a call sets is gone in the next call.
func TestReuseScriptGlobals(t *testing.T) {
	if pagemapFD() < 0 {
		t.Skip("PAGEMAP_SCAN is not available on this kernel")
	}
	e := newJSEngine(t, Config{CacheDir: t.TempDir()})
	m := loadScript(t, e, "reuse-globals", `var __aerofn_exports = { handler() {
		globalThis.seen = (globalThis.seen || 0) + 1;
		return { seen: globalThis.seen };
	} };`)
	base := e.Stats().Reused // the load's compile to bytecode ran on the runtime's primed instance
	for i := range 4 {
		res := run(t, e, m, `{"trigger":"http","body":{}}`, Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if string(res.Output) != `{"seen":1}` {
			t.Fatalf("call %d returned %s: state crossed calls", i, res.Output)
		}
	}
	if r := e.Stats().Reused - base; r != 3 {
		t.Fatalf("%d of 4 calls reused an instance, want 3", r)
	}
}

// The instance a module's image was read from (the one priming keeps for
// the first call) is left with none of its image's or zero pages present,
// as any other fresh instance: each reset scans every present page, and
// reading the image made them all present (864 pages of a Go guest, where a
// call touches about 230). Pages holding a private copy stay (a reused
// slot's kept-resident pages are zeroed, so private). Its calls still start
// from the snapshot.
func TestReuseImageInstanceDropsItsPages(t *testing.T) {
	if pagemapFD() < 0 {
		t.Skip("PAGEMAP_SCAN is not available on this kernel")
	}
	e := goEngine(t, Config{PoolSlots: 2})
	m := loadBytes(t, e, "goguest", goGuest(t, "goguest"))
	if !m.imageMapped.Load() {
		t.Skip("the image is not mapped from the compiled artifact here")
	}
	w := e.takeWarm(m, "")
	if w == nil {
		t.Fatal("no primed instance")
	}
	data := w.mem.UnsafeData(w.store)
	shared, _, err := w.scan.scan(data, 0, pageIsPresent, 0, pageIsFile|pageIsPFNZero)
	if err != nil {
		t.Fatal(err)
	}
	if len(shared) != 0 {
		t.Errorf("%d regions of the image or zero pages of the primed instance present, first %v; want none", len(shared), shared[0])
	}
	e.finish(w, true)
	for range 3 {
		res := run(t, e, m, `{"trigger":"http","body":{"do":"state"}}`, Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if !strings.Contains(string(res.Output), `"calls":1,`) {
			t.Fatalf("output %s: state crossed calls", res.Output)
		}
	}
}

// A module without _initialize is reused only when nothing but its memory
// and mutable globals can carry state from one call to the next, and no
// guest code runs when it is instantiated (compileResettable); every other
// gets a new instance per call. A non-exported mutable global and a byte
// of a data segment changed by one call are back for the next.
func TestReusePlainModule(t *testing.T) {
	if pagemapFD() < 0 {
		t.Fatal("PAGEMAP_SCAN is not available on this kernel: instances are never reused here")
	}
	e := newEngine(t, Config{PoolSlots: 2})
	m := loadWAT(t, e, "plain", `(module
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 55))
  (data (i32.const 16) "A")
  (func (export "handler") (result i32)
    (i32.store8 (i32.const 0) (i32.load8_u (i32.const 16)))
    (i32.store8 (i32.const 1) (global.get $g))
    (drop (call $output (i32.const 0) (i32.const 2)))
    (i32.store8 (i32.const 16) (i32.const 66))
    (global.set $g (i32.const 56))
    (i32.const 0)))`)
	if m.info.preinit || !m.info.resettable || len(m.info.globals) != 1 {
		t.Fatalf("module info %+v: want a resettable module that is not a snapshot", m.info)
	}
	for i := range 4 {
		res := run(t, e, m, "", Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if string(res.Output) != "A7" {
			t.Fatalf("call %d saw %q: state crossed calls", i, res.Output)
		}
	}
	if r := e.Stats().Reused; r != 4 {
		t.Fatalf("%d of 4 calls reused an instance", r)
	}

	// A start function (it would run on the first call's input and make
	// that the state later calls start from), code that changes a table or
	// drops a data segment: a new instance per call, as before.
	for name, src := range map[string]string{
		"start": `(module (memory (export "memory") 1) (global $g (mut i32) (i32.const 0))
  (func $s (global.set $g (i32.const 1))) (start $s)
  (func (export "handler") (result i32) (i32.sub (global.get $g) (i32.const 1))))`,
		"table.set": `(module (memory (export "memory") 1) (table 1 funcref) (elem declare func $h)
  (func $h (export "handler") (result i32) (table.set (i32.const 0) (ref.func $h)) (i32.const 0)))`,
		"data.drop": `(module (memory (export "memory") 1) (data "x")
  (func (export "handler") (result i32) (data.drop 0) (i32.const 0)))`,
	} {
		m := loadWAT(t, e, "refused-"+strings.ReplaceAll(name, ".", "-"), src)
		if m.info.resettable || e.reusable(m) {
			t.Fatalf("%s: module is reused", name)
		}
		before := e.Stats().Reused
		for range 2 {
			wantStatus(t, run(t, e, m, "", Limits{}, nil), StatusSuccess)
		}
		if r := e.Stats().Reused; r != before {
			t.Fatalf("%s: %d calls reused an instance", name, r-before)
		}
	}
}

// An instance that served a call serves only calls of the same owner
// (takeWarm): two functions whose modules have the same bytes share the
// Module, never an instance, so one cannot time which pages the other's
// call touched. An instance primed at load, which has served no call, goes
// to the first owner that calls.
func TestReuseKeyedByOwner(t *testing.T) {
	if pagemapFD() < 0 {
		t.Fatal("PAGEMAP_SCAN is not available on this kernel: instances are never reused here")
	}
	e := newEngine(t, Config{PoolSlots: 4})
	m := load(t, e, "reuse")
	call := func(owner string) {
		t.Helper()
		res := e.Run(context.Background(), m, nil, Limits{Owner: owner}, nil)
		wantStatus(t, res, StatusSuccess)
	}
	reused := func() uint64 { return e.Stats().Reused }

	call("a") // the primed instance
	if r := reused(); r != 1 {
		t.Fatalf("the first call did not take the primed instance: reused %d", r)
	}
	call("b") // not a's instance: a new one
	if r := reused(); r != 1 {
		t.Fatalf("b's call ran on a's instance: reused %d", r)
	}
	call("a")
	call("b")
	if r := reused(); r != 3 {
		t.Fatalf("each owner's second call should reuse its own instance: reused %d", r)
	}
	// Every idle instance now belongs to a or b: c gets a new one.
	call("c")
	if r := reused(); r != 3 {
		t.Fatalf("c's call ran on another owner's instance: reused %d", r)
	}
	e.reuseMu.Lock()
	owners := map[string]int{}
	for el := e.idle.Front(); el != nil; el = el.Next() {
		owners[el.Value.(*warmInst).owner]++
	}
	e.reuseMu.Unlock()
	if owners["a"] != 1 || owners["b"] != 1 || owners["c"] != 1 || len(owners) != 3 {
		t.Fatalf("idle instances by owner: %v", owners)
	}
}

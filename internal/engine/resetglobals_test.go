package engine

import (
	"math"
	"runtime"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// The reset of reused instances sets globals back in one crossing into C:
// the layouts match wasmtime-go's, the instances of the reuse fixture and
// of a Go guest take that path (so the reuse tests cover it), and a reset
// of the Go guest's (nine globals, 33 crossings through wasmtime-go's
// methods) makes one. The engine's epoch ticker also calls into C, so the
// least of several resets counts.
func TestResetGlobalsBatchedInUse(t *testing.T) {
	if !resetGlobalsOK {
		t.Fatal("resetglobals.go's layouts no longer match wasmtime-go's types; resets take the plain path")
	}
	if pagemapFD() < 0 {
		t.Skip("PAGEMAP_SCAN is not available on this kernel")
	}
	e := goEngine(t, Config{PoolSlots: 2})
	for _, m := range []*Module{load(t, e, "reuse"), loadBytes(t, e, "goguest", goGuest(t, "goguest"))} {
		w := e.takeWarm(m, "")
		if w == nil {
			t.Fatal("no primed instance")
		}
		if w.fast == nil || len(w.fast.globals) != len(w.globals) || len(w.globals) == 0 {
			t.Errorf("module with %d mutable globals: the reset does not set them in one call", len(w.globals))
		}
		least := int64(1 << 30)
		for range 10 {
			n0 := runtime.NumCgoCall()
			if !e.reset(w) {
				t.Fatal("reset failed")
			}
			least = min(least, runtime.NumCgoCall()-n0)
		}
		if least != 1 {
			t.Errorf("module with %d mutable globals: %d cgo calls per reset, want 1", len(w.globals), least)
		}
		e.finish(w, true)
	}
}

// A reset puts every mutable global back, on the batched path and on
// wasmtime-go's, and the next call sees the snapshot's values.
func TestResetRestoresGlobals(t *testing.T) {
	if pagemapFD() < 0 {
		t.Skip("PAGEMAP_SCAN is not available on this kernel")
	}
	for _, batched := range []bool{true, false} {
		name := map[bool]string{true: "batched", false: "wasmtime-go"}[batched]
		t.Run(name, func(t *testing.T) {
			e := newEngine(t, Config{PoolSlots: 1})
			m := load(t, e, "reuse")
			w := e.takeWarm(m, "")
			if w == nil {
				t.Fatal("no primed instance")
			}
			if !batched {
				w.fast = nil
			} else if w.fast == nil {
				t.Fatal("the batched path is not in use")
			}
			junk := []wasmtime.Val{wasmtime.ValI32(-5), wasmtime.ValI64(1 << 40)}
			if len(w.globals) != len(junk) {
				t.Fatalf("%d mutable globals, want %d", len(w.globals), len(junk))
			}
			for i, g := range w.globals {
				if err := g.Set(w.store, junk[i]); err != nil {
					t.Fatal(err)
				}
			}
			if !e.reset(w) {
				t.Fatal("reset failed")
			}
			for i, g := range w.globals {
				if got, want := g.Get(w.store), w.img.values[i]; got.Get() != want.Get() {
					t.Errorf("global %d is %v after the reset, want %v", i, got.Get(), want.Get())
				}
			}
			e.finish(w, true)
			res := run(t, e, m, "", Limits{}, nil)
			wantStatus(t, res, StatusSuccess)
			if want := "A079"; string(res.Output) != want {
				t.Fatalf("call after the reset saw %q, want %q", res.Output, want)
			}
		})
	}
}

// globalReset sets globals of every number type bit for bit (a NaN's
// payload too), finds the memory, and fails when wasmtime refuses a set.
func TestGlobalResetKinds(t *testing.T) {
	if !resetGlobalsOK {
		t.Skip("layouts do not match")
	}
	store := wasmtime.NewStore(wasmtime.NewEngine())
	defer store.Close()
	mt, err := wasmtime.NewMemoryType(2, false, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := wasmtime.NewMemory(store, mt)
	if err != nil {
		t.Fatal(err)
	}
	nan32 := math.Float32frombits(0x7fc0_1234)
	nan64 := math.Float64frombits(0x7ff8_0000_0000_4321)
	want := []wasmtime.Val{wasmtime.ValI32(-7), wasmtime.ValI64(-1 << 50), wasmtime.ValF32(nan32), wasmtime.ValF64(nan64)}
	other := []wasmtime.Val{wasmtime.ValI32(1), wasmtime.ValI64(2), wasmtime.ValF32(3), wasmtime.ValF64(4)}
	kinds := []wasmtime.ValKind{wasmtime.KindI32, wasmtime.KindI64, wasmtime.KindF32, wasmtime.KindF64}
	var globals []*wasmtime.Global
	for i, k := range kinds {
		g, err := wasmtime.NewGlobal(store, wasmtime.NewGlobalType(wasmtime.NewValType(k), true), other[i])
		if err != nil {
			t.Fatal(err)
		}
		globals = append(globals, g)
	}
	r := newGlobalReset(mem, globals, want)
	if r == nil {
		t.Fatal("no globalReset for number globals")
	}
	data, ok := r.reset(store)
	if !ok || len(data) != 2*wasmPage || &data[0] != &mem.UnsafeData(store)[0] {
		t.Fatalf("reset: ok %v, %d bytes of memory", ok, len(data))
	}
	bits := func(v wasmtime.Val) uint64 {
		switch v.Kind() {
		case wasmtime.KindI32:
			return uint64(uint32(v.I32()))
		case wasmtime.KindI64:
			return uint64(v.I64())
		case wasmtime.KindF32:
			return uint64(math.Float32bits(v.F32()))
		default:
			return math.Float64bits(v.F64())
		}
	}
	for i, g := range globals {
		if got := g.Get(store); got.Kind() != kinds[i] || bits(got) != bits(want[i]) {
			t.Errorf("global %d: %#x, want %#x", i, bits(got), bits(want[i]))
		}
	}

	// A value of the wrong type: wasmtime refuses it, the reset fails.
	bad := newGlobalReset(mem, globals[:1], []wasmtime.Val{wasmtime.ValI64(1)})
	if _, ok := bad.reset(store); ok {
		t.Fatal("a global set to a value of another type did not fail the reset")
	}
	// An immutable global: refused too.
	imm, err := wasmtime.NewGlobal(store, wasmtime.NewGlobalType(wasmtime.NewValType(wasmtime.KindI32), false), wasmtime.ValI32(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := newGlobalReset(mem, []*wasmtime.Global{imm}, []wasmtime.Val{wasmtime.ValI32(2)}).reset(store); ok {
		t.Fatal("setting an immutable global did not fail the reset")
	}
	// A reference value: no batched path.
	if newGlobalReset(mem, globals[:1], []wasmtime.Val{wasmtime.ValFuncref(nil)}) != nil {
		t.Fatal("a funcref value got a globalReset")
	}
}

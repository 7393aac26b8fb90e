package engine

import (
	"bytes"
	"debug/elf"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// hasAddrMap reports whether an artifact carries wasmtime's native-to-wasm
// address map.
func hasAddrMap(t *testing.T, art []byte) bool {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(art))
	if err != nil {
		t.Fatal(err)
	}
	return f.Section(".wasmtime.addrmap") != nil
}

// The cheap tier's artifacts have no address map, the optimised engine's
// keep theirs, and a trap on the cheap tier still names the functions it
// passed through (without their wasm offsets). Fails when a wasmtime-go
// upgrade changes what setNoAddrMap relies on (the cheap tier then keeps the
// map: larger artifacts, slower deploys).
func TestCheapTierNoAddressMap(t *testing.T) {
	if probe, err := wasmtime.Wat2Wasm(`(module (func (export "f") (param i32) (result i32) local.get 0 i32.const 1 i32.add))`); err != nil || !bytes.Equal(probe, addrMapProbe) {
		t.Fatalf("addrMapProbe is not the module its comment says: %v", err)
	}
	if !addrMapOffConfirmed() {
		t.Fatal("setNoAddrMap is not confirmed: the wasmtime_config_*_set setters are not the code addrmap.go expects; update addrmap.go")
	}
	const src = `(module (memory (export "memory") 1)
  (func (export "_initialize"))
  (func $deep_inside unreachable)
  (func (export "handler") (result i32) (call $deep_inside) (i32.const 0)))`
	wasm, err := wasmtime.Wat2Wasm(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, cranelift := range []bool{false, true} {
		e := newEngine(t, Config{PoolSlots: 4, cheapCranelift: cranelift})
		if !e.tierRuntime().noAddrMap {
			t.Fatalf("%s cheap tier keeps the address map", e.CheapCompiler())
		}
		m, err := e.LoadFrom("names", Source{Wasm: func() ([]byte, error) { return wasm, nil }, Cheap: true})
		if err != nil {
			t.Fatal(err)
		}
		if m.Tier() != TierCheap {
			t.Fatalf("tier %v", m.Tier())
		}
		art, tier, err := e.ArtifactOf("names")
		if err != nil || tier != TierCheap {
			t.Fatalf("artifact: %v %v", tier, err)
		}
		if hasAddrMap(t, art) {
			t.Fatalf("%s cheap artifact has an address map", e.CheapCompiler())
		}
		res := run(t, e, m, "", Limits{}, nil)
		var trap *TrapError
		if !errors.As(res.Err, &trap) || len(trap.Trace) < 2 || !strings.Contains(trap.Trace[0], "deep_inside") {
			t.Fatalf("%s: err %v, trace %#v", e.CheapCompiler(), res.Err, trap)
		}
		// No address map, no wasm offsets: "0: names!deep_inside", where the
		// optimised engine writes "0: 0x3b - names!deep_inside".
		if offset := regexp.MustCompile(`0x[0-9a-f]+ - `); offset.MatchString(trap.Trace[0]) {
			t.Fatalf("%s: a wasm offset without an address map: %q", e.CheapCompiler(), trap.Trace[0])
		}
		t.Logf("%s: %q", e.CheapCompiler(), trap.Trace)
	}

	// The optimised engine keeps the map.
	e := newEngine(t, Config{})
	m := loadWAT(t, e, "names", src)
	if m.Tier() != TierOptimized {
		t.Fatalf("tier %v", m.Tier())
	}
	art, tier, err := e.ArtifactOf(m.Hash())
	if err != nil || tier != TierOptimized {
		t.Fatalf("artifact: %v %v", tier, err)
	}
	if !hasAddrMap(t, art) {
		t.Fatal("the optimised artifact has no address map")
	}
	res := run(t, e, m, "", Limits{}, nil)
	var trap *TrapError
	if !errors.As(res.Err, &trap) || len(trap.Trace) == 0 || !regexp.MustCompile(`0x[0-9a-f]+ - .*deep_inside`).MatchString(trap.Trace[0]) {
		t.Fatalf("optimised: err %v, trace %#v", res.Err, trap)
	}
}

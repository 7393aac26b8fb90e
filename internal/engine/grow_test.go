package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

func wat(t testing.TB, src string) []byte {
	t.Helper()
	b, err := wasmtime.Wat2Wasm(src)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A single memory.grow past the cap that the guest answers with a trap (no
// "out of memory" line, memory far from full) is memory_exceeded.
func TestRefusedGrowThenTrap(t *testing.T) {
	e := newEngine(t, Config{})
	m := loadWAT(t, e, "grow-trap", `(module
  (memory (export "memory") 1)
  (func (export "handler") (result i32)
    (if (i32.eq (memory.grow (i32.const 4096)) (i32.const -1)) (then unreachable))
    (i32.const 0)))`)
	res := run(t, e, m, "", Limits{MemoryBytes: 16 << 20}, nil)
	wantStatus(t, res, StatusMemoryExceeded)
	if res.MemoryPeak != wasmPage {
		t.Fatalf("peak %d, want one page", res.MemoryPeak)
	}
	if !strings.Contains(res.Err.Error(), "4096 pages") || !strings.Contains(res.Err.Error(), "unreachable") {
		t.Fatalf("err %v", res.Err)
	}
	res = run(t, e, m, "", Limits{MemoryBytes: 512 << 20}, nil)
	wantStatus(t, res, StatusSuccess)
}

// The guard covers memory.grow in every function, keeps indices (a call
// through the table and a direct call after the guarded ones still reach
// the right functions), reuses an (i32) -> i32 type the module has, and a
// guest that recovers from a refusal succeeds.
func TestGrowGuardEveryFunction(t *testing.T) {
	module := func(body string) string {
		return `(module
  (type $g (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (table 2 funcref)
  (elem (i32.const 0) $small $big)
  (func $small (type $g) (memory.grow (local.get 0)))
  (func $big (type $g) (memory.grow (i32.mul (local.get 0) (i32.const 1024))))
  (func $last (result i32) (i32.const 7))
  (func (export "handler") (result i32) ` + body + `))`
	}
	// A refused grow the guest recovers from, then calls by index.
	recovers := module(`
    (if (i32.ne (call_indirect (type $g) (i32.const 1000) (i32.const 1)) (i32.const -1)) (then (return (i32.const 3))))
    (if (i32.ne (call $last) (i32.const 7)) (then (return (i32.const 4))))
    (if (i32.eq (call_indirect (type $g) (i32.const 1) (i32.const 0)) (i32.const -1)) (then (return (i32.const 5))))
    (i32.load (i32.const 0))`)
	raw := wat(t, recovers)
	g, err := guardGrow(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseWasm(g)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(p.section(secType)), string(typeGrow)); n != 1 {
		t.Fatalf("type (i32) -> i32 appears %d times", n)
	}
	e := newEngine(t, Config{})
	m := loadBytes(t, e, "recovers", raw)
	if !m.info.growGuard {
		t.Fatal("not guarded")
	}
	wantStatus(t, run(t, e, m, "", Limits{MemoryBytes: 64 << 20}, nil), StatusSuccess)

	// A failure after a refused grow in a function other than handler,
	// reached through the table.
	m = loadWAT(t, e, "fails", module(`(drop (call_indirect (type $g) (i32.const 1000) (i32.const 0))) unreachable`))
	res := run(t, e, m, "", Limits{MemoryBytes: 16 << 20}, nil)
	wantStatus(t, res, StatusMemoryExceeded)
	if !strings.Contains(res.Err.Error(), "1000 pages") {
		t.Fatalf("err %v", res.Err)
	}
	// The same failure with room to grow is an ordinary error.
	wantStatus(t, run(t, e, m, "", Limits{MemoryBytes: 128 << 20}, nil), StatusError)
}

// What the guard leaves alone: a module without memory.grow, one with two
// memories, one exporting a reserved name (which Load still refuses).
func TestGrowGuardDeclines(t *testing.T) {
	if _, err := guardGrow(wat(t, `(module (memory (export "memory") 1) (func (export "handler") (result i32) (i32.const 0)))`)); !errors.Is(err, errNoGrow) {
		t.Fatalf("no grow: %v", err)
	}
	two := wat(t, `(module (memory (export "memory") 1) (memory $b 1)
  (func (export "handler") (result i32) (drop (memory.grow $b (i32.const 1))) (i32.const 0)))`)
	if _, err := guardGrow(two); err == nil {
		t.Fatal("two memories guarded")
	}
	reserved := `(module (memory (export "memory") 1) (global (export "` + growRefusedExport + `") (mut i32) (i32.const 0))
  (func (export "handler") (result i32) (memory.grow (i32.const 1))))`
	if _, err := guardGrow(wat(t, reserved)); err == nil {
		t.Fatal("reserved export guarded")
	}
	e := newEngine(t, Config{})
	if _, err := e.Load("reserved", func() ([]byte, error) { return wat(t, reserved), nil }); err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Fatalf("reserved export loaded: %v", err)
	}
}

// A Go guest that asks for one huge slice is memory_exceeded because its
// grow was refused, pre-initialised and guarded both; a small allocation
// still succeeds.
func TestGoGuestHugeSlice(t *testing.T) {
	wasm := goGuest(t, "goguest")
	for _, cfg := range []Config{{}, {DisablePreinit: true}} {
		e := newEngine(t, cfg)
		m := loadBytes(t, e, "goguest", wasm)
		if ok, err := m.Preinitialized(); ok == cfg.DisablePreinit || !m.info.growGuard {
			t.Fatalf("preinit %v (%v), guarded %v", ok, err, m.info.growGuard)
		}
		res := run(t, e, m, `{"body":{"do":"alloc","mib":1000}}`, Limits{MemoryBytes: 64 << 20}, nil)
		wantStatus(t, res, StatusMemoryExceeded)
		if !strings.Contains(res.Err.Error(), "refused") || res.MemoryPeak > 16<<20 {
			t.Fatalf("err %v, peak %d", res.Err, res.MemoryPeak)
		}
		wantStatus(t, run(t, e, m, `{"body":{"do":"alloc","mib":8}}`, Limits{MemoryBytes: 64 << 20}, nil), StatusSuccess)
	}
}

// An artifact an older aerofn cached (compiled without the guard, under the
// older name) is not loaded: the module is compiled again, guarded.
func TestOldCachedArtifactRecompiled(t *testing.T) {
	dir := t.TempDir()
	src := `(module (memory (export "memory") 1)
  (func (export "handler") (result i32) (if (i32.eq (memory.grow (i32.const 4096)) (i32.const -1)) (then unreachable)) (i32.const 0)))`
	plain := newEngine(t, Config{})
	old, err := plain.compile(wat(t, src))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"old.cwasm", "old.preinit.cwasm"} {
		if err := writeCached(filepath.Join(dir, name), old); err != nil {
			t.Fatal(err)
		}
	}
	e := newEngine(t, Config{CacheDir: dir})
	m := loadWAT(t, e, "old", src)
	if s := e.Stats(); s.Compiles != 1 || !m.info.growGuard {
		t.Fatalf("stats %+v, guarded %v", s, m.info.growGuard)
	}
	wantStatus(t, run(t, e, m, "", Limits{MemoryBytes: 16 << 20}, nil), StatusMemoryExceeded)
	for _, name := range []string{"old.cwasm", "old.preinit.cwasm"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left behind: %v", name, err)
		}
	}
}

// A rewrite that goes wrong (here: one that breaks the module) never costs
// the deploy: the module is compiled as it is, unguarded, and runs.
func TestBrokenGuardFallsBack(t *testing.T) {
	rewriteGrow = func(wasm []byte) ([]byte, error) {
		g, err := guardGrow(wasm)
		if err != nil {
			return nil, err
		}
		return g[:len(g)-3], nil
	}
	defer func() { rewriteGrow = guardGrow }()
	e := newEngine(t, Config{})
	m := loadWAT(t, e, "broken-guard", `(module (memory (export "memory") 1)
  (func (export "handler") (result i32) (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable)) (i32.const 0)))`)
	if m.info.growGuard {
		t.Fatal("marked guarded")
	}
	wantStatus(t, run(t, e, m, "", Limits{}, nil), StatusSuccess)
}

package engine

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

func TestLEB(t *testing.T) {
	for _, v := range []uint64{0, 1, 63, 64, 127, 128, 300, math.MaxUint32, math.MaxUint64} {
		r := &wasmReader{b: appendULEB(nil, v)}
		if got := r.uleb(64); got != v || r.err != nil || !r.done() {
			t.Errorf("uleb %d: got %d, %v", v, got, r.err)
		}
	}
	for _, v := range []int64{0, 1, -1, 63, 64, -64, -65, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64} {
		r := &wasmReader{b: appendSLEB(nil, v)}
		if got := r.sleb(64); got != v || r.err != nil || !r.done() {
			t.Errorf("sleb %d: got %d, %v", v, got, r.err)
		}
	}
	// Too many bits for a u32, a truncated number.
	for _, b := range [][]byte{{0xff, 0xff, 0xff, 0xff, 0x1f}, {0x80, 0x80}} {
		r := &wasmReader{b: b}
		if r.u32(); r.err == nil {
			t.Errorf("% x read as a u32", b)
		}
	}
}

// Parsing and writing back without changes gives the same sections, for every
// fixture the reader accepts and for a Go guest; the Go guest's code passes
// the scan.
func TestWasmRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.wat")
	mods := map[string][]byte{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".wat")
		mods[name] = fixture(t, name)
	}
	b, err := wasmtime.Wat2Wasm(watPreinitState)
	if err != nil {
		t.Fatal(err)
	}
	mods["preinit-state"] = b
	if testing.Short() {
		t.Log("-short: without a Go guest")
	} else {
		mods["goguest"] = goGuest(t, "goguest")
	}
	parsed := 0
	for name, b := range mods {
		p, err := parseWasm(b)
		if err != nil {
			t.Logf("%s: %v", name, err)
			continue
		}
		parsed++
		// Section sizes may be re-encoded shorter (Go's linker pads them to
		// five bytes); the sections themselves are the same.
		p2, err := parseWasm(p.encode(nil, nil, false))
		if err != nil {
			t.Fatalf("%s: written back: %v", name, err)
		}
		if len(p2.sections) != len(p.sections) {
			t.Fatalf("%s: %d sections written back as %d", name, len(p.sections), len(p2.sections))
		}
		for i, s := range p.sections {
			if s2 := p2.sections[i]; s2.id != s.id || !bytes.Equal(s2.body, s.body) {
				t.Errorf("%s: section %d (id %d) differs", name, i, s.id)
			}
		}
		if err := scanCode(p.section(secCode)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if parsed < 20 {
		t.Fatalf("only %d modules parsed", parsed)
	}
}

func TestDataSegments(t *testing.T) {
	mem := make([]byte, 4*wasmPage)
	copy(mem[10:], "ab")
	copy(mem[20:], "cd") // 8 zero bytes from "ab": joined
	copy(mem[1000:], "e")
	mem[len(mem)-1] = 1
	want := [][2]int{{10, 22}, {1000, 1001}, {len(mem) - 1, len(mem)}}
	if got := dataSegments(mem); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("segments %v, want %v", got, want)
	}
	if got := dataSegments(make([]byte, wasmPage)); len(got) != 0 {
		t.Fatalf("zero memory gave %v", got)
	}
	// Too many regions: gaps are joined until few enough remain.
	big := make([]byte, 128*wasmPage)
	for i := 0; i < len(big); i += 64 {
		big[i] = 1
	}
	if got := dataSegments(big); len(got) > maxDataSegments || len(got) == 0 {
		t.Fatalf("%d segments", len(got))
	}
}

// A trap in a pre-initialised module still names the functions it passed
// through: the name section is kept.
func TestPreinitKeepsFunctionNames(t *testing.T) {
	e := newEngine(t, Config{})
	m := loadWAT(t, e, "names", `(module (memory (export "memory") 1)
  (func (export "_initialize"))
  (func $deep_inside unreachable)
  (func (export "handler") (result i32) (call $deep_inside) (i32.const 0)))`)
	wantPreinit(t, m, true, "")
	res := run(t, e, m, "", Limits{}, nil)
	var trap *TrapError
	if !errors.As(res.Err, &trap) || len(trap.Trace) == 0 || !strings.Contains(trap.Trace[0], "deep_inside") {
		t.Fatalf("err %v, trace %v", res.Err, trap)
	}
}

func TestWithCustomSection(t *testing.T) {
	orig, err := wasmtime.Wat2Wasm(`(module (memory (export "memory") 1) (func (export "handler") (result i32) (i32.const 0)))`)
	if err != nil {
		t.Fatal(err)
	}
	kept := bytes.Clone(orig)
	ir, err := newEngine(t, Config{}).initRuntime()
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 200) // a size that needs two LEB128 bytes
	for _, name := range []string{"a", long} {
		b := WithCustomSection(orig, name)
		if err := wasmtime.ModuleValidate(wasmtime.NewEngine(), b); err != nil {
			t.Fatalf("%d-byte name: %v", len(name), err)
		}
		m, err := parseWasm(b)
		if err != nil {
			t.Fatalf("%d-byte name: %v", len(name), err)
		}
		if !bytes.Equal(b[:len(orig)], orig) || !bytes.Contains(m.section(0), []byte(name)) {
			t.Fatalf("%d-byte name: not the module followed by a custom section of that name", len(name))
		}
		// The interpreter that runs _initialize takes it too.
		if _, err := ir.rt.CompileModule(context.Background(), b); err != nil {
			t.Fatalf("%d-byte name: the interpreter refuses it: %v", len(name), err)
		}
	}
	if !bytes.Equal(orig, kept) {
		t.Fatal("the original was changed")
	}
}

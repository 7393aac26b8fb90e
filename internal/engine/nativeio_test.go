package engine

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// TestNativeIOInUse: on an engine whose calls go through fastcall.go, the
// guest's input_len, input_read and output never reach the Go host
// functions, for a new instance (the echo), for a reused one (a Go guest's
// first and later calls) and for a start function; the call's output is
// what the guest last passed, whether it fits the call's buffer or not.
func TestNativeIOInUse(t *testing.T) {
	if !fastOK {
		t.Fatal("the fast path is off: input and output go through Go host functions")
	}
	saved := hostFns
	hostFns = append([]hostFn(nil), hostFns...)
	for i, f := range hostFns {
		if f.module == abiModule && (f.name == "input_len" || f.name == "input_read" || f.name == "output") {
			name := f.name
			hostFns[i].fn = func(*callState, *wasmtime.Caller, []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
				t.Errorf("the Go %s ran", name)
				return nil, wasmtime.NewTrap("the Go " + name + " ran")
			}
		}
	}
	e := goEngine(t, Config{})
	e.tierRuntime() // the cheap tier's linker too
	hostFns = saved

	echo := load(t, e, "echo")
	for _, n := range []int{0, 1, outBufSize - 1, outBufSize, outBufSize + 1, 200 << 10} {
		in := bytes.Repeat([]byte("x"), n)
		res := run(t, e, echo, string(in), Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if !bytes.Equal(res.Output, in) {
			t.Fatalf("echo of %d bytes gave %d", n, len(res.Output))
		}
	}

	hello := loadBytes(t, e, "hello", goGuest(t, "hello"))
	wantPreinit(t, hello, true, "")
	for i := range 3 {
		res := run(t, e, hello, `{"trigger":"http","method":"POST","path":"/","body":{"name":"C"}}`, Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if !strings.Contains(string(res.Output), "Hello, C!") {
			t.Fatalf("call %d: output %s", i, res.Output)
		}
	}

	// A module of the cheap tier (compiled by the tier's engine, with its
	// own linker).
	cheapWasm, err := wasmtime.Wat2Wasm(`(module
  (import "aerodb" "input_len" (func $input_len (result i32)))
  (import "aerodb" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $ready (mut i32) (i32.const 0))
  (func (export "_initialize") (global.set $ready (i32.const 42)))
  (func (export "handler") (result i32)
    (drop (call $input_read (i32.const 0) (call $input_len)))
    (drop (call $output (i32.const 0) (call $input_len)))
    (i32.const 0)))`)
	if err != nil {
		t.Fatal(err)
	}
	cheap, err := e.LoadFrom("cheap-echo", Source{Wasm: func() ([]byte, error) { return cheapWasm, nil }, Cheap: true})
	if err != nil {
		t.Fatal(err)
	}
	if cheap.Tier() != TierCheap {
		t.Fatalf("tier %v, want the cheap tier", cheap.Tier())
	}
	for _, n := range []int{0, 5, 5000} {
		in := strings.Repeat("q", n)
		res := run(t, e, cheap, in, Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if string(res.Output) != in {
			t.Fatalf("cheap echo of %d bytes gave %d", n, len(res.Output))
		}
	}

	// A start function reads the input and passes it to output; the
	// handler passes nothing, so that is the call's output.
	start := loadWAT(t, e, "start-io", `(module
  (import "aerodb" "input_len" (func $input_len (result i32)))
  (import "aerodb" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $start
    (drop (call $input_read (i32.const 0) (call $input_len)))
    (drop (call $output (i32.const 0) (call $input_len))))
  (start $start)
  (func (export "handler") (result i32) (i32.const 0)))`)
	res := run(t, e, start, "from the start function", Limits{}, nil)
	wantStatus(t, res, StatusSuccess)
	if string(res.Output) != "from the start function" {
		t.Fatalf("output %q", res.Output)
	}
}

// TestNativeOutputLastWins: the bytes last passed to output are the
// result, across the call's buffer and C memory in either order, and a
// later change to the guest's memory does not change them.
func TestNativeOutputLastWins(t *testing.T) {
	e := newEngine(t, Config{})
	// output(0, a), then output(0, b), then memory is overwritten.
	mod := func(a, b int) string {
		return `(module
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 4)
  (func (export "handler") (result i32)
    (memory.fill (i32.const 0) (i32.const 65) (i32.const 262144))
    (drop (call $output (i32.const 0) (i32.const ` + strconv.Itoa(a) + `)))
    (memory.fill (i32.const 0) (i32.const 66) (i32.const 262144))
    (drop (call $output (i32.const 0) (i32.const ` + strconv.Itoa(b) + `)))
    (memory.fill (i32.const 0) (i32.const 67) (i32.const 262144))
    (i32.const 0)))`
	}
	for _, c := range [][2]int{{10, 20}, {10, 100000}, {100000, 10}, {100000, 200000}, {5, 0}} {
		m := loadWAT(t, e, "last-"+strconv.Itoa(c[0])+"-"+strconv.Itoa(c[1]), mod(c[0], c[1]))
		res := run(t, e, m, "", Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if want := strings.Repeat("B", c[1]); string(res.Output) != want {
			t.Fatalf("outputs of %d then %d bytes: got %d bytes starting %.8q", c[0], c[1], len(res.Output), res.Output)
		}
	}
}

// TestNativeIOBounds: the C functions refuse ranges outside memory, and
// past the output limit, with the Go functions' messages.
func TestNativeIOBounds(t *testing.T) {
	e := newEngine(t, Config{})
	for i, c := range []struct{ call, want string }{
		{`(drop (call $input_read (i32.const 65530) (i32.const 100)))`, "input_read: range [65530, +100) is outside linear memory"},
		{`(drop (call $input_read (i32.const -1) (i32.const 2)))`, "input_read: range [4294967295, +2) is outside linear memory"},
		{`(drop (call $output (i32.const 65536) (i32.const 1)))`, "output: range [65536, +1) is outside linear memory"},
		{`(drop (call $output (i32.const 0) (i32.const -1)))`, "output exceeds limit"},
	} {
		m := loadWAT(t, e, "bounds-"+strconv.Itoa(i), `(module
  (import "aerodb" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "handler") (result i32) `+c.call+` (i32.const 0)))`)
		res := run(t, e, m, "input", Limits{}, nil)
		wantStatus(t, res, StatusError)
		if !strings.Contains(res.Err.Error(), c.want) {
			t.Fatalf("%s: err %v, want %q", c.call, res.Err, c.want)
		}
	}
	// Reading into the last bytes of memory, and reading nothing at its end,
	// are in bounds.
	m := loadWAT(t, e, "bounds-edge", `(module
  (import "aerodb" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "handler") (result i32)
    (drop (call $input_read (i32.const 65536) (i32.const 0)))
    (drop (call $output (i32.const 65531) (call $input_read (i32.const 65531) (i32.const 5))))
    (i32.const 0)))`)
	res := run(t, e, m, "input-longer-than-five", Limits{}, nil)
	wantStatus(t, res, StatusSuccess)
	if string(res.Output) != "input" {
		t.Fatalf("output %q", res.Output)
	}
}

// TestNativeOutputEmpty: output of nothing is no output (nil), as with
// the Go function; after a non-empty one it is empty too.
func TestNativeOutputEmpty(t *testing.T) {
	e := newEngine(t, Config{})
	for _, c := range []struct {
		name, calls string
		wantNil     bool
	}{
		{"only-empty", `(drop (call $output (i32.const 0) (i32.const 0)))`, true},
		{"then-empty", `(drop (call $output (i32.const 0) (i32.const 3))) (drop (call $output (i32.const 0) (i32.const 0)))`, false},
	} {
		m := loadWAT(t, e, c.name, `(module
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "handler") (result i32) `+c.calls+` (i32.const 0)))`)
		res := run(t, e, m, "", Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if len(res.Output) != 0 || c.wantNil && res.Output != nil {
			t.Fatalf("%s: output %#v", c.name, res.Output)
		}
	}
}

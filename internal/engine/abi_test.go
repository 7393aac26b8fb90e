package engine

import (
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// Our preview1 signatures must be wasmtime's own, so a module built for
// standard WASI links here exactly when it would link against wasmtime-wasi.
func TestWASISignaturesMatchWasmtime(t *testing.T) {
	wt := wasmtime.NewEngine()
	l := wasmtime.NewLinker(wt)
	if err := l.DefineWasi(); err != nil {
		t.Fatal(err)
	}
	store := wasmtime.NewStore(wt)
	defer store.Close()
	n := 0
	for _, f := range hostFns {
		if f.module != wasiModule {
			continue
		}
		n++
		ext := l.Get(store, wasiModule, f.name)
		if ext == nil {
			t.Errorf("%s: not defined by wasmtime", f.name)
			continue
		}
		got := signatureOf(ext.Type(store).FuncType())
		if !got.equal(f.sig) {
			t.Errorf("%s: ours %s, wasmtime %s", f.name, f.sig, got)
		}
	}
	if n != 46 {
		t.Errorf("%d preview1 functions, want all 46", n)
	}
}

func TestABISignatures(t *testing.T) {
	want := map[string]string{
		"input_len":  "() -> (i32)",
		"input_read": "(i32, i32) -> (i32)",
		"output":     "(i32, i32) -> (i32)",
		"log":        "(i32, i32, i32) -> ()",
		"env":        "(i32, i32) -> (i32)",
		"db_query":   "(i32, i32) -> (i32)",
		"http_fetch": "(i32, i32) -> (i32)",
		"reply_read": "(i32, i32) -> (i32)",
	}
	got := hostSigs[abiModule]
	if len(got) != len(want) {
		t.Fatalf("%d aerodb functions, want %d", len(got), len(want))
	}
	for name, w := range want {
		if s, ok := got[name]; !ok || s.String() != w {
			t.Errorf("aerodb.%s: %v, want %s", name, s, w)
		}
	}
}

func TestSpan(t *testing.T) {
	mem := make([]byte, 100)
	for _, c := range []struct {
		ptr, n int32
		ok     bool
	}{
		{0, 0, true}, {0, 100, true}, {100, 0, true}, {99, 1, true},
		{99, 2, false}, {101, 0, false}, {-1, 1, false}, {0, -1, false}, {50, 0x7fffffff, false},
	} {
		b, ok := span(mem, c.ptr, c.n)
		if ok != c.ok || (ok && len(b) != int(c.n)) {
			t.Errorf("span(%d, %d) = %d bytes, %v", c.ptr, c.n, len(b), ok)
		}
	}
}

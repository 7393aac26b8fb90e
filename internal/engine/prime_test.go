package engine

import (
	"runtime"
	"syscall"
	"testing"
)

// threadFaults is the calling thread's minor page faults so far.
func threadFaults(t *testing.T) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}

// A pre-initialised module is instantiated once when it loads (prime.go),
// so its first call does not pay wasmtime's first-instantiation set-up:
// here a Go guest loaded from another engine's artifact, as a node loads a
// version another node deployed. With instance reuse the first call runs
// on the primed instance; without, the page faults of the load and of the
// first call are counted on this thread (wasmtime instantiates on the
// caller's thread): unprimed, the load takes a few dozen and the first
// call hundreds; primed, the other way round.
func TestLoadPrimesPreinitializedModule(t *testing.T) {
	wasm := goGuest(t, "hello")
	a := newEngine(t, Config{})
	loadBytes(t, a, "hello-prime", wasm)
	art, err := a.Artifact("hello-prime")
	if err != nil {
		t.Fatal(err)
	}
	for _, reuse := range []bool{true, false} {
		b := newEngine(t, Config{CacheDir: t.TempDir(), DisableReuse: !reuse})
		runtime.LockOSThread()
		f0 := threadFaults(t)
		m, err := b.LoadFrom("hello-prime", Source{Artifact: func() ([]byte, error) { return art, nil }})
		if err != nil {
			t.Fatal(err)
		}
		f1 := threadFaults(t)
		wantStatus(t, run(t, b, m, `{"name":"x"}`, Limits{}, nil), StatusSuccess)
		f2 := threadFaults(t)
		runtime.UnlockOSThread()
		load, first := f1-f0, f2-f1
		s := b.Stats()
		t.Logf("reuse %v: page faults: load %d, first call %d; %+v", reuse, load, first, s)
		if s.Primed != 1 || s.ArtifactLoads != 1 {
			t.Fatalf("%+v", s)
		}
		if b.reusable(m) {
			if s.Reused != 1 {
				t.Fatalf("the first call did not run on the primed instance: %+v", s)
			}
		} else if first*3 > load {
			t.Fatalf("the first call took %d page faults, the load %d: the module was not primed", first, load)
		}

		// A module with a start function is not instantiated outside a
		// call (the start function would run there); one without, whose
		// instances are reused (compileResettable), is.
		loadWAT(t, b, "start", `(module (memory (export "memory") 1) (func $s) (start $s) (func (export "handler") (result i32) (i32.const 0)))`)
		if s := b.Stats(); s.Primed != 1 {
			t.Fatalf("module with a start function primed: %+v", s)
		}
		plain := loadWAT(t, b, "plain", `(module (memory (export "memory") 1) (func (export "handler") (result i32) (i32.const 0)))`)
		if s := b.Stats(); s.Primed != 2 || !plain.info.resettable {
			t.Fatalf("plain module not primed (resettable %v): %+v", plain.info.resettable, s)
		}
	}
}

package engine

import (
	"strings"
	"testing"
)

// reuseScribbleWAT is a pre-initialised module that checksums all of its
// memory (4 MiB, an image at 64 KiB and bytes _initialize wrote), reports
// the sum, then writes over every page with memory.fill and scattered
// stores, and sets its global: a call on a reused instance must report the
// same sum as the first call on a fresh one.
const reuseScribbleWAT = `(module
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 64)
  (global $g (mut i32) (i32.const 0))
  (data (i32.const 65536) "an image byte range that the call overwrites")
  (func (export "_initialize")
    (global.set $g (i32.const 3))
    (i32.store (i32.const 1048576) (i32.const 0x12345678))
    (memory.fill (i32.const 2097152) (i32.const 7) (i32.const 8192)))
  (func $hex (param $p i32) (param $v i32)
    (local $i i32) (local $d i32)
    (loop $l
      (local.set $d (i32.and (i32.shr_u (local.get $v) (i32.sub (i32.const 28) (i32.mul (local.get $i) (i32.const 4)))) (i32.const 15)))
      (i32.store8 (i32.add (local.get $p) (local.get $i))
        (select (i32.add (local.get $d) (i32.const 48)) (i32.add (local.get $d) (i32.const 87)) (i32.lt_u (local.get $d) (i32.const 10))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 8)))))
  (func (export "handler") (result i32)
    (local $a i32) (local $sum i32) (local $end i32)
    (local.set $end (i32.mul (memory.size) (i32.const 65536)))
    (local.set $sum (global.get $g))
    (loop $l
      (local.set $sum (i32.add (i32.mul (local.get $sum) (i32.const 31)) (i32.load (local.get $a))))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (br_if $l (i32.lt_u (local.get $a) (local.get $end))))
    (call $hex (i32.const 0) (local.get $sum))
    (drop (call $output (i32.const 0) (i32.const 8)))
    ;; Scribble: fill a whole MiB, then one store in every page.
    (memory.fill (i32.const 3145728) (i32.const 0xAB) (i32.const 1048576))
    (local.set $a (i32.const 0))
    (loop $l
      (i32.store (i32.add (local.get $a) (i32.const 100)) (i32.xor (local.get $a) (i32.const -1)))
      (local.set $a (i32.add (local.get $a) (i32.const 4096)))
      (br_if $l (i32.lt_u (local.get $a) (local.get $end))))
    (global.set $g (i32.const 99))
    (i32.const 0)))`

// A hostile function that writes over all of its memory, in every way it
// can, leaves nothing for the next call on its instance: whether the reset
// copies the written pages back or drops them, every call sums the same
// memory as a call on a fresh instance.
//
// The same for a module without _initialize (compileResettable): its
// instances start from the state instantiation builds.
func TestReuseScribbledMemory(t *testing.T) {
	if pagemapFD() < 0 {
		t.Fatal("PAGEMAP_SCAN is not available on this kernel: instances are never reused here")
	}
	// The plain module keeps the function, unexported: nothing runs it.
	plainWAT := strings.Replace(reuseScribbleWAT, `(func (export "_initialize")`, `(func $unused`, 1)
	for kind, src := range map[string]string{"snapshot": reuseScribbleWAT, "plain": plainWAT} {
		fresh := newEngine(t, Config{PoolSlots: 1, DisableReuse: true})
		want := string(run(t, fresh, loadWAT(t, fresh, "scribble", src), "", Limits{}, nil).Output)
		if len(want) != 8 {
			t.Fatalf("%s: fresh instance output %q", kind, want)
		}
		for name, limit := range map[string]int{"copy": 1 << 30, "drop": 0} {
			t.Run(kind+"/"+name, func(t *testing.T) {
				testScribbled(t, src, limit, want)
			})
		}
	}
}

func testScribbled(t *testing.T, src string, limit int, want string) {
	old := reuseDirtyLimit
	reuseDirtyLimit = limit
	t.Cleanup(func() { reuseDirtyLimit = old })
	e := newEngine(t, Config{PoolSlots: 1})
	m := loadWAT(t, e, "scribble", src)
	const calls = 4
	runSums(t, e, m, calls, want)
	// The first call too: on the instance the load primed.
	if r := e.Stats().Reused; r != calls {
		t.Fatalf("%d of %d calls reused an instance: the test did not exercise reuse", r, calls)
	}
}

// runSums makes calls calls of a module that outputs a checksum of its
// memory (reuseScribbleWAT and its variants) and fails unless each sums
// want, what a fresh instance sums.
func runSums(t *testing.T, e *Engine, m *Module, calls int, want string) {
	t.Helper()
	for i := range calls {
		res := run(t, e, m, "", Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if got := string(res.Output); got != want {
			t.Fatalf("call %d summed %s, a fresh instance %s: state crossed calls", i, got, want)
		}
	}
}

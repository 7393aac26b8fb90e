// Package wat holds the hand-written WebAssembly modules (in WAT) that tests
// and benchmarks deploy: minimal ABI v1 functions and hostile ones.
package wat

import (
	"fmt"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// Compile turns WAT source into a module, panicking on a typo in a fixture.
func Compile(src string) []byte {
	b, err := wasmtime.Wat2Wasm(src)
	if err != nil {
		panic(fmt.Sprintf("compiling WAT fixture: %v\n%s", err, src))
	}
	return b
}

// Echo returns its event as its result.
const Echo = `(module
  (import "aerodb" "input_len" (func $len (result i32)))
  (import "aerodb" "input_read" (func $read (param i32 i32) (result i32)))
  (import "aerodb" "output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "handler") (result i32)
    (local $n i32)
    (local.set $n (call $len))
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 1))))
    (drop (call $read (i32.const 0) (local.get $n)))
    (drop (call $out (i32.const 0) (local.get $n)))
    (i32.const 0)))`

// Noop returns success and nothing else: the engine's floor.
const Noop = `(module (memory (export "memory") 1) (func (export "handler") (result i32) (i32.const 0)))`

// Const returns a module whose handler outputs text and returns rc.
func Const(text string, rc int) string {
	return fmt.Sprintf(`(module
  (import "aerodb" "output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) %q)
  (func (export "handler") (result i32)
    (drop (call $out (i32.const 0) (i32.const %d)))
    (i32.const %d)))`, text, len(text), rc)
}

// HostileText logs "bad\0text\xff" at error level, outputs the same bytes
// and returns rc: text a guest controls (a log line, an output, an error
// made of its output) holding a NUL and a byte that is not UTF-8, which a
// text or jsonb column refuses unless the host cleans it first.
func HostileText(rc int) string {
	return fmt.Sprintf(`(module
  (import "aerodb" "output" (func $out (param i32 i32) (result i32)))
  (import "aerodb" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "bad\00text\ff")
  (func (export "handler") (result i32)
    (call $log (i32.const 1) (i32.const 0) (i32.const 9))
    (drop (call $out (i32.const 0) (i32.const 9)))
    (i32.const %d)))`, rc)
}

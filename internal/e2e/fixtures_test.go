package e2e

import (
	"testing"

	"github.com/aerodb/aerofn/internal/testenv/wat"
)

// Hand-written hostile and minimal modules, in WAT, that speak ABI v1.
const (
	watEcho = wat.Echo

	watLoop = `(module
  (memory (export "memory") 1)
  (func (export "handler") (result i32)
    (loop $l (br $l))
    (i32.const 0)))`

	// watMemoryBomb grows memory a page at a time until growth is refused,
	// then traps, as a runaway allocator would.
	watMemoryBomb = `(module
  (memory (export "memory") 1)
  (func (export "handler") (result i32)
    (loop $l
      (if (i32.ne (memory.grow (i32.const 16)) (i32.const -1)) (then (br $l))))
    unreachable))`

	watRecursion = `(module
  (memory (export "memory") 1)
  (func $f (param i32) (result i32) (call $f (i32.add (local.get 0) (i32.const 1))))
  (func (export "handler") (result i32) (call $f (i32.const 0))))`

	watUnreachable = `(module
  (memory (export "memory") 1)
  (func (export "handler") (result i32) unreachable))`

	// watHugeOutput offers 8 MiB as its result.
	watHugeOutput = `(module
  (import "aerodb" "output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 129)
  (func (export "handler") (result i32)
    (drop (call $out (i32.const 0) (i32.const 8388608)))
    (i32.const 0)))`

	// watEnvLog logs and returns env("API_KEY") as {"k": value}, or 1.
	watEnv = `(module
  (import "aerodb" "env" (func $env (param i32 i32) (result i32)))
  (import "aerodb" "reply_read" (func $rr (param i32 i32) (result i32)))
  (import "aerodb" "log" (func $log (param i32 i32 i32)))
  (import "aerodb" "output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "API_KEY")
  (data (i32.const 16) "{\"k\":\"")
  (func (export "handler") (result i32)
    (local $n i32)
    (local.set $n (call $env (i32.const 0) (i32.const 7)))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then
      (call $log (i32.const 1) (i32.const 0) (i32.const 7))
      (drop (call $out (i32.const 0) (i32.const 7)))
      (return (i32.const 1))))
    (drop (call $rr (i32.const 22) (local.get $n)))
    (i32.store8 (i32.add (i32.const 22) (local.get $n)) (i32.const 34))
    (i32.store8 (i32.add (i32.const 23) (local.get $n)) (i32.const 125))
    ;; log the secret: it must come out redacted
    (call $log (i32.const 1) (i32.const 22) (local.get $n))
    (drop (call $out (i32.const 16) (i32.add (local.get $n) (i32.const 8))))
    (i32.const 0)))`

	watBadImport = `(module
  (import "env" "socket_open" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "handler") (result i32) (i32.const 0)))`

	watNoHandler = `(module (memory (export "memory") 1))`
)

func compile(t testing.TB, src string) []byte {
	t.Helper()
	return wat.Compile(src)
}

// watSleep sleeps 600 ms through WASI poll_oneoff, then answers {"slept":true}.
const watSleep = `(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "aerodb" "output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "{\"slept\":true}")
  (func (export "handler") (result i32)
    ;; subscription at 0: userdata 0, tag 0 (clock), clock id 1 (monotonic) at 16,
    ;; timeout 600 ms at 24, precision 0, flags 0 (relative)
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 600000000))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
    (drop (call $out (i32.const 200) (i32.const 14)))
    (i32.const 0)))`

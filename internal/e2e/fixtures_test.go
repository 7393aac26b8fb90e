package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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

// watSignalThen fetches url (the test learns from that request that the
// call is running, and may hold it there), then runs tail, then answers
// {"done":true}. tail is WAT instructions that leave nothing on the stack.
func watSignalThen(url, tail string) string {
	req := fmt.Sprintf(`{"url":%q}`, url)
	return fmt.Sprintf(`(module
  (import "aerodb" "http_fetch" (func $fetch (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "aerodb" "output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "{\"done\":true}")
  (data (i32.const 1024) %q)
  (func $sleep (param $ns i64)
    ;; one subscription at 0: userdata 0, tag 0 (clock), clock id 1
    ;; (monotonic) at 16, timeout at 24, precision 0, flags 0 (relative)
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (local.get $ns))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))))
  (func (export "handler") (result i32)
    (drop (call $fetch (i32.const 1024) (i32.const %d)))
    %s
    (drop (call $out (i32.const 200) (i32.const 13)))
    (i32.const 0)))`, req, len(req), tail)
}

// Tails for watSignalThen.
const (
	tailNone = ``
	// tailSpin never returns: only an interruption ends it.
	tailSpin = `(loop $l (br $l))`
)

// tailSleep sleeps d in poll_oneoff: the guest waits in the host.
func tailSleep(d time.Duration) string {
	return fmt.Sprintf(`(call $sleep (i64.const %d))`, d.Nanoseconds())
}

// signalServer is where watSignalThen's calls announce themselves: each
// request sends its path on Arrived, then waits until Release is closed (or
// the call goes away).
type signalServer struct {
	*httptest.Server
	Arrived chan string
	Release chan struct{}
}

func newSignalServer(t *testing.T, hold bool) *signalServer {
	t.Helper()
	s := &signalServer{Arrived: make(chan string, 100), Release: make(chan struct{})}
	if !hold {
		close(s.Release)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Arrived <- r.URL.Path
		select {
		case <-s.Release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// wait returns once n calls have arrived, failing the test after d.
func (s *signalServer) wait(t *testing.T, n int, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for i := 0; i < n; i++ {
		select {
		case <-s.Arrived:
		case <-timeout:
			t.Fatalf("%d of %d calls started within %v", i, n, d)
		}
	}
}

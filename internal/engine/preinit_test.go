package engine

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/aerodb/aerofn/internal/latency"
)

// Go guests are built once per test binary, and compiled once into a shared
// cache directory (a pre-initialised Load compiles twice, seconds for a Go
// module); each test still gets engines of its own.
var goGuests struct {
	mu       sync.Mutex
	wasm     map[string][]byte
	cacheDir string
}

func TestMain(m *testing.M) {
	flag.Parse()
	// Every reset that skips the scan checks that it could (not in
	// benchmarks, which measure the skip).
	reuseCheckKnown = flag.Lookup("test.bench").Value.String() == ""
	code := m.Run()
	if goGuests.cacheDir != "" {
		os.RemoveAll(goGuests.cacheDir)
	}
	os.Exit(code)
}

// goGuest builds the Go program in testdata/<name> (or, for "hello", uses
// bin/examples/hello.wasm when AEROFN_EXAMPLES_DIR or `make examples` left
// one) as the SDK's users do.
func goGuest(t testing.TB, name string) []byte {
	t.Helper()
	goGuests.mu.Lock()
	defer goGuests.mu.Unlock()
	if b, ok := goGuests.wasm[name]; ok {
		return b
	}
	pkg := "./internal/engine/testdata/" + name
	if name == "hello" {
		for _, dir := range []string{os.Getenv("AEROFN_EXAMPLES_DIR"), "../../bin/examples"} {
			if b, err := os.ReadFile(filepath.Join(dir, "hello.wasm")); dir != "" && err == nil {
				return b
			}
		}
		pkg = "./examples/hello"
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build Go guests")
	}
	out, err := os.CreateTemp("", "aerofn-engine-"+name+"-*.wasm")
	if err != nil {
		t.Fatal(err)
	}
	out.Close()
	defer os.Remove(out.Name())
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out.Name(), pkg)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
	b, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if goGuests.wasm == nil {
		goGuests.wasm = map[string][]byte{}
	}
	goGuests.wasm[name] = b
	return b
}

// goEngine returns an engine sharing the Go guests' cache directory.
func goEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	goGuests.mu.Lock()
	if goGuests.cacheDir == "" {
		dir, err := os.MkdirTemp("", "aerofn-engine-cache-")
		if err != nil {
			goGuests.mu.Unlock()
			t.Fatal(err)
		}
		goGuests.cacheDir = dir
	}
	cfg.CacheDir = goGuests.cacheDir
	goGuests.mu.Unlock()
	return newEngine(t, cfg)
}

func loadBytes(t testing.TB, e *Engine, hash string, wasm []byte) *Module {
	t.Helper()
	m, err := e.Load(hash, func() ([]byte, error) { return wasm, nil })
	if err != nil {
		t.Fatalf("loading %s: %v", hash, err)
	}
	return m
}

func loadWAT(t testing.TB, e *Engine, hash, src string) *Module {
	t.Helper()
	wasm, err := wasmtime.Wat2Wasm(src)
	if err != nil {
		t.Fatal(err)
	}
	return loadBytes(t, e, hash, wasm)
}

func wantPreinit(t testing.TB, m *Module, want bool, reason string) {
	t.Helper()
	ok, err := m.Preinitialized()
	if ok != want {
		t.Fatalf("pre-initialised %v (%v), want %v", ok, err, want)
	}
	if reason != "" && (err == nil || !strings.Contains(err.Error(), reason)) {
		t.Fatalf("reason %v, want one mentioning %q", err, reason)
	}
}

// watPreinitState changes, during _initialize, everything a snapshot must
// carry: memory size and contents, mutable globals of every type (none
// exported), and it has a start function, a table filled by an element
// segment, and an unused passive data segment. handler checks all of it and
// returns the number of the first check that fails, then changes the state,
// which the next call must not see.
const watPreinitState = `(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (type $ret (func (result i32)))
  (memory (export "memory") 1 4)
  (table 2 funcref)
  (elem (i32.const 0) $seven $eight)
  (global $i32 (mut i32) (i32.const 0))
  (global $i64 (mut i64) (i64.const 0))
  (global $f32 (mut f32) (f32.const 0))
  (global $f64 (mut f64) (f64.const 0))
  (global $k i32 (i32.const 5))
  (global $started (mut i32) (i32.const 0))
  (data (i32.const 16) "from the data segment")
  (data "passive, never used")
  (start $start)
  (func $start (global.set $started (i32.add (global.get $started) (i32.const 1))))
  (func $seven (result i32) (i32.const 7))
  (func $eight (result i32) (i32.const 8))
  (func (export "_initialize")
    (drop (memory.grow (i32.const 2)))
    (i32.store (i32.const 196604) (i32.const 0x01020304))
    (global.set $i32 (i32.const -42))
    (global.set $i64 (i64.const 0x123456789abcdef0))
    (global.set $f32 (f32.const 1.5))
    (global.set $f64 (f64.const -2.25))
    (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 1024))))
  (func (export "handler") (result i32)
    (if (i32.ne (memory.size) (i32.const 3)) (then (return (i32.const 1))))
    (if (i32.ne (i32.load (i32.const 196604)) (i32.const 0x01020304)) (then (return (i32.const 2))))
    (if (i32.ne (global.get $i32) (i32.const -42)) (then (return (i32.const 3))))
    (if (i64.ne (global.get $i64) (i64.const 0x123456789abcdef0)) (then (return (i32.const 4))))
    (if (f32.ne (global.get $f32) (f32.const 1.5)) (then (return (i32.const 5))))
    (if (f64.ne (global.get $f64) (f64.const -2.25)) (then (return (i32.const 6))))
    (if (i32.ne (global.get $started) (i32.const 1)) (then (return (i32.const 7))))
    (if (i32.ne (global.get $k) (i32.const 5)) (then (return (i32.const 8))))
    (if (i32.ne (call_indirect (type $ret) (i32.const 1)) (i32.const 8)) (then (return (i32.const 9))))
    ;; the monotonic clock carries on from init: not back, and not a jump
    (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 1032)))
    (if (i64.lt_u (i64.load (i32.const 1032)) (i64.load (i32.const 1024))) (then (return (i32.const 10))))
    (if (i64.gt_u (i64.sub (i64.load (i32.const 1032)) (i64.load (i32.const 1024))) (i64.const 1000000000))
      (then (return (i32.const 11))))
    (global.set $i32 (i32.const 0))
    (i32.store (i32.const 196604) (i32.const 0))
    (drop (call $output (i32.const 16) (i32.const 21)))
    (i32.const 0)))`

func TestPreinitCarriesState(t *testing.T) {
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisablePreinit=%v", disable), func(t *testing.T) {
			dir := t.TempDir()
			e := newEngine(t, Config{CacheDir: dir, DisablePreinit: disable})
			m := loadWAT(t, e, "state", watPreinitState)
			wantPreinit(t, m, !disable, "")
			for range 3 {
				res := run(t, e, m, "", Limits{}, nil)
				wantStatus(t, res, StatusSuccess)
				if string(res.Output) != "from the data segment" || res.MemoryPeak != 3*wasmPage {
					t.Fatalf("output %q, peak %d", res.Output, res.MemoryPeak)
				}
			}
			if s := e.Stats(); s.Preinitialized != map[bool]uint64{false: 1, true: 0}[disable] || s.PreinitFailures != 0 {
				t.Fatalf("stats %+v", s)
			}
			if disable {
				return
			}

			// The snapshot counts against the memory cap from the start.
			res := run(t, e, m, "", Limits{MemoryBytes: 2 * wasmPage}, nil)
			wantStatus(t, res, StatusMemoryExceeded)

			// Reloaded from the cache directory, the module is still
			// pre-initialised and its clocks still carry on from init.
			e.persisting.Wait()
			e2 := newEngine(t, Config{CacheDir: dir})
			m2, err := e2.Load("state", func() ([]byte, error) { t.Fatal("fetched on a disk-cache hit"); return nil, nil })
			if err != nil {
				t.Fatal(err)
			}
			wantPreinit(t, m2, true, "")
			if m2.info.initElapsed != m.info.initElapsed {
				t.Fatalf("init took %v, reloaded as %v", m.info.initElapsed, m2.info.initElapsed)
			}
			wantStatus(t, run(t, e2, m2, "", Limits{}, nil), StatusSuccess)
		})
	}
}

// A module that was not pre-initialised when it could have been (cached by
// an engine without pre-initialisation) is pre-initialised when loaded by
// one with it, and the old artifact is removed.
func TestPreinitReplacesPlainArtifact(t *testing.T) {
	dir := t.TempDir()
	e1 := newEngine(t, Config{CacheDir: dir, DisablePreinit: true})
	wantPreinit(t, loadWAT(t, e1, "state", watPreinitState), false, "")
	e1.persisting.Wait() // the plain artifact is on the disk under its name
	e2 := newEngine(t, Config{CacheDir: dir})
	wantPreinit(t, loadWAT(t, e2, "state", watPreinitState), true, "")
	e2.persisting.Wait()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "state.v2.preinit.cwasm" {
		t.Fatalf("cache dir holds %v", entries)
	}
}

// Modules that cannot be pre-initialised still load, and run _initialize on
// every call as before.
func TestPreinitFallback(t *testing.T) {
	const tmpl = `(module
  (import "aerodb" "env" (func $env (param i32 i32) (result i32)))
  (import "aerodb" "reply_read" (func $reply_read (param i32 i32) (result i32)))
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (import "aerodb" "log" (func $log (param i32 i32 i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table 1 funcref)
  (global $n (mut i32) (i32.const 0))
  (data (i32.const 0) "KEY")
  (data (i32.const 8) "\10\00\00\00\05\00\00\00")
  (data (i32.const 16) "init\n")
  ;; a poll_oneoff subscription: sleep 10 s on the monotonic clock
  (data (i32.const 216) "\01\00\00\00\00\00\00\00\00\e4\0b\54\02\00\00\00")
  (data $p "x")
  (func (export "_initialize") %s)
  (func (export "handler") (result i32)
    (drop (call $output (i32.const 100) (global.get $n)))
    (i32.const 0)))`
	for _, c := range []struct {
		name, init, reason string
		status             Status
		output             string
	}{
		{"env", `(global.set $n (call $env (i32.const 0) (i32.const 3)))
		         (drop (call $reply_read (i32.const 100) (global.get $n)))`, "called aerodb.env", StatusSuccess, "secret"},
		{"stdout", `(drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 24)))`,
			"called wasi_snapshot_preview1.fd_write", StatusSuccess, ""},
		{"table", `(table.set (i32.const 0) (ref.null func))`, "table.set changes a table", StatusSuccess, ""},
		{"data-drop", `(data.drop $p)`, "data.drop changes data segments", StatusSuccess, ""},
		{"log", `(call $log (i32.const 1) (i32.const 16) (i32.const 4))`, "called aerodb.log", StatusSuccess, ""},
		{"exit", `(call $proc_exit (i32.const 0))`, "called wasi_snapshot_preview1.proc_exit", StatusSuccess, ""},
		{"trap", `unreachable`, "_initialize failed: wasm trap", StatusError, ""},
		{"loop", `(loop $l (br $l))`, "did not finish within", StatusTimeout, ""},
		{"sleep", `(drop (call $poll (i32.const 200) (i32.const 300) (i32.const 1) (i32.const 400)))`, "did not finish within", StatusTimeout, ""},
		// Past the 4 pages pre-initialisation allows here (grow returns -1).
		{"memory", `(if (i32.eq (memory.grow (i32.const 8)) (i32.const -1)) (then unreachable))`,
			"growing memory by 8 pages from 65536 bytes was refused, limit 262144", StatusSuccess, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func(l Limits) { preinitLimits = l }(preinitLimits)
			preinitLimits.Timeout = 100 * time.Millisecond
			preinitLimits.MemoryBytes = 4 * wasmPage
			e := newEngine(t, Config{})
			compiles := wasmtimeCompiles.Load()
			m := loadWAT(t, e, c.name, fmt.Sprintf(tmpl, c.init))
			// The attempt ran on the interpreter; wasmtime compiled the
			// module once, as it is. A run past the deadline is tried
			// again on wasmtime (the interpreter being slower), which
			// compiles it cheaply first.
			want := uint64(1)
			if c.status == StatusTimeout {
				want = 2
			}
			if n := wasmtimeCompiles.Load() - compiles; n != want {
				t.Fatalf("wasmtime compiled %d modules, want %d", n, want)
			}
			if s := e.Stats(); s.InitRetries != want-1 {
				t.Fatalf("stats %+v", s)
			}
			wantPreinit(t, m, false, c.reason)
			if s := e.Stats(); s.Preinitialized != 0 || s.PreinitFailures != 1 || s.Compiles != 1 {
				t.Fatalf("stats %+v", s)
			}
			host := &fakeHost{env: map[string]string{"KEY": "secret"}}
			for range 2 {
				res := run(t, e, m, "", Limits{Timeout: 100 * time.Millisecond}, host)
				wantStatus(t, res, c.status)
				if string(res.Output) != c.output {
					t.Fatalf("output %q, want %q", res.Output, c.output)
				}
				if (c.name == "stdout" || c.name == "log") && (len(res.Logs) != 1 || res.Logs[0].Message != "init") {
					t.Fatalf("logs %+v", res.Logs)
				}
			}
		})
	}
}

// _initialize runs on the interpreter: a pre-initialising Load has wasmtime
// compile one module, the snapshot, as a Load without pre-initialisation
// does.
func TestPreinitDoesNotCompileWithWasmtime(t *testing.T) {
	for _, disable := range []bool{false, true} {
		e := newEngine(t, Config{DisablePreinit: disable})
		compiles := wasmtimeCompiles.Load()
		m := loadWAT(t, e, "state", watPreinitState)
		wantPreinit(t, m, !disable, "")
		if n := wasmtimeCompiles.Load() - compiles; n != 1 {
			t.Fatalf("DisablePreinit=%v: wasmtime compiled %d modules, want 1", disable, n)
		}
		want := map[bool]uint64{false: 1, true: 0}[disable]
		if s := e.Stats(); s.InitCompiles != want || s.Compiles != 1 {
			t.Fatalf("DisablePreinit=%v: stats %+v", disable, s)
		}
	}
}

// A custom section the interpreter refuses (valid: a name and nothing
// after it) does not send _initialize back to Cranelift: the interpreter's
// copy has no custom sections, and the snapshot keeps the module's.
func TestPreinitIgnoresCustomSections(t *testing.T) {
	wasm, err := wasmtime.Wat2Wasm(watPreinitState)
	if err != nil {
		t.Fatal(err)
	}
	wasm = appendSection(wasm, secCustom, appendName(nil, "a"))
	e := newEngine(t, Config{})
	compiles := wasmtimeCompiles.Load()
	m := loadBytes(t, e, "custom", wasm)
	wantPreinit(t, m, true, "")
	if s := e.Stats(); s.InitRetries != 0 || wasmtimeCompiles.Load()-compiles != 1 {
		t.Fatalf("stats %+v, %d wasmtime compiles: _initialize went back to Cranelift", s, wasmtimeCompiles.Load()-compiles)
	}
	if res := run(t, e, m, "", Limits{}, nil); res.Status != StatusSuccess {
		t.Fatalf("%s %v %q", res.Status, res.Err, res.Output)
	}
}

// The memory cap of the run of _initialize is the one a call has, whatever
// maximum the module declares: a grow past it returns -1 to the guest (and
// the grow guard's record of it is not part of the snapshot), a grow within
// it succeeds, and a module declaring a maximum over the cap is still
// pre-initialised.
func TestPreinitMemoryCap(t *testing.T) {
	defer func(l Limits) { preinitLimits = l }(preinitLimits)
	preinitLimits.MemoryBytes = 8 * wasmPage
	e := newEngine(t, Config{})
	m := loadWAT(t, e, "cap", `(module
  (memory (export "memory") 1 65536)
  (global $refused (mut i32) (i32.const 0))
  (func (export "_initialize")
    (drop (memory.grow (i32.const 3)))
    (global.set $refused (memory.grow (i32.const 100))))
  (func (export "handler") (result i32)
    (if (i32.ne (memory.size) (i32.const 4)) (then (return (i32.const 1))))
    (if (i32.ne (global.get $refused) (i32.const -1)) (then (return (i32.const 2))))
    (i32.const 0)))`)
	wantPreinit(t, m, true, "")
	res := run(t, e, m, "", Limits{}, nil)
	wantStatus(t, res, StatusSuccess)
	if res.MemoryPeak != 4*wasmPage {
		t.Fatalf("peak %d", res.MemoryPeak)
	}
}

// A run of _initialize the interpreter gives up on for a reason of its own
// (here: more nested calls than it allows) is done again on wasmtime, and
// the module is pre-initialised all the same.
func TestPreinitInterpreterGivesUp(t *testing.T) {
	e := newEngine(t, Config{})
	compiles := wasmtimeCompiles.Load()
	m := loadWAT(t, e, "deep", `(module
  (memory (export "memory") 1)
  (global $done (mut i32) (i32.const 0))
  (func $rec (param i32)
    (if (local.get 0) (then (call $rec (i32.sub (local.get 0) (i32.const 1))))))
  (func (export "_initialize")
    (call $rec (i32.const 3000))
    (global.set $done (i32.const 1)))
  (func (export "handler") (result i32)
    (i32.sub (i32.const 1) (global.get $done))))`)
	wantPreinit(t, m, true, "")
	if n := wasmtimeCompiles.Load() - compiles; n != 2 {
		t.Fatalf("wasmtime compiled %d modules, want 2", n)
	}
	if s := e.Stats(); s.InitRetries != 1 || s.InitCompiles != 2 || s.Preinitialized != 1 {
		t.Fatalf("stats %+v", s)
	}
	wantStatus(t, run(t, e, m, "", Limits{}, nil), StatusSuccess)
}

func TestReservedExportRefused(t *testing.T) {
	wasm, err := wasmtime.Wat2Wasm(`(module (memory (export "memory") 1)
  (func (export "handler") (result i32) (i32.const 0))
  (func (export "_initialize"))
  (func (export "aerofn:preinit:0")))`)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, Config{})
	for _, err := range []error{
		e.Validate(wasm),
		func() error { _, err := e.Load("reserved", func() ([]byte, error) { return wasm, nil }); return err }(),
	} {
		if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), `export "aerofn:preinit:0": names beginning with "aerofn:" are reserved`) {
			t.Fatalf("err %v", err)
		}
	}
}

// The Go runtime and the SDK run from a snapshot as they do after their own
// _initialize.
func TestPreinitGoGuest(t *testing.T) {
	wasm := goGuest(t, "goguest")
	e := goEngine(t, Config{})
	m := loadBytes(t, e, "goguest", wasm)
	wantPreinit(t, m, true, "")

	call := func(body string, lim Limits, host Host) Result {
		t.Helper()
		return run(t, e, m, `{"trigger":"http","body":`+body+`}`, lim, host)
	}
	decode := func(res Result, v any) {
		t.Helper()
		wantStatus(t, res, StatusSuccess)
		if err := json.Unmarshal(res.Output, v); err != nil {
			t.Fatalf("output %q: %v", res.Output, err)
		}
	}

	t.Run("state", func(t *testing.T) {
		for range 3 {
			var out struct {
				Calls     int   `json:"calls"`
				Table     int   `json:"table"`
				SinceInit int64 `json:"since_init"`
				InitUnix  int64 `json:"init_unix"`
				NowUnix   int64 `json:"now_unix"`
			}
			decode(call(`{"do":"state"}`, Limits{}, nil), &out)
			// Every call starts from the snapshot; the clocks carry on from
			// init (time.Since a time taken in init is small and positive);
			// wall-clock time taken in init is the deploy's.
			if out.Calls != 1 || out.Table != 2 || out.SinceInit < 0 || out.SinceInit > int64(time.Second) || out.InitUnix > out.NowUnix {
				t.Fatalf("state %+v", out)
			}
		}
	})
	t.Run("random", func(t *testing.T) {
		var a, b struct {
			Math   int64
			Crypto string
		}
		decode(call(`{"do":"rand"}`, Limits{}, nil), &a)
		decode(call(`{"do":"rand"}`, Limits{}, nil), &b)
		if a.Crypto == b.Crypto {
			t.Fatalf("crypto/rand gave %s twice", a.Crypto)
		}
		// Documented in docs/ABI.md: the runtime's random state is set
		// during initialisation, so math/rand starts the same in every call.
		if a.Math != b.Math {
			t.Fatalf("math/rand gave %d then %d: the runtime's random state is no longer part of the snapshot; update docs/ABI.md", a.Math, b.Math)
		}
	})
	t.Run("logs", func(t *testing.T) {
		res := call(`{"do":"log"}`, Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		var got []string
		for _, l := range res.Logs {
			got = append(got, l.Level+" "+l.Message)
		}
		if want := []string{"info to stdout", "info via log", "error partial to stderr"}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("logs %q, want %q", got, want)
		}
	})
	t.Run("goroutines and timers", func(t *testing.T) {
		var sum int
		decode(call(`{"do":"goroutines"}`, Limits{}, nil), &sum)
		var slept int64
		decode(call(`{"do":"sleep","ms":20}`, Limits{}, nil), &slept)
		if sum != 45 || slept < 20 {
			t.Fatalf("sum %d, slept %d ms", sum, slept)
		}
	})
	t.Run("env", func(t *testing.T) {
		var v string
		decode(call(`{"do":"env"}`, Limits{}, &fakeHost{env: map[string]string{"KEY": "per call"}}), &v)
		if v != "per call" {
			t.Fatalf("env %q", v)
		}
	})
	t.Run("panic", func(t *testing.T) {
		res := call(`{"do":"panic"}`, Limits{}, nil)
		wantStatus(t, res, StatusError)
		if string(res.Output) != "panic: boom" {
			t.Fatalf("output %q", res.Output)
		}
	})
	t.Run("memory", func(t *testing.T) {
		if m.info.minMemory < 1<<20 {
			t.Fatalf("snapshot memory %d bytes", m.info.minMemory)
		}
		// Below the snapshot's size nothing runs, as the runtime could not
		// have initialised.
		wantStatus(t, call(`{"do":"state"}`, Limits{MemoryBytes: m.info.minMemory - wasmPage}, nil), StatusMemoryExceeded)
		res := call(`{"do":"alloc","mib":4}`, Limits{MemoryBytes: 32 << 20}, nil)
		wantStatus(t, res, StatusSuccess)
		if res.MemoryPeak < m.info.minMemory+4<<20 {
			t.Fatalf("peak %d", res.MemoryPeak)
		}
		res = call(`{"do":"alloc","mib":64}`, Limits{MemoryBytes: 32 << 20}, nil)
		wantStatus(t, res, StatusMemoryExceeded)
	})
	t.Run("timeout", func(t *testing.T) {
		res := promptly(t, 250*time.Millisecond, func() Result { return call(`{"do":"loop"}`, Limits{Timeout: 100 * time.Millisecond}, nil) })
		wantStatus(t, res, StatusTimeout)
	})
	t.Run("from disk", func(t *testing.T) {
		e2 := goEngine(t, Config{})
		m2 := loadBytes(t, e2, "goguest", wasm)
		wantPreinit(t, m2, true, "")
		if e2.Stats().DiskLoads != 1 {
			t.Fatalf("stats %+v", e2.Stats())
		}
		wantStatus(t, run(t, e2, m2, `{"trigger":"http","body":{"do":"state"}}`, Limits{}, nil), StatusSuccess)
	})
}

// A Go guest whose init reads the environment is not pre-initialised: the
// snapshot would hold a secret, and every call its value. It runs init per
// call and sees each call's value.
func TestPreinitGoGuestReadingEnvInInit(t *testing.T) {
	e := goEngine(t, Config{})
	m := loadBytes(t, e, "goinitenv", goGuest(t, "goinitenv"))
	wantPreinit(t, m, false, "_initialize called aerodb.env")
	for _, v := range []string{"one", "two"} {
		res := run(t, e, m, "", Limits{}, &fakeHost{env: map[string]string{"KEY": v}})
		wantStatus(t, res, StatusSuccess)
		if string(res.Output) != `"`+v+`"` {
			t.Fatalf("output %q, want %q", res.Output, v)
		}
	}
}

// TestColdStartGo compares a Go guest's cold start with and without
// pre-initialisation, interleaved so machine noise hits both alike.
func TestColdStartGo(t *testing.T) {
	wasm := goGuest(t, "goguest")
	pre := goEngine(t, Config{})
	perCall := goEngine(t, Config{DisablePreinit: true})
	mods := []*Module{loadBytes(t, pre, "goguest", wasm), loadBytes(t, perCall, "goguest", wasm)}
	wantPreinit(t, mods[0], true, "")
	wantPreinit(t, mods[1], false, "")
	in := []byte(`{"trigger":"http","body":{"do":"state"}}`)
	var samples [2][]time.Duration
	for range 5 {
		for i, e := range []*Engine{pre, perCall} {
			for range 100 {
				t0 := time.Now()
				if res := e.Run(context.Background(), mods[i], in, Limits{}, nil); res.Status != StatusSuccess {
					t.Fatal(res.Err)
				}
				samples[i] = append(samples[i], time.Since(t0))
			}
		}
	}
	a, b := latency.Summarize(samples[0]), latency.Summarize(samples[1])
	t.Logf("pre-initialised: %v", a)
	t.Logf("_initialize per call: %v", b)
	if a.P50 >= b.P50 {
		t.Fatalf("pre-initialised p50 %v is not below per-call p50 %v", a.P50, b.P50)
	}
}

// TestGoCallTakesNoNewSpan: the SDK's aerofn_before_snapshot leaves every
// small size class of the Go allocator a fresh span in the snapshot
// (warmAllocator, sdk/go/warm_wasip1.go), so a call's allocations take no
// new span from the heap: the handler of testdata/goheap allocates objects
// of sizes up to 2 KiB and finds the heap's in-use spans unchanged.
func TestGoCallTakesNoNewSpan(t *testing.T) {
	e := goEngine(t, Config{})
	m := loadBytes(t, e, "goheap", goGuest(t, "goheap"))
	if ok, _ := m.Preinitialized(); !ok {
		t.Fatal("goheap was not pre-initialised")
	}
	event := []byte(`{"trigger":"http","method":"POST","path":"/","headers":{"content-length":"16","content-type":"application/json"},"query":{},"headers_all":{"content-length":["16"],"content-type":["application/json"]},"query_all":{},"body":{"name":"World"},"user_id":null,"role":"anon","request_id":"5f973528-7d90-43ea-b3fa-b8c5c5c8c1f0"}`)
	for i := range 3 {
		res := e.Run(context.Background(), m, event, Limits{}, nil)
		if res.Status != StatusSuccess {
			t.Fatalf("call %d: %s: %v %s", i, res.Status, res.Err, res.Output)
		}
		var out struct {
			AtStart     uint64 `json:"at_start"`
			InCall      uint64 `json:"in_call"`
			Name        string `json:"name"`
			ContentType string `json:"content_type"`
		}
		if err := json.Unmarshal(res.Output, &out); err != nil {
			t.Fatalf("call %d: %v: %s", i, err, res.Output)
		}
		if out.Name != "World" || out.ContentType != "application/json" {
			t.Fatalf("call %d: the event was not decoded: %s", i, res.Output)
		}
		if out.InCall != out.AtStart {
			t.Fatalf("call %d: the heap's in-use spans went from %d bytes at the handler's start to %d after its allocations: it took new spans", i, out.AtStart, out.InCall)
		}
	}
}

// watBeforeSnapshot counts what ran before a call in $ran: 1 for
// _initialize (which first recurses $rec levels deep: 3,000 makes the interpreter
// give up, so the snapshot is built on wasmtime), 10 more for
// aerofn_before_snapshot, which a test may give more to do first. handler
// outputs the count as a digit from 0.
const watBeforeSnapshot = `(module
  (import "aerodb" "output" (func $output (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $ran (mut i32) (i32.const 0))
  (func $rec (param i32)
    (if (local.get 0) (then (call $rec (i32.sub (local.get 0) (i32.const 1))))))
  (func (export "_initialize")
    (call $rec (i32.const %d))
    (global.set $ran (i32.add (global.get $ran) (i32.const 1))))
  (func (export "aerofn_before_snapshot") %s
    (global.set $ran (i32.add (global.get $ran) (i32.const 10))))
  (func (export "handler") (result i32)
    (i32.store8 (i32.const 0) (i32.add (i32.const 48) (global.get $ran)))
    (drop (call $output (i32.const 0) (i32.const 1)))
    (i32.const 0)))`

// TestBeforeSnapshot: aerofn_before_snapshot runs once, after _initialize,
// when the engine snapshots a module (on the interpreter or on wasmtime),
// and never when _initialize runs in every call; one that calls what
// initialisation may not, or has another type, leaves the module
// initialised per call, where it is not called either (docs/ABI.md).
func TestBeforeSnapshot(t *testing.T) {
	for _, c := range []struct {
		name    string
		depth   int
		body    string
		disable bool
		preinit bool
		reason  string
		out     string // '1' + 10 = ';': both ran; '1': _initialize alone
	}{
		{name: "snapshot", preinit: true, out: ";"},
		{name: "snapshot built on wasmtime", depth: 3000, preinit: true, out: ";"},
		{name: "init per call", disable: true, out: "1"},
		{name: "calls output", body: "(drop (call $output (i32.const 0) (i32.const 0)))", reason: "aerofn_before_snapshot called aerodb.output", out: "1"},
		{name: "calls output, on wasmtime", depth: 3000, body: "(drop (call $output (i32.const 0) (i32.const 0)))", reason: "aerofn_before_snapshot called aerodb.output", out: "1"},
		{name: "traps", body: "unreachable", reason: "aerofn_before_snapshot failed: wasm trap: unreachable", out: "1"},
		{name: "takes a parameter", body: "(param i32)", reason: "aerofn_before_snapshot is not a function () -> ()", out: "1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(t, Config{DisablePreinit: c.disable})
			m := loadWAT(t, e, "before-snapshot", fmt.Sprintf(watBeforeSnapshot, c.depth, c.body))
			wantPreinit(t, m, c.preinit, c.reason)
			if retried := e.Stats().InitRetries == 1; retried != (c.depth > 0) {
				t.Fatalf("stats %+v: the run was retried on wasmtime: %v", e.Stats(), retried)
			}
			for range 3 {
				res := run(t, e, m, "", Limits{}, nil)
				wantStatus(t, res, StatusSuccess)
				if string(res.Output) != c.out {
					t.Fatalf("output %q, want %q", res.Output, c.out)
				}
			}
		})
	}
}

// TestGoWarmingStopsShortOfTheGoal: a guest whose init keeps more than half
// the collector's goal live (testdata/goheapfull) is not warmed, so the
// warming can never bring a collection into init or into its calls: its
// handler's first object of an unused class takes a new span.
func TestGoWarmingStopsShortOfTheGoal(t *testing.T) {
	e := goEngine(t, Config{})
	m := loadBytes(t, e, "goheapfull", goGuest(t, "goheapfull"))
	wantPreinit(t, m, true, "")
	res := run(t, e, m, "", Limits{}, nil)
	wantStatus(t, res, StatusSuccess)
	if string(res.Output) != `{"ballast":3145728,"took_span":true}` {
		t.Fatalf("output %s, want a new span taken (the allocator not warmed)", res.Output)
	}
}

// TestBeforeSnapshotTypeOnWasmtime: the run on wasmtime checks the export's
// type too. The interpreter refuses a mistyped export before running
// anything, so that check is reached only when the interpreter refused the
// module itself; snapshotCompiled is called directly here.
func TestBeforeSnapshotTypeOnWasmtime(t *testing.T) {
	e := newEngine(t, Config{})
	wasm, err := wasmtime.Wat2Wasm(fmt.Sprintf(watBeforeSnapshot, 0, "(param i32)"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseWasm(wasm)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.snapshotCompiled(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), "aerofn_before_snapshot is not a function () -> ()") {
		t.Fatalf("snapshot on wasmtime: %v, want the export's type refused", err)
	}
}

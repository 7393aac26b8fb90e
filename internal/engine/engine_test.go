package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// fixture compiles testdata/<name>.wat to wasm.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	wasm, err := wasmtime.Wat2Wasm(string(fixtureText(t, name)))
	if err != nil {
		t.Fatalf("assembling %s.wat: %v", name, err)
	}
	return wasm
}

// fixtureText is testdata/<name>.wat.
func fixtureText(t testing.TB, name string) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name+".wat"))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func newEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// load loads a fixture under its own name as the hash.
func load(t testing.TB, e *Engine, name string) *Module {
	t.Helper()
	wasm := fixture(t, name)
	m, err := e.Load(name, func() ([]byte, error) { return wasm, nil })
	if err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	return m
}

type fakeHost struct {
	env  map[string]string
	db   func(ctx context.Context, req []byte) []byte
	http func(ctx context.Context, req []byte) []byte
}

func (h *fakeHost) Env(ctx context.Context, key string) (string, bool) {
	v, ok := h.env[key]
	return v, ok
}

func (h *fakeHost) DBQuery(ctx context.Context, req []byte) []byte {
	if h.db == nil {
		return []byte(`{"rows":[]}`)
	}
	return h.db(ctx, req)
}

func (h *fakeHost) HTTPFetch(ctx context.Context, req []byte) []byte {
	if h.http == nil {
		return []byte(`{"status":204}`)
	}
	return h.http(ctx, req)
}

func run(t testing.TB, e *Engine, m *Module, input string, lim Limits, host Host) Result {
	t.Helper()
	return e.Run(context.Background(), m, []byte(input), lim, host)
}

func wantStatus(t testing.TB, res Result, want Status) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("status %s (err %v, output %q), want %s", res.Status, res.Err, res.Output, want)
	}
}

// promptly runs a timing-sensitive call up to three times and fails only if
// none ends within max. The machine running the tests may be shared and
// loaded; a guest thread that is not scheduled when its deadline passes is
// stopped late through no fault of the engine, but not three times running.
func promptly(t *testing.T, max time.Duration, call func() Result) Result {
	t.Helper()
	var res Result
	for attempt := 1; attempt <= 3; attempt++ {
		res = call()
		if res.Duration <= max {
			return res
		}
		t.Logf("attempt %d: %s after %v, over %v", attempt, res.Status, res.Duration, max)
	}
	t.Fatalf("%s after %v, want at most %v", res.Status, res.Duration, max)
	return res
}

func TestEcho(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "echo")
	for _, in := range []string{"", `{"trigger":"http"}`, strings.Repeat("x", 200_000)} {
		res := run(t, e, m, in, Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if string(res.Output) != in {
			t.Fatalf("output %d bytes, want the %d-byte input", len(res.Output), len(in))
		}
		if res.Err != nil || res.Duration <= 0 || res.MemoryPeak < wasmPage {
			t.Fatalf("err %v, duration %v, peak %d", res.Err, res.Duration, res.MemoryPeak)
		}
	}
}

func TestHello(t *testing.T) {
	e := newEngine(t, Config{})
	res := run(t, e, load(t, e, "hello"), "", Limits{}, nil)
	wantStatus(t, res, StatusSuccess)
	if string(res.Output) != "hello" {
		t.Fatalf("output %q", res.Output)
	}
}

func TestInitializeRunsFirst(t *testing.T) {
	e := newEngine(t, Config{})
	res := run(t, e, load(t, e, "init"), "", Limits{}, nil)
	wantStatus(t, res, StatusSuccess)
	if string(res.Output) != "initialized" {
		t.Fatalf("output %q", res.Output)
	}
}

func TestNonzeroReturnIsError(t *testing.T) {
	e := newEngine(t, Config{})
	res := run(t, e, load(t, e, "fail"), "", Limits{}, nil)
	wantStatus(t, res, StatusError)
	if string(res.Output) != "bad input" || res.Err == nil || !strings.Contains(res.Err.Error(), "returned 7") {
		t.Fatalf("output %q err %v", res.Output, res.Err)
	}
}

func TestInfiniteLoopTimesOut(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "loop")
	const timeout = 200 * time.Millisecond
	res := promptly(t, timeout+100*time.Millisecond, func() Result { return run(t, e, m, "", Limits{Timeout: timeout}, nil) })
	wantStatus(t, res, StatusTimeout)
	if res.Duration < timeout {
		t.Fatalf("stopped after %v, before the %v timeout", res.Duration, timeout)
	}
	if !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Fatalf("err %v", res.Err)
	}
}

func TestContextDeadlineShortensTimeout(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "loop")
	res := promptly(t, 200*time.Millisecond, func() Result {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		return e.Run(ctx, m, nil, Limits{Timeout: 10 * time.Second}, nil)
	})
	wantStatus(t, res, StatusTimeout)
}

func TestContextCancelStopsLoop(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "loop")
	res := promptly(t, 150*time.Millisecond, func() Result {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		return e.Run(ctx, m, nil, Limits{Timeout: 10 * time.Second}, nil)
	})
	wantStatus(t, res, StatusError)
	if !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", res.Err)
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "hello")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := e.Run(ctx, m, nil, Limits{}, nil)
	if res.Status != StatusError || !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("status %s err %v", res.Status, res.Err)
	}
}

// Without the epoch-deadline callback (a wasmtime-go upgrade that moves the
// store pointer), timeouts must still hold through the plain epoch deadline.
func TestTimeoutFallback(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "loop")
	interruptSupported = false
	defer func() { interruptSupported = true }()
	res := promptly(t, 250*time.Millisecond, func() Result { return run(t, e, m, "", Limits{Timeout: 100 * time.Millisecond}, nil) })
	wantStatus(t, res, StatusTimeout)
}

func TestInterruptCallbackInstalled(t *testing.T) {
	if !interruptSupported {
		t.Fatal("wasmtime.Store no longer has the _ptr field: cancellation falls back to host-call boundaries; update interrupt.go")
	}
}

func TestPoolingAllocatorReachable(t *testing.T) {
	if !poolSupported {
		t.Fatal("wasmtime.Config no longer has the _ptr field: engines fall back to the on-demand allocator (slower cold starts); update pool.go")
	}
}

func TestMemoryBomb(t *testing.T) {
	e := newEngine(t, Config{})
	const limit = 16 << 20
	res := run(t, e, load(t, e, "membomb"), "", Limits{MemoryBytes: limit}, nil)
	wantStatus(t, res, StatusMemoryExceeded)
	if res.MemoryPeak > limit || res.MemoryPeak < limit-wasmPage {
		t.Fatalf("peak %d, want just under %d", res.MemoryPeak, limit)
	}
}

func TestRefusedLargeGrowReportedOnStderr(t *testing.T) {
	e := newEngine(t, Config{})
	res := run(t, e, load(t, e, "bigalloc"), "", Limits{MemoryBytes: 16 << 20}, nil)
	wantStatus(t, res, StatusMemoryExceeded)
	if res.MemoryPeak != wasmPage {
		t.Fatalf("peak %d", res.MemoryPeak)
	}
	// The same module with room to grow succeeds.
	res = run(t, e, load(t, e, "bigalloc"), "", Limits{MemoryBytes: 128 << 20}, nil)
	wantStatus(t, res, StatusSuccess)
}

func TestInitialMemoryOverLimit(t *testing.T) {
	e := newEngine(t, Config{})
	res := run(t, e, load(t, e, "bigmemory"), "", Limits{MemoryBytes: 16 << 20}, nil)
	wantStatus(t, res, StatusMemoryExceeded)
	res = run(t, e, load(t, e, "bigmemory"), "", Limits{MemoryBytes: 32 << 20}, nil)
	wantStatus(t, res, StatusSuccess)
}

func TestUnboundedRecursion(t *testing.T) {
	e := newEngine(t, Config{})
	res := run(t, e, load(t, e, "recursion"), "", Limits{}, nil)
	wantStatus(t, res, StatusError)
	if !strings.Contains(res.Err.Error(), "call stack exhausted") {
		t.Fatalf("err %v", res.Err)
	}
	if res.Duration > time.Second {
		t.Fatalf("took %v", res.Duration)
	}
	t.Logf("recursion trapped in %v", res.Duration)
}

func TestUnreachable(t *testing.T) {
	e := newEngine(t, Config{})
	res := run(t, e, load(t, e, "unreachable"), "", Limits{}, nil)
	wantStatus(t, res, StatusError)
	var te *TrapError
	if !errors.As(res.Err, &te) || !strings.Contains(te.Message, "unreachable") || len(te.Trace) != 1 {
		t.Fatalf("err %#v", res.Err)
	}
}

func TestHugeOutput(t *testing.T) {
	e := newEngine(t, Config{})
	res := run(t, e, load(t, e, "bigoutput"), "", Limits{}, nil)
	wantStatus(t, res, StatusError)
	if !errors.Is(res.Err, ErrOutputTooLarge) || res.Err.Error() != "output exceeds limit" {
		t.Fatalf("err %v", res.Err)
	}
	// Under a larger cap the same output is fine.
	res = run(t, e, load(t, e, "bigoutput"), "", Limits{MaxOutput: 8 << 20}, nil)
	wantStatus(t, res, StatusSuccess)
	if len(res.Output) != 7<<20 {
		t.Fatalf("output %d bytes", len(res.Output))
	}
}

func TestOutOfBoundsPointerTraps(t *testing.T) {
	e := newEngine(t, Config{})
	res := run(t, e, load(t, e, "oob"), "", Limits{}, nil)
	wantStatus(t, res, StatusError)
	if !strings.Contains(res.Err.Error(), "outside linear memory") {
		t.Fatalf("err %v", res.Err)
	}
}

func TestLogs(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "logs")
	res := run(t, e, m, "", Limits{}, nil)
	wantStatus(t, res, StatusSuccess)
	// 3 whole lines from fd_write, 1500 log calls, 1 partial line flushed at the end.
	if len(res.Logs) != 1000 || res.LogsDropped != 504 {
		t.Fatalf("%d lines kept, %d dropped", len(res.Logs), res.LogsDropped)
	}
	want := []LogLine{
		{Level: "info", Message: "out1"},
		{Level: "info", Message: "out2"},
		{Level: "error", Message: "err line"},
		{Level: "debug", Message: "line"},
		{Level: "info", Message: "line"},
		{Level: "warn", Message: "line"},
		{Level: "error", Message: "line"},
		{Level: "info", Message: "line"}, // level 4 is not a level: info
	}
	for i, w := range want {
		if got := res.Logs[i]; got.Level != w.Level || got.Message != w.Message || got.Time.IsZero() {
			t.Fatalf("line %d: %+v, want %+v", i, got, w)
		}
	}

	// The byte cap: 4 + 4 + 8 bytes fit in 19, the next 4 do not.
	res = run(t, e, m, "", Limits{MaxLogBytes: 19}, nil)
	wantStatus(t, res, StatusSuccess)
	if len(res.Logs) != 3 || res.LogsDropped != 1501 {
		t.Fatalf("%d lines kept, %d dropped", len(res.Logs), res.LogsDropped)
	}
}

func TestEnvWhitelist(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "env")
	host := &fakeHost{env: map[string]string{"API_KEY": "s3cret", "EMPTY": ""}}
	for key, want := range map[string]string{"API_KEY": "s3cret", "EMPTY": "", "HOME": "<unset>", "PATH": "<unset>"} {
		res := run(t, e, m, key, Limits{}, host)
		wantStatus(t, res, StatusSuccess)
		if string(res.Output) != want {
			t.Errorf("env %s = %q, want %q", key, res.Output, want)
		}
	}
	// No host: nothing is set.
	res := run(t, e, m, "API_KEY", Limits{}, nil)
	if string(res.Output) != "<unset>" {
		t.Fatalf("output %q", res.Output)
	}
}

func TestHostCalls(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "hostcalls")
	var gotDB, gotHTTP string
	host := &fakeHost{
		db: func(ctx context.Context, req []byte) []byte {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("db_query context has no deadline")
			}
			gotDB = string(req)
			return []byte(`{"rows":[{"id":1}],"rowCount":1,"command":"SELECT"}`)
		},
		http: func(ctx context.Context, req []byte) []byte {
			gotHTTP = string(req)
			return []byte(`{"status":200}`)
		},
	}
	req := `{"sql":"SELECT 1"}`
	res := run(t, e, m, req, Limits{}, host)
	wantStatus(t, res, StatusSuccess)
	if gotDB != req || gotHTTP != req {
		t.Fatalf("requests %q %q", gotDB, gotHTTP)
	}
	if want := `{"rows":[{"id":1}],"rowCount":1,"command":"SELECT"}{"status":200}`; string(res.Output) != want {
		t.Fatalf("output %q", res.Output)
	}

	// Without a host, both answer with an error reply rather than a trap.
	res = run(t, e, m, req, Limits{}, nil)
	wantStatus(t, res, StatusSuccess)
	if !bytes.Contains(res.Output, []byte(`"unavailable"`)) {
		t.Fatalf("output %q", res.Output)
	}
}

func TestHostCallBlockedPastDeadline(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "hostcalls")
	host := &fakeHost{db: func(ctx context.Context, req []byte) []byte {
		<-ctx.Done()
		return []byte(`{"error":{"code":"timeout","message":"cancelled"}}`)
	}}
	res := promptly(t, 200*time.Millisecond, func() Result { return run(t, e, m, "{}", Limits{Timeout: 100 * time.Millisecond}, host) })
	wantStatus(t, res, StatusTimeout)
}

func TestHostPanicIsError(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "hostcalls")
	host := &fakeHost{db: func(context.Context, []byte) []byte { panic("boom") }}
	res := run(t, e, m, "{}", Limits{}, host)
	wantStatus(t, res, StatusError)
	if !strings.Contains(res.Err.Error(), "boom") {
		t.Fatalf("err %v", res.Err)
	}
	// The engine still works.
	wantStatus(t, run(t, e, load(t, e, "hello"), "", Limits{}, nil), StatusSuccess)
}

func TestProcExit(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "exit")
	res := run(t, e, m, "", Limits{}, nil) // proc_exit(0)
	wantStatus(t, res, StatusSuccess)
	if string(res.Output) != "partial" || res.Err != nil {
		t.Fatalf("output %q err %v", res.Output, res.Err)
	}
	res = run(t, e, m, "abc", Limits{}, nil) // proc_exit(3)
	wantStatus(t, res, StatusError)
	if res.Err == nil || res.Err.Error() != "exit status 3" || string(res.Output) != "partial" {
		t.Fatalf("output %q err %v", res.Output, res.Err)
	}
}

func TestWASI(t *testing.T) {
	e := newEngine(t, Config{})
	res := run(t, e, load(t, e, "wasi"), "", Limits{}, nil)
	if res.Status != StatusSuccess {
		t.Fatalf("status %s err %v (the number is the failed check in wasi.wat)", res.Status, res.Err)
	}
}

func TestSleepBoundedByDeadline(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "sleep")
	res := promptly(t, 200*time.Millisecond, func() Result { return run(t, e, m, "", Limits{Timeout: 100 * time.Millisecond}, nil) })
	wantStatus(t, res, StatusTimeout)
}

func TestValidate(t *testing.T) {
	e := newEngine(t, Config{})
	for _, name := range []string{"hello", "echo", "logs", "env", "hostcalls", "exit", "init", "wasi", "sleep"} {
		if err := e.Validate(fixture(t, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, want := range map[string]string{
		"bad_import_env":    "import env.foo",
		"bad_import_wasi":   "import wasi_snapshot_preview1.bogus",
		"bad_import_sig":    "import aerodb.db_query: has type (i32) -> (i32), want (i32, i32) -> (i32)",
		"bad_import_aerodb": "import aerodb.exec",
		"bad_import_memory": "import wasi_snapshot_preview1.fd_write: must be a function",
		"no_handler":        "missing export handler",
		"no_memory":         "missing export memory",
		"handler_type":      "export handler has type (i32) -> (i32), want () -> (i32)",
	} {
		err := e.Validate(fixture(t, name))
		if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrInvalidModule naming %q", name, err, want)
		}
	}
	for blob, want := range map[string]string{
		"hello world":                 "not a WebAssembly binary",
		"":                            "not a WebAssembly binary",
		"\x00asm\x0d\x00\x01\x00":     "component",
		"\x00asm\x01\x00\x00\x00\x05": "compiling",
	} {
		err := e.Validate([]byte(blob))
		if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want ErrInvalidModule mentioning %q", blob, err, want)
		}
	}
	// Load applies the same rules.
	_, err := e.Load("bad", func() ([]byte, error) { return fixture(t, "bad_import_env"), nil })
	if !errors.Is(err, ErrInvalidModule) {
		t.Fatalf("Load: %v", err)
	}
}

func TestDiskCache(t *testing.T) {
	dir := t.TempDir()
	wasm := fixture(t, "hello")
	fetches := 0
	fetch := func() ([]byte, error) { fetches++; return wasm, nil }

	e1 := newEngine(t, Config{CacheDir: dir})
	m, err := e1.Load("abc123", fetch)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, run(t, e1, m, "", Limits{}, nil), StatusSuccess)
	if s := e1.Stats(); s.Compiles != 1 || fetches != 1 {
		t.Fatalf("stats %+v fetches %d", s, fetches)
	}
	if _, err := e1.Load("abc123", fetch); err != nil || e1.Stats().MemoryHits != 1 {
		t.Fatalf("second load: %v %+v", err, e1.Stats())
	}
	e1.Close() // waits for the artifact's sync and rename
	path := filepath.Join(dir, "abc123.v2.preinit.cwasm")
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}

	// A restart deserializes instead of compiling, without fetching the bytes.
	e2 := newEngine(t, Config{CacheDir: dir})
	m, err = e2.Load("abc123", func() ([]byte, error) { t.Fatal("fetched on a disk-cache hit"); return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	if s := e2.Stats(); s.Compiles != 0 || s.DiskLoads != 1 {
		t.Fatalf("stats %+v", s)
	}
	wantStatus(t, run(t, e2, m, "", Limits{}, nil), StatusSuccess)
	// Closed first, as a node is when its disk is damaged: a file cut short
	// in place under a running engine faults its mappings of it (the code,
	// and the memory image its idle instance keeps).
	e2.Close()

	// A damaged file (here cut short, as by a full disk) is recompiled and
	// overwritten.
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)/2], 0o644)
	e3 := newEngine(t, Config{CacheDir: dir})
	m, err = e3.Load("abc123", fetch)
	if err != nil {
		t.Fatal(err)
	}
	if s := e3.Stats(); s.Compiles != 1 || s.DiskLoadFailures != 1 || fetches != 2 {
		t.Fatalf("stats %+v fetches %d", s, fetches)
	}
	wantStatus(t, run(t, e3, m, "", Limits{}, nil), StatusSuccess)
	e3.Close()

	// So is an artifact from another wasmtime or configuration, which wasmtime
	// refuses: here, one compiled without epoch interruption.
	cfg := wasmtime.NewConfig()
	other, err := wasmtime.NewModule(wasmtime.NewEngineWithConfig(cfg), wasm)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeCached(path, other); err != nil {
		t.Fatal(err)
	}
	e4 := newEngine(t, Config{CacheDir: dir})
	if _, err := e4.Load("abc123", fetch); err != nil {
		t.Fatal(err)
	}
	if s := e4.Stats(); s.Compiles != 1 || s.DiskLoadFailures != 1 {
		t.Fatalf("stats %+v", s)
	}
	e4.Close()

	e5 := newEngine(t, Config{CacheDir: dir})
	if _, err := e5.Load("abc123", fetch); err != nil || e5.Stats().DiskLoads != 1 {
		t.Fatalf("after overwrite: %v %+v", err, e5.Stats())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("cache dir holds %d files (temp files left behind?)", len(entries))
	}
}

func TestLoadBadHash(t *testing.T) {
	e := newEngine(t, Config{})
	for _, h := range []string{"", "../x", "a/b", strings.Repeat("a", 129), "a b"} {
		if _, err := e.Load(h, func() ([]byte, error) { return fixture(t, "hello"), nil }); err == nil {
			t.Errorf("hash %q accepted", h)
		}
	}
}

func TestLoadFetchError(t *testing.T) {
	e := newEngine(t, Config{})
	boom := errors.New("blob missing")
	if _, err := e.Load("x", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	// Errors are not cached.
	if _, err := e.Load("x", func() ([]byte, error) { return fixture(t, "hello"), nil }); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentLoadsCompileOnce(t *testing.T) {
	e := newEngine(t, Config{CacheDir: t.TempDir()})
	wasm := fixture(t, "echo")
	var fetches atomic.Int32
	var wg sync.WaitGroup
	mods := make([]*Module, 20)
	for i := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := e.Load("same", func() ([]byte, error) {
				fetches.Add(1)
				time.Sleep(20 * time.Millisecond)
				return wasm, nil
			})
			if err != nil {
				t.Error(err)
			}
			mods[i] = m
		}()
	}
	wg.Wait()
	if fetches.Load() != 1 || e.Stats().Compiles != 1 {
		t.Fatalf("fetched %d times, stats %+v", fetches.Load(), e.Stats())
	}
	for _, m := range mods {
		if m != mods[0] {
			t.Fatal("different modules for one hash")
		}
	}
}

func TestModuleCacheBounded(t *testing.T) {
	e := newEngine(t, Config{MaxModules: 2})
	wasm := fixture(t, "hello")
	var first *Module
	for i := range 5 {
		m, err := e.Load(fmt.Sprintf("m%d", i), func() ([]byte, error) { return wasm, nil })
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = m
		}
	}
	if n := e.Stats().CachedModules; n != 2 {
		t.Fatalf("%d cached", n)
	}
	// An evicted module still runs for whoever holds it.
	wantStatus(t, run(t, e, first, "", Limits{}, nil), StatusSuccess)
}

func TestConcurrentRuns(t *testing.T) {
	e := newEngine(t, Config{})
	loop, hello := load(t, e, "loop"), load(t, e, "hello")
	const timeout = 300 * time.Millisecond
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				res := e.Run(context.Background(), loop, nil, Limits{Timeout: timeout}, nil)
				// 25 spinning guests share this machine's cores (two here), so
				// the OS scheduler, not the engine, sets how late the interrupt
				// is noticed; TestInfiniteLoopTimesOut holds the tight bound.
				if res.Status != StatusTimeout || res.Duration > timeout+2*time.Second {
					t.Errorf("loop: %s after %v", res.Status, res.Duration)
				}
				return
			}
			res := e.Run(context.Background(), hello, nil, Limits{Timeout: 5 * time.Second}, nil)
			if res.Status != StatusSuccess || string(res.Output) != "hello" {
				t.Errorf("hello: %s %v %q", res.Status, res.Err, res.Output)
			}
		}()
	}
	wg.Wait()
}

func TestClosed(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "hello")
	e.Close()
	e.Close()
	if res := run(t, e, m, "", Limits{}, nil); res.Status != StatusError || !errors.Is(res.Err, ErrClosed) {
		t.Fatalf("run after close: %s %v", res.Status, res.Err)
	}
	if _, err := e.Load("hello", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("load after close: %v", err)
	}
}

// Close lets a call in flight run to its deadline rather than stopping the
// epoch under it (which would leave a looping guest running forever).
func TestCloseWaitsForCalls(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "loop")
	done := make(chan Result)
	go func() { done <- e.Run(context.Background(), m, nil, Limits{Timeout: 200 * time.Millisecond}, nil) }()
	for started := false; !started; time.Sleep(time.Millisecond) {
		e.runMu.Lock()
		started = e.active > 0
		e.runMu.Unlock()
	}
	e.Close()
	select {
	case res := <-done:
		wantStatus(t, res, StatusTimeout)
	case <-time.After(5 * time.Second):
		t.Fatal("call still running after Close")
	}
}

func TestNilModule(t *testing.T) {
	e := newEngine(t, Config{})
	if res := run(t, e, nil, "", Limits{}, nil); res.Status != StatusError {
		t.Fatalf("status %s", res.Status)
	}
}

// writeCached stores m's artifact under path, synced and named at once, as
// a cache directory holds it after a load.
func writeCached(path string, m *wasmtime.Module) error {
	art, err := m.Serialize()
	if err != nil {
		return err
	}
	return writeFile(path, art)
}

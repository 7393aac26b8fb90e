package engine

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// Status is the outcome of one call, as recorded.
type Status string

const (
	StatusSuccess        Status = "success"
	StatusError          Status = "error"
	StatusTimeout        Status = "timeout"
	StatusMemoryExceeded Status = "memory_exceeded"
	// StatusInterrupted: the node stopped before the call ended (its
	// context was cancelled with ErrInterrupted as the cause).
	StatusInterrupted Status = "interrupted"
)

// ErrInterrupted is the cause a caller cancels a call's context with when
// the node is stopping; Run then reports StatusInterrupted.
var ErrInterrupted = errors.New("the node is stopping")

// ErrInvalidModule wraps every reason a module is refused at deploy.
var ErrInvalidModule = errors.New("invalid module")

// ErrClosed is returned by Load, and carried by Result.Err from Run, once the
// engine has been closed.
var ErrClosed = errors.New("engine closed")

// Limits bound one call.
type Limits struct {
	Timeout     time.Duration // wall clock, whole call; default 10 s
	MemoryBytes int64         // linear memory cap; default 128 MiB
	MaxOutput   int           // bytes passed to output; default 6 MiB
	MaxLogLines int           // default 1000
	MaxLogBytes int           // default 1 MiB

	// Owner names who the call runs for (the invoker passes the function's
	// id): an instance that served a call is reused only for calls of the
	// same Owner (reuse.go, takeWarm).
	Owner string
}

// Defaults documented in docs/ABI.md ("Limits a guest meets").
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMemoryBytes = 128 << 20
	DefaultMaxOutput   = 6 << 20
	DefaultMaxLogLines = 1000
	DefaultMaxLogBytes = 1 << 20
)

// WithDefaults returns l with every zero (or negative) field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MemoryBytes <= 0 {
		l.MemoryBytes = DefaultMemoryBytes
	}
	if l.MaxOutput <= 0 {
		l.MaxOutput = DefaultMaxOutput
	}
	if l.MaxLogLines <= 0 {
		l.MaxLogLines = DefaultMaxLogLines
	}
	if l.MaxLogBytes <= 0 {
		l.MaxLogBytes = DefaultMaxLogBytes
	}
	return l
}

// Host supplies the host functions that reach outside the sandbox. It is built
// per call by the invoker (it carries the call's principal and whitelist).
// Replies are JSON as described in docs/ABI.md; a Host never panics. Each
// method is handed a context that ends at the call's deadline, and must
// return when it ends.
type Host interface {
	Env(ctx context.Context, key string) (string, bool)
	DBQuery(ctx context.Context, request []byte) []byte
	HTTPFetch(ctx context.Context, request []byte) []byte
}

// LogLine is one line the guest logged (log import, stdout or stderr).
type LogLine struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"` // debug, info, warn, error
	Message string    `json:"message"`
}

// Result is what one call produced.
type Result struct {
	Status      Status
	Output      []byte // the result (success) or error message set by the guest
	Err         error  // why the call failed (trap, timeout, exit code...), nil on success
	Logs        []LogLine
	LogsDropped int
	MemoryPeak  int64 // linear memory high-water mark, bytes
	Duration    time.Duration
}

// Config configures an Engine. The zero value is usable: no disk cache,
// defaults for the rest.
type Config struct {
	// CacheDir holds compiled artifacts (<hash>.cwasm). Empty disables the
	// disk cache. It is created if missing.
	CacheDir string
	// EpochTick is how often the epoch advances; it is the granularity of
	// timeouts and cancellation. Default 10 ms.
	EpochTick time.Duration
	// MaxWasmStack bounds the guest's native stack, so runaway recursion traps
	// quickly instead of exhausting the host thread. Default 2 MiB: the
	// JavaScript runtime's interpreter uses about 1 KiB of it per nested
	// JavaScript call, and stops recursion itself at about 1,400 calls.
	MaxWasmStack int
	// MaxModules bounds the in-memory cache of compiled modules (least
	// recently used ones are dropped; the disk cache keeps them). Default 256.
	MaxModules int
	// DisablePreinit turns off pre-initialisation: modules that export
	// _initialize then run it at the start of every call instead of once
	// per version at Load (see preinit.go).
	DisablePreinit bool

	// JSRuntimePath is the JavaScript runtime module (bin/aerofn-jsrt.wasm,
	// built from internal/jsruntime/guest). Empty: JavaScript functions
	// fail to load with ErrNoJSRuntime (script.go).
	JSRuntimePath string
	// JSRuntimeCacheDir, when set, holds the runtime's compiled artifact
	// instead of CacheDir, so that nodes (or tests) with their own
	// CacheDir can share the one compile per runtime version.
	JSRuntimeCacheDir string

	// MaxRunning bounds the calls executing guest code at once; more wait
	// their turn (within their deadline), and a call blocked in db_query,
	// http_fetch or a sleep does not count. Default DefaultMaxRunning().
	MaxRunning int

	// Instance pool (pool.go; docs/RATIONALE.md, "Instance pool"). Every
	// call still gets a fresh instance: a slot's memory is reset to the
	// module's initial image before its next use, never reused as is.

	// DisablePooling allocates every instance's memory with mmap and frees
	// it with munmap, as wasmtime does by default.
	DisablePooling bool
	// PoolSlots is how many instances may exist at once; a call past it
	// fails with ErrPoolExhausted. The server sets its max concurrency.
	// Default DefaultPoolSlots. Each slot reserves MaxMemoryBytes+64 KiB of
	// address space (not memory).
	PoolSlots int
	// MaxMemoryBytes is the largest linear memory any call may grow to,
	// whatever its Limits. Default DefaultMaxMemoryBytes (512 MiB).
	MaxMemoryBytes int64
	// KeepResident is how many bytes of a slot's linear memory stay mapped
	// between calls, reset in place rather than unmapped and faulted in
	// again. Default DefaultKeepResident; negative: none.
	KeepResident int64
	// TableKeepResident is the same for tables. Default
	// DefaultTableKeepResident; negative: none.
	TableKeepResident int64
	// WarmSlots bounds the free slots that keep their memory for the next
	// call of the same module; the rest are reused first. Default
	// DefaultWarmSlots; negative: none.
	WarmSlots int
	// CopyMemoryInit copies a module's initial memory into each instance
	// instead of mapping it copy-on-write from the compiled artifact (see
	// docs/RATIONALE.md, "Instance pool", for why the default maps it).
	// Only with the pool.
	CopyMemoryInit bool
	// ElideBoundsChecks makes each pool slot reserve 4 GiB of address
	// space plus a 32 MiB guard, wasmtime's own default, instead of
	// MaxMemoryBytes plus 64 KiB: every address a 32-bit memory can form
	// then lands in the slot or its guard, so compiled code needs no
	// bounds check on loads and stores (a smaller artifact, a cheaper
	// compile, faster calls; docs/RATIONALE.md, "Engine: instance pool and
	// run gate"). It costs address space, not memory: about 4 TiB per
	// 1,000 slots of the 128 TiB a process has, so it is for the one
	// engine of a server, not for processes building dozens of engines.
	// An engine that would take the process's large reservations past
	// LargeReservationBudget gets the small one instead (see
	// Engine.BoundsChecksElided). The memory cap is unchanged: the store
	// limiter and MaxMemoryBytes still bound what a memory may grow to.
	ElideBoundsChecks bool

	// DisableReuse gives every call of a pre-initialised module a new
	// instance, instead of resetting one that served an earlier call
	// (reuse.go). At most WarmSlots reusable instances wait between calls.
	DisableReuse bool

	// tune, when set, changes the wasmtime configuration last (tests and
	// measurements only).
	tune func(*wasmtime.Config)
	// cheapCranelift compiles the cheap tier with Cranelift even where
	// Winch can be selected (tests and measurements only).
	cheapCranelift bool
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.EpochTick <= 0 {
		c.EpochTick = 10 * time.Millisecond
	}
	if c.MaxWasmStack <= 0 {
		c.MaxWasmStack = 2 << 20
	}
	if c.MaxModules <= 0 {
		c.MaxModules = 256
	}
	if c.MaxRunning <= 0 {
		c.MaxRunning = DefaultMaxRunning()
	}
	if c.PoolSlots <= 0 {
		c.PoolSlots = DefaultPoolSlots
	}
	if c.MaxMemoryBytes <= 0 {
		c.MaxMemoryBytes = DefaultMaxMemoryBytes
	}
	c.MaxMemoryBytes = (c.MaxMemoryBytes + wasmPage - 1) / wasmPage * wasmPage
	if c.KeepResident == 0 {
		c.KeepResident = DefaultKeepResident
	}
	if c.TableKeepResident == 0 {
		c.TableKeepResident = DefaultTableKeepResident
	}
	if c.WarmSlots == 0 {
		c.WarmSlots = DefaultWarmSlots
	}
	c.WarmSlots = max(c.WarmSlots, 0)
	return c
}

// Stats counts what the compile cache did, for metrics and tests.
type Stats struct {
	Compiles         uint64 // modules compiled from wasm bytes (Load only, not Validate)
	DiskLoads        uint64 // modules deserialized from CacheDir
	DiskLoadFailures uint64 // cached artifacts that could not be used and were recompiled
	DiskWriteErrors  uint64 // artifacts that could not be written (the module still loaded)
	MemoryHits       uint64 // Loads served from the in-memory cache
	CachedModules    int    // modules currently in the in-memory cache
	Preinitialized   uint64 // compiled modules that export _initialize and were pre-initialised
	PreinitFailures  uint64 // compiled modules that export _initialize and could not be, so run it per call

	Primed               uint64 // loaded modules instantiated once before their first call (prime.go)
	InitCompiles         uint64 // modules prepared for the one run of _initialize (preinit.go, initrun.go): translated for the interpreter, or compiled cheaply when it gave up; not counted in Compiles
	InitRetries          uint64 // runs of _initialize the interpreter gave up on (deadline, call depth, a module it refuses), done again on wasmtime
	ArtifactLoads        uint64 // modules loaded from a Source's artifact (another engine's compile)
	ArtifactLoadFailures uint64 // artifacts that could not be fetched or that wasmtime refused

	Reused          uint64 // calls that ran on an instance reset after an earlier call (reuse.go)
	UnscannedResets uint64 // resets of reused instances that copied back the private pages known from the last scan, without scanning (warmInst.clean)
	TrimmedPages    uint64 // private pages of reused instances that held the snapshot's content and were dropped instead of copied (trimPages)

	CheapModules   int    // modules in memory of the cheap tier (tier.go)
	CheapCompiles  uint64 // snapshots compiled cheaply by a Load (counted in Compiles too)
	Optimizes      uint64 // cheap modules compiled again with the Engine's settings (Optimize; not in Compiles)
	TierUpgrades   uint64 // cheap modules replaced in memory by an optimised one (Optimize or Upgrade)
	CheapFallbacks uint64 // snapshots the cheap tier's compiler refused, compiled with the Engine's settings instead

	ScriptCompiles        uint64 // scripts compiled to bytecode by the JavaScript runtime (script.go)
	ScriptCompileFailures uint64 // scripts the runtime could not compile (refused at load from their bytes, else run from the source)
	ScriptSourceRuns      uint64 // calls of a script that ran it from the source: its bytecode was not made yet
}

// Engine compiles and runs modules. It is safe for concurrent use.
type Engine struct {
	cfg    Config
	wt     *wasmtime.Engine
	linker *wasmtime.Linker // shared by every call; host functions find the call through the store's data
	slots  chan struct{}    // one token per instance in the pool; nil without pooling
	elided bool             // memories reserve 4 GiB + guard: no bounds checks (BoundsChecksElided)
	// pooled, reservation, guard: what New gave wasmtime (the cheap tier's
	// engine, tier.go, is pooled when this one is).
	pooled             bool
	reservation, guard uint64
	// running holds a token per call executing guest code (pool.go).
	running   chan struct{}
	gateWaits gateHist // how long calls waited for a token (pool.go)

	// Compile cache: an LRU of modules plus the loads in flight, so concurrent
	// Loads of one hash compile once.
	mu       sync.Mutex
	lru      *list.List               // of *Module, front = most recently used
	modules  map[string]*list.Element // hash -> element of lru
	inflight map[string]*loadCall

	compiles, diskLoads, diskLoadFailures, diskWriteErrors, memoryHits atomic.Uint64
	preinits, preinitFailures                                          atomic.Uint64
	compilingNow                                                       atomic.Int64   // loads compiling right now (Compiling)
	primed                                                             atomic.Uint64  // modules instantiated once at load (prime.go)
	scriptCompiles, scriptCompileFailures, scriptSourceRuns            atomic.Uint64  // script.go
	artifactState                                                                     // artifact.go: the init engine, the fingerprint, shared artifacts
	persisting                                                         sync.WaitGroup // artifacts being synced to CacheDir (cache.go, persistLater)
	pendingMu                                                          sync.Mutex
	pending                                                            map[string]string // cache path -> temporary file being synced (persistLater)
	jsrt                                                               jsRuntime         // script.go: the JavaScript runtime
	reuseState                                                                           // reuse.go: idle reusable instances
	tierState                                                                            // tier.go: the cheap tier's compiler

	// Calls in flight. Close waits for them before stopping the ticker,
	// because a guest still running when the epoch stops would never be
	// interrupted.
	runMu   sync.Mutex
	active  int
	drained chan struct{} // closed when active reaches 0 after Close

	closed    atomic.Bool
	stop      chan struct{}
	ticker    sync.WaitGroup
	closeOnce sync.Once
}

// New builds an engine: one wasmtime engine with epoch interruption, the shared
// linker holding every host function, and the goroutine that advances the epoch.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.WithDefaults()
	for _, dir := range []string{cfg.CacheDir, cfg.JSRuntimeCacheDir} {
		if dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("creating cache dir: %w", err)
			}
		}
	}

	wcfg := wasmtime.NewConfig()
	wcfg.SetEpochInterruption(true)
	wcfg.SetMaxWasmStack(cfg.MaxWasmStack)
	var large int64 // address space this engine's large reservation takes from the budget
	if cfg.ElideBoundsChecks && !cfg.DisablePooling {
		large = takeLargeReservation(cfg.PoolSlots)
	}
	pooled := !cfg.DisablePooling && applyPool(wcfg, cfg, large > 0)
	if !pooled && large > 0 {
		largeReserved.Add(-large)
		large = 0
	}
	wcfg.SetMemoryInitCOWSet(!(pooled && cfg.CopyMemoryInit))
	if cfg.tune != nil {
		cfg.tune(wcfg)
	}
	wt := wasmtime.NewEngineWithConfig(wcfg)
	if large > 0 {
		// Given back once the wasmtime engine, and with it the pool's
		// reservation, is gone.
		runtime.AddCleanup(wt, func(n int64) { largeReserved.Add(-n) }, large)
	}

	e := &Engine{
		cfg:      cfg,
		wt:       wt,
		elided:   large > 0 || (cfg.DisablePooling || !pooled),
		lru:      list.New(),
		modules:  make(map[string]*list.Element),
		inflight: make(map[string]*loadCall),
		stop:     make(chan struct{}),
		drained:  make(chan struct{}),
		running:  make(chan struct{}, cfg.MaxRunning),
	}
	if pooled {
		e.slots = make(chan struct{}, cfg.PoolSlots)
		e.pooled = true
		e.reservation, e.guard = uint64(cfg.MaxMemoryBytes), uint64(memoryGuard)
		if large > 0 {
			e.reservation, e.guard = largeReservation, largeGuard
		}
	}
	removeStaleTemps(cfg.CacheDir)
	if cfg.JSRuntimePath != "" {
		// Hashed now, before any Load: cachePath reads the hash unlocked.
		// An unreadable runtime is reported when a script is loaded.
		_, _ = e.runtimeHash()
	}
	linker, err := newLinker(wt, fastOK)
	if err != nil {
		return nil, fmt.Errorf("defining host functions: %w", err)
	}
	e.linker = linker

	e.ticker.Add(1)
	go e.tick()
	return e, nil
}

// tick advances the epoch. IncrementEpoch is an atomic add on the engine, safe
// from any thread; every running store checks it at function entries and loop
// back-edges, which is what makes a deadline bite in a guest that never calls
// the host.
func (e *Engine) tick() {
	defer e.ticker.Done()
	t := time.NewTicker(e.cfg.EpochTick)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.wt.IncrementEpoch()
			if wt := e.tierWt.Load(); wt != nil {
				wt.IncrementEpoch()
			}
		}
	}
}

// BoundsChecksElided reports whether this engine's memories reserve the
// whole 4 GiB a 32-bit memory can address plus a guard, so that compiled
// code has no bounds checks: with Config.ElideBoundsChecks when it fit
// the process's LargeReservationBudget, and always without pooling
// (wasmtime's default reservation).
func (e *Engine) BoundsChecksElided() bool { return e.elided }

// Closed reports whether Stop was called: the engine runs nothing more.
func (e *Engine) Closed() bool { return e.closed.Load() }

// Close is Stop without a bound.
func (e *Engine) Close() error { return e.Stop(context.Background()) }

// Stop refuses new work (Load and Run then fail with ErrClosed), waits for
// the calls in flight to end, each within its own deadline (provided Hosts
// honour their context), and stops the epoch ticker. If ctx ends first it
// returns its error and leaves the ticker running, since a guest still
// running when the epoch stops would never be interrupted; a later Stop
// waits again. The wasmtime objects are left to their finalizers.
func (e *Engine) Stop(ctx context.Context) error {
	e.runMu.Lock()
	e.closed.Store(true)
	idle := e.active == 0
	e.runMu.Unlock()
	if !idle {
		select {
		case <-e.drained:
		case <-ctx.Done():
			return fmt.Errorf("stopping engine: calls still running: %w", ctx.Err())
		}
	}
	e.endIdle()
	e.closeOnce.Do(func() {
		close(e.stop)
		e.ticker.Wait()
	})
	e.persisting.Wait()
	return nil
}

// enter registers a call; false once the engine is closed.
func (e *Engine) enter() bool {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	if e.closed.Load() {
		return false
	}
	e.active++
	return true
}

func (e *Engine) exit() {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	e.active--
	if e.active == 0 && e.closed.Load() {
		close(e.drained)
	}
}

// removeStaleTemps deletes cache files left half-written by a process that
// died between write and rename. Only old ones: another engine sharing the
// directory may be writing right now.
func removeStaleTemps(dir string) {
	if dir == "" {
		return
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, "*.cwasm.*.tmp"))
	for _, p := range tmps {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > time.Hour {
			os.Remove(p)
		}
	}
}

// Compiling is how many loads are compiling a module right now (pre-init
// run included): what a node does in the background after a deploy of
// another node's module without artifact, after an engine upgrade, or
// while the JavaScript runtime warms up.
func (e *Engine) Compiling() int { return int(e.compilingNow.Load()) }

// Stats reports cache counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	n, cheap := len(e.modules), 0
	for _, el := range e.modules {
		if el.Value.(*Module).tier == TierCheap {
			cheap++
		}
	}
	e.mu.Unlock()
	e.reuseMu.Lock()
	reused := e.reused
	e.reuseMu.Unlock()
	return Stats{
		Compiles:         e.compiles.Load(),
		DiskLoads:        e.diskLoads.Load(),
		DiskLoadFailures: e.diskLoadFailures.Load(),
		DiskWriteErrors:  e.diskWriteErrors.Load(),
		MemoryHits:       e.memoryHits.Load(),
		CachedModules:    n,
		Preinitialized:   e.preinits.Load(),
		PreinitFailures:  e.preinitFailures.Load(),

		Primed:               e.primed.Load(),
		InitCompiles:         e.initCompiles.Load(),
		InitRetries:          e.initRetries.Load(),
		ArtifactLoads:        e.artifactLoads.Load(),
		ArtifactLoadFailures: e.artifactLoadFailures.Load(),
		Reused:               reused,
		TrimmedPages:         e.trimmed.Load(),
		UnscannedResets:      e.unscanned.Load(),

		CheapModules:   cheap,
		CheapCompiles:  e.cheapCompiles.Load(),
		CheapFallbacks: e.cheapFallbacks.Load(),
		Optimizes:      e.optimizes.Load(),
		TierUpgrades:   e.upgrades.Load(),

		ScriptCompiles:        e.scriptCompiles.Load(),
		ScriptCompileFailures: e.scriptCompileFailures.Load(),
		ScriptSourceRuns:      e.scriptSourceRuns.Load(),
	}
}

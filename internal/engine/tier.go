package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// Tiers: a deploy's first artifact is compiled cheaply, the optimised one
// later (docs/RATIONALE.md, "Compiled artifacts reach every node").
//
// A Go guest's snapshot takes about 5 s of CPU to compile with the
// Engine's settings. A Load whose Source asks for it (Source.Cheap: the
// server's deploy, rollback and enable) compiles the snapshot on the cheap
// tier's engine (tierRuntime) instead: Winch, wasmtime's baseline
// compiler, in about a quarter of the CPU time Cranelift needs even
// without optimisation (0.3-0.4 s against 1.4-1.8 s for the hello
// example), where this wasmtime build lets it be selected (winch.go), else
// Cranelift without optimisation and with the single-pass register
// allocator. The result is written to the cache directory and mapped from
// there (from the bytes when there is no cache directory). wasmtime runs
// Winch's code only on an engine whose compiler is Winch, so the cheap
// tier's engine also runs the calls of cheap modules, with its own linker
// and pool (the Engine's settings); a cheap module's instances are not
// reused. The module is TierCheap and keeps its
// snapshot's bytes; Optimize then compiles that snapshot with the Engine's
// settings (in the background, one at a time, by the caller's choice) and
// swaps the result in: calls that start after it run the optimised code,
// calls running keep their instance, and idle reusable instances of the
// cheap module are ended. Another node that loaded the cheap artifact
// swaps in the optimised one through Upgrade when it is announced.
//
// On disk the cheap artifact has its own name (<hash>.v2.preinit.cheap.cwasm),
// and the optimised one is always looked for first (in the cache
// directory, then from Source.Artifact), so a restarted node takes the
// best artifact there is. Between nodes they are told apart by their key:
// CheapFingerprint for the cheap one.

// Tier says how a module's code was compiled.
type Tier int

const (
	// TierOptimized: with the Engine's own settings.
	TierOptimized Tier = iota
	// TierCheap: by the cheap tier's compiler (Winch), until Optimize or
	// Upgrade replaces it.
	TierCheap
)

func (t Tier) String() string {
	if t == TierCheap {
		return "cheap"
	}
	return "optimized"
}

// tierState is the part of Engine this file owns.
type tierState struct {
	tierOnce  sync.Once
	tierRT    *tierRuntime
	tierWt    atomic.Pointer[wasmtime.Engine] // tierRT.wt once built, for the epoch ticker
	tierFpOne sync.Once
	tierFp    string

	cheapCompiles, optimizes, upgrades atomic.Uint64
	cheapFallbacks                     atomic.Uint64 // snapshots the cheap tier could not compile (compileSnapshot)
}

// tierRuntime is the wasmtime engine of the cheap tier: it compiles the
// cheap artifacts and runs the calls of cheap modules until Optimize or
// Upgrade swaps them out, with its own linker and its own pool (sized and
// tuned as the Engine's), since wasmtime runs a module only on an engine
// whose compiler's calling convention it was compiled for.
type tierRuntime struct {
	wt        *wasmtime.Engine
	linker    *wasmtime.Linker
	slots     chan struct{} // as Engine.slots; nil without pooling
	winch     bool          // compiled by Winch, else by Cranelift without optimisation
	noAddrMap bool          // its artifacts have no address map (setNoAddrMap)
	err       error         // building the linker failed
}

// tierEngine builds the cheap tier's engine on first use: Winch, wasmtime's
// baseline compiler, where this wasmtime build lets aerofn select it
// (setWinch), else Cranelift without optimisation and with the single-pass
// register allocator; the Engine's pool settings (with the small memory
// reservation), epoch interruption and stack limit. It is built on first
// use, which on a server is the first module load (Invoker's sources ask
// for CheapFingerprint).
func (e *Engine) tierEngine() *wasmtime.Engine { return e.tierRuntime().wt }

func (e *Engine) tierRuntime() *tierRuntime {
	e.tierOnce.Do(func() {
		// Winch where setWinch is confirmed to select it; else Cranelift,
		// as where it cannot be set at all.
		rt := e.buildTier(!e.cfg.cheapCranelift && winchConfirmed())
		e.tierRT = rt
		e.tierWt.Store(rt.wt)
	})
	return e.tierRT
}

func (e *Engine) buildTier(winch bool) *tierRuntime {
	cfg := wasmtime.NewConfig()
	cfg.SetEpochInterruption(true)
	cfg.SetMaxWasmStack(e.cfg.MaxWasmStack)
	// The small reservation (MaxMemoryBytes and a guard, with bounds
	// checks in the code): the cheap tier takes nothing from the process's
	// LargeReservationBudget, which the Engine's own pool needs, for code
	// that serves for seconds. No warm slots and nothing kept resident:
	// once the cheap modules are swapped out this pool sits unused until
	// the next deploy, and should hold no memory meanwhile (its idle
	// instances are the reused ones, which the swap ends).
	pcfg := e.cfg
	pcfg.WarmSlots, pcfg.KeepResident = 0, 0
	pooled := e.pooled && applyPool(cfg, pcfg, false)
	cfg.SetMemoryInitCOWSet(!(pooled && e.cfg.CopyMemoryInit))
	if e.cfg.tune != nil {
		e.cfg.tune(cfg)
	}
	rt := &tierRuntime{winch: winch && setWinch(cfg)}
	// The address map serves only the wasm offsets in a trap's backtrace,
	// and is a quarter of a cheap artifact, which every deploy stores and
	// every node fetches (addrmap.go).
	rt.noAddrMap = addrMapOffConfirmed() && setNoAddrMap(cfg)
	if !rt.winch {
		cfg.SetCraneliftOptLevel(wasmtime.OptLevelNone)
		cfg.SetCraneliftFlag("regalloc_algorithm", "single_pass")
	}
	rt.wt = wasmtime.NewEngineWithConfig(cfg)
	if pooled {
		rt.slots = make(chan struct{}, e.cfg.PoolSlots)
	}
	rt.linker, rt.err = newLinker(rt.wt, fastOK)
	if rt.err != nil {
		rt.err = fmt.Errorf("defining host functions for the cheap tier: %w", rt.err)
	}
	return rt
}

// winchConfirmed reports whether setWinch selects Winch: wasmtime records
// the compiler in an artifact's compatibility section, and an engine that
// compiles with Cranelift refuses an artifact of Winch's by that name. The
// two probe engines differ in that byte only (no pool, no tunables). Once
// per process.
var winchConfirmed = sync.OnceValue(func() bool {
	probe := wasmtime.NewConfig()
	probe.SetEpochInterruption(true)
	if !setWinch(probe) {
		return false
	}
	m, err := wasmtime.NewModule(wasmtime.NewEngineWithConfig(probe), []byte("\x00asm\x01\x00\x00\x00"))
	if err != nil {
		return false
	}
	art, err := m.Serialize()
	m.Close()
	if err != nil {
		return false
	}
	plain := wasmtime.NewConfig()
	plain.SetEpochInterruption(true)
	_, err = wasmtime.NewModuleDeserialize(wasmtime.NewEngineWithConfig(plain), art)
	return err != nil && strings.Contains(err.Error(), "Winch")
})

// wtOf, linkerOf and slotsOf are the wasmtime engine, the linker and the
// pool slots m's calls run on: the cheap tier's for a cheap module.
func (e *Engine) wtOf(m *Module) *wasmtime.Engine {
	if m.tier == TierCheap {
		return e.tierRT.wt
	}
	return e.wt
}

func (e *Engine) linkerOf(m *Module) *wasmtime.Linker {
	if m.tier == TierCheap {
		return e.tierRT.linker
	}
	return e.linker
}

func (e *Engine) slotsOf(m *Module) chan struct{} {
	if m.tier == TierCheap {
		return e.tierRT.slots
	}
	return e.slots
}

// CheapCompiler names the cheap tier's compiler: "winch", or "cranelift"
// (without optimisation) where Winch cannot be selected.
func (e *Engine) CheapCompiler() string {
	if e.tierRuntime().winch {
		return "winch"
	}
	return "cranelift"
}

// CheapFingerprint is the key of this engine's cheap-tier artifacts, as
// Fingerprint is of its optimised ones: computed the same way, from the
// tier engine's compatibility record (which names its compiler settings).
func (e *Engine) CheapFingerprint() string {
	e.tierFpOne.Do(func() {
		h := sha256.New()
		h.Write([]byte(artifactFormat))
		h.Write([]byte("\x00preinit\x00cheap\x00"))
		h.Write(engineRecord(e.tierEngine()))
		e.tierFp = hex.EncodeToString(h.Sum(nil))
	})
	return e.tierFp
}

// tierRequest carries a Load's request for the cheap tier through
// compileModule to the snapshot's compile, and what that compile made.
type tierRequest struct {
	path  string           // where the artifact goes (cheapPath); "" none
	mod   *wasmtime.Module // the cheap module, deserialized into the Engine
	snap  []byte           // the snapshot it was compiled from
	share func([]byte)     // Source.Share
	tmp   string           // the unsynced file mod is mapped from; "" none
}

type tierKey struct{}

// compileSnapshot compiles a pre-initialised snapshot: cheaply when the
// load asked for the cheap tier, else with the Engine's settings.
func (e *Engine) compileSnapshot(ctx context.Context, snap []byte) (*wasmtime.Module, error) {
	req, _ := ctx.Value(tierKey{}).(*tierRequest)
	if req == nil {
		return e.compile(snap)
	}
	// The interpreter's translation and run of _initialize left some
	// hundred MB of garbage behind. Collected now, its memory serves the
	// allocations that follow (the serialized artifact, its compression)
	// instead of the heap growing into fresh pages: a node's first deploy
	// of a Go module took 87,000 page faults, 70,000 with this, each
	// about 10 µs on a VM where faults are dear (docs/RATIONALE.md,
	// "Compiled artifacts reach every node").
	runtime.GC()
	if err := e.tierRuntime().err; err != nil {
		return nil, err
	}
	cm, err := compileWith(e.tierEngine(), snap)
	if err != nil {
		// Winch lacks some of what Cranelift compiles (tail calls, some
		// SIMD instructions, the GC and exception proposals): such a
		// snapshot is compiled with the Engine's settings, slower, rather
		// than losing its pre-initialisation. The module is then of the
		// optimised tier (req.mod stays nil).
		e.cheapFallbacks.Add(1)
		return e.compile(snap)
	}
	// Checked before it is shared (compilePreinit checks the mapped
	// module again): an artifact other nodes may load passed the rules.
	_, checkErr := checkSnapshot(cm)
	art, err := cm.Serialize()
	cm.Close()
	if err != nil {
		return nil, fmt.Errorf("serializing the cheap compile: %w", err)
	}
	if req.share != nil && checkErr == nil {
		req.share(art)
	}
	// Written to its file first and mapped from it, as a fetched artifact
	// is (loadArtifact): no copy of the ~20 MiB into the Engine, and the
	// memory image is mapped from the file rather than copied into a new
	// one when the module is first instantiated.
	var m *wasmtime.Module
	if req.tmp != "" {
		// An earlier attempt of this load (the module with memory.grow
		// guarded, before the one without) whose snapshot was refused.
		os.Remove(req.tmp)
		req.tmp = ""
	}
	if req.path != "" {
		if tmp, err := writeTemp(req.path, art); err != nil {
			e.diskWriteErrors.Add(1)
		} else if m, err = wasmtime.NewModuleDeserializeFile(e.tierEngine(), tmp); err != nil {
			os.Remove(tmp)
			return nil, fmt.Errorf("loading the cheap compile: %w", err)
		} else {
			req.tmp = tmp
		}
	}
	if m == nil {
		if m, err = wasmtime.NewModuleDeserialize(e.tierEngine(), art); err != nil {
			return nil, fmt.Errorf("loading the cheap compile: %w", err)
		}
	}
	req.mod, req.snap = m, snap
	return m, nil
}

// cheapPath names the cheap-tier artifact of hash in the cache directory.
func (e *Engine) cheapPath(hash string) string {
	p := e.cachePath(hash)
	if p == "" || e.cfg.DisablePreinit {
		return ""
	}
	return strings.TrimSuffix(p, ".cwasm") + ".cheap.cwasm"
}

// Tier reports the tier of module hash in memory; false: not in memory.
func (e *Engine) Tier(hash string) (Tier, bool) {
	if m := e.current(hash); m != nil {
		return m.tier, true
	}
	return 0, false
}

// current returns module hash from memory, or nil, without touching the LRU.
func (e *Engine) current(hash string) *Module {
	e.mu.Lock()
	defer e.mu.Unlock()
	if el, ok := e.modules[hash]; ok {
		return el.Value.(*Module)
	}
	return nil
}

// Optimize compiles module hash with the Engine's settings when the
// module in memory is of the cheap tier, writes the artifact to the cache
// directory and swaps the module (see swap). It compiles the snapshot the
// cheap module was made from; a cheap module loaded from an artifact has
// none, and wasm's module is then compiled and pre-initialised again.
// false: there was nothing to do (not in memory, already optimised, or
// replaced meanwhile). Calls are not held up: it is for the background.
func (e *Engine) Optimize(ctx context.Context, hash string, wasm func() ([]byte, error)) (bool, error) {
	cur := e.current(hash)
	if cur == nil || cur.tier != TierCheap {
		return false, nil
	}
	if e.closed.Load() {
		return false, ErrClosed
	}
	e.compilingNow.Add(1)
	defer e.compilingNow.Add(-1)
	var (
		m    *wasmtime.Module
		info moduleInfo
		err  error
	)
	if cur.snap != nil {
		m, err = e.compile(cur.snap)
		info = cur.info
	} else {
		var b []byte
		if b, err = wasm(); err != nil {
			return false, fmt.Errorf("fetching module %s: %w", hash, err)
		}
		m, info, err = e.compileModule(ctx, b)
	}
	if err != nil {
		return false, fmt.Errorf("optimising module %s: %w", hash, err)
	}
	e.optimizes.Add(1)
	nm := &Module{hash: hash, m: m, info: info}
	if path := e.cachePath(hash); path != "" {
		if err := e.writeCompiled(path, m); err != nil {
			e.diskWriteErrors.Add(1)
		}
	}
	e.prime(nm)
	return e.swap(cur, nm), nil
}

// Upgrade replaces module hash, when the one in memory is of the cheap
// tier, by the optimised artifact artifact returns (another node's
// Optimize): loaded, written to the cache directory, primed and swapped
// in. false: nothing to do, or no usable artifact (counted as
// loadArtifact counts).
func (e *Engine) Upgrade(hash string, artifact func() ([]byte, error)) bool {
	cur := e.current(hash)
	if cur == nil || cur.tier != TierCheap || artifact == nil || e.closed.Load() {
		return false
	}
	m, ok := e.loadArtifact(e.wt, hash, e.cachePath(hash), artifact)
	if !ok {
		return false
	}
	e.prime(m)
	return e.swap(cur, m)
}

// swap puts nm in the in-memory cache in place of old: calls that start
// after it run nm; calls running keep their instances of old, which end
// with them (finish), and old's idle reusable instances are ended now.
// When old was replaced meanwhile, nm is dropped instead (false).
func (e *Engine) swap(old, nm *Module) bool {
	e.mu.Lock()
	el, ok := e.modules[old.hash]
	switch {
	case ok && el.Value.(*Module) == old:
		// A new element in its place: readers take an element's Value
		// after unlocking, so a Value never changes.
		e.modules[old.hash] = e.lru.InsertBefore(nm, el)
		e.lru.Remove(el)
	case !ok && e.inflight[old.hash] == nil:
		e.modules[old.hash] = e.lru.PushFront(nm)
		for e.lru.Len() > e.cfg.MaxModules {
			ev := e.lru.Remove(e.lru.Back()).(*Module)
			delete(e.modules, ev.hash)
		}
	default:
		e.mu.Unlock()
		nm.retired.Store(true)
		e.endIdleOf(nm)
		return false
	}
	e.mu.Unlock()
	old.retired.Store(true)
	e.upgrades.Add(1)
	e.endIdleOf(old)
	if p := e.cheapPath(old.hash); p != "" {
		// The optimised artifact is looked for first; this one is dead
		// weight. (Should it still be being synced, persistLater names it
		// afterwards, and a later Load removes it.)
		removeCache(p)
	}
	return true
}

func removeCache(path string) { _ = os.Remove(path) }

// endIdleOf ends the idle reusable instances of m.
func (e *Engine) endIdleOf(m *Module) {
	e.reuseMu.Lock()
	var ws []*warmInst
	if e.idle != nil {
		for el := e.idle.Front(); el != nil; {
			next := el.Next()
			if w := el.Value.(*warmInst); w.mod == m {
				e.idle.Remove(el)
				ws = append(ws, w)
			}
			el = next
		}
	}
	e.reuseMu.Unlock()
	for _, w := range ws {
		e.end(w)
	}
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// Pre-initialisation (the technique of Wizer): a module that exports
// _initialize, as every Go guest does, is run once at Load, in a sandbox,
// up to the end of _initialize; its state then is written into a new module,
// which is what every call instantiates. A Go guest spends about a
// millisecond in _initialize (the runtime, then every package's init); the
// snapshot's instance starts where that left off, its memory mapped
// copy-on-write from the compiled artifact.
//
// Soundness rests on capturing the whole state of the instance, which for a
// core module is its memory, its globals, its tables and which of its
// segments have been dropped:
//
//   - memory: its size becomes the memory's minimum and its non-zero bytes
//     active data segments, replacing the module's own;
//   - globals: every mutable one, exported or not, is read through an export
//     added for the purpose (wasmModule.instrumented) and its initialiser
//     replaced by the value;
//   - tables and segments: not captured, so scanCode refuses modules whose
//     code could change them (table.set/grow/fill/copy/init, elem.drop,
//     memory.init, data.drop) or that use instructions it does not know.
//     Tables are then exactly what the element segments build, as in a
//     fresh instance. Go's code never changes its table.
//
// A start function runs at instantiation, before _initialize; the snapshot
// has none, its effect being part of the state.
//
// The host's side of the instance is covered by what _initialize may call
// (availableDuringInit): clocks, random and sleeping, nothing that reads the
// call's input, writes its output or logs, and nothing that reaches a Host,
// so the snapshot can hold no secret and no database answer. The guest's
// clocks are continued in every call from where initialisation left them
// (callState.monoOffset), so to the guest handler runs right after
// _initialize, as it did before.
//
// What does change, and docs/ABI.md says so: anything initialisation
// computes is computed once per version. That includes the Go runtime's
// random state (math/rand's top-level functions, hash/maphash seeds, map
// iteration order start the same way in every call; crypto/rand is read
// from the host each time and is unaffected) and package variables set
// from the clock or from random numbers.
//
// Any failure (a module the scanner refuses, an _initialize that traps,
// times out, runs out of memory or calls what it may not, a module the
// interpreter refuses) leaves the module running _initialize on every call,
// as it would without this; Load never fails because of it. Stats counts
// both outcomes.
//
// _initialize runs in wazero's interpreter (initrun.go), which needs no
// compile; wasmtime compiles only the snapshot, so a deploy pays one
// compile. Where the interpreter gives up for a reason of its own (it is
// slower than compiled code, so past the deadline; its call depth; a
// module it refuses) the run is done again on wasmtime, compiled cheaply
// (snapshotCompiled), so no module is snapshotted less often than when
// every run was compiled. An invalid module, or one that breaks the ABI's
// rules, fails on the way and is then compiled as it is, which says why.

// initClockStart is the guest's monotonic clock when pre-initialisation
// begins: not zero, which Go's runtime refuses as a clock reading.
const initClockStart = time.Second

// preinitLimits bound the one run of _initialize: the defaults a call gets.
// An initialisation that needs more runs per call instead, under the
// function's own limits.
var preinitLimits = Limits{}.WithDefaults()

// compileModule turns a module's bytes into the module Load caches:
// pre-initialised when it exports _initialize and that succeeds, else
// compiled as it is.
//
// Either way its memory.grow instructions are guarded first (growguard.go)
// when the module allows it. guarded then says the bytes are the engine's
// rewrite of a module that exports no reserved name (guardGrow checked), so
// the guard's export is ours, not the user's.
//
// Should the guarded module fail to compile or check (a defect of the
// rewrite, never the user's), the module is compiled as it is, unguarded:
// the guard must not cost a deploy.
//
// ctx ends the work between its steps (compiles, the run of _initialize,
// which it interrupts); a compile in progress cannot be interrupted and
// finishes first.
func (e *Engine) compileModule(ctx context.Context, wasm []byte) (*wasmtime.Module, moduleInfo, error) {
	if g, err := rewriteGrow(wasm); err == nil {
		if m, info, err := e.compileAs(ctx, g, true); err == nil {
			return m, info, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, moduleInfo{}, context.Cause(ctx)
	}
	return e.compileAs(ctx, wasm, false)
}

// rewriteGrow is guardGrow; tests replace it.
var rewriteGrow = guardGrow

func (e *Engine) compileAs(ctx context.Context, wasm []byte, guarded bool) (*wasmtime.Module, moduleInfo, error) {
	if e.cfg.DisablePreinit {
		return e.compileChecked(wasm, guarded)
	}
	return e.compilePreinit(ctx, wasm, guarded)
}

// compileChecked compiles wasm as it is and applies the ABI's rules.
func (e *Engine) compileChecked(wasm []byte, guarded bool) (*wasmtime.Module, moduleInfo, error) {
	m, err := e.compile(wasm)
	if err != nil {
		return nil, moduleInfo{}, err
	}
	info, err := checkModule(m, guarded)
	if err != nil {
		m.Close()
		return nil, moduleInfo{}, err
	}
	return m, info, nil
}

func (e *Engine) compilePreinit(ctx context.Context, wasm []byte, guarded bool) (m *wasmtime.Module, info moduleInfo, err error) {
	// unchanged falls back to the module as it is, unless the load was
	// given up meanwhile.
	unchanged := func(why error) (*wasmtime.Module, moduleInfo, error) {
		if ctx.Err() != nil {
			return nil, moduleInfo{}, context.Cause(ctx)
		}
		m, info, err := e.compileChecked(wasm, guarded)
		if err == nil {
			e.preinitFailures.Add(1)
			info.preinitErr = why
		}
		return m, info, err
	}
	// A bug here must not fail the deploy.
	defer func() {
		if r := recover(); r != nil {
			m, info, err = unchanged(fmt.Errorf("pre-initialising: panic: %v", r))
		}
	}()

	p, err := parseWasm(wasm)
	if err != nil {
		return e.compileChecked(wasm, guarded) // something wasmtime will explain, or the snapshot cannot represent
	}
	if !p.exportsFunc("_initialize") {
		return e.compileResettable(p, wasm, guarded)
	}
	for _, ex := range p.exports {
		if strings.HasPrefix(ex.name, reservedPrefix) && !(guarded && ex.name == growRefusedExport) {
			return e.compileChecked(wasm, guarded) // which refuses the name
		}
	}
	if err := scanCode(p.section(secCode)); err != nil {
		return unchanged(fmt.Errorf("pre-initialising: %w", err))
	}
	if err := p.checkTables(); err != nil {
		return unchanged(fmt.Errorf("pre-initialising: %w", err))
	}
	ir, err := e.initRuntime()
	if err != nil {
		return unchanged(fmt.Errorf("pre-initialising: %w", err))
	}

	// A failure from here on falls back to compiling the module as it is.
	// A module wasmtime would refuse (invalid, or breaking the ABI's rules)
	// fails here too (the interpreter refuses it, or the snapshot's check
	// does), and that compile reports why in its own terms.
	fallback := func(why error) (*wasmtime.Module, moduleInfo, error) {
		return unchanged(fmt.Errorf("pre-initialising: %w", why))
	}
	snap, err := e.snapshot(ctx, ir, p)
	var gaveUp *interpreterGaveUp
	if errors.As(err, &gaveUp) && ctx.Err() == nil {
		e.initRetries.Add(1)
		snap, err = e.snapshotCompiled(ctx, p)
		if err != nil {
			err = fmt.Errorf("%w; compiled: %w", gaveUp, err)
		}
	}
	if err != nil {
		return fallback(err)
	}
	if ctx.Err() != nil {
		return nil, moduleInfo{}, context.Cause(ctx)
	}
	sm, err := e.compileSnapshot(ctx, snap)
	if err != nil {
		return fallback(fmt.Errorf("compiling the snapshot: %w", err))
	}
	sinfo, err := checkSnapshot(sm)
	if err != nil {
		sm.Close()
		return fallback(fmt.Errorf("checking the snapshot: %w", err))
	}
	e.preinits.Add(1)
	return sm, sinfo, nil
}

// compileResettable compiles a module that has no _initialize so that its
// instances can be reused (reuse.go): with every mutable global exported and
// the resetExport mark, the only change, when nothing but its memory and
// globals can change from call to call. parseWasm has already refused
// imports other than functions and any memory but one; no start function
// may run at instantiation (the first instance is created inside a call,
// and what a start function made of that call's input would be the state
// every later call starts from); scanCode refuses code that changes a
// table or a data segment. Any other module, or one whose rewrite fails to
// compile, is compiled as it is and gets a new instance per call.
func (e *Engine) compileResettable(p *wasmModule, wasm []byte, guarded bool) (*wasmtime.Module, moduleInfo, error) {
	for _, ex := range p.exports {
		if strings.HasPrefix(ex.name, reservedPrefix) && !(guarded && ex.name == growRefusedExport) {
			return e.compileChecked(wasm, guarded) // which refuses the name
		}
	}
	if p.section(secStart) != nil || scanCode(p.section(secCode)) != nil || p.checkTables() != nil {
		return e.compileChecked(wasm, guarded)
	}
	m, info, err := e.compileChecked(p.resettable(), true)
	if err != nil || !info.resettable {
		if m != nil {
			m.Close()
		}
		return e.compileChecked(wasm, guarded)
	}
	return m, info, nil
}

// checkSnapshot applies the ABI's rules to a compiled snapshot, which must
// carry the pre-initialised mark and no _initialize.
func checkSnapshot(m *wasmtime.Module) (moduleInfo, error) {
	info, err := checkModule(m, true)
	if err == nil && (!info.preinit || info.hasInitialize) {
		err = errors.New("not marked as pre-initialised")
	}
	return info, err
}

// snapshot runs _initialize of p's instrumented copy on the interpreter
// (initrun.go), in a sandbox with preinitLimits, and returns the
// pre-initialised module's bytes.
func (e *Engine) snapshot(ctx context.Context, ir *initRuntime, p *wasmModule) (_ []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	// Counted as a call, so Close waits for it.
	if !e.enter() {
		return nil, ErrClosed
	}
	defer e.exit()

	cm, err := ir.compile(ctx, p.forInterpreter(initMemoryPages()))
	e.initCompiles.Add(1)
	if err != nil {
		return nil, err
	}
	defer cm.Close(context.Background())
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}

	lim := preinitLimits
	start := time.Now()
	st := &callState{
		lim: lim, start: start, parent: ctx, deadline: start.Add(lim.Timeout),
		monoOrigin: start, monoOffset: initClockStart, preinit: true,
	}
	defer st.release()
	e.running <- struct{}{}
	st.running = e.running
	defer st.returnToken()

	return ir.run(st, cm, p, func(mem []byte, globals map[int]snapshotValue) ([]byte, error) {
		elapsed := time.Since(start)
		// Every call starts with no refused grow, whatever _initialize met.
		for _, ex := range p.exports {
			if ex.name == growRefusedExport && ex.kind == kindGlobal {
				globals[int(ex.idx)] = 0
			}
		}
		return p.snapshotModule(mem, globals, elapsed.Nanoseconds())
	})
}

// snapshotCompiled is snapshot on wasmtime: it compiles p's instrumented
// copy on the init engine, instantiates it in a sandbox, runs _initialize
// (and aerofn_before_snapshot) and returns the pre-initialised module's
// bytes. It serves only the modules the interpreter gave up on
// (initrun.go).
func (e *Engine) snapshotCompiled(ctx context.Context, p *wasmModule) (_ []byte, err error) {
	ie, err := e.initEngine()
	if err != nil {
		return nil, err
	}
	m, err := ie.compile(p.instrumentedCapped(initMemoryPages()))
	e.initCompiles.Add(1)
	if err != nil {
		return nil, fmt.Errorf("compiling with globals exported: %w", err)
	}
	defer m.Close()
	if _, err := checkModule(m, true); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	return e.snapshotOn(ctx, ie, m, p)
}

func (e *Engine) snapshotOn(ctx context.Context, ie *initEngine, m *wasmtime.Module, p *wasmModule) (_ []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	// Counted as a call, so Close waits for it and the epoch keeps ticking
	// while it runs.
	if !e.enter() {
		return nil, ErrClosed
	}
	defer e.exit()

	stopTicking := ie.tick(e.cfg.EpochTick)
	defer stopTicking()

	lim := preinitLimits
	start := time.Now()
	st := &callState{
		lim: lim, start: start, parent: ctx, deadline: start.Add(lim.Timeout),
		monoOrigin: start, monoOffset: initClockStart, preinit: true,
	}
	defer st.release()
	e.running <- struct{}{}
	st.running = e.running
	defer st.returnToken()
	// The init engine is not pooled: the run needs no slot of the Engine's
	// pool, only a run token like any call.
	store := wasmtime.NewStoreWithData(ie.wt, st)
	store.Limiter(lim.MemoryBytes, maxTableElements, maxInstances, maxTables, maxMemories)
	intr := e.armInterrupt(store, st.parent, lim.Timeout)
	defer func() {
		store.Close()
		intr.release()
	}()

	inst, err := ie.linker.Instantiate(store, m)
	phase := "_initialize"
	if err == nil {
		st.mem = exportedMemory(store, inst, "memory")
		_, err = exportedFunc(store, inst, "_initialize").Call(store)
		if f := optionalFunc(store, inst, beforeSnapshotExport); err == nil && f != nil {
			if ft := f.Type(store); len(ft.Params()) != 0 || len(ft.Results()) != 0 {
				return nil, errors.New(beforeSnapshotExport + " is not a function () -> ()")
			}
			phase = beforeSnapshotExport
			_, err = f.Call(store)
		}
	}
	elapsed := time.Since(start)
	switch {
	case st.refused != "":
		return nil, fmt.Errorf("%s called %s", phase, st.refused)
	case intr.fired():
		return nil, fmt.Errorf("%s did not finish within %v", phase, lim.Timeout)
	case err != nil:
		msg := trapError(err).Message
		if st.mem != nil && int64(st.mem.DataSize(store))+oomSlack(lim.MemoryBytes) > lim.MemoryBytes {
			msg += fmt.Sprintf(" (memory at %d bytes, limit %d)", st.mem.DataSize(store), lim.MemoryBytes)
		}
		return nil, fmt.Errorf("%s failed: %s", phase, msg)
	}

	globals := make(map[int]snapshotValue)
	for i, g := range p.globals {
		if !g.mutable {
			continue
		}
		v, err := globalBits(store, inst, i)
		if err != nil {
			return nil, err
		}
		globals[i] = v
	}
	// Every call starts with no refused grow, whatever _initialize met.
	for _, ex := range p.exports {
		if ex.name == growRefusedExport && ex.kind == kindGlobal {
			globals[int(ex.idx)] = 0
		}
	}
	return p.snapshotModule(st.mem.UnsafeData(store), globals, elapsed.Nanoseconds())
}

// globalBits reads mutable global i through the export instrumented() added.
func globalBits(store *wasmtime.Store, inst *wasmtime.Instance, i int) (snapshotValue, error) {
	ext := inst.GetExport(store, globalExportName(i))
	if ext == nil {
		return 0, fmt.Errorf("global %d is not exported", i)
	}
	defer ext.Close()
	g := ext.Global()
	if g == nil {
		return 0, fmt.Errorf("export for global %d is not a global", i)
	}
	v := g.Get(store)
	switch v.Kind() {
	case wasmtime.KindI32:
		return snapshotValue(uint32(v.I32())), nil
	case wasmtime.KindI64:
		return snapshotValue(v.I64()), nil
	case wasmtime.KindF32:
		// A NaN's payload may not survive the trip through Go's float32.
		if f := v.F32(); f == f {
			return snapshotValue(math.Float32bits(f)), nil
		}
	case wasmtime.KindF64:
		if f := v.F64(); f == f {
			return snapshotValue(math.Float64bits(f)), nil
		}
	}
	return 0, fmt.Errorf("global %d holds %v, which a snapshot cannot record", i, v.Kind())
}

// initEngine is a second wasmtime engine that compiles modules only for
// their one run of _initialize when the interpreter gave up on it, with
// settings that make compiling cheap at the expense of the code's speed:
// Cranelift without optimisations and with its single-pass register
// allocator (about 2 s of CPU for the hello example, against 4 s at the
// Engine's settings).
//
// Both compilers implement the same WebAssembly semantics, so the state
// _initialize leaves behind does not depend on which one ran it (NaN bit
// patterns aside, which WebAssembly leaves unspecified anyway).
type initEngine struct {
	wt     *wasmtime.Engine
	linker *wasmtime.Linker
}

// initEngine builds the init engine on first use.
func (e *Engine) initEngine() (*initEngine, error) {
	e.wtInitOnce.Do(func() {
		cfg := wasmtime.NewConfig()
		cfg.SetEpochInterruption(true)
		cfg.SetMaxWasmStack(e.cfg.MaxWasmStack)
		cfg.SetCraneliftOptLevel(wasmtime.OptLevelNone)
		cfg.SetCraneliftFlag("regalloc_algorithm", "single_pass")
		wt := wasmtime.NewEngineWithConfig(cfg)
		linker, err := newLinker(wt, false) // Go's: a call to input or output refuses the snapshot
		if err != nil {
			e.wtInitErr = fmt.Errorf("defining host functions for the init engine: %w", err)
			return
		}
		e.wtInit = &initEngine{wt: wt, linker: linker}
	})
	return e.wtInit, e.wtInitErr
}

func (ie *initEngine) compile(wasm []byte) (*wasmtime.Module, error) {
	return compileWith(ie.wt, wasm)
}

// tick advances the init engine's epoch while a snapshot runs, so the
// deadline of _initialize bites as a call's does; the returned function
// stops it.
func (ie *initEngine) tick(every time.Duration) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				ie.wt.IncrementEpoch()
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

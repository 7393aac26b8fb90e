package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// The one run of _initialize that builds a snapshot (preinit.go) happens in
// wazero's interpreter, not in wasmtime: the code runs once, for tens of
// milliseconds, and translating a Go module to the interpreter's form costs
// a few hundred milliseconds of CPU, where compiling it with Cranelift, even
// at its cheapest settings, cost 2 s (docs/RATIONALE.md, "Engine:
// pre-initialised snapshots"). wasmtime compiles only the snapshot, and
// only wasmtime runs calls.
//
// The run offers what a run on wasmtime offered:
//
//   - the same host functions, the same code (hostFns, through an adapter
//     from wazero's stack to wasmtime.Val), of which only those
//     availableDuringInit answers; any other ends the attempt;
//   - the same limits: preinitLimits' timeout (the context wazero checks
//     at every call and back-edge) and memory cap (the memory's maximum,
//     clamped to the cap in the copy the interpreter runs, so a grow past
//     it returns -1 as wasmtime's store limiter does, and the grow guard
//     records it as it would there), the store limiter's table caps
//     (checked on the module's table section);
//   - the same outputs: memory contents and size, every mutable global as
//     raw bits (a NaN's payload included), and the run's duration.
//
// WebAssembly's semantics do not depend on the engine, so the state
// _initialize leaves is the same on either (NaN bit patterns aside, which
// WebAssembly leaves unspecified). What can differ is where a run gives
// up: the interpreter is tens of times slower than compiled code, so it
// reaches the deadline sooner, and allows 2,000 nested wasm calls where
// wasmtime allows MaxWasmStack bytes of native stack. Such a run, and a
// module the interpreter refuses, is done again on wasmtime
// (interpreterGaveUp, preinit.go).

// interpreterGaveUp is a run of _initialize that failed for a reason of the
// interpreter's, not the module's: past the deadline (the interpreter being
// slower than compiled code), too deep a call stack, a module it refuses.
// preinit.go runs it again on wasmtime.
type interpreterGaveUp struct{ err error }

func (g *interpreterGaveUp) Error() string { return "on the interpreter: " + g.err.Error() }
func (g *interpreterGaveUp) Unwrap() error { return g.err }

// initRuntime is the wazero runtime that runs _initialize, built on first
// use and shared by every Load of the Engine (host functions find their
// call's state through the context, so concurrent runs do not meet).
type initRuntime struct {
	rt wazero.Runtime
}

type initStateKey struct{}

// errInitRefused is what a host function the init may not call panics
// with; the attempt then ends with callState.refused set.
var errInitRefused = errors.New("not available while pre-initialising")

func (e *Engine) initRuntime() (*initRuntime, error) {
	e.initOnce.Do(func() {
		e.init, e.initErr = newInitRuntime(wazero.NewRuntimeConfigInterpreter())
	})
	return e.init, e.initErr
}

// newInitRuntime builds a runtime of cfg with the limits and host
// functions of a run of _initialize.
func newInitRuntime(cfg wazero.RuntimeConfig) (*initRuntime, error) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, cfg.WithCloseOnContextDone(true).WithMemoryLimitPages(initMemoryPages()))
	if err := defineInitHost(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("defining host functions for the interpreter: %w", err)
	}
	return &initRuntime{rt: rt}, nil
}

// initMemoryPages is preinitLimits' memory cap in pages.
func initMemoryPages() uint32 {
	return uint32(min(preinitLimits.MemoryBytes/wasmPage, 65536))
}

// defineInitHost defines every host function of hostFns in rt.
func defineInitHost(ctx context.Context, rt wazero.Runtime) error {
	builders := map[string]wazero.HostModuleBuilder{}
	for _, f := range hostFns {
		b := builders[f.module]
		if b == nil {
			b = rt.NewHostModuleBuilder(f.module)
			builders[f.module] = b
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(initHostFunc(f), wazeroTypes(f.sig.params), wazeroTypes(f.sig.results)).
			Export(f.name)
	}
	for _, name := range []string{abiModule, wasiModule} {
		if _, err := builders[name].Instantiate(ctx); err != nil {
			return err
		}
	}
	return nil
}

func wazeroTypes(ks []wasmtime.ValKind) []api.ValueType {
	out := make([]api.ValueType, len(ks))
	for i, k := range ks {
		switch k {
		case wasmtime.KindI32:
			out[i] = api.ValueTypeI32
		case wasmtime.KindI64:
			out[i] = api.ValueTypeI64
		default:
			panic(fmt.Sprintf("host function value kind %v", k))
		}
	}
	return out
}

// initHostFunc adapts f to wazero: arguments from the stack to wasmtime.Val
// (plain Go values, no engine involved), the results back, a trap becomes a
// panic, which ends the run with its message.
func initHostFunc(f hostFn) api.GoModuleFunc {
	name, duringInit := f.module+"."+f.name, availableDuringInit(f)
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		st, _ := ctx.Value(initStateKey{}).(*callState)
		if st == nil {
			panic(errors.New("host function called outside a call"))
		}
		if !duringInit {
			st.refused = name
			panic(fmt.Errorf("%s: %w", name, errInitRefused))
		}
		if st.memFn == nil {
			if m := mod.ExportedMemory("memory"); m != nil {
				st.memFn = initMemory(m)
			}
		}
		args := make([]wasmtime.Val, len(f.sig.params))
		for i, k := range f.sig.params {
			if k == wasmtime.KindI64 {
				args[i] = wasmtime.ValI64(int64(stack[i]))
			} else {
				args[i] = wasmtime.ValI32(int32(uint32(stack[i])))
			}
		}
		res, trap := f.fn(st, nil, args)
		if trap != nil {
			panic(errors.New(trap.Message()))
		}
		for i, v := range res {
			if v.Kind() == wasmtime.KindI64 {
				stack[i] = uint64(v.I64())
			} else {
				stack[i] = uint64(uint32(v.I32()))
			}
		}
	}
}

// initMemory is the guest memory of a run on the interpreter, as a slice
// (valid until the guest runs again, as for wasmtime's UnsafeData).
func initMemory(m api.Memory) func() []byte {
	return func() []byte {
		b, _ := m.Read(0, m.Size())
		return b
	}
}

// compile translates wasm (p's instrumented copy) to the interpreter's
// form. wasm may be invalid: the error then says so.
func (ir *initRuntime) compile(ctx context.Context, wasm []byte) (wazero.CompiledModule, error) {
	cm, err := ir.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, &interpreterGaveUp{fmt.Errorf("the interpreter refused the module: %w", err)}
	}
	if ft := cm.ExportedFunctions()["_initialize"]; ft == nil || len(ft.ParamTypes()) != 0 || len(ft.ResultTypes()) != 0 {
		cm.Close(context.Background())
		return nil, errors.New("_initialize is not a function () -> ()")
	}
	if ft := cm.ExportedFunctions()[beforeSnapshotExport]; ft != nil && (len(ft.ParamTypes()) != 0 || len(ft.ResultTypes()) != 0) {
		cm.Close(context.Background())
		return nil, errors.New(beforeSnapshotExport + " is not a function () -> ()")
	}
	return cm, nil
}

// run instantiates cm, runs _initialize (and then aerofn_before_snapshot,
// when exported) under st's deadline and passes the instance's memory and
// every mutable global of p (read through the exports instrumented added)
// to build, whose result it returns. The memory is the instance's own,
// valid only during build.
func (ir *initRuntime) run(st *callState, cm wazero.CompiledModule, p *wasmModule, build func(mem []byte, globals map[int]snapshotValue) ([]byte, error)) ([]byte, error) {
	ctx, cancel := context.WithDeadline(st.parent, st.deadline)
	defer cancel()
	ctx = context.WithValue(ctx, initStateKey{}, st)

	// Instantiation runs the start function, which may call the host
	// before st.memFn is set: initHostFunc sets it from the module it is
	// given.
	mod, err := ir.rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	phase := "_initialize"
	if err == nil {
		defer mod.Close(context.Background())
		mem := mod.ExportedMemory("memory")
		if mem == nil {
			return nil, errors.New("no memory export")
		}
		st.memFn = initMemory(mem)
		_, err = mod.ExportedFunction("_initialize").Call(ctx)
		if f := mod.ExportedFunction(beforeSnapshotExport); err == nil && f != nil {
			phase = beforeSnapshotExport
			_, err = f.Call(ctx)
		}
	}
	if err != nil {
		return nil, inPhase(initFailure(st, ctx, mod, err), phase)
	}

	mem := st.memFn()
	globals := make(map[int]snapshotValue)
	for i, g := range p.globals {
		if !g.mutable {
			continue
		}
		eg := mod.ExportedGlobal(globalExportName(i))
		if eg == nil {
			return nil, fmt.Errorf("global %d is not exported", i)
		}
		switch t := eg.Type(); t {
		case api.ValueTypeI32, api.ValueTypeF32:
			globals[i] = snapshotValue(uint32(eg.Get()))
		case api.ValueTypeI64, api.ValueTypeF64:
			globals[i] = snapshotValue(eg.Get())
		default:
			return nil, fmt.Errorf("global %d holds %s, which a snapshot cannot record", i, api.ValueTypeName(t))
		}
	}
	return build(mem, globals)
}

// inPhase names phase, the export that was running, in a failure that
// initFailure (or the run on wasmtime) described as _initialize's.
func inPhase(err error, phase string) error {
	if phase == "_initialize" || err == nil {
		return err
	}
	rename := func(e error) error {
		if rest, ok := strings.CutPrefix(e.Error(), "_initialize"); ok {
			return errors.New(phase + rest)
		}
		return e
	}
	if g, ok := err.(*interpreterGaveUp); ok {
		return &interpreterGaveUp{rename(g.err)}
	}
	return rename(err)
}

// initFailure says why the run of _initialize (or instantiation) failed.
func initFailure(st *callState, ctx context.Context, mod api.Module, err error) error {
	var exit *sys.ExitError
	switch {
	case st.refused != "":
		return fmt.Errorf("_initialize called %s", st.refused)
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded,
		st.parent.Err() == nil && (ctx.Err() != nil || errors.Is(st.interrupted, context.DeadlineExceeded)):
		return &interpreterGaveUp{fmt.Errorf("_initialize did not finish within %v", preinitLimits.Timeout)}
	case strings.HasPrefix(err.Error(), "wasm error: stack overflow"):
		// Over the interpreter's 2,000 nested calls, which wasmtime's
		// native stack may hold.
		return &interpreterGaveUp{errors.New("_initialize failed: the interpreter's call stack overflowed")}
	}
	// "wasm error: unreachable\nwasm stack trace: ..." reads as a trap's
	// message does on wasmtime.
	msg, _, _ := strings.Cut(err.Error(), "\n")
	if m, ok := strings.CutPrefix(msg, "wasm error: "); ok {
		msg = "wasm trap: " + m
	}
	if mod != nil {
		if m := mod.ExportedMemory("memory"); m != nil {
			size, limit := int64(m.Size()), preinitLimits.MemoryBytes
			var refused uint32
			if g := mod.ExportedGlobal(growRefusedExport); g != nil && g.Type() == api.ValueTypeI32 {
				refused = uint32(g.Get())
			}
			switch {
			case refused != 0:
				msg += fmt.Sprintf(" (growing memory by %d pages from %d bytes was refused, limit %d)", refused, size, limit)
			case size+oomSlack(limit) > limit:
				msg += fmt.Sprintf(" (memory at %d bytes, limit %d)", size, limit)
			}
		}
	}
	return fmt.Errorf("_initialize failed: %s", msg)
}

package engine

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// Import module names from docs/ABI.md.
const (
	abiModule  = "aerodb"
	wasiModule = "wasi_snapshot_preview1"
)

const (
	i32 = wasmtime.KindI32
	i64 = wasmtime.KindI64
)

// signature is a function type spelled as value kinds, so the ABI tables
// below can be compared against a module's imports and turned into linker
// definitions from one source.
type signature struct {
	params, results []wasmtime.ValKind
}

func sig(params []wasmtime.ValKind, results ...wasmtime.ValKind) signature {
	return signature{params: params, results: results}
}

func kinds(k ...wasmtime.ValKind) []wasmtime.ValKind { return k }

func (s signature) String() string {
	return "(" + joinKinds(s.params) + ") -> (" + joinKinds(s.results) + ")"
}

func joinKinds(ks []wasmtime.ValKind) string {
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = k.String()
	}
	return strings.Join(parts, ", ")
}

func (s signature) funcType() *wasmtime.FuncType {
	return wasmtime.NewFuncType(valTypes(s.params), valTypes(s.results))
}

func valTypes(ks []wasmtime.ValKind) []*wasmtime.ValType {
	out := make([]*wasmtime.ValType, len(ks))
	for i, k := range ks {
		out[i] = wasmtime.NewValType(k)
	}
	return out
}

func signatureOf(ft *wasmtime.FuncType) signature {
	var s signature
	for _, p := range ft.Params() {
		s.params = append(s.params, p.Kind())
	}
	for _, r := range ft.Results() {
		s.results = append(s.results, r.Kind())
	}
	return s
}

func (s signature) equal(o signature) bool {
	return equalKinds(s.params, o.params) && equalKinds(s.results, o.results)
}

func equalKinds(a, b []wasmtime.ValKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// hostFn is one function the host defines for guests: its ABI name and type,
// and what it does for the call in progress.
type hostFn struct {
	module, name string
	sig          signature
	fn           func(st *callState, c *wasmtime.Caller, args []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap)
}

// hostFns is every import a module may have: the aerodb ABI v1 and all of
// wasi_snapshot_preview1. Validate accepts exactly these names with exactly
// these types, and newLinker defines exactly these, so a module that passes
// Validate always links.
var hostFns = append(abiFns(), wasiFns()...)

var hostSigs = func() map[string]map[string]signature {
	m := map[string]map[string]signature{abiModule: {}, wasiModule: {}}
	for _, f := range hostFns {
		m[f.module][f.name] = f.sig
	}
	return m
}()

// newLinker defines every host function once for the engine. Definitions are
// not tied to a store, so the linker is shared by all calls and safe for
// concurrent instantiation; each function finds its call's state through the
// store data (Caller.Data), which is cheaper than building a linker per call.
//
// With native set (the engines whose calls go through fastcall.go), the
// ABI's input_len, input_read and output are C functions instead
// (fastcall.go): most calls then never come back into Go until they end.
func newLinker(wt *wasmtime.Engine, native bool) (*wasmtime.Linker, error) {
	l := wasmtime.NewLinker(wt)
	for _, f := range hostFns {
		if native {
			if ok, err := defineNativeIO(l, f); ok {
				if err != nil {
					return nil, fmt.Errorf("defining %s.%s: %w", f.module, f.name, err)
				}
				continue
			}
		}
		fn, name, duringInit := f.fn, f.module+"."+f.name, availableDuringInit(f)
		err := l.FuncNew(f.module, f.name, f.sig.funcType(), func(c *wasmtime.Caller, args []wasmtime.Val) (res []wasmtime.Val, trap *wasmtime.Trap) {
			var st *callState
			switch d := c.Data().(type) {
			case *callState:
				st = d
			case *storeBox: // a reusable instance's store (reuse.go)
				st = d.st
			}
			if st == nil {
				return nil, wasmtime.NewTrap("host function called outside a call")
			}
			if st.preinit && !duringInit {
				st.refused = name
				return nil, wasmtime.NewTrap(name + " is not available while pre-initialising")
			}
			if st.fast {
				// Run calls the guest without wasmtime-go's Func.Call,
				// which would re-raise a panic its trampoline caught:
				// keep it for Run to raise (fastcall.go).
				defer func() {
					if r := recover(); r != nil {
						st.hostPanic, st.hostPanicked = r, true
						res, trap = nil, wasmtime.NewTrap("host function panicked")
					}
				}()
			}
			return fn(st, c, args)
		})
		if err != nil {
			return nil, fmt.Errorf("defining %s.%s: %w", f.module, f.name, err)
		}
	}
	return l, nil
}

// availableDuringInit says whether _initialize may call f while the module is
// pre-initialised (preinit.go). Only WASI functions whose answers depend on
// nothing but time and chance, or that fail the same way in every call, are:
// clocks, random, sleeping, empty args and environment, and the file and
// socket functions that always fail. The rest would either reach outside
// the sandbox (env, db_query, http_fetch: initialisation never sees a
// secret or the database) or have an effect the snapshot would lose (input,
// output, log lines, stdout and stderr, proc_exit). A call to one of those
// ends the attempt, and the module runs _initialize on every call instead.
func availableDuringInit(f hostFn) bool {
	return f.module == wasiModule && f.name != "fd_write" && f.name != "proc_exit"
}

// Validate compiles wasm and checks it against docs/ABI.md: it exports memory
// and handler () -> i32 (and, optionally, _initialize () -> ()), and imports
// nothing but the aerodb and wasi_snapshot_preview1 functions, with their exact
// types. Every refusal wraps ErrInvalidModule and names what is wrong.
func (e *Engine) Validate(wasm []byte) error {
	m, err := e.compile(wasm)
	if err != nil {
		return err
	}
	defer m.Close()
	_, err = checkModule(m, false)
	return err
}

// compile turns bytes into a wasmtime module, explaining the common ways a
// blob is not a core module before handing the rest to wasmtime.
func (e *Engine) compile(wasm []byte) (*wasmtime.Module, error) {
	return compileWith(e.wt, wasm)
}

// wasmtimeCompiles counts every module wasmtime compiled in this process
// (tests read it).
var wasmtimeCompiles atomic.Uint64

func compileWith(wt *wasmtime.Engine, wasm []byte) (*wasmtime.Module, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:4], []byte("\x00asm")) {
		return nil, fmt.Errorf("%w: not a WebAssembly binary (no \\0asm header)", ErrInvalidModule)
	}
	if wasm[4] != 1 || wasm[5] != 0 || wasm[6] != 0 || wasm[7] != 0 {
		return nil, fmt.Errorf("%w: a WebAssembly component or unsupported binary version; a core module (version 1) is required", ErrInvalidModule)
	}
	wasmtimeCompiles.Add(1)
	m, err := wasmtime.NewModule(wt, wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: compiling: %s", ErrInvalidModule, causeOf(err.Error()))
	}
	return m, nil
}

// moduleInfo is what checkModule learns that Run needs.
type moduleInfo struct {
	hasInitialize bool
	minMemory     int64 // bytes the memory needs at instantiation

	// preinit: the module is a snapshot taken after _initialize, which took
	// initElapsed (see preinit.go). preinitErr: why a module that exports
	// _initialize is not one, when this engine tried.
	preinit     bool
	initElapsed time.Duration
	preinitErr  error

	// growGuard: memory.grow is guarded, and a refused one can be read
	// after the call (growguard.go).
	growGuard bool

	// resettable: a snapshot, or a module without _initialize that nothing
	// but memory and globals can change (compileResettable), that exports
	// every mutable global (named in globals), so an instance can be reset
	// and reused (reuse.go).
	resettable bool
	globals    []string
}

// checkModule applies the ABI's rules on exports and imports. It reports all
// the problems it finds, so one failed deploy shows everything to fix.
//
// Export names beginning with reservedPrefix mark modules the engine built
// itself (preinit.go). ours says m is one of those, or an artifact from the
// cache directory, which only ever holds modules built here: the marks are
// read. Otherwise m was compiled from a user's bytes, and such a name is
// refused, so a module cannot pass itself off as pre-initialised.
func checkModule(m *wasmtime.Module, ours bool) (moduleInfo, error) {
	var info moduleInfo
	var problems []string

	var haveMemory, haveHandler bool
	for _, ex := range m.Exports() {
		ty := ex.Type()
		if name := ex.Name(); strings.HasPrefix(name, reservedPrefix) {
			switch {
			case !ours:
				problems = append(problems, fmt.Sprintf("export %q: names beginning with %q are reserved", name, reservedPrefix))
			case strings.HasPrefix(name, preinitExport):
				ns, err := strconv.ParseInt(strings.TrimPrefix(name, preinitExport), 10, 64)
				if err != nil || ns < 0 {
					problems = append(problems, fmt.Sprintf("export %q: malformed", name))
					continue
				}
				info.preinit, info.initElapsed = true, time.Duration(ns)
			case name == growRefusedExport:
				info.growGuard = ty.GlobalType() != nil
			case name == resetExport:
				info.resettable = true
			case strings.HasPrefix(name, globalExportPrefix):
				if gt := ty.GlobalType(); gt != nil && gt.Mutable() {
					info.globals = append(info.globals, name)
				}
			}
			continue
		}
		switch ex.Name() {
		case "memory":
			mt := ty.MemoryType()
			if mt == nil {
				problems = append(problems, "export memory is not a memory")
				continue
			}
			haveMemory = true
			if mt.Is64() {
				problems = append(problems, "export memory is a 64-bit memory; pointers in the ABI are i32")
			}
			if mt.IsShared() {
				problems = append(problems, "export memory is shared; threads are not supported")
			}
			info.minMemory = int64(mt.Minimum()) * wasmPage
		case "handler":
			ft := ty.FuncType()
			if ft == nil {
				problems = append(problems, "export handler is not a function")
				continue
			}
			haveHandler = true
			want := sig(nil, i32)
			if got := signatureOf(ft); !got.equal(want) {
				problems = append(problems, fmt.Sprintf("export handler has type %s, want %s", got, want))
			}
		case "_initialize":
			ft := ty.FuncType()
			if ft == nil {
				problems = append(problems, "export _initialize is not a function")
				continue
			}
			want := sig(nil)
			if got := signatureOf(ft); !got.equal(want) {
				problems = append(problems, fmt.Sprintf("export _initialize has type %s, want %s", got, want))
				continue
			}
			info.hasInitialize = true
		}
	}
	if !haveMemory {
		problems = append(problems, "missing export memory (a memory)")
	}
	if !haveHandler {
		problems = append(problems, "missing export handler (a function () -> i32)")
	}

	for _, im := range m.Imports() {
		name := ""
		if n := im.Name(); n != nil {
			name = *n
		}
		full := im.Module() + "." + name
		sigs, known := hostSigs[im.Module()]
		if !known {
			problems = append(problems, fmt.Sprintf("import %s: module %q is not provided (only %s and %s)", full, im.Module(), abiModule, wasiModule))
			continue
		}
		want, ok := sigs[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("import %s: no such function in %s", full, im.Module()))
			continue
		}
		ft := im.Type().FuncType()
		if ft == nil {
			problems = append(problems, fmt.Sprintf("import %s: must be a function", full))
			continue
		}
		if got := signatureOf(ft); !got.equal(want) {
			problems = append(problems, fmt.Sprintf("import %s: has type %s, want %s", full, got, want))
		}
	}

	if len(problems) > 0 {
		const maxShown = 10
		if len(problems) > maxShown {
			problems = append(problems[:maxShown], fmt.Sprintf("and %d more", len(problems)-maxShown))
		}
		return info, fmt.Errorf("%w: %s", ErrInvalidModule, strings.Join(problems, "; "))
	}
	return info, nil
}

const wasmPage = 64 << 10

// causeOf shortens a wasmtime error message (anyhow's "context\n\nCaused
// by:\n    cause\n\nStack backtrace: ...") to its innermost cause, the part
// that tells a user what is wrong.
func causeOf(msg string) string {
	if i := strings.LastIndex(msg, "Caused by:"); i >= 0 {
		msg = msg[i+len("Caused by:"):]
	}
	if i := strings.Index(msg, "Stack backtrace:"); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.TrimSpace(msg)
	// Multi-line causes (wasmtime pretty-prints some values) read better on one line.
	return strings.Join(strings.Fields(msg), " ")
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// Store limits besides memory. One instance and one memory per store: the
// memory cap applies per memory, so a second one would double it. Tables are
// bounded so a module cannot reserve host memory through them.
const (
	maxTableElements = 100_000
	maxInstances     = 1
	maxTables        = 4
	maxMemories      = 1
)

// ErrOutputTooLarge is carried by Result.Err when the guest passed more than
// Limits.MaxOutput bytes to output.
var ErrOutputTooLarge = errors.New("output exceeds limit")

// TrapError is Result.Err for a guest that trapped.
type TrapError struct {
	Message string   // the cause, e.g. "wasm trap: call stack exhausted"
	Trace   []string // innermost wasm frames first, at most maxTraceFrames
}

func (e *TrapError) Error() string { return e.Message }

const maxTraceFrames = 32

// Run calls the module once: a fresh store and instance, _initialize if the
// module exports it (a pre-initialised module does not: its instance starts
// from the snapshot taken after _initialize at Load), then handler. It never
// panics; every failure, including a panic in a Host, becomes a Result with a
// status (see doc.go for the rules).
func (e *Engine) Run(ctx context.Context, m *Module, input []byte, lim Limits, host Host) (res Result) {
	start := time.Now()
	if ctx == nil {
		ctx = context.Background()
	}
	lim = lim.WithDefaults()
	if m != nil && m.js != nil {
		input = e.scriptInput(m.js, input)
	}
	if e.slots != nil {
		// A slot holds no more; the cap must be the one that bites, so
		// that running out of it is reported as memory_exceeded.
		lim.MemoryBytes = min(lim.MemoryBytes, e.cfg.MaxMemoryBytes)
	}
	st := &callState{input: input, lim: lim, host: host, start: start, parent: ctx, monoOrigin: monoBase, fast: fastOK}
	defer func() {
		if r := recover(); r != nil {
			res = Result{
				Status:      StatusError,
				Output:      st.output,
				Err:         fmt.Errorf("running module: panic: %v", r),
				Logs:        st.logs,
				LogsDropped: st.dropped,
			}
		}
		res.Duration = time.Since(start)
	}()
	defer st.release()

	if m == nil {
		return Result{Status: StatusError, Err: errors.New("running module: nil module")}
	}
	if m.info.preinit {
		// The guest resumes where _initialize left it: its clocks carry on
		// from the values it last saw, as if handler were called at once.
		st.monoOrigin = start
		st.monoOffset = initClockStart + m.info.initElapsed
		st.cpuOffset = m.info.initElapsed
	}
	if !e.enter() {
		return Result{Status: StatusError, Err: ErrClosed}
	}
	defer e.exit()
	st.deadline = start.Add(lim.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(st.deadline) {
		st.deadline = d
	}
	if ctx.Err() != nil {
		return interruptedResult(context.Cause(ctx), lim, start)
	}
	if m.info.minMemory > lim.MemoryBytes {
		return Result{
			Status: StatusMemoryExceeded,
			Err:    fmt.Errorf("module needs %d bytes of memory at start, over the %d byte limit", m.info.minMemory, lim.MemoryBytes),
		}
	}

	if err := e.enterRun(ctx, st.deadline); err != nil {
		return interruptedResult(err, lim, start)
	}
	st.running = e.running
	defer st.returnToken() // after the store is closed, below

	var w *warmInst
	reusable := e.reusable(m)
	if reusable {
		w = e.takeWarm(m, lim.Owner)
	}
	var (
		store *wasmtime.Store
		inst  *wasmtime.Instance
		box   *storeBox // the new store's data, when its instance may be reused
		rc    int32
		err   error
	)
	if w != nil {
		store, inst = w.store, w.inst
		w.box.st = st
		st.mem = w.mem
	} else {
		if !e.acquireSlotOf(m) && !(e.evictIdleOf(m) && e.acquireSlotOf(m)) {
			return Result{Status: StatusError, Err: ErrPoolExhausted}
		}
		if reusable {
			box = &storeBox{st: st}
			store = wasmtime.NewStoreWithData(e.wtOf(m), box)
		} else {
			store = wasmtime.NewStoreWithData(e.wtOf(m), st)
		}
	}
	store.Limiter(lim.MemoryBytes, maxTableElements, maxInstances, maxTables, maxMemories)
	intr := &st.intr
	e.armInterruptIn(intr, store, ctx, time.Until(st.deadline))
	// Released after the store is closed (defers run last first), and
	// even when finishing the instance panics: the watcher it registered
	// on the node's stop context would otherwise hold this call's state
	// until the node stops.
	defer intr.release()
	keep := false
	defer func() {
		if w != nil {
			e.finish(w, keep) // resets the instance for the next call, or ends it
		} else {
			store.Close() // first: after this the epoch callback cannot run, and the slot is free
			e.releaseSlotOf(m)
		}
	}()

	switch {
	case w != nil:
		st.countFaults = w.known != nil
		rc, err = callHandler(store, w.handler, st)
		w.clean = st.faultFree
	case box != nil && fastOK:
		var in instantiated
		if in, err = fastInstantiate(e.linkerOf(m), store, m.m, st); err == nil {
			inst, st.mem = in.inst, in.mem
			if w = e.adopt(m, store, box, inst, st.mem); w != nil { // nil: not reusable after all
				w.owner, w.served = lim.Owner, true
			}
			if in.handler == nil { // checkModule requires one
				err = errors.New("module has no handler export")
			} else {
				rc, err = callHandler(store, in.handler, st)
			}
		}
	case box != nil:
		inst, err = e.linkerOf(m).Instantiate(store, m.m)
		if err == nil {
			st.mem = exportedMemory(store, inst, "memory")
			if w = e.adopt(m, store, box, inst, st.mem); w != nil { // nil: not reusable after all
				w.owner, w.served = lim.Owner, true
			}
			rc, err = callHandler(store, exportedFunc(store, inst, "handler"), st)
		}
	default:
		inst, rc, err = e.callModule(store, st, m)
	}
	if st.hostPanicked {
		panic(st.hostPanic) // where wasmtime-go's Func.Call would have
	}
	st.flushStreams()

	res = Result{Output: st.output, Logs: st.logs, LogsDropped: st.dropped}
	if st.mem != nil {
		if fastOK {
			res.MemoryPeak = memorySize(store, st.mem)
		} else {
			res.MemoryPeak = int64(st.mem.DataSize(store))
		}
	}
	failed := err != nil || rc != 0
	var refusedPages uint32
	if failed && inst != nil && m.info.growGuard {
		refusedPages = growRefused(store, inst)
	}

	var trap *wasmtime.Trap
	fallbackInterrupt := intr.c == nil && errors.As(err, &trap) && trapCode(trap) == wasmtime.Interrupt
	switch {
	case intr.fired() || fallbackInterrupt || st.interrupted != nil:
		cause := context.DeadlineExceeded
		if st.interrupted != nil {
			cause = st.interrupted
		} else if intr.cancelled() && ctx.Err() != nil {
			cause = context.Cause(ctx)
		}
		ir := interruptedResult(cause, lim, start)
		res.Status, res.Err = ir.Status, ir.Err
	case st.exited && st.exitCode == 0:
		res.Status = StatusSuccess
	case refusedPages != 0:
		res.Status = StatusMemoryExceeded
		res.Err = fmt.Errorf("out of memory: growing linear memory by %d pages from %d bytes was refused, limit %d: %w",
			refusedPages, res.MemoryPeak, lim.MemoryBytes, failure(err, rc, st))
	case failed && (res.MemoryPeak+oomSlack(lim.MemoryBytes) > lim.MemoryBytes || st.sawOOMLine):
		res.Status = StatusMemoryExceeded
		res.Err = fmt.Errorf("out of memory: linear memory at %d bytes, limit %d: %w", res.MemoryPeak, lim.MemoryBytes, failure(err, rc, st))
	case failed:
		res.Status = StatusError
		res.Err = failure(err, rc, st)
	default:
		res.Status = StatusSuccess
	}
	// Only an instance whose handler returned, neither interrupted nor
	// exited, is reset and kept (reuse.go).
	keep = err == nil && !intr.fired() && st.interrupted == nil && !st.exited
	return res
}

// oomSlack is how close to its cap a failed call's memory must be for the
// failure to count as memory_exceeded. wasmtime refuses growth silently
// (memory.grow returns -1), so aerofn infers the cause: allocators grow in
// chunks (AssemblyScript doubles, a Go arena is 4 MiB, hand-written code any
// size), so a refused grow can leave up to a chunk unused. A sixteenth of
// the cap (at least a page) catches chunked growth while a call that fails
// far from its cap stays an ordinary error.
func oomSlack(limit int64) int64 {
	return max(wasmPage, limit/16)
}

// callModule instantiates m in store and runs it. rc is handler's result;
// inst is nil when instantiation failed.
func (e *Engine) callModule(store *wasmtime.Store, st *callState, m *Module) (inst *wasmtime.Instance, rc int32, err error) {
	if fastOK {
		in, err := fastInstantiate(e.linkerOf(m), store, m.m, st)
		if err != nil {
			return nil, 0, err
		}
		st.mem = in.mem
		if m.info.hasInitialize && in.init != nil {
			if _, err := fastCall(store, in.init, 0, st); err != nil {
				return in.inst, 0, err
			}
		}
		if in.handler == nil { // checkModule requires one
			return in.inst, 0, errors.New("module has no handler export")
		}
		rc, err = fastCall(store, in.handler, 1, st)
		return in.inst, rc, err
	}
	inst, err = e.linkerOf(m).Instantiate(store, m.m)
	if err != nil {
		return nil, 0, err
	}
	st.mem = exportedMemory(store, inst, "memory")
	if m.info.hasInitialize {
		if _, err := exportedFunc(store, inst, "_initialize").Call(store); err != nil {
			return inst, 0, err
		}
	}
	rc, err = callHandler(store, exportedFunc(store, inst, "handler"), st)
	return inst, rc, err
}

// callHandler calls the guest's handler and returns its result.
func callHandler(store *wasmtime.Store, handler *wasmtime.Func, st *callState) (int32, error) {
	if fastOK {
		return fastCall(store, handler, 1, st)
	}
	v, err := handler.Call(store)
	if err != nil {
		return 0, err
	}
	rc, _ := v.(int32)
	return rc, nil
}

// exportedFunc and exportedMemory look up an export the module is known to
// have (checkModule verified it) and free the Extern at once. wasmtime-go
// gives each Extern a finalizer; left to the GC, thousands of them pile up on
// the heap's special lists and make every SetFinalizer slower, a measurable
// part of a call.
func exportedFunc(store *wasmtime.Store, inst *wasmtime.Instance, name string) *wasmtime.Func {
	ext := inst.GetExport(store, name)
	defer ext.Close()
	return ext.Func()
}

// optionalFunc is the function exported as name, nil when there is none
// (or the export is not a function).
func optionalFunc(store *wasmtime.Store, inst *wasmtime.Instance, name string) *wasmtime.Func {
	ext := inst.GetExport(store, name)
	if ext == nil {
		return nil
	}
	defer ext.Close()
	return ext.Func()
}

func exportedMemory(store *wasmtime.Store, inst *wasmtime.Instance, name string) *wasmtime.Memory {
	ext := inst.GetExport(store, name)
	defer ext.Close()
	return ext.Memory()
}

// failure explains a failed call that was not interrupted.
func failure(err error, rc int32, st *callState) error {
	switch {
	case st.exited:
		return fmt.Errorf("exit status %d", st.exitCode)
	case st.outputTooLarge:
		return ErrOutputTooLarge
	case err != nil:
		return trapError(err)
	default:
		return fmt.Errorf("handler returned %d", rc)
	}
}

func interruptedResult(cause error, lim Limits, start time.Time) Result {
	if errors.Is(cause, ErrInterrupted) {
		return Result{Status: StatusInterrupted, Err: fmt.Errorf("call interrupted after %v: %w", time.Since(start).Round(time.Millisecond), cause)}
	}
	if errors.Is(cause, context.Canceled) {
		return Result{Status: StatusError, Err: fmt.Errorf("call cancelled after %v: %w", time.Since(start).Round(time.Millisecond), cause)}
	}
	return Result{Status: StatusTimeout, Err: fmt.Errorf("call interrupted after %v (limit %v): %w", time.Since(start).Round(time.Millisecond), lim.Timeout, context.DeadlineExceeded)}
}

func trapCode(t *wasmtime.Trap) wasmtime.TrapCode {
	if c := t.Code(); c != nil {
		return *c
	}
	return 255
}

// trapError turns wasmtime's message (a wasm backtrace, then "Caused by:"
// and the cause, then a native backtrace when RUST_BACKTRACE is set) into the
// cause plus the innermost frames.
//
// A stack overflow is answered from the trap code alone: its backtrace is the
// whole exhausted stack (16k frames at 512 KiB), and formatting that costs
// several milliseconds while saying nothing the message does not.
func trapError(err error) *TrapError {
	var trap *wasmtime.Trap
	if errors.As(err, &trap) && trapCode(trap) == wasmtime.StackOverflow {
		return &TrapError{Message: "wasm trap: call stack exhausted"}
	}
	msg := err.Error()
	te := &TrapError{Message: causeOf(msg)}
	_, rest, ok := strings.Cut(msg, "wasm backtrace:")
	if !ok {
		return te
	}
	for rest != "" {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "Caused by:") {
			break
		}
		if line == "" || strings.HasPrefix(line, "note:") {
			continue
		}
		if len(te.Trace) == maxTraceFrames {
			te.Trace = append(te.Trace, "...")
			break
		}
		te.Trace = append(te.Trace, line)
	}
	return te
}

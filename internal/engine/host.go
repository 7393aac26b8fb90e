package engine

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/aerodb/aerofn/internal/abi"
)

// callState is everything one call's host functions share. It is the store's
// data, so it is only touched from the goroutine running the call (wasmtime
// calls host functions on the thread that entered wasm).
type callState struct {
	input []byte
	lim   Limits
	host  Host
	start time.Time

	// parent is the caller's context; deadline is when the call must end
	// (start + timeout, or the parent's deadline if sooner). hctx is the
	// context handed to Host, built on first use because most calls never
	// reach the host.
	parent   context.Context
	deadline time.Time
	hctx     context.Context
	hcancel  context.CancelFunc

	// The guest's monotonic clock reads monoOffset + time since monoOrigin;
	// its CPU-time clocks read cpuOffset + time since start. For a
	// pre-initialised module the offsets continue the clocks from where
	// _initialize left them (preinit.go).
	monoOrigin            time.Time
	monoOffset, cpuOffset time.Duration

	// preinit marks the one run of _initialize that builds a snapshot; a
	// host function it may not call records its name in refused.
	preinit bool
	refused string

	mem *wasmtime.Memory
	// intr is the call's interrupter, kept here rather than allocated
	// (interrupt.go).
	intr interrupter
	// result is the slice a host function's i32 result is returned in.
	result [1]wasmtime.Val
	// fast: Run calls the guest through fastcall.go, so a host function's
	// panic is kept in hostPanic for Run to raise (wasmtime-go's Func.Call
	// would have).
	fast         bool
	hostPanic    any
	hostPanicked bool
	// memFn, when set, gives the guest's memory instead of mem: the run of
	// _initialize on the interpreter (initrun.go), which has no Caller.
	memFn func() []byte

	// running is the engine's run gate when this call holds one of its
	// tokens (pool.go); host functions that wait give it back meanwhile.
	running chan struct{}

	output []byte
	// outBuf is where the C output function (fastcall.go) puts output
	// that fits, made on the call's first run of the guest.
	outBuf []byte
	reply  []byte

	logs       []LogLine
	logBytes   int
	dropped    int
	stdout     []byte // partial line written to fd 1
	stderr     []byte // partial line written to fd 2
	sawOOMLine bool   // an error-level line said "out of memory"

	// Why the guest stopped, when a host function stopped it.
	exited         bool
	exitCode       int32
	outputTooLarge bool
	// countFaults: the guest runs on a reused instance whose reset may
	// skip the kernel's scan of its memory; faultFree is then set when the
	// thread running the guest took no page fault meanwhile (warmInst.clean).
	countFaults, faultFree bool
	interrupted            error // the call's context ended while the guest was in a host function
	tokenLost              bool  // retake gave up on a run token: the call holds none (pool.go)
}

func (st *callState) ctx() context.Context {
	if st.hctx == nil {
		st.hctx, st.hcancel = context.WithDeadline(st.parent, st.deadline)
	}
	return st.hctx
}

func (st *callState) release() {
	if st.hcancel != nil {
		st.hcancel()
	}
}

// checkInterrupt stops the guest when the call's time ran out (or the caller
// went away) while a host function was blocked, instead of letting it carry on
// until the next epoch tick.
func (st *callState) checkInterrupt() *wasmtime.Trap {
	if st.parent.Err() != nil {
		st.interrupted = context.Cause(st.parent)
	} else if !time.Now().Before(st.deadline) {
		st.interrupted = context.DeadlineExceeded
	} else {
		return nil
	}
	return wasmtime.NewTrap("interrupted: " + st.interrupted.Error())
}

// memory returns the guest's linear memory as a slice. It is only valid until
// the guest runs again (memory.grow may move it), so host functions fetch it
// afresh on each call and never keep it.
func (st *callState) memory(c *wasmtime.Caller) []byte {
	if st.memFn != nil {
		return st.memFn()
	}
	if st.mem == nil {
		// Instantiation (a start function) can call the host before Run has
		// looked the export up.
		ext := c.GetExport("memory")
		if ext == nil {
			return nil
		}
		st.mem = ext.Memory()
		if st.mem == nil {
			return nil
		}
	}
	if fastOK {
		return callerMemory(c, st.mem)
	}
	return st.mem.UnsafeData(c)
}

// span is the bounds check behind every pointer the guest passes: the i32s
// are read as unsigned, and a range outside memory is a guest bug that traps.
func span(mem []byte, ptr, n int32) ([]byte, bool) {
	p, l := uint64(uint32(ptr)), uint64(uint32(n))
	if p+l > uint64(len(mem)) {
		return nil, false
	}
	return mem[p : p+l : p+l], true
}

func (st *callState) guestBytes(c *wasmtime.Caller, fn string, ptr, n int32) ([]byte, *wasmtime.Trap) {
	b, ok := span(st.memory(c), ptr, n)
	if !ok {
		return nil, outOfBounds(fn, ptr, n)
	}
	return b, nil
}

func outOfBounds(fn string, ptr, n int32) *wasmtime.Trap {
	return wasmtime.NewTrap(fmt.Sprintf("%s: range [%d, +%d) is outside linear memory", fn, uint32(ptr), uint32(n)))
}

// addLog records one line under the per-call caps; lines over a cap are
// counted, not kept.
func (st *callState) addLog(level, msg string) {
	if level == "error" && !st.sawOOMLine && strings.Contains(strings.ToLower(msg), "out of memory") {
		st.sawOOMLine = true
	}
	if len(st.logs) >= st.lim.MaxLogLines || st.logBytes+len(msg) > st.lim.MaxLogBytes {
		st.dropped++
		return
	}
	if !utf8.ValidString(msg) {
		msg = strings.ToValidUTF8(msg, "\uFFFD")
	}
	st.logBytes += len(msg)
	st.logs = append(st.logs, LogLine{Time: time.Now(), Level: level, Message: msg})
}

// maxPartialLine bounds how much of an unterminated stdout/stderr line is held
// before it is logged anyway, so a guest cannot grow host memory by writing
// without newlines.
const maxPartialLine = 64 << 10

func (st *callState) logFull() bool {
	return len(st.logs) >= st.lim.MaxLogLines || st.logBytes >= st.lim.MaxLogBytes
}

// writeStream appends bytes written to fd 1 or 2 and logs each complete line.
func (st *callState) writeStream(buf *[]byte, level string, p []byte) {
	for len(p) > 0 {
		if st.logFull() {
			st.dropStream(buf, level, p)
			return
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxPartialLine - len(*buf)
			if len(p) < room {
				*buf = append(*buf, p...)
				return
			}
			*buf = append(*buf, p[:room]...)
			p = p[room:]
			st.flushStream(buf, level)
			continue
		}
		*buf = append(*buf, p[:i]...)
		p = p[i+1:]
		st.flushStream(buf, level)
	}
}

// dropStream counts the lines in p without building them, once the log is
// full and every further line is dropped anyway.
func (st *callState) dropStream(buf *[]byte, level string, p []byte) {
	if level == "error" && !st.sawOOMLine && bytes.Contains(p, []byte("out of memory")) {
		st.sawOOMLine = true
	}
	if i := bytes.LastIndexByte(p, '\n'); i >= 0 {
		st.dropped += bytes.Count(p[:i+1], []byte{'\n'})
		*buf = (*buf)[:0]
		p = p[i+1:]
	}
	*buf = append(*buf, p[:min(len(p), maxPartialLine-len(*buf))]...)
}

func (st *callState) flushStream(buf *[]byte, level string) {
	line := strings.TrimSuffix(string(*buf), "\r")
	*buf = (*buf)[:0]
	st.addLog(level, line)
}

// flushStreams logs what is left of unterminated lines when the call ends.
func (st *callState) flushStreams() {
	if len(st.stdout) > 0 {
		st.flushStream(&st.stdout, "info")
	}
	if len(st.stderr) > 0 {
		st.flushStream(&st.stderr, "error")
	}
}

func (st *callState) setReply(b []byte) ([]wasmtime.Val, *wasmtime.Trap) {
	if len(b) > math.MaxInt32 {
		return nil, wasmtime.NewTrap("reply exceeds 2 GiB")
	}
	st.reply = b
	return st.i32(int32(len(b))), nil
}

// i32 is a host function's one i32 result, in st's own slice: wasmtime-go's
// trampoline copies the results out before the guest runs again, so each
// host call may reuse it.
func (st *callState) i32(v int32) []wasmtime.Val {
	st.result[0] = wasmtime.ValI32(v)
	return st.result[:]
}

var logLevels = [...]string{"debug", "info", "warn", "error"}

// unavailable is the reply when the invoker supplied no Host (tests, tools):
// an ABI error reply rather than a trap, as a failed db_query never traps.
func unavailable(fn string) []byte {
	return abi.ErrorReply("unavailable", fn+" is not available")
}

// abiFns is the aerodb module, ABI version 1 (docs/ABI.md).
func abiFns() []hostFn {
	return []hostFn{
		{abiModule, "input_len", sig(nil, i32), func(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
			return st.i32(int32(len(st.input))), nil
		}},
		{abiModule, "input_read", sig(kinds(i32, i32), i32), func(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
			dst, trap := st.guestBytes(c, "input_read", a[0].I32(), a[1].I32())
			if trap != nil {
				return nil, trap
			}
			return st.i32(int32(copy(dst, st.input))), nil
		}},
		{abiModule, "output", sig(kinds(i32, i32), i32), func(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
			if int64(uint32(a[1].I32())) > int64(st.lim.MaxOutput) {
				st.outputTooLarge = true
				return nil, wasmtime.NewTrap("output exceeds limit")
			}
			src, trap := st.guestBytes(c, "output", a[0].I32(), a[1].I32())
			if trap != nil {
				return nil, trap
			}
			st.output = append(st.output[:0], src...)
			return st.i32(0), nil
		}},
		{abiModule, "log", sig(kinds(i32, i32, i32)), func(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
			msg, trap := st.guestBytes(c, "log", a[1].I32(), a[2].I32())
			if trap != nil {
				return nil, trap
			}
			level := "info"
			if l := a[0].I32(); l >= 0 && int(l) < len(logLevels) {
				level = logLevels[l]
			}
			if len(st.logs) >= st.lim.MaxLogLines || st.logBytes+len(msg) > st.lim.MaxLogBytes {
				// Skip the string copy for a line that will be dropped anyway,
				// but still notice an out-of-memory report.
				if level == "error" && bytes.Contains(bytes.ToLower(msg), []byte("out of memory")) {
					st.sawOOMLine = true
				}
				st.dropped++
				return nil, nil
			}
			st.addLog(level, string(msg))
			return nil, nil
		}},
		{abiModule, "env", sig(kinds(i32, i32), i32), func(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
			key, trap := st.guestBytes(c, "env", a[0].I32(), a[1].I32())
			if trap != nil {
				return nil, trap
			}
			if st.host == nil {
				return st.i32(-1), nil
			}
			// Like db_query: the lookup (a secrets reload can wait on the
			// database) runs under the call's deadline without the call's
			// run slot, and a call whose time ran out meanwhile stops here.
			name := string(key)
			var v string
			var ok bool
			st.blocking(func() { v, ok = st.host.Env(st.ctx(), name) })
			if trap := st.checkInterrupt(); trap != nil {
				return nil, trap
			}
			if !ok {
				return st.i32(-1), nil
			}
			return st.setReply([]byte(v))
		}},
		{abiModule, "db_query", sig(kinds(i32, i32), i32), func(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
			return st.hostRequest(c, "db_query", a, func(h Host, ctx context.Context, req []byte) []byte { return h.DBQuery(ctx, req) })
		}},
		{abiModule, "http_fetch", sig(kinds(i32, i32), i32), func(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
			return st.hostRequest(c, "http_fetch", a, func(h Host, ctx context.Context, req []byte) []byte { return h.HTTPFetch(ctx, req) })
		}},
		{abiModule, "reply_read", sig(kinds(i32, i32), i32), func(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
			dst, trap := st.guestBytes(c, "reply_read", a[0].I32(), a[1].I32())
			if trap != nil {
				return nil, trap
			}
			return st.i32(int32(copy(dst, st.reply))), nil
		}},
	}
}

// hostRequest runs db_query or http_fetch: the request is copied out of guest
// memory (the host may keep it), the host runs under the call's deadline, and
// if that deadline passed meanwhile the guest is stopped here.
func (st *callState) hostRequest(c *wasmtime.Caller, fn string, a []wasmtime.Val, do func(Host, context.Context, []byte) []byte) ([]wasmtime.Val, *wasmtime.Trap) {
	src, trap := st.guestBytes(c, fn, a[0].I32(), a[1].I32())
	if trap != nil {
		return nil, trap
	}
	if st.host == nil {
		return st.setReply(unavailable(fn))
	}
	req := bytes.Clone(src)
	var reply []byte
	st.blocking(func() { reply = do(st.host, st.ctx(), req) })
	if trap := st.checkInterrupt(); trap != nil {
		return nil, trap
	}
	return st.setReply(reply)
}

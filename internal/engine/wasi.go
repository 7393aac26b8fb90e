package engine

import (
	"crypto/rand"
	"encoding/binary"
	"math"
	"strconv"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// WASI preview1 errno values (wasi_snapshot_preview1 witx, enum errno).
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoInval   = 28
	errnoNotsup  = 58
)

// WASI preview1 clock ids.
const (
	clockRealtime         = 0
	clockMonotonic        = 1
	clockProcessCPUTimeID = 2
	clockThreadCPUTimeID  = 3
)

// monoBase anchors the monotonic clock guests see: it never goes back and
// says nothing about the host's uptime. Pre-initialised modules use their
// own origin (callState.monoOrigin).
var monoBase = time.Now()

func errno(n int32) ([]wasmtime.Val, *wasmtime.Trap) {
	if n >= 0 && int(n) < len(errnoResults) {
		return errnoResults[n], nil
	}
	return []wasmtime.Val{wasmtime.ValI32(n)}, nil
}

// errnoResults are the results of errno 0-76 (every WASI errno), built
// once: wasmtime-go's trampoline only reads them.
var errnoResults = func() [][]wasmtime.Val {
	r := make([][]wasmtime.Val, 77)
	for i := range r {
		r[i] = []wasmtime.Val{wasmtime.ValI32(int32(i))}
	}
	return r
}()

var le = binary.LittleEndian

// wasiFns defines all of wasi_snapshot_preview1 as docs/ABI.md says: clocks,
// random, stdout/stderr as log lines, proc_exit, empty args and environment,
// and nothing that reaches the host's files or network.
func wasiFns() []hostFn {
	fns := []hostFn{
		{wasiModule, "args_get", sig(kinds(i32, i32), i32), okNoop},
		{wasiModule, "args_sizes_get", sig(kinds(i32, i32), i32), zeroSizes},
		{wasiModule, "environ_get", sig(kinds(i32, i32), i32), okNoop},
		{wasiModule, "environ_sizes_get", sig(kinds(i32, i32), i32), zeroSizes},
		{wasiModule, "clock_res_get", sig(kinds(i32, i32), i32), clockResGet},
		{wasiModule, "clock_time_get", sig(kinds(i32, i64, i32), i32), clockTimeGet},
		{wasiModule, "fd_write", sig(kinds(i32, i32, i32, i32), i32), fdWrite},
		{wasiModule, "poll_oneoff", sig(kinds(i32, i32, i32, i32), i32), pollOneoff},
		{wasiModule, "proc_exit", sig(kinds(i32)), procExit},
		{wasiModule, "proc_raise", sig(kinds(i32), i32), constErrno(errnoNotsup)},
		{wasiModule, "sched_yield", sig(nil, i32), constErrno(errnoSuccess)},
		{wasiModule, "random_get", sig(kinds(i32, i32), i32), randomGet},
	}
	// Descriptor functions: there are no open files and no preopened
	// directories. fd 0-2 exist but support nothing beyond fd_write on 1 and 2
	// (ENOTSUP); any other fd is EBADF, which is also what ends wasi-libc's scan
	// of preopens at fd 3.
	for _, f := range []struct {
		name string
		s    signature
	}{
		{"fd_advise", sig(kinds(i32, i64, i64, i32), i32)},
		{"fd_allocate", sig(kinds(i32, i64, i64), i32)},
		{"fd_close", sig(kinds(i32), i32)},
		{"fd_datasync", sig(kinds(i32), i32)},
		{"fd_fdstat_get", sig(kinds(i32, i32), i32)},
		{"fd_fdstat_set_flags", sig(kinds(i32, i32), i32)},
		{"fd_fdstat_set_rights", sig(kinds(i32, i64, i64), i32)},
		{"fd_filestat_get", sig(kinds(i32, i32), i32)},
		{"fd_filestat_set_size", sig(kinds(i32, i64), i32)},
		{"fd_filestat_set_times", sig(kinds(i32, i64, i64, i32), i32)},
		{"fd_pread", sig(kinds(i32, i32, i32, i64, i32), i32)},
		{"fd_pwrite", sig(kinds(i32, i32, i32, i64, i32), i32)},
		{"fd_read", sig(kinds(i32, i32, i32, i32), i32)},
		{"fd_readdir", sig(kinds(i32, i32, i32, i64, i32), i32)},
		{"fd_renumber", sig(kinds(i32, i32), i32)},
		{"fd_seek", sig(kinds(i32, i64, i32, i32), i32)},
		{"fd_sync", sig(kinds(i32), i32)},
		{"fd_tell", sig(kinds(i32, i32), i32)},
		{"sock_accept", sig(kinds(i32, i32, i32), i32)},
		{"sock_recv", sig(kinds(i32, i32, i32, i32, i32, i32), i32)},
		{"sock_send", sig(kinds(i32, i32, i32, i32, i32), i32)},
		{"sock_shutdown", sig(kinds(i32, i32), i32)},
	} {
		fns = append(fns, hostFn{wasiModule, f.name, f.s, fdErrno})
	}
	// No preopens, so there is no directory for a path to be relative to.
	for _, f := range []struct {
		name string
		s    signature
	}{
		{"fd_prestat_get", sig(kinds(i32, i32), i32)},
		{"fd_prestat_dir_name", sig(kinds(i32, i32, i32), i32)},
		{"path_create_directory", sig(kinds(i32, i32, i32), i32)},
		{"path_filestat_get", sig(kinds(i32, i32, i32, i32, i32), i32)},
		{"path_filestat_set_times", sig(kinds(i32, i32, i32, i32, i64, i64, i32), i32)},
		{"path_link", sig(kinds(i32, i32, i32, i32, i32, i32, i32), i32)},
		{"path_open", sig(kinds(i32, i32, i32, i32, i32, i64, i64, i32, i32), i32)},
		{"path_readlink", sig(kinds(i32, i32, i32, i32, i32, i32), i32)},
		{"path_remove_directory", sig(kinds(i32, i32, i32), i32)},
		{"path_rename", sig(kinds(i32, i32, i32, i32, i32, i32), i32)},
		{"path_symlink", sig(kinds(i32, i32, i32, i32, i32), i32)},
		{"path_unlink_file", sig(kinds(i32, i32, i32), i32)},
	} {
		fns = append(fns, hostFn{wasiModule, f.name, f.s, constErrno(errnoBadf)})
	}
	return fns
}

func okNoop(*callState, *wasmtime.Caller, []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	return errno(errnoSuccess)
}

func constErrno(n int32) func(*callState, *wasmtime.Caller, []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	return func(*callState, *wasmtime.Caller, []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
		return errno(n)
	}
}

func fdErrno(_ *callState, _ *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	if fd := a[0].I32(); fd >= 0 && fd <= 2 {
		return errno(errnoNotsup)
	}
	return errno(errnoBadf)
}

// zeroSizes answers args_sizes_get and environ_sizes_get: no arguments, no
// variables (the environment a function sees comes through aerodb.env).
func zeroSizes(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	mem := st.memory(c)
	n, ok1 := span(mem, a[0].I32(), 4)
	size, ok2 := span(mem, a[1].I32(), 4)
	if !ok1 || !ok2 {
		return nil, wasmtime.NewTrap("wasi sizes_get: pointer outside linear memory")
	}
	le.PutUint32(n, 0)
	le.PutUint32(size, 0)
	return errno(errnoSuccess)
}

func clockNow(st *callState, id int32) (uint64, bool) {
	switch id {
	case clockRealtime:
		return uint64(time.Now().UnixNano()), true
	case clockMonotonic:
		return uint64(st.monoOffset + time.Since(st.monoOrigin)), true
	case clockProcessCPUTimeID, clockThreadCPUTimeID:
		// A fresh instance per call: the call's elapsed time is the closest
		// honest answer, and it reveals nothing about other tenants.
		return uint64(st.cpuOffset + time.Since(st.start)), true
	}
	return 0, false
}

func clockResGet(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	if _, ok := clockNow(st, a[0].I32()); !ok {
		return errno(errnoInval)
	}
	out, ok := span(st.memory(c), a[1].I32(), 8)
	if !ok {
		return nil, outOfBounds("clock_res_get", a[1].I32(), 8)
	}
	le.PutUint64(out, 1)
	return errno(errnoSuccess)
}

func clockTimeGet(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	now, ok := clockNow(st, a[0].I32())
	if !ok {
		return errno(errnoInval)
	}
	out, ok := span(st.memory(c), a[2].I32(), 8)
	if !ok {
		return nil, outOfBounds("clock_time_get", a[2].I32(), 8)
	}
	le.PutUint64(out, now)
	return errno(errnoSuccess)
}

func randomGet(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	buf, trap := st.guestBytes(c, "random_get", a[0].I32(), a[1].I32())
	if trap != nil {
		return nil, trap
	}
	_, _ = rand.Read(buf) // crypto/rand.Read never fails (it crashes the program instead)
	return errno(errnoSuccess)
}

// fdWrite sends stdout and stderr to the call's log, one line per line.
// Writes past the log cap are reported as written, so the guest does not
// retry forever; they are counted as dropped lines.
func fdWrite(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	fd, iovs, iovsLen, nwrittenPtr := a[0].I32(), a[1].I32(), a[2].I32(), a[3].I32()
	mem := st.memory(c)
	var buf *[]byte
	var level string
	switch fd {
	case 1:
		buf, level = &st.stdout, "info"
	case 2:
		buf, level = &st.stderr, "error"
	case 0:
		return errno(errnoNotsup)
	default:
		return errno(errnoBadf)
	}
	if uint32(iovsLen) > math.MaxInt32/8 {
		return nil, outOfBounds("fd_write", iovs, iovsLen)
	}
	vec, ok := span(mem, iovs, iovsLen*8)
	if !ok {
		return nil, outOfBounds("fd_write", iovs, iovsLen*8)
	}
	out, ok := span(mem, nwrittenPtr, 4)
	if !ok {
		return nil, outOfBounds("fd_write", nwrittenPtr, 4)
	}
	var total uint32
	for i := 0; i < len(vec); i += 8 {
		p, n := int32(le.Uint32(vec[i:])), int32(le.Uint32(vec[i+4:]))
		data, ok := span(mem, p, n)
		if !ok {
			return nil, outOfBounds("fd_write", p, n)
		}
		st.writeStream(buf, level, data)
		total += uint32(n)
		// Host code is not interrupted by the epoch, and iovecs may name the
		// same large buffer many times over; keep each write within the
		// call's time.
		if trap := st.checkInterrupt(); trap != nil {
			return nil, trap
		}
	}
	le.PutUint32(out, total)
	return errno(errnoSuccess)
}

// procExit ends the call. wasmtime has no way for a host function defined
// here to raise WASI's own exit error, so it traps and Run reads the code
// from the call state.
func procExit(st *callState, _ *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	st.exited = true
	st.exitCode = a[0].I32()
	return nil, wasmtime.NewTrap("proc_exit(" + strconv.Itoa(int(st.exitCode)) + ")")
}

// Layout of poll_oneoff's subscription (48 bytes) and event (32 bytes).
const (
	subscriptionSize = 48
	eventSize        = 32
	eventtypeClock   = 0
	subclockAbstime  = 1
)

// pollOneoff supports what guest runtimes use it for, sleeping: clock
// subscriptions wait, never past the call's deadline. fd subscriptions get an
// ENOTSUP event at once (there is nothing to wait on).
func pollOneoff(st *callState, c *wasmtime.Caller, a []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	in, out, nsubs, neventsPtr := a[0].I32(), a[1].I32(), a[2].I32(), a[3].I32()
	if nsubs == 0 {
		return errno(errnoInval)
	}
	if uint32(nsubs) > math.MaxInt32/subscriptionSize {
		return nil, outOfBounds("poll_oneoff", in, nsubs)
	}
	mem := st.memory(c)
	subs, ok := span(mem, in, nsubs*subscriptionSize)
	if !ok {
		return nil, outOfBounds("poll_oneoff", in, nsubs*subscriptionSize)
	}
	if _, ok := span(mem, out, nsubs*eventSize); !ok {
		return nil, outOfBounds("poll_oneoff", out, nsubs*eventSize)
	}
	if _, ok := span(mem, neventsPtr, 4); !ok {
		return nil, outOfBounds("poll_oneoff", neventsPtr, 4)
	}

	type event struct {
		userdata uint64
		errno    uint16
		typ      uint8
	}
	var ready []event
	now := time.Now()
	wake := time.Time{}
	type clockSub struct {
		userdata uint64
		at       time.Time
	}
	var clocks []clockSub
	for i := 0; i < int(nsubs); i++ {
		s := subs[i*subscriptionSize:]
		userdata, tag := le.Uint64(s[0:]), s[8]
		if tag != eventtypeClock {
			ready = append(ready, event{userdata, errnoNotsup, tag})
			continue
		}
		id, timeout, flags := int32(le.Uint32(s[16:])), le.Uint64(s[24:]), le.Uint16(s[40:])
		var at time.Time
		if flags&subclockAbstime != 0 {
			cur, ok := clockNow(st, id)
			if !ok {
				ready = append(ready, event{userdata, errnoInval, tag})
				continue
			}
			if timeout > cur {
				at = now.Add(time.Duration(min(timeout-cur, math.MaxInt64)))
			} else {
				at = now
			}
		} else {
			if _, ok := clockNow(st, id); !ok {
				ready = append(ready, event{userdata, errnoInval, tag})
				continue
			}
			at = now.Add(time.Duration(min(timeout, math.MaxInt64)))
		}
		clocks = append(clocks, clockSub{userdata, at})
		if wake.IsZero() || at.Before(wake) {
			wake = at
		}
	}

	if len(ready) == 0 && len(clocks) > 0 {
		// Sleep until the earliest clock, bounded by the call's deadline and
		// by the caller's context.
		if d := time.Until(wake); d > 0 {
			ctx := st.ctx()
			t := time.NewTimer(d)
			st.blocking(func() {
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
			})
		}
		if trap := st.checkInterrupt(); trap != nil {
			return nil, trap
		}
		now = time.Now()
		for _, cs := range clocks {
			if !cs.at.After(now) {
				ready = append(ready, event{cs.userdata, errnoSuccess, eventtypeClock})
			}
		}
	}

	// Guest memory may not have moved (no wasm ran), but fetch it again rather
	// than rely on that.
	mem = st.memory(c)
	evs, _ := span(mem, out, int32(len(ready))*eventSize)
	clear(evs)
	for i, ev := range ready {
		e := evs[i*eventSize:]
		le.PutUint64(e[0:], ev.userdata)
		le.PutUint16(e[8:], ev.errno)
		e[10] = ev.typ
	}
	nev, _ := span(mem, neventsPtr, 4)
	le.PutUint32(nev, uint32(len(ready)))
	return errno(errnoSuccess)
}

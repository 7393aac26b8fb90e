package engine

/*
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

// Declared here rather than included: wasmtime-go does not export its
// include path, and these are the only wasmtime C API symbols this package
// calls directly (the library itself is linked by wasmtime-go).
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_error wasmtime_error_t;
extern void wasmtime_store_epoch_deadline_callback(wasmtime_store_t *store,
	wasmtime_error_t *(*func)(wasmtime_context_t *context, void *data,
		uint64_t *epoch_deadline_delta, uint8_t *update_kind),
	void *data, void (*finalizer)(void *));
extern wasmtime_error_t *wasmtime_error_new(const char *);
extern wasmtime_context_t *wasmtime_store_context(wasmtime_store_t *);
extern void wasmtime_context_set_epoch_deadline(wasmtime_context_t *, uint64_t);

typedef struct {
	int32_t cancel;      // set (atomically) by Go when the caller's context ends
	int32_t fired;       // set by the callback: 1 deadline passed, 2 cancelled
	int64_t deadline_ns; // CLOCK_MONOTONIC
} aerofn_interrupt;

static int64_t aerofn_now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// Runs on the thread executing wasm, once per epoch tick while the store is in
// wasm: stop the guest if its time is up or its caller went away, else check
// again at the next tick. It never calls into Go, so a tick costs a few ns.
static wasmtime_error_t *aerofn_epoch_cb(wasmtime_context_t *ctx, void *data,
		uint64_t *delta, uint8_t *kind) {
	aerofn_interrupt *in = data;
	if (__atomic_load_n(&in->cancel, __ATOMIC_ACQUIRE)) {
		in->fired = 2;
		return wasmtime_error_new("interrupted: context done");
	}
	if (aerofn_now_ns() >= in->deadline_ns) {
		in->fired = 1;
		return wasmtime_error_new("interrupted: deadline exceeded");
	}
	*delta = 1;
	*kind = 0; // WASMTIME_UPDATE_DEADLINE_CONTINUE
	return NULL;
}

// The struct is owned by Go (freed by aerofn_interrupt_free after the store is
// deleted and the context watcher has finished), so no finalizer is passed.
static aerofn_interrupt *aerofn_interrupt_install(void *store, int64_t timeout_ns) {
	aerofn_interrupt *in = calloc(1, sizeof *in);
	if (in == NULL) return NULL;
	in->deadline_ns = aerofn_now_ns() + timeout_ns;
	wasmtime_store_epoch_deadline_callback((wasmtime_store_t *)store, aerofn_epoch_cb, in, NULL);
	// One tick ahead: the callback re-arms itself (store.SetEpochDeadline(1),
	// without two more crossings from Go).
	wasmtime_context_set_epoch_deadline(wasmtime_store_context((wasmtime_store_t *)store), 1);
	return in;
}

static void aerofn_interrupt_free(aerofn_interrupt *in) { free(in); }
*/
import "C"

import (
	"context"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// How a call is stopped from outside.
//
// wasmtime only lets the thread running a store touch it: Store methods such
// as SetEpochDeadline are not safe from another goroutine. The only
// thread-safe lever is Engine.IncrementEpoch, which the engine's ticker pulls.
// So each store gets an epoch deadline one tick ahead and an epoch-deadline
// callback (a C function, wasmtime_store_epoch_deadline_callback, which
// wasmtime-go does not wrap). At every tick the callback, running on the
// store's own thread, compares the monotonic clock with the call's deadline
// and reads a cancel flag that a context.AfterFunc sets atomically from any
// goroutine; either one ends the call, otherwise it re-arms for the next tick.
// Deadlines and cancellation both bite within one EpochTick, and nothing but
// an atomic int crosses threads.
//
// Installing the callback needs the store's C pointer, an unexported field of
// wasmtime.Store; interruptSupported checks that field exists as expected. If
// a wasmtime-go upgrade moves it, calls fall back to a plain epoch deadline:
// timeouts still hold, but a cancelled context is only noticed when the guest
// next calls the host (TestInterruptCallbackInstalled fails to flag this).

var storePtrField, interruptSupported = func() ([]int, bool) {
	f, ok := reflect.TypeOf(wasmtime.Store{}).FieldByName("_ptr")
	return f.Index, ok && f.Type.Kind() == reflect.Pointer
}()

type interrupter struct {
	c    *C.aerofn_interrupt // nil when the fallback is in use
	stop func() bool         // stops the context watcher
	// mu orders the watcher's write of the cancel flag before release
	// frees it: the watcher writes under mu only while c is set, and
	// release clears c under mu.
	mu sync.Mutex
}

// armInterrupt makes store stop at most `timeout` from now, or when parent
// ends. It must be called before the store enters wasm.
func (e *Engine) armInterrupt(store *wasmtime.Store, parent context.Context, timeout time.Duration) *interrupter {
	in := &interrupter{}
	e.armInterruptIn(in, store, parent, timeout)
	return in
}

// armInterruptIn is armInterrupt into an interrupter the caller holds (a
// call's callState, one allocation less per call).
func (e *Engine) armInterruptIn(in *interrupter, store *wasmtime.Store, parent context.Context, timeout time.Duration) {
	if interruptSupported {
		in.c = C.aerofn_interrupt_install(cStore(store), C.int64_t(timeout))
		runtime.KeepAlive(store)
	}
	if in.c == nil {
		ticks := uint64(timeout/e.cfg.EpochTick) + 2 // never early: the next tick may come at once
		store.SetEpochDeadline(ticks)
		return
	}
	if parent.Done() != nil {
		in.stop = context.AfterFunc(parent, in.cancel)
	}
}

// cancel is the watcher of the caller's context: it tells the callback to
// stop the guest at its next tick.
func (in *interrupter) cancel() {
	in.mu.Lock()
	if in.c != nil {
		atomic.StoreInt32((*int32)(unsafe.Pointer(&in.c.cancel)), 1)
	}
	in.mu.Unlock()
}

// fired reports whether the callback stopped the guest.
func (in *interrupter) fired() bool {
	return in.c != nil && in.c.fired != 0
}

// cancelled reports whether it stopped the guest because the caller's
// context ended (rather than because the deadline passed).
func (in *interrupter) cancelled() bool {
	return in.c != nil && in.c.fired == 2
}

// release frees the shared flag. Call it after store.Close (or once the
// store is out of wasm for good), so the callback can no longer run; a
// watcher that started already writes the flag before release frees it, or
// finds it gone.
func (in *interrupter) release() {
	if in.stop != nil {
		in.stop()
		in.stop = nil
	}
	if in.c != nil {
		in.mu.Lock()
		c := in.c
		in.c = nil
		in.mu.Unlock()
		C.aerofn_interrupt_free(c)
	}
}

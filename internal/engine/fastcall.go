package engine

/*
#define _GNU_SOURCE // RUSAGE_THREAD
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

// Declared here rather than included, as in interrupt.go and pool.go; the
// layouts are wasmtime's (extern.h, instance.h, val.h of wasmtime v39) and
// fastInit checks them against wasmtime-go's Go types.
struct wasmtime_store;
struct wasmtime_context;
struct wasmtime_caller;
struct wasmtime_linker;
struct wasmtime_module;
struct wasmtime_error;
struct wasm_trap;
struct wasm_functype;

typedef struct { uint64_t store_id; void *private_; } aerofn_func;
// As in extern.h, the first two fields are a struct of their own: 24 bytes.
typedef struct { struct { uint64_t store_id; uint32_t private1; } a; uint32_t private2; } aerofn_memory;
typedef struct { uint64_t store_id; size_t private_; } aerofn_instance;
typedef struct { uint8_t kind; union { aerofn_func func; aerofn_memory memory; } of; } aerofn_extern;
typedef union { int32_t i32; int64_t i64; uint8_t v128[16]; } aerofn_val_raw;

extern struct wasmtime_context *wasmtime_store_context(struct wasmtime_store *);
extern struct wasmtime_context *wasmtime_caller_context(struct wasmtime_caller *);
extern struct wasmtime_error *wasmtime_linker_instantiate(const struct wasmtime_linker *, struct wasmtime_context *,
	const struct wasmtime_module *, aerofn_instance *, struct wasm_trap **);
extern bool wasmtime_instance_export_get(struct wasmtime_context *, const aerofn_instance *, const char *, size_t, aerofn_extern *);
extern void wasmtime_extern_delete(aerofn_extern *);
extern struct wasmtime_error *wasmtime_func_call_unchecked(struct wasmtime_context *, const aerofn_func *,
	aerofn_val_raw *, size_t, struct wasm_trap **);
extern uint8_t *wasmtime_memory_data(const struct wasmtime_context *, const aerofn_memory *);
extern size_t wasmtime_memory_data_size(const struct wasmtime_context *, const aerofn_memory *);
extern bool wasmtime_caller_export_get(struct wasmtime_caller *, const char *, size_t, aerofn_extern *);
extern struct wasm_trap *wasmtime_trap_new(const char *, size_t);
typedef struct wasm_trap *(*aerofn_unchecked_cb)(void *, struct wasmtime_caller *, aerofn_val_raw *, size_t);
extern struct wasmtime_error *wasmtime_linker_define_func_unchecked(struct wasmtime_linker *, const char *, size_t,
	const char *, size_t, const struct wasm_functype *, aerofn_unchecked_cb, void *, void (*)(void *));

enum { AEROFN_EXTERN_FUNC = 0, AEROFN_EXTERN_MEMORY = 3 };

// The ABI's input_len, input_read and output in C (fastcall.go): what they
// need of the call is set by aerofn_instantiate and aerofn_call, for as long
// as the guest runs on this thread, in aerofn_cur_io. The output lands in
// the caller's buffer when it fits, else in a malloc'd one (heap), which
// the Go side copies and frees.
typedef struct {
	size_t len;
	uint8_t *heap;
	int32_t set, too_large;
	// count_faults: aerofn_call sets faults to the page faults its thread
	// took while the guest ran (AEROFN_FAULTS_UNKNOWN when it cannot tell);
	// see warmInst.clean.
	int32_t count_faults;
	uint64_t faults;
} aerofn_io_out;

#define AEROFN_FAULTS_UNKNOWN UINT64_MAX

// The page faults, minor and major, this thread has taken.
static uint64_t aerofn_thread_faults(void) {
	struct rusage r;
	if (getrusage(RUSAGE_THREAD, &r) != 0) return AEROFN_FAULTS_UNKNOWN;
	return (uint64_t)r.ru_minflt + (uint64_t)r.ru_majflt;
}

typedef struct {
	const uint8_t *input;
	size_t input_len;
	uint8_t *buf;
	size_t buf_cap;
	uint64_t max_output;
	aerofn_io_out *out;
} aerofn_io;

static __thread aerofn_io *aerofn_cur_io;

static struct wasm_trap *aerofn_io_trap(const char *msg) {
	return wasmtime_trap_new(msg, strlen(msg));
}

// aerofn_io_span finds [ptr, ptr+n) in the caller's memory; NULL with *ok
// 0 when it is outside (as span in host.go: no memory is an empty one).
static uint8_t *aerofn_io_span(struct wasmtime_caller *caller, uint32_t ptr, uint32_t n, int *ok) {
	aerofn_extern ex;
	uint8_t *data = NULL;
	size_t size = 0;
	if (wasmtime_caller_export_get(caller, "memory", 6, &ex)) {
		if (ex.kind == AEROFN_EXTERN_MEMORY) {
			struct wasmtime_context *ctx = wasmtime_caller_context(caller);
			data = wasmtime_memory_data(ctx, &ex.of.memory);
			size = wasmtime_memory_data_size(ctx, &ex.of.memory);
		}
		wasmtime_extern_delete(&ex);
	}
	*ok = (uint64_t)ptr + (uint64_t)n <= (uint64_t)size;
	return *ok && data != NULL ? data + ptr : NULL;
}

static struct wasm_trap *aerofn_io_oob(const char *fn, uint32_t ptr, uint32_t n) {
	char msg[96];
	int k = snprintf(msg, sizeof msg, "%s: range [%u, +%u) is outside linear memory", fn, ptr, n);
	return wasmtime_trap_new(msg, k > 0 && (size_t)k < sizeof msg ? (size_t)k : strlen(msg));
}

static struct wasm_trap *aerofn_io_input_len(void *env, struct wasmtime_caller *caller, aerofn_val_raw *args, size_t nargs) {
	aerofn_io *io = aerofn_cur_io;
	if (io == NULL) return aerofn_io_trap("host function called outside a call");
	args[0].i32 = (int32_t)io->input_len;
	return NULL;
}

static struct wasm_trap *aerofn_io_input_read(void *env, struct wasmtime_caller *caller, aerofn_val_raw *args, size_t nargs) {
	aerofn_io *io = aerofn_cur_io;
	if (io == NULL) return aerofn_io_trap("host function called outside a call");
	uint32_t ptr = (uint32_t)args[0].i32, n = (uint32_t)args[1].i32;
	int ok;
	uint8_t *dst = aerofn_io_span(caller, ptr, n, &ok);
	if (!ok) return aerofn_io_oob("input_read", ptr, n);
	size_t k = n < io->input_len ? n : io->input_len;
	if (k > 0) memcpy(dst, io->input, k);
	args[0].i32 = (int32_t)k;
	return NULL;
}

static struct wasm_trap *aerofn_io_output(void *env, struct wasmtime_caller *caller, aerofn_val_raw *args, size_t nargs) {
	aerofn_io *io = aerofn_cur_io;
	if (io == NULL) return aerofn_io_trap("host function called outside a call");
	uint32_t ptr = (uint32_t)args[0].i32, n = (uint32_t)args[1].i32;
	if ((uint64_t)n > io->max_output) {
		io->out->too_large = 1;
		return aerofn_io_trap("output exceeds limit");
	}
	int ok;
	uint8_t *src = aerofn_io_span(caller, ptr, n, &ok);
	if (!ok) return aerofn_io_oob("output", ptr, n);
	uint8_t *heap = NULL;
	if (n > io->buf_cap) {
		heap = malloc(n);
		if (heap == NULL) return aerofn_io_trap("output: out of host memory");
		memcpy(heap, src, n);
	} else if (n > 0) {
		memcpy(io->buf, src, n);
	}
	free(io->out->heap);
	io->out->heap = heap;
	io->out->len = n;
	io->out->set = 1;
	args[0].i32 = 0;
	return NULL;
}

enum { AEROFN_IO_INPUT_LEN = 0, AEROFN_IO_INPUT_READ = 1, AEROFN_IO_OUTPUT = 2 };

static struct wasmtime_error *aerofn_define_io(void *linker, const char *module, size_t module_len,
		const char *name, size_t name_len, const struct wasm_functype *ty, int which) {
	aerofn_unchecked_cb cb = which == AEROFN_IO_INPUT_LEN ? aerofn_io_input_len :
		which == AEROFN_IO_INPUT_READ ? aerofn_io_input_read : aerofn_io_output;
	return wasmtime_linker_define_func_unchecked(linker, module, module_len, name, name_len, ty, cb, NULL, NULL);
}


// What aerofn_instantiate found among the instance's exports.
typedef struct {
	aerofn_instance inst;
	aerofn_memory memory;
	aerofn_func handler, init;
	int32_t has_memory, has_handler, has_init;
} aerofn_instantiated;

static void aerofn_export(struct wasmtime_context *ctx, const aerofn_instance *inst, const char *name, size_t len,
		uint8_t kind, void *out, size_t size, int32_t *found) {
	aerofn_extern ex;
	if (!wasmtime_instance_export_get(ctx, inst, name, len, &ex)) return;
	if (ex.kind == kind) {
		__builtin_memcpy(out, &ex.of, size);
		*found = 1;
	}
	wasmtime_extern_delete(&ex);
}

// Instantiates module in store through linker and looks up the exports a
// call needs, in one crossing from Go.
static struct wasmtime_error *aerofn_instantiate(void *linker, void *store, void *module,
		aerofn_instantiated *out, struct wasm_trap **trap,
		const uint8_t *input, size_t input_len, uint8_t *buf, size_t buf_cap, uint64_t max_output, aerofn_io_out *io_out) {
	struct wasmtime_context *ctx = wasmtime_store_context(store);
	aerofn_io io = {input, input_len, buf, buf_cap, max_output, io_out};
	aerofn_io *prev = aerofn_cur_io;
	aerofn_cur_io = io_out != NULL ? &io : NULL;
	struct wasmtime_error *err = wasmtime_linker_instantiate(linker, ctx, module, &out->inst, trap);
	aerofn_cur_io = prev;
	if (err != NULL || *trap != NULL) return err;
	aerofn_export(ctx, &out->inst, "memory", 6, AEROFN_EXTERN_MEMORY, &out->memory, sizeof out->memory, &out->has_memory);
	aerofn_export(ctx, &out->inst, "handler", 7, AEROFN_EXTERN_FUNC, &out->handler, sizeof out->handler, &out->has_handler);
	aerofn_export(ctx, &out->inst, "_initialize", 11, AEROFN_EXTERN_FUNC, &out->init, sizeof out->init, &out->has_init);
	return NULL;
}

// Calls f, whose type checkModule verified: () -> i32 when results is 1,
// () -> () when 0.
static struct wasmtime_error *aerofn_call(void *store, const aerofn_func *f, size_t results, int32_t *rc,
		struct wasm_trap **trap,
		const uint8_t *input, size_t input_len, uint8_t *buf, size_t buf_cap, uint64_t max_output, aerofn_io_out *io_out) {
	aerofn_val_raw v[1];
	v[0].i64 = 0;
	aerofn_io io = {input, input_len, buf, buf_cap, max_output, io_out};
	aerofn_io *prev = aerofn_cur_io;
	aerofn_cur_io = io_out != NULL ? &io : NULL;
	uint64_t before = io_out != NULL && io_out->count_faults ? aerofn_thread_faults() : AEROFN_FAULTS_UNKNOWN;
	struct wasmtime_error *err = wasmtime_func_call_unchecked(wasmtime_store_context(store), f, v, results, trap);
	if (io_out != NULL && io_out->count_faults) {
		uint64_t after = aerofn_thread_faults();
		io_out->faults = before == AEROFN_FAULTS_UNKNOWN || after == AEROFN_FAULTS_UNKNOWN || after < before ?
			AEROFN_FAULTS_UNKNOWN : after - before;
	}
	aerofn_cur_io = prev;
	if (err == NULL && *trap == NULL && results == 1) *rc = v[0].i32;
	return err;
}

static uint8_t *aerofn_caller_memory(void *caller, const aerofn_memory *m, size_t *len) {
	struct wasmtime_context *ctx = wasmtime_caller_context(caller);
	*len = wasmtime_memory_data_size(ctx, m);
	return wasmtime_memory_data(ctx, m);
}

static size_t aerofn_memory_size(void *store, const aerofn_memory *m) {
	return wasmtime_memory_data_size(wasmtime_store_context(store), m);
}
*/
import "C"

import (
	"reflect"
	"runtime"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// Fewer crossings into C per call.
//
// Every wasmtime-go method is at least one cgo call (entersyscall,
// exitsyscall and the checks around them), and several are many: Func.Call
// asks for the function's type (three calls, a FuncType with a finalizer that
// later makes a fourth), looks the store's data up under a process-wide lock
// and only then calls; Instance.GetExport allocates an Extern with a
// finalizer; a host function's Memory.UnsafeData is four calls. The echo made
// 66 cgo calls per invocation. The fast path below instantiates and finds
// the exports in one call (aerofn_instantiate), calls the guest's handler or
// _initialize in one (wasmtime_func_call_unchecked: checkModule has verified
// their types), and gives a host function its memory in one. Values it
// returns are built into wasmtime-go's own types (Func, Memory, Instance are
// plain copies of wasmtime's C structs; a Trap or Error takes ownership of
// the C pointer as wasmtime-go's would), so the rest of the engine is
// unchanged.
//
// wasmtime-go's Func.Call also re-raises, after the call, a panic of a Go
// host function that its trampoline caught; without it, newLinker's wrapper
// keeps such a panic in callState.hostPanic (when callState.fast is set) and
// Run raises it at the same point.
//
// A Go host function costs more than its work: wasmtime-go's trampoline
// makes about 8 crossings (the store's data twice, each argument and
// result) and 3 allocations, and the thread that runs the guest has to get
// a P back from Go's scheduler for the callback, which under load can wait
// behind every runnable goroutine when sysmon took its P during the call.
// The three the ABI makes in nearly every call, input_len, input_read and
// output, are therefore C functions (aerofn_io_*, defined with
// wasmtime_linker_define_func_unchecked): what they need of the call is on
// the C stack of the aerofn_call or aerofn_instantiate running the guest,
// found through a thread-local pointer, and output copies into the call's
// Go buffer (outBuf, pinned for the cgo call) or, when larger, into C
// memory that Go copies and frees afterwards. A call that uses no other
// host function never comes back into Go until it ends. The engine that
// builds snapshots keeps the Go functions, so that a call to them during
// _initialize still refuses the snapshot (preinit.go).
//
// The layouts are checked once (fastOK); if a wasmtime-go upgrade changes
// them, calls take the plain wasmtime-go path and TestFastPathInUse fails to
// say so (see "wasmtime-go's private pointers" in docs/RATIONALE.md).

var (
	linkerPtrField, linkerPtrOK     = ptrField(reflect.TypeOf(wasmtime.Linker{}), "_ptr")
	modulePtrField, modulePtrOK     = ptrField(reflect.TypeOf(wasmtime.Module{}), "_ptr")
	callerPtrField, callerPtrOK     = ptrField(reflect.TypeOf(wasmtime.Caller{}), "ptr")
	funcTypePtrField, funcTypePtrOK = ptrField(reflect.TypeOf(wasmtime.FuncType{}), "_ptr")

	fastOK = interruptSupported && linkerPtrOK && modulePtrOK && callerPtrOK && funcTypePtrOK &&
		plainCopy(reflect.TypeOf(wasmtime.Func{}), unsafe.Sizeof(C.aerofn_func{})) &&
		plainCopy(reflect.TypeOf(wasmtime.Memory{}), unsafe.Sizeof(C.aerofn_memory{})) &&
		plainCopy(reflect.TypeOf(wasmtime.Instance{}), unsafe.Sizeof(C.aerofn_instance{})) &&
		onlyPointer(reflect.TypeOf(wasmtime.Trap{}), "_ptr") && onlyPointer(reflect.TypeOf(wasmtime.Error{}), "_ptr") &&
		externSizeOK(reflect.TypeOf(wasmtime.Extern{}))
)

// externSizeOK: wasmtime_instance_export_get writes a whole
// wasmtime_extern_t into aerofn_extern on the C stack, so the two must be
// the same size; wasmtime-go's Extern points to the real one.
func externSizeOK(t reflect.Type) bool {
	if t.NumField() != 1 || t.Field(0).Type.Kind() != reflect.Pointer {
		return false
	}
	return t.Field(0).Type.Elem().Size() == unsafe.Sizeof(C.aerofn_extern{})
}

func ptrField(t reflect.Type, name string) ([]int, bool) {
	f, ok := t.FieldByName(name)
	return f.Index, ok && f.Type.Kind() == reflect.Pointer
}

// plainCopy: t is one field "val", of size n, holding no Go pointer.
func plainCopy(t reflect.Type, n uintptr) bool {
	return t.NumField() == 1 && t.Field(0).Name == "val" && t.Size() == n && t.Field(0).Type.Kind() == reflect.Struct
}

// onlyPointer: t is exactly one pointer field named name.
func onlyPointer(t reflect.Type, name string) bool {
	return t.NumField() == 1 && t.Field(0).Name == name && t.Field(0).Type.Kind() == reflect.Pointer
}

func cStore(s *wasmtime.Store) unsafe.Pointer {
	return reflect.ValueOf(s).Elem().FieldByIndex(storePtrField).UnsafePointer()
}

func cLinker(l *wasmtime.Linker) unsafe.Pointer {
	return reflect.ValueOf(l).Elem().FieldByIndex(linkerPtrField).UnsafePointer()
}

func cModule(m *wasmtime.Module) unsafe.Pointer {
	return reflect.ValueOf(m).Elem().FieldByIndex(modulePtrField).UnsafePointer()
}

func cCaller(c *wasmtime.Caller) unsafe.Pointer {
	return reflect.ValueOf(c).Elem().FieldByIndex(callerPtrField).UnsafePointer()
}

// wasmError turns what a C call returned into the error wasmtime-go's
// enterWasm would have: the trap if there is one, else the error.
func wasmError(err *C.struct_wasmtime_error, trap *C.struct_wasm_trap) error {
	var e *wasmtime.Error
	if err != nil {
		e = new(wasmtime.Error)
		*(*unsafe.Pointer)(unsafe.Pointer(e)) = unsafe.Pointer(err)
		runtime.SetFinalizer(e, (*wasmtime.Error).Close)
	}
	if trap != nil {
		t := new(wasmtime.Trap)
		*(*unsafe.Pointer)(unsafe.Pointer(t)) = unsafe.Pointer(trap)
		runtime.SetFinalizer(t, (*wasmtime.Trap).Close)
		return t
	}
	if e != nil {
		return e
	}
	return nil
}

// instantiated is a new instance and the exports a call uses; a nil field
// is an export the module does not have.
type instantiated struct {
	inst          *wasmtime.Instance
	mem           *wasmtime.Memory
	handler, init *wasmtime.Func
}

// instanceVals holds what an instantiated points to: wasmtime-go's
// Instance, Memory and Func are plain copies of wasmtime's C structs, so
// one allocation holds all four instead of one each. It holds no Go
// pointer, as cgo's checks want of what a pointer into it is passed with.
type instanceVals struct {
	inst          wasmtime.Instance
	mem           wasmtime.Memory
	handler, init wasmtime.Func
}

// fastInstantiate is e.linker.Instantiate(store, m) plus the lookups of
// memory, handler and _initialize, in one cgo call.
// A start function runs with st's input and output (fastcall.go).
func fastInstantiate(linker *wasmtime.Linker, store *wasmtime.Store, m *wasmtime.Module, st *callState) (instantiated, error) {
	var out C.aerofn_instantiated
	var trap *C.struct_wasm_trap
	var io ioArgs
	io.of(st)
	err := C.aerofn_instantiate(cLinker(linker), cStore(store), cModule(m), &out, &trap,
		io.input, io.inputLen, io.buf, io.bufCap, io.maxOutput, io.out)
	runtime.KeepAlive(linker)
	runtime.KeepAlive(store)
	runtime.KeepAlive(m)
	io.done(st)
	if e := wasmError(err, trap); e != nil {
		return instantiated{}, e
	}
	vals := new(instanceVals)
	r := instantiated{inst: &vals.inst}
	*(*C.aerofn_instance)(unsafe.Pointer(r.inst)) = out.inst
	if out.has_memory != 0 {
		r.mem = &vals.mem
		*(*C.aerofn_memory)(unsafe.Pointer(r.mem)) = out.memory
	}
	if out.has_handler != 0 {
		r.handler = &vals.handler
		*(*C.aerofn_func)(unsafe.Pointer(r.handler)) = out.handler
	}
	if out.has_init != 0 {
		r.init = &vals.init
		*(*C.aerofn_func)(unsafe.Pointer(r.init)) = out.init
	}
	return r, nil
}

// fastCall calls f, of type () -> i32 (results 1) or () -> () (results 0),
// in one cgo call, the guest reading st's input and writing its output
// through the C functions above (fastcall.go).
func fastCall(store *wasmtime.Store, f *wasmtime.Func, results int, st *callState) (int32, error) {
	var rc C.int32_t
	var trap *C.struct_wasm_trap
	var io ioArgs
	io.of(st)
	err := C.aerofn_call(cStore(store), (*C.aerofn_func)(unsafe.Pointer(f)), C.size_t(results), &rc, &trap,
		io.input, io.inputLen, io.buf, io.bufCap, io.maxOutput, io.out)
	runtime.KeepAlive(store)
	runtime.KeepAlive(f)
	io.done(st)
	if e := wasmError(err, trap); e != nil {
		return 0, e
	}
	return int32(rc), nil
}

// callerMemory is mem.UnsafeData(c) in one cgo call.
func callerMemory(c *wasmtime.Caller, mem *wasmtime.Memory) []byte {
	var n C.size_t
	p := C.aerofn_caller_memory(cCaller(c), (*C.aerofn_memory)(unsafe.Pointer(mem)), &n)
	runtime.KeepAlive(mem)
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

// memorySize is mem.DataSize(store) in one cgo call.
func memorySize(store *wasmtime.Store, mem *wasmtime.Memory) int64 {
	n := C.aerofn_memory_size(cStore(store), (*C.aerofn_memory)(unsafe.Pointer(mem)))
	runtime.KeepAlive(store)
	runtime.KeepAlive(mem)
	return int64(n)
}

// The C declarations above against wasmtime's sizes (v39): a mismatch is a
// compile error here, not memory corruption.
var (
	_ [16 - unsafe.Sizeof(C.aerofn_func{})]byte
	_ [unsafe.Sizeof(C.aerofn_func{}) - 16]byte
	_ [24 - unsafe.Sizeof(C.aerofn_memory{})]byte
	_ [unsafe.Sizeof(C.aerofn_memory{}) - 24]byte
	_ [32 - unsafe.Sizeof(C.aerofn_extern{})]byte
	_ [unsafe.Sizeof(C.aerofn_extern{}) - 32]byte
)

// ioArgs is what the C input and output functions get of a call for one
// run of the guest: its input, a buffer for its output (the call's own,
// made on first use) and the output limit. out is nil without a call.
type ioArgs struct {
	input     *C.uint8_t
	inputLen  C.size_t
	buf       *C.uint8_t
	bufCap    C.size_t
	maxOutput C.uint64_t
	out       *C.aerofn_io_out
}

func (a *ioArgs) of(st *callState) {
	if st == nil {
		return
	}
	if len(st.input) > 0 {
		a.input, a.inputLen = (*C.uint8_t)(unsafe.Pointer(&st.input[0])), C.size_t(len(st.input))
	}
	if st.outBuf == nil {
		st.outBuf = make([]byte, outBufSize)
	}
	a.buf, a.bufCap = (*C.uint8_t)(unsafe.Pointer(&st.outBuf[0])), C.size_t(len(st.outBuf))
	a.maxOutput = C.uint64_t(max(st.lim.MaxOutput, 0))
	a.out = new(C.aerofn_io_out)
	if st.countFaults {
		a.out.count_faults = 1
		a.out.faults = ^C.uint64_t(0) // unknown until aerofn_call counts them
		// Written here, so that the guest's output, copied in by C while
		// the faults are counted, does not fault the buffer's pages in
		// (Go does not zero memory fresh from the OS): a fault there would
		// make the reset scan for nothing.
		st.outBuf[0], st.outBuf[len(st.outBuf)-1] = 0, 0
	}
}

// done takes what the guest's run gave: the bytes it last passed to output
// (from the call's buffer, or copied out of C memory when they did not fit)
// and whether it asked for more than the limit.
func (a *ioArgs) done(st *callState) {
	o := a.out
	if o == nil {
		return
	}
	if o.too_large != 0 {
		st.outputTooLarge = true
	}
	st.faultFree = o.count_faults != 0 && o.faults == 0
	if o.set == 0 {
		return
	}
	n := int(o.len)
	if o.heap != nil {
		// Copied with make and copy: C.GoBytes takes a C.int, and the
		// limit may allow 2 GiB or more.
		out := make([]byte, n)
		copy(out, unsafe.Slice((*byte)(unsafe.Pointer(o.heap)), n))
		C.free(unsafe.Pointer(o.heap))
		o.heap = nil
		st.output = out
		return
	}
	if n == 0 {
		st.output = st.output[:0] // as append(st.output[:0]) leaves it: nil when there was none
		return
	}
	st.output = st.outBuf[:n:n]
}

// defineNativeIO defines f, one of the ABI's input_len, input_read and
// output, as its C function; false for any other function.
func defineNativeIO(l *wasmtime.Linker, f hostFn) (bool, error) {
	which := C.int(-1)
	if f.module == abiModule {
		switch f.name {
		case "input_len":
			which = C.AEROFN_IO_INPUT_LEN
		case "input_read":
			which = C.AEROFN_IO_INPUT_READ
		case "output":
			which = C.AEROFN_IO_OUTPUT
		}
	}
	if which < 0 {
		return false, nil
	}
	ft := f.sig.funcType()
	module, name := C.CString(f.module), C.CString(f.name)
	defer C.free(unsafe.Pointer(module))
	defer C.free(unsafe.Pointer(name))
	err := C.aerofn_define_io(cLinker(l), module, C.size_t(len(f.module)), name, C.size_t(len(f.name)),
		(*C.struct_wasm_functype)(reflect.ValueOf(ft).Elem().FieldByIndex(funcTypePtrField).UnsafePointer()), which)
	runtime.KeepAlive(l)
	runtime.KeepAlive(ft)
	if err != nil {
		return true, wasmError(err, nil)
	}
	return true, nil
}

// outBufSize is the output a call can give without a copy out of C memory:
// most answers are smaller.
const outBufSize = 1024

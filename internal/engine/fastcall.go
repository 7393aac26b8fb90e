package engine

/*
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

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

enum { AEROFN_EXTERN_FUNC = 0, AEROFN_EXTERN_MEMORY = 3 };

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
		aerofn_instantiated *out, struct wasm_trap **trap) {
	struct wasmtime_context *ctx = wasmtime_store_context(store);
	struct wasmtime_error *err = wasmtime_linker_instantiate(linker, ctx, module, &out->inst, trap);
	if (err != NULL || *trap != NULL) return err;
	aerofn_export(ctx, &out->inst, "memory", 6, AEROFN_EXTERN_MEMORY, &out->memory, sizeof out->memory, &out->has_memory);
	aerofn_export(ctx, &out->inst, "handler", 7, AEROFN_EXTERN_FUNC, &out->handler, sizeof out->handler, &out->has_handler);
	aerofn_export(ctx, &out->inst, "_initialize", 11, AEROFN_EXTERN_FUNC, &out->init, sizeof out->init, &out->has_init);
	return NULL;
}

// Calls f, whose type checkModule verified: () -> i32 when results is 1,
// () -> () when 0.
static struct wasmtime_error *aerofn_call(void *store, const aerofn_func *f, size_t results, int32_t *rc,
		struct wasm_trap **trap) {
	aerofn_val_raw v[1];
	v[0].i64 = 0;
	struct wasmtime_error *err = wasmtime_func_call_unchecked(wasmtime_store_context(store), f, v, results, trap);
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
// The layouts are checked once (fastOK); if a wasmtime-go upgrade changes
// them, calls take the plain wasmtime-go path and TestFastPathInUse fails to
// say so (see "wasmtime-go's private pointers" in docs/RATIONALE.md).

var (
	linkerPtrField, linkerPtrOK = ptrField(reflect.TypeOf(wasmtime.Linker{}), "_ptr")
	modulePtrField, modulePtrOK = ptrField(reflect.TypeOf(wasmtime.Module{}), "_ptr")
	callerPtrField, callerPtrOK = ptrField(reflect.TypeOf(wasmtime.Caller{}), "ptr")

	fastOK = interruptSupported && linkerPtrOK && modulePtrOK && callerPtrOK &&
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
func fastInstantiate(linker *wasmtime.Linker, store *wasmtime.Store, m *wasmtime.Module) (instantiated, error) {
	var out C.aerofn_instantiated
	var trap *C.struct_wasm_trap
	err := C.aerofn_instantiate(cLinker(linker), cStore(store), cModule(m), &out, &trap)
	runtime.KeepAlive(linker)
	runtime.KeepAlive(store)
	runtime.KeepAlive(m)
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
// in one cgo call.
func fastCall(store *wasmtime.Store, f *wasmtime.Func, results int) (int32, error) {
	var rc C.int32_t
	var trap *C.struct_wasm_trap
	err := C.aerofn_call(cStore(store), (*C.aerofn_func)(unsafe.Pointer(f)), C.size_t(results), &rc, &trap)
	runtime.KeepAlive(store)
	runtime.KeepAlive(f)
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

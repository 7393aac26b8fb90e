package engine

/*
#include <stdint.h>
#include <stddef.h>

// Declared here rather than included, as in fastcall.go; the layouts are
// wasmtime's (extern.h, val.h of wasmtime v39) and resetGlobalsOK checks
// the global's against wasmtime-go's Global.
struct wasmtime_store;
struct wasmtime_context;
struct wasmtime_error;

typedef struct { uint64_t store_id; uint32_t private1, private2, private3; } aerofn_rg_global;
typedef struct { struct { uint64_t store_id; uint32_t private1; } a; uint32_t private2; } aerofn_rg_memory;
// wasmtime_val_t: a kind byte, then a union whose largest members (anyref,
// externref) are 24 bytes.
typedef struct {
	uint8_t kind;
	union { int32_t i32; int64_t i64; uint32_t f32; uint64_t f64; struct { uint64_t a, b; void *c; } largest; } of;
} aerofn_rg_val;

extern struct wasmtime_context *wasmtime_store_context(struct wasmtime_store *);
extern struct wasmtime_error *wasmtime_global_set(struct wasmtime_context *, const aerofn_rg_global *, const aerofn_rg_val *);
extern void wasmtime_error_delete(struct wasmtime_error *);
extern uint8_t *wasmtime_memory_data(const struct wasmtime_context *, const aerofn_rg_memory *);
extern size_t wasmtime_memory_data_size(const struct wasmtime_context *, const aerofn_rg_memory *);

// Sets globals[i] to vals[i] for every i < n, then finds mem's data and
// size; 0 when every set succeeded, else -1 (and *data, *size are not set).
static int aerofn_reset_globals(void *store, const aerofn_rg_memory *mem, const aerofn_rg_global *globals,
		const aerofn_rg_val *vals, size_t n, uint8_t **data, size_t *size) {
	struct wasmtime_context *ctx = wasmtime_store_context(store);
	for (size_t i = 0; i < n; i++) {
		struct wasmtime_error *err = wasmtime_global_set(ctx, &globals[i], &vals[i]);
		if (err != NULL) {
			wasmtime_error_delete(err);
			return -1;
		}
	}
	*size = wasmtime_memory_data_size(ctx, mem);
	*data = wasmtime_memory_data(ctx, mem);
	return 0;
}
*/
import "C"

import (
	"math"
	"reflect"
	"runtime"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// One crossing into C for the C side of a reset.
//
// Setting a global through wasmtime-go is three cgo calls (Store.Context,
// wasmtime_global_set, wasmtime_val_unroot), and finding the memory's data
// and size six more; a reset of a Go guest's instance made them all. A
// globalReset holds wasmtime's C values of an instance's mutable globals
// and of the values they go back to, and sets them all and returns the
// memory in one call. The values are numbers (parseGlobals refuses other
// mutable globals), which need no rooting.
//
// The layouts are checked once (resetGlobalsOK); if a wasmtime-go upgrade
// changes them, resets take wasmtime-go's methods and
// TestResetGlobalsBatchedInUse fails to say so.

var resetGlobalsOK = interruptSupported &&
	plainCopy(reflect.TypeOf(wasmtime.Global{}), unsafe.Sizeof(C.aerofn_rg_global{})) &&
	plainCopy(reflect.TypeOf(wasmtime.Memory{}), unsafe.Sizeof(C.aerofn_rg_memory{}))

// wasmtime's value kinds (val.h).
const (
	valKindI32 = 0
	valKindI64 = 1
	valKindF32 = 2
	valKindF64 = 3
)

// globalReset sets an instance's mutable globals back and finds its
// memory, in one cgo call. What it passes to C (mem, the slices' backing
// arrays) holds no Go pointer, as cgo's rules want.
type globalReset struct {
	mem     C.aerofn_rg_memory
	globals []C.aerofn_rg_global
	vals    []C.aerofn_rg_val
}

// newGlobalReset is the globalReset that sets globals[i] to values[i] and
// finds mem, or nil when the layouts do not match or a value is not a
// number (the reset then uses wasmtime-go's methods).
func newGlobalReset(mem *wasmtime.Memory, globals []*wasmtime.Global, values []wasmtime.Val) *globalReset {
	if !resetGlobalsOK || len(globals) != len(values) {
		return nil
	}
	r := &globalReset{
		mem:     *(*C.aerofn_rg_memory)(unsafe.Pointer(mem)),
		globals: make([]C.aerofn_rg_global, len(globals)),
		vals:    make([]C.aerofn_rg_val, len(values)),
	}
	for i, g := range globals {
		r.globals[i] = *(*C.aerofn_rg_global)(unsafe.Pointer(g))
		v := &r.vals[i]
		p := unsafe.Pointer(&v.of)
		switch values[i].Kind() {
		case wasmtime.KindI32:
			v.kind = valKindI32
			*(*int32)(p) = values[i].I32()
		case wasmtime.KindI64:
			v.kind = valKindI64
			*(*int64)(p) = values[i].I64()
		case wasmtime.KindF32:
			v.kind = valKindF32
			*(*uint32)(p) = math.Float32bits(values[i].F32())
		case wasmtime.KindF64:
			v.kind = valKindF64
			*(*uint64)(p) = math.Float64bits(values[i].F64())
		default:
			return nil
		}
	}
	return r
}

// reset sets the globals back and returns the memory's data; ok is false
// when a set failed (the instance must end).
func (r *globalReset) reset(store *wasmtime.Store) (data []byte, ok bool) {
	var g *C.aerofn_rg_global
	var v *C.aerofn_rg_val
	if len(r.globals) > 0 {
		g, v = &r.globals[0], &r.vals[0]
	}
	var p *C.uint8_t
	var n C.size_t
	rc := C.aerofn_reset_globals(cStore(store), &r.mem, g, v, C.size_t(len(r.globals)), &p, &n)
	runtime.KeepAlive(store)
	runtime.KeepAlive(r)
	if rc != 0 {
		return nil, false
	}
	if p == nil || n == 0 {
		return nil, true
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)), true
}

// The C declarations above against wasmtime's sizes (v39): a mismatch is a
// compile error here, not memory corruption.
var (
	_ [24 - unsafe.Sizeof(C.aerofn_rg_global{})]byte
	_ [unsafe.Sizeof(C.aerofn_rg_global{}) - 24]byte
	_ [24 - unsafe.Sizeof(C.aerofn_rg_memory{})]byte
	_ [unsafe.Sizeof(C.aerofn_rg_memory{}) - 24]byte
	_ [32 - unsafe.Sizeof(C.aerofn_rg_val{})]byte
	_ [unsafe.Sizeof(C.aerofn_rg_val{}) - 32]byte
	_ [8 - unsafe.Offsetof(C.aerofn_rg_val{}.of)]byte
	_ [unsafe.Offsetof(C.aerofn_rg_val{}.of) - 8]byte
)

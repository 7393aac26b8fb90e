//go:build wasip1

package aerofn

import (
	"runtime"
	"unsafe"
)

// beforeSnapshot is what the host calls once after init when it snapshots
// the module, and never when init runs at the start of each call
// (docs/ABI.md, aerofn_before_snapshot).
//
//go:wasmexport aerofn_before_snapshot
func beforeSnapshot() { warmAllocator() }

// warmAllocator leaves, for each small size class, the span the allocator
// allocates from next a fresh one, so that a call's allocations fit in the
// spans the snapshot already holds.
//
// Every call starts from the snapshot taken after init. Init's allocations
// leave each class's current span partly used, so a call that fills one
// took a new span: the allocator's slow path (mcentral, the page allocator,
// span and bitmap metadata), in every call, writing pages of runtime
// metadata that the host then copies back at the reset. Rolling each class
// over to a new span here moves that work into the snapshot, once per
// version. A module whose init runs in every call instead (one whose init
// reads Env, say) is never asked to: there it would double the call's cost.
//
// It costs about one span of heap per class, about 600 KiB in all, most of
// it never touched. It never takes the heap past half the collector's goal,
// so that it cannot bring the next collection into a call.
func warmAllocator() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc >= ms.NextGC/2 {
		return
	}
	room := int(ms.NextGC/2 - ms.HeapAlloc)
	for _, size := range classSizes {
		if size >= 16 { // smaller pointer-free objects take the tiny allocator
			room = rollClass(size, 0, room, func() unsafe.Pointer {
				return unsafe.Pointer(unsafe.SliceData(make([]byte, size)))
			})
		}
		header := 0
		if size > 512 {
			header = 8 // a larger pointerful object starts with the allocator's header
		}
		room = rollClass(size, header, room, func() unsafe.Pointer {
			return unsafe.Pointer(unsafe.SliceData(make([]unsafe.Pointer, (size-header)/8)))
		})
	}
	warmSink = nil
}

// classSizes are the Go allocator's size classes up to 2 KiB
// (runtime/sizeclasses.go). A size that is not a class of some later Go
// release rolls the class it rounds up to a second time: more heap,
// nothing wrong.
var classSizes = [...]int{
	8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
	288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152,
	1280, 1408, 1536, 1792, 2048,
}

// warmSink keeps rollClass's allocations on the heap.
var warmSink unsafe.Pointer

// rollClass allocates objects of one class until one begins at the start of
// an 8 KiB page, header bytes before the pointer alloc returns: that is the
// first object of a span (a span of these classes starts on a page, and no
// later object of it does, since a size that divides 8 KiB has one-page
// spans). It stops after two of the largest spans' worth, or when it has
// allocated room bytes, and returns the room left.
func rollClass(size, header, room int, alloc func() unsafe.Pointer) int {
	for range 2*(16<<10)/size + 1 {
		if room < size {
			return room
		}
		p := alloc()
		warmSink = p
		room -= size
		if (uintptr(p)-uintptr(header))%(8<<10) == 0 {
			break
		}
	}
	return room
}

// Command goheap reports whether its handler took a new span from the Go
// allocator: the bytes of the heap's in-use spans when the handler starts
// against those after it allocated, for every size of Go's small size
// classes up to 2 KiB, with and without pointers, half a span's worth of
// objects. Without the SDK's aerofn_before_snapshot, which leaves every
// class a fresh span in the snapshot, a class init never used has no span
// and one init did use has a partly used one, and the handler takes new
// spans. (runtime.ReadMemStats would hand the allocator's cached spans back
// first; runtime/metrics does not.)
package main

import (
	"runtime/metrics"
	"unsafe"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

type request struct {
	Name string `json:"name"`
}

func init() {
	aerofn.Prepare(request{})
	aerofn.Handle(handle)
}

// sizes are Go's size classes up to 2 KiB (runtime/sizeclasses.go).
var sizes = []int{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
	288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048}

var sink []unsafe.Pointer

func handle(ev aerofn.Event) (any, error) {
	sink = make([]unsafe.Pointer, 0, 8192)
	atStart := spanBytes()
	var in request
	if err := ev.DecodeBody(&in); err != nil {
		return nil, err
	}
	for _, size := range sizes {
		for range (8 << 10) / size / 2 {
			if size >= 16 {
				sink = append(sink, unsafe.Pointer(unsafe.SliceData(make([]byte, size))))
			}
			header := 0
			if size > 512 {
				header = 8
			}
			sink = append(sink, unsafe.Pointer(unsafe.SliceData(make([]unsafe.Pointer, (size-header)/8))))
		}
	}
	return map[string]any{"at_start": atStart, "in_call": spanBytes(), "name": in.Name, "content_type": ev.Headers.Get("content-type")}, nil
}

var samples = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}

// spanBytes is the bytes of the heap's in-use spans: its objects, including
// the free slots of the spans the allocator has cached, and the rest.
func spanBytes() uint64 {
	metrics.Read(samples)
	return samples[0].Value.Uint64() + samples[1].Value.Uint64()
}

func main() {}

// Command goheapfull keeps 3 MiB live from init, past half of the
// collector's first goal (4 MiB), so the SDK's aerofn_before_snapshot must
// leave the allocator alone: its handler reports whether one pointerful
// 2 KiB object, a class init never used, took a new span (it does when the
// classes were not rolled).
package main

import (
	"runtime/metrics"
	"unsafe"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

var ballast = make([]byte, 3<<20)

func init() {
	aerofn.Handle(handle)
}

var sink unsafe.Pointer

func handle(aerofn.Event) (any, error) {
	before := spanBytes()
	sink = unsafe.Pointer(unsafe.SliceData(make([]unsafe.Pointer, (2048-8)/8)))
	return map[string]any{"took_span": spanBytes() != before, "ballast": len(ballast)}, nil
}

var samples = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}

func spanBytes() uint64 {
	metrics.Read(samples)
	return samples[0].Value.Uint64() + samples[1].Value.Uint64()
}

func main() {}

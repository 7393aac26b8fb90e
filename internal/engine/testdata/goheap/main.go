// Command goheap reports whether its handler took a new span from the Go
// allocator: the heap's in-use spans when the handler starts against those
// after it allocated objects of sizes up to 2 KiB, with and without
// pointers. A small init like this one leaves most size classes without a
// span at all, so without the SDK's aerofn_before_snapshot (which leaves
// every class a fresh span in the snapshot) the handler takes several.
package main

import (
	"runtime"
	"strings"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

type request struct {
	Name string `json:"name"`
}

func init() {
	aerofn.Prepare(request{})
	aerofn.Handle(handle)
}

var sink [2][64]any

func handle(ev aerofn.Event) (any, error) {
	atStart := heapInuse()
	var in request
	if err := ev.DecodeBody(&in); err != nil {
		return nil, err
	}
	for i, n := 0, 1; n <= 2048; i, n = i+1, n*5/4+1 {
		sink[0][i] = strings.Repeat("x", n)
		sink[1][i] = make([]*int, n/8)
	}
	return map[string]any{"at_start": atStart, "in_call": heapInuse(), "name": in.Name, "content_type": ev.Headers.Get("content-type")}, nil
}

func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func main() {}

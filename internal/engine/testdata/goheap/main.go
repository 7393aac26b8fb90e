// Command goheap reports whether a call took a new span from the Go
// allocator: the heap's in-use spans at the end of init (so in the snapshot
// every call starts from) against those after the call's own allocations,
// which are a small HTTP call's (the event with its headers, the body, a
// map) and objects of sizes up to 2 KiB, with and without pointers.
package main

import (
	"runtime"
	"strings"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

type request struct {
	Name string `json:"name"`
}

// atInit is HeapInuse after Handle, the last thing init does.
var atInit uint64

func init() {
	aerofn.Prepare(request{})
	aerofn.Handle(handle)
	atInit = heapInuse()
}

var sink [2][64]any

func handle(ev aerofn.Event) (any, error) {
	var in request
	if err := ev.DecodeBody(&in); err != nil {
		return nil, err
	}
	for i, n := 0, 1; n <= 2048; i, n = i+1, n*5/4+1 {
		sink[0][i] = strings.Repeat("x", n)
		sink[1][i] = make([]*int, n/8)
	}
	return map[string]any{"at_init": atInit, "in_call": heapInuse(), "name": in.Name, "content_type": ev.Headers.Get("content-type")}, nil
}

func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func main() {}

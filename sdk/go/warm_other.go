//go:build !wasip1

package aerofn

// warmAllocator readies the allocator of a WebAssembly build's snapshot
// (warm_wasip1.go); elsewhere there is no snapshot.
func warmAllocator() {}

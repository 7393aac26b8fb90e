// Command echo returns the event it was called with, unchanged. Tests and
// benchmarks use it to see exactly what the host hands a function, and to
// measure the cost of a call with no work in it.
package main

import aerofn "github.com/aerodb/aerofn/sdk/go"

func init() {
	aerofn.Handle(func(ev aerofn.Event) (any, error) {
		// Raw is a json.RawMessage, which the SDK passes on byte for
		// byte; returning ev would re-encode it.
		return ev.Raw, nil
	})
}

func main() {}

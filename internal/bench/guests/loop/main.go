// Command loop is the Go side of the CPU benchmark beside a JavaScript
// function doing the same work (internal/bench/cmd/js.go): a loop of 10^6
// additions.
package main

import aerofn "github.com/aerodb/aerofn/sdk/go"

func init() {
	aerofn.Handle(func(aerofn.Event) (any, error) {
		sum := 0
		for i := range 1_000_000 {
			sum += i % 7
		}
		return map[string]int{"sum": sum}, nil
	})
}

func main() {}

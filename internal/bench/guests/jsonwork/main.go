// Command jsonwork is the Go side of the JSON-heavy benchmark beside a
// JavaScript function doing the same work (internal/bench/cmd/js.go): build
// a document of 1,000 records (about 100 KB of JSON), then encode and decode
// it 10 times.
package main

import (
	"encoding/json"
	"fmt"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

type record struct {
	ID     int            `json:"id"`
	Name   string         `json:"name"`
	Tags   []string       `json:"tags"`
	Active bool           `json:"active"`
	Score  float64        `json:"score"`
	Meta   map[string]any `json:"meta"`
}

func init() {
	aerofn.Handle(func(aerofn.Event) (any, error) {
		docs := make([]record, 1000)
		for i := range docs {
			docs[i] = record{ID: i, Name: fmt.Sprintf("user-%d", i), Tags: []string{"a", "b", "c"}, Active: i%2 == 0,
				Score: float64(i) * 1.5, Meta: map[string]any{"created": "2026-01-01T00:00:00Z", "n": i}}
		}
		size := 0
		for range 10 {
			b, err := json.Marshal(docs)
			if err != nil {
				return nil, err
			}
			size = len(b)
			var back []map[string]any
			if err := json.Unmarshal(b, &back); err != nil {
				return nil, err
			}
		}
		return map[string]int{"bytes": size}, nil
	})
}

func main() {}

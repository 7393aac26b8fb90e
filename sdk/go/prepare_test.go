package aerofn

import (
	"encoding/json"
	"testing"
)

type prepareNested struct {
	When string            `json:"when"`
	Tags map[string]string `json:"tags"`
}

type prepareRequest struct {
	Name   string         `json:"name"`
	Nested prepareNested  `json:"nested"`
	Ptr    *prepareNested `json:"ptr"`
}

// Prepare accepts any value, pointers, nil and types encoding/json refuses
// included, and leaves the values it was given unchanged.
func TestPrepare(t *testing.T) {
	in := prepareRequest{Name: "kept", Nested: prepareNested{When: "now"}}
	Prepare(in, &in, nil, make(chan int), func() {}, map[string]any{"a": 1})
	if in.Name != "kept" || in.Nested.When != "now" || in.Ptr != nil {
		t.Fatalf("Prepare changed its argument: %+v", in)
	}
	// The types still encode and decode as before.
	var out prepareRequest
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Name != "kept" || out.Nested.When != "now" {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
}

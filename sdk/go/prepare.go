package aerofn

import (
	"encoding/json"
	"reflect"
)

// Prepare does encoding/json's one-time work for the types of values: the
// reflection behind encoding and decoding each type, which encoding/json
// caches per process. Call it from init with a value of each type your
// handler decodes or returns:
//
//	type request struct{ Name string `json:"name"` }
//
//	func init() {
//		aerofn.Prepare(request{})
//		aerofn.Handle(hello)
//	}
//
// aerofn runs init once per version and starts every call from the state
// it left (a snapshot), so whatever init caches is there in every call,
// while what a handler caches is lost when the call ends. For a small
// handler that decodes a struct and returns a map, that work is most of
// its time. Values are only encoded and decoded, never kept; a type that
// encoding/json cannot handle is skipped.
func Prepare(values ...any) {
	for _, v := range values {
		prepare(v)
	}
}

func prepare(v any) {
	t := reflect.TypeOf(v)
	if t == nil {
		return
	}
	// Encoding builds the type's encoder and those of every type it holds;
	// decoding what that produced into a new value does the decoder's
	// per-type work (field lists), nested structs included.
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	_ = json.Unmarshal(b, reflect.New(t).Interface())
	planOf(t) // DecodeBody's own decoding of a flat struct (decodeflat.go)
}

// The SDK prepares the types a handler most often returns or decodes, and
// the SDK's own.
func init() {
	Prepare(
		map[string]string{"": ""}, map[string]any{"": ""}, []any{""}, []map[string]any{{"": ""}},
		"", 0, 0.5, true, json.RawMessage(`{}`), Response{Body: map[string]any{"": ""}},
	)
}

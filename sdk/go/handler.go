package aerofn

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
)

// HandlerFunc handles one event. Its result becomes the call's result: nil
// is JSON null, a json.RawMessage is passed on unchanged, a [Response] shapes
// an HTTP reply, anything else is encoded with encoding/json. A non-nil
// error fails the call with the error's message as its output.
type HandlerFunc func(ev Event) (any, error)

// registered is the function's one handler, set by Handle during init.
var registered HandlerFunc

// Handle registers the function's handler. Call it from an init function:
// a module built with -buildmode=c-shared runs init during _initialize but
// never calls main. It panics when called twice, because a second handler
// would silently replace the first.
func Handle(h HandlerFunc) {
	if h == nil {
		panic("aerofn: Handle called with a nil handler")
	}
	if registered != nil {
		panic("aerofn: Handle called twice; a function has exactly one handler")
	}
	registered = h
}

// maxOutput is the host's output cap (docs/ABI.md). Past it the host traps
// with a bare "output exceeds limit"; checking first lets the error say how
// large the result was.
const maxOutput = 6 << 20

// invoke runs h on the event in input and returns what to pass to the
// output import and whether the call succeeded. It is the whole of the
// handler export except the host calls, so it can be tested off wasm.
func invoke(h HandlerFunc, input []byte) (out []byte, ok bool) {
	if h == nil {
		return []byte("aerofn: no handler registered; call aerofn.Handle from init"), false
	}
	var ev Event
	if len(input) > 0 {
		if err := ev.decode(input); err != nil {
			return fmt.Appendf(nil, "decoding event: %v", err), false
		}
	}
	result, err := call(h, ev)
	if err != nil {
		msg := err.Error()
		if msg == "" {
			msg = "handler returned an error with an empty message"
		}
		return []byte(msg), false
	}
	out, err = encodeResult(result)
	if err != nil {
		return []byte(err.Error()), false
	}
	if len(out) > maxOutput {
		return fmt.Appendf(nil, "result is %d bytes, over the %d-byte output limit", len(out), maxOutput), false
	}
	return out, true
}

// call runs h and turns a panic into an error, so a bug in the function is
// reported as its failure with the panic's message instead of a bare trap.
// The stack goes to the function's log, where its author can find it.
func call(h HandlerFunc, ev Event) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			Log(LevelError, fmt.Sprintf("panic: %v\n%s", r, debug.Stack()))
			result, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return h(ev)
}

func encodeResult(v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return []byte("null"), nil
	case json.RawMessage:
		// Passed on as is (sql-proxy relays the host's reply byte for
		// byte), but checked: the host parses every result as JSON.
		if len(v) == 0 {
			return []byte("null"), nil
		}
		if !json.Valid(v) {
			return nil, fmt.Errorf("encoding result: json.RawMessage is not valid JSON")
		}
		return v, nil
	case map[string]string:
		return appendStringMap(nil, v), nil
	case string:
		return appendJSONString(nil, v), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding result: %w", err)
	}
	return b, nil
}

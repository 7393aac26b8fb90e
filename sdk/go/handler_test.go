package aerofn

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestInvoke(t *testing.T) {
	fake := &fakeHost{}
	useHost(t, fake)

	tests := []struct {
		name    string
		h       HandlerFunc
		event   string
		wantOut string
		wantOK  bool
	}{
		{
			name:    "value",
			h:       func(ev Event) (any, error) { return map[string]string{"path": ev.Path}, nil },
			event:   `{"trigger":"http","path":"/x"}`,
			wantOut: `{"path":"/x"}`,
			wantOK:  true,
		},
		{
			name:    "nil result",
			h:       func(Event) (any, error) { return nil, nil },
			event:   `{}`,
			wantOut: `null`,
			wantOK:  true,
		},
		{
			name:    "raw event echoed byte for byte",
			h:       func(ev Event) (any, error) { return ev.Raw, nil },
			event:   `{ "trigger" : "http" }`,
			wantOut: `{ "trigger" : "http" }`,
			wantOK:  true,
		},
		{
			name:    "response",
			h:       func(Event) (any, error) { return &Response{StatusCode: 404, Body: "no"}, nil },
			event:   `{}`,
			wantOut: `{"statusCode":404,"body":"no"}`,
			wantOK:  true,
		},
		{
			name:    "error",
			h:       func(Event) (any, error) { return nil, errors.New("looking up user: gone") },
			event:   `{}`,
			wantOut: `looking up user: gone`,
		},
		{
			name:    "error with empty message",
			h:       func(Event) (any, error) { return nil, errors.New("") },
			event:   `{}`,
			wantOut: `handler returned an error with an empty message`,
		},
		{
			name:    "panic",
			h:       func(Event) (any, error) { panic("boom") },
			event:   `{}`,
			wantOut: `panic: boom`,
		},
		{
			name: "runtime panic",
			h: func(Event) (any, error) {
				var m map[string]int
				m["x"] = 1
				return nil, nil
			},
			event:   `{}`,
			wantOut: `panic: assignment to entry in nil map`,
		},
		{
			name:    "unencodable result",
			h:       func(Event) (any, error) { return make(chan int), nil },
			event:   `{}`,
			wantOut: `encoding result: json: unsupported type: chan int`,
		},
		{
			name:    "invalid raw result",
			h:       func(Event) (any, error) { return json.RawMessage("{"), nil },
			event:   `{}`,
			wantOut: `encoding result: json.RawMessage is not valid JSON`,
		},
		{
			name:    "bad event",
			h:       func(Event) (any, error) { return "unreached", nil },
			event:   `{"trigger":`,
			wantOut: `decoding event: unexpected end of JSON input`,
		},
		{
			name:    "no handler",
			event:   `{}`,
			wantOut: `aerofn: no handler registered; call aerofn.Handle from init`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, ok := invoke(tt.h, []byte(tt.event))
			if string(out) != tt.wantOut || ok != tt.wantOK {
				t.Errorf("invoke = %q, %v; want %q, %v", out, ok, tt.wantOut, tt.wantOK)
			}
		})
	}
}

func TestInvokePanicLogsStack(t *testing.T) {
	fake := &fakeHost{}
	useHost(t, fake)
	invoke(func(Event) (any, error) { panic("boom") }, []byte(`{}`))
	if len(fake.logs) != 1 || !strings.HasPrefix(fake.logs[0], "error panic: boom\n") || !strings.Contains(fake.logs[0], "goroutine") {
		t.Errorf("logs = %q, want one error line with the stack", fake.logs)
	}
}

func TestInvokeOutputLimit(t *testing.T) {
	big := strings.Repeat("x", maxOutput)
	out, ok := invoke(func(Event) (any, error) { return big, nil }, []byte(`{}`))
	if ok || !strings.Contains(string(out), "over the 6291456-byte output limit") {
		t.Errorf("invoke = %.80q, %v; want an output-limit error", out, ok)
	}
}

func TestHandle(t *testing.T) {
	t.Cleanup(func() { registered = nil })
	registered = nil
	Handle(func(Event) (any, error) { return "first", nil })
	if out, ok := invoke(registered, []byte(`{}`)); string(out) != `"first"` || !ok {
		t.Errorf("invoke = %q, %v", out, ok)
	}
	mustPanic(t, "second Handle", func() { Handle(func(Event) (any, error) { return nil, nil }) })
	registered = nil
	mustPanic(t, "nil handler", func() { Handle(nil) })
}

func mustPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s did not panic", what)
		}
	}()
	f()
}

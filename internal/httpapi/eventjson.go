package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aerodb/aerofn/internal/jsonenc"
)

// appendJSON appends the event as encoding/json encoded it when its
// headers and query were maps (first values and all values), with HTML
// escaping off (encodeEvent's form): the same fields in the same order,
// object keys sorted byte-wise, the body compacted. Every HTTP call builds
// one; encoding/json's reflection over four maps was a fifth of the
// allocations of a call through the server, and building the maps a tenth
// of its CPU past the guest. FuzzEventJSON holds the two encodings equal.
func (ev *httpEvent) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"trigger":`...)
	b = jsonenc.AppendString(b, ev.Trigger)
	b = append(b, `,"method":`...)
	b = jsonenc.AppendString(b, ev.Method)
	b = append(b, `,"path":`...)
	b = jsonenc.AppendString(b, ev.Path)
	b = append(b, `,"headers":`...)
	b = ev.Headers.appendFirst(b)
	b = append(b, `,"query":`...)
	b = ev.Query.appendFirst(b)
	b = append(b, `,"headers_all":`...)
	b = ev.Headers.appendAll(b)
	b = append(b, `,"query_all":`...)
	b = ev.Query.appendAll(b)
	b = append(b, `,"body":`...)
	if ev.Body == nil {
		b = append(b, "null"...)
	} else {
		buf := bytes.NewBuffer(b)
		if err := json.Compact(buf, ev.Body); err != nil {
			return nil, fmt.Errorf("encoding event: body: %w", err)
		}
		b = buf.Bytes()
	}
	if ev.BodyEncoding != "" {
		b = append(b, `,"body_encoding":`...)
		b = jsonenc.AppendString(b, ev.BodyEncoding)
	}
	b = append(b, `,"user_id":`...)
	if ev.UserID == nil {
		b = append(b, "null"...)
	} else {
		b = jsonenc.AppendString(b, *ev.UserID)
	}
	b = append(b, `,"role":`...)
	b = jsonenc.AppendString(b, ev.Role)
	b = append(b, `,"request_id":`...)
	b = jsonenc.AppendString(b, ev.RequestID)
	return append(b, '}'), nil
}

// appendFirst appends fs as an object of each name's first value.
func (fs eventFields) appendFirst(b []byte) []byte {
	b = append(b, '{')
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, f.name)
		b = append(b, ':')
		b = jsonenc.AppendString(b, f.values[0])
	}
	return append(b, '}')
}

// appendAll appends fs as an object of each name's values, a list.
func (fs eventFields) appendAll(b []byte) []byte {
	b = append(b, '{')
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, f.name)
		b = append(b, ":["...)
		for j, v := range f.values {
			if j > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, v)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

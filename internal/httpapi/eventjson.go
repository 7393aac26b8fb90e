package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/aerodb/aerofn/internal/jsonenc"
)

// appendJSON appends the event as encoding/json encodes it with HTML
// escaping off (encodeEvent's form): the same fields in the same order,
// map keys sorted byte-wise, the body compacted. Every HTTP call builds one, and
// encoding/json's reflection over its four maps was a fifth of the
// allocations of a call through the server; FuzzEventJSON holds the two
// encodings equal.
func (ev *httpEvent) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"trigger":`...)
	b = jsonenc.AppendString(b, ev.Trigger)
	b = append(b, `,"method":`...)
	b = jsonenc.AppendString(b, ev.Method)
	b = append(b, `,"path":`...)
	b = jsonenc.AppendString(b, ev.Path)
	b = append(b, `,"headers":`...)
	b = appendMap(b, ev.Headers, jsonenc.AppendString)
	b = append(b, `,"query":`...)
	b = appendMap(b, ev.Query, jsonenc.AppendString)
	b = append(b, `,"headers_all":`...)
	b = appendMap(b, ev.HeadersAll, appendStrings)
	b = append(b, `,"query_all":`...)
	b = appendMap(b, ev.QueryAll, appendStrings)
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

// appendMap appends m as a JSON object (null when nil), its keys in
// encoding/json's order, each value written by val.
func appendMap[V any](b []byte, m map[string]V, val func([]byte, V) []byte) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, k := range sortedKeysOf(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, k)
		b = append(b, ':')
		b = val(b, m[k])
	}
	return append(b, '}')
}

// appendStrings appends vs as a JSON array (null when nil).
func appendStrings(b []byte, vs []string) []byte {
	if vs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, v)
	}
	return append(b, ']')
}

// sortedKeysOf is m's keys in encoding/json's order (byte-wise), in one
// allocation (slices.Sorted(maps.Keys(m)) takes several).
func sortedKeysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"
)

// appendJSON appends the event as encoding/json encodes it with HTML
// escaping off (encodeEvent's form): the same fields in the same order,
// map keys sorted byte-wise, the body compacted. Every HTTP call builds one, and
// encoding/json's reflection over its four maps was a fifth of the
// allocations of a call through the server; FuzzEventJSON holds the two
// encodings equal.
func (ev *httpEvent) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"trigger":`...)
	b = appendJSONString(b, ev.Trigger)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, ev.Method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, ev.Path)
	b = append(b, `,"headers":`...)
	b = appendStringMap(b, ev.Headers)
	b = append(b, `,"query":`...)
	b = appendStringMap(b, ev.Query)
	b = append(b, `,"headers_all":`...)
	b = appendStringsMap(b, ev.HeadersAll)
	b = append(b, `,"query_all":`...)
	b = appendStringsMap(b, ev.QueryAll)
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
		b = appendJSONString(b, ev.BodyEncoding)
	}
	b = append(b, `,"user_id":`...)
	if ev.UserID == nil {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, *ev.UserID)
	}
	b = append(b, `,"role":`...)
	b = appendJSONString(b, ev.Role)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, ev.RequestID)
	return append(b, '}'), nil
}

func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, k := range sortedKeysOf(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

func appendStringsMap(b []byte, m map[string][]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, k := range sortedKeysOf(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		vs := m[k]
		if vs == nil {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '[')
		for j, v := range vs {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, v)
		}
		b = append(b, ']')
	}
	return append(b, '}')
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

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json writes
// it with HTML escaping off: quote, backslash and control characters
// escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029 as \u2028, \u2029.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

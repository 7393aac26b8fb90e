package sqlexec

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/aerodb/aerofn/internal/jsonenc"
)

// Every value crosses the wire in text format, both ways. Results: the text
// form of every type is exact (numeric keeps every digit, floats print the
// shortest form that reads back the same), and the role connections pin the
// settings that shape it (DateStyle ISO, TimeZone UTC, bytea_output hex,
// IntervalStyle postgres), so one small decoder per kind turns it into JSON,
// and a type aerofn does not know still arrives as its text. Parameters: a
// JSON value becomes the text PostgreSQL would read for the parameter's
// described type, so PostgreSQL does the parsing and reports a bad value with
// its own SQLSTATE.

// kind is how a type's text becomes JSON.
type kind uint8

const (
	kText        kind = iota // JSON string of the text
	kInt                     // JSON number
	kFloat                   // JSON number; NaN and ±Infinity as strings
	kNumeric                 // JSON string: no precision lost in a float64
	kBool                    // true / false
	kJSON                    // the JSON itself
	kTimestamptz             // RFC 3339 with Z
	kTimestamp               // RFC 3339 without offset (the value has none)
	kBytea                   // base64
	kArray                   // JSON array of elem
)

// typeInfo says how to read and write one type.
type typeInfo struct {
	kind kind
	elem *typeInfo // for kArray
}

var (
	tText        = &typeInfo{kind: kText}
	tInt         = &typeInfo{kind: kInt}
	tFloat       = &typeInfo{kind: kFloat}
	tNumeric     = &typeInfo{kind: kNumeric}
	tBool        = &typeInfo{kind: kBool}
	tJSON        = &typeInfo{kind: kJSON}
	tTimestamptz = &typeInfo{kind: kTimestamptz}
	tTimestamp   = &typeInfo{kind: kTimestamp}
	tBytea       = &typeInfo{kind: kBytea}
)

func arrayOf(t *typeInfo) *typeInfo { return &typeInfo{kind: kArray, elem: t} }

// builtinTypes covers the types whose text is not already the right JSON
// string; anything else that is not found here is looked up in pg_type once
// (domains, arrays of other types) and otherwise read as text.
var builtinTypes = map[uint32]*typeInfo{
	pgtype.Int2OID: tInt, pgtype.Int4OID: tInt, pgtype.Int8OID: tInt, pgtype.OIDOID: tInt, pgtype.XIDOID: tInt, pgtype.CIDOID: tInt,
	pgtype.Float4OID: tFloat, pgtype.Float8OID: tFloat,
	pgtype.NumericOID: tNumeric,
	pgtype.BoolOID:    tBool,
	pgtype.JSONOID:    tJSON, pgtype.JSONBOID: tJSON,
	pgtype.TimestamptzOID: tTimestamptz, pgtype.TimestampOID: tTimestamp,
	pgtype.ByteaOID: tBytea,
	pgtype.TextOID:  tText, pgtype.VarcharOID: tText, pgtype.BPCharOID: tText, pgtype.NameOID: tText,
	pgtype.UUIDOID: tText, pgtype.DateOID: tText, pgtype.TimeOID: tText, pgtype.TimetzOID: tText,
	pgtype.IntervalOID: tText, pgtype.UnknownOID: tText,

	pgtype.Int2ArrayOID: arrayOf(tInt), pgtype.Int4ArrayOID: arrayOf(tInt), pgtype.Int8ArrayOID: arrayOf(tInt), pgtype.OIDArrayOID: arrayOf(tInt),
	pgtype.Float4ArrayOID: arrayOf(tFloat), pgtype.Float8ArrayOID: arrayOf(tFloat),
	pgtype.NumericArrayOID: arrayOf(tNumeric),
	pgtype.BoolArrayOID:    arrayOf(tBool),
	pgtype.JSONArrayOID:    arrayOf(tJSON), pgtype.JSONBArrayOID: arrayOf(tJSON),
	pgtype.TimestamptzArrayOID: arrayOf(tTimestamptz), pgtype.TimestampArrayOID: arrayOf(tTimestamp),
	pgtype.ByteaArrayOID: arrayOf(tBytea),
	pgtype.TextArrayOID:  arrayOf(tText), pgtype.VarcharArrayOID: arrayOf(tText), pgtype.BPCharArrayOID: arrayOf(tText),
	pgtype.NameArrayOID: arrayOf(tText), pgtype.UUIDArrayOID: arrayOf(tText), pgtype.DateArrayOID: arrayOf(tText),
	pgtype.TimeArrayOID: arrayOf(tText), pgtype.TimetzArrayOID: arrayOf(tText), pgtype.IntervalArrayOID: arrayOf(tText),
}

// typeCache holds what pg_type said about types outside builtinTypes. OIDs
// are stable for the life of a type, which is enough for one process.
type typeCache struct {
	mu sync.RWMutex
	m  map[uint32]*typeInfo
}

func (c *typeCache) get(oid uint32) (*typeInfo, bool) {
	if t, ok := builtinTypes[oid]; ok {
		return t, true
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.m[oid]
	return t, ok
}

func (c *typeCache) put(oid uint32, t *typeInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[uint32]*typeInfo{}
	}
	c.m[oid] = t
}

// pgTypeRow is one row of the pg_type lookup.
type pgTypeRow struct {
	typtype     byte
	typcategory byte
	elem        uint32
	base        uint32
	delim       byte
}

// resolve turns pg_type rows into typeInfo: a domain reads as its base type,
// an array (category A, comma-delimited) as an array of its element, and
// anything else as text. Missing dependencies read as text.
func resolveType(oid uint32, rows map[uint32]pgTypeRow, cache *typeCache, depth int) *typeInfo {
	if t, ok := cache.get(oid); ok {
		return t
	}
	r, ok := rows[oid]
	if !ok || depth > 8 {
		return tText
	}
	switch {
	case r.typtype == 'd' && r.base != 0:
		return resolveType(r.base, rows, cache, depth+1)
	case r.typcategory == 'A' && r.elem != 0 && r.delim == ',':
		return arrayOf(resolveType(r.elem, rows, cache, depth+1))
	}
	return tText
}

// --- results: text → JSON ---

// appendValue appends the JSON for one column value; src nil is NULL.
func appendValue(b []byte, t *typeInfo, src []byte) []byte {
	if src == nil {
		return append(b, "null"...)
	}
	switch t.kind {
	case kInt, kFloat:
		// PostgreSQL prints integers and finite floats as JSON numbers
		// already; anything else (NaN, Infinity) goes out as a string.
		if isJSONNumber(src) {
			return append(b, src...)
		}
	case kNumeric:
	case kBool:
		switch string(src) {
		case "t":
			return append(b, "true"...)
		case "f":
			return append(b, "false"...)
		}
	case kJSON:
		if json.Valid(src) {
			return append(b, src...)
		}
	case kTimestamptz, kTimestamp:
		if s, ok := rfc3339(src, t.kind == kTimestamptz); ok {
			return jsonenc.AppendString(b, s)
		}
	case kBytea:
		if len(src) >= 2 && src[0] == '\\' && src[1] == 'x' {
			raw := make([]byte, hex.DecodedLen(len(src)-2))
			if _, err := hex.Decode(raw, src[2:]); err == nil {
				b = append(b, '"')
				b = base64.StdEncoding.AppendEncode(b, raw)
				return append(b, '"')
			}
		}
	case kArray:
		if out, ok := appendArray(b, t.elem, src); ok {
			return out
		}
	}
	// The text as PostgreSQL printed it: NaN, Infinity, infinity, BC dates,
	// unknown types, and anything a changed setting printed differently.
	return jsonenc.AppendString(b, string(src))
}

// isJSONNumber reports whether s is a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s []byte) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// rfc3339 rewrites PostgreSQL's ISO output ("2024-01-02 03:04:05.123+00") as
// RFC 3339 ("2024-01-02T03:04:05.123Z"); ok is false for forms it does not
// know (infinity, BC, years past 9999), which are passed on as they are.
func rfc3339(src []byte, withZone bool) (string, bool) {
	s := string(src)
	if len(s) < 19 || s[4] != '-' || s[10] != ' ' {
		return "", false
	}
	layout := "2006-01-02 15:04:05.999999"
	if withZone {
		layout += "-07"
		if i := strings.LastIndexAny(s, "+-"); i > 0 && len(s)-i > 3 {
			layout = "2006-01-02 15:04:05.999999-07:00"
			if len(s)-i > 6 {
				layout = "2006-01-02 15:04:05.999999-07:00:00"
			}
		}
	}
	tm, err := time.Parse(layout, s)
	if err != nil {
		return "", false
	}
	if withZone {
		return tm.UTC().Format(time.RFC3339Nano), true
	}
	return tm.Format("2006-01-02T15:04:05.999999999"), true
}

// appendArray parses PostgreSQL's array text form ({a,"b c",NULL,{1,2}}) and
// appends it as a JSON array.
func appendArray(b []byte, elem *typeInfo, src []byte) ([]byte, bool) {
	s := src
	if len(s) > 0 && s[0] == '[' {
		// Explicit bounds ("[0:1]={1,2}") carry nothing JSON can say.
		i := strings.IndexByte(string(s), '=')
		if i < 0 {
			return b, false
		}
		s = s[i+1:]
	}
	p := arrayParser{s: s}
	out, ok := p.parse(b, elem)
	if !ok || p.i != len(p.s) {
		return b, false
	}
	return out, true
}

type arrayParser struct {
	s   []byte
	i   int
	buf []byte
}

func (p *arrayParser) parse(b []byte, elem *typeInfo) ([]byte, bool) {
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return b, false
	}
	p.i++
	b = append(b, '[')
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return append(b, ']'), true
	}
	for n := 0; ; n++ {
		if n > 0 {
			b = append(b, ',')
		}
		if p.i >= len(p.s) {
			return b, false
		}
		switch p.s[p.i] {
		case '{':
			var ok bool
			if b, ok = p.parse(b, elem); !ok {
				return b, false
			}
		case '"':
			p.i++
			p.buf = p.buf[:0]
			for {
				if p.i >= len(p.s) {
					return b, false
				}
				c := p.s[p.i]
				if c == '\\' && p.i+1 < len(p.s) {
					p.buf = append(p.buf, p.s[p.i+1])
					p.i += 2
					continue
				}
				p.i++
				if c == '"' {
					break
				}
				p.buf = append(p.buf, c)
			}
			b = appendValue(b, elem, p.buf)
		default:
			start := p.i
			for p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != '}' {
				p.i++
			}
			v := p.s[start:p.i]
			if strings.EqualFold(string(v), "NULL") {
				b = append(b, "null"...)
			} else {
				b = appendValue(b, elem, v)
			}
		}
		if p.i >= len(p.s) {
			return b, false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return append(b, ']'), true
		default:
			return b, false
		}
	}
}

// --- parameters: JSON → text ---

// encodeParam returns the text PostgreSQL reads as a value of type t for v
// (a value decoded from JSON with UseNumber, or a plain Go value); nil is
// NULL.
func encodeParam(t *typeInfo, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	if t.kind == kJSON {
		// A json/jsonb parameter takes the JSON value itself: an object, an
		// array, a number, a string (as a JSON string) alike.
		return json.Marshal(v)
	}
	switch x := v.(type) {
	case []any:
		if t.kind != kArray {
			return json.Marshal(x)
		}
		var b []byte
		return appendArrayLiteral(b, t.elem, x)
	case map[string]any:
		return json.Marshal(x)
	}
	s, err := scalarText(t, v)
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

func scalarText(t *typeInfo, v any) (string, error) {
	switch x := v.(type) {
	case string:
		if t.kind == kBytea {
			return byteaText(x)
		}
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case []byte:
		return `\x` + hex.EncodeToString(x), nil
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case []any, map[string]any:
		b, err := json.Marshal(x)
		return string(b), err
	}
	return "", fmt.Errorf("a %T cannot be a parameter", v)
}

// byteaText reads a bytea parameter: base64 (what results carry), or
// PostgreSQL's own \x hex form.
func byteaText(s string) (string, error) {
	if strings.HasPrefix(s, `\x`) {
		return s, nil
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("a bytea parameter must be base64 or \\x hex: %v", err)
	}
	return `\x` + hex.EncodeToString(raw), nil
}

// appendArrayLiteral writes xs as an array literal ({"a","b",NULL}), every
// element quoted so that no element text can be mistaken for syntax.
func appendArrayLiteral(b []byte, elem *typeInfo, xs []any) ([]byte, error) {
	b = append(b, '{')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		if x == nil {
			b = append(b, "NULL"...)
			continue
		}
		if sub, ok := x.([]any); ok {
			var err error
			if b, err = appendArrayLiteral(b, elem, sub); err != nil {
				return nil, err
			}
			continue
		}
		var s string
		if elem.kind == kJSON {
			j, err := json.Marshal(x)
			if err != nil {
				return nil, err
			}
			s = string(j)
		} else {
			var err error
			if s, err = scalarText(elem, x); err != nil {
				return nil, err
			}
		}
		b = append(b, '"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b = append(b, '\\')
			}
			b = append(b, s[j])
		}
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

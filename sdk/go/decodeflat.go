package aerofn

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Decoding a request body into a flat struct without encoding/json.
//
// A handler's body is most often a small object decoded into a struct of
// strings, numbers and booleans (hello's {"name": "World"}), and
// encoding/json spent as long on that as the SDK spends reading the whole
// event: it scans the body twice (checkValid, then the decode) and sets
// each field through its reflection machinery. decodeFlat does that one
// case with the event's scanner, and gives up (ok false, v untouched) on
// anything else, which encoding/json then decodes as before: only when
// every member of the object maps onto a field exactly as encoding/json
// would map it and every value converts without error does it set v, so a
// body that encoding/json would refuse, or decode only in part, goes to
// encoding/json and fails or succeeds as it always did.
// TestDecodeFlatLikeEncodingJSON and FuzzDecodeFlat check that against
// encoding/json.

// flatPlan is how a struct type's fields take an object's members; nil
// when the type is not flat (decodeFlat then gives up).
type flatPlan struct {
	names []string // the JSON name of each settable field
	index []int    // its index in the struct
	kinds []reflect.Kind
}

// flatDecodes counts the bodies DecodeBody decoded with decodeFlat (for
// tests). Atomic: a function's own tests may call handlers in parallel.
var flatDecodes atomic.Int64

var flatPlans sync.Map // reflect.Type → *flatPlan (nil: not flat)

var (
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonNumberType      = reflect.TypeFor[json.Number]() // a string that takes a number
)

// planOf returns t's plan, building it on first use (Prepare builds it in
// init for the types it is given).
func planOf(t reflect.Type) *flatPlan {
	if p, ok := flatPlans.Load(t); ok {
		return p.(*flatPlan)
	}
	p := buildPlan(t)
	flatPlans.Store(t, p)
	return p
}

// buildPlan: a struct whose every field encoding/json would look at is an
// exported, non-embedded field of kind string, bool, integer or float,
// none with its own way of decoding (Unmarshaler, TextUnmarshaler,
// json.Number) nor the ",string" option, with distinct names made only of letters, digits, '_'
// and '-'. Any other struct is not flat.
func buildPlan(t reflect.Type) *flatPlan {
	if t.Kind() != reflect.Struct || unmarshals(t) {
		return nil
	}
	p := &flatPlan{}
	seen := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return nil // embedded fields follow rules of their own
		}
		if !f.IsExported() {
			continue // never set by encoding/json
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		if !plainName(name) || seen[name] || hasOption(opts, "string") || unmarshals(f.Type) || f.Type == jsonNumberType {
			return nil
		}
		switch k := f.Type.Kind(); k {
		case reflect.String, reflect.Bool,
			reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
			reflect.Float32, reflect.Float64:
			seen[name] = true
			p.names = append(p.names, name)
			p.index = append(p.index, i)
			p.kinds = append(p.kinds, k)
		default:
			return nil
		}
	}
	return p
}

func unmarshals(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Implements(jsonUnmarshalerType) || pt.Implements(jsonUnmarshalerType) ||
		t.Implements(textUnmarshalerType) || pt.Implements(textUnmarshalerType)
}

func plainName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// flatSet is one member's value, ready to be set.
type flatSet struct {
	field int // index into the plan
	s     string
	b     bool
	i     int64
	u     uint64
	f     float64
}

// decodeFlat decodes the JSON object raw into v, a pointer to a flat
// struct, as json.Unmarshal would with a nil error, and reports true; or
// it reports false and has not touched v.
func decodeFlat(raw []byte, v any) bool {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false
	}
	p := planOf(rv.Type().Elem())
	if p == nil {
		return false
	}
	if i := skipSpace(raw, 0); i >= len(raw) || raw[i] != '{' {
		return false
	}
	var buf [8]flatSet
	sets := buf[:0]
	gaveUp := false
	err := eachMember(raw, func(key string, val []byte) error {
		if gaveUp {
			return nil
		}
		if (val[0] == '{' || val[0] == '[') && len(val) >= 2*maxNesting {
			// It may nest deeper than encoding/json accepts, which the
			// scanner does not check.
			gaveUp = true
			return nil
		}
		field := -1
		for j, name := range p.names {
			if name == key {
				field = j
				break
			}
		}
		if field < 0 {
			for _, name := range p.names {
				if strings.EqualFold(name, key) {
					gaveUp = true // encoding/json matches it case-insensitively
					return nil
				}
			}
			return nil // no such field: ignored, as encoding/json does
		}
		if val[0] == 'n' {
			return nil // null leaves a field of these kinds as it is
		}
		s, ok := flatValue(p.kinds[field], rv.Elem().Field(p.index[field]).Type(), val)
		if !ok {
			gaveUp = true
			return nil
		}
		s.field = field
		sets = append(sets, s)
		return nil
	})
	if err != nil || gaveUp {
		return false
	}
	st := rv.Elem()
	for _, s := range sets {
		f := st.Field(p.index[s.field])
		switch p.kinds[s.field] {
		case reflect.String:
			f.SetString(s.s)
		case reflect.Bool:
			f.SetBool(s.b)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			f.SetInt(s.i)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			f.SetUint(s.u)
		default:
			f.SetFloat(s.f)
		}
	}
	return true
}

// flatValue converts val, a JSON value the scanner accepted (not null),
// for a field of kind k and type t, with encoding/json's conversions; false
// where encoding/json would report an error.
func flatValue(k reflect.Kind, t reflect.Type, val []byte) (flatSet, bool) {
	var s flatSet
	switch k {
	case reflect.String:
		if val[0] != '"' {
			return s, false
		}
		s.s = unquote(val)
	case reflect.Bool:
		switch string(val) {
		case "true":
			s.b = true
		case "false":
		default:
			return s, false
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if !isNumber(val[0]) {
			return s, false
		}
		n, err := strconv.ParseInt(string(val), 10, 64)
		if err != nil || reflect.Zero(t).OverflowInt(n) {
			return s, false
		}
		s.i = n
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if !isNumber(val[0]) {
			return s, false
		}
		n, err := strconv.ParseUint(string(val), 10, 64)
		if err != nil || reflect.Zero(t).OverflowUint(n) {
			return s, false
		}
		s.u = n
	default: // float32, float64
		if !isNumber(val[0]) {
			return s, false
		}
		n, err := strconv.ParseFloat(string(val), t.Bits())
		if err != nil || reflect.Zero(t).OverflowFloat(n) {
			return s, false
		}
		s.f = n
	}
	return s, true
}

// maxNesting is encoding/json's limit on nested objects and arrays, the
// body's own object included: a member's value nests at most
// maxNesting-1 deep when it is shorter than 2*maxNesting bytes.
const maxNesting = 10000

func isNumber(c byte) bool { return c == '-' || '0' <= c && c <= '9' }

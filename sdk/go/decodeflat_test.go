package aerofn

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
)

type flatAll struct {
	Name    string  `json:"name"`
	Age     int     `json:"age"`
	OK      bool    // no tag: the field's name
	Score   float64 `json:"score,omitempty"`
	U8      uint8   `json:"u8"`
	F32     float32 `json:"f32"`
	I8      int8    `json:"i8"`
	U       uint    `json:"u"`
	Skipped string  `json:"-"`
	Dash    string  `json:"-,"`
	Upper   string  `json:"Name2"`
	Lower   string  `json:"name2"`
	hidden  int     // never set by encoding/json
}

type withNumber struct {
	N json.Number `json:"n"`
}

type withEmbedded struct {
	flatAll
	X string `json:"x"`
}

type withStringOpt struct {
	N int `json:"n,string"`
}

type upper string

func (u *upper) UnmarshalJSON(b []byte) error { *u = upper(strings.ToUpper(string(b))); return nil }

type withUnmarshaler struct {
	U upper `json:"u"`
}

type withNested struct {
	Tags []string `json:"tags"`
}

// The bodies every type is decoded from: what a client may send.
var flatBodies = []string{
	`{"name":"World"}`, `{"name":"Ada","age":36,"OK":true,"score":9.5,"u8":255,"f32":1.5,"i8":-128,"u":7}`,
	` { "name" : "x" , "age" : 1 } `, `{}`, `{"name":null,"age":null,"OK":null}`, `{"name":"a","name":"b"}`,
	`{"other":{"deep":[1,2,{"x":null}]},"name":"k"}`, `{"NAME":"fold"}`, `{"Ok":true}`, `{"ok":false}`,
	`{"age":1.0}`, `{"age":1e2}`, `{"age":"5"}`, `{"age":99999999999999999999}`, `{"i8":128}`, `{"u8":256}`,
	`{"u":-1}`, `{"f32":1e39}`, `{"score":1e400}`, `{"score":-0}`, `{"name":5}`, `{"name":true}`, `{"OK":"true"}`,
	`{"OK":1}`, `{"name":["a"]}`, `{"name":{"a":1}}`, `{"name":"a\u00e9\ud83d\ude00\ud800x\\\"\/\b\f\n\r\t"}`,
	"{\"name\":\"bad \xff utf8\"}", "{\"n\xffme\":\"k\"}", `{"Skipped":"no"}`, `{"-":"dash"}`, `{"Name2":"U","name2":"l"}`,
	`{"NAME2":"which"}`, `{"name":"a"} x`, `{"name":"a",}`, `{"name" "a"}`, `{"name":"a"`, `["name"]`, `"text"`,
	`42`, `null`, ``, ` `, `{"name":"\u0000"}`, `{"name":"a","age":2,"extra":1}`, `{"n":"12"}`, `{"n":12}`,
	`{"n":"x"}`, `{"u":"abc"}`, `{"x":"y","name":"z"}`, `{"tags":["a","b"]}`, `{"a":"1"}`, `{"hidden":5}`,
	`{"age":-0}`, `{"age":01}`, `{"age":-}`, `{"score":1.5e+3}`, `{"name":"\ud800"}`, `{"name":"\uDFFF\uD800"}`,
}

// newFlatTargets returns fresh values of every test type, fields set to
// something other than their zero value so that what a decode leaves
// alone shows.
func newFlatTargets() []any {
	return []any{
		&flatAll{Name: "pre", Age: -3, OK: true, Score: 2, U8: 1, F32: 3, I8: 4, U: 5, Skipped: "s", Dash: "d", Upper: "u", Lower: "l", hidden: 9},
		&withNumber{N: "7"}, &withEmbedded{X: "x"}, &withStringOpt{N: 3}, &withUnmarshaler{U: "p"},
		&withNested{Tags: []string{"t"}},
	}
}

// checkFlat decodes body into a fresh value of each type both ways: where
// decodeFlat reports success, json.Unmarshal must succeed with the same
// value; where it does not, it must have left the value untouched.
func checkFlat(t *testing.T, body []byte) (fast int) {
	t.Helper()
	want, got, orig := newFlatTargets(), newFlatTargets(), newFlatTargets()
	for i := range want {
		err := json.Unmarshal(body, want[i])
		if decodeFlat(body, got[i]) {
			fast++
			if err != nil {
				t.Fatalf("%T from %.200q: decodeFlat succeeded, encoding/json failed: %v", got[i], body, err)
			}
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("%T from %.200q: decodeFlat %+v, encoding/json %+v", got[i], body, got[i], want[i])
			}
		} else if !reflect.DeepEqual(got[i], orig[i]) {
			t.Fatalf("%T from %.200q: decodeFlat gave up but changed the value: %+v", got[i], body, got[i])
		}
	}
	return fast
}

// decodeFlat decodes exactly what encoding/json does, or nothing: over
// bodies of every kind a client may send, including ones encoding/json
// refuses or decodes only in part, into flat structs and the types it
// leaves to encoding/json.
func TestDecodeFlatLikeEncodingJSON(t *testing.T) {
	fast := 0
	for _, b := range flatBodies {
		fast += checkFlat(t, []byte(b))
	}
	// Nesting as deep as encoding/json accepts, and one level deeper.
	for _, n := range []int{maxNesting - 1, maxNesting} {
		checkFlat(t, []byte(`{"name":"deep","other":`+strings.Repeat("[", n)+strings.Repeat("]", n)+`}`))
	}
	// Only flatAll is flat, and most bodies suit it.
	if fast < 20 {
		t.Fatalf("decodeFlat decoded %d of the bodies: the fast path is not being taken", fast)
	}
	for _, v := range newFlatTargets()[1:] {
		if p := planOf(reflect.TypeOf(v).Elem()); p != nil {
			t.Errorf("%T has a flat plan; encoding/json decodes it by rules decodeFlat does not follow", v)
		}
	}
}

// DecodeBody takes the fast path for hello's request and gets what
// encoding/json gets, and a text body still decodes from its text.
func TestDecodeBodyFlat(t *testing.T) {
	type request struct {
		Name string `json:"name"`
	}
	var in request
	if !decodeFlat([]byte(`{"name":"World"}`), &in) || in.Name != "World" {
		t.Fatalf("decodeFlat(hello's body) = %+v", in)
	}
	ev := Event{Body: json.RawMessage(`{"name":"Ada"}`)}
	in = request{}
	before := flatDecodes.Load()
	if err := ev.DecodeBody(&in); err != nil || in.Name != "Ada" {
		t.Fatalf("DecodeBody = %+v, %v", in, err)
	}
	if flatDecodes.Load() != before+1 {
		t.Fatal("DecodeBody did not decode hello's body with decodeFlat")
	}
	ev = Event{Body: json.RawMessage(`"{\"name\":\"Text\"}"`)}
	in = request{}
	if err := ev.DecodeBody(&in); err != nil || in.Name != "Text" {
		t.Fatalf("DecodeBody(text body) = %+v, %v", in, err)
	}
	ev = Event{Body: json.RawMessage(`{"name":5}`)}
	if err := ev.DecodeBody(&in); err == nil {
		t.Fatal("DecodeBody of a number into a string field succeeded")
	}
}

func FuzzDecodeFlat(f *testing.F) {
	for _, b := range flatBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFlat(t, body)
	})
}

// Handlers may decode bodies on several goroutines at once (a function's
// tests run in parallel): DecodeBody's fast path shares nothing unguarded
// (run with -race, as make test does).
func TestDecodeBodyConcurrent(t *testing.T) {
	type request struct {
		Name string `json:"name"`
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				var in request
				ev := Event{Body: json.RawMessage(`{"name":"Ada"}`)}
				if err := ev.DecodeBody(&in); err != nil || in.Name != "Ada" {
					t.Errorf("DecodeBody = %+v, %v", in, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

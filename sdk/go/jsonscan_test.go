package aerofn

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// eventSeeds are events as the host sends them, and some it must not.
var eventSeeds = []string{
	`{"trigger":"http","method":"POST","path":"/functions/v1/hello","headers":{"content-type":"application/json","x-multi":["a","b"]},"query":{"page":"2","n":3},"body":{"name":"World"},"user_id":"u-1","request_id":"req-9"}`,
	`{"trigger":"http","method":"POST","path":"/","headers":{},"query":{},"body":"AAH/","body_encoding":"base64","user_id":null,"role":"anon","request_id":"r"}`,
	`{"trigger":"database","schema":"public","table":"orders","operation":"INSERT","old":null,"new":{"id":9007199254740993,"quantity":2},"event_id":42,"timestamp":"2026-02-06T09:00:00.5Z","attempt":2,"txid":"771","user_id":"u","role":"authenticated"}`,
	`{"trigger":"schedule","cron":"0 3 * * *","scheduled_time":1770368400,"actual_time":1770368400250.5}`,
	`{"trigger":"webhook","headers":{"stripe-signature":"t=1"},"body":{"type":"x","data":[1,2.5e-3,-0,true,false,null,{},[]]},"delivery_id":"d-1"}`,
	` { "method" : "caf\u00e9 \ud83d\ude00 \ud800 \"q\" \\ \/ \b\f\n\r\t" , "path": "\xff\xfe ok" } `,
	`{"method":"a","method":null,"body":{"x":1},"body":null}`,
	`{"Trigger":"http"}`,
	`null`, `{}`, `[]`, `"x"`, `1`, ``, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":[1,]}`,
	`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":tru}`, `{"a":"\x01"}`, `{"a":"\u12"}`,
	`{"a":"\q"}`, `{"a":1} x`, `{"headers":"x"}`, `{"headers":{"a":{"b":[1]}}}`, `{"query":null}`,
	`{"user_id":{}}`, `{"timestamp":"yesterday"}`, `{"timestamp":true}`, `{"body_encoding":1}`,
	`{"attempt":1.5}`, `{"attempt":"1"}`, `{"attempt":99999999999999999999}`, `{"attempt":-0}`, `{"attempt":null}`,
	`{"trigger":5}`, `{"event_id":-1.5e3}`,
}

// eventFromWire is what decoding into eventWire with encoding/json gives:
// the reference the scanner must agree with.
func eventFromWire(w eventWire, raw []byte) Event {
	return Event{
		Raw: raw, Trigger: w.Trigger, Method: w.Method, Path: w.Path,
		Headers: w.Headers, Query: w.Query, Body: nullToNil(w.Body), BodyEncoding: w.BodyEncoding,
		RequestID: string(w.RequestID), UserID: string(w.UserID), Role: w.Role,
		Schema: w.Schema, Table: w.Table, Operation: w.Operation, Old: nullToNil(w.Old), New: nullToNil(w.New),
		EventID: string(w.EventID), Attempt: w.Attempt, Timestamp: w.Timestamp.Time, Cron: w.Cron,
		ScheduledTime: w.ScheduledTime.Time, ActualTime: w.ActualTime.Time,
		DeliveryID: string(w.DeliveryID),
	}
}

var eventKeys = []string{"trigger", "method", "path", "headers", "query", "body", "body_encoding",
	"request_id", "user_id", "role", "schema", "table", "operation", "old", "new", "event_id", "attempt", "timestamp", "cron",
	"scheduled_time", "actual_time", "delivery_id"}

// foldsOntoKey reports whether data has a top-level key that encoding/json
// would match to a field case-insensitively. The scanner matches exactly,
// since the host sends lower-case names, so such inputs are not compared.
func foldsOntoKey(data []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return false
	}
	for k := range m {
		for _, known := range eventKeys {
			if k != known && strings.EqualFold(k, known) {
				return true
			}
		}
	}
	return false
}

func FuzzDecodeEvent(f *testing.F) {
	for _, s := range eventSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got Event
		gotErr := got.decode(bytes.Clone(data))

		var w eventWire
		wantErr := json.Unmarshal(data, &w)
		if foldsOntoKey(data) {
			return
		}
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: scanner error %v, encoding/json error %v", data, gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		want := eventFromWire(w, data)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\nscanner       %+v\nencoding/json %+v", data, got, want)
		}
	})
}

func TestSkipValueDeepNesting(t *testing.T) {
	// Far deeper than any stack-recursive decoder would survive in 512 KiB.
	const depth = 1 << 20
	deep := strings.Repeat("[", depth) + strings.Repeat("]", depth)
	var ev Event
	if err := ev.decode([]byte(`{"body":` + deep + `}`)); err != nil {
		t.Fatal(err)
	}
	if len(ev.Body) != 2*depth {
		t.Errorf("body is %d bytes, want %d", len(ev.Body), 2*depth)
	}
	if err := ev.decode([]byte(`{"body":` + deep[:len(deep)-1] + `}`)); err == nil {
		t.Error("unbalanced nesting decoded")
	}
}

func TestUnquote(t *testing.T) {
	for _, tok := range []string{`""`, `"plain"`, `"caf\u00e9"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ud83d\u0041"`,
		`"\udc00\ud83d"`, "\"\xff\"", "\"\xed\xa0\x80\"", `"\"\\\/\b\f\n\r\t"`, "\"é\""} {
		var want string
		if err := json.Unmarshal([]byte(tok), &want); err != nil {
			t.Fatalf("%s: %v", tok, err)
		}
		if got := unquote([]byte(tok)); got != want {
			t.Errorf("unquote(%s) = %q, want %q", tok, got, want)
		}
	}
}

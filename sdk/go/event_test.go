package aerofn

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func decodeEvent(t *testing.T, s string) Event {
	t.Helper()
	var ev Event
	if err := json.Unmarshal([]byte(s), &ev); err != nil {
		t.Fatalf("decoding event: %v", err)
	}
	return ev
}

func TestEventHTTP(t *testing.T) {
	const in = `{"trigger":"http","method":"POST","path":"/functions/v1/hello",
		"headers":{"content-type":"application/json","x-multi":["a","b"]},
		"query":{"page":"2","tag":["x","y"],"n":3},
		"body":{"name":"Ada"},"user_id":"u-1","role":"authenticated","request_id":"req-9"}`
	ev := decodeEvent(t, in)

	if ev.Trigger != TriggerHTTP || ev.Method != "POST" || ev.Path != "/functions/v1/hello" {
		t.Errorf("trigger, method, path = %q %q %q", ev.Trigger, ev.Method, ev.Path)
	}
	if ev.UserID != "u-1" || ev.Role != "authenticated" || ev.RequestID != "req-9" {
		t.Errorf("user, role, request = %q %q %q", ev.UserID, ev.Role, ev.RequestID)
	}
	if got := ev.Header("Content-Type"); got != "application/json" {
		t.Errorf("Header(Content-Type) = %q", got)
	}
	if got := ev.Headers["x-multi"]; len(got) != 2 || got[1] != "b" {
		t.Errorf("x-multi = %q", got)
	}
	if ev.Query.Get("page") != "2" || ev.Query.Get("n") != "3" || ev.Query["tag"][1] != "y" || ev.Query.Get("none") != "" {
		t.Errorf("query = %v", ev.Query)
	}
	var body struct{ Name string }
	if err := ev.DecodeBody(&body); err != nil || body.Name != "Ada" {
		t.Errorf("DecodeBody = %+v, %v", body, err)
	}
	if string(ev.Raw) != in {
		t.Errorf("Raw is not the event as sent")
	}
}

func TestEventTextBody(t *testing.T) {
	// A JSON payload posted without a JSON content type arrives as text.
	ev := decodeEvent(t, `{"trigger":"http","body":"{\"name\":\"Ada\"}"}`)
	var body struct{ Name string }
	if err := ev.DecodeBody(&body); err != nil || body.Name != "Ada" {
		t.Errorf("DecodeBody(struct) = %+v, %v", body, err)
	}
	var text string
	if err := ev.DecodeBody(&text); err != nil || text != `{"name":"Ada"}` {
		t.Errorf("DecodeBody(string) = %q, %v", text, err)
	}
	b, err := ev.BodyBytes()
	if err != nil || string(b) != `{"name":"Ada"}` {
		t.Errorf("BodyBytes = %q, %v", b, err)
	}

	ev = decodeEvent(t, `{"trigger":"http","body":"not json"}`)
	if err := ev.DecodeBody(&body); err == nil {
		t.Error("DecodeBody of plain text into a struct succeeded")
	}
}

func TestEventBinaryBody(t *testing.T) {
	ev := decodeEvent(t, `{"trigger":"http","body":"AAH/","body_encoding":"base64"}`)
	b, err := ev.BodyBytes()
	if err != nil || string(b) != "\x00\x01\xff" {
		t.Errorf("BodyBytes = %q, %v", b, err)
	}
}

func TestEventNoBody(t *testing.T) {
	for _, in := range []string{`{"trigger":"http"}`, `{"trigger":"http","body":null}`} {
		ev := decodeEvent(t, in)
		body := struct{ Name string }{"default"}
		if err := ev.DecodeBody(&body); err != nil || body.Name != "default" {
			t.Errorf("%s: DecodeBody = %+v, %v; want v unchanged", in, body, err)
		}
		if b, err := ev.BodyBytes(); b != nil || err != nil {
			t.Errorf("%s: BodyBytes = %q, %v", in, b, err)
		}
	}
}

func TestEventDatabase(t *testing.T) {
	ev := decodeEvent(t, `{"trigger":"database","schema":"public","table":"orders","operation":"INSERT",
		"old":null,"new":{"id":9007199254740993,"quantity":2},"event_id":42,
		"timestamp":"2026-02-06T09:00:00.5Z","attempt":3,"txid":"771","user_id":"u-2","role":"authenticated"}`)
	if ev.Trigger != TriggerDatabase || ev.Schema != "public" || ev.Table != "orders" || ev.Operation != Insert {
		t.Errorf("trigger, schema, table, operation = %q %q %q %q", ev.Trigger, ev.Schema, ev.Table, ev.Operation)
	}
	if ev.Attempt != 3 || ev.UserID != "u-2" || ev.Role != "authenticated" {
		t.Errorf("attempt, user, role = %d %q %q", ev.Attempt, ev.UserID, ev.Role)
	}
	if ev.Old != nil {
		t.Errorf("Old = %s, want nil for null", ev.Old)
	}
	if ev.EventID != "42" {
		t.Errorf("EventID = %q, want a numeric id as text", ev.EventID)
	}
	if want := time.Date(2026, 2, 6, 9, 0, 0, 5e8, time.UTC); !ev.Timestamp.Equal(want) {
		t.Errorf("Timestamp = %v", ev.Timestamp)
	}
	var row struct {
		ID       int64
		Quantity int
	}
	if err := ev.DecodeNew(&row); err != nil || row.ID != 9007199254740993 || row.Quantity != 2 {
		t.Errorf("DecodeNew = %+v, %v", row, err)
	}
	row.ID = 7
	if err := ev.DecodeOld(&row); err != nil || row.ID != 7 {
		t.Errorf("DecodeOld of null = %+v, %v; want v unchanged", row, err)
	}
}

func TestEventScheduleTimes(t *testing.T) {
	ev := decodeEvent(t, `{"trigger":"schedule","cron":"0 3 * * *","scheduled_time":1770368400,"actual_time":1770368400250}`)
	if ev.Cron != "0 3 * * *" {
		t.Errorf("Cron = %q", ev.Cron)
	}
	if want := time.Unix(1770368400, 0); !ev.ScheduledTime.Equal(want) {
		t.Errorf("ScheduledTime = %v, want %v (seconds)", ev.ScheduledTime, want)
	}
	if want := time.UnixMilli(1770368400250); !ev.ActualTime.Equal(want) {
		t.Errorf("ActualTime = %v, want %v (milliseconds)", ev.ActualTime, want)
	}
}

func TestEventWebhook(t *testing.T) {
	ev := decodeEvent(t, `{"trigger":"webhook","headers":{"stripe-signature":"t=1"},
		"body":{"type":"payment_intent.succeeded"},"timestamp":"2026-02-06T09:00:00Z","delivery_id":"d-1"}`)
	if ev.Trigger != TriggerWebhook || ev.DeliveryID != "d-1" || ev.Header("Stripe-Signature") != "t=1" {
		t.Errorf("event = %+v", ev)
	}
	var custom struct {
		Body struct{ Type string }
	}
	if err := ev.Decode(&custom); err != nil || custom.Body.Type != "payment_intent.succeeded" {
		t.Errorf("Decode = %+v, %v", custom, err)
	}
}

func TestEventRejectsBadShapes(t *testing.T) {
	for _, in := range []string{
		`[]`,
		`{"user_id":{}}`,
		`{"timestamp":"yesterday"}`,
		`{"headers":"x"}`,
	} {
		var ev Event
		if err := json.Unmarshal([]byte(in), &ev); err == nil {
			t.Errorf("%s decoded without error", in)
		}
	}
}

func TestEventMarshal(t *testing.T) {
	const in = `{"trigger":"http","body":{"a":1},"unmodelled":[1,2]}`
	b, err := json.Marshal(decodeEvent(t, in))
	if err != nil || string(b) != in {
		t.Errorf("Marshal = %s, %v; want Raw", b, err)
	}

	built := Event{Trigger: TriggerDatabase, Table: "users", Operation: Delete, EventID: "7",
		Old: json.RawMessage(`{"id":1}`), Query: Values{"a": {"1"}, "b": {"2", "3"}}}
	b, err = json.Marshal(built)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"trigger":"database","query":{"a":"1","b":["2","3"]},"table":"users","operation":"DELETE","old":{"id":1},"event_id":"7"}`
	if string(b) != want {
		t.Errorf("Marshal = %s\nwant      %s", b, want)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil || back.Table != "users" || back.Query.Get("b") != "2" {
		t.Errorf("round trip = %+v, %v", back, err)
	}
}

func TestEventRepeatedValues(t *testing.T) {
	for _, in := range []string{
		`{"trigger":"http","headers":{"cookie":"a"},"headers_all":{"cookie":["a","b"]},"query":{"x":"1"},"query_all":{"x":["1","2"]}}`,
		`{"trigger":"http","headers_all":{"cookie":["a","b"]},"query_all":{"x":["1","2"]},"headers":{"cookie":"a"},"query":{"x":"1"}}`,
	} {
		var ev Event
		if err := json.Unmarshal([]byte(in), &ev); err != nil {
			t.Fatal(err)
		}
		if len(ev.Headers["cookie"]) != 2 || ev.Header("cookie") != "a" || len(ev.Query["x"]) != 2 || ev.Query.Get("x") != "1" {
			t.Errorf("%s: headers %v query %v", in, ev.Headers, ev.Query)
		}
	}
	var ev Event
	if err := json.Unmarshal([]byte(`{"trigger":"http","headers":{"a":"b"},"query":{"x":"1"}}`), &ev); err != nil || ev.Header("a") != "b" || ev.Query.Get("x") != "1" {
		t.Errorf("without the lists: %+v %v", ev, err)
	}
}

// serverEvent is an event as internal/httpapi builds it for a POST: every
// header and parameter twice, first values and all values.
const serverEvent = `{"trigger":"http","method":"POST","path":"/hello","headers":{"accept":"*/*","content-length":"16","content-type":"application/json","user-agent":"wrk"},"query":{},"headers_all":{"accept":["*/*"],"content-length":["16"],"content-type":["application/json"],"user-agent":["wrk"]},"query_all":{},"body":{"name":"World"},"user_id":null,"role":"anon","request_id":"0192a3b4-c5d6-7e8f-9012-3456789abcde"}`

// valuesTwice decodes headers and query the way the SDK did before it
// decoded only the winning member: every member as it comes.
func valuesTwice(data []byte) (headers, query Values, err error) {
	err = eachMember(data, func(key string, raw []byte) error {
		var err error
		switch key {
		case "headers":
			if headers == nil {
				headers, err = decodeValues(raw)
			}
		case "query":
			if query == nil {
				query, err = decodeValues(raw)
			}
		case "headers_all":
			var v Values
			if v, err = decodeValues(raw); err == nil && v != nil {
				headers = v
			}
		case "query_all":
			var v Values
			if v, err = decodeValues(raw); err == nil && v != nil {
				query = v
			}
		}
		return err
	})
	return headers, query, err
}

// Decoding only the member that wins gives the maps and the failures that
// decoding every member did, in every order and shape; and it allocates
// less for the event the server sends.
func TestEventValuesOnce(t *testing.T) {
	shapes := []string{`{"a":"1"}`, `{"a":["1","2"]}`, `{}`, `null`, `"x"`, `[1]`, `3`}
	for _, k1 := range []string{"headers", "headers_all", "query", "query_all"} {
		for _, k2 := range []string{"headers", "headers_all", "query", "query_all"} {
			for _, v1 := range shapes {
				for _, v2 := range shapes {
					in := []byte(`{"` + k1 + `":` + v1 + `,"` + k2 + `":` + v2 + `}`)
					var ev Event
					err := ev.decode(bytes.Clone(in))
					h, q, wantErr := valuesTwice(in)
					if (err == nil) != (wantErr == nil) {
						t.Fatalf("%s: error %v, decoding every member %v", in, err, wantErr)
					}
					if err == nil && (!reflect.DeepEqual(ev.Headers, h) || !reflect.DeepEqual(ev.Query, q)) {
						t.Fatalf("%s: headers %v query %v, decoding every member %v %v", in, ev.Headers, ev.Query, h, q)
					}
				}
			}
		}
	}

	// The first-values members cost nothing to decode when the lists
	// follow them, beyond their two keys' strings (eachMember makes one
	// for every key).
	full := []byte(serverEvent)
	lists := []byte(`{"trigger":"http","method":"POST","path":"/hello","headers_all":{"accept":["*/*"],"content-length":["16"],"content-type":["application/json"],"user-agent":["wrk"]},"query_all":{},"body":{"name":"World"},"user_id":null,"role":"anon","request_id":"0192a3b4-c5d6-7e8f-9012-3456789abcde"}`)
	var ev Event
	got := testing.AllocsPerRun(100, func() { ev.decode(full) })
	want := testing.AllocsPerRun(100, func() { ev.decode(lists) })
	if got > want+2 {
		t.Errorf("decoding the server's event: %.0f allocations, without its first-values members %.0f", got, want)
	}
	ev.decode(full)
	if len(ev.Headers["user-agent"]) != 1 || ev.Query == nil {
		t.Errorf("headers %v query %v", ev.Headers, ev.Query)
	}
}

// Decoding the event the server sends allocates for its values, not for
// the names of its members and headers nor a slice per header: every
// allocation is guest time in each call (19 here, 21 with -race; 35-36
// with interned names and one array for the values undone).
func TestEventDecodeAllocs(t *testing.T) {
	data := []byte(serverEvent)
	var ev Event
	if n := testing.AllocsPerRun(100, func() { ev.decode(data) }); n > 25 {
		t.Errorf("decoding the server's event: %.0f allocations, want at most 25", n)
	}
	if got := ev.Headers["content-type"]; len(got) != 1 || got[0] != "application/json" {
		t.Errorf("content-type %q", got)
	}
	// A window of the shared array cannot be appended into its neighbour.
	ev.Headers["accept"] = append(ev.Headers["accept"], "x")
	if got := ev.Headers["content-length"]; len(got) != 1 || got[0] != "16" {
		t.Errorf("content-length %q after an append to accept", got)
	}
}

package aerofn

import (
	"encoding/json"
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

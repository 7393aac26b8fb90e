package aerofn

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Trigger names what started a call.
type Trigger string

const (
	TriggerHTTP     Trigger = "http"
	TriggerDatabase Trigger = "database"
	TriggerSchedule Trigger = "schedule"
	TriggerWebhook  Trigger = "webhook"
)

// Operation is the kind of row change behind a database event.
type Operation string

const (
	Insert Operation = "INSERT"
	Update Operation = "UPDATE"
	Delete Operation = "DELETE"
)

// Event is what one call is about. Which fields are set depends on Trigger;
// the others are zero. Raw keeps the event exactly as the host sent it, so a
// function can read fields this type does not model (see [Event.Decode]) or
// pass the event on unchanged.
type Event struct {
	Raw     json.RawMessage
	Trigger Trigger

	// HTTP calls (Headers and Body also for webhooks). Header names are
	// lower-case; Headers and Query hold every value of a repeated header
	// or parameter (Get returns the first). Body is the request body as JSON: the parsed document
	// for a JSON request, a JSON string otherwise, base64 text when the
	// body was binary (BodyEncoding "base64"). Use [Event.DecodeBody] or
	// [Event.BodyBytes] rather than reading it.
	Method       string
	Path         string
	Headers      Values
	Query        Values
	Body         json.RawMessage
	BodyEncoding string
	RequestID    string

	// Who the call acts for: the user id (JWT sub, empty when anonymous)
	// and the database role (anon, authenticated, service_role).
	UserID string
	Role   string

	// Database triggers. Old is null for INSERT, New for DELETE.
	Schema    string
	Table     string
	Operation Operation
	Old       json.RawMessage
	New       json.RawMessage
	EventID   string // the same on every redelivery: an idempotency key
	Attempt   int    // 1 on the first delivery, 2 on the first retry...

	// Timestamp is when the row changed (database) or the delivery was
	// received (webhook).
	Timestamp time.Time

	// Schedules.
	Cron          string
	ScheduledTime time.Time
	ActualTime    time.Time

	// Webhooks.
	DeliveryID string
}

// eventWire is the event's JSON form. Identifiers and times go through
// tolerant types because a host may send an id as a number or a time as Unix
// seconds; refusing the whole event over that would fail every call.
type eventWire struct {
	Trigger       Trigger         `json:"trigger"`
	Method        string          `json:"method,omitempty"`
	Path          string          `json:"path,omitempty"`
	Headers       Values          `json:"headers,omitempty"`
	Query         Values          `json:"query,omitempty"`
	Body          json.RawMessage `json:"body,omitempty"`
	BodyEncoding  string          `json:"body_encoding,omitempty"`
	RequestID     flexString      `json:"request_id,omitempty"`
	UserID        flexString      `json:"user_id,omitempty"`
	Role          string          `json:"role,omitempty"`
	Schema        string          `json:"schema,omitempty"`
	Table         string          `json:"table,omitempty"`
	Operation     Operation       `json:"operation,omitempty"`
	Old           json.RawMessage `json:"old,omitempty"`
	New           json.RawMessage `json:"new,omitempty"`
	EventID       flexString      `json:"event_id,omitempty"`
	Attempt       int             `json:"attempt,omitempty"`
	Timestamp     flexTime        `json:"timestamp,omitzero"`
	Cron          string          `json:"cron,omitempty"`
	ScheduledTime flexTime        `json:"scheduled_time,omitzero"`
	ActualTime    flexTime        `json:"actual_time,omitzero"`
	DeliveryID    flexString      `json:"delivery_id,omitempty"`
}

// UnmarshalJSON decodes an event and keeps a copy of data in Raw.
func (e *Event) UnmarshalJSON(data []byte) error {
	return e.decode(bytes.Clone(data))
}

// decode fills e from data and keeps data itself as Raw: the SDK owns the
// input buffer, so the event is not copied a second time. It reads the
// event with the scanner in jsonscan.go rather than encoding/json, and
// treats each field as encoding/json would decode it into eventWire.
//
// headers and headers_all (query and query_all) describe the same map; the
// host sends both, so only the one that wins is decoded, once the whole
// event has been read: decoding the other as well was about a tenth of a
// hello call's guest time. A member the old way would have decoded is
// still checked to be an object or null, so an event fails exactly when
// it did (TestEventValuesOnce).
func (e *Event) decode(data []byte) error {
	*e = Event{Raw: data}
	d := eventDecoder{e: e}
	if err := eachMember(data, d.setField); err != nil {
		return err
	}
	var err error
	if d.headers != nil {
		if e.Headers, err = decodeValues(d.headers); err != nil {
			return fmt.Errorf("field %s: %w", d.headersKey, err)
		}
	}
	if d.query != nil {
		if e.Query, err = decodeValues(d.query); err != nil {
			return fmt.Errorf("field %s: %w", d.queryKey, err)
		}
	}
	return nil
}

// eventDecoder is an event being decoded: the raw objects that will become
// its Headers and Query.
type eventDecoder struct {
	e                    *Event
	headers, query       []byte // nil: the map stays nil
	headersKey, queryKey string
}

// valuesField records raw, the value of a headers or query member, as the
// one to decode when it wins: a _all member (all) wins when it is an
// object; a first-values member is not looked at once a map is set, and
// otherwise wins when it is an object. decodeValues gives nil for null, a
// map for an object and an error for anything else.
func valuesField(cur *[]byte, curKey *string, key string, raw []byte, all bool) error {
	if !all && *cur != nil {
		return nil // not even looked at, as encoding into a set map never was
	}
	switch raw[0] {
	case 'n':
		return nil
	case '{':
		*cur, *curKey = raw, key
		return nil
	}
	_, err := decodeValues(raw)
	return err
}

func (d *eventDecoder) setField(key string, raw []byte) error {
	var err error
	switch key {
	case "headers", "headers_all":
		err = valuesField(&d.headers, &d.headersKey, key, raw, key == "headers_all")
	case "query", "query_all":
		err = valuesField(&d.query, &d.queryKey, key, raw, key == "query_all")
	default:
		return d.e.setField(key, raw)
	}
	if err != nil {
		return fmt.Errorf("field %s: %w", key, err)
	}
	return nil
}

func (e *Event) setField(key string, raw []byte) error {
	var err error
	switch key {
	case "trigger":
		err = setString((*string)(&e.Trigger), raw)
	case "method":
		err = setString(&e.Method, raw)
	case "path":
		err = setString(&e.Path, raw)
	case "body_encoding":
		err = setString(&e.BodyEncoding, raw)
	case "role":
		err = setString(&e.Role, raw)
	case "schema":
		err = setString(&e.Schema, raw)
	case "table":
		err = setString(&e.Table, raw)
	case "operation":
		err = setString((*string)(&e.Operation), raw)
	case "cron":
		err = setString(&e.Cron, raw)
	// headers, query, headers_all and query_all: eventDecoder.setField.
	case "body":
		e.Body = nullToNil(raw)
	case "old":
		e.Old = nullToNil(raw)
	case "new":
		e.New = nullToNil(raw)
	case "attempt":
		err = setInt(&e.Attempt, raw)
	case "user_id":
		e.UserID, err = idText(raw)
	case "request_id":
		e.RequestID, err = idText(raw)
	case "event_id":
		e.EventID, err = idText(raw)
	case "delivery_id":
		e.DeliveryID, err = idText(raw)
	case "timestamp":
		e.Timestamp, err = timeValue(raw)
	case "scheduled_time":
		e.ScheduledTime, err = timeValue(raw)
	case "actual_time":
		e.ActualTime, err = timeValue(raw)
	}
	if err != nil {
		return fmt.Errorf("field %s: %w", key, err)
	}
	return nil
}

// setInt sets *dst from a JSON integer; null leaves it as it is.
func setInt(dst *int, raw []byte) error {
	switch c := raw[0]; {
	case c == 'n':
		return nil
	case c == '-' || '0' <= c && c <= '9':
		n, err := strconv.Atoi(string(raw))
		if err != nil {
			return fmt.Errorf("want an integer, got %s", raw)
		}
		*dst = n
		return nil
	}
	return fmt.Errorf("want an integer, got %s", kindOf(raw[0]))
}

// setString sets *dst from a JSON string; null leaves it as it is, as
// encoding/json does.
func setString(dst *string, raw []byte) error {
	switch raw[0] {
	case '"':
		*dst = unquote(raw)
	case 'n':
	default:
		return fmt.Errorf("want a string, got %s", kindOf(raw[0]))
	}
	return nil
}

// MarshalJSON returns Raw when set, so an encoded event keeps the fields
// this type does not model; an event built in code is encoded from its
// fields. (encoding/json compacts the result; return Raw itself to pass the
// event on byte for byte.)
func (e Event) MarshalJSON() ([]byte, error) {
	if len(e.Raw) > 0 {
		return e.Raw, nil
	}
	return json.Marshal(eventWire{
		Trigger:       e.Trigger,
		Method:        e.Method,
		Path:          e.Path,
		Headers:       e.Headers,
		Query:         e.Query,
		Body:          e.Body,
		BodyEncoding:  e.BodyEncoding,
		RequestID:     flexString(e.RequestID),
		UserID:        flexString(e.UserID),
		Role:          e.Role,
		Schema:        e.Schema,
		Table:         e.Table,
		Operation:     e.Operation,
		Old:           e.Old,
		New:           e.New,
		EventID:       flexString(e.EventID),
		Attempt:       e.Attempt,
		Timestamp:     flexTime{e.Timestamp},
		Cron:          e.Cron,
		ScheduledTime: flexTime{e.ScheduledTime},
		ActualTime:    flexTime{e.ActualTime},
		DeliveryID:    flexString(e.DeliveryID),
	})
}

// Header returns the first value of the named request header. Names are
// matched in lower case, the form the host sends them in.
func (e *Event) Header(name string) string {
	if v, ok := e.Headers[name]; ok && len(v) > 0 {
		return v[0]
	}
	return e.Headers.Get(strings.ToLower(name))
}

// Decode decodes the whole event into v, for fields Event does not model.
func (e *Event) Decode(v any) error {
	if err := json.Unmarshal(e.Raw, v); err != nil {
		return fmt.Errorf("decoding event: %w", err)
	}
	return nil
}

// DecodeBody decodes the request body into v. A body sent as text (the
// client did not say it was JSON) is decoded from the text when v is not a
// string, so a JSON payload posted without a content type still works. An
// absent or null body leaves v unchanged, as encoding/json does for null.
func (e *Event) DecodeBody(v any) error {
	if len(e.Body) == 0 {
		return nil
	}
	if decodeFlat(e.Body, v) {
		flatDecodes.Add(1)
		return nil // as json.Unmarshal would have (decodeflat.go)
	}
	err := json.Unmarshal(e.Body, v)
	var typeErr *json.UnmarshalTypeError
	if err != nil && e.Body[0] == '"' && errors.As(err, &typeErr) {
		text, berr := e.BodyBytes()
		if berr != nil {
			return berr
		}
		err = json.Unmarshal(text, v)
	}
	if err != nil {
		return fmt.Errorf("decoding body: %w", err)
	}
	return nil
}

// BodyBytes returns the request body as the client sent it: the text of a
// string body (base64-decoded when BodyEncoding is "base64"), the JSON text of a
// parsed JSON body, nil when there is none.
func (e *Event) BodyBytes() ([]byte, error) {
	if len(e.Body) == 0 {
		return nil, nil
	}
	if e.Body[0] != '"' {
		return e.Body, nil
	}
	var s string
	if err := json.Unmarshal(e.Body, &s); err != nil {
		return nil, fmt.Errorf("decoding body: %w", err)
	}
	if e.BodyEncoding != "base64" {
		return []byte(s), nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decoding base64 body: %w", err)
	}
	return b, nil
}

// DecodeNew decodes the row after the change into v; DELETE has none, and
// then v is left unchanged.
func (e *Event) DecodeNew(v any) error {
	return decodeRow("new", e.New, v)
}

// DecodeOld decodes the row before the change into v; INSERT has none, and
// then v is left unchanged.
func (e *Event) DecodeOld(v any) error {
	return decodeRow("old", e.Old, v)
}

func decodeRow(which string, raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decoding %s row: %w", which, err)
	}
	return nil
}

// nullToNil makes an explicit JSON null look like an absent field, so that
// callers test one thing: len(x) == 0.
func nullToNil(raw json.RawMessage) json.RawMessage {
	if string(raw) == "null" {
		return nil
	}
	return raw
}

// flexString decodes a JSON string, number or null.
type flexString string

func (s *flexString) UnmarshalJSON(data []byte) error {
	v, err := idText(data)
	*s = flexString(v)
	return err
}

// idText reads an identifier sent as a string or a number (a bigserial
// stays exact as its digits); null is "".
func idText(raw []byte) (string, error) {
	switch c := raw[0]; {
	case c == '"':
		return unquote(raw), nil
	case c == 'n':
		return "", nil
	case c == '-' || '0' <= c && c <= '9':
		return string(raw), nil
	}
	return "", fmt.Errorf("want a string or number, got %s", kindOf(raw[0]))
}

// flexTime decodes an RFC 3339 string, Unix seconds or milliseconds, or null.
type flexTime struct{ time.Time }

func (t *flexTime) UnmarshalJSON(data []byte) error {
	v, err := timeValue(data)
	t.Time = v
	return err
}

func timeValue(raw []byte) (time.Time, error) {
	var t time.Time
	switch c := raw[0]; {
	case c == 'n':
		return t, nil
	case c == '"':
		err := t.UnmarshalJSON(raw)
		return t, err
	case c == '-' || '0' <= c && c <= '9':
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return t, fmt.Errorf("want an RFC 3339 or Unix time: %w", err)
		}
		// Seconds since 1970 stay below 1e12 until the year 33658, so
		// anything larger is milliseconds.
		if f >= 1e12 || f <= -1e12 {
			return time.UnixMilli(int64(f)).UTC(), nil
		}
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
	}
	return t, fmt.Errorf("want an RFC 3339 or Unix time, got %s", kindOf(raw[0]))
}

package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// legacyEvent is the event as it was built before eventFields, from maps,
// and encoded by encoding/json: the reference httpEvent.appendJSON must
// equal.
type legacyEvent struct {
	Trigger      string              `json:"trigger"`
	Method       string              `json:"method"`
	Path         string              `json:"path"`
	Headers      map[string]string   `json:"headers"`
	Query        map[string]string   `json:"query"`
	HeadersAll   map[string][]string `json:"headers_all"`
	QueryAll     map[string][]string `json:"query_all"`
	Body         json.RawMessage     `json:"body"`
	BodyEncoding string              `json:"body_encoding,omitempty"`
	UserID       *string             `json:"user_id"`
	Role         string              `json:"role"`
	RequestID    string              `json:"request_id"`
}

// legacyFrom builds the maps from a request's header and query as
// httpEventOf did.
func legacyFrom(h http.Header, q url.Values) legacyEvent {
	ev := legacyEvent{Headers: map[string]string{}, Query: map[string]string{}, HeadersAll: map[string][]string{}, QueryAll: map[string][]string{}}
	for k, vs := range h {
		lk := strings.ToLower(k)
		if hiddenHeaders[lk] || len(vs) == 0 {
			continue
		}
		ev.Headers[lk] = vs[0]
		ev.HeadersAll[lk] = append(ev.HeadersAll[lk], vs...)
	}
	for k, vs := range q {
		if len(vs) > 0 {
			ev.Query[k] = vs[0]
			ev.QueryAll[k] = vs
		}
	}
	return ev
}

func encodeReflect(t *testing.T, ev legacyEvent) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// FuzzEventJSON: the hand-written encoding of an HTTP event is byte for
// byte what encoding/json made (HTML escaping off) of the maps the event
// was built from before, for any text in any field: control characters,
// quotes, invalid UTF-8, U+2028, <>&, repeated headers and parameters,
// hidden headers, no headers or query, bodies with spaces to compact or
// invalid ones to refuse.
func FuzzEventJSON(f *testing.F) {
	f.Add("POST", "/a b", "x-k", "v\"\\\n\t\b\f\r\x01\x1f", "q", "<&>\u2028\u2029\xff\xfe", []byte(`{ "a" : [1, 2] }`), "u", true, uint8(0))
	f.Add("GET", "", "", "", "", "", []byte(nil), "", false, uint8(1))
	f.Add("PUT", "/é", "b", "\x7f\u00e9\U0001F600", "a", "z", []byte(`"s"`), "", false, uint8(2))
	f.Add("GET", "/", "k", "v", "k", "v", []byte(`{"a":`), "", false, uint8(3))
	f.Add("GET", "/", "Authorization", "v", "k=1&k=2&j", "v", []byte(``), "", false, uint8(4))
	f.Add("GET", "/", "x y", "v", "%zz&a=%41", "v", []byte(`1`), "", false, uint8(5))
	f.Fuzz(func(t *testing.T, method, path, hk, hv, qk, qv string, body []byte, user string, hasUser bool, shape uint8) {
		h := http.Header{}
		h.Add(hk, hv)
		h.Add(hk, qv)
		h.Add(hv, hk)
		h.Add("b", qv)
		h.Add("Content-Type", hv)
		h["Apikey"] = []string{qv}
		h["x-raw"] = []string{hk}
		h["empty"] = []string{}
		raw := url.Values{qk: {qv, hv}, "b": {hk}}.Encode() + "&" + qk
		switch shape % 4 {
		case 1:
			h, raw = http.Header{}, ""
		case 2:
			raw = qk
		}
		// Names equal once in lower case came out of the maps in a random
		// order; the reference cannot say which.
		lower := map[string]string{}
		for k := range h {
			if o, ok := lower[strings.ToLower(k)]; ok && o != k {
				t.Skip("names equal in lower case")
			}
			lower[strings.ToLower(k)] = k
		}
		q, _ := url.ParseQuery(raw)
		want := legacyFrom(h, q)
		want.Trigger, want.Method, want.Path, want.RequestID, want.Role, want.Body, want.BodyEncoding = "http", method, path, hv+qv, qk, body, path
		ev := httpEvent{Trigger: "http", Method: method, Path: path, RequestID: hv + qv, Role: qk,
			Headers: headerFields(h), Query: queryFields(raw), Body: body, BodyEncoding: path}
		if hasUser {
			ev.UserID, want.UserID = &user, &user
		}
		if shape%4 == 3 {
			ev.Body, want.Body = nil, nil
		}
		wantJSON, wantErr := encodeReflect(t, want)
		got, gotErr := ev.appendJSON(nil)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("encoding/json error %v, appendJSON error %v", wantErr, gotErr)
		}
		if wantErr == nil && !bytes.Equal(got, wantJSON) {
			t.Fatalf("appendJSON:\n%q\nencoding/json:\n%q", got, wantJSON)
		}
	})
}

package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
)

// encodeEventReflect is encodeEvent's encoding/json path, the reference
// httpEvent.appendJSON must equal.
func encodeEventReflect(t *testing.T, ev httpEvent) ([]byte, error) {
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
// byte encoding/json's (HTML escaping off) for any text in any field:
// control characters, quotes, invalid UTF-8, U+2028, <>&, nil maps and
// slices, bodies with spaces to compact or invalid ones to refuse.
func FuzzEventJSON(f *testing.F) {
	f.Add("POST", "/a b", "x-k", "v\"\\\n\t\b\f\r\x01\x1f", "q", "<&>\u2028\u2029\xff\xfe", []byte(`{ "a" : [1, 2] }`), "u", true, uint8(0))
	f.Add("GET", "", "", "", "", "", []byte(nil), "", false, uint8(1))
	f.Add("PUT", "/é", "b", "\x7f\u00e9\U0001F600", "a", "z", []byte(`"s"`), "", false, uint8(2))
	f.Add("GET", "/", "k", "v", "k", "v", []byte(`{"a":`), "", false, uint8(3))
	f.Add("GET", "/", "k", "v", "k", "v", []byte(``), "", false, uint8(4))
	f.Fuzz(func(t *testing.T, method, path, hk, hv, qk, qv string, body []byte, user string, hasUser bool, shape uint8) {
		ev := httpEvent{Trigger: "http", Method: method, Path: path, RequestID: hv + qv, Role: qk,
			Headers: map[string]string{hk: hv, hv: hk, "b": qv}, Query: map[string]string{qk: qv},
			HeadersAll: map[string][]string{hk: {hv, qv}, qv: nil, "": {}}, QueryAll: map[string][]string{qk: {qv}},
			Body: body, BodyEncoding: path}
		if hasUser {
			ev.UserID = &user
		}
		switch shape % 4 {
		case 1:
			ev.Headers, ev.QueryAll = nil, nil
		case 2:
			ev.Query, ev.HeadersAll = map[string]string{}, map[string][]string{}
		case 3:
			ev.Body = nil
		}
		want, wantErr := encodeEventReflect(t, ev)
		got, gotErr := ev.appendJSON(nil)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("encoding/json error %v, appendJSON error %v", wantErr, gotErr)
		}
		if wantErr == nil && !bytes.Equal(got, want) {
			t.Fatalf("appendJSON:\n%q\nencoding/json:\n%q", got, want)
		}
	})
}

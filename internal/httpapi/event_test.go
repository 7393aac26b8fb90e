package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"mime"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzJSONStringLen: the size checked before encoding is the size encoded.
func FuzzJSONStringLen(f *testing.F) {
	for _, s := range []string{"", "plain", "\x01\b\f\n\r\t\"\\", "<>&", "\u2028\u2029", "héllo ✓ 𝄞", "\x7f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) {
			return
		}
		if got, want := jsonStringLen(b), len(jsonNoHTML(string(b))); got != want {
			t.Fatalf("jsonStringLen(%q) = %d, encoded %d", b, got, want)
		}
	})
}

func TestRequestIDFrom(t *testing.T) {
	for in, kept := range map[string]bool{"a": true, "abc-123_x.Y:z/=+~!": true, "": false, " ": false, "a b": false,
		"\x7f": false, "é": false, "\xff\xfe": false, string(make([]byte, 129)): false} {
		if got := requestIDFrom(in); (got == in) != kept || got == "" {
			t.Errorf("requestIDFrom(%q) = %q, want kept=%v", in, got, kept)
		}
	}
}

// TestEventBodyMediaTypes: the body of the two content types read without
// parsing ("application/json" and none) is what parsing them gave, beside
// the types that are parsed.
func TestEventBodyMediaTypes(t *testing.T) {
	parsed := func(contentType string, body []byte) (string, string) {
		mt, _, _ := mime.ParseMediaType(contentType)
		if (mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "") && json.Valid(body) {
			return string(body), ""
		}
		if utf8.Valid(body) {
			return string(jsonNoHTML(string(body))), ""
		}
		return string(jsonNoHTML(base64.StdEncoding.EncodeToString(body))), "base64"
	}
	for _, ct := range []string{"application/json", "", "application/json; charset=utf-8", "APPLICATION/JSON", " application/json",
		"text/plain", "application/problem+json", "application/octet-stream", ";", "application/json;"} {
		for _, body := range []string{`{"name":"World"}`, `not json <&>`, "\xff\x00", `[1,2]`, `"s"`} {
			got, enc, err := eventBody(ct, []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			want, wantEnc := parsed(ct, []byte(body))
			if string(got) != want || enc != wantEnc {
				t.Errorf("%q %q: %s %q, want %s %q", ct, body, got, enc, want, wantEnc)
			}
		}
	}
}

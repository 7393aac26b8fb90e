package httpapi

import (
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

package aerofn

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestEncodeLikeEncodingJSON: the fast encoding of a map of strings and of
// a string is byte for byte json.Marshal's, over every byte value, every
// escape, invalid and valid UTF-8 of every length, and random strings.
func TestEncodeLikeEncodingJSON(t *testing.T) {
	strs := []string{"", "World", `a"b\c`, "<script>&amp;</script>", "\u2028\u2029", "\x7f", "é", "日本語", "🙂",
		"\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", "a\xffb\xfe", "\x00\x01\x08\x0c\x0a\x0d\x09\x1f", "\u007f\u0080\u00ff"}
	for c := 0; c < 256; c++ {
		strs = append(strs, string([]byte{byte(c)}), "x"+string([]byte{byte(c)})+"y")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab\"\\<>&\x00\x1f\x7f\xc3\xa9\xe2\x80\xa8\xff ")
	for range 2000 {
		n := rng.IntN(12)
		s := make([]byte, n)
		for i := range s {
			s[i] = alphabet[rng.IntN(len(alphabet))]
		}
		strs = append(strs, string(s))
	}
	for _, s := range strs {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("string %q: got %s, want %s", s, got, want)
		}
	}
	maps := []map[string]string{nil, {}, {"message": "Hello, World!"}, {"b": "1", "a": "2", "": "3", "\xff": "4", "<": ">"}}
	for i := 0; i+3 < len(strs); i += 3 {
		m := map[string]string{}
		for j := range rng.IntN(12) {
			m[strs[(i+j)%len(strs)]] = strs[(i+2*j+1)%len(strs)]
		}
		maps = append(maps, m)
	}
	for _, m := range maps {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendStringMap(nil, m); string(got) != string(want) {
			t.Fatalf("map %q: got %s, want %s", m, got, want)
		}
		if got, err := encodeResult(m); err != nil || string(got) != string(want) {
			t.Fatalf("encodeResult(%q): %s, %v; want %s", m, got, err, want)
		}
	}
}

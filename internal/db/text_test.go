package db

import (
	"testing"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"plain":           "plain",
		"héllo ✓":         "héllo ✓",
		"\x00":            "\uFFFD",
		"a\x00b\x00":      "a\uFFFDb\uFFFD",
		"\xff\xfe":        "\uFFFD",
		"ok\xc3":          "ok\uFFFD",
		"\xed\xa0\x80":    "\uFFFD", // a UTF-16 surrogate, which UTF-8 forbids
		"x\x00\xffy\x01z": "x\uFFFD\uFFFDy\x01z",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzText(f *testing.F) {
	f.Add("a\x00\xff")
	f.Fuzz(func(t *testing.T, s string) {
		got := Text(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Text(%q) = %q is not UTF-8", s, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] == 0 {
				t.Fatalf("Text(%q) = %q keeps a NUL", s, got)
			}
		}
		if utf8.ValidString(s) && Text(s) != s && len(s) > 0 {
			for i := 0; i < len(s); i++ {
				if s[i] == 0 {
					return
				}
			}
			t.Fatalf("Text changed valid text %q to %q", s, got)
		}
	})
}

// TestTruncate cuts at every byte of text whose characters take one to four
// bytes: the result is a prefix of s, valid UTF-8, at most n bytes, and loses
// no more than the character the cut fell inside.
func TestTruncate(t *testing.T) {
	s := "aé✓😀b" // 1 + 2 + 3 + 4 + 1 bytes
	for n := -1; n <= len(s)+1; n++ {
		got := Truncate(s, n)
		if !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q splits a character", s, n, got)
		}
		if len(got) > max(n, 0) || got != s[:len(got)] {
			t.Errorf("Truncate(%q, %d) = %q is not a prefix of at most %d bytes", s, n, got, n)
		}
		if n > 0 && n < len(s) && len(got) <= n-utf8.UTFMax {
			t.Errorf("Truncate(%q, %d) = %q cut more than one character", s, n, got)
		}
	}
	for in, want := range map[[2]any]string{
		{"héllo", 2}:  "h",
		{"héllo", 3}:  "hé",
		{"✓✓", 5}:     "✓",
		{"plain", 10}: "plain",
	} {
		if got := Truncate(in[0].(string), in[1].(int)); got != want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

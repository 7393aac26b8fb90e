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

package db

import (
	"strings"
	"unicode/utf8"
)

// Text returns s as PostgreSQL's text and jsonb columns accept it: valid
// UTF-8 without NUL. Every NUL byte, and every run of bytes that is not
// UTF-8, becomes U+FFFD. Whatever a caller or a guest chose (a request id,
// a log line, an error message, an output) passes through Text before it
// is written, so one hostile byte can never make a write fail.
func Text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Truncate returns s cut to at most n bytes, never inside a character: a
// cut that would split a multi-byte character ends before it. Text written
// to a column must stay valid UTF-8, and a cut at a byte count does not.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

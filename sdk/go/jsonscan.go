package aerofn

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON scanner for the event, which every call decodes. In a fresh
// instance every call is a cold start, and encoding/json's first decode of a
// type builds its reflection caches: measured under wasmtime, decoding an
// HTTP event with encoding/json cost about 0.45 ms of a 1.5 ms call, against
// 0.05 ms with this scanner. It accepts exactly what encoding/json accepts
// (FuzzDecodeEvent checks that against encoding/json), except objects and
// arrays nested more than 10,000 deep, which encoding/json refuses and it
// reads (decodeFlat gives such bodies to encoding/json).

var errUnexpectedEnd = errors.New("unexpected end of JSON input")

func syntaxError(b []byte, i int, what string) error {
	if i >= len(b) {
		return errUnexpectedEnd
	}
	return fmt.Errorf("invalid character %q %s at offset %d", b[i], what, i)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipValue validates the JSON value starting at b[i] (after any space) and
// returns the offsets of its first byte and of the byte after it. Nesting is
// tracked on a slice rather than the call stack, so a deeply nested body
// cannot exhaust the wasm stack.
func skipValue(b []byte, i int) (start, end int, err error) {
	i = skipSpace(b, i)
	start = i
	var open []byte // '{' or '[' for each container not yet closed
	for {
		// A value is expected at b[i].
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, 0, errUnexpectedEnd
		}
		switch c := b[i]; {
		case c == '{':
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			open = append(open, '{')
			if i, err = skipKey(b, i); err != nil {
				return 0, 0, err
			}
			continue
		case c == '[':
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == ']' {
				i++
				break
			}
			open = append(open, '[')
			continue
		case c == '"':
			if i, err = skipString(b, i); err != nil {
				return 0, 0, err
			}
		case c == '-' || '0' <= c && c <= '9':
			if i, err = skipNumber(b, i); err != nil {
				return 0, 0, err
			}
		default:
			if i, err = skipLiteral(b, i); err != nil {
				return 0, 0, err
			}
		}
		// A value ended: close containers until one continues.
		for {
			if len(open) == 0 {
				return start, i, nil
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, 0, errUnexpectedEnd
			}
			top := open[len(open)-1]
			c := b[i]
			if c == ',' {
				i++
				if top == '{' {
					if i, err = skipKey(b, skipSpace(b, i)); err != nil {
						return 0, 0, err
					}
				}
				break
			}
			if top == '{' && c == '}' || top == '[' && c == ']' {
				open = open[:len(open)-1]
				i++
				continue
			}
			return 0, 0, syntaxError(b, i, "after value")
		}
	}
}

// skipKey skips an object key and its colon.
func skipKey(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, syntaxError(b, i, "looking for beginning of object key string")
	}
	i, err := skipString(b, i)
	if err != nil {
		return 0, err
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return 0, syntaxError(b, i, "after object key")
	}
	return i + 1, nil
}

// skipString returns the offset after the string whose quote is at b[i].
func skipString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c < 0x20:
			return 0, syntaxError(b, i, "in string literal")
		case c == '\\':
			i++
			if i >= len(b) {
				return 0, errUnexpectedEnd
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				for k := 0; k < 4; k++ {
					i++
					if i >= len(b) {
						return 0, errUnexpectedEnd
					}
					if hexVal(b[i]) < 0 {
						return 0, syntaxError(b, i, "in \\u hexadecimal character escape")
					}
				}
			default:
				return 0, syntaxError(b, i, "in string escape code")
			}
		}
	}
	return 0, errUnexpectedEnd
}

// skipNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func skipNumber(b []byte, i int) (int, error) {
	digits := func(i int) (int, error) {
		if i >= len(b) {
			return 0, errUnexpectedEnd
		}
		if b[i] < '0' || b[i] > '9' {
			return 0, syntaxError(b, i, "in numeric literal")
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i, nil
	}
	if b[i] == '-' {
		i++
	}
	var err error
	if i < len(b) && b[i] == '0' {
		i++
	} else if i, err = digits(i); err != nil {
		return 0, err
	}
	if i < len(b) && b[i] == '.' {
		if i, err = digits(i + 1); err != nil {
			return 0, err
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, err = digits(i); err != nil {
			return 0, err
		}
	}
	return i, nil
}

func skipLiteral(b []byte, i int) (int, error) {
	for _, lit := range [...]string{"true", "false", "null"} {
		if b[i] != lit[0] {
			continue
		}
		for k := 1; k < len(lit); k++ {
			if i+k >= len(b) {
				return 0, errUnexpectedEnd
			}
			if b[i+k] != lit[k] {
				return 0, syntaxError(b, i+k, "in literal "+lit)
			}
		}
		return i + len(lit), nil
	}
	return 0, syntaxError(b, i, "looking for beginning of value")
}

func hexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// unquote decodes a string token that skipString accepted, the way
// encoding/json does: invalid UTF-8 and lone surrogates become U+FFFD.
func unquote(tok []byte) string {
	s := tok[1 : len(tok)-1]
	simple := true
	for _, c := range s {
		if c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple || (utf8.Valid(s) && !containsByte(s, '\\')) {
		return string(s)
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			out = utf8.AppendRune(out, r) // RuneError for a bad byte, as encoding/json
			i += size
			continue
		}
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, hex4(s[i+2:])); r2 != utf8.RuneError {
						out = utf8.AppendRune(out, r2)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, s[i+1])
		}
		i += 2
	}
	return string(out)
}

func hex4(b []byte) rune {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}

// keyString is unquote for an object key. The event's member names and
// the headers every request carries come back as constants, without the
// allocation unquote makes: a call's event has a dozen of each, and the
// guest's allocator is a tenth of its time. (The comparison does not
// allocate: the compiler switches on the bytes themselves.)
func keyString(tok []byte) string {
	switch string(tok[1 : len(tok)-1]) {
	case "trigger":
		return "trigger"
	case "method":
		return "method"
	case "path":
		return "path"
	case "headers":
		return "headers"
	case "query":
		return "query"
	case "headers_all":
		return "headers_all"
	case "query_all":
		return "query_all"
	case "body":
		return "body"
	case "body_encoding":
		return "body_encoding"
	case "user_id":
		return "user_id"
	case "role":
		return "role"
	case "request_id":
		return "request_id"
	case "accept":
		return "accept"
	case "accept-encoding":
		return "accept-encoding"
	case "authorization":
		return "authorization"
	case "content-length":
		return "content-length"
	case "content-type":
		return "content-type"
	case "user-agent":
		return "user-agent"
	}
	return unquote(tok)
}

// eachMember calls f with the unquoted key and raw value of every member of
// the object at the start of b. A JSON null calls nothing.
func eachMember(b []byte, f func(key string, raw []byte) error) error {
	i := skipSpace(b, 0)
	if i < len(b) && b[i] == 'n' {
		end, err := skipLiteral(b, i)
		if err != nil {
			return err
		}
		if skipSpace(b, end) != len(b) {
			return syntaxError(b, skipSpace(b, end), "after top-level value")
		}
		return nil
	}
	if i >= len(b) || b[i] != '{' {
		if i >= len(b) {
			return errUnexpectedEnd
		}
		return fmt.Errorf("want a JSON object, got %s", kindOf(b[i]))
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return syntaxError(b, i, "looking for beginning of object key string")
			}
			end, err := skipString(b, i)
			if err != nil {
				return err
			}
			key := b[i:end]
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return syntaxError(b, i, "after object key")
			}
			vs, ve, err := skipValue(b, i+1)
			if err != nil {
				return err
			}
			if err := f(keyString(key), b[vs:ve]); err != nil {
				return err
			}
			i = skipSpace(b, ve)
			if i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return syntaxError(b, i, "after object key:value pair")
		}
	}
	if i = skipSpace(b, i); i != len(b) {
		return syntaxError(b, i, "after top-level value")
	}
	return nil
}

func kindOf(c byte) string {
	switch {
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '-' || '0' <= c && c <= '9':
		return "a number"
	}
	return fmt.Sprintf("%q", c)
}

// eachElement calls f with every element of the array raw, which
// skipValue has accepted.
func eachElement(raw []byte, f func(elem []byte)) error {
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return nil
	}
	for {
		s, e, err := skipValue(raw, i)
		if err != nil {
			return err
		}
		f(raw[s:e])
		i = skipSpace(raw, e)
		if i < len(raw) && raw[i] == ',' {
			i++
			continue
		}
		if i < len(raw) && raw[i] == ']' {
			return nil
		}
		return syntaxError(raw, i, "after array element")
	}
}

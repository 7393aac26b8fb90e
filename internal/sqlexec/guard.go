package sqlexec

import (
	"fmt"
	"strings"
)

// MaxStatementBytes bounds the SQL text of one call; longer text is refused
// before it is tokenized.
const MaxStatementBytes = 1 << 20

// CheckStatement is the statement guard: it admits exactly one SELECT,
// INSERT, UPDATE or DELETE (optionally led by WITH, whose parts may be
// INSERT, UPDATE or DELETE too) and refuses everything else with an *Error
// whose Code is statement_rejected and whose Message says why.
//
// It works on tokens, not on the raw text, so that comments, quoted
// identifiers, string constants and dollar quoting are read the way
// PostgreSQL reads them (with standard_conforming_strings on, which the role
// connections pin): a "SET ROLE" inside a string or a comment is not a
// statement, and a "pg_authid" inside double quotes still is a catalog. The
// guard is the first of two walls: everything it admits still runs as a role
// that can do no more (see doc.go), and the attack suite replays what it
// refuses against the database directly to show that.
func CheckStatement(sql string) error {
	if len(sql) > MaxStatementBytes {
		return reject("the statement is %d bytes; the limit is %d", len(sql), MaxStatementBytes)
	}
	toks, err := lex(sql)
	if err != nil {
		return reject("%s", err.Error())
	}
	// One statement: a semicolon may only be followed by more semicolons.
	for i, t := range toks {
		if t.kind == tkPunct && t.text == ";" {
			for _, u := range toks[i+1:] {
				if !(u.kind == tkPunct && u.text == ";") {
					return reject("only one statement is allowed; found more after ';'")
				}
			}
			toks = toks[:i]
			break
		}
	}
	if len(toks) == 0 {
		return reject("the statement is empty")
	}
	if err := checkVerb(toks); err != nil {
		return err
	}
	for i, t := range toks {
		if t.kind != tkIdent && t.kind != tkQuotedIdent {
			continue
		}
		if err := checkName(toks, i); err != nil {
			return err
		}
	}
	return nil
}

func reject(format string, args ...any) *Error {
	return &Error{Code: CodeStatementRejected, Message: fmt.Sprintf(format, args...)}
}

// allowedVerbs are the statements a function may run. Everything else that
// PostgreSQL accepts (SET, RESET, SHOW, BEGIN, COMMIT, DO, COPY, LISTEN,
// NOTIFY, LOCK, EXPLAIN, PREPARE, DECLARE, CREATE, ALTER, GRANT, CALL, VALUES,
// TABLE, MERGE ...) either changes session or transaction state that the host
// owns, or is a second way to say something the four say already.
var allowedVerbs = map[string]bool{"select": true, "insert": true, "update": true, "delete": true}

// checkVerb finds the statement's verb: its first word, or for WITH the
// first of SELECT/INSERT/UPDATE/DELETE at the outermost level after the
// common table expressions. Each common table expression's body must itself
// start with one of the four (or VALUES, which reads nothing).
func checkVerb(toks []sqlToken) error {
	i := 0
	for i < len(toks) && toks[i].kind == tkPunct && toks[i].text == "(" {
		i++
	}
	if i == len(toks) {
		return reject("the statement is empty")
	}
	first := toks[i]
	if first.kind != tkIdent {
		return reject("a statement must start with SELECT, INSERT, UPDATE, DELETE or WITH, not %q", first.text)
	}
	if allowedVerbs[first.text] {
		return nil
	}
	if first.text != "with" {
		return reject("only a single SELECT, INSERT, UPDATE or DELETE is allowed, not %s", strings.ToUpper(first.text))
	}
	depth := 0
	for j := i + 1; j < len(toks); j++ {
		t := toks[j]
		switch {
		case t.kind == tkPunct && t.text == "(":
			depth++
			// A CTE body: "AS [NOT] [MATERIALIZED] (" then the statement.
			if k := prevWord(toks, j); k == "as" || k == "materialized" {
				if j+1 < len(toks) {
					n := toks[j+1]
					if n.kind == tkIdent && !(allowedVerbs[n.text] || n.text == "values" || n.text == "with") {
						return reject("a WITH query may only be SELECT, INSERT, UPDATE, DELETE or VALUES, not %s", strings.ToUpper(n.text))
					}
				}
			}
		case t.kind == tkPunct && t.text == ")":
			depth--
		case depth == 0 && t.kind == tkIdent:
			if allowedVerbs[t.text] {
				return nil
			}
			switch t.text {
			case "merge", "values", "table":
				return reject("only a single SELECT, INSERT, UPDATE or DELETE is allowed after WITH, not %s", strings.ToUpper(t.text))
			}
		}
	}
	return reject("a WITH statement must end in SELECT, INSERT, UPDATE or DELETE")
}

func prevWord(toks []sqlToken, j int) string {
	if j == 0 || toks[j-1].kind != tkIdent {
		return ""
	}
	return toks[j-1].text
}

// internalSchemas are never reachable: the catalogs (whose readable parts
// still tell who else is connected and what they run), aerofn's own tables
// and the signing key, and the temporary schema a shadowing object would
// live in.
var internalSchemas = map[string]bool{
	"pg_catalog": true, "information_schema": true, "pg_toast": true, "pg_temp": true, "aerofn": true,
}

// authFunctions are the only names a statement may reach in schema auth.
var authFunctions = map[string]bool{"uid": true, "sub": true, "role": true, "jwt": true}

// allowedPgFunctions are the pg_-prefixed functions that tell nothing about
// other sessions and change nothing; every other pg_ name (catalog tables and
// views, pg_read_file, pg_ls_dir, pg_stat_*, pg_advisory_*, ...) is refused.
// pg_sleep stays: what bounds it is the statement timeout, which must hold
// anyway.
var allowedPgFunctions = map[string]bool{
	"pg_sleep": true, "pg_sleep_for": true, "pg_sleep_until": true, "pg_typeof": true,
	"pg_column_size": true, "pg_size_pretty": true, "pg_input_is_valid": true,
}

// deniedFunctions run SQL text the guard never sees, or change or reach
// session state the host owns. The database revokes them too (Setup); the
// guard refuses them first so the message says why.
var deniedFunctions = map[string]bool{
	"set_config":   true,
	"query_to_xml": true, "query_to_xmlschema": true, "query_to_xml_and_xmlschema": true,
	"cursor_to_xml": true, "cursor_to_xmlschema": true,
	"table_to_xml": true, "table_to_xmlschema": true, "table_to_xml_and_xmlschema": true,
	"schema_to_xml": true, "schema_to_xmlschema": true, "schema_to_xml_and_xmlschema": true,
	"database_to_xml": true, "database_to_xmlschema": true, "database_to_xml_and_xmlschema": true,
	"ts_stat": true, "ts_rewrite": true, "loread": true, "lowrite": true,
}

// checkName judges the identifier at toks[i].
func checkName(toks []sqlToken, i int) error {
	t := toks[i]
	name := strings.ToLower(t.text)
	isCall := i+1 < len(toks) && toks[i+1].kind == tkPunct && toks[i+1].text == "("
	qualifier := ""
	if i >= 2 && toks[i-1].kind == tkPunct && toks[i-1].text == "." && (toks[i-2].kind == tkIdent || toks[i-2].kind == tkQuotedIdent) {
		qualifier = strings.ToLower(toks[i-2].text)
	}
	switch {
	case internalSchemas[name] || strings.HasPrefix(name, "pg_temp") || strings.HasPrefix(name, "pg_toast") || strings.HasPrefix(name, "aerofn_"):
		return reject("%s is an internal schema; functions cannot reach it", name)
	case qualifier == "auth" && !(authFunctions[name] && isCall):
		return reject("auth.%s is not available; functions may call auth.uid(), auth.sub(), auth.role() and auth.jwt()", name)
	case strings.HasPrefix(name, "pg_") && !(isCall && allowedPgFunctions[name]):
		if isCall {
			return reject("%s() is a server function that functions cannot call", name)
		}
		return reject("%s is a system catalog; functions cannot read it", name)
	case isCall && (deniedFunctions[name] || strings.HasPrefix(name, "lo_") || strings.HasPrefix(name, "dblink")):
		return reject("%s() is not available to functions: it changes session state or runs SQL of its own", name)
	case t.kind == tkIdent && name == "into":
		// INTO belongs to INSERT INTO; anywhere else it is SELECT ... INTO,
		// which creates a table.
		if prevWord(toks, i) != "insert" {
			return reject("SELECT ... INTO creates a table; only INSERT INTO is allowed")
		}
	}
	return nil
}

// --- tokenizer ---

type tokKind uint8

const (
	tkIdent       tokKind = iota // unquoted identifier or keyword, folded to lower case
	tkQuotedIdent                // "..." with "" undone; case kept
	tkString                     // any string constant
	tkNumber
	tkParam // $1
	tkOp    // operator characters
	tkPunct // ; ( ) [ ] , . :
)

type sqlToken struct {
	kind tokKind
	text string
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$'
}

func isOpChar(c byte) bool {
	return strings.IndexByte("+-*/<>=~!@#%^&|`?", c) >= 0
}

// lex splits sql into tokens the way PostgreSQL's scanner does, dropping
// whitespace and comments. It fails on what PostgreSQL would also fail on
// (an unterminated string, comment, quoted identifier or dollar quote) and on
// Unicode-escaped identifiers (U&"..."), which could spell any name in a form
// the guard would have to decode to judge.
func lex(s string) ([]sqlToken, error) {
	var out []sqlToken
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' && s[i] != '\r' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			depth := 0
			for {
				if i+1 >= len(s) {
					return nil, fmt.Errorf("unterminated /* comment")
				}
				if s[i] == '/' && s[i+1] == '*' {
					depth++
					i += 2
				} else if s[i] == '*' && s[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		case c == '\'':
			end, err := scanQuoted(s, i, false)
			if err != nil {
				return nil, err
			}
			out = append(out, sqlToken{tkString, s[i:end]})
			i = end
		case (c == 'e' || c == 'E') && i+1 < len(s) && s[i+1] == '\'':
			end, err := scanQuoted(s, i+1, true)
			if err != nil {
				return nil, err
			}
			out = append(out, sqlToken{tkString, s[i:end]})
			i = end
		case (c == 'b' || c == 'B' || c == 'x' || c == 'X' || c == 'n' || c == 'N') && i+1 < len(s) && s[i+1] == '\'':
			end, err := scanQuoted(s, i+1, false)
			if err != nil {
				return nil, err
			}
			out = append(out, sqlToken{tkString, s[i:end]})
			i = end
		case (c == 'u' || c == 'U') && i+2 < len(s) && s[i+1] == '&' && (s[i+2] == '\'' || s[i+2] == '"'):
			if s[i+2] == '"' {
				return nil, fmt.Errorf("unicode-escaped identifiers (U&\"...\") are not allowed")
			}
			end, err := scanQuoted(s, i+2, false)
			if err != nil {
				return nil, err
			}
			out = append(out, sqlToken{tkString, s[i:end]})
			i = end
		case c == '"':
			j := i + 1
			var b strings.Builder
			for {
				if j >= len(s) {
					return nil, fmt.Errorf("unterminated quoted identifier")
				}
				if s[j] == '"' {
					if j+1 < len(s) && s[j+1] == '"' {
						b.WriteByte('"')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			if b.Len() == 0 {
				return nil, fmt.Errorf("zero-length quoted identifier")
			}
			out = append(out, sqlToken{tkQuotedIdent, b.String()})
			i = j + 1
		case c == '$':
			if i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
				j := i + 1
				for j < len(s) && s[j] >= '0' && s[j] <= '9' {
					j++
				}
				out = append(out, sqlToken{tkParam, s[i:j]})
				i = j
				continue
			}
			j := i + 1
			if j < len(s) && isIdentStart(s[j]) {
				for j < len(s) && isIdentCont(s[j]) && s[j] != '$' {
					j++
				}
			}
			if j >= len(s) || s[j] != '$' {
				return nil, fmt.Errorf("unexpected '$' at byte %d", i)
			}
			tag := s[i : j+1]
			end := strings.Index(s[j+1:], tag)
			if end < 0 {
				return nil, fmt.Errorf("unterminated dollar-quoted string %s", tag)
			}
			stop := j + 1 + end + len(tag)
			out = append(out, sqlToken{tkString, s[i:stop]})
			i = stop
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentCont(s[j]) {
				j++
			}
			out = append(out, sqlToken{tkIdent, asciiLower(s[i:j])})
			i = j
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			j := i
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
				if (s[j] == 'e' || s[j] == 'E') && j+1 < len(s) && (s[j+1] == '+' || s[j+1] == '-') {
					j += 2
					continue
				}
				if s[j] == '.' && j+1 < len(s) && s[j+1] == '.' {
					break
				}
				j++
			}
			out = append(out, sqlToken{tkNumber, s[i:j]})
			i = j
		case strings.IndexByte(";()[],.:", c) >= 0:
			if c == ':' && i+1 < len(s) && s[i+1] == ':' {
				out = append(out, sqlToken{tkOp, "::"})
				i += 2
				continue
			}
			out = append(out, sqlToken{tkPunct, string(c)})
			i++
		case isOpChar(c):
			j := i
			for j < len(s) && isOpChar(s[j]) {
				if j > i && (s[j] == '-' && j+1 < len(s) && s[j+1] == '-' || s[j] == '/' && j+1 < len(s) && s[j+1] == '*') {
					break
				}
				j++
			}
			out = append(out, sqlToken{tkOp, s[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q at byte %d", c, i)
		}
	}
	return out, nil
}

// scanQuoted returns the index just past the string constant whose opening
// quote is at s[q]. backslash marks an E” string, where \ escapes the next
// byte. Adjacent ” is a quote in every kind.
func scanQuoted(s string, q int, backslash bool) (int, error) {
	j := q + 1
	for j < len(s) {
		switch s[j] {
		case '\\':
			if backslash {
				j += 2
				continue
			}
		case '\'':
			if j+1 < len(s) && s[j+1] == '\'' {
				j += 2
				continue
			}
			return j + 1, nil
		}
		j++
	}
	return 0, fmt.Errorf("unterminated string constant")
}

// asciiLower folds A-Z only, as PostgreSQL folds unquoted identifiers in
// UTF-8 databases.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

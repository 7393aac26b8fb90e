package sqlexec

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckStatementAdmits(t *testing.T) {
	for _, sql := range []string{
		`SELECT 1`,
		`select * from todos where id = $1`,
		`SELECT * FROM todos;`,
		`SELECT * FROM todos ;; `,
		`  -- leading comment` + "\n" + `SELECT 1`,
		`/* a /* nested */ comment */ SELECT 1`,
		`INSERT INTO todos (owner, title) VALUES (auth.uid(), $1) RETURNING *`,
		`UPDATE todos SET done = true WHERE id = $1`,
		`DELETE FROM todos WHERE id = $1`,
		`WITH t AS (SELECT 1 AS n) SELECT n FROM t`,
		`WITH d AS (DELETE FROM todos WHERE done RETURNING id) INSERT INTO archive SELECT id FROM d`,
		`WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r`,
		`WITH v(x) AS (VALUES (1), (2)) SELECT x FROM v`,
		`WITH a AS MATERIALIZED (SELECT 1) SELECT * FROM a`,
		`(SELECT 1) UNION (SELECT 2)`,
		`SELECT 'SET ROLE postgres; DROP TABLE x' AS s`,
		`SELECT $$ ; DELETE FROM todos $$`,
		`SELECT $tag$ it's $$ inside $tag$`,
		`SELECT E'it\'s' AS s`,
		`SELECT 'it''s' AS s`,
		`SELECT "weird ""name""" FROM t`,
		`SELECT auth.uid(), auth.role(), auth.jwt(), auth.sub()`,
		`SELECT pg_sleep(0.1)`,
		`SELECT pg_typeof(1), pg_column_size('x')`,
		`SELECT current_setting('aerofn.token')`,
		`SELECT x::int, y::text[] FROM t`,
		`SELECT 1.5e+10, .5, 1_000`,
		`SELECT a->>'b', a#>'{c}', a @> b, a || b FROM t`,
		`SELECT 1-- comment`,
		`SELECT 1 /* trailing */`,
		`SELECT * FROM todos FOR UPDATE SKIP LOCKED`,
		`INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = excluded.a`,
		`SELECT b'101', x'ff', n'nat', U&'d\0061t\+000061'`,
		`SELECT price$ FROM t`,
		`SELECT * FROM public.todos`,
		`SELECT loaded FROM t`,
		`SELECT inserted_into FROM t`,
		`SELECT ärger FROM t`,
	} {
		if err := CheckStatement(sql); err != nil {
			t.Errorf("%q refused: %v", sql, err)
		}
	}
}

func TestCheckStatementRefuses(t *testing.T) {
	for _, c := range []struct{ sql, why string }{
		{``, "empty"},
		{`  -- only a comment`, "empty"},
		{`;`, "empty"},
		{`SET ROLE postgres`, "not SET"},
		{`set role postgres`, "not SET"},
		{`RESET ROLE`, "not RESET"},
		{`SHOW ALL`, "not SHOW"},
		{`BEGIN`, "not BEGIN"},
		{`COMMIT`, "not COMMIT"},
		{`DO $$BEGIN END$$`, "not DO"},
		{`COPY t TO STDOUT`, "not COPY"},
		{`LISTEN x`, "not LISTEN"},
		{`NOTIFY x`, "not NOTIFY"},
		{`LOCK TABLE t`, "not LOCK"},
		{`EXPLAIN SELECT 1`, "not EXPLAIN"},
		{`VALUES (1)`, "not VALUES"},
		{`TABLE t`, "not TABLE"},
		{`CALL p()`, "not CALL"},
		{`PREPARE p AS SELECT 1`, "not PREPARE"},
		{`"SELECT" 1`, "must start with"},
		{`SELECT 1; SELECT 2`, "only one statement"},
		{`SELECT 1; -- x` + "\n" + `DELETE FROM t`, "only one statement"},
		{`SELECT $$;$$; SET ROLE x`, "only one statement"},
		{`SELECT 'a'; SET ROLE x`, "only one statement"},
		{`SELECT E'\'; SET ROLE x; --'`, ""},               // one string: admitted
		{`SELECT E'\''; SET ROLE x`, "only one statement"}, // E'\'' is a whole string
		{`WITH x AS (SELECT 1) SET ROLE postgres`, "must end in"},
		{`WITH x AS (SELECT 1) VALUES (1)`, "not VALUES"},
		{`WITH x AS (MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE) SELECT 1`, "may only be"},
		{`SELECT * INTO newtab FROM t`, "INTO"},
		{`(SELECT * INTO newtab FROM t)`, "INTO"},
		{`SELECT * FROM pg_authid`, "system catalog"},
		{`SELECT * FROM PG_AUTHID`, "system catalog"},
		{`SELECT * FROM "pg_authid"`, "system catalog"},
		{`SELECT * FROM "PG_AUTHID"`, "system catalog"},
		{`SELECT * FROM pg_catalog.pg_class`, "internal schema"},
		{`SELECT * FROM information_schema.tables`, "internal schema"},
		{`SELECT * FROM aerofn.functions`, "internal schema"},
		{`SELECT * FROM "aerofn"."rls_signing_key"`, "internal schema"},
		{`SELECT * FROM pg_temp.t`, "internal schema"},
		{`SELECT * FROM pg_temp_3.t`, "internal schema"},
		{`SELECT * FROM aerofn_other.t`, "internal schema"},
		{`SELECT * FROM auth.users`, "auth.users"},
		{`SELECT auth.uid`, "auth.uid"},
		{`SELECT pg_read_file('/etc/passwd')`, "server function"},
		{`SELECT pg_advisory_lock(1)`, "server function"},
		{`SELECT pg_notify('a', 'b')`, "server function"},
		{`SELECT pg_terminate_backend(1)`, "server function"},
		{`SELECT pg_backend_pid()`, "server function"},
		{`SELECT set_config('role', 'x', false)`, "set_config"},
		{`SELECT SET_CONFIG('role', 'x', false)`, "set_config"},
		{`SELECT "set_config"('role', 'x', false)`, "set_config"},
		{`SELECT set_config /* x */ ('role', 'x', false)`, "set_config"},
		{`SELECT * FROM todos, set_config('role', 'x', true)`, "set_config"},
		{`SELECT lo_import('/etc/passwd')`, "lo_import"},
		{`SELECT loread(0, 1)`, "loread"},
		{`SELECT query_to_xml('select 1', true, false, '')`, "query_to_xml"},
		{`SELECT ts_stat('select 1')`, "ts_stat"},
		{`SELECT dblink('x', 'y')`, "dblink"},
		{`SELECT * FROM U&"\0070g_authid"`, "unicode-escaped"},
		{`SELECT 'unterminated`, "unterminated string"},
		{`SELECT "unterminated`, "unterminated quoted"},
		{`SELECT $$unterminated`, "unterminated dollar"},
		{`SELECT 1 /* unterminated`, "unterminated /*"},
		{`SELECT 1 /* /* */ still open`, "unterminated /*"},
		{`SELECT ""`, "zero-length"},
		{`SELECT $ 1`, "unexpected '$'"},
		{`SELECT 1 \ 2`, "unexpected character"},
		{strings.Repeat(" ", MaxStatementBytes+1), "limit"},
	} {
		err := CheckStatement(c.sql)
		if c.why == "" {
			if err != nil {
				t.Errorf("%q refused: %v", c.sql, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%q admitted; want refused (%s)", c.sql, c.why)
			continue
		}
		e, ok := err.(*Error)
		if !ok || e.Code != CodeStatementRejected || !strings.Contains(e.Message, c.why) {
			t.Errorf("%q: %v; want statement_rejected mentioning %q", c.sql, err, c.why)
		}
	}
}

// FuzzCheckStatement: the guard never panics, and whatever it admits holds
// no second statement and no refused verb at the top.
func FuzzCheckStatement(f *testing.F) {
	for _, s := range []string{`SELECT 1`, `SELECT $$a$$; SET ROLE x`, `SELECT E'\''`, `/* /* */ */ SELECT`, `WITH a AS (SELECT 1) SELECT 2`,
		`SELECT "a""b" FROM t`, `SELECT U&'\0061'`, `SELECT $1::int`, `INSERT INTO t VALUES (1)`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		if CheckStatement(sql) != nil {
			return
		}
		toks, err := lex(sql)
		if err != nil {
			t.Fatalf("admitted but does not lex: %v", err)
		}
		for i, tk := range toks {
			if tk.kind == tkPunct && tk.text == ";" {
				for _, u := range toks[i+1:] {
					if u.text != ";" {
						t.Fatalf("admitted a second statement: %q", sql)
					}
				}
			}
		}
	})
}

func FuzzAppendArray(f *testing.F) {
	for _, s := range []string{`{}`, `{1,2}`, `{"a\"b",NULL}`, `{{1},{2}}`, `[0:1]={1,2}`, `{"\\"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, elem := range []*typeInfo{tText, tInt, tJSON, tBytea, tTimestamptz} {
			out := appendValue(nil, arrayOf(elem), []byte(s))
			if !json.Valid(out) {
				t.Fatalf("%q as %v[] → invalid JSON %s", s, elem.kind, out)
			}
		}
	})
}

func TestEncodeParamArrayLiteral(t *testing.T) {
	got, err := encodeParam(arrayOf(tText), []any{"a", "b,c", `"q"`, `back\slash`, nil, []any{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a","b,c","\"q\"","back\\slash",NULL,{"x"}}`; string(got) != want {
		t.Errorf("got %s want %s", got, want)
	}
}

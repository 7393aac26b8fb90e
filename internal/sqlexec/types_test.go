package sqlexec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/sqlexec"
)

// Every type the issue lists, read back as the function sees it.
func TestResultTypes(t *testing.T) {
	v := newEnv(t, sqlexec.Config{PoolSize: 1})
	v.execAdmin(t, `CREATE TYPE public.mood AS ENUM ('happy', 'sad');
		CREATE DOMAIN public.posint AS int CHECK (VALUE > 0);
		CREATE DOMAIN public.tags AS text[]`)
	cases := []struct{ expr, want string }{
		{`1::int2`, `1`},
		{`(-2147483648)::int4`, `-2147483648`},
		{`9007199254740993::int8`, `9007199254740993`}, // not representable in a float64
		{`1.5::float4`, `1.5`},
		{`0.1::float8`, `0.1`},
		{`1e300::float8`, `1e+300`},
		{`'NaN'::float8`, `"NaN"`},
		{`'-Infinity'::float8`, `"-Infinity"`},
		{`123456789012345678901234567890.123456789::numeric`, `"123456789012345678901234567890.123456789"`},
		{`1.50::numeric(10,2)`, `"1.50"`},
		{`'NaN'::numeric`, `"NaN"`},
		{`true`, `true`},
		{`false`, `false`},
		{`'héllo "q" \ ' || chr(10) || chr(1)`, `"héllo \"q\" \\ \n\u0001"`},
		{`'abc'::varchar(5)`, `"abc"`},
		{`'ab'::char(4)`, `"ab  "`},
		{`'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid`, `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`},
		{`'{"b": [1, 2.50, {"c": null}], "a": "x"}'::jsonb`, `{"a": "x", "b": [1, 2.50, {"c": null}]}`},
		{`'{"b":1,  "a":2}'::json`, `{"b":1,  "a":2}`},
		{`'"just a string"'::jsonb`, `"just a string"`},
		{`'2024-01-02 03:04:05.123456+02'::timestamptz`, `"2024-01-02T01:04:05.123456Z"`},
		{`'2024-01-02 03:04:05+00'::timestamptz`, `"2024-01-02T03:04:05Z"`},
		{`'2024-01-02 03:04:05.5'::timestamp`, `"2024-01-02T03:04:05.5"`},
		{`'infinity'::timestamptz`, `"infinity"`},
		{`'2024-02-29'::date`, `"2024-02-29"`},
		{`'13:14:15'::time`, `"13:14:15"`},
		{`'1 day 02:00:00'::interval`, `"1 day 02:00:00"`},
		{`'\x00ff10'::bytea`, `"AP8Q"`},
		{`''::bytea`, `""`},
		{`ARRAY[1, NULL, 3]::int[]`, `[1,null,3]`},
		{`ARRAY[[1, 2], [3, 4]]`, `[[1,2],[3,4]]`},
		{`'{}'::int[]`, `[]`},
		{`ARRAY['a', 'b c', '"q"', 'back\slash', 'NULL', NULL, '']`, `["a","b c","\"q\"","back\\slash","NULL",null,""]`},
		{`ARRAY[1.10, 2]::numeric[]`, `["1.10","2"]`},
		{`ARRAY[true, false]`, `[true,false]`},
		{`ARRAY['{"a": [1, "x,}"]}'::jsonb, 'null'::jsonb]`, `[{"a": [1, "x,}"]},null]`},
		{`ARRAY['2024-01-02 03:04:05+00'::timestamptz]`, `["2024-01-02T03:04:05Z"]`},
		{`ARRAY['\x01'::bytea, '\xff'::bytea]`, `["AQ==","/w=="]`},
		{`ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid]`, `["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]`},
		{`'[0:1]={7,8}'::int[]`, `[7,8]`},
		{`NULL::text`, `null`},
		{`NULL::int[]`, `null`},
		{`'happy'::public.mood`, `"happy"`},
		{`ARRAY['happy', 'sad']::public.mood[]`, `["happy","sad"]`},
		{`5::public.posint`, `5`},
		{`ARRAY['x']::public.tags`, `["x"]`},
		{`'(1,2)'::point`, `"(1,2)"`},
		{`'192.168.0.1/24'::inet`, `"192.168.0.1/24"`},
	}
	ctx := context.Background()
	for _, c := range cases {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := v.exec.Query(cctx, auth.Anon(), "SELECT "+c.expr+" AS v", nil)
		cancel()
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		want := `{"v":` + c.want + `}`
		if string(res.Rows[0]) != want {
			t.Errorf("%s:\n got %s\nwant %s", c.expr, res.Rows[0], want)
		}
		if !json.Valid(res.Rows[0]) {
			t.Errorf("%s: not valid JSON: %s", c.expr, res.Rows[0])
		}
	}
}

// JSON values in, typed binds: what PostgreSQL stores is what the JSON said.
func TestParamTypes(t *testing.T) {
	v := newEnv(t, sqlexec.Config{PoolSize: 1})
	v.execAdmin(t, `CREATE TABLE public.everything (
		i int, b bigint, n numeric, f float8, ok boolean, t text, u uuid, jb jsonb, j json,
		tz timestamptz, ts timestamp, d date, by bytea, ai int[], at text[], aj jsonb[], an numeric[]);
		GRANT SELECT, INSERT ON public.everything TO service_role`)
	req := `{"sql": "INSERT INTO everything VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING *",
		"params": [42, 9007199254740993, "123456789012345678901234567890.000000001", 0.1, true, "tab\tquote\"", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
			{"k": [1, "two", null]}, "a json string", "2024-01-02T03:04:05.123456+02:00", "2024-01-02T03:04:05", "2024-02-29", "AP8Q",
			[1, null, 3], ["a", "b,c", "\"q\"", "back\\slash", null], [{"x": 1}, "s"], [1.10, "2.5"]]}`
	reply := v.exec.Handle(context.Background(), auth.Service(), []byte(req))
	want := `{"rows":[{"i":42,"b":9007199254740993,"n":"123456789012345678901234567890.000000001","f":0.1,"ok":true,"t":"tab\tquote\"",` +
		`"u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","jb":{"k": [1, "two", null]},"j":"a json string","tz":"2024-01-02T01:04:05.123456Z",` +
		`"ts":"2024-01-02T03:04:05","d":"2024-02-29","by":"AP8Q","ai":[1,null,3],"at":["a","b,c","\"q\"","back\\slash",null],` +
		`"aj":[{"x": 1},"s"],"an":["1.10","2.5"]}],"rowCount":1,"command":"INSERT"}`
	if string(reply) != want {
		t.Errorf("\n got %s\nwant %s", reply, want)
	}
	// NULL for every type, and bytea given as \x hex.
	reply = v.exec.Handle(context.Background(), auth.Service(), []byte(`{"sql": "SELECT $1::int AS i, $2::jsonb AS jb, $3::int[] AS ai, $4::bytea AS by", "params": [null, null, null, "\\x0102"]}`))
	if want := `{"rows":[{"i":null,"jb":null,"ai":null,"by":"AQI="}],"rowCount":1,"command":"SELECT"}`; string(reply) != want {
		t.Errorf("\n got %s\nwant %s", reply, want)
	}
	// A value PostgreSQL cannot read is its error, not a trap.
	reply = v.exec.Handle(context.Background(), auth.Service(), []byte(`{"sql": "SELECT $1::uuid AS u", "params": ["not-a-uuid"]}`))
	if !bytes.Contains(reply, []byte(`"code":"22P02"`)) {
		t.Errorf("bad uuid: %s", reply)
	}
	reply = v.exec.Handle(context.Background(), auth.Service(), []byte(`{"sql": "SELECT $1::bytea AS b", "params": ["***"]}`))
	if !bytes.Contains(reply, []byte(`"code":"invalid_params"`)) {
		t.Errorf("bad base64: %s", reply)
	}
}

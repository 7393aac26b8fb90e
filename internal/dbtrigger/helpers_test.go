package dbtrigger_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/aerodb/aerofn/internal/testenv"
	"github.com/aerodb/aerofn/internal/testenv/guest"
)

// watOK succeeds at once with {"ok":true}: the trivial function.
const watOK = `(module
  (import "aerodb" "output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"ok\":true}")
  (func (export "handler") (result i32)
    (drop (call $out (i32.const 0) (i32.const 11)))
    (i32.const 0)))`

// watFail always fails.
const watFail = `(module
  (memory (export "memory") 1)
  (func (export "handler") (result i32) (i32.const 1)))`

func wat(t testing.TB, src string) []byte {
	t.Helper()
	b, err := wasmtime.Wat2Wasm(src)
	if err != nil {
		t.Fatalf("compiling wat: %v", err)
	}
	return b
}

// recorder builds testdata/recorder (see its doc) once per test binary.
func recorder(t testing.TB) []byte {
	return guest.Once(t, "./internal/dbtrigger/testdata/recorder")
}

func sqlExec(t testing.TB, e *testenv.Env, sql string, args ...any) {
	t.Helper()
	if _, err := e.Admin.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryInt(t testing.TB, e *testenv.Env, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.Admin.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// handledTable creates the recorder's table, writable by every function role.
func handledTable(t testing.TB, e *testenv.Env) {
	t.Helper()
	sqlExec(t, e, `CREATE TABLE handled (event_id text NOT NULL, attempt int NOT NULL, op text, tbl text, row_id text,
		role text, user_id text, ok boolean NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
		GRANT INSERT, SELECT ON handled TO anon, authenticated, service_role`)
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v (last: %s)", what, timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dbTrigger(table string, events ...string) map[string]any {
	return map[string]any{"type": "database", "table": table, "events": events}
}

func deployOn(t testing.TB, e *testenv.Env, name string, wasm []byte, cfg map[string]any) {
	t.Helper()
	if r := e.Deploy(name, wasm, cfg); r.Status != http.StatusCreated {
		t.Fatalf("deploying %s: %d %s", name, r.Status, r.Body)
	}
}

// successes counts a function's successful invocation records, in total
// and by distinct event (request_id).
func successes(t testing.TB, e *testenv.Env, fn string) (total, distinct int) {
	t.Helper()
	e.Flush()
	if err := e.Admin.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT request_id) FROM aerofn.invocations
		WHERE function_name = $1 AND trigger = 'database' AND status = 'success'`, fn).Scan(&total, &distinct); err != nil {
		t.Fatal(err)
	}
	return total, distinct
}

func contains(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

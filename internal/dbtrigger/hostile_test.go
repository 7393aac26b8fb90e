package dbtrigger_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
)

// watNulError fails with an error message holding a NUL and a byte that is
// not UTF-8.
const watNulError = `(module
  (import "aerodb" "output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "bad\00text\ff")
  (func (export "handler") (result i32)
    (drop (call $out (i32.const 0) (i32.const 9)))
    (i32.const 1)))`

// TestHostileErrorNeverJamsDeliveries: a function failing with NUL and
// invalid UTF-8 in its error becomes a dead letter with that error stored
// as valid text, and the deliveries of another function of the same table,
// finished beside it, end succeeded instead of staying running.
func TestHostileErrorNeverJamsDeliveries(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	sqlExec(t, e, `CREATE TABLE items (id int PRIMARY KEY)`)
	deployOn(t, e, "nul", wat(t, watNulError), map[string]any{"triggers": []any{
		map[string]any{"type": "database", "table": "items", "max_attempts": 1}}})
	deployOn(t, e, "good", wat(t, watOK), map[string]any{"triggers": []any{dbTrigger("items")}})
	const n = 20
	sqlExec(t, e, `INSERT INTO items SELECT generate_series(1, $1)`, n)
	states := func(fn string) string {
		rows, err := e.Admin.Query(t.Context(), `SELECT state, count(*) FROM aerofn.river_job
			WHERE kind = 'aerofn_db_event' AND args->>'function' = $1 GROUP BY state ORDER BY state`, fn)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		s := ""
		for rows.Next() {
			var st string
			var c int
			_ = rows.Scan(&st, &c)
			s += fmt.Sprintf("%s=%d ", st, c)
		}
		return s
	}
	eventually(t, 20*time.Second, "every delivery of good succeeded", func() (bool, string) {
		s := states("good")
		return s == fmt.Sprintf("completed=%d ", n), s
	})
	eventually(t, 20*time.Second, "every delivery of nul dead", func() (bool, string) {
		s := states("nul")
		return s == fmt.Sprintf("discarded=%d ", n), s
	})
	if bad := queryInt(t, e, `SELECT count(*) FROM aerofn.river_job WHERE args->>'function' = 'nul'
		AND errors::text NOT LIKE $1`, "%bad\uFFFDtext\uFFFD%"); bad != 0 {
		t.Fatalf("%d dead letters do not carry the error as valid text", bad)
	}
	e.Flush()
	if got := queryInt(t, e, `SELECT count(*) FROM aerofn.invocations WHERE function_name IN ('nul', 'good')`); got != 2*n {
		t.Fatalf("%d invocation records, want %d", got, 2*n)
	}
}

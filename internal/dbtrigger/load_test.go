package dbtrigger_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
)

// TestModuleThatCannotLoadIsDeadAtOnce: a delivery to a function whose
// module can never load (its stored bytes no longer match their hash, and
// no node has it compiled) goes to the dead letters on its first attempt,
// with the reason, instead of spending every retry; the invoker says why
// (invoker.ErrLoad) and the call is recorded.
func TestModuleThatCannotLoadIsDeadAtOnce(t *testing.T) {
	t.Parallel()
	first := testenv.Start(t)
	sqlExec(t, first, `CREATE TABLE loads (id int PRIMARY KEY)`)
	deployOn(t, first, "unloadable", wat(t, watOK), map[string]any{"triggers": []any{
		map[string]any{"type": "database", "table": "loads", "max_attempts": 5}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := first.Server.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	sqlExec(t, first, `UPDATE aerofn.modules SET bytes = overlay(bytes placing '\x00'::bytea from 9)`)
	sqlExec(t, first, `DELETE FROM aerofn.artifacts`)
	e := testenv.StartOn(t, first.DatabaseURL)
	sqlExec(t, e, `INSERT INTO loads VALUES (1)`)
	var attempt int
	var errs string
	eventually(t, 20*time.Second, "the delivery dead", func() (bool, string) {
		err := e.Admin.QueryRow(ctx, `SELECT attempt, errors::text FROM aerofn.river_job
			WHERE kind = 'aerofn_db_event' AND args->>'function' = 'unloadable' AND state IN ('cancelled', 'discarded')`).Scan(&attempt, &errs)
		return err == nil, errs
	})
	if attempt != 1 || !strings.Contains(errs, "cannot be loaded") {
		t.Fatalf("dead after attempt %d with %s; want 1 attempt and the load failure", attempt, errs)
	}
	e.Flush()
	if n := queryInt(t, e, `SELECT count(*) FROM aerofn.invocations WHERE function_name = 'unloadable' AND status = 'error'
		AND error LIKE 'loading module%'`); n != 1 {
		t.Fatalf("%d failed invocations recorded, want 1", n)
	}
}

package scheduler_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/aerodb/aerofn/internal/testenv"
	watfix "github.com/aerodb/aerofn/internal/testenv/wat"
)

// watSleepTmpl sleeps through poll_oneoff (a monotonic clock subscription
// whose timeout is the data at offset 24) and returns {}.
const watSleepTmpl = `(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "aerodb" "output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\01\00\00\00\00\00\00\00")
  (data (i32.const 16) "\01\00\00\00")
  (data (i32.const 24) "%s")
  (data (i32.const 300) "{}")
  (func (export "handler") (result i32)
    (drop (call $poll (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))
    (drop (call $out (i32.const 300) (i32.const 2)))
    (i32.const 0)))`

// startNode starts an in-process node on a fresh database, sharing the
// test server with the other in-process tests but not with the tests that
// run real processes.
func startNode(t testing.TB) *testenv.Env {
	t.Helper()
	database.RLock()
	t.Cleanup(database.RUnlock) // first registered, so run after the node stops
	return testenv.Start(t)
}

func wat(t testing.TB, src string) []byte {
	t.Helper()
	b, err := wasmtime.Wat2Wasm(src)
	if err != nil {
		t.Fatalf("compiling WAT: %v\n%s", err, src)
	}
	return b
}

func echoModule(t testing.TB) []byte { return wat(t, watfix.Echo) }

// sleepModule sleeps d per call.
func sleepModule(t testing.TB, d time.Duration) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(d.Nanoseconds()))
	var esc strings.Builder
	for _, c := range b {
		fmt.Fprintf(&esc, "\\%02x", c)
	}
	return wat(t, fmt.Sprintf(watSleepTmpl, esc.String()))
}

func schedule(cron string, extra ...map[string]any) map[string]any {
	tr := map[string]any{"type": "schedule", "cron": cron}
	for _, x := range extra {
		for k, v := range x {
			tr[k] = v
		}
	}
	return map[string]any{"triggers": []any{tr}}
}

// runRow is a row of aerofn.schedule_runs.
type runRow struct {
	Index         int
	ScheduledTime time.Time
	Kind, State   string
	Missed        int
	Node          string
	InvocationID  string
	Role          string
	Status        string
	Error         string
	Note          string
	Output        string
	StartedAt     *time.Time
	FinishedAt    *time.Time
}

// runs returns a function's runs by scheduled time.
func runs(t testing.TB, e *testenv.Env, name string) []runRow {
	t.Helper()
	return runsWhere(t, e, name, "true")
}

func runsWhere(t testing.TB, e *testenv.Env, name, cond string) []runRow {
	t.Helper()
	rows, err := e.Admin.Query(context.Background(), `SELECT r.trigger_index, r.scheduled_time, r.kind, r.state, r.missed_count,
			coalesce(r.node, ''), coalesce(r.invocation_id::text, ''), coalesce(r.role, ''), coalesce(r.status, ''),
			coalesce(r.error, ''), coalesce(r.note, ''), coalesce(r.output, ''), r.started_at, r.finished_at
		FROM aerofn.schedule_runs r
		WHERE r.function_id IN (SELECT id FROM aerofn.functions WHERE name = $1
			UNION SELECT function_id::uuid FROM aerofn.invocations WHERE function_name = $1)
			AND `+cond+`
		ORDER BY r.scheduled_time`, name)
	if err != nil {
		t.Fatalf("reading runs: %v", err)
	}
	defer rows.Close()
	var out []runRow
	for rows.Next() {
		var r runRow
		if err := rows.Scan(&r.Index, &r.ScheduledTime, &r.Kind, &r.State, &r.Missed, &r.Node, &r.InvocationID, &r.Role,
			&r.Status, &r.Error, &r.Note, &r.Output, &r.StartedAt, &r.FinishedAt); err != nil {
			t.Fatalf("reading runs: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading runs: %v", err)
	}
	return out
}

func count(rs []runRow, state string) int {
	n := 0
	for _, r := range rs {
		if r.State == state {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dbNow(t testing.TB, e *testenv.Env) time.Time {
	t.Helper()
	var now time.Time
	if err := e.Admin.QueryRow(context.Background(), `SELECT clock_timestamp()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

func exec(t testing.TB, e *testenv.Env, sql string, args ...any) {
	t.Helper()
	if _, err := e.Admin.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// lateness returns the p50 and p95 of started_at - scheduled_time of runs
// of kind tick.
func lateness(rs []runRow) (p50, p95 time.Duration, n int) {
	var ds []time.Duration
	for _, r := range rs {
		if r.StartedAt != nil && r.Kind == "tick" {
			ds = append(ds, r.StartedAt.Sub(r.ScheduledTime))
		}
	}
	if len(ds) == 0 {
		return 0, 0, 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)*50/100], ds[min(len(ds)-1, len(ds)*95/100)], len(ds)
}

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/testenv"
)

// busyNode starts a node that admits one call at a time and takes its
// slot with a call held in the host until release is called (also at the
// end of the test).
func busyNode(t *testing.T) (e *testenv.Env, release func()) {
	t.Helper()
	e = testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.MaxConcurrency = 1 }})
	sig := newSignalServer(t, true)
	e.MustDeploy("hold", compile(t, watSignalThen(sig.URL+"/held", tailNone)),
		map[string]any{"verify_jwt": false, "allowed_hosts": []string{"127.0.0.1"}, "timeout": 60})
	held := make(chan testenv.Response, 1)
	go func() { held <- e.Invoke("hold", "", nil) }()
	sig.wait(t, 1, 20*time.Second)
	once := sync.OnceFunc(func() {
		close(sig.Release)
		if r := <-held; r.Status != http.StatusOK {
			t.Errorf("the held call: %d %s", r.Status, r.Body)
		}
	})
	t.Cleanup(once)
	return e, once
}

// until polls cond (a database condition, not a guess at timing) until it
// holds, failing the test after d.
func until(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (%s)", what, d, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func queryOne[T any](t *testing.T, e *testenv.Env, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := e.Admin.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// TestAdmissionHTTP429: a node whose only slot is taken answers an HTTP call
// 429 with Retry-After and the JSON error, records nothing for it, and
// runs the same call once the slot is free.
func TestAdmissionHTTP429(t *testing.T) {
	e, release := busyNode(t)
	e.MustDeploy("echo", compile(t, watEcho), map[string]any{"verify_jwt": false})
	r := e.Invoke("echo", "", map[string]int{"n": 1})
	if r.Status != http.StatusTooManyRequests || r.Code() != "too_many_requests" || r.JSON(t)["message"] == nil {
		t.Fatalf("at the limit: %d %s, want 429 too_many_requests", r.Status, r.Body)
	}
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	release()
	if r := e.Invoke("echo", "", map[string]int{"n": 2}); r.Status != http.StatusOK {
		t.Fatalf("after the slot is free: %d %s", r.Status, r.Body)
	}
	e.Flush()
	if n := queryOne[int](t, e, `SELECT count(*) FROM aerofn.invocations WHERE function_name = 'echo'`); n != 1 {
		t.Fatalf("%d records for echo, want 1 (a refused call is not an invocation)", n)
	}
}

// TestAdmissionDatabaseTriggerSnooze: a delivery that finds the node full
// is snoozed (River's snooze: no attempt spent, no error), not failed, so a
// function allowed a single attempt does not lose it to the dead letters;
// once the node has room it runs exactly once.
func TestAdmissionDatabaseTriggerSnooze(t *testing.T) {
	e, release := busyNode(t)
	ctx := context.Background()
	if _, err := e.Admin.Exec(ctx, `CREATE TABLE adm_items (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	e.MustDeploy("on-item", compile(t, watEcho), map[string]any{
		"triggers": []any{map[string]any{"type": "database", "table": "public.adm_items", "max_attempts": 1}}})
	if _, err := e.Admin.Exec(ctx, `INSERT INTO adm_items VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	job := func() (state string, snoozes, attempt int, errs string) {
		_ = e.Admin.QueryRow(ctx, `SELECT state, coalesce((metadata->>'snoozes')::int, 0), attempt, coalesce(errors::text, '')
			FROM aerofn.river_job WHERE kind = 'aerofn_db_event' AND args->>'function' = 'on-item'`).Scan(&state, &snoozes, &attempt, &errs)
		return
	}
	until(t, 20*time.Second, "the delivery snoozed twice while the node is full", func() (bool, string) {
		state, snoozes, attempt, errs := job()
		if state == "discarded" || state == "cancelled" || state == "completed" || errs != "" {
			t.Fatalf("while the node is full the delivery went %s after %d snoozes (attempt %d, errors %s)", state, snoozes, attempt, errs)
		}
		return snoozes >= 2, fmt.Sprintf("%s, %d snoozes", state, snoozes)
	})
	release()
	until(t, 20*time.Second, "the delivery completed", func() (bool, string) {
		state, snoozes, attempt, errs := job()
		if state == "discarded" || state == "cancelled" {
			t.Fatalf("the delivery went %s (attempt %d, errors %s)", state, attempt, errs)
		}
		return state == "completed", fmt.Sprintf("%s, %d snoozes", state, snoozes)
	})
	if _, _, attempt, errs := job(); attempt != 1 || errs != "" {
		t.Fatalf("completed at attempt %d with errors %s, want the first attempt and none", attempt, errs)
	}
	e.Flush()
	if n := queryOne[int](t, e, `SELECT count(*) FROM aerofn.invocations WHERE function_name = 'on-item'`); n != 1 {
		t.Fatalf("%d invocations for one change, want 1", n)
	}
}

// TestAdmissionScheduleHandBack: a tick due while the node is full is
// handed back (pending, not failed) and runs once the node has room,
// exactly once; no tick of the schedule fails for want of a slot.
func TestAdmissionScheduleHandBack(t *testing.T) {
	e, release := busyNode(t)
	e.MustDeploy("tick", compile(t, watEcho), map[string]any{
		"triggers": []any{map[string]any{"type": "schedule", "cron": "* * * * * *"}}})
	fnID := queryOne[string](t, e, `SELECT id::text FROM aerofn.functions WHERE name = 'tick'`)
	// A tick that has been due for a second has been claimed and handed
	// back (claims come within 250 ms, retried every 200 ms while busy).
	var first time.Time
	until(t, 20*time.Second, "a tick due for a second while the node is full", func() (bool, string) {
		err := e.Admin.QueryRow(context.Background(), `SELECT scheduled_time FROM aerofn.schedule_runs
			WHERE function_id = $1 AND scheduled_time < now() - interval '1 second' ORDER BY scheduled_time LIMIT 1`, fnID).Scan(&first)
		return err == nil, fmt.Sprint(err)
	})
	var state string
	_ = e.Admin.QueryRow(context.Background(), `SELECT state FROM aerofn.schedule_runs WHERE function_id = $1 AND scheduled_time = $2`, fnID, first).Scan(&state)
	if state != "pending" && state != "running" {
		t.Fatalf("a tick due while the node is full is %s, want pending (handed back)", state)
	}
	releasedAt := queryOne[time.Time](t, e, `SELECT now()`)
	release()
	until(t, 20*time.Second, "the handed-back tick succeeded", func() (bool, string) {
		var st string
		_ = e.Admin.QueryRow(context.Background(), `SELECT state FROM aerofn.schedule_runs WHERE function_id = $1 AND scheduled_time = $2`, fnID, first).Scan(&st)
		return st == "succeeded", st
	})
	e.Flush()
	reqID := queryOne[string](t, e, `SELECT 'schedule/' || function_id::text || '/' || trigger_index || '/' || to_char(scheduled_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '%'
		FROM aerofn.schedule_runs WHERE function_id = $1 AND scheduled_time = $2`, fnID, first)
	if n := queryOne[int](t, e, `SELECT count(*) FROM aerofn.invocations WHERE function_name = 'tick' AND request_id LIKE $1`, reqID); n != 1 {
		t.Fatalf("%d invocations of the handed-back tick (%s), want exactly 1", n, reqID)
	}
	// The call began (its record's created_at) once the slot was free. The
	// run's started_at says when it was claimed, which may come before: a
	// claim committed just before the release can be admitted just after.
	began := queryOne[time.Time](t, e, `SELECT created_at FROM aerofn.invocations WHERE function_name = 'tick' AND request_id LIKE $1`, reqID)
	if began.Before(releasedAt) {
		t.Fatalf("the tick due at %v began at %v, before the slot was free at %v", first, began, releasedAt)
	}
	if n := queryOne[int](t, e, `SELECT count(*) FROM aerofn.schedule_runs WHERE function_id = $1 AND state = 'failed'`, fnID); n != 0 {
		t.Fatalf("%d ticks failed; a tick the node could not admit must be handed back", n)
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/testenv"
)

// stopMargin is how long past the shutdown timeout a stop may take: the
// interrupted calls unwind (an epoch tick, a host call's context) and the
// records writer drains.
const stopMargin = 2 * time.Second

// stopFixture deploys the functions a stop test runs: two that spin in wasm
// and one that sleeps in the host, none of which ends by itself before its
// 20 s timeout, and one that ends 300 ms after it starts.
func stopFixture(t *testing.T, e *testenv.Env, sig *signalServer) (long []string, short string) {
	t.Helper()
	cfg := map[string]any{"allowed_hosts": []string{"127.0.0.1"}, "timeout": 20}
	e.MustDeploy("spin", compile(t, watSignalThen(sig.URL+"/spin", tailSpin)), cfg)
	e.MustDeploy("nap", compile(t, watSignalThen(sig.URL+"/nap", tailSleep(20*time.Second))), cfg)
	e.MustDeploy("brief", compile(t, watSignalThen(sig.URL+"/brief", tailSleep(300*time.Millisecond))), cfg)
	return []string{"spin", "spin", "nap"}, "brief"
}

// startCalls starts one call per name and returns their answers once all
// have come back.
func startCalls(e *testenv.Env, names []string) func() []testenv.Response {
	out := make([]testenv.Response, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = e.Invoke(n, e.AnonKey, nil)
		}()
	}
	return func() []testenv.Response { wg.Wait(); return out }
}

// checkStopRecords checks that every call has its record: interrupted for
// the long ones, success for the short one.
func checkStopRecords(t *testing.T, e *testenv.Env, long []string, short string) {
	t.Helper()
	rows, err := e.Admin.Query(context.Background(), `SELECT function_name, status, coalesce(error, '') FROM aerofn.invocations ORDER BY function_name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var fn, status, msg string
		if err := rows.Scan(&fn, &status, &msg); err != nil {
			t.Fatal(err)
		}
		got[fn+"/"+status]++
		if status == "interrupted" && !strings.Contains(msg, "stopping") {
			t.Errorf("record of an interrupted %s says %q", fn, msg)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{short + "/success": 1}
	for _, n := range long {
		want[n+"/interrupted"]++
	}
	if len(got) != len(want) {
		t.Fatalf("records: %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("records: %v, want %v", got, want)
		}
	}
}

func checkStopAnswers(t *testing.T, rs []testenv.Response, long []string) {
	t.Helper()
	for i, r := range rs[:len(long)] {
		if r.Status != 503 || r.Code() != "interrupted" {
			t.Errorf("call of %s cut off by the stop: %d %s", long[i], r.Status, r.Body)
		}
	}
	if r := rs[len(long)]; r.Status != 200 || string(r.Body) != `{"done":true}` {
		t.Errorf("call that ends within the shutdown timeout: %d %s", r.Status, r.Body)
	}
}

// A node stopped while calls run past its shutdown timeout stops within the
// timeout (plus a small margin), answers the cut-off calls 503
// "interrupted", lets a call that ends in time finish, and records every
// call. Before the fix the stop waited for the calls' own timeouts and then
// panicked with "send on closed channel" in records.(*Writer).Add.
func TestStopInterruptsCallsPastShutdownTimeout(t *testing.T) {
	e := testenv.Start(t)
	sig := newSignalServer(t, false)
	long, short := stopFixture(t, e, sig)
	answers := startCalls(e, append(long, short))
	sig.wait(t, len(long)+1, 30*time.Second)

	const timeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	if err := e.Server.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	took := time.Since(start)
	if took > timeout+stopMargin {
		t.Errorf("stop took %v with a %v shutdown timeout", took, timeout)
	}
	t.Logf("stop took %v with a %v shutdown timeout", took, timeout)
	checkStopAnswers(t, answers(), long)
	checkStopRecords(t, e, long, short)
	if err := e.Server.Stop(context.Background()); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

// The same with the real binary and SIGINT: the process exits 0 within
// AEROFN_SHUTDOWN_TIMEOUT plus a margin, does not panic, and every call has
// its record and its stdout line.
func TestBinaryStopInterruptsCallsPastShutdownTimeout(t *testing.T) {
	dbURL := dbtest.NewDatabase(t)
	const timeout = 2 * time.Second
	p := testenv.StartBinary(t, dbURL, "AEROFN_SHUTDOWN_TIMEOUT="+timeout.String())
	e := testenv.EnvFor(t, dbURL, p)
	sig := newSignalServer(t, false)
	long, short := stopFixture(t, e, sig)
	answers := startCalls(e, append(long, short))
	sig.wait(t, len(long)+1, 30*time.Second)

	start := time.Now()
	err := p.Stop()
	took := time.Since(start)
	if err != nil {
		t.Errorf("stop: %v", err)
	}
	if strings.Contains(p.Output(), "panic") {
		t.Errorf("stderr:\n%s", p.Output())
	}
	if took > timeout+stopMargin {
		t.Errorf("the process took %v to exit with a %v shutdown timeout", took, timeout)
	}
	t.Logf("the process exited %v after SIGINT with a %v shutdown timeout", took, timeout)
	checkStopAnswers(t, answers(), long)
	checkStopRecords(t, e, long, short)
	interrupted := 0
	for _, l := range p.StdoutLines() {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["status"] == "interrupted" {
			interrupted++
		}
	}
	if interrupted != len(long) {
		t.Errorf("%d interrupted lines on stdout, want %d:\n%s", interrupted, len(long), strings.Join(p.StdoutLines(), "\n"))
	}
}

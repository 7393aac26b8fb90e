package scheduler_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aerodb/aerofn/internal/cluster"
	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/testenv"
)

// database limits how many nodes this package runs at once: three aerofn
// processes hold about sixty connections of a test server that other
// packages share. Tests with real processes take it exclusively, the others
// shared (see startNode).
var database sync.RWMutex

// startProcesses starts n aerofn processes on a fresh database, holding the
// test server exclusively (see database), and returns an Env on the first.
func startProcesses(t *testing.T, n int) (*testenv.Env, []*testenv.Process, string) {
	t.Helper()
	database.Lock()
	t.Cleanup(database.Unlock) // first registered, so run after the processes are gone
	dbURL := dbtest.NewDatabase(t)
	procs := make([]*testenv.Process, n)
	for i := range procs {
		procs[i] = testenv.StartBinary(t, dbURL)
	}
	return testenv.EnvFor(t, dbURL, procs[0]), procs, dbURL
}

// tickerNode returns the node name of the session holding the ticker lock.
func tickerNode(t testing.TB, e *testenv.Env) string {
	t.Helper()
	n := currentTicker(t, e)
	if n == "" {
		t.Fatal("no node holds the ticker lock")
	}
	return n
}

// currentTicker is tickerNode, or "" while no node ticks.
func currentTicker(t testing.TB, e *testenv.Env) string {
	t.Helper()
	var app string
	err := e.Admin.QueryRow(context.Background(), `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int8 AND l.objid = 0 AND l.objsubid = 2
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`, int64(cluster.NodeSpace)).Scan(&app)
	if errors.Is(err, pgx.ErrNoRows) {
		return ""
	}
	if err != nil {
		t.Fatalf("finding the ticker: %v", err)
	}
	if !strings.HasPrefix(app, cluster.ApplicationNamePrefix) {
		t.Fatalf("ticker session %q", app)
	}
	return strings.TrimPrefix(app, cluster.ApplicationNamePrefix)
}

// nodePID is the process id inside a default node name host:pid:random.
func nodePID(t testing.TB, node string) int {
	parts := strings.Split(node, ":")
	if len(parts) != 3 {
		t.Fatalf("node name %q", node)
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil {
		t.Fatalf("node name %q: %v", node, err)
	}
	return pid
}

// TestThreeProcessesKillTheTicker runs three aerofn processes on one
// database with an every-second schedule for 30 s: each tick is recorded
// and run exactly once. Then the process that ticks is killed with SIGKILL:
// another takes over, no tick runs twice and no gap between runs exceeds
// two seconds.
func TestThreeProcessesKillTheTicker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 45 s")
	}
	t.Parallel()
	e, procs, dbURL := startProcesses(t, 3)
	e.MustDeploy("tick", echoModule(t), schedule("* * * * * *"))
	deployed := dbNow(t, e)

	time.Sleep(30 * time.Second)
	first := tickerNode(t, e)
	pid := nodePID(t, first)
	var victim *testenv.Process
	for _, p := range procs {
		if p.Cmd.Process.Pid == pid {
			victim = p
		}
	}
	if victim == nil {
		t.Fatalf("the ticker %s is none of the three processes", first)
	}
	killed := dbNow(t, e)
	victim.Kill()
	t.Logf("killed the ticker %s at %s", first, killed.Format(time.RFC3339Nano))
	if victim == procs[0] {
		e = testenv.EnvFor(t, dbURL, procs[1])
	}
	time.Sleep(10 * time.Second)
	second := tickerNode(t, e)
	if second == first {
		t.Fatalf("the killed node %s still ticks", first)
	}
	end := dbNow(t, e).Add(-2 * time.Second)

	rs := runsWhere(t, e, "tick", "r.scheduled_time <= '"+end.Format(time.RFC3339Nano)+"'")
	if len(rs) < 38 {
		t.Fatalf("only %d ticks recorded in 40 s", len(rs))
	}
	if !rs[0].ScheduledTime.After(deployed.Add(-time.Second)) || rs[0].ScheduledTime.After(deployed.Add(time.Second)) {
		t.Fatalf("first tick %s, deployed at %s", rs[0].ScheduledTime, deployed)
	}
	perNode := map[string]int{}
	interrupted := 0
	var prevStart time.Time
	var maxGap time.Duration
	for i, r := range rs {
		// Every second from the first tick on has its row: none missing, and
		// the primary key allows no second one.
		if want := rs[0].ScheduledTime.Add(time.Duration(i) * time.Second); !r.ScheduledTime.Equal(want) {
			t.Fatalf("tick %d is %s, want %s: a tick is missing", i, r.ScheduledTime, want)
		}
		switch r.State {
		case "succeeded":
		case "interrupted":
			// The victim was running it when it died; it must not run again.
			if r.Node != first {
				t.Fatalf("run interrupted on a live node: %+v", r)
			}
			interrupted++
		default:
			t.Fatalf("tick %s: %+v", r.ScheduledTime, r)
		}
		if r.Kind != "tick" {
			t.Fatalf("a leader change was treated as an outage: %+v", r)
		}
		if i > 0 {
			gap := r.StartedAt.Sub(prevStart)
			maxGap = max(maxGap, gap)
			if gap > 2*time.Second {
				for _, x := range rs[max(0, i-3):min(len(rs), i+3)] {
					t.Logf("%s %s started %s late, node %s", x.ScheduledTime.Format(time.TimeOnly), x.State, x.StartedAt.Sub(x.ScheduledTime), x.Node)
				}
				t.Fatalf("%s between runs at %s", gap, r.ScheduledTime)
			}
		}
		prevStart = *r.StartedAt
		perNode[r.Node]++
	}

	// Each tick was invoked at most once: the invocation records (the
	// victim may have lost its last unwritten ones) never repeat a tick.
	var dup, invocations int
	if err := e.Admin.QueryRow(context.Background(), `SELECT coalesce(max(n), 0), coalesce(sum(n), 0) FROM (
			SELECT count(*) AS n FROM aerofn.invocations WHERE function_name = 'tick' AND trigger = 'schedule' GROUP BY request_id) x`).Scan(&dup, &invocations); err != nil {
		t.Fatal(err)
	}
	if dup > 1 {
		t.Fatalf("a tick was invoked %d times", dup)
	}
	if invocations < len(rs)-5 {
		t.Fatalf("%d invocations recorded for %d ticks", invocations, len(rs))
	}

	p50, p95, n := lateness(rs)
	var worst time.Duration
	for _, r := range rs {
		if r.ScheduledTime.After(killed) {
			worst = max(worst, r.StartedAt.Sub(r.ScheduledTime))
		}
	}
	t.Logf("%d ticks, %d interrupted, runs per node %v, ticker %s then %s", len(rs), interrupted, perNode, first, second)
	t.Logf("lateness over %d ticks: p50 %s, p95 %s; worst after the kill %s; longest gap between starts %s", n, p50, p95, worst, maxGap)
}

// TestKillMidRun: a node killed while it runs a tick leaves that tick
// interrupted, never run a second time; the next tick runs on another node.
func TestKillMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes for about 15 s")
	}
	t.Parallel()
	e, procs, dbURL := startProcesses(t, 2)
	cfg := schedule("*/4 * * * * *")
	cfg["timeout"] = 10
	e.MustDeploy("slow", sleepModule(t, 3*time.Second), cfg)

	var victim runRow
	waitFor(t, 15*time.Second, "a run in progress", func() bool {
		rs := runsWhere(t, e, "slow", "r.state = 'running'")
		if len(rs) == 1 && time.Since(*rs[0].StartedAt) > 300*time.Millisecond {
			victim = rs[0]
			return true
		}
		return false
	})
	var killed *testenv.Process
	for _, p := range procs {
		if p.Cmd.Process.Pid == nodePID(t, victim.Node) {
			killed = p
		}
	}
	if killed == nil {
		t.Fatalf("run on unknown node %s", victim.Node)
	}
	killed.Kill()
	if killed == procs[0] {
		e = testenv.EnvFor(t, dbURL, procs[1])
	}
	waitFor(t, 5*time.Second, "the run marked interrupted", func() bool {
		return len(runsWhere(t, e, "slow", "r.state = 'interrupted'")) == 1
	})
	waitFor(t, 15*time.Second, "a later run on the other node", func() bool {
		return len(runsWhere(t, e, "slow", "r.state = 'succeeded' AND r.scheduled_time > '"+victim.ScheduledTime.Format(time.RFC3339Nano)+"'")) >= 1
	})
	rs := runs(t, e, "slow")
	for _, r := range rs {
		if r.ScheduledTime.Equal(victim.ScheduledTime) {
			if r.State != "interrupted" || r.Node != victim.Node || !strings.Contains(r.Note, "not run again") {
				t.Fatalf("the interrupted tick: %+v", r)
			}
		} else if r.ScheduledTime.After(victim.ScheduledTime) && r.State == "succeeded" && r.Node == victim.Node {
			t.Fatalf("the dead node ran a later tick: %+v", r)
		}
	}
	var n int
	if err := e.Admin.QueryRow(context.Background(), `SELECT count(*) FROM aerofn.invocations WHERE request_id LIKE '%' || $1`,
		victim.ScheduledTime.UTC().Format(time.RFC3339Nano)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		// The victim died before recording its call; a second node's call
		// would be recorded.
		t.Fatalf("the interrupted tick has %d invocation records", n)
	}
}

// TestFrozenTickerIsEvicted: a ticker that stops (SIGSTOP: its TCP
// connection stays up, so its lock does not free by itself) is found silent
// by another node, which ends its session and ticks; when it wakes it does
// not tick again, and no tick runs twice.
func TestFrozenTickerIsEvicted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes for about 25 s")
	}
	t.Parallel()
	e, procs, dbURL := startProcesses(t, 2)
	// Overlap "queue": the late ticks of the frozen stretch are due at once
	// after the takeover, and under "skip" one that finds the previous
	// still running on a loaded machine is rightly skipped; this test is
	// about eviction, so every tick must run.
	e.MustDeploy("tick", echoModule(t), schedule("* * * * * *", map[string]any{"overlap": "queue"}))
	waitFor(t, 10*time.Second, "runs", func() bool { return count(runs(t, e, "tick"), "succeeded") >= 2 })
	first := tickerNode(t, e)
	var frozen, other *testenv.Process
	for _, p := range procs {
		if p.Cmd.Process.Pid == nodePID(t, first) {
			frozen = p
		} else {
			other = p
		}
	}
	if err := frozen.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := dbNow(t, e)
	e = testenv.EnvFor(t, dbURL, other)
	waitFor(t, 20*time.Second, "another ticker", func() bool { n := currentTicker(t, e); return n != "" && n != first })
	took := dbNow(t, e).Sub(stopped)
	t.Logf("a new ticker took over %s after the old one froze", took)
	waitFor(t, 5*time.Second, "a run after the takeover", func() bool {
		return len(runsWhere(t, e, "tick", "r.state = 'succeeded' AND r.node <> '"+first+"'")) > 0 &&
			len(runsWhere(t, e, "tick", "r.state = 'succeeded' AND r.started_at > '"+stopped.Add(took).Format(time.RFC3339Nano)+"'")) > 0
	})
	if err := frozen.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if n := currentTicker(t, e); n == first {
		t.Fatalf("the woken node %s took the ticker back at once", n)
	}
	e.Flush()
	var dup int
	if err := e.Admin.QueryRow(context.Background(), `SELECT coalesce(max(n), 0) FROM (
			SELECT count(*) AS n FROM aerofn.invocations WHERE function_name = 'tick' GROUP BY request_id) x`).Scan(&dup); err != nil {
		t.Fatal(err)
	}
	if dup > 1 {
		t.Fatalf("a tick was invoked %d times", dup)
	}
	// The eviction comes well within the grace: the ticks of the frozen
	// stretch ran late, each once; none was lost or folded into a catch-up.
	rs := runsWhere(t, e, "tick", "r.state <> 'pending' AND r.state <> 'running'")
	for i := 1; i < len(rs); i++ {
		if rs[i].ScheduledTime.Sub(rs[i-1].ScheduledTime) != time.Second || rs[i].Kind != "tick" {
			t.Fatalf("after %s: %+v", rs[i-1].ScheduledTime, rs[i])
		}
		if rs[i].State != "succeeded" && !(rs[i].State == "interrupted" && rs[i].Node == first) {
			t.Fatalf("tick %+v", rs[i])
		}
	}
}

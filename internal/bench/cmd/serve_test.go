package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/bench"
)

func TestFormat(t *testing.T) {
	for f, want := range map[float64]string{0: "0", 999.6: "1,000", 38838: "38,838", 1234567: "1,234,567"} {
		if got := thousands(f); got != want {
			t.Errorf("thousands(%v) = %s, want %s", f, got, want)
		}
	}
	for d, want := range map[time.Duration]string{700 * time.Microsecond: "0.70", 19200 * time.Microsecond: "19.2", 327 * time.Millisecond: "327"} {
		if got := msf(d); got != want {
			t.Errorf("msf(%v) = %s, want %s", d, got, want)
		}
	}
}

func TestNewLoadConfig(t *testing.T) {
	t.Setenv("CI", "")
	c, err := newLoadConfig(2000, "", 0, 0, "auto", false)
	if err != nil || !c.npm || c.quick || len(c.levels) != 4 || c.rounds != 3 {
		t.Fatalf("full run: %+v %v", c, err)
	}
	c, _ = newLoadConfig(100, "", 0, 0, "auto", false)
	if c.npm || !c.quick || c.duration != time.Second || c.rounds != 1 || !strings.Contains(c.npmWhy, "quick") {
		t.Fatalf("smoke run: %+v", c)
	}
	if c, _ = newLoadConfig(100, "", 2*time.Second, 2, "all", false); !c.npm || c.duration != 2*time.Second || c.rounds != 2 {
		t.Fatalf("flags: %+v", c)
	}
	t.Setenv("CI", "true")
	if c, _ = newLoadConfig(2000, "", 0, 0, "auto", false); c.npm || !strings.Contains(c.npmWhy, "CI=true") {
		t.Fatalf("CI: %+v", c)
	}
	if _, err := newLoadConfig(2000, "", 0, 0, "some", false); err == nil {
		t.Fatal("accepted -peers some")
	}
}

func TestCheckHello(t *testing.T) {
	if err := checkHello(200, []byte(`{"message":"Hello, World!"}`)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		status int
		body   string
	}{{500, `{"message":"Hello, World!"}`}, {200, `{"message":"Hello, Nobody!"}`}, {200, `not json`}} {
		if checkHello(bad.status, []byte(bad.body)) == nil {
			t.Errorf("accepted %d %s", bad.status, bad.body)
		}
	}
}

// TestProcess: a process that exits early is reported with its output, one
// that never gets ready is given up on after the timeout, and kill ends it.
func TestProcess(t *testing.T) {
	dir := t.TempDir()
	never := func(context.Context) error { return errors.New("not yet") }

	p, err := startProcess("quitter", dir, os.Environ(), false, "/bin/sh", "-c", "echo going away >&2; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	err = p.waitReady(context.Background(), time.Minute, never)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "going away") {
		t.Fatalf("early exit: %v", err)
	}

	p, err = startProcess("sleeper", dir, os.Environ(), true, "/bin/sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := p.waitReady(context.Background(), 200*time.Millisecond, never); err == nil || !strings.Contains(err.Error(), "not ready after") {
		t.Fatalf("timeout: %v", err)
	}
	if time.Since(t0) > 10*time.Second {
		t.Fatalf("waited %s", time.Since(t0))
	}
	p.kill()
	if !p.exited() {
		t.Fatal("still running after kill")
	}
	if err := syscall.Kill(p.pid(), 0); err == nil {
		t.Fatal("the process still exists")
	}

	p, err = startProcess("stoppable", dir, os.Environ(), true, "/bin/sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	p.stop(10 * time.Second)
	if !p.exited() {
		t.Fatal("still running after stop")
	}
}

// TestNPMPeersUnreachable: without npm, or with a registry that cannot be
// reached, the bench says why and goes on with no npm peers.
func TestNPMPeersUnreachable(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	npm, npmErr := exec.LookPath("npm")

	t.Setenv("PATH", t.TempDir())
	ps, notes := npmPeers(context.Background())
	if len(ps) != 0 || len(notes) != 1 || !strings.Contains(notes[0], "npm is not installed") {
		t.Fatalf("without npm: %d peers, notes %q", len(ps), notes)
	}

	if npmErr != nil {
		return // the case above is this machine's case
	}
	t.Setenv("PATH", filepath.Dir(npm)+":/usr/bin:/bin")
	t.Setenv("npm_config_registry", "http://127.0.0.1:1/")
	t.Setenv("npm_config_fetch_retries", "0")
	t.Setenv("npm_config_offline", "false")
	t.Setenv("npm_config_cache", t.TempDir()) // nothing cached to install from
	ps, notes = npmPeers(context.Background())
	if len(ps) != 0 || len(notes) != 1 || !strings.Contains(notes[0], "npm could not install workerd and deno") ||
		!strings.Contains(notes[0], "ECONNREFUSED") {
		t.Fatalf("unreachable registry: %d peers, notes %q", len(ps), notes)
	}
}

func TestNPMReason(t *testing.T) {
	const out = "npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/workerd - Not found\nnpm error A complete log of this run can be found in: /x.log\n"
	if got := npmReason(out); got != "404 Not Found - GET https://registry.npmjs.org/workerd - Not found" {
		t.Fatal(got)
	}
	if got := npmReason("something odd\n"); got != "something odd" {
		t.Fatal(got)
	}
}

// fakeTarget has one cell per level with the given req/s and p99.
func fakeTarget(name string, rps map[int]float64, p99 time.Duration) *target {
	t := &target{name: name, cells: map[int][]cell{}}
	for c, r := range rps {
		t.cells[c] = []cell{{res: bench.LoadResult{Requests: int64(r), Duration: time.Second, P50: p99 / 2, P99: p99},
			cpu: bench.ProcStat{User: time.Duration(r) * time.Microsecond}}}
	}
	return t
}

func TestTargetRows(t *testing.T) {
	s := &serveBench{cfg: loadConfig{levels: []int{1, 64}, firstCalls: 2}, gen: bench.GoLoad{}}
	ts := []*target{
		fakeTarget("aerofn: echo (WAT)", map[int]float64{1: 5000, 64: 9000}, 10*time.Millisecond),
		fakeTarget("aerofn: hello (Go SDK)", map[int]float64{1: 4000, 64: 5000}, 30*time.Millisecond),
		fakeTarget("native Go net/http", map[int]float64{1: 20000, 64: 20000}, time.Millisecond),
	}
	rows := s.targetRows(ts, recorded{n: 100, want: 100, p50: 600 * time.Microsecond}, coldRef{p50: 500 * time.Microsecond})
	verdicts := map[string]string{}
	for _, r := range rows {
		verdicts[r[0]] = r[2]
	}
	for name, want := range map[string]string{
		"echo (WAT) at 64 connections ≥ workerd's req/s":                                                                             "NOT met: not measured, workerd did not run",
		"echo (WAT) at 64 connections ≥ 40% of the native handler's req/s":                                                           "met",
		"aerofn: echo (WAT): req/s at 64 connections ≥ 1.7x at 1":                                                                    "met",
		"aerofn: hello (Go SDK): req/s at 64 connections ≥ 1.7x at 1":                                                                "NOT met: throughput does not grow",
		"aerofn: echo (WAT): p99 at 64 connections ≤ 20.0 ms":                                                                        "met",
		"aerofn: hello (Go SDK): p99 at 64 connections ≤ 20.0 ms":                                                                    "NOT met: 1.5x the bound",
		"hello's server-recorded duration_ms p50 (its 1-connection calls, aerofn.invocations) ≤ 1.25x the in-process cold start p50": "met",
	} {
		if got, ok := verdicts[name]; !ok || !strings.HasPrefix(got, want) {
			t.Errorf("%s: got %q, want %q…", name, got, want)
		}
	}
	if got := verdicts["aerofn: hello (Go SDK): p99 at 64 connections ≤ 20.0 ms"]; strings.Contains(got, "native Go handler") {
		t.Errorf("hello's p99 row speaks of loaded native rows that did not run: %q", got)
	}
	ts = append(ts, fakeTarget("workerd", map[int]float64{1: 8000, 64: 12000}, time.Millisecond),
		fakeTarget(loadedNativeName(10*time.Microsecond), map[int]float64{1: 15000, 64: 15000}, 25*time.Millisecond))
	rows = s.targetRows(ts, recorded{n: 90, want: 100, p50: time.Millisecond}, coldRef{p50: 500 * time.Microsecond, gapP50: 800 * time.Microsecond})
	for _, r := range rows {
		switch {
		case strings.HasPrefix(r[0], "echo (WAT) at 64 connections ≥ workerd"):
			if r[2] != "NOT met: 75% of the target ratio" || !strings.Contains(r[1], "0.75x") {
				t.Errorf("echo vs workerd: %q", r)
			}
		case strings.HasPrefix(r[0], "hello (Go SDK) at 64 connections ≥ half"):
			if r[2] != "NOT met: 83% of the target ratio" { // 5,000 / 12,000 = 0.42 of 0.5
				t.Errorf("hello vs workerd: %q", r)
			}
		case strings.HasPrefix(r[0], "aerofn: hello (Go SDK): p99"):
			want := "NOT met: 1.5x the bound, at 1 µs of CPU a call; the native Go handler's p99 in the same run: 1.00 ms bare (1 µs of CPU a call), 25.0 ms with 10 µs more a request (1 µs)"
			if r[2] != want {
				t.Errorf("hello's p99:\n got %q\nwant %q", r[2], want)
			}
		case strings.HasPrefix(r[0], "hello's server-recorded"):
			if !strings.HasPrefix(r[2], "NOT met") || !strings.Contains(r[1], "90 records of 100 calls") ||
				!strings.Contains(r[2], "hello's p50 is 0.80 ms (the recorded p50 is 1.25x that)") {
				t.Errorf("recorded: %q", r)
			}
		}
	}
	// The report renders every row and the figures per call.
	sec := s.section(ts, firstCallResults{deploy: []time.Duration{time.Second}, onB: []time.Duration{60 * time.Millisecond},
		restarted: []time.Duration{time.Millisecond}, failsRestarted: 1, problems: []string{"B answered 503"}}, recorded{}, coldRef{})
	for _, want := range []string{"| aerofn: echo (WAT) | 1 | 5,000 | 5.00 | 10.0 | 1 | 0 | 0.0 | 0 |", "| workerd | 8,000 | 12,000 | 0.50 / 1.00 ms |",
		"≤ 2000 ms each | met |", "≤ 50.0 ms each | NOT met: the slowest took 1.2x the target |",
		"| 1.00, 1 failed | ≤ 50.0 ms each | NOT met: 1 of 2 failed (see the problems below) |", "Problem: B answered 503"} {
		if !strings.Contains(sec.Table, want) {
			t.Errorf("report lacks %q:\n%s", want, sec.Table)
		}
	}
}

// TestStartListeningRetriesATakenPort: a server that exits because its
// port was taken is started again on another; any other failure is not.
func TestStartListeningRetriesATakenPort(t *testing.T) {
	dir := t.TempDir()
	var tracked []*process
	t.Cleanup(func() {
		for _, p := range tracked {
			p.kill()
		}
	})
	track := func(p *process) { tracked = append(tracked, p) }
	var addrs []string
	start := func(addr string) (*process, error) {
		addrs = append(addrs, addr)
		if len(addrs) == 1 {
			return startProcess("server", dir, os.Environ(), false, "/bin/sh", "-c", "echo 'listen tcp "+addr+": bind: address already in use' >&2; exit 1")
		}
		return startProcess("server", dir, os.Environ(), false, "/bin/sleep", "600")
	}
	ready := func(_ context.Context, addr string) error {
		if addr != addrs[len(addrs)-1] {
			return errors.New("asked about an old address")
		}
		if len(addrs) < 2 {
			return errors.New("not yet")
		}
		return nil
	}
	p, err := startListening(context.Background(), time.Minute, start, ready, track)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 2 || p.addr != addrs[1] || len(tracked) != 2 || !tracked[0].exited() {
		t.Fatalf("addrs %v, p.addr %s, %d tracked", addrs, p.addr, len(tracked))
	}

	_, err = startListening(context.Background(), time.Minute, func(string) (*process, error) {
		return startProcess("broken", dir, os.Environ(), false, "/bin/sh", "-c", "echo 'no config' >&2; exit 1")
	}, func(context.Context, string) error { return errors.New("not yet") }, track)
	if err == nil || !strings.Contains(err.Error(), "no config") || len(tracked) != 3 {
		t.Fatalf("a broken server: %v (%d tracked)", err, len(tracked))
	}
}

// The bench waits for a node that reports no background load, and does
// not wait forever for an aerofn that reports nothing.
func TestBusyIn(t *testing.T) {
	idle := "# HELP x\naerofn_modules_compiling 0\naerofn_modules_background_pending 0\naerofn_js_runtime_warming 0\n"
	if b, err := busyIn(idle); b != "" || err != nil {
		t.Fatalf("idle page: %q %v", b, err)
	}
	if b, err := busyIn(strings.Replace(idle, "aerofn_js_runtime_warming 0", "aerofn_js_runtime_warming 1", 1)); b != "aerofn_js_runtime_warming=1" || err != nil {
		t.Fatalf("warming page: %q %v", b, err)
	}
	if b, err := busyIn(strings.Replace(idle, "aerofn_modules_compiling 0", "aerofn_modules_compiling 2", 1)); b == "" || err != nil {
		t.Fatalf("compiling page: %q %v", b, err)
	}
	// A module still on the cheap tier: its optimised compile or load is
	// to come. An older aerofn without the gauge is still waited for.
	if b, err := busyIn(idle + "aerofn_modules_cheap 1\n"); b != "aerofn_modules_cheap=1" || err != nil {
		t.Fatalf("cheap-tier page: %q %v", b, err)
	}
	if b, err := busyIn(idle + "aerofn_modules_cheap 0\n"); b != "" || err != nil {
		t.Fatalf("optimised page: %q %v", b, err)
	}
	if _, err := busyIn("go_goroutines 12\n"); !errors.Is(err, errNoGauges) {
		t.Fatalf("page without the gauges: %v", err)
	}
}

// A cold-only run (no load targets) still writes its report.
func TestColdOnlySection(t *testing.T) {
	s := &serveBench{cfg: loadConfig{levels: []int{1, 64}, firstCalls: 1, coldOnly: true}, gen: bench.GoLoad{}}
	sec := s.section(nil, firstCallResults{deploy: []time.Duration{time.Second}, deployCPU: []bench.ProcStat{{User: time.Second}}}, recorded{}, coldRef{p50: time.Millisecond})
	if !strings.Contains(sec.Table, "node A's CPU over each deploy") {
		t.Fatalf("report: %s", sec.Table)
	}
}

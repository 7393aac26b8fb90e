package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/bench"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/testenv/wat"
)

// loadConfig says how much the server-under-load section measures.
type loadConfig struct {
	aerofnBin  string // "" builds ./cmd/aerofn
	levels     []int  // connections
	rounds     int
	duration   time.Duration // of one cell: one target at one level
	warmup     time.Duration
	firstCalls int    // repetitions of each first-call measurement
	coldOnly   bool   // measure the cold paths only, no load
	npm        bool   // workerd and Deno
	npmWhy     string // why not, when !npm
	quick      bool
}

// newLoadConfig fills the defaults: a full run measures every level three
// times for 2 s; a small n (CI's smoke run, -n 100) one round of 1 s at two
// levels without the npm peers, which still drives the real binary through
// every step so the code path cannot rot.
func newLoadConfig(n int, aerofnBin string, duration time.Duration, rounds int, peers string, coldOnly bool) (loadConfig, error) {
	c := loadConfig{aerofnBin: aerofnBin, quick: n < 1000, coldOnly: coldOnly}
	if c.quick {
		c.levels, c.rounds, c.duration, c.warmup, c.firstCalls = []int{1, 64}, 1, time.Second, time.Second, 1
	} else {
		c.levels, c.rounds, c.duration, c.warmup, c.firstCalls = []int{1, 2, 64, 512}, 3, 2*time.Second, time.Second, 3
	}
	if duration > 0 {
		c.duration = duration
	}
	if rounds > 0 {
		c.rounds = rounds
	}
	switch {
	case peers == "all":
		c.npm = true
	case peers == "none":
		c.npmWhy = "skipped by -peers none"
	case peers != "auto":
		return c, fmt.Errorf("-peers: want auto, all or none, got %q", peers)
	case os.Getenv("CI") == "true":
		c.npmWhy = "skipped because CI=true (run `make bench` for them)"
	case c.quick:
		c.npmWhy = fmt.Sprintf("skipped in a quick run (-n %d < 1000; run `make bench` for them)", n)
	default:
		c.npm = true
	}
	return c, nil
}

// cell is one load-generator run against one target at one level.
type cell struct {
	res bench.LoadResult
	cpu bench.ProcStat
}

// target is one row group of the table: a handler behind a server process.
type target struct {
	name, version string
	proc          *process
	url           string
	headers       map[string]string
	requestID     string // aerofn only: prefix of X-Request-Id, to find the calls' records
	check         func(status int, body []byte) error
	cells         map[int][]cell
	rss, hwm      int64 // bytes: most VmRSS seen at the top level; VmHWM after it
	dead          string
}

func (t *target) request(conns, round int) bench.Request {
	h := maps.Clone(t.headers)
	if t.requestID != "" {
		h["X-Request-Id"] = fmt.Sprintf("%s-c%d-r%d", t.requestID, conns, round)
	}
	return bench.Request{URL: t.url, Body: helloRequest, Headers: h}
}

// summary is a target's cells at one level, across rounds.
type summary struct {
	n              int // cells
	rps            float64
	p50, p99       time.Duration
	requests, errs int64
	cpu            bench.ProcStat // summed over the cells
}

// at summarises the cells at conns: medians of the rounds' req/s and
// percentiles; CPU time and faults summed over all rounds and divided by
// all their requests, so the 10 ms tick of /proc is small beside it.
func (t *target) at(conns int) (summary, bool) {
	cs := t.cells[conns]
	if len(cs) == 0 {
		return summary{}, false
	}
	var rps []float64
	var p50, p99 []time.Duration
	s := summary{n: len(cs)}
	for _, c := range cs {
		rps = append(rps, c.res.RPS())
		p50 = append(p50, c.res.P50)
		p99 = append(p99, c.res.P99)
		s.requests += c.res.Requests
		s.errs += c.res.Errors()
		s.cpu = s.cpu.Add(c.cpu)
	}
	s.rps, s.p50, s.p99 = bench.Median(rps), bench.Median(p50), bench.Median(p99)
	return s, true
}

// aerofnNode is an aerofn serve process with its own data directory.
type aerofnNode struct {
	*process
	base, dataDir string
}

// serveBench is the state of one run of the section.
type serveBench struct {
	cfg       loadConfig
	tmp       string
	bin       string
	dbURL     string
	svc, anon string
	gen       bench.LoadGen
	procs     []*process
	notes     []string
	idle      []idleReading

	loadBefore, loadAfter string
}

func (s *serveBench) killAll() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].kill()
	}
}

// serverUnderLoad measures aerofn serve as a process of its own under load,
// beside the same handler in other runtimes, interleaved.
func serverUnderLoad(ctx context.Context, adminURL string, coldHello coldRef, cfg loadConfig) (bench.Section, error) {
	tmp, err := os.MkdirTemp("", "aerofn-bench-serve-")
	if err != nil {
		return bench.Section{}, err
	}
	defer os.RemoveAll(tmp)
	s := &serveBench{cfg: cfg, tmp: tmp, loadBefore: bench.LoadAverage()}
	defer s.killAll()

	if w := bench.FindWrk(tmp); w != nil {
		s.gen = w
	} else {
		s.gen = bench.GoLoad{}
		s.notes = append(s.notes, "wrk is not installed (scripts/ensure-wrk.sh installs it), so a Go load generator ran instead: it takes several times wrk's CPU from the servers it measures, and every figure here is lower than it should be.")
	}
	if s.bin = cfg.aerofnBin; s.bin == "" {
		s.bin = filepath.Join(tmp, "aerofn")
		fmt.Fprintln(os.Stderr, "building aerofn...")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", s.bin, "./cmd/aerofn").CombinedOutput(); err != nil {
			return bench.Section{}, fmt.Errorf("building aerofn: %v\n%s", err, out)
		}
	}
	hello, err := example("hello")
	if err != nil {
		return bench.Section{}, err
	}
	dbURL, drop, err := bench.CreateDatabase(ctx, adminURL)
	if err != nil {
		return bench.Section{}, err
	}
	defer drop()
	s.dbURL = dbURL
	s.svc, _ = auth.Sign(jwtSecret, auth.RoleService, "", time.Hour)
	s.anon, _ = auth.Sign(jwtSecret, auth.RoleAnon, "", time.Hour)

	t0 := time.Now()
	a, err := s.startNode(ctx, "aerofn-A")
	if err != nil {
		return bench.Section{}, err
	}
	s.waitIdle(ctx, a, "before the deploys")
	fc, err := s.firstCalls(ctx, a, hello)
	if err != nil {
		return bench.Section{}, err
	}
	fmt.Fprintf(os.Stderr, "server under load: cold paths done (%s)\n", time.Since(t0).Round(time.Second))
	if s.cfg.coldOnly {
		s.loadAfter = bench.LoadAverage()
		return s.section(nil, fc, recorded{}, coldHello), nil
	}

	targets, err := s.targets(ctx, a)
	if err != nil {
		return bench.Section{}, err
	}
	s.waitIdle(ctx, a, "before the load")
	if err := s.load(ctx, targets); err != nil {
		return bench.Section{}, err
	}
	recorded, err := s.recordedDuration(ctx, targets[1])
	if err != nil {
		return bench.Section{}, err
	}
	s.loadAfter = bench.LoadAverage()
	return s.section(targets, fc, recorded, coldHello), nil
}

// aerofnEnv is the node's environment. The per-function cap on records is
// lifted: one run calls hello well over the default 100,000 times, and at
// the cap the node prunes the oldest records (the one-connection cells'
// calls, which the recorded-duration row reads) while later cells run.
func (s *serveBench) aerofnEnv(addr, dataDir string) []string {
	return peerEnv("AEROFN_DATABASE_URL="+s.dbURL, "AEROFN_LISTEN="+addr, "AEROFN_JWT_SECRET="+jwtSecret,
		"AEROFN_SECRETS_KEY="+secretsKey, "AEROFN_DATA_DIR="+dataDir, "AEROFN_SHUTDOWN_TIMEOUT=5s",
		"AEROFN_RECORDS_MAX_PER_FUNCTION=0")
}

// startNode starts aerofn serve with an empty data directory and waits for
// /healthz. Its stdout, one JSON line per call, is discarded.
func (s *serveBench) startNode(ctx context.Context, name string) (*aerofnNode, error) {
	dataDir, err := os.MkdirTemp(s.tmp, name+"-data-")
	if err != nil {
		return nil, err
	}
	p, err := startListening(ctx, 2*time.Minute, func(addr string) (*process, error) {
		return startProcess(name, s.tmp, s.aerofnEnv(addr, dataDir), true, s.bin, "serve")
	}, func(ctx context.Context, addr string) error {
		return healthy("http://" + addr)(ctx)
	}, s.track)
	if err != nil {
		return nil, err
	}
	return &aerofnNode{process: p, base: "http://" + p.addr, dataDir: dataDir}, nil
}

func (s *serveBench) track(p *process) { s.procs = append(s.procs, p) }

// deployed is what a deploy answered, and how long it took.
type deployed struct {
	version int
	took    time.Duration
	// nodes and ready: the answer's propagation (0 from an aerofn without it).
	nodes, ready int
}

// deploy uploads wasm as function name.
func (s *serveBench) deploy(ctx context.Context, n *aerofnNode, name string, wasm []byte) (deployed, error) {
	var buf bytes.Buffer
	ct, body := form(name, wasm, &buf)
	req, err := http.NewRequestWithContext(ctx, "POST", n.base+"/admin/v1/functions", body)
	if err != nil {
		return deployed{}, err
	}
	req.Header.Set("Authorization", "Bearer "+s.svc)
	req.Header.Set("Content-Type", ct)
	t0 := time.Now()
	resp, err := oneShot.Do(req)
	if err != nil {
		return deployed{}, fmt.Errorf("deploying %s on %s: %w", name, n.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	d := time.Since(t0)
	var out struct {
		Version     int
		Propagation struct{ Nodes, Ready int }
	}
	if resp.StatusCode != 201 || json.Unmarshal(b, &out) != nil || out.Version == 0 {
		return deployed{}, fmt.Errorf("deploying %s on %s: %d %.300s", name, n.name, resp.StatusCode, b)
	}
	return deployed{version: out.Version, took: d, nodes: out.Propagation.Nodes, ready: out.Propagation.Ready}, nil
}

// firstCallResults are the cold paths: deploy, first calls elsewhere.
type firstCallResults struct {
	deploy, onA, onB, restartHealthy, restarted []time.Duration
	deployCPU                                   []bench.ProcStat // node A's, over each deploy
	failsA, failsB, failsRestarted              int              // calls that failed or ran a stale version
	problems                                    []string
}

// firstCalls deploys hello on node A while node B runs, times B's first
// call, and then restarts B with an empty data directory and times its
// first call again. Each repetition deploys the module under a new hash.
func (s *serveBench) firstCalls(ctx context.Context, a *aerofnNode, hello []byte) (firstCallResults, error) {
	var r firstCallResults
	b, err := s.startNode(ctx, "aerofn-B")
	if err != nil {
		return r, err
	}
	s.waitIdle(ctx, b, "before the deploys")
	// A first call that fails is retried until it succeeds (30 s at most),
	// so the report can say how long the node took to serve after all.
	call := func(n *aerofnNode, reqID string) (time.Duration, error) {
		h := map[string]string{"Authorization": "Bearer " + s.anon, "X-Request-Id": reqID}
		t0 := time.Now()
		status, body, d, err := post(ctx, n.base+"/functions/v1/hello", helloRequest, h)
		if err == nil {
			err = checkHello(status, body)
		}
		if err == nil {
			return d, nil
		}
		first := err
		for tries := 1; time.Since(t0) < 30*time.Second && ctx.Err() == nil; tries++ {
			time.Sleep(10 * time.Millisecond)
			status, body, _, err := post(ctx, n.base+"/functions/v1/hello", helloRequest, h)
			if err == nil && checkHello(status, body) == nil {
				return 0, fmt.Errorf("the first call of hello on %s failed (%v); the first success came %s later, at try %d",
					n.name, first, time.Since(t0).Round(time.Millisecond), tries+1)
			}
		}
		return 0, fmt.Errorf("calling hello on %s: %v; no success in 30 s", n.name, first)
	}
	want := map[string]int{} // request id → version deployed just before
	for i := range s.cfg.firstCalls {
		wasm := hello
		if i > 0 {
			wasm = engine.WithCustomSection(hello, fmt.Sprintf("aerofn-bench-%d-%d", time.Now().UnixNano(), i))
		}
		before, _ := bench.ReadStat(a.pid())
		dep, err := s.deploy(ctx, a, "hello", wasm)
		if err != nil {
			return r, err
		}
		v := dep.version
		after, _ := bench.ReadStat(a.pid())
		r.deploy = append(r.deploy, dep.took)
		if dep.ready < dep.nodes {
			r.problems = append(r.problems, fmt.Sprintf("the deploy of version %d answered with %d of %d nodes serving it (the propagation timeout passed)", v, dep.ready, dep.nodes))
		}
		r.deployCPU = append(r.deployCPU, after.Sub(before))
		id := fmt.Sprintf("bench-first-b-%d", i)
		if d, err := call(b, id); err != nil {
			r.problems = append(r.problems, err.Error())
			r.failsB++
		} else {
			r.onB = append(r.onB, d)
			want[id] = v
		}
		if d, err := call(a, fmt.Sprintf("bench-first-a-%d", i)); err != nil {
			r.problems = append(r.problems, err.Error())
			r.failsA++
		} else {
			r.onA = append(r.onA, d)
		}
		// The deploy answered on the cheap tier; the optimised compile
		// runs on A in the background and B then loads it. The next
		// measurement does not share the cores with it.
		s.waitIdle(ctx, a, fmt.Sprintf("after deploy %d", i+1))
		s.waitIdle(ctx, b, fmt.Sprintf("after deploy %d", i+1))
	}
	for i := range s.cfg.firstCalls {
		b.stop(15 * time.Second)
		if err := os.RemoveAll(b.dataDir); err != nil {
			return r, err
		}
		t0 := time.Now()
		if b, err = s.startNode(ctx, fmt.Sprintf("aerofn-B-restart-%d", i)); err != nil {
			return r, err
		}
		r.restartHealthy = append(r.restartHealthy, time.Since(t0))
		if d, err := call(b, fmt.Sprintf("bench-restart-b-%d", i)); err != nil {
			r.problems = append(r.problems, err.Error())
			r.failsRestarted++
		} else {
			r.restarted = append(r.restarted, d)
		}
	}
	b.stop(15 * time.Second)
	// A node that answered from a cached older version did not pay the
	// first call; say so.
	got, err := s.versions(ctx, slices.Collect(maps.Keys(want)))
	if err != nil {
		return r, err
	}
	for id, v := range want {
		if _, ok := got[id]; !ok {
			r.problems = append(r.problems, fmt.Sprintf("no invocation record of node B's first call (request id %s) arrived within 30 s", id))
			r.failsB++
		} else if got[id] != v {
			r.failsB++
			r.problems = append(r.problems, fmt.Sprintf("node B's first call after deploying version %d ran version %d", v, got[id]))
		}
	}
	return r, nil
}

// versions reads which version served each request id, waiting for the
// records (written in the background) to arrive.
func (s *serveBench) versions(ctx context.Context, ids []string) (map[string]int, error) {
	conn, err := pgx.Connect(ctx, s.dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	got := map[string]int{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, _ := conn.Query(ctx, `SELECT request_id, version FROM aerofn.invocations WHERE request_id = ANY($1)`, ids)
		var id string
		var v int
		if _, err := pgx.ForEachRow(rows, []any{&id, &v}, func() error { got[id] = v; return nil }); err != nil {
			return nil, fmt.Errorf("reading invocation records: %w", err)
		}
		if len(got) == len(ids) || time.Now().After(deadline) {
			return got, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// targets deploys the WAT echo on node A and starts the peers, each
// checked once with a real request before any load.
func (s *serveBench) targets(ctx context.Context, a *aerofnNode) ([]*target, error) {
	if _, err := s.deploy(ctx, a, "echo-wat", wat.Compile(wat.Echo)); err != nil {
		return nil, err
	}
	auth := map[string]string{"Authorization": "Bearer " + s.anon}
	checkEcho := func(status int, body []byte) error {
		if status != 200 || !bytes.Contains(body, []byte(`"name":"World"`)) {
			return fmt.Errorf("want 200 and the event back, got %d %.200s", status, body)
		}
		return nil
	}
	ts := []*target{
		{name: "aerofn: echo (WAT)", proc: a.process, url: a.base + "/functions/v1/echo-wat", headers: auth, requestID: "bench-echo-wat", check: checkEcho},
		{name: "aerofn: hello (Go SDK)", proc: a.process, url: a.base + "/functions/v1/hello", headers: auth, requestID: "bench-hello", check: checkHello},
	}
	peers, err := nativePeers(ctx, s.tmp)
	if err != nil {
		return nil, err
	}
	if s.cfg.npm {
		ps, notes := npmPeers(ctx)
		peers = append(peers, ps...)
		s.notes = append(s.notes, notes...)
	} else {
		s.notes = append(s.notes, "workerd and Deno "+s.cfg.npmWhy+".")
	}
	if node, ok := nodePeer(ctx); ok {
		peers = append(peers, node)
	} else {
		s.notes = append(s.notes, "Node.js is not installed; its row is missing.")
	}
	ready := ts
	for _, p := range peers {
		proc, err := startListening(ctx, time.Minute, func(addr string) (*process, error) {
			return p.start(addr, s.tmp)
		}, func(ctx context.Context, addr string) error {
			status, body, _, err := post(ctx, "http://"+addr+"/", helloRequest, nil)
			if err != nil {
				return err
			}
			return checkHello(status, body)
		}, s.track)
		if err != nil {
			if p.name == nativeName {
				return nil, err
			}
			s.notes = append(s.notes, fmt.Sprintf("%s did not start: %v", p.name, firstLine(err.Error())))
			continue
		}
		ready = append(ready, &target{name: p.name, version: p.version, proc: proc, url: "http://" + proc.addr + "/", headers: map[string]string{}, check: checkHello})
	}
	for _, t := range ready {
		status, body, _, err := post(ctx, t.url, helloRequest, t.headers)
		if err == nil {
			err = t.check(status, body)
		}
		if err != nil {
			return nil, fmt.Errorf("%s before any load: %w", t.name, err)
		}
		t.cells = map[int][]cell{}
	}
	return ready, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// load runs the rounds: in each, every level, and at each level every
// target in an order that rotates from round to round.
func (s *serveBench) load(ctx context.Context, ts []*target) error {
	t0 := time.Now()
	top := s.cfg.levels[len(s.cfg.levels)-1]
	for _, t := range ts {
		if _, err := s.gen.Run(ctx, t.request(64, -1), min(64, top), s.cfg.warmup); err != nil {
			return fmt.Errorf("warming up %s: %w", t.name, err)
		}
	}
	for round := range s.cfg.rounds {
		for li, conns := range s.cfg.levels {
			for i := range ts {
				t := ts[(i+round+li)%len(ts)]
				if t.dead != "" {
					continue
				}
				c, err := s.measure(ctx, t, conns, round, conns == top)
				if err == nil && t.proc.exited() {
					err = fmt.Errorf("%s exited under load (%v); %s", t.name, t.proc.err, t.proc.logTail())
				}
				if err != nil {
					if t.requestID != "" || ctx.Err() != nil {
						return err
					}
					t.dead = firstLine(err.Error())
					s.notes = append(s.notes, fmt.Sprintf("%s failed and its remaining cells were skipped: %s", t.name, t.dead))
					continue
				}
				t.cells[conns] = append(t.cells[conns], c)
			}
			fmt.Fprintf(os.Stderr, "server under load: round %d/%d, %d connections done (%s)\n", round+1, s.cfg.rounds, conns, time.Since(t0).Round(time.Second))
		}
	}
	for _, t := range ts {
		if m, err := bench.ReadStatus(t.proc.pid()); err == nil {
			t.hwm = m.HWM
		}
	}
	return nil
}

// measure runs one cell and reads the server's CPU time and page faults
// around it. The end reading waits for the process to go idle, so work a
// server does after answering (aerofn writes its invocation records in the
// background) is charged to the calls that caused it.
func (s *serveBench) measure(ctx context.Context, t *target, conns, round int, sampleRSS bool) (cell, error) {
	pid := t.proc.pid()
	before, err := bench.ReadStat(pid)
	if err != nil {
		return cell{}, err
	}
	stop, sampled := make(chan struct{}), make(chan int64)
	go func(sample bool) {
		var most int64
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for sample {
			if m, err := bench.ReadStatus(pid); err == nil {
				most = max(most, m.RSS)
			}
			select {
			case <-stop:
				sample = false
			case <-tick.C:
			}
		}
		sampled <- most
	}(sampleRSS)
	res, err := s.gen.Run(ctx, t.request(conns, round), conns, s.cfg.duration)
	close(stop)
	t.rss = max(t.rss, <-sampled)
	if err != nil {
		return cell{}, fmt.Errorf("%s at %d connections: %w", t.name, conns, err)
	}
	after, err := settle(ctx, pid)
	if err != nil {
		return cell{}, err
	}
	return cell{res: res, cpu: after.Sub(before)}, nil
}

// settle waits until pid has used no CPU for 100 ms (at most 2 s) and
// returns its reading then.
func settle(ctx context.Context, pid int) (bench.ProcStat, error) {
	prev, err := bench.ReadStat(pid)
	if err != nil {
		return prev, err
	}
	still := 0
	deadline := time.Now().Add(2 * time.Second)
	for still < 2 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		cur, err := bench.ReadStat(pid)
		if err != nil {
			return cur, err
		}
		if cur.User+cur.System == prev.User+prev.System {
			still++
		} else {
			still = 0
		}
		prev = cur
	}
	return prev, nil
}

// recorded is what aerofn itself recorded for hello's one-connection cells.
type recorded struct {
	n, want int64
	p50     time.Duration
}

func (s *serveBench) recordedDuration(ctx context.Context, hello *target) (recorded, error) {
	var r recorded
	for _, c := range hello.cells[1] {
		r.want += c.res.Requests
	}
	if r.want == 0 {
		return r, nil
	}
	conn, err := pgx.Connect(ctx, s.dbURL)
	if err != nil {
		return r, err
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(30 * time.Second)
	for {
		var p50 *float64
		if err := conn.QueryRow(ctx, `SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)
			FROM aerofn.invocations WHERE function_name = 'hello' AND request_id LIKE $1`, hello.requestID+"-c1-%").Scan(&r.n, &p50); err != nil {
			return r, fmt.Errorf("reading hello's recorded durations: %w", err)
		}
		if p50 != nil {
			r.p50 = time.Duration(*p50 * float64(time.Millisecond))
		}
		// The server may have finished a few calls wrk stopped waiting for.
		if r.n >= r.want || time.Now().After(deadline) {
			return r, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// idleReading is one wait for an idle node: how long it took, and the
// server's CPU over the idle second that followed.
type idleReading struct {
	node, when string
	waited     time.Duration
	cpu        bench.ProcStat
	err        string
}

// busyGauges are the node's metrics that say it is loading modules in the
// background (internal/server/metrics.go).
var busyGauges = []string{"aerofn_modules_compiling", "aerofn_modules_background_pending", "aerofn_js_runtime_warming"}

// laterBusyGauges are busy gauges that an older aerofn lacks:
// aerofn_modules_cheap counts modules still on the cheap tier a deploy
// compiles first, whose optimised compile (on the deploying node) or
// load (on the others) is still to come.
var laterBusyGauges = []string{"aerofn_modules_cheap"}

// waitIdle waits until node n reports no compile or module load in
// progress (its /metrics), then reads its CPU time over one second, which
// proves it idle: a measurement that follows is not sharing the cores with
// a background compile. The reading goes into the report.
func (s *serveBench) waitIdle(ctx context.Context, n *aerofnNode, when string) {
	r := idleReading{node: n.name, when: when}
	defer func() { s.idle = append(s.idle, r) }()
	t0 := time.Now()
	for {
		busy, err := s.busy(ctx, n)
		if err == nil && busy == "" {
			break
		}
		if errors.Is(err, errNoGauges) {
			r.err = err.Error() + "; idle CPU measured without waiting"
			break
		}
		if time.Since(t0) > 5*time.Minute || ctx.Err() != nil {
			r.err = fmt.Sprintf("still busy after %s (%s %v)", time.Since(t0).Round(time.Second), busy, err)
			return
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	r.waited = time.Since(t0)
	before, err := bench.ReadStat(n.pid())
	if err != nil {
		r.err = err.Error()
		return
	}
	time.Sleep(time.Second) // the idle second measured
	after, err := bench.ReadStat(n.pid())
	if err != nil {
		r.err = err.Error()
		return
	}
	r.cpu = after.Sub(before)
}

// busy returns the first busy gauge of n that is not zero, "" when none.
func (s *serveBench) busy(ctx context.Context, n *aerofnNode) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", n.base+"/metrics", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.svc)
	resp, err := oneShot.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return "", fmt.Errorf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return busyIn(string(b))
}

var errNoGauges = fmt.Errorf("/metrics lacks %v (an older aerofn)", busyGauges)

// busyIn reads the busy gauges from a /metrics page.
func busyIn(page string) (string, error) {
	seen := 0
	for _, line := range strings.Split(page, "\n") {
		for _, g := range laterBusyGauges {
			if v, ok := strings.CutPrefix(line, g+" "); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || f != 0 {
					return g + "=" + v, nil
				}
			}
		}
		for _, g := range busyGauges {
			if v, ok := strings.CutPrefix(line, g+" "); ok {
				seen++
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil || f != 0 {
					return g + "=" + v, nil
				}
			}
		}
	}
	if seen < len(busyGauges) {
		return "", errNoGauges
	}
	return "", nil
}

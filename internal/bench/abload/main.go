// Command abload compares aerofn binaries, or one binary under different
// settings, under wrk load: each variant is its own `aerofn serve` on its own
// database with the target functions deployed, and the variants are loaded
// in turn, their order rotating from round to round, so that a burst of
// other work on a shared machine lands on each of them alike. Per cell it
// prints wrk's req/s and percentiles, the server's CPU time and page faults
// per call (/proc/PID/stat), the CPU of the PostgreSQL backends connected to
// the variant's database per call (the records' COPY), Go's mallocs per call
// (go_memstats_mallocs_total), how long the server's threads waited for a
// CPU per call (/proc/PID/task/*/schedstat) and the run gate's waits (the
// last three from /metrics and /proc). A cell's readings are taken once the
// server has been idle for 100 ms after the load, so the records written
// after the answers are charged to their calls. At the end, per target,
// level and variant: the medians over rounds, the CPU per call summed over
// the rounds before dividing, the ratios against the first variant in the
// same rounds (p99 with the rounds it was lower in, req/s, server and
// server + PostgreSQL CPU per call), and the recorded duration_ms
// percentiles of its calls.
//
//	go run ./internal/bench/abload -v old=/tmp/aerofn-old -v new=bin/aerofn,GOGC=400 -c 64,1 -rounds 8 -d 4s
//	go run ./internal/bench/abload -v old=old/aerofn -v new=new/aerofn -t echo-wat,hello -c 1,64 -rounds 4 -d 5s
//
// A variant is name=binary[,KEY=value...]: KEY=value pairs are added to the
// server's environment, except @examples=DIR, which makes the variant deploy
// DIR/<name>.wasm for a target named by its example, so that two builds of
// the examples are compared as variants are (one binary twice, say). A target (-t) is echo-wat (the WAT echo, built in),
// a name whose module is <examples>/<name>.wasm, or name=path.wasm. wrk must
// be installed (scripts/ensure-wrk.sh).
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/bench"
	"github.com/aerodb/aerofn/internal/testenv/wat"
)

const (
	jwtSecret  = "abload-jwt-secret-0123456789abcdef0123456789"
	secretsKey = "abload-secrets-key-0123456789abcdef0123456789"
)

type variant struct {
	name, bin string
	env       []string
	examples  string // its own build of the examples (@examples=DIR), or ""
	port      int
	db, dbURL string
	cmd       *exec.Cmd
	cells     map[key][]cell
}

// key is a target at a level.
type key struct {
	target string
	c      int
}

type cell struct {
	round    int
	res      bench.LoadResult
	cpu      bench.ProcStat
	pg       time.Duration // the database's PostgreSQL backends' CPU
	mallocs  float64
	runDelay time.Duration
	gate     metrics
}

type target struct {
	name string
	wasm []byte
	// fromExamples: the module is <examples>/<name>.wasm, and a variant
	// with examples of its own deploys its own build of it.
	fromExamples bool
}

type variants []*variant

func (v *variants) String() string { return fmt.Sprint(len(*v)) }

func (v *variants) Set(s string) error {
	f := strings.Split(s, ",")
	name, bin, ok := strings.Cut(f[0], "=")
	if !ok || name == "" || bin == "" {
		return fmt.Errorf("want name=binary[,KEY=value...], got %q", s)
	}
	nv := &variant{name: name, bin: bin, cells: map[key][]cell{}}
	for _, kv := range f[1:] {
		if dir, ok := strings.CutPrefix(kv, "@examples="); ok {
			nv.examples = dir
		} else {
			nv.env = append(nv.env, kv)
		}
	}
	*v = append(*v, nv)
	return nil
}

type config struct {
	admin, dbPrefix string
	levels          []int
	targets         []target
	rounds          int
	d               time.Duration
	port            int
}

func main() {
	var vs variants
	flag.Var(&vs, "v", "a variant: name=binary[,KEY=value...] (repeat; the first is the baseline)")
	admin := flag.String("database-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "admin URL of the PostgreSQL to use")
	dbPrefix := flag.String("db-prefix", "", "database name prefix: variant name uses <prefix><name>, dropped first (default: a fresh aerofn_bench_* name each)")
	levels := flag.String("c", "64", "connection levels, comma-separated")
	targets := flag.String("t", "hello", "functions, comma-separated: echo-wat, a name (<examples>/<name>.wasm) or name=path.wasm")
	examples := flag.String("examples", "bin/examples", "where the example modules are")
	rounds := flag.Int("rounds", 6, "rounds over every variant, target and level")
	d := flag.Duration("d", 4*time.Second, "length of one cell (whole seconds)")
	port := flag.Int("port", 18500, "first port: variant i listens on port+2i")
	flag.Parse()
	cfg := config{admin: *admin, dbPrefix: *dbPrefix, rounds: *rounds, d: *d, port: *port}
	err := cfg.parse(*levels, *targets, *examples)
	if err == nil && len(vs) == 0 {
		err = fmt.Errorf("no variant (-v name=binary)")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "abload:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, vs, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "abload:", err)
		os.Exit(1)
	}
}

func (cfg *config) parse(levels, targets, examples string) error {
	for _, s := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-c: %q", s)
		}
		cfg.levels = append(cfg.levels, n)
	}
	for _, s := range strings.Split(targets, ",") {
		name, path, ok := strings.Cut(strings.TrimSpace(s), "=")
		t := target{name: name}
		switch {
		case name == "":
			return fmt.Errorf("-t: %q", s)
		case !ok && name == "echo-wat":
			t.wasm = wat.Compile(wat.Echo)
		default:
			if !ok {
				path = filepath.Join(examples, name+".wasm")
				t.fromExamples = true
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("-t %s: %w", name, err)
			}
			t.wasm = b
		}
		cfg.targets = append(cfg.targets, t)
	}
	return nil
}

func run(ctx context.Context, vs variants, cfg config) error {
	wrk := bench.FindWrk(os.TempDir())
	if wrk == nil {
		return fmt.Errorf("wrk is not installed (scripts/ensure-wrk.sh)")
	}
	svc, _ := auth.Sign(jwtSecret, auth.RoleService, "", 24*time.Hour)
	anon, _ := auth.Sign(jwtSecret, auth.RoleAnon, "", 24*time.Hour)
	tmp, err := os.MkdirTemp("", "abload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	admin, err := pgx.Connect(ctx, cfg.admin)
	if err != nil {
		return err
	}
	defer admin.Close(context.Background())
	for i, v := range vs {
		v.port = cfg.port + 2*i
		var drop func()
		if cfg.dbPrefix != "" {
			v.dbURL, drop, err = bench.CreateNamedDatabase(ctx, cfg.admin, cfg.dbPrefix+v.name)
		} else {
			v.dbURL, drop, err = bench.CreateDatabase(ctx, cfg.admin)
		}
		if err != nil {
			return err
		}
		defer drop()
		dc, _ := pgx.ParseConfig(v.dbURL)
		v.db = dc.Database
		if err := v.start(ctx, tmp); err != nil {
			return err
		}
		defer func() { _ = v.cmd.Process.Kill(); _ = v.cmd.Wait() }()
		for _, t := range cfg.targets {
			if err := v.deploy(ctx, svc, t); err != nil {
				return err
			}
		}
		fmt.Printf("%s: %s %s (pid %d, database %s, port %d)\n", v.name, v.bin, strings.Join(v.env, " "), v.cmd.Process.Pid, v.db, v.port)
	}
	req := func(v *variant, t string, c, r int) bench.Request {
		h := map[string]string{"Authorization": "Bearer " + anon}
		if r >= 0 {
			h["X-Request-Id"] = requestID(v, t, c) + fmt.Sprintf("r%d", r)
		}
		return bench.Request{URL: fmt.Sprintf("http://127.0.0.1:%d/functions/v1/%s", v.port, t), Body: `{"name":"World"}`, Headers: h}
	}
	for _, v := range vs { // warm-up
		for _, t := range cfg.targets {
			if _, err := wrk.Run(ctx, req(v, t.name, 64, -1), 64, 2*time.Second); err != nil {
				return err
			}
		}
	}
	load0 := bench.LoadAverage()
	for _, t := range cfg.targets {
		for _, c := range cfg.levels {
			for r := range cfg.rounds {
				for k := range vs {
					v := vs[(k+r)%len(vs)]
					before, err := v.read(ctx, admin)
					if err != nil {
						return err
					}
					res, err := wrk.Run(ctx, req(v, t.name, c, r), c, cfg.d)
					if err != nil {
						return err
					}
					after, err := v.read(ctx, admin)
					if err != nil {
						return err
					}
					ce := after.sub(before)
					ce.round, ce.res = r, res
					v.cells[key{t.name, c}] = append(v.cells[key{t.name, c}], ce)
					mem, _ := bench.ReadStatus(v.cmd.Process.Pid)
					n := float64(max(res.Requests, 1))
					fmt.Printf("%-8s %-8s c=%-3d r%-2d %6.0f req/s  p50 %7.2f  p99 %7.2f ms  CPU %4.0f+%3.0f µs/call  postgres %4.0f µs/call  mallocs %4.0f/call  faults %.2f/call  waited for a CPU %5.0f µs/call  gate: %2.0f %% free, mean wait %5.2f ms  errors %d  RSS %d MiB (peak %d)  load %s\n",
						v.name, t.name, c, r, res.RPS(), ms(res.P50), ms(res.P99), us(ce.cpu.User)/n, us(ce.cpu.System)/n, us(ce.pg)/n, ce.mallocs/n,
						float64(ce.cpu.MinorFaults)/n, us(ce.runDelay)/n, 100*ce.gate.gateFree/max(ce.gate.gateCount, 1),
						1000*ce.gate.gateSum/max(ce.gate.gateCount, 1), res.Errors(), mem.RSS>>20, mem.HWM>>20, bench.LoadAverage())
				}
			}
		}
	}
	fmt.Printf("\nload average %s before, %s after\n", load0, bench.LoadAverage())
	for _, t := range cfg.targets {
		for _, c := range cfg.levels {
			for _, v := range vs {
				fmt.Println(summary(v, vs[0], key{t.name, c}))
				if rec, err := recorded(ctx, v, t.name, c); err == nil {
					fmt.Println("         recorded duration_ms " + rec)
				}
			}
		}
	}
	return nil
}

func requestID(v *variant, t string, c int) string { return fmt.Sprintf("ab-%s-%s-c%d-", v.name, t, c) }

// summary is a variant's line for one target and level: medians over the
// rounds, CPU summed over the rounds before dividing, and, but for the
// baseline, the ratios against the baseline in the same rounds.
func summary(v, base *variant, k key) string {
	cs := v.cells[k]
	tot := total(cs)
	n := float64(max(tot.res.Requests, 1))
	line := fmt.Sprintf("%-8s %-8s c=%-3d %6.0f req/s  p50 %7.2f  p99 %7.2f ms (%.1f-%.1f)  CPU %4.0f µs/call (summed %.1f+%.1f)  postgres %.1f µs/call  mallocs %.1f/call  waited for a CPU %5.0f µs/call  errors %d",
		v.name, k.target, k.c, median(cs, func(x cell) float64 { return x.res.RPS() }), median(cs, func(x cell) float64 { return ms(x.res.P50) }),
		median(cs, func(x cell) float64 { return ms(x.res.P99) }), extreme(cs, -1, func(x cell) float64 { return ms(x.res.P99) }),
		extreme(cs, 1, func(x cell) float64 { return ms(x.res.P99) }),
		median(cs, func(x cell) float64 { return us(x.cpu.User+x.cpu.System) / float64(max(x.res.Requests, 1)) }),
		us(tot.cpu.User)/n, us(tot.cpu.System)/n, us(tot.pg)/n, tot.mallocs/n,
		median(cs, func(x cell) float64 { return us(x.runDelay) / float64(max(x.res.Requests, 1)) }), tot.res.Errors())
	if v == base {
		return line
	}
	var p99, rps []float64
	var mine, theirs []cell
	lower := 0
	for _, x := range cs {
		for _, b := range base.cells[k] {
			if b.round == x.round {
				p99 = append(p99, float64(x.res.P99)/float64(b.res.P99))
				rps = append(rps, x.res.RPS()/b.res.RPS())
				mine, theirs = append(mine, x), append(theirs, b)
				if x.res.P99 < b.res.P99 {
					lower++
				}
			}
		}
	}
	a, b := total(mine), total(theirs)
	perCall := func(x cell, pg bool) float64 {
		t := x.cpu.User + x.cpu.System
		if pg {
			t += x.pg
		}
		return float64(t) / float64(max(x.res.Requests, 1))
	}
	return line + fmt.Sprintf("  | against %s: p99 %.2fx (lower in %d/%d rounds), req/s %.2fx, CPU/call %.2fx, with postgres %.2fx",
		base.name, bench.Median(p99), lower, len(p99), bench.Median(rps), perCall(a, false)/perCall(b, false), perCall(a, true)/perCall(b, true))
}

// total sums cells' requests, errors, CPU and mallocs.
func total(cs []cell) cell {
	var t cell
	for _, x := range cs {
		t.res.Requests += x.res.Requests
		t.res.SocketErrors += x.res.SocketErrors
		t.res.BadStatus += x.res.BadStatus
		t.cpu = t.cpu.Add(x.cpu)
		t.pg += x.pg
		t.mallocs += x.mallocs
	}
	return t
}

// start runs the variant's server, its stdout (a line per call) discarded.
func (v *variant) start(ctx context.Context, tmp string) error {
	dataDir := filepath.Join(tmp, v.name)
	v.cmd = exec.Command(v.bin, "serve")
	v.cmd.Env = append(os.Environ(), "AEROFN_DATABASE_URL="+v.dbURL, fmt.Sprintf("AEROFN_LISTEN=127.0.0.1:%d", v.port),
		"AEROFN_JWT_SECRET="+jwtSecret, "AEROFN_SECRETS_KEY="+secretsKey, "AEROFN_DATA_DIR="+dataDir,
		"AEROFN_SHUTDOWN_TIMEOUT=5s", "AEROFN_RECORDS_MAX_PER_FUNCTION=0")
	v.cmd.Env = append(v.cmd.Env, v.env...)
	log, err := os.Create(filepath.Join(tmp, v.name+".log"))
	if err != nil {
		return err
	}
	defer log.Close()
	v.cmd.Stderr = log
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := v.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", v.name, err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if r, err := http.Get(v.base() + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not answer /healthz (log: %s)", v.name, log.Name())
		}
		time.Sleep(200 * time.Millisecond) // polling the node's start
	}
}

func (v *variant) base() string { return fmt.Sprintf("http://127.0.0.1:%d", v.port) }

// deploy uploads the target's module under its name.
func (v *variant) deploy(ctx context.Context, svc string, t target) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	wasm := t.wasm
	if v.examples != "" && t.fromExamples {
		b, err := os.ReadFile(filepath.Join(v.examples, t.name+".wasm"))
		if err != nil {
			return fmt.Errorf("variant %s: %w", v.name, err)
		}
		wasm = b
	}
	_ = mw.WriteField("name", t.name)
	p, _ := mw.CreateFormFile("wasm", "m.wasm")
	_, _ = p.Write(wasm)
	_ = mw.Close()
	req, _ := http.NewRequestWithContext(ctx, "POST", v.base()+"/admin/v1/functions", &buf)
	req.Header.Set("Authorization", "Bearer "+svc)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("deploying %s on %s: %d %.300s", t.name, v.name, resp.StatusCode, b)
	}
	return nil
}

// reading is what is read around a cell.
type reading struct {
	stat     bench.ProcStat
	runDelay time.Duration
	pg       map[int]time.Duration
	metrics  metrics
}

// read waits for the server to be idle, then reads its counters.
func (v *variant) read(ctx context.Context, admin *pgx.Conn) (reading, error) {
	pid := v.cmd.Process.Pid
	waitIdle(pid)
	st, err := bench.ReadStat(pid)
	if err != nil {
		return reading{}, err
	}
	pg, err := pgCPU(ctx, admin, v.db)
	if err != nil {
		return reading{}, err
	}
	return reading{stat: st, runDelay: bench.ReadRunDelay(pid), pg: pg, metrics: scrape(v.base())}, nil
}

func (r reading) sub(before reading) cell {
	return cell{cpu: r.stat.Sub(before.stat), runDelay: r.runDelay - before.runDelay, pg: pgDelta(before.pg, r.pg),
		mallocs: r.metrics.mallocs - before.metrics.mallocs, gate: r.metrics.sub(before.metrics)}
}

// waitIdle waits until the process has used no CPU for 100 ms (at most 2 s),
// so the records it writes after the answers are charged to their calls.
func waitIdle(pid int) {
	prev, _ := bench.ReadStat(pid)
	for range 20 {
		time.Sleep(100 * time.Millisecond)
		cur, _ := bench.ReadStat(pid)
		if cur == prev {
			return
		}
		prev = cur
	}
}

// metrics is what abload reads of /metrics: the run gate's waits
// (aerofn_run_gate_wait_seconds: count, those that did not wait, sum) and
// Go's go_memstats_mallocs_total.
type metrics struct{ gateCount, gateFree, gateSum, mallocs float64 }

func (m metrics) sub(o metrics) metrics {
	return metrics{m.gateCount - o.gateCount, m.gateFree - o.gateFree, m.gateSum - o.gateSum, m.mallocs - o.mallocs}
}

// scrape reads the server's /metrics; a failed scrape reads as zeros.
func scrape(base string) metrics {
	r, err := http.Get(base + "/metrics")
	if err != nil {
		return metrics{}
	}
	defer r.Body.Close()
	return parseMetrics(r.Body)
}

func parseMetrics(r io.Reader) metrics {
	var m metrics
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		x, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "aerofn_run_gate_wait_seconds_count":
			m.gateCount = x
		case `aerofn_run_gate_wait_seconds_bucket{le="0"}`:
			m.gateFree = x
		case "aerofn_run_gate_wait_seconds_sum":
			m.gateSum = x
		case "go_memstats_mallocs_total":
			m.mallocs = x
		}
	}
	return m
}

// pgCPU is the CPU time of each PostgreSQL backend connected to db, by PID
// (PostgreSQL on this machine: its backends' /proc/PID/stat).
func pgCPU(ctx context.Context, admin *pgx.Conn, db string) (map[int]time.Duration, error) {
	rows, err := admin.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = $1", db)
	if err != nil {
		return nil, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	m := map[int]time.Duration{}
	for _, pid := range pids {
		if st, err := bench.ReadStat(int(pid)); err == nil {
			m[int(pid)] = st.User + st.System
		}
	}
	return m, nil
}

// pgDelta is the backends' CPU between two readings; a backend that started
// in between counts from zero, one that ended in between is lost.
func pgDelta(before, after map[int]time.Duration) time.Duration {
	var t time.Duration
	for pid, v := range after {
		t += v - before[pid]
	}
	return t
}

// recorded is the percentiles of duration_ms over the variant's calls of
// the target at c.
func recorded(ctx context.Context, v *variant, t string, c int) (string, error) {
	conn, err := pgx.Connect(ctx, v.dbURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var n int
	var p50, p90, p99, p999 float64
	err = conn.QueryRow(ctx, `SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms),
		percentile_cont(0.9) WITHIN GROUP (ORDER BY duration_ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms),
		percentile_cont(0.999) WITHIN GROUP (ORDER BY duration_ms) FROM aerofn.invocations WHERE starts_with(request_id, $1)`,
		requestID(v, t, c)).Scan(&n, &p50, &p90, &p99, &p999)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("n=%d p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f ms", n, p50, p90, p99, p999), nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
func us(d time.Duration) float64 { return float64(d) / 1e3 }

func median(cs []cell, f func(cell) float64) float64 {
	var xs []float64
	for _, c := range cs {
		xs = append(xs, f(c))
	}
	return bench.Median(xs)
}

// extreme is the smallest (sign -1) or largest (sign 1) of f over cs.
func extreme(cs []cell, sign float64, f func(cell) float64) float64 {
	m := 0.0
	for i, c := range cs {
		if x := sign * f(c); i == 0 || x > m {
			m = x
		}
	}
	return sign * m
}

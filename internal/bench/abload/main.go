// Command abload compares aerofn binaries, or one binary under different
// settings, under wrk load: each variant is its own `aerofn serve` on its own
// database with one function deployed, and the variants are loaded in turn,
// their order rotating from round to round, so that a burst of other work on
// a shared machine lands on each of them alike. Per cell it prints wrk's
// req/s and percentiles, the server's CPU time and page faults per call
// (/proc/PID/stat), how long its threads waited for a CPU per call
// (/proc/PID/task/*/schedstat) and the run gate's waits (/metrics); at the
// end, per variant and level, the medians over rounds, the p99 and req/s
// ratios against the first variant in the same rounds, and the recorded
// duration_ms percentiles of its calls.
//
//	go run ./internal/bench/abload -v old=/tmp/aerofn-old -v new=bin/aerofn,GOGC=400 -c 64,1 -rounds 8 -d 4s
//
// A variant is name=binary[,KEY=value...]: KEY=value pairs are added to the
// server's environment. wrk must be installed (scripts/ensure-wrk.sh).
// internal/bench/abserve is its counterpart for cost: CPU per call with
// PostgreSQL's share, and allocations.
package main

import (
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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/bench"
)

const (
	jwtSecret  = "abload-jwt-secret-0123456789abcdef0123456789"
	secretsKey = "abload-secrets-key-0123456789abcdef0123456789"
)

type variant struct {
	name, bin string
	env       []string
	port      int
	db        string
	cmd       *exec.Cmd
	cells     map[int][]cell
}

type cell struct {
	round    int
	res      bench.LoadResult
	cpu      bench.ProcStat
	runDelay time.Duration
}

type variants []*variant

func (v *variants) String() string { return fmt.Sprint(len(*v)) }

func (v *variants) Set(s string) error {
	f := strings.Split(s, ",")
	name, bin, ok := strings.Cut(f[0], "=")
	if !ok || name == "" || bin == "" {
		return fmt.Errorf("want name=binary[,KEY=value...], got %q", s)
	}
	*v = append(*v, &variant{name: name, bin: bin, env: f[1:], cells: map[int][]cell{}})
	return nil
}

func main() {
	var vs variants
	flag.Var(&vs, "v", "a variant: name=binary[,KEY=value...] (repeat; the first is the baseline)")
	admin := flag.String("database-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "admin URL of the PostgreSQL to use")
	levels := flag.String("c", "64", "connection levels, comma-separated")
	rounds := flag.Int("rounds", 6, "rounds over every variant and level")
	d := flag.Duration("d", 4*time.Second, "length of one cell (whole seconds)")
	port := flag.Int("port", 18500, "first port: variant i listens on port+2i")
	wasm := flag.String("wasm", "bin/examples/hello.wasm", "the function deployed on every variant")
	fn := flag.String("fn", "hello", "its name")
	flag.Parse()
	if len(vs) == 0 {
		fmt.Fprintln(os.Stderr, "abload: no variant (-v name=binary)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, vs, *admin, *levels, *rounds, *d, *port, *wasm, *fn)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "abload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, vs variants, admin, levelList string, rounds int, d time.Duration, port int, wasmPath, fn string) error {
	var levels []int
	for _, s := range strings.Split(levelList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-c: %q", s)
		}
		levels = append(levels, n)
	}
	wrk := bench.FindWrk(os.TempDir())
	if wrk == nil {
		return fmt.Errorf("wrk is not installed (scripts/ensure-wrk.sh)")
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		return err
	}
	svc, _ := auth.Sign(jwtSecret, auth.RoleService, "", time.Hour)
	anon, _ := auth.Sign(jwtSecret, auth.RoleAnon, "", time.Hour)
	tmp, err := os.MkdirTemp("", "abload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for i, v := range vs {
		v.port = port + 2*i
		dbURL, drop, err := bench.CreateDatabase(ctx, admin)
		if err != nil {
			return err
		}
		defer drop()
		v.db = dbURL
		if err := v.start(ctx, tmp, svc, fn, wasm); err != nil {
			return err
		}
		defer func() { _ = v.cmd.Process.Kill(); _ = v.cmd.Wait() }()
	}
	url := func(v *variant) string { return fmt.Sprintf("http://127.0.0.1:%d/functions/v1/%s", v.port, fn) }
	for _, v := range vs { // warm-up
		if _, err := wrk.Run(ctx, bench.Request{URL: url(v), Body: `{"name":"World"}`, Headers: map[string]string{"Authorization": "Bearer " + anon}}, 64, 2*time.Second); err != nil {
			return err
		}
	}
	for _, c := range levels {
		for r := range rounds {
			for k := range vs {
				v := vs[(k+r)%len(vs)]
				pid := v.cmd.Process.Pid
				waitIdle(pid)
				gate0 := gateWaits(v.port)
				before, err := bench.ReadStat(pid)
				if err != nil {
					return err
				}
				delay0 := runDelay(pid)
				req := bench.Request{URL: url(v), Body: `{"name":"World"}`, Headers: map[string]string{"Authorization": "Bearer " + anon,
					"X-Request-Id": fmt.Sprintf("ab-%s-c%d-r%d", v.name, c, r)}}
				res, err := wrk.Run(ctx, req, c, d)
				if err != nil {
					return err
				}
				waitIdle(pid)
				after, err := bench.ReadStat(pid)
				if err != nil {
					return err
				}
				ce := cell{round: r, res: res, cpu: after.Sub(before), runDelay: runDelay(pid) - delay0}
				v.cells[c] = append(v.cells[c], ce)
				gate := gateWaits(v.port).sub(gate0)
				mem, _ := bench.ReadStatus(pid)
				n := float64(res.Requests)
				fmt.Printf("%-8s c=%-3d r%-2d %6.0f req/s  p50 %7.2f  p99 %7.2f ms  CPU %4.0f+%3.0f µs/call  faults %.2f/call  waited for a CPU %5.0f µs/call  gate: %2.0f %% free, mean wait %5.2f ms  RSS %d MiB (peak %d)  load %s\n",
					v.name, c, r, res.RPS(), ms(res.P50), ms(res.P99), us(ce.cpu.User)/n, us(ce.cpu.System)/n, float64(ce.cpu.MinorFaults)/n,
					us(ce.runDelay)/n, 100*gate.free/max(gate.count, 1), 1000*gate.sum/max(gate.count, 1), mem.RSS>>20, mem.HWM>>20, loadAverage())
			}
		}
	}
	fmt.Println()
	base := vs[0]
	for _, c := range levels {
		for _, v := range vs {
			cs := v.cells[c]
			line := fmt.Sprintf("%-8s c=%-3d %6.0f req/s  p50 %7.2f  p99 %7.2f ms (%.1f-%.1f)  CPU %4.0f µs/call  waited for a CPU %5.0f µs/call",
				v.name, c, median(cs, func(x cell) float64 { return x.res.RPS() }), median(cs, func(x cell) float64 { return ms(x.res.P50) }),
				median(cs, func(x cell) float64 { return ms(x.res.P99) }), minOf(cs, func(x cell) float64 { return ms(x.res.P99) }), -minOf(cs, func(x cell) float64 { return -ms(x.res.P99) }),
				median(cs, func(x cell) float64 { return us(x.cpu.User+x.cpu.System) / float64(x.res.Requests) }),
				median(cs, func(x cell) float64 { return us(x.runDelay) / float64(x.res.Requests) }))
			if v != base {
				var p99, rps []float64
				lower := 0
				for _, x := range cs {
					for _, b := range base.cells[c] {
						if b.round == x.round {
							p99 = append(p99, float64(x.res.P99)/float64(b.res.P99))
							rps = append(rps, x.res.RPS()/b.res.RPS())
							if x.res.P99 < b.res.P99 {
								lower++
							}
						}
					}
				}
				line += fmt.Sprintf("  | against %s: p99 %.2fx (lower in %d/%d rounds), req/s %.2fx", base.name, med(p99), lower, len(p99), med(rps))
			}
			fmt.Println(line)
			if rec, err := recorded(ctx, v, c); err == nil {
				fmt.Println("         recorded duration_ms " + rec)
			}
		}
	}
	return nil
}

// start runs the variant's server and deploys the function on it.
func (v *variant) start(ctx context.Context, tmp, svc, fn string, wasm []byte) error {
	dataDir := filepath.Join(tmp, v.name)
	v.cmd = exec.Command(v.bin, "serve")
	v.cmd.Env = append(os.Environ(), "AEROFN_DATABASE_URL="+v.db, fmt.Sprintf("AEROFN_LISTEN=127.0.0.1:%d", v.port),
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
	base := fmt.Sprintf("http://127.0.0.1:%d", v.port)
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if r, err := http.Get(base + "/healthz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not answer /healthz (log: %s)", v.name, log.Name())
		}
		time.Sleep(200 * time.Millisecond) // polling the node's start
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("name", fn)
	p, _ := mw.CreateFormFile("wasm", "m.wasm")
	_, _ = p.Write(wasm)
	_ = mw.Close()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/admin/v1/functions", &buf)
	req.Header.Set("Authorization", "Bearer "+svc)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 {
		return fmt.Errorf("deploying on %s: %d %.300s", v.name, resp.StatusCode, b)
	}
	return nil
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

// runDelay is the time the process's threads have waited for a CPU
// (the second field of /proc/PID/task/TID/schedstat, in ns).
func runDelay(pid int) time.Duration {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var t int64
	for _, e := range ents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, e.Name()))
		if f := strings.Fields(string(b)); err == nil && len(f) > 1 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			t += n
		}
	}
	return time.Duration(t)
}

// gate is aerofn_run_gate_wait_seconds as /metrics shows it.
type gate struct{ count, free, sum float64 }

func (g gate) sub(o gate) gate { return gate{g.count - o.count, g.free - o.free, g.sum - o.sum} }

func gateWaits(port int) gate {
	var g gate
	r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return g
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		x, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "aerofn_run_gate_wait_seconds_count":
			g.count = x
		case `aerofn_run_gate_wait_seconds_bucket{le="0"}`:
			g.free = x
		case "aerofn_run_gate_wait_seconds_sum":
			g.sum = x
		}
	}
	return g
}

// recorded is the percentiles of duration_ms over the variant's calls at c.
func recorded(ctx context.Context, v *variant, c int) (string, error) {
	conn, err := pgx.Connect(ctx, v.db)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var n int
	var p50, p90, p99, p999 float64
	err = conn.QueryRow(ctx, `SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms),
		percentile_cont(0.9) WITHIN GROUP (ORDER BY duration_ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms),
		percentile_cont(0.999) WITHIN GROUP (ORDER BY duration_ms) FROM aerofn.invocations WHERE request_id LIKE $1`,
		fmt.Sprintf("ab-%s-c%d-%%", v.name, c)).Scan(&n, &p50, &p90, &p99, &p999)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("n=%d p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f ms", n, p50, p90, p99, p999), nil
}

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
func us(d time.Duration) float64 { return float64(d) / 1e3 }

func median(cs []cell, f func(cell) float64) float64 {
	var xs []float64
	for _, c := range cs {
		xs = append(xs, f(c))
	}
	return med(xs)
}

func minOf(cs []cell, f func(cell) float64) float64 {
	m := 0.0
	for i, c := range cs {
		if x := f(c); i == 0 || x < m {
			m = x
		}
	}
	return m
}

func med(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Command abserve compares aerofn binaries under load, interleaved: each
// binary serves its own database on the same machine, the WAT echo and
// hello are deployed on each, and wrk drives one binary after the other in
// every cell, the order alternating from round to round. Per call it reports
// the server's CPU (user + sys, /proc/PID/stat), the CPU of the PostgreSQL
// backends connected to the binary's database (the records' COPY), and Go's
// mallocs (go_memstats_mallocs_total of /metrics); all three are summed over
// the rounds before dividing, and include the work done within 400 ms after
// the load (records are written within 50 ms).
//
//	go run ./internal/bench/abserve -bins old/aerofn,new/aerofn -rounds 4 -d 5s
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/bench"
	"github.com/aerodb/aerofn/internal/testenv/wat"
)

const (
	jwtSecret  = "abserve-jwt-secret-0123456789abcdef0123456789"
	secretsKey = "abserve-secrets-key-0123456789abcdef0123456789"
)

type node struct {
	name, bin, db, base string
	cmd                 *exec.Cmd
}

// sum is one binary's cells at one target and level.
type sum struct {
	reqs    int64
	rps     []float64
	p99     []time.Duration
	cpu     bench.ProcStat
	pg      time.Duration
	mallocs float64
}

func main() {
	bins := flag.String("bins", "", "comma-separated aerofn binaries (two or more)")
	rounds := flag.Int("rounds", 3, "rounds over every target and level")
	d := flag.Duration("d", 5*time.Second, "length of one cell (whole seconds)")
	levels := flag.String("c", "1,64", "connections")
	targets := flag.String("t", "echo-wat,hello", "functions: echo-wat and hello (bin/examples/hello.wasm)")
	port := flag.Int("port", 18401, "first port; binary i listens on port+i")
	dbPrefix := flag.String("db-prefix", "abserve_", "database name prefix; binary i uses <prefix><letter>, dropped first")
	admin := flag.String("database-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "admin URL of the PostgreSQL to use")
	examples := flag.String("examples", "bin/examples", "where hello.wasm is")
	flag.Parse()
	if *bins == "" {
		log.Fatal("-bins is required")
	}
	ctx := context.Background()
	svc, _ := auth.Sign(jwtSecret, auth.RoleService, "", 24*time.Hour)
	anon, _ := auth.Sign(jwtSecret, auth.RoleAnon, "", 24*time.Hour)
	tmp, err := os.MkdirTemp("", "abserve-")
	check(err)
	defer os.RemoveAll(tmp)
	var nodes []*node
	defer func() {
		for _, n := range nodes {
			_ = n.cmd.Process.Signal(os.Interrupt)
			_ = n.cmd.Wait()
		}
	}()
	for i, b := range strings.Split(*bins, ",") {
		n := &node{name: string(rune('a' + i)), bin: b, base: fmt.Sprintf("http://127.0.0.1:%d", *port+i)}
		n.db = *dbPrefix + n.name
		check(n.start(ctx, *admin, tmp))
		nodes = append(nodes, n)
		check(n.deploy(svc, "echo-wat", wat.Compile(wat.Echo)))
		hello, err := os.ReadFile(*examples + "/hello.wasm")
		check(err)
		check(n.deploy(svc, "hello", hello))
		fmt.Printf("%s: %s (pid %d, database %s)\n", n.name, n.bin, n.cmd.Process.Pid, n.db)
	}
	w := bench.FindWrk(tmp)
	if w == nil {
		log.Fatal("wrk is not installed (scripts/ensure-wrk.sh)")
	}
	hdr := map[string]string{"Authorization": "Bearer " + anon}
	req := func(n *node, t string) bench.Request {
		return bench.Request{URL: n.base + "/functions/v1/" + t, Body: `{"name":"World"}`, Headers: hdr}
	}
	var conns []int
	for _, s := range strings.Split(*levels, ",") {
		c, err := strconv.Atoi(s)
		check(err)
		conns = append(conns, c)
	}
	ts := strings.Split(*targets, ",")
	for _, n := range nodes {
		for _, t := range ts {
			_, err := w.Run(ctx, req(n, t), 64, time.Second) // warm-up
			check(err)
		}
	}
	sums := map[string]*sum{}
	key := func(t string, c int, n *node) string { return fmt.Sprintf("%s c=%d %s", t, c, n.name) }
	load0 := loadAverage()
	for r := 0; r < *rounds; r++ {
		for _, t := range ts {
			for _, c := range conns {
				order := append([]*node(nil), nodes...)
				if r%2 == 1 {
					for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
						order[i], order[j] = order[j], order[i]
					}
				}
				for _, n := range order {
					s := sums[key(t, c, n)]
					if s == nil {
						s = &sum{}
						sums[key(t, c, n)] = s
					}
					st0, _ := bench.ReadStat(n.cmd.Process.Pid)
					pg0, m0 := pgCPU(n.db), mallocs(n, svc)
					lr, err := w.Run(ctx, req(n, t), c, *d)
					check(err)
					time.Sleep(400 * time.Millisecond)
					st1, _ := bench.ReadStat(n.cmd.Process.Pid)
					pg1, m1 := pgCPU(n.db), mallocs(n, svc)
					cpu, pg := st1.Sub(st0), pgDelta(pg0, pg1)
					s.reqs += lr.Requests
					s.rps = append(s.rps, lr.RPS())
					s.p99 = append(s.p99, lr.P99)
					s.cpu = s.cpu.Add(cpu)
					s.pg += pg
					s.mallocs += m1 - m0
					fmt.Printf("r%d %-20s %7.0f req/s p99 %7.1f ms  server %5.1f + %5.1f µs/call  postgres %5.1f µs/call  mallocs %.0f/call  errors %d\n",
						r, key(t, c, n), lr.RPS(), float64(lr.P99.Microseconds())/1000, per(cpu.User, lr.Requests), per(cpu.System, lr.Requests),
						per(pg, lr.Requests), (m1-m0)/float64(lr.Requests), lr.Errors())
				}
			}
		}
	}
	fmt.Printf("load average %s before, %s after\n", load0, loadAverage())
	for _, t := range ts {
		for _, c := range conns {
			for _, n := range nodes {
				s := sums[key(t, c, n)]
				var rps []string
				for _, v := range s.rps {
					rps = append(rps, fmt.Sprintf("%.0f", v))
				}
				fmt.Printf("%-20s req/s %s  server %.1f + %.1f = %.1f µs/call  postgres %.1f µs/call  mallocs %.1f/call\n", key(t, c, n),
					strings.Join(rps, "/"), per(s.cpu.User, s.reqs), per(s.cpu.System, s.reqs), per(s.cpu.User+s.cpu.System, s.reqs),
					per(s.pg, s.reqs), s.mallocs/float64(s.reqs))
			}
		}
	}
}

func per(d time.Duration, n int64) float64 { return float64(d.Microseconds()) / float64(max(n, 1)) }

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// start makes the node's database anew and starts the binary on it, its
// stdout (a line per call) discarded as the bench does.
func (n *node) start(ctx context.Context, adminURL, tmp string) error {
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	ident := pgx.Identifier{n.db}.Sanitize()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return err
	}
	dbURL := strings.Replace(adminURL, "/postgres?", "/"+n.db+"?", 1)
	dataDir, err := os.MkdirTemp(tmp, "data-"+n.name+"-")
	if err != nil {
		return err
	}
	n.cmd = exec.Command(n.bin, "serve")
	n.cmd.Env = append(os.Environ(), "AEROFN_DATABASE_URL="+dbURL, "AEROFN_LISTEN="+strings.TrimPrefix(n.base, "http://"),
		"AEROFN_JWT_SECRET="+jwtSecret, "AEROFN_SECRETS_KEY="+secretsKey, "AEROFN_DATA_DIR="+dataDir,
		"AEROFN_SHUTDOWN_TIMEOUT=5s", "AEROFN_RECORDS_MAX_PER_FUNCTION=0")
	n.cmd.Stderr = os.Stderr
	if err := n.cmd.Start(); err != nil {
		return err
	}
	for range 1200 {
		if resp, err := http.Get(n.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer /healthz within 2 minutes", n.bin)
}

func (n *node) deploy(svc, name string, wasm []byte) error {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("name", name)
	fw, _ := mw.CreateFormFile("wasm", "m.wasm")
	_, _ = fw.Write(wasm)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", n.base+"/admin/v1/functions", &buf)
	req.Header.Set("Authorization", "Bearer "+svc)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("deploying %s on %s: %d %s", name, n.bin, resp.StatusCode, b)
	}
	return nil
}

// mallocs is the node's go_memstats_mallocs_total.
func mallocs(n *node, svc string) float64 {
	req, _ := http.NewRequest("GET", n.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+svc)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_mallocs_total "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// pgCPU is the CPU time of each backend connected to db, by PID.
func pgCPU(db string) map[int]time.Duration {
	out, err := exec.Command("psql", "-h", "127.0.0.1", "-U", "postgres", "-At", "-c",
		"SELECT pid FROM pg_stat_activity WHERE datname = '"+db+"'").Output()
	m := map[int]time.Duration{}
	if err != nil {
		return m
	}
	for _, f := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(f)
		if st, err := bench.ReadStat(pid); err == nil {
			m[pid] = st.User + st.System
		}
	}
	return m
}

// pgDelta is the backends' CPU between two readings; a backend that
// started in between counts from zero.
func pgDelta(before, after map[int]time.Duration) time.Duration {
	var t time.Duration
	for pid, v := range after {
		t += v - before[pid]
	}
	return t
}

package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aerodb/aerofn/internal/latency"
)

// Request is what a load generator sends, over and over, on every connection.
type Request struct {
	URL     string
	Body    string // POSTed as application/json
	Headers map[string]string
}

// LoadResult is one load-generator run.
type LoadResult struct {
	Requests     int64         // completed with any HTTP status
	Duration     time.Duration // of the whole run
	P50, P99     time.Duration // latency of completed requests
	SocketErrors int64         // connect, read, write errors and timeouts
	BadStatus    int64         // responses outside 2xx and 3xx
}

// RPS is the completed requests per second.
func (r LoadResult) RPS() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

// Errors counts requests that failed one way or another.
func (r LoadResult) Errors() int64 { return r.SocketErrors + r.BadStatus }

// LoadGen drives one target with a fixed number of connections.
type LoadGen interface {
	Name() string
	Run(ctx context.Context, req Request, conns int, d time.Duration) (LoadResult, error)
}

// Wrk is wrk(1), a C load generator cheap enough on CPU to share two cores
// with the server it measures.
type Wrk struct {
	Path    string
	Threads int    // at most this many wrk threads (never more than connections)
	Dir     string // where the per-run Lua scripts are written
	Version string
}

// Name says which generator this is.
func (w *Wrk) Name() string { return "wrk " + w.Version }

// wrkMarker starts the line the Lua done() hook prints.
const wrkMarker = "AEROFN_WRK"

// WrkScript is the Lua that makes wrk POST req and, when done, print exact
// figures on one line (wrk's own summary rounds them).
func WrkScript(req Request) string {
	var b strings.Builder
	b.WriteString("wrk.method = \"POST\"\n")
	fmt.Fprintf(&b, "wrk.body = %s\n", luaString(req.Body))
	b.WriteString("wrk.headers[\"Content-Type\"] = \"application/json\"\n")
	for k, v := range req.Headers {
		fmt.Fprintf(&b, "wrk.headers[%s] = %s\n", luaString(k), luaString(v))
	}
	b.WriteString(`done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("` + wrkMarker + ` requests=%.0f duration_us=%.0f p50_us=%.0f p99_us=%.0f connect=%.0f read=%.0f write=%.0f status=%.0f timeout=%.0f\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
`)
	return b.String()
}

// luaString quotes s as a Lua string literal.
func luaString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(s) {
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ParseWrk reads the line WrkScript's done() hook printed in wrk's output.
func ParseWrk(out string) (LoadResult, error) {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), wrkMarker+" ")
		if !ok {
			continue
		}
		v := map[string]int64{}
		for _, kv := range strings.Fields(rest) {
			k, s, ok := strings.Cut(kv, "=")
			if !ok {
				return LoadResult{}, fmt.Errorf("parsing wrk output: %q in %q", kv, line)
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return LoadResult{}, fmt.Errorf("parsing wrk output: %q: %w", kv, err)
			}
			v[k] = n
		}
		for _, k := range []string{"requests", "duration_us", "p50_us", "p99_us", "connect", "read", "write", "status", "timeout"} {
			if _, ok := v[k]; !ok {
				return LoadResult{}, fmt.Errorf("parsing wrk output: %s missing in %q", k, line)
			}
		}
		return LoadResult{
			Requests: v["requests"], Duration: time.Duration(v["duration_us"]) * time.Microsecond,
			P50: time.Duration(v["p50_us"]) * time.Microsecond, P99: time.Duration(v["p99_us"]) * time.Microsecond,
			SocketErrors: v["connect"] + v["read"] + v["write"] + v["timeout"], BadStatus: v["status"],
		}, nil
	}
	return LoadResult{}, fmt.Errorf("parsing wrk output: no %s line in:\n%s", wrkMarker, out)
}

// Run runs wrk once for d (rounded to whole seconds) with conns connections.
func (w *Wrk) Run(ctx context.Context, req Request, conns int, d time.Duration) (LoadResult, error) {
	f, err := os.CreateTemp(w.Dir, "wrk-*.lua")
	if err != nil {
		return LoadResult{}, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(WrkScript(req)); err != nil {
		f.Close()
		return LoadResult{}, err
	}
	if err := f.Close(); err != nil {
		return LoadResult{}, err
	}
	threads := max(1, min(w.Threads, conns))
	secs := max(1, int(d.Round(time.Second)/time.Second)) // wrk takes whole seconds only
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.Path, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", fmt.Sprintf("%ds", secs), "--timeout", "10s", "-s", f.Name(), req.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return LoadResult{}, fmt.Errorf("running %s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return ParseWrk(string(out))
}

// FindWrk returns wrk from PATH, or nil when it is not installed.
func FindWrk(scriptDir string) *Wrk {
	p, err := exec.LookPath("wrk")
	if err != nil {
		return nil
	}
	version := "(unknown version)"
	// wrk -v prints its version and exits 1.
	out, _ := exec.Command(p, "-v").CombinedOutput()
	if f := strings.Fields(string(out)); len(f) >= 2 && f[0] == "wrk" {
		version = f[1]
	}
	return &Wrk{Path: p, Threads: 2, Dir: filepath.Clean(scriptDir), Version: version}
}

// GoLoad is the fallback when wrk is missing: one goroutine per connection,
// each sending the next request when the last one's body has been read. It
// costs several times wrk's CPU, which it takes from the server under test
// on a small machine, so its figures are lower bounds.
type GoLoad struct{}

// Name says which generator this is.
func (GoLoad) Name() string { return "Go fallback (wrk not found)" }

// Run runs the load for d with conns connections.
func (GoLoad) Run(ctx context.Context, req Request, conns int, d time.Duration) (LoadResult, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	type worker struct {
		lat              []time.Duration
		sockErr, badStat int64
		firstErr         error
	}
	workers := make([]worker, conns)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			for ctx.Err() == nil {
				hr, err := http.NewRequestWithContext(ctx, "POST", req.URL, strings.NewReader(req.Body))
				if err != nil {
					w.firstErr = err
					return
				}
				hr.Header.Set("Content-Type", "application/json")
				for k, v := range req.Headers {
					hr.Header.Set(k, v)
				}
				t0 := time.Now()
				resp, err := client.Do(hr)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				switch {
				case ctx.Err() != nil:
					return // cut short by the end of the run: not counted
				case err != nil:
					w.sockErr++
				default:
					w.lat = append(w.lat, time.Since(t0))
					if resp.StatusCode >= 400 {
						w.badStat++
					}
				}
			}
		}(&workers[i])
	}
	wg.Wait()
	res := LoadResult{Duration: time.Since(start)}
	var all []time.Duration
	for _, w := range workers {
		if w.firstErr != nil {
			return LoadResult{}, w.firstErr
		}
		all = append(all, w.lat...)
		res.SocketErrors += w.sockErr
		res.BadStatus += w.badStat
	}
	if err := parent.Err(); err != nil {
		return LoadResult{}, err
	}
	dist := latency.Summarize(all)
	res.Requests, res.P50, res.P99 = int64(len(all)), dist.P50, dist.P99
	return res, nil
}

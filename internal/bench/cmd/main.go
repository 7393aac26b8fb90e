// Command bench runs aerofn's benchmarks and writes BENCHMARKS.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/bench"
	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/hostfn"
	"github.com/aerodb/aerofn/internal/latency"
	"github.com/aerodb/aerofn/internal/registry"
	"github.com/aerodb/aerofn/internal/server"
	"github.com/aerodb/aerofn/internal/testenv/guest"
	"github.com/aerodb/aerofn/internal/testenv/wat"
)

const (
	jwtSecret  = "bench-jwt-secret-0123456789abcdef0123456789"
	secretsKey = "bench-secrets-key-0123456789abcdef0123456789"
)

func main() {
	out := flag.String("out", "", "where to write the report: BENCHMARKS.md for a full run; a partial run (-only, -cold-only) prints it only, unless this names a file")
	n := flag.Int("n", 2000, "samples per measurement")
	admin := flag.String("database-url", envOr("AEROFN_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "admin URL of the PostgreSQL to use")
	only = flag.String("only", "", "run only one section: cold, http, db_query, js, events, records or serve (for development; the report then holds only it)")
	aerofnBin := flag.String("aerofn", "", "the aerofn binary the serve section runs (default: build ./cmd/aerofn)")
	loadDuration := flag.Duration("load-duration", 0, "serve section: length of one load run (default 2s, 1s when n < 1000; whole seconds)")
	loadRounds := flag.Int("load-rounds", 0, "serve section: rounds over every target and level (default 3, 1 when n < 1000)")
	coldOnly := flag.Bool("cold-only", false, "serve section: measure only the cold paths (deploy, first calls on other and restarted nodes), no load")
	peers := flag.String("peers", "auto", "serve section: workerd and Deno from npm: auto (skipped when CI=true or n < 1000), all, or none")
	flag.Parse()
	*out = reportPath(*out, *only, *coldOnly)
	lc, err := newLoadConfig(*n, *aerofnBin, *loadDuration, *loadRounds, *peers, *coldOnly)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	// An interrupt ends the run through its deferred clean-ups: the
	// processes it started are killed and its databases dropped.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, *out, *n, *admin, lc)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var only *string

// want says whether the section named key (cold, http, db_query, events,
// records, serve) is to run.
func want(key string) bool { return *only == "" || *only == key }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, out string, n int, adminURL string, lc loadConfig) error {
	start := time.Now()
	var sections []bench.Section

	// The serve section compares what aerofn records for hello with the
	// engine's own cold start of it, measured in this run.
	var coldHello coldRef
	if want("cold") || want("serve") {
		s, err := coldStart(ctx, n)
		if err != nil {
			return err
		}
		coldHello = coldRef{p50: s.Rows[2].Dist.P50, gapP50: s.Rows[3].Dist.P50}
		if want("cold") {
			sections = append(sections, s)
		}
		fmt.Fprintln(os.Stderr, "cold start done")
	}

	if want("serve") {
		s, err := serverUnderLoad(ctx, adminURL, coldHello, lc)
		if err != nil {
			return fmt.Errorf("server under load: %w", err)
		}
		sections = append(sections, s)
		fmt.Fprintln(os.Stderr, "server under load done")
	}
	if *only == "serve" {
		return write(out, sections, start)
	}

	dbURL, drop, err := bench.CreateDatabase(ctx, adminURL)
	if err != nil {
		return err
	}
	defer drop()
	dataDir := filepathTemp()
	defer os.RemoveAll(dataDir)
	srv, err := server.Open(ctx, config.Config{DatabaseURL: dbURL, Listen: "127.0.0.1:0", JWTSecret: jwtSecret, SecretsKey: secretsKey,
		DataDir: dataDir, MaxConcurrency: 1000, RolePoolSize: 10, ShutdownTimeout: 10 * time.Second, LogLevel: "error",
		JSRuntime: os.Getenv("AEROFN_JS_RUNTIME"), JSRuntimeCache: jsRuntimeCache()}, server.Options{})
	if err != nil {
		return err
	}
	defer srv.Stop(context.Background()) //nolint:errcheck
	if err := srv.Start(ctx); err != nil {
		return err
	}

	if want("http") {
		s, err := httpOverhead(ctx, srv, n)
		if err != nil {
			return err
		}
		sections = append(sections, s)
		fmt.Fprintln(os.Stderr, "http overhead done")
	}

	if want("db_query") {
		s, err := dbQuery(ctx, srv, dbURL, n)
		if err != nil {
			return err
		}
		sections = append(sections, s)
		fmt.Fprintln(os.Stderr, "db_query done")
	}

	if want("js") {
		s, err := jsSection(ctx, srv, dbURL, n)
		if err != nil {
			return fmt.Errorf("javascript: %w", err)
		}
		sections = append(sections, s)
		fmt.Fprintln(os.Stderr, "javascript done")
	}

	for _, extra := range extraSections {
		if !want("events") {
			break
		}
		s, err := extra(ctx, srv, dbURL, n)
		if err != nil {
			return err
		}
		sections = append(sections, s)
	}

	if want("records") {
		s, err := recordsSection(ctx, srv, n)
		if err != nil {
			return fmt.Errorf("records: %w", err)
		}
		sections = append(sections, s)
	}

	return write(out, sections, start)
}

// reportPath is where the report goes: the named file, else BENCHMARKS.md
// for a full run and standard output only ("-") for a partial one, so that
// measuring one section never replaces the whole report with a part of it.
func reportPath(out, only string, coldOnly bool) string {
	switch {
	case out != "":
		return out
	case only != "" || coldOnly:
		return "-"
	}
	return "BENCHMARKS.md"
}

func write(out string, sections []bench.Section, start time.Time) error {
	report := bench.Render(sections, time.Since(start))
	if out != "-" {
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			return err
		}
	}
	fmt.Print(report)
	return nil
}

// extraSections are added by files for later triggers (events, schedules).
var extraSections []func(ctx context.Context, srv *server.Server, dbURL string, n int) (bench.Section, error)

func filepathTemp() string {
	d, _ := os.MkdirTemp("", "aerofn-bench-")
	return d
}

// example returns a built example module (bin/examples, or built now).
func example(name string) ([]byte, error) {
	dir := envOr("AEROFN_EXAMPLES_DIR", "bin/examples")
	if b, err := os.ReadFile(filepath.Join(dir, name+".wasm")); err == nil {
		return b, nil
	}
	return guest.Build("", "./examples/"+name)
}

// coldStart: a fresh store and instance per call, whole Run timed
// (instantiate, _initialize, handler, close): an upper bound of "new
// instance to handler entry".
func coldStart(ctx context.Context, n int) (bench.Section, error) {
	eng, err := engine.New(engine.Config{ElideBoundsChecks: true}) // as the server's
	if err != nil {
		return bench.Section{}, err
	}
	defer eng.Close()
	noop, echo := wat.Compile(wat.Noop), wat.Compile(wat.Echo)
	hello, err := example("hello")
	if err != nil {
		return bench.Section{}, err
	}
	mods := []struct {
		name string
		wasm []byte
	}{{"noop", noop}, {"echo", echo}, {"hello", hello}}
	loaded := make([]*engine.Module, len(mods))
	for i, m := range mods {
		if loaded[i], err = eng.Load(registry.Hash(m.wasm), func() ([]byte, error) { return m.wasm, nil }); err != nil {
			return bench.Section{}, err
		}
	}
	input := []byte(coldStartEvent)
	// The last row runs hello again with the CPU left idle for
	// coldStartGap before each call, as the server's calls at one
	// connection find it between requests: what the guest then pays for
	// caches gone cold, which a back-to-back loop never sees.
	samples := make([][]time.Duration, len(mods)+1)
	lim := engine.Limits{Timeout: 10 * time.Second, MemoryBytes: 128 << 20}
	call := func(i int, m *engine.Module) error {
		t0 := time.Now()
		res := eng.Run(ctx, m, input, lim, nil)
		d := time.Since(t0)
		if res.Status != engine.StatusSuccess {
			return fmt.Errorf("%s: %s %v", mods[i].name, res.Status, res.Err)
		}
		samples[i] = append(samples[i], d)
		return nil
	}
	for round := 0; round < n/100; round++ {
		for i, m := range loaded {
			for j := 0; j < 100; j++ {
				if err := call(i, m); err != nil {
					return bench.Section{}, err
				}
			}
		}
		for j := 0; j < 100; j++ {
			time.Sleep(coldStartGap)
			if err := call(len(mods), loaded[2]); err != nil {
				return bench.Section{}, err
			}
		}
	}
	rows := []bench.Row{
		{Name: "engine floor: empty handler (WAT, 1 page)", Dist: latency.Summarize(samples[0])},
		{Name: "small module: echo of the event (WAT, ABI imports)", Dist: latency.Summarize(samples[1])},
		{Name: "Go SDK module: examples/hello (" + fmt.Sprint(len(hello)>>10) + " KiB, pre-initialised snapshot)", Dist: latency.Summarize(samples[2])},
		{Name: fmt.Sprintf("the same, the CPU idle %d µs before each call (as between requests on a server)", coldStartGap.Microseconds()), Dist: latency.Summarize(samples[3])},
	}
	bench.Check(&rows[1], 100*time.Microsecond)
	bench.Check(&rows[2], time.Millisecond)
	return bench.Section{
		Title: "Cold start: every call from the initial state (no server)",
		About: "`engine.Run` timed whole: an instance in the module's initial state, `handler`, and putting the instance away. Every call pays this and none sees another's state. The WAT modules get a new store and instance per call, closed after it; a Go guest's `_initialize` ran once at load, and every call starts from that snapshot (docs/ABI.md), on an instance reset after an earlier call (the pages it wrote copied back, its globals set back; docs/RATIONALE.md, \"Engine: instance pool and run gate\") or a new one. The input is the event `aerofn serve` builds for the serve section's hello request at one connection (its headers included), so that hello's recorded duration there compares with the same guest work. The three modules are interleaved in rounds of 100; the last row's calls, with a pause before each, follow every round.",
		Rows:  rows,
		Ratio: fmt.Sprintf("Go SDK / small module at p50: %.1fx. The seed's target is 100 ms.", ratio(rows[2].Dist.P50, rows[1].Dist.P50)),
	}, nil
}

// coldStartEvent is the event aerofn serve builds for the serve section's
// request to hello at one connection (helloRequest with its X-Request-Id;
// Authorization is never passed on), the calls whose recorded duration
// the serve section compares with this section's: the same input, so the
// same guest work.
const coldStartEvent = `{"trigger":"http","method":"POST","path":"/","headers":{"content-length":"16","content-type":"application/json","x-request-id":"bench-hello-c1-r0"},` +
	`"query":{},"headers_all":{"content-length":["16"],"content-type":["application/json"],"x-request-id":["bench-hello-c1-r0"]},"query_all":{},` +
	`"body":{"name":"World"},"user_id":null,"role":"anon","request_id":"bench-hello-c1-r0"}`

// coldStartGap is the idle time before each call of the cold section's
// last row: about what a server answering one connection spends between
// two calls on the HTTP round trip and the record.
const coldStartGap = 150 * time.Microsecond

// coldRef is what the serve section compares hello's recorded duration
// with: the in-process cold start p50, back to back and after a gap.
type coldRef struct{ p50, gapP50 time.Duration }

// awaitOptimized waits until srv serves no module of the cheap tier and
// has no compile queued or running: a deploy answers on the cheap tier and
// the optimised compile follows in the background, on the cores the
// measurement that comes next would share with it.
func awaitOptimized(ctx context.Context, srv *server.Server) error {
	deadline := time.Now().Add(3 * time.Minute)
	for srv.Engine.Stats().CheapModules > 0 || srv.Invoker.BackgroundPending() > 0 || srv.Engine.Compiling() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("still compiling in the background after 3 minutes: %+v", srv.Engine.Stats())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling interval
		}
	}
	return nil
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// httpOverhead serves the API and a native Go echo handler from one
// http.Server in this process and calls both over loopback, interleaved.
func httpOverhead(ctx context.Context, srv *server.Server, n int) (bench.Section, error) {
	echoGo, err := example("echo")
	if err != nil {
		return bench.Section{}, err
	}
	echoWAT := wat.Compile(wat.Echo)
	svc, _ := auth.Sign(jwtSecret, auth.RoleService, "", time.Hour)
	anon, _ := auth.Sign(jwtSecret, auth.RoleAnon, "", time.Hour)

	mux := http.NewServeMux()
	mux.Handle("/", srv.API)
	// The native baseline does what the echo function's path does at the
	// edges: read the body, build the same event JSON, write it back.
	mux.HandleFunc("POST /native/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev := map[string]any{"trigger": "http", "method": r.Method, "path": "/", "headers": map[string]string{}, "query": map[string]string{},
			"body": json.RawMessage(body), "user_id": nil, "role": "anon", "request_id": "x"}
		for k := range r.Header {
			ev["headers"].(map[string]string)[strings.ToLower(k)] = r.Header.Get(k)
		}
		b, _ := json.Marshal(ev)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return bench.Section{}, err
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln) //nolint:errcheck
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}

	deploy := func(name string, wasm []byte) error {
		var buf bytes.Buffer
		ct, body := form(name, wasm, &buf)
		req, _ := http.NewRequest("POST", base+"/admin/v1/functions", body)
		req.Header.Set("Authorization", "Bearer "+svc)
		req.Header.Set("Content-Type", ct)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 201 {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("deploying %s: %d %s", name, resp.StatusCode, b)
		}
		return nil
	}
	if err := deploy("echo-go", echoGo); err != nil {
		return bench.Section{}, err
	}
	if err := deploy("echo-wat", echoWAT); err != nil {
		return bench.Section{}, err
	}
	if err := awaitOptimized(ctx, srv); err != nil {
		return bench.Section{}, err
	}
	call := func(path string) (time.Duration, error) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(`{"name":"World"}`))
		req.Header.Set("Authorization", "Bearer "+anon)
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
		}
		return d, nil
	}
	paths := []string{"/native/echo", "/functions/v1/echo-wat", "/functions/v1/echo-go"}
	samples := make([][]time.Duration, len(paths))
	for i := 0; i < n+200; i++ {
		for j, p := range paths {
			d, err := call(p)
			if err != nil {
				return bench.Section{}, err
			}
			if i >= 200 { // warm-up
				samples[j] = append(samples[j], d)
			}
		}
	}
	native, watDist, goSDK := latency.Summarize(samples[0]), latency.Summarize(samples[1]), latency.Summarize(samples[2])
	overhead := func(d latency.Summary) latency.Summary {
		return latency.Summary{N: d.N, P50: d.P50 - native.P50, P95: d.P95 - native.P95, P99: d.P99 - native.P99}
	}
	rows := []bench.Row{
		{Name: "native Go handler, same route shape, same process", Dist: native},
		{Name: "aerofn: POST /functions/v1/echo-wat (WAT echo)", Dist: watDist},
		{Name: "aerofn: POST /functions/v1/echo-go (Go SDK echo)", Dist: goSDK},
		{Name: "overhead: echo-wat minus native", Dist: overhead(watDist)},
		{Name: "overhead: echo-go minus native", Dist: overhead(goSDK)},
	}
	bench.Check(&rows[3], time.Millisecond)
	bench.Check(&rows[4], time.Millisecond)
	return bench.Section{
		Title: "HTTP invocation overhead",
		About: "Sequential keep-alive requests over loopback to one `http.Server` in one process that serves both the aerofn API and a native Go handler doing the same edge work (read body, build the event JSON, write it). The three routes are interleaved request by request; overhead rows subtract the native percentile from the aerofn one. The aerofn path includes JWT verification, the function lookup, a fresh sandbox, and queueing the invocation record. Measured once the deploys' optimised compiles are in (a deploy answers on the cheap tier; the serve section measures the first calls after one).",
		Rows:  rows,
		Ratio: fmt.Sprintf("At p50, echo-wat costs %.1fx the native handler and echo-go %.1fx. The seed's target is 5 ms of overhead.", ratio(watDist.P50, native.P50), ratio(goSDK.P50, native.P50)),
	}, nil
}

func form(name string, wasm []byte, buf *bytes.Buffer) (string, io.Reader) {
	mw := newMultipart(buf)
	_ = mw.WriteField("name", name)
	p, _ := mw.CreateFormFile("wasm", "m.wasm")
	_, _ = p.Write(wasm)
	_ = mw.Close()
	return mw.FormDataContentType(), buf
}

// timedDB measures each db_query as the guest sees it at the host boundary.
type timedDB struct {
	inner   hostfn.DB
	samples []time.Duration
}

func (t *timedDB) Handle(ctx context.Context, p auth.Principal, req []byte) []byte {
	t0 := time.Now()
	out := t.inner.Handle(ctx, p, req)
	t.samples = append(t.samples, time.Since(t0))
	return out
}

// Package testenv starts real aerofn nodes for end-to-end tests: a fresh
// database on the test Postgres, the server on a free loopback port (in this
// process, or as the real binary), and helpers that deploy and invoke over
// real HTTP.
package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/server"
	"github.com/aerodb/aerofn/internal/testenv/guest"
)

// Secrets used by every test node.
const (
	JWTSecret  = "test-jwt-secret-0123456789abcdef0123456789"
	SecretsKey = "test-secrets-key-0123456789abcdef0123456789"
)

// Env is one database with a node (or several) serving it.
type Env struct {
	T           testing.TB
	DatabaseURL string
	URL         string // base URL of the first node
	Server      *server.Server
	ServiceKey  string
	AnonKey     string
	Admin       *pgxpool.Pool
	HTTP        *http.Client
}

// Options adjust Start.
type Options struct {
	Config func(*config.Config) // edit the node's config
	// FetchTransport carries the node's http_fetch requests (server.Options).
	FetchTransport http.RoundTripper
}

// Config is a node config for a database.
func Config(t testing.TB, databaseURL string) config.Config {
	return config.Config{
		DatabaseURL: databaseURL, Listen: "127.0.0.1:0", JWTSecret: JWTSecret, SecretsKey: SecretsKey,
		DataDir: t.TempDir(), MaxConcurrency: 1000, RolePoolSize: 10, ShutdownTimeout: 30 * time.Second,
		DeployPropagationTimeout: 5 * time.Second,
		LogLevel:                 "info", FetchAllowPrivate: true, CORSOrigins: "*",
	}
}

// Start creates a database and starts one in-process node on it.
func Start(t testing.TB, opts ...Options) *Env {
	t.Helper()
	dbURL := dbtest.NewDatabase(t)
	return StartOn(t, dbURL, opts...)
}

// StartOn starts an in-process node on an existing database.
func StartOn(t testing.TB, dbURL string, opts ...Options) *Env {
	t.Helper()
	cfg := Config(t, dbURL)
	var sopt server.Options
	for _, o := range opts {
		if o.Config != nil {
			o.Config(&cfg)
		}
		if o.FetchTransport != nil {
			sopt.FetchTransport = o.FetchTransport
		}
	}
	ctx := context.Background()
	srv, err := server.Open(ctx, cfg, sopt)
	if err != nil {
		t.Fatalf("opening server: %v", err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("starting server: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Stop(sctx)
	})
	e := newEnv(t, dbURL, "http://"+srv.Addr())
	e.Server = srv
	return e
}

func newEnv(t testing.TB, dbURL, url string) *Env {
	t.Helper()
	svc, _ := auth.Sign(JWTSecret, auth.RoleService, "", time.Hour)
	anon, _ := auth.Sign(JWTSecret, auth.RoleAnon, "", time.Hour)
	admin, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("opening admin pool: %v", err)
	}
	t.Cleanup(admin.Close)
	return &Env{T: t, DatabaseURL: dbURL, URL: url, ServiceKey: svc, AnonKey: anon, Admin: admin,
		HTTP: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 200}}}
}

// UserKey signs an authenticated token for a user id.
func UserKey(sub string) string {
	k, _ := auth.Sign(JWTSecret, auth.RoleAuthenticated, sub, time.Hour)
	return k
}

// Response is an HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("decoding %q: %v", r.Body, err)
	}
	return m
}

// Code is the "code" field of an error body.
func (r Response) Code() string {
	var m struct{ Code string }
	_ = json.Unmarshal(r.Body, &m)
	return m.Code
}

// Do sends a request with a bearer token ("" for none).
func (e *Env) Do(method, path, token, contentType string, body io.Reader) Response {
	e.T.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return e.Send(method, path, h, body)
}

// Send sends a request built by the caller (any headers) to the node.
func (e *Env) Send(method, path string, header http.Header, body io.Reader) Response {
	e.T.Helper()
	req, err := http.NewRequest(method, e.URL+path, body)
	if err != nil {
		e.T.Fatalf("building request: %v", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		e.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// JSONRequest sends v as JSON.
func (e *Env) JSONRequest(method, path, token string, v any) Response {
	e.T.Helper()
	var body io.Reader
	if v != nil {
		b, _ := json.Marshal(v)
		body = bytes.NewReader(b)
	}
	return e.Do(method, path, token, "application/json", body)
}

// DeployForm builds a deploy request body.
func DeployForm(fields map[string]string, wasm []byte) (string, *bytes.Buffer) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	if wasm != nil {
		p, _ := mw.CreateFormFile("wasm", "module.wasm")
		_, _ = p.Write(wasm)
	}
	_ = mw.Close()
	return mw.FormDataContentType(), &buf
}

// Deploy deploys wasm under name with an optional config (any JSON-able
// value, or "" for none) and returns the response.
func (e *Env) Deploy(name string, wasm []byte, cfg any) Response {
	e.T.Helper()
	fields := map[string]string{"name": name}
	if cfg != nil {
		b, _ := json.Marshal(cfg)
		fields["config"] = string(b)
	}
	ct, body := DeployForm(fields, wasm)
	return e.Do("POST", "/admin/v1/functions", e.ServiceKey, ct, body)
}

// MustDeploy deploys and fails the test unless it answers 201. It returns
// once the node has replaced the cheap compile the deploy answered with
// by the optimised one and stored it (WaitOptimized), so that what a test
// reads next does not depend on how far that background work got; Deploy
// returns as soon as the deploy answers.
func (e *Env) MustDeploy(name string, wasm []byte, cfg any) map[string]any {
	e.T.Helper()
	r := e.Deploy(name, wasm, cfg)
	if r.Status != http.StatusCreated {
		e.T.Fatalf("deploying %s: %d %s", name, r.Status, r.Body)
	}
	e.WaitOptimized()
	return r.JSON(e.T)
}

// WaitOptimized waits until this node holds no module of the cheap tier
// and has no background compile queued or running (engine.Tier), or
// fails the test after 3 minutes.
func (e *Env) WaitOptimized() {
	e.T.Helper()
	if e.Server == nil {
		return
	}
	deadline := time.Now().Add(3 * time.Minute)
	for e.Server.Engine.Stats().CheapModules > 0 || e.Server.Invoker.BackgroundPending() > 0 {
		if time.Now().After(deadline) {
			e.T.Fatalf("still compiling in the background after 3 minutes: %+v", e.Server.Engine.Stats())
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// Invoke POSTs body (JSON) to a function.
func (e *Env) Invoke(name, token string, body any) Response {
	e.T.Helper()
	return e.JSONRequest("POST", "/functions/v1/"+name, token, body)
}

// Flush waits until every invocation record so far is in the database.
func (e *Env) Flush() {
	if e.Server != nil {
		e.Server.Records.Flush()
	}
}

// Example returns the compiled bytes of examples/<name>, built once per test
// binary (or taken from AEROFN_EXAMPLES_DIR, where `make examples` puts them).
func Example(t testing.TB, name string) []byte {
	t.Helper()
	if dir := os.Getenv("AEROFN_EXAMPLES_DIR"); dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, name+".wasm")); err == nil {
			return b
		}
	}
	return guest.Once(t, "./examples/"+name)
}

// RepoRoot is the module root.
func RepoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binary builds bin/aerofn once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binPath = filepath.Join(os.TempDir(), fmt.Sprintf("aerofn-test-%d", os.Getpid()))
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/aerofn")
		cmd.Dir = RepoRoot(t)
		if b, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("building aerofn: %v\n%s", err, b)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Process is a node running as the real binary.
type Process struct {
	Cmd    *exec.Cmd
	URL    string
	Stdout *bytes.Buffer
	Stderr *bytes.Buffer
	mu     sync.Mutex

	exited  chan struct{} // closed once the process has been waited for
	waitErr error         // Cmd.Wait's answer, once exited is closed
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// addrWatcher passes stderr on to a buffer and, once, sends the address of
// the node's "aerofn listening" log line on found.
type addrWatcher struct {
	out     io.Writer
	partial []byte
	found   chan string
	done    bool
}

func (a *addrWatcher) Write(p []byte) (int, error) {
	if !a.done {
		a.partial = append(a.partial, p...)
		for {
			line, rest, ok := bytes.Cut(a.partial, []byte("\n"))
			if !ok {
				break
			}
			a.partial = rest
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "aerofn listening" && rec.Addr != "" {
				a.found <- rec.Addr
				a.done, a.partial = true, nil
				break
			}
		}
	}
	return a.out.Write(p)
}

// StartBinary runs `aerofn serve` on dbURL, listening on a port the
// kernel picks (AEROFN_LISTEN=127.0.0.1:0: no port is chosen here and
// then raced for), and returns once the node has logged the address it
// listens on and answers /healthz. The node must log at info level.
func StartBinary(t testing.TB, dbURL string, extraEnv ...string) *Process {
	t.Helper()
	p := &Process{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
	p.Cmd = exec.Command(Binary(t), "serve")
	p.Cmd.Env = append(os.Environ(), "AEROFN_DATABASE_URL="+dbURL, "AEROFN_LISTEN=127.0.0.1:0", "AEROFN_LOG_LEVEL=info", "AEROFN_JWT_SECRET="+JWTSecret,
		"AEROFN_SECRETS_KEY="+SecretsKey, "AEROFN_DATA_DIR="+t.TempDir(), "AEROFN_FETCH_ALLOW_PRIVATE=true")
	p.Cmd.Env = append(p.Cmd.Env, extraEnv...)
	found := make(chan string, 1)
	p.Cmd.Stdout = lockedBuffer{&p.mu, p.Stdout}
	p.Cmd.Stderr = &addrWatcher{out: lockedBuffer{&p.mu, p.Stderr}, found: found}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("starting aerofn: %v", err)
	}
	exited := make(chan struct{})
	p.exited = exited
	go func() {
		p.waitErr = p.Cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() { p.Kill() })
	select {
	case addr := <-found:
		p.URL = "http://" + addr
	case <-exited:
		t.Fatalf("aerofn exited before listening: %v; stderr:\n%s", p.waitErr, p.Output())
	case <-time.After(60 * time.Second):
		t.Fatalf("aerofn did not log its address within 60 s; stderr:\n%s", p.Output())
	}
	resp, err := http.Get(p.URL + "/healthz")
	if err != nil {
		t.Fatalf("aerofn listening on %s: %v; stderr:\n%s", p.URL, err, p.Output())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("aerofn listening on %s: /healthz answered %d; stderr:\n%s", p.URL, resp.StatusCode, p.Output())
	}
	return p
}

// Output is what the process wrote to stderr so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Stderr.String()
}

// StdoutLines is what the process wrote to stdout so far, by line.
func (p *Process) StdoutLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Split(strings.TrimSpace(p.Stdout.String()), "\n")
}

// Kill sends SIGKILL and waits.
func (p *Process) Kill() {
	if p.Cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
	default:
		_ = p.Cmd.Process.Kill()
		<-p.exited
	}
}

// Stop sends SIGTERM and waits for a graceful exit.
func (p *Process) Stop() error {
	if p.Cmd.Process == nil {
		return nil
	}
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.Cmd.Process.Signal(os.Interrupt)
	<-p.exited
	return p.waitErr
}

// EnvFor returns an Env that talks to a process node.
func EnvFor(t testing.TB, dbURL string, p *Process) *Env {
	return newEnv(t, dbURL, p.URL)
}

package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/aerodb/aerofn/internal/config"
)

// JSRuntime returns the JavaScript runtime module: $AEROFN_JS_RUNTIME when
// set (make build writes bin/aerofn-jsrt.wasm), else built once per test
// binary (the Go build cache makes that quick after the first time).
func JSRuntime(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("AEROFN_JS_RUNTIME"); p != "" {
		return p
	}
	jsrtOnce.Do(func() {
		jsrtPath = filepath.Join(os.TempDir(), fmt.Sprintf("aerofn-jsrt-test-%d.wasm", os.Getpid()))
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s -w", "-o", jsrtPath, "./internal/jsruntime/guest")
		cmd.Dir = RepoRoot(t)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			jsrtErr = fmt.Errorf("building the JavaScript runtime: %v\n%s", err, b)
		}
	})
	if jsrtErr != nil {
		t.Fatal(jsrtErr)
	}
	return jsrtPath
}

var (
	jsrtOnce sync.Once
	jsrtPath string
	jsrtErr  error
)

// JSRuntimeCache is where test nodes keep the runtime's compiled artifact:
// one directory for every test on the machine, so the runtime is compiled
// once per runtime version, not once per test (the file is named by the
// runtime's hash and replaced atomically).
func JSRuntimeCache() string { return filepath.Join(os.TempDir(), "aerofn-jsrt-cache") }

// WithJS configures an in-process node with the JavaScript runtime.
func WithJS(t testing.TB) Options {
	rt := JSRuntime(t)
	return Options{Config: func(c *config.Config) { c.JSRuntime, c.JSRuntimeCache = rt, JSRuntimeCache() }}
}

// JSEnv is the environment that gives a binary node (StartBinary) the
// JavaScript runtime.
func JSEnv(t testing.TB) []string {
	return []string{"AEROFN_JS_RUNTIME=" + JSRuntime(t), "AEROFN_JS_RUNTIME_CACHE=" + JSRuntimeCache()}
}

// ScriptForm is a deploy form with script parts: files maps each relative
// path to its contents.
func ScriptForm(fields map[string]string, files map[string]string) (string, *bytes.Buffer) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="script"; filename=%q`, n))
		h.Set("Content-Type", "text/plain")
		p, _ := mw.CreatePart(h)
		_, _ = p.Write([]byte(files[n]))
	}
	_ = mw.Close()
	return mw.FormDataContentType(), &buf
}

// DeployScript deploys a JavaScript or TypeScript function.
func (e *Env) DeployScript(name string, files map[string]string, cfg any) Response {
	e.T.Helper()
	fields := map[string]string{"name": name}
	if cfg != nil {
		b, _ := json.Marshal(cfg)
		fields["config"] = string(b)
	}
	ct, body := ScriptForm(fields, files)
	return e.Do("POST", "/admin/v1/functions", e.ServiceKey, ct, body)
}

// MustDeployScript deploys a script and fails the test unless it answers 201.
func (e *Env) MustDeployScript(name string, files map[string]string, cfg any) map[string]any {
	e.T.Helper()
	r := e.DeployScript(name, files, cfg)
	if r.Status != http.StatusCreated {
		e.T.Fatalf("deploying %s: %d %s", name, r.Status, r.Body)
	}
	return r.JSON(e.T)
}

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/testenv"
)

// The JavaScript runtime is loaded only by a node that needs it
// (internal/server/jsruntime.go): one whose functions are all WebAssembly
// never compiles its 17 MB module, which would otherwise cost seconds of
// CPU and RSS in the background of every such node.

// jsScript is a small JavaScript function.
var jsScript = map[string]string{"index.js": `export async function handler() { return { statusCode: 200, body: JSON.stringify({ ok: true }) } }`}

// ownJSCache gives a node the runtime with a cache directory of its own,
// empty: loading the runtime then means the shared artifact or a compile.
func ownJSCache(t *testing.T, dataDir, cache string) testenv.Options {
	rt := testenv.JSRuntime(t)
	if cache == "" {
		cache = t.TempDir()
	}
	return testenv.Options{Config: func(c *config.Config) {
		c.JSRuntime, c.JSRuntimeCache, c.RolePoolSize = rt, cache, 2
		if dataDir != "" {
			c.DataDir = dataDir
		}
	}}
}

func loadMetric(t *testing.T, e *testenv.Env, name string) string {
	t.Helper()
	r := e.Do("GET", "/metrics", e.ServiceKey, "", nil)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s:\n%s", name, r.Body)
	return ""
}

func TestWasmOnlyNodeNeverLoadsJSRuntime(t *testing.T) {
	a := testenv.Start(t, ownJSCache(t, "", ""))
	a.MustDeploy("fn", compile(t, watEcho), nil)
	if r := a.Invoke("fn", a.AnonKey, map[string]string{"x": "y"}); r.Status != 200 {
		t.Fatalf("call: %d %s", r.Status, r.Body)
	}
	// Restarted with a WebAssembly function in the registry.
	stop(t, a)
	b := testenv.StartOn(t, a.DatabaseURL, ownJSCache(t, "", ""))
	if r := b.Invoke("fn", b.AnonKey, map[string]string{"x": "y"}); r.Status != 200 {
		t.Fatalf("call: %d %s", r.Status, r.Body)
	}
	hash, err := b.Server.Engine.JSRuntimeHash()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testenv.Env{a, b} {
		if w := n.Server.JSRuntimeWarmups(); w != 0 || n.Server.Engine.Cached(hash) || n.Server.Engine.Compiling() != 0 {
			t.Fatalf("node loaded the runtime: warm-ups %d cached %v compiling %d, %+v", w, n.Server.Engine.Cached(hash),
				n.Server.Engine.Compiling(), n.Server.Engine.Stats())
		}
	}
	if s := b.Server.Engine.Stats(); s.Compiles != 0 {
		t.Fatalf("restarted node compiled: %+v", s)
	}
	if v := loadMetric(t, b, "aerofn_js_runtime_warmups_total"); v != "0" {
		t.Fatalf("aerofn_js_runtime_warmups_total %s", v)
	}
	if v := loadMetric(t, b, "aerofn_modules_compiling"); v != "0" {
		t.Fatalf("aerofn_modules_compiling %s", v)
	}
}

// A node that has never loaded the runtime deploys a script: the deploy
// loads it (here from the runtime's cache directory) and the function
// runs. A node restarted with that function in the registry loads the
// runtime as it starts, before it listens.
func TestColdNodeDeploysScriptAndRestartWarms(t *testing.T) {
	shared := testenv.WithJS(t)
	a := testenv.Start(t, shared)
	hash, err := a.Server.Engine.JSRuntimeHash()
	if err != nil {
		t.Fatal(err)
	}
	if w := a.Server.JSRuntimeWarmups(); w != 0 || a.Server.Engine.Cached(hash) {
		t.Fatalf("node without scripts loaded the runtime at start: %d", w)
	}
	a.MustDeployScript("js", jsScript, nil)
	if r := a.Invoke("js", a.AnonKey, map[string]string{}); r.Status != 200 || !strings.Contains(string(r.Body), `"ok":true`) {
		t.Fatalf("call: %d %s", r.Status, r.Body)
	}
	stop(t, a)

	b := testenv.StartOn(t, a.DatabaseURL, shared)
	if w := b.Server.JSRuntimeWarmups(); w != 1 || !b.Server.Engine.Cached(hash) {
		t.Fatalf("restarted node: warm-ups %d, runtime cached %v", w, b.Server.Engine.Cached(hash))
	}
	if r := b.Invoke("js", b.AnonKey, map[string]string{}); r.Status != 200 {
		t.Fatalf("first call on the restarted node: %d %s", r.Status, r.Body)
	}
	if s := b.Server.Engine.Stats(); s.Compiles != 0 {
		t.Fatalf("restarted node compiled: %+v", s)
	}
}

// Stop during the runtime's warm-up (a compile: its cache directory is
// empty) cancels it and waits for it: the warm-up ends at the
// compile's next step, leaving nothing running, and Stop returns without
// waiting for the whole compile.
func TestStopDuringJSRuntimeWarmUp(t *testing.T) {
	a := testenv.Start(t, testenv.WithJS(t))
	a.MustDeployScript("js", jsScript, nil)
	stop(t, a)

	b := testenv.StartOn(t, a.DatabaseURL, ownJSCache(t, "", ""))
	hash, _ := b.Server.Engine.JSRuntimeHash()
	if b.Server.JSRuntimeWarmups() != 1 {
		t.Fatalf("node with a script did not begin warming the runtime: %d", b.Server.JSRuntimeWarmups())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	if err := b.Server.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("Stop took %v (the compile step in progress finishes first)", time.Since(start))
	if b.Server.Engine.Cached(hash) || b.Server.Engine.Compiling() != 0 {
		t.Fatalf("warm-up went on after Stop: cached %v compiling %d", b.Server.Engine.Cached(hash), b.Server.Engine.Compiling())
	}
	if s := b.Server.Engine.Stats(); s.Compiles != 0 {
		t.Fatalf("the whole compile ran before Stop returned: %+v", s)
	}
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// jsRuntimeFile is the JavaScript runtime module: $AEROFN_JS_RUNTIME when
// set (make builds bin/aerofn-jsrt.wasm), else built once per test binary.
func jsRuntimeFile(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("AEROFN_JS_RUNTIME"); p != "" {
		return p
	}
	jsrtOnce.Do(func() {
		jsrtPath = filepath.Join(os.TempDir(), "aerofn-jsrt-enginetest.wasm")
		cmd := exec.Command("./scripts/build-jsrt.sh", jsrtPath)
		cmd.Dir = filepath.Join("..", "..")
		if b, err := cmd.CombinedOutput(); err != nil {
			jsrtErr = err
			t.Logf("%s", b)
		}
	})
	if jsrtErr != nil {
		t.Fatalf("building the JavaScript runtime: %v", jsrtErr)
	}
	return jsrtPath
}

var (
	jsrtOnce sync.Once
	jsrtPath string
	jsrtErr  error
)

// newJSEngine is an engine with the runtime, whose compiled artifact is
// shared by every test run on this machine (its name is the runtime's hash).
func newJSEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	cfg.JSRuntimePath = jsRuntimeFile(t)
	cfg.JSRuntimeCacheDir = filepath.Join(os.TempDir(), "aerofn-jsrt-cache")
	return newEngine(t, cfg)
}

func loadScript(t testing.TB, e *Engine, hash, script string) *Module {
	t.Helper()
	m, err := e.Load(hash, func() ([]byte, error) { return ScriptModule([]byte(script)), nil })
	if err != nil {
		t.Fatalf("loading script: %v", err)
	}
	if !m.Script() {
		t.Fatal("a script loaded as a plain module")
	}
	return m
}

func TestScriptRunsOnTheRuntime(t *testing.T) {
	e := newJSEngine(t, Config{CacheDir: t.TempDir()})
	start := time.Now()
	rt, err := e.JSRuntime(true)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := rt.Preinitialized(); !ok {
		t.Fatalf("runtime not pre-initialised: %v", err)
	}
	t.Logf("runtime ready in %v", time.Since(start))

	m := loadScript(t, e, "hello", `var __aerofn_exports = { handler: async function (ev) {
		const r = await db_query("SELECT 1", [ev.name]);
		console.log("hi", {a: 1});
		return { message: "Hello, " + ev.name + "!", rows: r.rowCount, env: env("K"), missing: env("NOPE") === undefined };
	} };`)
	var got string
	host := &fakeHost{env: map[string]string{"K": "v"}, db: func(ctx context.Context, req []byte) []byte {
		got = string(req)
		return []byte(`{"rows":[{"x":1}],"rowCount":1,"command":"SELECT"}`)
	}}
	res := run(t, e, m, `{"trigger":"http","body":{"name":"World"}}`, Limits{}, host)
	wantStatus(t, res, StatusSuccess)
	if want := `{"message":"Hello, World!","rows":1,"env":"v","missing":true}`; string(res.Output) != want {
		t.Fatalf("output %s, want %s", res.Output, want)
	}
	if got != `{"sql":"SELECT 1","params":["World"]}` {
		t.Fatalf("db_query request %s", got)
	}
	if len(res.Logs) != 1 || res.Logs[0].Message != `hi {"a":1}` || res.Logs[0].Level != "info" {
		t.Fatalf("logs %+v", res.Logs)
	}
	t.Logf("memory %d KiB, took %v", res.MemoryPeak>>10, res.Duration)

	// The shared artifact of a script is its bytecode, made by this
	// runtime, and its stored bytes.
	art, err := e.Artifact("hello")
	if err != nil {
		t.Fatal(err)
	}
	stored, code, ok := parseScriptArtifact(art)
	if !ok || code == nil || len(code.bytecode) == 0 || code.runtime != e.jsrt.hash || !IsScript(stored) {
		t.Fatalf("artifact %q", art)
	}
}

// A script is compiled to bytecode once, when it is loaded, and every
// call runs that bytecode: none hands the runtime the source to parse.
// Error stacks still name the script's lines.
func TestScriptCallsRunBytecode(t *testing.T) {
	e := newJSEngine(t, Config{})
	m := loadScript(t, e, "bytecode", "var __aerofn_exports = { handler(ev) {\n"+
		"  if (ev.fail) throw new Error(\"boom\");\n"+
		"  return { n: ev.n * 2 };\n} };\n")
	for i := range 5 {
		res := run(t, e, m, fmt.Sprintf(`{"n":%d}`, i), Limits{}, &fakeHost{})
		wantStatus(t, res, StatusSuccess)
		if want := fmt.Sprintf(`{"n":%d}`, 2*i); string(res.Output) != want {
			t.Fatalf("output %s, want %s", res.Output, want)
		}
	}
	res := run(t, e, m, `{"fail":true}`, Limits{}, &fakeHost{})
	wantStatus(t, res, StatusError)
	if !strings.Contains(string(res.Output), "Error: boom") || !strings.Contains(string(res.Output), "(function.js:2)") {
		t.Fatalf("error %q, want Error: boom at function.js:2", res.Output)
	}
	if st := e.Stats(); st.ScriptCompiles != 1 || st.ScriptSourceRuns != 0 {
		t.Fatalf("%d compiles to bytecode, %d calls from the source; want 1 and 0", st.ScriptCompiles, st.ScriptSourceRuns)
	}
}

// Bytecode another runtime made is not run: a load that may not compile
// (a call's, a warm-up's) binds the script at once, its calls run from the
// source while the script is compiled in the background, and from its
// bytecode after. The new artifact, in the cache directory, serves a
// restart without a compile.
func TestScriptBytecodeOfAnotherRuntime(t *testing.T) {
	script := `var __aerofn_exports = { handler: () => ({ ok: 1 }) };`
	a := newJSEngine(t, Config{})
	loadScript(t, a, "other-rt", script)
	art, err := a.Artifact("other-rt")
	if err != nil {
		t.Fatal(err)
	}
	stored, code, ok := parseScriptArtifact(art)
	if !ok || code == nil {
		t.Fatalf("artifact %q", art)
	}
	code.runtime = "jsrt-" + strings.Repeat("0", 64)
	other := (&jsScript{stored: stored})
	other.code.Store(code)
	stale := other.artifact()

	dir := t.TempDir()
	b := newJSEngine(t, Config{CacheDir: dir})
	if _, err := b.JSRuntime(true); err != nil {
		t.Fatal(err)
	}
	b.jsrt.compileMu.Lock() // hold the background compile back
	m, err := b.LoadFrom("other-rt", Source{Artifact: func() ([]byte, error) { return stale, nil }})
	if err != nil {
		b.jsrt.compileMu.Unlock()
		t.Fatal(err)
	}
	res := run(t, b, m, `{}`, Limits{}, &fakeHost{})
	b.jsrt.compileMu.Unlock()
	wantStatus(t, res, StatusSuccess)
	if st := b.Stats(); st.ScriptSourceRuns != 1 || st.ScriptCompiles != 0 {
		t.Fatalf("before the compile: %d calls from the source, %d compiles; want 1 and 0", st.ScriptSourceRuns, st.ScriptCompiles)
	}
	deadline := time.Now().Add(30 * time.Second)
	for b.Stats().ScriptCompiles == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the script was not compiled in the background")
		}
		time.Sleep(5 * time.Millisecond)
	}
	wantStatus(t, run(t, b, m, `{}`, Limits{}, &fakeHost{}), StatusSuccess)
	if st := b.Stats(); st.ScriptSourceRuns != 1 {
		t.Fatalf("after the compile: %d calls from the source, want still 1", st.ScriptSourceRuns)
	}
	got, err := b.Artifact("other-rt")
	if err != nil {
		t.Fatal(err)
	}
	if _, c, _ := parseScriptArtifact(got); c == nil || c.runtime != b.jsrt.hash {
		t.Fatalf("artifact after the compile %q", got)
	}

	// A restart finds the new artifact in the cache directory.
	c := newJSEngine(t, Config{CacheDir: dir})
	m, err = c.LoadFrom("other-rt", Source{})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, run(t, c, m, `{}`, Limits{}, &fakeHost{}), StatusSuccess)
	if st := c.Stats(); st.ScriptCompiles != 0 || st.ScriptSourceRuns != 0 {
		t.Fatalf("restart: %d compiles, %d calls from the source; want 0 and 0", st.ScriptCompiles, st.ScriptSourceRuns)
	}
}

// Bytecode is made only from stored scripts: module bytes shaped as a
// script's artifact (as a deploy of "wasm" could carry) are compiled as
// WebAssembly, and refused.
func TestScriptArtifactIsNotAcceptedAsModuleBytes(t *testing.T) {
	a := newJSEngine(t, Config{})
	loadScript(t, a, "art", `var __aerofn_exports = { handler: () => 1 };`)
	art, err := a.Artifact("art")
	if err != nil {
		t.Fatal(err)
	}
	b := newJSEngine(t, Config{})
	if _, err := b.Load("art", func() ([]byte, error) { return art, nil }); !errors.Is(err, ErrInvalidModule) {
		t.Fatalf("loading an artifact as module bytes: %v, want ErrInvalidModule", err)
	}
}

func TestScriptErrors(t *testing.T) {
	e := newJSEngine(t, Config{})
	for _, c := range []struct{ name, script, want string }{
		{"throws", `var __aerofn_exports = { handler() { throw new Error("boom"); } };`, "Error: boom"},
		{"rejects", `var __aerofn_exports = { handler: async () => { throw new TypeError("bad"); } };`, "TypeError: bad"},
		{"nohandler", `var __aerofn_exports = {};`, "exports no handler"},
		{"pending", `var __aerofn_exports = { handler: () => new Promise(() => {}) };`, "never settled"},
		{"dberror", `var __aerofn_exports = { handler: async () => { try { await db_query("x") } catch (e) { throw new Error(e.name + " " + e.code) } } };`, "DBError 42501"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := loadScript(t, e, "err-"+c.name, c.script)
			res := run(t, e, m, `{}`, Limits{}, &fakeHost{db: func(context.Context, []byte) []byte {
				return []byte(`{"error":{"code":"42501","message":"permission denied"}}`)
			}})
			wantStatus(t, res, StatusError)
			if !strings.Contains(string(res.Output), c.want) {
				t.Fatalf("output %q, want it to contain %q", res.Output, c.want)
			}
		})
	}
}

// TestScriptSyntaxErrorRefusedAtLoad: a script QuickJS cannot compile is
// an invalid module when it is loaded from its bytes (a deploy answers 400
// with QuickJS's words), not a module whose every call fails.
func TestScriptSyntaxErrorRefusedAtLoad(t *testing.T) {
	e := newJSEngine(t, Config{})
	_, err := e.Load("syntax", func() ([]byte, error) { return ScriptModule([]byte(`var __aerofn_exports = {`)), nil })
	if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), "SyntaxError") {
		t.Fatalf("loading a script with a syntax error: %v, want ErrInvalidModule naming the SyntaxError", err)
	}
	if e.Stats().ScriptCompileFailures != 1 {
		t.Fatalf("compile failures %d, want 1", e.Stats().ScriptCompileFailures)
	}
}

func TestScriptLoopTimesOut(t *testing.T) {
	e := newJSEngine(t, Config{})
	m := loadScript(t, e, "loop", `var __aerofn_exports = { handler() { for (;;) {} } };`)
	res := promptly(t, 2*time.Second, func() Result {
		return run(t, e, m, `{}`, Limits{Timeout: 200 * time.Millisecond}, &fakeHost{})
	})
	wantStatus(t, res, StatusTimeout)
}

func TestScriptRandomDiffersPerCall(t *testing.T) {
	e := newJSEngine(t, Config{})
	m := loadScript(t, e, "random", `var __aerofn_exports = { handler() {
		const a = new Uint8Array(8); crypto.getRandomValues(a);
		return [Math.random(), Array.from(a).join(","), crypto.randomUUID()];
	} };`)
	a := run(t, e, m, `{}`, Limits{}, &fakeHost{})
	b := run(t, e, m, `{}`, Limits{}, &fakeHost{})
	wantStatus(t, a, StatusSuccess)
	wantStatus(t, b, StatusSuccess)
	if string(a.Output) == string(b.Output) {
		t.Fatalf("two calls drew the same random values: %s", a.Output)
	}
}

func TestScriptWebGlobals(t *testing.T) {
	e := newJSEngine(t, Config{})
	m := loadScript(t, e, "web", `var __aerofn_exports = { handler() {
		const u = new URL("/a/b?x=1&y=two+words#frag", "https://Example.com:443/base");
		u.searchParams.append("z", "3");
		const bytes = new TextEncoder().encode("héllo");
		return {
			href: u.href, host: u.host, path: u.pathname, x: u.searchParams.get("x"), y: u.searchParams.get("y"),
			len: bytes.length, back: new TextDecoder().decode(bytes), b64: btoa("hi"), unb64: atob("aGk="),
			qs: new URLSearchParams({a: "1 2", b: "&"}).toString(), json: JSON.parse('{"k":[1]}').k[0],
		};
	} };`)
	res := run(t, e, m, `{}`, Limits{}, &fakeHost{})
	wantStatus(t, res, StatusSuccess)
	want := `{"href":"https://example.com/a/b?x=1&y=two+words&z=3#frag","host":"example.com","path":"/a/b","x":"1","y":"two words","len":6,"back":"héllo","b64":"aGk=","unb64":"hi","qs":"a=1+2&b=%26","json":1}`
	if string(res.Output) != want {
		t.Fatalf("output\n%s\nwant\n%s", res.Output, want)
	}
}

// The language as QuickJS in wasm runs it: deep recursion is a catchable
// error (QuickJS's InternalError "stack overflow", not a trap), number formatting rounds ties away from zero as
// the specification says (WebAssembly has no rounding modes for printf to
// use), and the usual built-ins work.
func TestScriptLanguage(t *testing.T) {
	e := newJSEngine(t, Config{})
	m := loadScript(t, e, "lang", `var __aerofn_exports = { handler() {
		function deep(n) { return n === 0 ? 0 : 1 + deep(n - 1); }
		let overflow;
		try { deep(1e7); overflow = "none"; } catch (err) { overflow = err.name; }
		return {
			overflow, ok: deep(1000),
			fixed: [(0.5).toFixed(0), (1.5).toFixed(0), (2.5).toFixed(0), (1.25).toFixed(1), (-2.5).toFixed(0), (1.005).toFixed(2), (123.456).toFixed(1)],
			prec: [(2.5).toPrecision(1), (0.125).toPrecision(2), (1.25).toExponential(1), (123456).toPrecision(2),
				(-0.0000125).toPrecision(2), (25).toPrecision(1), (9.5).toPrecision(1), (1.005).toPrecision(3), (0.5).toExponential(0),
				(1234.5678).toPrecision(6), (1.5).toExponential()],
			str: [String(0.1 + 0.2), String(1e21), String(-0), (255).toString(16)],
			re: "2024-01-02".replace(/(\d+)-(\d+)-(\d+)/u, "$3/$2/$1"),
			date: new Date(Date.UTC(2020, 1, 29)).toISOString(),
			sorted: [3, 1, 2].sort((a, b) => a - b),
		};
	} };`)
	res := run(t, e, m, `{}`, Limits{}, &fakeHost{})
	wantStatus(t, res, StatusSuccess)
	want := `{"overflow":"InternalError","ok":1000,` +
		`"fixed":["1","2","3","1.3","-3","1.00","123.5"],` +
		`"prec":["3","0.13","1.3e+0","1.2e+5","-0.000013","3e+1","1e+1","1.00","5e-1","1234.57","1.5e+0"],` +
		`"str":["0.30000000000000004","1e+21","0","ff"],` +
		`"re":"02/01/2024","date":"2020-02-29T00:00:00.000Z","sorted":[1,2,3]}`
	if string(res.Output) != want {
		t.Fatalf("output\n%s\nwant\n%s", res.Output, want)
	}
}

// The runtime's bytes do not depend on where it was built (its assert
// messages would otherwise name the build's absolute paths): its hash is
// what nodes share its compiled artifact under.
func TestJSRuntimeNamesNoBuildPath(t *testing.T) {
	b, err := os.ReadFile(jsRuntimeFile(t))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{repo, "/package/deps/quickjs_2021_03_27", os.TempDir() + "/"} {
		if strings.Contains(string(b), p) {
			t.Errorf("the runtime module contains the build path %q", p)
		}
	}
}

// The runtime leaves a bundle's inline source map line out of what it
// evaluates, but only a line that is one: a last line that merely starts
// like it (here the end of a template literal) is code.
func TestScriptSourceMapLineOnlyWhenItIsOne(t *testing.T) {
	e := newJSEngine(t, Config{})
	m := loadScript(t, e, "map-lookalike", "var __aerofn_exports = { handler() { return t; } };\nvar t = `a\n"+
		"//# sourceMappingURL=data:application/json;base64,e30=`;\n")
	res := run(t, e, m, `{}`, Limits{}, &fakeHost{})
	wantStatus(t, res, StatusSuccess)
	if want := `"a\n//# sourceMappingURL=data:application/json;base64,e30="`; string(res.Output) != want {
		t.Fatalf("output %s, want %s", res.Output, want)
	}
}

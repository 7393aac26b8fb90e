package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
)

// Timers run within the call: in the order they are due, until the
// handler's promise settles; the call's deadline still ends a call that
// waits too long.
func TestJSTimers(t *testing.T) {
	e := testenv.Start(t, testenv.WithJS(t))
	e.MustDeployScript("timers", map[string]string{"t.js": `
const top = [];
setTimeout(() => top.push("top-level"), 1);
export async function handler() {
  const order = [];
  const t0 = Date.now();
  // Set first, due last (the later timers are due long before it).
  const late = new Promise((r) => setTimeout(() => { order.push("late"); r(); }, 1000));
  setTimeout((x, y) => order.push(x + y), 0, "a", "b");
  const cancelled = setTimeout(() => order.push("never"), 0);
  clearTimeout(cancelled);
  setTimeout(() => order.push("zero")); // as due as "ab" or later, set after it
  queueMicrotask(() => order.push("micro"));
  let n = 0;
  await new Promise((resolve) => {
    const id = setInterval(() => { n++; order.push("i" + n); if (n === 3) { clearInterval(id); resolve(); } }, 20);
  });
  await late;
  setTimeout(() => console.log("late"), 10); // dropped: the call has ended
  return { order, top, waited: Date.now() - t0 >= 1000 };
}`}, nil)
	r := e.Invoke("timers", e.AnonKey, nil)
	var got struct {
		Order  []string `json:"order"`
		Top    []string `json:"top"`
		Waited bool     `json:"waited"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &got) != nil {
		t.Fatalf("invoke: %d %s", r.Status, r.Body)
	}
	if o := strings.Join(got.Order, ","); o != "micro,ab,zero,i1,i2,i3,late" || !got.Waited || len(got.Top) != 1 {
		t.Fatalf("got %s", r.Body)
	}
	if status, _, logs, _ := lastRecord(t, e, "timers"); status != "success" || len(logs) != 0 {
		t.Fatalf("record: %s, logs %v", status, logs)
	}

	// A callback's uncaught error fails the call, with its stack.
	e.MustDeployScript("timer-throws", map[string]string{"t.js": `export function handler() {
  return new Promise(() => { setTimeout(() => { throw new RangeError("tick failed"); }, 1); });
}`}, nil)
	if r := e.Invoke("timer-throws", e.AnonKey, nil); r.Status != 500 {
		t.Fatalf("timer-throws: %d %s", r.Status, r.Body)
	}
	if status, errText, _, _ := lastRecord(t, e, "timer-throws"); status != "error" || !strings.Contains(errText, "RangeError: tick failed") || !strings.Contains(errText, "t.js:2") {
		t.Fatalf("timer-throws record: %s %q", status, errText)
	}

	// Nothing left to settle the promise: the call fails at once.
	e.MustDeployScript("stuck", map[string]string{"t.js": `export function handler() { return new Promise(() => {}); }`}, nil)
	if r := e.Invoke("stuck", e.AnonKey, nil); r.Status != 500 {
		t.Fatalf("stuck: %d %s", r.Status, r.Body)
	}
	if _, errText, _, _ := lastRecord(t, e, "stuck"); !strings.Contains(errText, "never settled") {
		t.Fatalf("stuck record: %q", errText)
	}

	// A timer due after the function's timeout: the deadline ends the sleep.
	e.MustDeployScript("sleepy", map[string]string{"t.js": `export async function handler() {
  await new Promise((r) => setTimeout(r, 60000));
  return "woke";
}`}, map[string]any{"timeout": 1})
	start := time.Now()
	if r := e.Invoke("sleepy", e.AnonKey, nil); r.Status != 504 {
		t.Fatalf("sleepy: %d %s", r.Status, r.Body)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("the sleep outlived the deadline: %v", d)
	}
}

// fetch() is the standard global over http_fetch: the function's
// allow-list, a Response with status, ok, headers.get, text() and json().
func TestJSFetch(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Add("X-Multi", "a")
			w.Header().Add("X-Multi", "b")
			_ = json.NewEncoder(w).Encode(map[string]string{"method": r.Method, "query": r.URL.RawQuery,
				"token": r.Header.Get("X-Token"), "ctype": r.Header.Get("Content-Type"), "body": string(b)})
		case "/bin":
			_, _ = w.Write([]byte{0, 255, 1})
		default:
			http.Error(w, "nope", http.StatusNotFound)
		}
	}))
	defer api.Close()
	e := testenv.Start(t, testenv.WithJS(t))
	if r := e.JSONRequest("POST", "/admin/v1/env", e.ServiceKey, map[string]string{"API": api.URL}); r.Status != http.StatusOK {
		t.Fatalf("env: %d %s", r.Status, r.Body)
	}
	e.MustDeployScript("fetcher", map[string]string{"f.ts": `export async function handler() {
  const base = env("API")!;
  const r = await fetch(base + "/echo?x=1", { method: "post", headers: { "X-Token": "t1", "Content-Type": "application/json" }, body: JSON.stringify({ a: 1 }) });
  const echo = await r.json();
  let reused = "";
  try { await r.text(); } catch (e) { reused = (e as Error).name; }
  const missing = await fetch(new URL("/missing", base));
  const bin = new Uint8Array(await (await fetch({ url: base + "/bin" })).arrayBuffer());
  const form = await (await fetch(base + "/echo", { method: "PUT", headers: new Headers([["x-token", "t2"]]), body: new URLSearchParams({ q: "a b" }) })).json();
  let getBody = "";
  try { await fetch(base, { body: "x" }); } catch (e) { getBody = (e as Error).name; }
  let blocked: any = null;
  try { await fetch("https://not-allowed.example.org/"); } catch (e: any) { blocked = { typeError: e instanceof TypeError, name: e.name, code: e.code }; }
  return { status: r.status, ok: r.ok, ctype: r.headers.get("Content-Type"), multi: r.headers.get("x-multi"), has: r.headers.has("X-MULTI"),
    echo, reused, missing: [missing.status, missing.ok, (await missing.text()).trim()], bin: Array.from(bin), form, getBody, blocked };
}`}, map[string]any{"env": []string{"API"}, "allowed_hosts": []string{"127.0.0.1"}})
	r := e.Invoke("fetcher", e.AnonKey, nil)
	if r.Status != 200 {
		t.Fatalf("invoke: %d %s", r.Status, r.Body)
	}
	want := `{"status":200,"ok":true,"ctype":"application/json","multi":"a, b","has":true,` +
		`"echo":{"body":"{\"a\":1}","ctype":"application/json","method":"POST","query":"x=1","token":"t1"},"reused":"TypeError",` +
		`"missing":[404,false,"nope"],"bin":[0,255,1],` +
		`"form":{"body":"q=a+b","ctype":"application/x-www-form-urlencoded;charset=UTF-8","method":"PUT","query":"","token":"t2"},` +
		`"getBody":"TypeError","blocked":{"typeError":true,"name":"FetchError","code":"host_not_allowed"}}`
	if strings.TrimSpace(string(r.Body)) != want {
		t.Fatalf("got  %s\nwant %s", r.Body, want)
	}
}

// A handler may return a Response, as Workers and Deno handlers do: its
// status, headers and body are the HTTP answer.
func TestJSHandlerReturnsResponse(t *testing.T) {
	e := testenv.Start(t, testenv.WithJS(t))
	e.MustDeployScript("resp", map[string]string{"r.js": `export default async function (req) {
  if (req.kind === "json") return Response.json({ a: 1 }, { status: 201, headers: { "X-A": "1" } });
  if (req.kind === "bytes") return new Response(new Uint8Array([0, 255, 1]), { headers: { "content-type": "application/octet-stream" } });
  const h = new Headers();
  h.append("Set-Cookie", "a=1");
  h.append("Set-Cookie", "b=2");
  return new Response("hello", { status: 202, headers: h });
}`}, nil)
	r := e.Invoke("resp", e.AnonKey, map[string]string{"kind": "json"})
	if r.Status != 201 || strings.TrimSpace(string(r.Body)) != `{"a":1}` || r.Header.Get("X-A") != "1" || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("json: %d %v %s", r.Status, r.Header, r.Body)
	}
	r = e.Invoke("resp", e.AnonKey, map[string]string{"kind": "bytes"})
	if r.Status != 200 || string(r.Body) != "\x00\xff\x01" || r.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("bytes: %d %v %q", r.Status, r.Header, r.Body)
	}
	r = e.Invoke("resp", e.AnonKey, map[string]string{"kind": "text"})
	if r.Status != 202 || string(r.Body) != "hello" || strings.Join(r.Header.Values("Set-Cookie"), ";") != "a=1;b=2" ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("text: %d %v %q", r.Status, r.Header, r.Body)
	}
}

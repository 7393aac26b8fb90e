// Command guest is aerofn's JavaScript runtime: the goja engine built for
// GOOS=wasip1 as one WebAssembly module that runs every JavaScript and
// TypeScript function inside the same sandbox as any other module.
//
// Initialisation (the Go runtime, a goja runtime and the globals of the
// host API, prelude.js) runs in _initialize, which the engine snapshots once
// per node (docs/ABI.md, "Initialisation runs once per version"). Each call
// then reads its input, framed by the host as
//
//	uint32 little-endian n | n bytes of the bundled script | the event JSON
//
// compiles and runs the script, calls its handler with the event and writes
// the JSON of what the handler returned (or resolved to) as the output.
package main

import (
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dop251/goja"
)

//go:embed prelude.js
var preludeSource string

// exportsName is the global the bundle assigns its exports to (the
// server bundles with esbuild's IIFE format under this global name).
const exportsName = "__aerofn_exports"

// maxCallStack bounds JavaScript recursion: past it a RangeError is thrown,
// long before the call's memory runs out.
const maxCallStack = 4096

var (
	vm       *goja.Runtime
	invokeFn goja.Callable // prelude's __aerofn_invoke(exports, eventJSON) → Promise<string>
	tickFn   goja.Callable // prelude's __aerofn_tick() → whether a timer ran
)

func init() {
	vm = goja.New()
	vm.SetMaxCallStackSize(maxCallStack)
	vm.SetFieldNameMapper(goja.UncapFieldNameMapper())
	h := vm.NewObject()
	must(h.Set("log", func(level int32, msg string) { hostLog(level, msg) }))
	must(h.Set("env", func(key string) goja.Value {
		v, ok := hostEnv(key)
		if !ok {
			return goja.Undefined()
		}
		return vm.ToValue(v)
	}))
	must(h.Set("db_query", hostDBQuery))
	must(h.Set("http_fetch", hostHTTPFetch))
	must(h.Set("random", func(n int) goja.ArrayBuffer {
		if n < 0 || n > 65536 {
			panic(vm.NewTypeError("random: %d bytes asked, at most 65536", n))
		}
		b := make([]byte, n)
		rand.Read(b)
		return vm.NewArrayBuffer(b)
	}))
	must(h.Set("utf8encode", func(s string) goja.ArrayBuffer { return vm.NewArrayBuffer([]byte(s)) }))
	must(h.Set("utf8decode", func(v goja.Value, fatal bool) string {
		b := bytesOf(v)
		if fatal && !utf8.Valid(b) {
			panic(vm.NewTypeError("The encoded data was not valid UTF-8"))
		}
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}))
	must(h.Set("b64encode", func(v goja.Value) string { return base64.StdEncoding.EncodeToString(bytesOf(v)) }))
	must(h.Set("b64decode", func(s string) goja.ArrayBuffer {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			panic(vm.NewTypeError("invalid base64: %v", err))
		}
		return vm.NewArrayBuffer(b)
	}))
	must(h.Set("parseURL", parseURL))
	// sleep blocks in the host (poll_oneoff, which lends the call's run
	// slot and ends at the call's deadline) until a timer is due.
	must(h.Set("sleep", func(ms float64) {
		if ms > 0 {
			time.Sleep(time.Duration(ms * float64(time.Millisecond)))
		}
	}))
	must(vm.Set("__host", h))

	if _, err := vm.RunScript("aerofn:prelude.js", preludeSource); err != nil {
		panic(fmt.Sprintf("aerofn js runtime: prelude: %v", err))
	}
	fn, ok := goja.AssertFunction(vm.Get("__aerofn_invoke"))
	if !ok {
		panic("aerofn js runtime: prelude defines no __aerofn_invoke")
	}
	invokeFn = fn
	if tickFn, ok = goja.AssertFunction(vm.Get("__aerofn_tick")); !ok {
		panic("aerofn js runtime: prelude defines no __aerofn_tick")
	}
	must(vm.GlobalObject().Delete("__aerofn_invoke"))
	must(vm.GlobalObject().Delete("__aerofn_tick"))
	must(vm.GlobalObject().Delete("__host"))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// bytesOf returns the bytes of an ArrayBuffer or a typed array (a view).
func bytesOf(v goja.Value) []byte {
	switch x := v.Export().(type) {
	case goja.ArrayBuffer:
		return x.Bytes()
	case []byte:
		return x
	case string:
		return []byte(x)
	}
	panic(vm.NewTypeError("expected an ArrayBuffer or a Uint8Array"))
}

// parseURL resolves s against base (optional) and returns the parts of the
// WHATWG URL interface that prelude.js's URL class exposes.
func parseURL(s string, base goja.Value) map[string]any {
	u, err := url.Parse(s)
	if err == nil && base != nil && !goja.IsUndefined(base) && !goja.IsNull(base) {
		var b *url.URL
		b, err = url.Parse(base.String())
		if err == nil {
			if !b.IsAbs() {
				err = errors.New("base is not an absolute URL")
			} else {
				u = b.ResolveReference(u)
			}
		}
	}
	if err == nil && (!u.IsAbs() || (u.Host == "" && u.Opaque == "" && (u.Scheme == "http" || u.Scheme == "https"))) {
		err = errors.New("not an absolute URL")
	}
	if err != nil {
		panic(vm.NewTypeError("Invalid URL: %s", s))
	}
	pw, _ := u.User.Password()
	path := u.EscapedPath()
	if path == "" && u.Opaque == "" {
		path = "/"
	} else if u.Opaque != "" {
		path = u.Opaque
	}
	search := ""
	if u.RawQuery != "" {
		search = "?" + u.RawQuery
	}
	hash := ""
	if u.Fragment != "" {
		hash = "#" + u.EscapedFragment()
	}
	host := strings.ToLower(u.Host)
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
		host = strings.ToLower(u.Hostname())
	}
	return map[string]any{
		"protocol": strings.ToLower(u.Scheme) + ":",
		"username": u.User.Username(),
		"password": pw,
		"host":     host,
		"hostname": strings.ToLower(u.Hostname()),
		"port":     port,
		"pathname": path,
		"search":   search,
		"hash":     hash,
	}
}

// invoke runs one call: input framed as described in the package comment.
// It returns the output and whether the call succeeded.
func invoke(input []byte) (out []byte, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			out, ok = fmt.Appendf(nil, "aerofn js runtime: %v", r), false
		}
	}()
	if len(input) < 4 {
		return []byte("aerofn js runtime: no script in the input"), false
	}
	n := binary.LittleEndian.Uint32(input)
	if uint64(n) > uint64(len(input)-4) {
		return []byte("aerofn js runtime: truncated script in the input"), false
	}
	script, event := string(input[4:4+n]), string(input[4+n:])
	if event == "" {
		event = "null"
	}

	// Math.random differs in every call: seeded from the host's CSPRNG,
	// not from anything the snapshot holds.
	var seed [16]byte
	rand.Read(seed[:])
	src := mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))
	vm.SetRandSource(mrand.New(src).Float64)

	prog, err := goja.Compile("function.js", script, false)
	if err != nil {
		return []byte("SyntaxError: " + err.Error()), false
	}
	if _, err := vm.RunProgram(prog); err != nil {
		return []byte(errorText(err)), false
	}
	exports := vm.Get(exportsName)
	if exports == nil {
		exports = goja.Undefined()
	}
	res, err := invokeFn(goja.Undefined(), exports, vm.ToValue(event))
	if err != nil {
		return []byte(errorText(err)), false
	}
	p, isPromise := res.Export().(*goja.Promise)
	if !isPromise {
		return []byte("aerofn js runtime: __aerofn_invoke returned no promise"), false
	}
	// The event loop: while the handler's promise is pending, run the next
	// timer; goja runs the promise jobs it queued when the call returns.
	for p.State() == goja.PromiseStatePending {
		ran, err := tickFn(goja.Undefined())
		if err != nil {
			return []byte(errorText(err)), false
		}
		if !ran.ToBoolean() {
			break
		}
	}
	switch p.State() {
	case goja.PromiseStateFulfilled:
		return []byte(p.Result().String()), true
	case goja.PromiseStateRejected:
		return []byte(reasonText(p.Result())), false
	default:
		return []byte("the handler's promise never settled: no timer or host call is left that could settle it"), false
	}
}

// errorText is an exception's stack trace (positions mapped to the user's
// source by the bundle's source map), or its message.
func errorText(err error) string {
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return reasonText(ex.Value())
	}
	return err.Error()
}

// reasonText describes a thrown value: an Error's stack (which starts with
// its name and message), else its string form.
func reasonText(v goja.Value) string {
	if o, ok := v.(*goja.Object); ok {
		if st := o.Get("stack"); st != nil && !goja.IsUndefined(st) && st.String() != "" {
			return strings.TrimRight(st.String(), "\n")
		}
	}
	if v == nil || goja.IsUndefined(v) {
		return "the handler threw undefined"
	}
	return v.String()
}

func main() {}

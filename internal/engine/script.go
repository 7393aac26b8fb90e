package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// JavaScript functions.
//
// A JavaScript (or TypeScript) function version is not a WebAssembly
// module: its stored bytes are ScriptMagic followed by the bundled script
// (the server bundles it, internal/jsbundle). It runs on the JavaScript
// runtime, aerofn's own module (internal/jsruntime/guest, the QuickJS
// engine built for wasm32-wasi), which the engine loads like any module
// under the hash of its bytes: compiled and pre-initialised once per node
// and runtime version, never once per function. A script's Module shares
// the runtime's compiled module and carries the script.
//
// The runtime compiles the script to QuickJS bytecode once per version
// and runtime, inside the sandbox (a run of the runtime whose output is
// the bytecode): when the version is loaded to be deployed (or enabled,
// rolled back), else, when a load finds no bytecode made by this runtime,
// in the background while calls run from the source. Each call then hands
// the runtime the bytecode and the event as its input, and the runtime
// evaluates the script's top level from the bytecode, fresh in every call
// (the runtime.c comment has the framing).
//
// A script's artifact, for the shared artifact store and the cache
// directory, is its bytecode, the hash of the runtime that made it (a
// different runtime compiles again) and its stored bytes. Bytecode is only
// ever made here, from stored bytes: a Source's Wasm that is not a stored
// script is compiled as WebAssembly, never read as an artifact.

// ScriptMagic starts the stored bytes of every JavaScript function version.
// A WebAssembly module starts with "\x00asm", so the two never collide.
const ScriptMagic = "\x00aerofn-js-1\n"

// scriptArtifactMagic starts a script's artifact:
//
//	scriptArtifactMagic | uint32 n | n bytes: the runtime's hash |
//	uint32 m | m bytes of bytecode | the stored bytes (ScriptMagic...)
//
// (lengths little-endian).
const scriptArtifactMagic = "\x00aerofn-jsbc-1\n"

// Bounds of the run that compiles a script to bytecode: a bundle is at
// most the module size limit (10 MiB), and its bytecode about as large.
const (
	scriptCompileTimeout = 60 * time.Second
	maxBytecode          = 256 << 20
)

// IsScript reports whether stored module bytes are a bundled script.
func IsScript(b []byte) bool { return bytes.HasPrefix(b, []byte(ScriptMagic)) }

// ScriptModule returns the bytes to store for a bundled script.
func ScriptModule(bundle []byte) []byte {
	return append([]byte(ScriptMagic), bundle...)
}

// ErrNoJSRuntime: a JavaScript function was loaded by an engine that has no
// runtime module (Config.JSRuntimePath unset or unreadable).
var ErrNoJSRuntime = errors.New("this node has no JavaScript runtime (bin/aerofn-jsrt.wasm, AEROFN_JS_RUNTIME)")

// jsRuntime is the engine's runtime module: where its bytes are and the
// hash they are loaded under.
type jsRuntime struct {
	once sync.Once
	hash string
	err  error
	// loader, when set (SetJSRuntimeLoader), is how a script gets the
	// runtime that is not loaded yet.
	loader func(wait bool) error
	// compileMu runs background compiles of scripts one at a time.
	compileMu sync.Mutex
}

// SetJSRuntimeLoader hands the engine the node's way of loading the
// JavaScript runtime (the server's warm-up: the shared artifact, else a
// compile, owned by the server's lifecycle). A script whose runtime is
// neither in memory nor in the cache directory then asks it: a call
// starts it and fails with ErrNotCompiled, a load that may compile (a
// deploy) waits for it. Without one, such a load compiles the runtime
// itself. Set it before any Load.
func (e *Engine) SetJSRuntimeLoader(load func(wait bool) error) { e.jsrt.loader = load }

// runtimeHash hashes the runtime file once: "jsrt-" and its SHA-256.
func (e *Engine) runtimeHash() (string, error) {
	e.jsrt.once.Do(func() {
		if e.cfg.JSRuntimePath == "" {
			e.jsrt.err = ErrNoJSRuntime
			return
		}
		f, err := os.Open(e.cfg.JSRuntimePath)
		if err != nil {
			e.jsrt.err = fmt.Errorf("%w: %v", ErrNoJSRuntime, err)
			return
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			e.jsrt.err = fmt.Errorf("%w: %v", ErrNoJSRuntime, err)
			return
		}
		e.jsrt.hash = "jsrt-" + hex.EncodeToString(h.Sum(nil))
	})
	return e.jsrt.hash, e.jsrt.err
}

// JSRuntime loads the JavaScript runtime module: from memory or disk, else
// by compiling (and pre-initialising) it when compile is true, else
// ErrNotCompiled. A script loads it through the node's loader when one is
// set (SetJSRuntimeLoader).
func (e *Engine) JSRuntime(compile bool) (*Module, error) {
	hash, err := e.runtimeHash()
	if err != nil {
		return nil, err
	}
	src := Source{}
	if compile {
		src.Wasm = func() ([]byte, error) { return os.ReadFile(e.cfg.JSRuntimePath) }
	}
	return e.LoadFrom(hash, src)
}

// jsScript is what a script's Module carries.
type jsScript struct {
	stored []byte // the stored bytes: ScriptMagic and the bundle
	// mapTail is the bundle from its inline source map's key on (what the
	// runtime maps error stacks with), or nil.
	mapTail []byte
	// code is the bytecode, once this engine's runtime made it.
	code atomic.Pointer[scriptCode]
	// compiling: a background compile has begun.
	compiling atomic.Bool
}

// scriptCode is a script's bytecode and the hash of the runtime that
// compiled it.
type scriptCode struct {
	runtime  string
	bytecode []byte
}

const sourceMapKey = "//# sourceMappingURL=data:application/json;base64,"

func newJSScript(stored []byte) *jsScript {
	s := &jsScript{stored: stored}
	bundle := s.bundle()
	if i := bytes.LastIndex(bundle, []byte(sourceMapKey)); i >= 0 {
		s.mapTail = bundle[i:]
	}
	return s
}

func (s *jsScript) bundle() []byte { return s.stored[len(ScriptMagic):] }

// artifact is the script's artifact: with its bytecode once compiled,
// else its stored bytes (which a node loads and then compiles).
func (s *jsScript) artifact() []byte {
	c := s.code.Load()
	if c == nil {
		return s.stored
	}
	out := make([]byte, 0, len(scriptArtifactMagic)+8+len(c.runtime)+len(c.bytecode)+len(s.stored))
	out = append(out, scriptArtifactMagic...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(c.runtime)))
	out = append(out, c.runtime...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(c.bytecode)))
	out = append(out, c.bytecode...)
	return append(out, s.stored...)
}

// isScriptArtifact reports whether b is a script's artifact or stored
// bytes, the two forms the cache directory and the artifact store hold.
func isScriptArtifact(b []byte) bool {
	return IsScript(b) || bytes.HasPrefix(b, []byte(scriptArtifactMagic))
}

// parseScriptArtifact splits a script's artifact into its stored bytes and
// its bytecode (nil for stored bytes alone). ok is false when b is neither.
func parseScriptArtifact(b []byte) (stored []byte, code *scriptCode, ok bool) {
	if IsScript(b) {
		return b, nil, true
	}
	rest, ok := bytes.CutPrefix(b, []byte(scriptArtifactMagic))
	if !ok {
		return nil, nil, false
	}
	field := func() ([]byte, bool) {
		if len(rest) < 4 {
			return nil, false
		}
		n := binary.LittleEndian.Uint32(rest)
		if uint64(n) > uint64(len(rest)-4) {
			return nil, false
		}
		f := rest[4 : 4+n]
		rest = rest[4+n:]
		return f, true
	}
	rt, ok1 := field()
	bc, ok2 := field()
	if !ok1 || !ok2 || !IsScript(rest) {
		return nil, nil, false
	}
	return rest, &scriptCode{runtime: string(rt), bytecode: bc}, true
}

// bindScript makes the Module of a script from its artifact or stored
// bytes (art), on the runtime's compiled module. It compiles the runtime
// only when compile is true. Bytecode made by another runtime is not
// used: with compile, the script is compiled now, else in the background
// (calls meanwhile run from the source). cached: art is the cache
// directory's copy, so it is written there only when it changes.
func (e *Engine) bindScript(hash string, art []byte, compile, cached bool) (*Module, error) {
	stored, code, ok := parseScriptArtifact(art)
	if !ok {
		return nil, fmt.Errorf("loading module %s: %w: a malformed script artifact", hash, ErrInvalidModule)
	}
	rt, err := e.JSRuntime(false)
	if errors.Is(err, ErrNotCompiled) {
		switch load := e.jsrt.loader; {
		case load != nil:
			// The node's loader: a call starts it, a deploy waits for it.
			if lerr := load(compile); lerr != nil && compile {
				err = lerr
			} else if compile {
				rt, err = e.JSRuntime(false)
			}
		case compile:
			rt, err = e.JSRuntime(true)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("loading module %s: %w", hash, err)
	}
	m := &Module{hash: hash, m: rt.m, info: rt.info, js: newJSScript(stored)}
	switch {
	case code != nil && code.runtime == e.jsrt.hash:
		m.js.code.Store(code)
		if !cached {
			e.cacheScript(m)
		}
	case compile:
		// A script QuickJS refuses (a syntax error esbuild let through) is
		// an invalid module: the deploy answers 400 with QuickJS's words.
		// A compile that ran out of time or memory on a busy node is not
		// the script's fault: its calls run from the source.
		var refused *scriptRefusedError
		if err := e.compileScript(rt, m); errors.As(err, &refused) {
			return nil, fmt.Errorf("loading module %s: %w: %s", hash, ErrInvalidModule, refused.msg)
		}
	default:
		e.compileScriptLater(rt, m)
	}
	return m, nil
}

// compileScript runs the runtime to compile m's script to bytecode and
// keeps it (in m, and in the cache directory).
func (e *Engine) compileScript(rt, m *Module) error {
	res := e.Run(context.Background(), rt, scriptFrame('c', m.js.bundle(), nil),
		Limits{Timeout: scriptCompileTimeout, MemoryBytes: e.cfg.MaxMemoryBytes, MaxOutput: maxBytecode}, noHost{})
	if res.Status != StatusSuccess {
		e.scriptCompileFailures.Add(1)
		if res.Status == StatusError {
			return &scriptRefusedError{msg: string(res.Output)}
		}
		return fmt.Errorf("compiling script %s to bytecode: %s: %w", m.hash, res.Output, res.Err)
	}
	m.js.code.Store(&scriptCode{runtime: e.jsrt.hash, bytecode: res.Output})
	e.cacheScript(m)
	e.scriptCompiles.Add(1) // after the cache directory has it (tests wait on the count)
	return nil
}

// scriptRefusedError is QuickJS refusing a script: its error, not a limit's.
type scriptRefusedError struct{ msg string }

func (e *scriptRefusedError) Error() string { return "the script does not compile: " + e.msg }

// compileScriptLater compiles m's script in the background, once, one
// script at a time (calls of m run from the source until it ends).
func (e *Engine) compileScriptLater(rt, m *Module) {
	if e.closed.Load() || !m.js.compiling.CompareAndSwap(false, true) {
		return
	}
	e.persisting.Add(1)
	go func() {
		defer e.persisting.Done()
		e.jsrt.compileMu.Lock()
		defer e.jsrt.compileMu.Unlock()
		_ = e.compileScript(rt, m)
	}()
}

// cacheScript writes m's artifact to the cache directory.
func (e *Engine) cacheScript(m *Module) {
	if path := e.scriptPath(m.hash); path != "" {
		if err := writeFile(path, m.js.artifact()); err != nil {
			e.diskWriteErrors.Add(1)
		}
	}
}

// noHost answers the host functions of a compile, which calls none.
type noHost struct{}

func (noHost) Env(context.Context, string) (string, bool) { return "", false }
func (noHost) DBQuery(context.Context, []byte) []byte {
	return []byte(`{"error":{"code":"unavailable","message":"no database while compiling"}}`)
}
func (noHost) HTTPFetch(context.Context, []byte) []byte {
	return []byte(`{"error":{"code":"unavailable","message":"no network while compiling"}}`)
}

// scriptPath names the cache directory's copy of a script's artifact.
func (e *Engine) scriptPath(hash string) string {
	if e.cfg.CacheDir == "" {
		return ""
	}
	return filepath.Join(e.cfg.CacheDir, hash+".aerofn.js")
}

// loadCachedScript binds the cache directory's copy of a script, if there
// is one (a restarted node needs neither the database nor a compile).
func (e *Engine) loadCachedScript(hash string, compile bool) (*Module, bool, error) {
	path := e.scriptPath(hash)
	if path == "" {
		return nil, false, nil
	}
	b, err := os.ReadFile(path)
	if err != nil || !isScriptArtifact(b) {
		return nil, false, nil
	}
	m, err := e.bindScript(hash, b, compile, true)
	if err != nil {
		return nil, true, err
	}
	e.diskLoads.Add(1)
	return m, true, nil
}

// scriptFrame frames the runtime's input: mode, the code's length, the
// code, then rest.
func scriptFrame(mode byte, code, rest []byte) []byte {
	in := make([]byte, 5, 5+len(code)+len(rest))
	in[0] = mode
	binary.LittleEndian.PutUint32(in[1:], uint32(len(code)))
	in = append(in, code...)
	return append(in, rest...)
}

// scriptInput is a call's input for the runtime: the bytecode, the
// source map and the event; the script and the event until the bytecode
// is made.
func (e *Engine) scriptInput(s *jsScript, event []byte) []byte {
	c := s.code.Load()
	if c == nil {
		e.scriptSourceRuns.Add(1)
		return scriptFrame('s', s.bundle(), event)
	}
	in := make([]byte, 5, 5+len(c.bytecode)+4+len(s.mapTail)+len(event))
	in[0] = 'b'
	binary.LittleEndian.PutUint32(in[1:], uint32(len(c.bytecode)))
	in = append(in, c.bytecode...)
	in = binary.LittleEndian.AppendUint32(in, uint32(len(s.mapTail)))
	in = append(in, s.mapTail...)
	return append(in, event...)
}

// JSRuntimeHash is the hash the runtime module is loaded under, or
// ErrNoJSRuntime.
func (e *Engine) JSRuntimeHash() (string, error) { return e.runtimeHash() }

// ReadJSRuntime returns the runtime module's bytes.
func (e *Engine) ReadJSRuntime() ([]byte, error) {
	if _, err := e.runtimeHash(); err != nil {
		return nil, err
	}
	return os.ReadFile(e.cfg.JSRuntimePath)
}

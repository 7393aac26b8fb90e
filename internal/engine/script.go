package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// JavaScript functions.
//
// A JavaScript (or TypeScript) function version is not a WebAssembly
// module: its stored bytes are ScriptMagic followed by the bundled script
// (the server bundles it, internal/jsbundle). It runs on the JavaScript
// runtime, aerofn's own module (internal/jsruntime/guest, the QuickJS
// engine built for wasm32-wasi), which the engine loads like any module
// under the hash of its bytes: compiled and pre-initialised once per node and runtime
// version, never once per function. A script's Module shares the
// runtime's compiled module and carries the script; each call hands the
// runtime the script and the event as its input:
//
//	uint32 little-endian len(script) | script | event JSON
//
// so the runtime compiles the script per call, inside the sandbox, under
// the call's limits.
//
// A script's "artifact", for the shared artifact store and the cache
// directory, is its stored bytes: nothing is compiled per script.

// ScriptMagic starts the stored bytes of every JavaScript function version.
// A WebAssembly module starts with "\x00asm", so the two never collide.
const ScriptMagic = "\x00aerofn-js-1\n"

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

// bindScript makes the Module of a script: the runtime's compiled module
// carrying the script. It compiles the runtime only when compile is true.
func (e *Engine) bindScript(hash string, stored []byte, compile bool) (*Module, error) {
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
	if path := e.scriptPath(hash); path != "" {
		if _, err := os.Stat(path); err != nil {
			if err := writeFile(path, stored); err != nil {
				e.diskWriteErrors.Add(1)
			}
		}
	}
	return &Module{hash: hash, m: rt.m, info: rt.info, script: stored[len(ScriptMagic):]}, nil
}

// scriptPath names the cache directory's copy of a script's stored bytes.
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
	if err != nil || !IsScript(b) {
		return nil, false, nil
	}
	m, err := e.bindScript(hash, b, compile)
	if err != nil {
		return nil, true, err
	}
	e.diskLoads.Add(1)
	return m, true, nil
}

// scriptInput frames a call's input for the runtime.
func scriptInput(script, event []byte) []byte {
	in := make([]byte, 4, 4+len(script)+len(event))
	binary.LittleEndian.PutUint32(in, uint32(len(script)))
	in = append(in, script...)
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

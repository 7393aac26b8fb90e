package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/engine"
)

// jsRuntimeName is the JavaScript runtime module `make build` writes next
// to bin/aerofn.
const jsRuntimeName = "aerofn-jsrt.wasm"

// jsRuntimePath is the configured runtime, else aerofn-jsrt.wasm next to
// the executable when it exists, else none (JavaScript deploys are then
// refused with 503 js_runtime_unavailable).
func jsRuntimePath(cfg config.Config) string {
	if cfg.JSRuntime != "" {
		return cfg.JSRuntime
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), jsRuntimeName)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// jsWarm is the JavaScript runtime's warm-up. The runtime is loaded only
// for a node that needs it: at start when an enabled function is a
// script, else when the first script is deployed, called or announced
// (the engine asks through SetJSRuntimeLoader). From memory or the cache
// directory it is ready in milliseconds; otherwise it is compiled and
// pre-initialised, once per runtime version (tens of seconds), in the
// background so the node serves other functions meanwhile. A JavaScript
// call that comes first is answered 503 not ready, as for any module
// still compiling, and a JavaScript deploy waits for it.
//
// The warm-up belongs to the server: Stop cancels it (between the steps of
// a compile; one in progress cannot be interrupted) and waits for it.
type jsWarm struct {
	mu      sync.Mutex
	ctx     context.Context // set by Start; nil before
	cancel  context.CancelFunc
	stopped bool
	done    chan struct{} // nil: not begun
	err     error
	wg      sync.WaitGroup

	begun atomic.Int64 // loads of the runtime begun (JSRuntimeWarmups)
	busy  atomic.Int32 // 1 while a background warm-up runs
}

// errNotServing: the runtime is asked for before Start or after Stop.
var errNotServing = errors.New("the node is not serving")

// JSRuntimeWarmups is how many times this node began loading the
// JavaScript runtime (at most once, unless a load failed): 0 on a node
// that has never needed it.
func (s *Server) JSRuntimeWarmups() int64 { return s.js.begun.Load() }

// startJS makes the warm-up startable (Start calls it) and begins it at
// once when an enabled function is a script: from the cache directory
// before the node listens, else in the background.
func (s *Server) startJS(ctx context.Context) {
	w := &s.js
	w.mu.Lock()
	w.ctx, w.cancel = context.WithCancel(ctx)
	w.mu.Unlock()
	if _, err := s.Engine.JSRuntimeHash(); err != nil {
		if s.cfg.JSRuntime != "" {
			s.log.Error("loading the JavaScript runtime", "error", err)
		}
		return
	}
	scripts, err := s.Registry.AnyEnabledWithPrefix(ctx, []byte(engine.ScriptMagic))
	if err != nil {
		s.log.Warn("looking for JavaScript functions", "error", err)
		return // the first script that needs the runtime loads it
	}
	if !scripts {
		return
	}
	if _, err := s.Engine.JSRuntime(false); err == nil {
		w.begun.Add(1)
		return
	}
	_ = s.loadJSRuntime(false)
}

// loadJSRuntime begins the background warm-up unless it has begun, and
// with wait, waits for it to end.
func (s *Server) loadJSRuntime(wait bool) error {
	w := &s.js
	w.mu.Lock()
	if w.ctx == nil || w.stopped {
		w.mu.Unlock()
		return errNotServing
	}
	if w.done == nil {
		w.done = make(chan struct{})
		w.begun.Add(1)
		w.busy.Store(1)
		w.wg.Add(1)
		go s.warmJSRuntime(w.ctx, w.done)
	}
	done, ctx := w.done, w.ctx
	w.mu.Unlock()
	if !wait {
		return nil
	}
	select {
	case <-done:
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.err
	case <-ctx.Done():
		return errNotServing
	}
}

// warmJSRuntime loads the runtime through the invoker, which takes the
// shared artifact or compiles and stores it for the other nodes.
func (s *Server) warmJSRuntime(ctx context.Context, done chan struct{}) {
	w := &s.js
	defer w.wg.Done()
	start := time.Now()
	// Compiled here: the runtime's artifact is not shared through the
	// database (its cache directory, AEROFN_JS_RUNTIME_CACHE, may be).
	err := func() error {
		hash, err := s.Engine.JSRuntimeHash()
		if err != nil {
			return err
		}
		_, err = s.Engine.LoadFrom(hash, engine.Source{Wasm: s.Engine.ReadJSRuntime, Context: ctx})
		return err
	}()
	w.mu.Lock()
	w.err = err
	if err != nil && ctx.Err() == nil && !errors.Is(err, engine.ErrInvalidModule) {
		// A later need tries again (the file may have been unreadable for
		// a moment). One that wasmtime refused is not compiled again.
		w.done = nil
	}
	w.busy.Store(0)
	w.mu.Unlock()
	close(done)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		s.log.Error("loading the JavaScript runtime", "error", err)
	default:
		s.log.Info("JavaScript runtime ready", "took", time.Since(start).String())
	}
}

// stopJS cancels the warm-up; waitJS waits for it, at most until ctx ends.
func (s *Server) stopJS() {
	w := &s.js
	w.mu.Lock()
	w.stopped = true
	if w.cancel != nil {
		w.cancel()
	}
	w.mu.Unlock()
}

func (s *Server) waitJS(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.js.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping the JavaScript runtime's warm-up: %w", ctx.Err())
	}
}

package server

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/aerodb/aerofn/internal/config"
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

// warmJSRuntime loads the JavaScript runtime before any call needs it.
// From memory or the cache directory it is ready in milliseconds, before
// the node listens. Otherwise it comes from the database's shared artifact
// (another node's compile) or is compiled and pre-initialised, once per
// runtime version (tens of seconds), in the background so the node serves
// other functions meanwhile; a JavaScript call that comes first is
// answered 503 not ready, as for any module still compiling, and a
// JavaScript deploy waits for it.
func (s *Server) warmJSRuntime(ctx context.Context) {
	hash, err := s.Engine.JSRuntimeHash()
	if err != nil {
		if s.cfg.JSRuntime != "" {
			s.log.Error("loading the JavaScript runtime", "error", err)
		}
		return
	}
	if _, err := s.Engine.JSRuntime(false); err == nil {
		return
	}
	go func() {
		start := time.Now()
		if err := s.Invoker.Prepare(ctx, hash, s.Engine.ReadJSRuntime); err != nil {
			s.log.Error("loading the JavaScript runtime", "error", err)
			return
		}
		s.log.Info("JavaScript runtime ready", "hash", hash, "took", time.Since(start).String())
	}()
}

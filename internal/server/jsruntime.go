package server

import (
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

// warmJSRuntime loads the JavaScript runtime before any call needs it: from
// the cache directory in milliseconds, or compiled and pre-initialised once
// per runtime version (tens of seconds), in the background so the node
// serves Go functions meanwhile. A JavaScript call that comes first is
// answered 503 not ready, as for any module still compiling.
func (s *Server) warmJSRuntime() {
	if s.cfg.JSRuntime == "" && jsRuntimePath(s.cfg) == "" {
		return
	}
	go func() {
		start := time.Now()
		m, err := s.Engine.JSRuntime(true)
		if err != nil {
			s.log.Error("loading the JavaScript runtime", "error", err)
			return
		}
		pre, perr := m.Preinitialized()
		s.log.Info("JavaScript runtime ready", "hash", m.Hash(), "preinitialized", pre, "preinit_error", perr, "took", time.Since(start).String())
	}()
}

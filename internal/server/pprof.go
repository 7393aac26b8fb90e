package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// startPprof serves Go's profiler (net/http/pprof) on cfg.PprofListen, a
// loopback address (config.Validate refuses others), when it is set: CPU
// and heap profiles and execution traces of a node under load show where
// its time goes. It is a listener of its own so the API's routes, auth and
// CORS stay as they are, and nothing is served unless asked for.
func (s *Server) startPprof() error {
	if s.cfg.PprofListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.PprofListen)
	if err != nil {
		return fmt.Errorf("listening on %s for the profiler: %w", s.cfg.PprofListen, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.pprofLn = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.pprof.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serving the profiler", "error", err)
		}
	}()
	s.log.Warn("Go profiler listening, unauthenticated", "addr", ln.Addr().String())
	return nil
}

// PprofAddr is the address the profiler listens on; "" when it is off.
func (s *Server) PprofAddr() string {
	if s.pprofLn == nil {
		return ""
	}
	return s.pprofLn.Addr().String()
}

// stopPprof ends the profiler at once: a profile being taken is cut short.
func (s *Server) stopPprof() {
	if s.pprof != nil {
		_ = s.pprof.Close()
	}
}

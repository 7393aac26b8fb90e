package server

import (
	"context"

	"github.com/aerodb/aerofn/internal/dbtrigger"
)

// openDBTriggers wires database-change triggers: the registry hook that
// installs capture triggers with each deploy, the delivery service (River
// workers on every node, dispatch on the leader) and the events API routes.
func (s *Server) openDBTriggers(ctx context.Context) error {
	svc, err := dbtrigger.Open(ctx, dbtrigger.Config{
		Pool: s.Pool, Invoker: s.Invoker, Registry: s.Registry, Engine: s.Engine, Logger: s.log, Node: s.Node,
		StopTimeout: s.cfg.ShutdownTimeout,
	})
	if err != nil {
		return err
	}
	s.Registry.AddHook(dbtrigger.Hook{})
	s.AddService(svc)
	for _, rt := range svc.Routes() {
		s.API.AddRoute(rt)
	}
	return nil
}

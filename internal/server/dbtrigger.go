package server

import (
	"context"

	"github.com/aerodb/aerofn/internal/dbtrigger"
)

// openDBTriggers wires database-change triggers: the registry hook that
// installs capture triggers with each deploy, the delivery service (River
// workers on every node, dispatch on the leader) the events API endpoints and the backlog metrics.
func (s *Server) openDBTriggers(ctx context.Context) error {
	svc, err := dbtrigger.Open(ctx, dbtrigger.Config{
		Pool: s.Pool, Invoker: s.Invoker, Logger: s.log, Cluster: s.Cluster,
		StopTimeout: s.cfg.ShutdownTimeout,
	})
	if err != nil {
		return err
	}
	s.Registry.AddHook(dbtrigger.Hook{})
	s.AddService(svc)
	s.API.AddEvents(svc)
	s.queues = append(s.queues, dbtrigger.NewCollector(s.Pool))
	return nil
}

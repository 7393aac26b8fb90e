package server

import (
	"context"

	"github.com/aerodb/aerofn/internal/scheduler"
)

// openSchedules wires cron-triggered functions: registry hook, the
// scheduler service, its API endpoints and its metrics.
func (s *Server) openSchedules(_ context.Context) error {
	sch, err := scheduler.New(scheduler.Config{Pool: s.Pool, Invoker: s.Invoker, Logger: s.log, Cluster: s.Cluster})
	if err != nil {
		return err
	}
	s.Registry.AddHook(scheduler.Hook{})
	s.AddService(sch)
	s.API.AddSchedules(sch)
	s.queues = append(s.queues, scheduler.NewCollector(s.Pool))
	return nil
}

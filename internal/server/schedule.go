package server

import "context"

// openSchedules wires cron-triggered functions: registry hook, the
// scheduler service, API routes and describers.
func (s *Server) openSchedules(ctx context.Context) error { return nil }

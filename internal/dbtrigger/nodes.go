package dbtrigger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"

	"github.com/aerodb/aerofn/internal/cluster"
)

// connectNode opens the node's own connection (outside the pool, for as
// long as the node lives) and records its backend as the node's liveness.
func (s *Service) connectNode(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.cfg.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("opening node connection: %w", err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO aerofn.event_nodes (client_id, backend_pid, backend_start)
		SELECT $1, pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()
		ON CONFLICT (client_id) DO UPDATE SET backend_pid = excluded.backend_pid, backend_start = excluded.backend_start`, s.clientID)
	if err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("registering node: %w", err)
	}
	return conn, nil
}

// runNode keeps the node connection up and competes for leadership on it
// until ctx ends.
func (s *Service) runNode(ctx context.Context, conn *pgx.Conn) {
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for ctx.Err() == nil {
		if conn == nil || conn.IsClosed() {
			var err error
			if conn, err = s.connectNode(ctx); err != nil {
				conn = nil
				if ctx.Err() == nil {
					s.log.Warn("node connection", "error", err)
				}
				sleep(ctx, time.Second)
				continue
			}
		}
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, cluster.EventLeader).Scan(&got); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("competing for leadership", "error", err)
			}
			conn.Close(context.Background())
			conn = nil
			continue
		}
		if !got {
			sleep(ctx, s.cfg.PollInterval)
			continue
		}
		s.log.Info("leading database-trigger dispatch", "client_id", s.clientID)
		err := s.lead(ctx, conn)
		// The lock goes with the connection; a fresh one competes again.
		conn.Close(context.Background())
		conn = nil
		if ctx.Err() == nil {
			s.log.Warn("stopped leading", "error", err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// lead dispatches until ctx ends or the node connection fails. The
// connection only listens; all work goes through the pool.
func (s *Service) lead(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listening on %s: %w", notifyChannel, err)
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wake := make(chan struct{}, 1)
	syncReq := make(chan struct{}, 1)
	failed := make(chan error, 1)
	go func() {
		for {
			n, err := conn.WaitForNotification(lctx)
			if err != nil {
				failed <- err
				return
			}
			ch := wake
			if n.Payload == "sync" {
				ch = syncReq
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
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
			cancel()
			<-failed
			return ctx.Err()
		case err := <-failed:
			return err
		case <-wake:
			dispatch = true
		case <-syncReq:
			dispatch, maintain = true, true
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

package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrNoSession: the node has no session to run work on (not started,
// stopped, or reconnecting), or the session ended before the work ran.
var ErrNoSession = errors.New("the cluster node has no session")

// work is a function handed to Do, run by the session's goroutine.
type work struct {
	ctx  context.Context
	fn   func(ctx context.Context, conn *pgx.Conn) error
	done chan error // buffered: the loop never waits on the caller
}

// Do runs fn on the node's session, from the goroutine that owns it and
// between its own statements: nothing else uses the session meanwhile, and
// none of the node's leaderships changes hands until fn returns (only that
// goroutine takes or releases their locks). Work that only a leader may do
// is fenced by it: checked with IsLeader inside fn and done in a
// transaction on conn, it commits only while the leader's lock is held by
// the same backend. If the session ends first (the node was evicted as
// frozen, the network dropped), the lock and the uncommitted transaction
// end together, and another node leads with no transaction of the old
// leader still open.
//
// ctx bounds the wait for the session and is fn's context. A statement cut
// short by ctx ends the session (pgx closes a connection whose query is
// interrupted), which costs the node its leaderships until it reconnects:
// give ctx a deadline, not a cancel fired at will. fn must not call Do and
// must leave no transaction open and no rows unread; a session left so is
// closed and made again. While fn runs the node competes for nothing and
// delivers no notification (they wait in the connection), so fn should be
// brief. Do returns fn's error, or ErrNoSession at once while the node has
// no session.
func (n *Node) Do(ctx context.Context, fn func(ctx context.Context, conn *pgx.Conn) error) error {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil || !n.up.Load() {
		return ErrNoSession
	}
	w := work{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case n.work <- w:
	case <-done:
		return ErrNoSession
	case <-ctx.Done():
		return fmt.Errorf("waiting for the node session: %w", ctx.Err())
	}
	return <-w.done
}

// serve runs work handed to Do. A session the work left unusable is
// dropped before Do returns, so that a leadership lost with it is no
// longer reported held by then.
func (n *Node) serve(s *session, w work) {
	if err := w.ctx.Err(); err != nil {
		w.done <- fmt.Errorf("waiting for the node session: %w", err)
		return
	}
	err := w.fn(w.ctx, s.conn)
	switch {
	case s.conn.IsClosed():
		cause := err
		if cause == nil {
			cause = errors.New("connection closed")
		}
		n.lose(s, fmt.Errorf("the session ended under work: %w", cause))
	case s.conn.PgConn().IsBusy() || s.conn.PgConn().TxStatus() != 'I':
		n.lose(s, errors.New("work left the session busy or in a transaction"))
	}
	w.done <- err
}

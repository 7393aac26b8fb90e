package cluster

import (
	"context"
	"fmt"
)

// Leadership is this node's part in one named leadership (a Role): at most
// one node holds it at a time. The node competes for it from the first
// call of Node.Leadership until Resign; it loses it when its session drops
// and competes again on the next session.
type Leadership struct {
	n    *Node
	role Role
	// Guarded by n.mu.
	wanted   bool
	held     bool
	acquired chan struct{} // closed while held
	lost     chan struct{} // closed while not held
}

// Leadership returns this node's handle on role, and makes the node
// compete for it (again, after a Resign). Safe before Start: the node
// competes once it runs.
func (n *Node) Leadership(role Role) *Leadership {
	n.mu.Lock()
	l, ok := n.roles[role]
	if !ok {
		lost := make(chan struct{})
		close(lost)
		l = &Leadership{n: n, role: role, acquired: make(chan struct{}), lost: lost}
		n.roles[role] = l
	}
	l.wanted = true
	n.mu.Unlock()
	n.wake()
	return l
}

// Role is the leadership this handle is about.
func (l *Leadership) Role() Role { return l.role }

// IsLeader tells whether this node holds the leadership now.
func (l *Leadership) IsLeader() bool {
	l.n.mu.Lock()
	defer l.n.mu.Unlock()
	return l.held
}

// Acquired returns a channel closed once this node holds the leadership:
// already closed while it does.
func (l *Leadership) Acquired() <-chan struct{} {
	l.n.mu.Lock()
	defer l.n.mu.Unlock()
	return l.acquired
}

// Lost returns a channel closed when the term in progress ends (the
// session dropped, Resign, Stop): already closed while this node does not
// hold the leadership. The usual loop is
//
//	for {
//		select { case <-ctx.Done(): return; case <-l.Acquired(): }
//		lead(ctx, l.Lost()) // returns when Lost is closed
//	}
func (l *Leadership) Lost() <-chan struct{} {
	l.n.mu.Lock()
	defer l.n.mu.Unlock()
	return l.lost
}

// Resign stops competing and releases the leadership if this node holds
// it, so that another node takes over at once. It returns once the lock is
// released (or the session is gone), or with ctx's error.
func (l *Leadership) Resign(ctx context.Context) error {
	n := l.n
	n.mu.Lock()
	l.wanted = false
	held, lost, done := l.held, l.lost, n.done
	n.mu.Unlock()
	if !held || done == nil {
		return nil
	}
	n.wake()
	select {
	case <-lost:
		return nil
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("resigning %s: %w", l.role.Name, ctx.Err())
	}
}

// acquire and lose move a term; n.mu held.
func (l *Leadership) acquire() {
	l.held = true
	close(l.acquired)
	l.lost = make(chan struct{})
}

func (l *Leadership) lose() {
	l.held = false
	close(l.lost)
	l.acquired = make(chan struct{})
}

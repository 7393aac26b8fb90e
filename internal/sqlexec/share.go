package sqlexec

import (
	"context"
	"fmt"
	"sync"
	"time"
)

type functionKey struct{}

// WithFunction tells the Executor which function (by name) a call's
// queries are for, so that one function cannot hold more than its share of
// a role's pool.
func WithFunction(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, functionKey{}, name)
}

// functionOf is the function WithFunction named, or "".
func functionOf(ctx context.Context) string {
	s, _ := ctx.Value(functionKey{}).(string)
	return s
}

// shares counts the connections each function and each user holds in each
// role's pool, so that one of them cannot take a whole pool: attacker and
// victim of one role share its pool, and without a bound ten calls sleeping
// in pg_sleep starved every other caller of the role until their deadline.
type shares struct {
	mu   sync.Mutex
	held map[string]int32
	// freed is closed, and dropped, when a key's count goes down; waiters
	// on that key look again.
	freed map[string]chan struct{}
}

// share is one bounded key: what is counted and its limit.
type share struct {
	key   string
	limit int32
	what  string // for the error: "function f" or "user u"
}

// take counts one connection against every share, waiting (at most until
// wait has passed or ctx ends) while any of them is at its limit. It
// returns the release function.
func (s *shares) take(ctx context.Context, wait time.Duration, role string, poolSize int32, ss []share) (func(), error) {
	var timer *time.Timer
	for {
		s.mu.Lock()
		if s.held == nil {
			s.held, s.freed = map[string]int32{}, map[string]chan struct{}{}
		}
		full := -1
		for i, sh := range ss {
			if s.held[sh.key] >= sh.limit {
				full = i
				break
			}
		}
		if full < 0 {
			for _, sh := range ss {
				s.held[sh.key]++
			}
			s.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return func() { s.release(ss) }, nil
		}
		ch := s.freed[ss[full].key]
		if ch == nil {
			ch = make(chan struct{})
			s.freed[ss[full].key] = ch
		}
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-ch:
		case <-timer.C:
			sh := ss[full]
			return nil, &Error{Code: CodeShareExceeded, Message: fmt.Sprintf(
				"%s already holds %d of role %s's %d connections on this node, its share; waited %s for one of them",
				sh.what, sh.limit, role, poolSize, wait)}
		case <-ctx.Done():
			return nil, &Error{Code: CodeTimeout, Message: "the deadline passed while waiting for a share of the database connections", err: ctx.Err()}
		}
	}
}

func (s *shares) release(ss []share) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sh := range ss {
		if s.held[sh.key]--; s.held[sh.key] <= 0 {
			delete(s.held, sh.key)
		}
		if ch := s.freed[sh.key]; ch != nil {
			close(ch)
			delete(s.freed, sh.key)
		}
	}
}

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

// IsFunctionKey says whether key is the one WithFunction's context answers
// with the function's name: a context of the caller's own (the invoker's
// call context) answers it too, so that naming the function costs no
// context of its own.
func IsFunctionKey(key any) bool {
	_, ok := key.(functionKey)
	return ok
}

// FunctionOf is the function WithFunction named, or "".
func FunctionOf(ctx context.Context) string {
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

// take counts one connection against every share, waiting while any of
// them is at its limit: until ctx ends, or wait has passed if wait > 0. It
// returns the release function.
func (s *shares) take(ctx context.Context, wait time.Duration, role string, poolSize int32, ss []share) (func(), error) {
	var timer *time.Timer
	var expired <-chan time.Time
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
		if timer == nil && wait > 0 {
			timer = time.NewTimer(wait)
			defer timer.Stop()
			expired = timer.C
		}
		sh := ss[full]
		select {
		case <-ch:
		case <-expired:
			return nil, &Error{Code: CodeShareExceeded, Message: fmt.Sprintf(
				"%s holds %d of role %s's %d connections on this node, its share, and none came free within %s",
				sh.what, sh.limit, role, poolSize, wait)}
		case <-ctx.Done():
			return nil, &Error{Code: CodeShareExceeded, err: ctx.Err(), Message: fmt.Sprintf(
				"%s holds %d of role %s's %d connections on this node, its share, and none came free before the deadline",
				sh.what, sh.limit, role, poolSize)}
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

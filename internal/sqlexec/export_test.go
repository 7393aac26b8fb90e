package sqlexec

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aerodb/aerofn/internal/auth"
)

// QueryUnguarded runs sql without the statement guard, so that tests can
// show what the database alone does with what the guard refuses. It exists
// only in tests.
func (e *Executor) QueryUnguarded(ctx context.Context, p auth.Principal, sql string, params []any) (*Result, error) {
	return e.query(ctx, p, sql, params)
}

// Key returns the signing key, for tests that forge tokens.
func (e *Executor) Key() []byte { return e.key }

// ResetPools closes every role connection, so that the next call makes a new
// one (and runs the new-connection checks).
func (e *Executor) ResetPools() {
	for _, p := range e.pools {
		p.Reset()
	}
}

// SkewClocks moves every idle role connection's reading of the server's
// clock by d, as a wrong reading would, so that fast-path tokens miss their
// window.
func (e *Executor) SkewClocks(ctx context.Context, d time.Duration) int {
	return e.eachClock(ctx, func(cl *clock) { cl.server += d.Microseconds() })
}

// AgeClocks makes every idle role connection's clock reading d older, as
// if it had been taken d earlier: the estimate it gives stays right.
func (e *Executor) AgeClocks(ctx context.Context, d time.Duration) int {
	return e.eachClock(ctx, func(cl *clock) { cl.at, cl.server = cl.at.Add(-d), cl.server-d.Microseconds() })
}

func (e *Executor) eachClock(ctx context.Context, f func(*clock)) int {
	n := 0
	for _, p := range e.pools {
		for _, c := range p.AcquireAllIdle(ctx) {
			if cl, _ := c.Conn().PgConn().CustomData()[clockKey].(*clock); cl != nil && !cl.at.IsZero() {
				f(cl)
				n++
			}
			c.Release()
		}
	}
	return n
}

// Limits of the fast path's caches, for the tests that cross them.
const (
	MaxConnStmts = maxConnStmts
	MaxDescSQL   = maxDescSQL
	MaxDescs     = maxDescs
	MaxClockAge  = maxClockAge
)

// DescCacheLen is how many statement descriptions the executor holds.
func (e *Executor) DescCacheLen() int {
	e.descs.mu.Lock()
	defer e.descs.mu.Unlock()
	return len(e.descs.m)
}

// FillDescCache puts n made-up descriptions in the cache, as that many
// distinct statement texts would.
func (e *Executor) FillDescCache(n int) {
	for i := range n {
		e.descs.put("filler", "SELECT "+strconv.Itoa(i), &pgconn.StatementDescription{})
	}
}

// Settle waits until no role connection is in use (the background resets
// have released them all), or d passes.
func (e *Executor) Settle(d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		busy := int32(0)
		for _, p := range e.pools {
			busy += p.Stat().AcquiredConns()
		}
		if busy == 0 {
			return true
		}
	}
	return false
}

package sqlexec

import (
	"context"
	"time"

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
	n := 0
	for _, p := range e.pools {
		for _, c := range p.AcquireAllIdle(ctx) {
			if cl, _ := c.Conn().PgConn().CustomData()[clockKey].(*clock); cl != nil {
				cl.server += d.Microseconds()
				n++
			}
			c.Release()
		}
	}
	return n
}

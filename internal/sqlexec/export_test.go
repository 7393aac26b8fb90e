package sqlexec

import (
	"context"

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

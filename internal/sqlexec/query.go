package sqlexec

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/sqlexec/token"
)

// Timing of a call's deadline (see statementBudget).
const (
	minStatementBudget = 10 * time.Millisecond
	maxReserve         = 250 * time.Millisecond
	minReserve         = 20 * time.Millisecond
)

// Query runs one statement for p. params are JSON values (json.Number,
// string, bool, nil, []any, map[string]any) or plain Go values. Every failure
// is an *Error (see AsError).
func (e *Executor) Query(ctx context.Context, p auth.Principal, sql string, params []any) (*Result, error) {
	if err := CheckStatement(sql); err != nil {
		return nil, err
	}
	return e.query(ctx, p, sql, params)
}

// query is Query without the guard; only tests reach it directly, to show
// what the database alone does with what the guard refuses.
func (e *Executor) query(ctx context.Context, p auth.Principal, sql string, params []any) (*Result, error) {
	if e.closed.Load() {
		return nil, &Error{Code: CodeUnavailable, Message: "the executor is closed"}
	}
	role, ok := e.cfg.roleFor(p.Role)
	if !ok {
		return nil, &Error{Code: CodeInvalidPrincipal, Message: fmt.Sprintf("role %q is not anon, authenticated or service_role", p.Role)}
	}
	if p.Role == auth.RoleAuthenticated && p.UserID == "" {
		return nil, &Error{Code: CodeInvalidPrincipal, Message: "an authenticated principal needs a user id"}
	}
	claims := []byte("{}")
	if len(p.Claims) > 0 {
		var err error
		if claims, err = json.Marshal(p.Claims); err != nil {
			return nil, &Error{Code: CodeInvalidPrincipal, Message: "encoding claims: " + err.Error()}
		}
	}
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.cfg.DefaultTimeout)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	if _, err := e.statementBudget(deadline); err != nil {
		return nil, err
	}
	id := token.Identity{Sub: p.UserID, Role: string(p.Role), DBRole: role, Expires: deadline, Claims: claims}
	var ss []share
	if fn := FunctionOf(ctx); fn != "" {
		ss = append(ss, share{key: role + "\x00f\x00" + fn, limit: e.cfg.FunctionShare, what: "function " + fn})
	}
	if p.UserID != "" {
		ss = append(ss, share{key: role + "\x00u\x00" + p.UserID, limit: e.cfg.PrincipalShare, what: "user " + p.UserID})
	}
	if len(ss) > 0 {
		release, err := e.shares.take(ctx, e.cfg.ShareWait, role, e.cfg.PoolSize, ss)
		if err != nil {
			return nil, err
		}
		defer release()
	}
	pool := e.pools[p.Role]
	res, c, err := e.attempt(ctx, pool, role, deadline, id, sql, params, false)
	if c != nil && c.lost && !c.committing && ctx.Err() == nil {
		// The connection was gone (the server restarted, or the backend was
		// terminated) before COMMIT was sent, so nothing of the call was
		// committed: run it once more, on a connection seen alive. Pooled
		// connections are not pinged when acquired (see newRolePool), so this is
		// how a dead one is noticed.
		e.paths.Reconnect.Add(1)
		res, _, err = e.attempt(ctx, pool, role, deadline, id, sql, params, true)
	}
	return res, err
}

// attempt runs the call once on a connection of pool: the fast path when the
// statement's description is known, else (or when the fast path cannot
// decide) the slow path. live: take a connection with acquireLive.
// It returns the call that ran last, or nil if no connection was had.
func (e *Executor) attempt(ctx context.Context, pool *pgxpool.Pool, role string, deadline time.Time, id token.Identity, sql string, params []any, live bool) (*Result, *call, error) {
	acquire := e.acquire
	if live {
		acquire = e.acquireLive
	}
	conn, err := acquire(ctx, pool)
	if err != nil {
		return nil, nil, err
	}
	c := &call{e: e, conn: conn, pc: conn.Conn().PgConn(), role: role}
	if d := e.descs.get(role, sql); d != nil {
		res, decided, err := c.fast(ctx, deadline, id, sql, params, d)
		if decided {
			e.paths.Fast.Add(1)
			return res, c, err
		}
		e.paths.Fallback.Add(1)
		if c.conn == nil {
			// The fast path gave up its connection; take another.
			if conn, err = acquire(ctx, pool); err != nil {
				return nil, nil, err
			}
			c = &call{e: e, conn: conn, pc: conn.Conn().PgConn(), role: role}
		}
	}
	e.paths.Slow.Add(1)
	res, err := c.run(ctx, deadline, id, sql, params)
	return res, c, err
}

// statementBudget is the statement_timeout for a call ending at deadline:
// what is left, less a reserve for COMMIT and the reset, so that the server
// stops the statement before the host has to.
func (e *Executor) statementBudget(deadline time.Time) (time.Duration, error) {
	left := time.Until(deadline)
	reserve := min(max(left/10, minReserve), maxReserve)
	budget := min(left-reserve, e.cfg.StatementTimeoutCeiling)
	if budget < minStatementBudget {
		return 0, &Error{Code: CodeTimeout, Message: fmt.Sprintf("only %v is left before the deadline", left.Round(time.Millisecond))}
	}
	return budget, nil
}

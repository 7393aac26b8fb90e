package sqlexec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/sqlexec/token"
)

// resetSession undoes, after COMMIT or ROLLBACK, any session state a
// statement can leave for the next caller of the connection. It is DISCARD
// ALL without DISCARD PLANS (and without SET SESSION AUTHORIZATION DEFAULT,
// which only a superuser session can need). Keeping plans matters: DISCARD
// PLANS throws away the verifier's cached plans and costs every call a
// re-plan (measured here: the RLS benchmark query went from about 0.65 to
// 1.1 ms at the median), and cached plans carry nothing of the previous
// caller, since policies are evaluated at run time, per statement.
// pg_advisory_unlock_all() stays executable by the function roles (Setup
// revokes every other advisory-lock function) because it can only release
// the caller's own locks.
var resetSession = []string{
	"CLOSE ALL",
	"RESET ALL",
	"RESET ROLE",
	"UNLISTEN *",
	"DISCARD SEQUENCES",
	"DISCARD TEMP",
	"SELECT pg_catalog.pg_advisory_unlock_all()",
	sqlPreparedSQL,
}

// sqlPreparedSQL, the last statement of the reset, counts the prepared
// statements made with SQL PREPARE (which only a statement the guard refuses
// can make). The host's own statements, made with the protocol's Parse, are
// kept across calls so that their plans are (see connStmts); any other makes
// the connection unfit for reuse, and it is destroyed.
const sqlPreparedSQL = "SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql"

// sendReset queues resetSession; readReset reads its results and reports
// whether the connection may be reused.
func sendReset(pl *pgconn.Pipeline) {
	for _, q := range resetSession {
		pl.SendQueryParams(q, nil, nil, nil, nil)
	}
}

func readReset(pl *pgconn.Pipeline) (clean bool, serverErr, fatal error) {
	none := false
	serverErr, fatal = segment(pl, func(i int, r any) error {
		if i == len(resetSession)-1 {
			none = readInt(r) == 0
			return nil
		}
		return closeReader(r)
	})
	return none && serverErr == nil && fatal == nil, serverErr, fatal
}

// readInt reads the single integer a one-row, one-column result holds, or -1.
func readInt(r any) int64 {
	rr, ok := r.(*pgconn.ResultReader)
	if !ok {
		return -1
	}
	v := int64(-1)
	for rr.NextRow() {
		if vals := rr.Values(); len(vals) == 1 {
			if n, err := strconv.ParseInt(string(vals[0]), 10, 64); err == nil {
				v = n
			}
		}
	}
	if _, err := rr.Close(); err != nil {
		return -1
	}
	return v
}

// Timing of a call's deadline (see statementBudget).
const (
	minStatementBudget = 10 * time.Millisecond
	maxReserve         = 250 * time.Millisecond
	minReserve         = 20 * time.Millisecond
)

// errRoleSettingsRepaired makes a new connection fail after the Executor
// found, and undid, settings that a function role gave itself; Acquire then
// tries again with a connection that starts clean.
var errRoleSettingsRepaired = errors.New("the role's own settings had changed; repaired, reconnect")

// Executor runs functions' SQL under their principal's row-level security.
// It is safe for concurrent use.
type Executor struct {
	cfg    Config
	admin  *pgxpool.Pool
	pools  map[auth.Role]*pgxpool.Pool
	key    []byte
	signer *token.Signer
	dbname string
	types  typeCache
	descs  descCache
	paths  PathCounts
	shares shares

	closed atomic.Bool
	mu     sync.Mutex     // orders reap's wg.Add before Close's wg.Wait
	wg     sync.WaitGroup // reapers in flight
}

// New connects the role pools. Setup must have run on the database.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Executor{cfg: cfg, pools: map[auth.Role]*pgxpool.Pool{}}
	ac, err := pgxpool.ParseConfig(cfg.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("parsing admin url: %w", err)
	}
	ac.MaxConns = 2
	ac.ConnConfig.RuntimeParams["application_name"] = "aerofn-rls-admin"
	if e.admin, err = pgxpool.NewWithConfig(ctx, ac); err != nil {
		return nil, fmt.Errorf("opening admin pool: %w", err)
	}
	if err := e.load(ctx); err != nil {
		e.Close()
		return nil, err
	}
	for _, pr := range cfg.principals() {
		pool, err := e.newRolePool(ctx, pr[1])
		if err != nil {
			e.Close()
			return nil, err
		}
		e.pools[auth.Role(pr[0])] = pool
		// Connect once now so that a role that cannot log in, or is not
		// what Setup made it, fails New rather than the first call.
		c, err := e.acquire(ctx, pool)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("connecting as role %s: %w", pr[1], err)
		}
		c.Release()
	}
	return e, nil
}

// load reads the signing key and checks that Setup ran with the same roles.
func (e *Executor) load(ctx context.Context) error {
	if err := e.admin.QueryRow(ctx, "SELECT current_database()").Scan(&e.dbname); err != nil {
		return fmt.Errorf("connecting to database: %w", err)
	}
	err := e.admin.QueryRow(ctx, "SELECT key FROM aerofn.rls_signing_key WHERE id = 1").Scan(&e.key)
	if errors.Is(err, pgx.ErrNoRows) || pgconnCode(err) == "42P01" {
		return errors.New("reading signing key: none in this database; run aerofn migrate")
	}
	if err != nil {
		return fmt.Errorf("reading signing key: %w", err)
	}
	e.signer = token.NewSigner(e.key)
	rows, err := e.admin.Query(ctx, "SELECT rolname::text, principal FROM aerofn.rls_roles")
	if err != nil {
		return fmt.Errorf("reading function roles: %w", err)
	}
	got := map[string]string{}
	var name, principal string
	_, err = pgx.ForEachRow(rows, []any{&name, &principal}, func() error { got[principal] = name; return nil })
	if err != nil {
		return fmt.Errorf("reading function roles: %w", err)
	}
	for _, pr := range e.cfg.principals() {
		if got[pr[0]] != pr[1] {
			return fmt.Errorf("checking function roles: the database maps %s to role %q, the config to %q; run aerofn migrate with this config", pr[0], got[pr[0]], pr[1])
		}
	}
	return nil
}

func pgconnCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// newRolePool opens the pool that logs in as role. The session settings
// that shape how values print, and the timeouts, are sent in the startup
// packet: those outrank any default a role gave itself with ALTER ROLE.
func (e *Executor) newRolePool(ctx context.Context, role string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(e.cfg.AdminURL)
	if err != nil {
		return nil, fmt.Errorf("parsing admin url: %w", err)
	}
	cc := pc.ConnConfig
	cc.User = role
	cc.Password = e.cfg.rolePassword(role)
	cc.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
	cc.StatementCacheCapacity = 0
	cc.DescriptionCacheCapacity = 0
	cc.RuntimeParams = map[string]string{
		"application_name":                    "aerofn-fn-" + role,
		"DateStyle":                           "ISO, MDY",
		"TimeZone":                            "UTC",
		"IntervalStyle":                       "postgres",
		"bytea_output":                        "hex",
		"standard_conforming_strings":         "on",
		"extra_float_digits":                  "1",
		"search_path":                         "public",
		"row_security":                        "on",
		"default_transaction_read_only":       "off",
		"default_transaction_isolation":       "read committed",
		"statement_timeout":                   strconv.FormatInt(e.cfg.StatementTimeoutCeiling.Milliseconds(), 10),
		"idle_in_transaction_session_timeout": strconv.FormatInt(e.cfg.IdleInTransactionTimeout.Milliseconds(), 10),
	}
	// When a call's context ends, ask the server to cancel the statement at
	// once, and give up on the socket shortly after; the call then destroys
	// the connection and terminates its backend.
	cc.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 250 * time.Millisecond}
	}
	// A pooled connection was reset, and so seen alive, when it was last
	// released; pgxpool would also ping one that sat idle for a second, a
	// round trip in front of every call under light traffic. Instead a
	// connection found dead during a call is replaced and the call run again
	// when that is safe (Query).
	pc.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	pc.MaxConns = e.cfg.PoolSize
	pc.MinConns = 0
	pc.MaxConnIdleTime = 5 * time.Minute
	pc.MaxConnLifetime = 30 * time.Minute
	pc.AfterConnect = func(ctx context.Context, c *pgx.Conn) error { return e.checkConn(ctx, c, role) }
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("opening pool for role %s: %w", role, err)
	}
	return pool, nil
}

// checkConn runs once per new connection: it is the role it should be,
// nothing more, and carries only the settings Setup gave it.
func (e *Executor) checkConn(ctx context.Context, c *pgx.Conn, role string) error {
	var cur, sess string
	var super, bypass, createrole, createdb bool
	var members int
	var global, perDB []string
	err := c.QueryRow(ctx, `SELECT current_user::text, session_user::text, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
		(SELECT count(*)::int FROM pg_catalog.pg_auth_members m WHERE m.member = r.oid),
		coalesce((SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0), '{}'),
		coalesce((SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s WHERE s.setrole = r.oid
			AND s.setdatabase = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database())), '{}')
		FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`).Scan(&cur, &sess, &super, &bypass, &createrole, &createdb, &members, &global, &perDB)
	if err != nil {
		return fmt.Errorf("checking role connection: %w", err)
	}
	wantBypass := role == e.cfg.Roles.Service
	if cur != role || sess != role || super || createrole || createdb || bypass != wantBypass || members != 0 {
		return fmt.Errorf("checking role connection: connected as %q (session %q, superuser %v, bypassrls %v, member of %d roles); want %q as Setup makes it; run aerofn migrate",
			cur, sess, super, bypass, members, role)
	}
	if len(global) == 0 && sameSet(perDB, e.cfg.roleSettings()) {
		return nil
	}
	if err := e.repairRoleSettings(ctx, role); err != nil {
		return err
	}
	return errRoleSettingsRepaired
}

// repairRoleSettings undoes what a role set for itself with ALTER ROLE.
func (e *Executor) repairRoleSettings(ctx context.Context, role string) error {
	conn, err := e.admin.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("repairing settings of role %s: %w", role, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "ALTER ROLE "+pgx.Identifier{role}.Sanitize()+" RESET ALL"); err != nil {
		return fmt.Errorf("repairing settings of role %s: %w", role, err)
	}
	return applyRoleSettings(ctx, conn.Conn(), e.cfg, role, e.dbname)
}

// Close closes the pools and waits for reapers. Calls in flight fail.
func (e *Executor) Close() {
	e.mu.Lock()
	if e.closed.Swap(true) {
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	for _, p := range e.pools {
		p.Close()
	}
	e.wg.Wait()
	if e.admin != nil {
		e.admin.Close()
	}
}

// Config returns the executor's config with defaults filled.
func (e *Executor) Config() Config { return e.cfg }

// Handle is db_query as the ABI defines it: request {"sql", "params"} in,
// the reply JSON out ({"rows", "rowCount", "command"} or {"error": {"code",
// "message"}}). It never panics and never returns nil.
func (e *Executor) Handle(ctx context.Context, p auth.Principal, request []byte) (reply []byte) {
	defer func() {
		if r := recover(); r != nil {
			reply = errorReply(&Error{Code: CodeInternal, Message: fmt.Sprintf("db_query: %v", r)})
		}
	}()
	var req struct {
		SQL    *string `json:"sql"`
		Params []any   `json:"params"`
	}
	dec := json.NewDecoder(bytes.NewReader(request))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return errorReply(&Error{Code: CodeInvalidRequest, Message: "the request is not {\"sql\": string, \"params\": array}: " + err.Error()})
	}
	if req.SQL == nil {
		return errorReply(&Error{Code: CodeInvalidRequest, Message: "the request has no \"sql\""})
	}
	res, err := e.Query(ctx, p, *req.SQL, req.Params)
	if err != nil {
		return errorReply(AsError(err))
	}
	out, _ := res.MarshalJSON()
	return out
}

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
	if fn := functionOf(ctx); fn != "" {
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
	res, err, c := e.attempt(ctx, pool, role, deadline, id, sql, params, false)
	if c != nil && c.lost && !c.committing && ctx.Err() == nil {
		// The connection was gone (the server restarted, or the backend was
		// terminated) before COMMIT was sent, so nothing of the call was
		// committed: run it once more, on a connection seen alive. Pooled
		// connections are not pinged when acquired (see newRolePool), so this is
		// how a dead one is noticed.
		e.paths.Reconnect.Add(1)
		res, err, _ = e.attempt(ctx, pool, role, deadline, id, sql, params, true)
	}
	return res, err
}

// attempt runs the call once on a connection of pool: the fast path when the
// statement's description is known, else (or when the fast path cannot
// decide) the slow path. live: take a connection with acquireLive.
// It returns the call that ran last, or nil if no connection was had.
func (e *Executor) attempt(ctx context.Context, pool *pgxpool.Pool, role string, deadline time.Time, id token.Identity, sql string, params []any, live bool) (*Result, error, *call) {
	acquire := e.acquire
	if live {
		acquire = e.acquireLive
	}
	conn, err := acquire(ctx, pool)
	if err != nil {
		return nil, err, nil
	}
	c := &call{e: e, conn: conn, pc: conn.Conn().PgConn(), role: role}
	if d := e.descs.get(role, sql); d != nil {
		res, err, decided := c.fast(ctx, deadline, id, sql, params, d)
		if decided {
			e.paths.Fast.Add(1)
			return res, err, c
		}
		e.paths.Fallback.Add(1)
		if c.conn == nil {
			// The fast path gave up its connection; take another.
			if conn, err = acquire(ctx, pool); err != nil {
				return nil, err, nil
			}
			c = &call{e: e, conn: conn, pc: conn.Conn().PgConn(), role: role}
		}
	}
	e.paths.Slow.Add(1)
	res, err := c.run(ctx, deadline, id, sql, params)
	return res, err, c
}

// acquire waits for a connection of pool no longer than ctx allows.
func (e *Executor) acquire(ctx context.Context, pool *pgxpool.Pool) (*pgxpool.Conn, error) {
	for attempt := 0; ; attempt++ {
		conn, err := pool.Acquire(ctx)
		if err == nil {
			return conn, nil
		}
		if errors.Is(err, errRoleSettingsRepaired) && attempt < 2 {
			continue
		}
		if ctx.Err() != nil {
			return nil, &Error{Code: CodeTimeout, Message: "the deadline passed while waiting for a database connection", err: err}
		}
		return nil, &Error{Code: CodeUnavailable, Message: "connecting to the database: " + err.Error(), err: err}
	}
}

// acquireLive is acquire for a retry after a lost connection. The others in
// the pool may be gone too (a restarted server ends them all), so first each
// idle one is pinged, once, and a dead one dropped.
func (e *Executor) acquireLive(ctx context.Context, pool *pgxpool.Pool) (*pgxpool.Conn, error) {
	for _, conn := range pool.AcquireAllIdle(ctx) {
		if err := conn.Ping(ctx); err != nil {
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = conn.Conn().Close(cctx)
			cancel()
		}
		conn.Release()
	}
	return e.acquire(ctx, pool)
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

// background runs f on its own goroutine; Close waits for it. Once the
// executor is closing, f runs at once instead (Close may already be waiting).
func (e *Executor) background(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		f()
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
}

// reap terminates the backend of a connection that was given up on while its
// statement may still run: closing the socket alone stops a backend only when
// it next writes, and a PL/pgSQL loop can swallow a cancel request, but not
// pg_terminate_backend. The user name check keeps a reused pid safe.
func (e *Executor) reap(pid uint32, role string) {
	e.background(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = e.admin.Exec(ctx, "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND usename = $2", int64(pid), role)
	})
}

// call is one db_query on one connection; see doc.go for its states.
type call struct {
	e    *Executor
	conn *pgxpool.Conn
	pc   *pgconn.PgConn
	role string
	stmt string // the slow path's prepared statement
	// lost: the connection failed under the call (not the server reporting
	// an error, not a deadline). committing: COMMIT was sent, so the outcome
	// of a lost call is unknown and it must not run again.
	lost, committing bool
}

// release hands a clean connection back to the pool.
func (c *call) release() { c.conn.Release() }

// destroy closes the connection so that the pool never hands it out again;
// abandoned says its statement may still be running.
func (c *call) destroy(abandoned bool) {
	pid := c.pc.PID()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = c.pc.Close(ctx)
	cancel()
	c.conn.Release()
	if abandoned {
		c.e.reap(pid, c.role)
	}
}

// limitError is a result over MaxRows or MaxBytes, noticed mid-stream.
type limitError struct{ e *Error }

func (l *limitError) Error() string { return l.e.Error() }

// fail ends a call that went wrong and says why, in the function's terms.
// A connection is reused only when the server itself reported an ordinary
// error and a ROLLBACK and DISCARD ALL then succeeded; after a timeout, a
// limit, a lost or confused connection it is destroyed.
func (c *call) fail(ctx context.Context, err error) error {
	var le *limitError
	var pe *pgconn.PgError
	var fe *Error
	switch {
	case errors.As(err, &le):
		c.destroy(true)
		return le.e
	case errors.As(err, &pe) && pe.Code == "57014":
		// The statement ended by statement_timeout or by the cancel request
		// sent when ctx ended; the spec'd behaviour is not to reuse it.
		c.destroy(c.pc.IsBusy())
		return &Error{Code: CodeTimeout, Message: pe.Message, err: err}
	case errors.As(err, &pe) && !c.pc.IsClosed() && pe.Severity != "FATAL" && pe.Severity != "PANIC":
		c.rollbackOrDestroy(ctx)
		return AsError(err)
	case errors.As(err, &fe):
		c.rollbackOrDestroy(ctx)
		return fe
	}
	c.destroy(true)
	if ctx.Err() != nil || pgconn.Timeout(err) {
		return &Error{Code: CodeTimeout, Message: "the deadline passed during the query", err: err}
	}
	c.lost = pe == nil || connectionGone(pe.Code)
	if pe != nil {
		return AsError(err)
	}
	return &Error{Code: CodeUnavailable, Message: "the database connection failed: " + err.Error(), err: err}
}

// connectionGone says whether a fatal server error means the backend went
// away for a reason of the server's (a shutdown, a restart, an operator's
// pg_terminate_backend), not because of the statement: class 08 (connection
// exception) and 57P01-57P03 (admin shutdown, crash shutdown, cannot connect
// now).
func connectionGone(code string) bool {
	return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03"
}

// rollbackOrDestroy cleans up after an ordinary error. The cleanup is the
// host's, not the function's, so it is not bound by the call's deadline
// (an error that arrives just before it would otherwise cost a healthy
// connection), only by a short one of its own.
func (c *call) rollbackOrDestroy(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := c.rollback(cctx); err != nil {
		c.destroy(true)
		return
	}
	c.release()
}

// run is the state machine of doc.go.
func (c *call) run(ctx context.Context, deadline time.Time, id token.Identity, sql string, params []any) (*Result, error) {
	// Round trip 1: BEGIN, learn the backend and transaction the token
	// binds to, and parse and describe the statement (not run it).
	sent := time.Now()
	sd, err := c.begin(ctx, sql, &id)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	// transaction_timestamp() was taken between sending and receiving:
	// that is a reading of the server's clock for the fast path.
	calibrate(c.pc, id.NotBefore, sent, time.Now())
	checkedPID(c.pc, id.PID == int64(c.pc.PID()))
	fields, err := c.fieldTypes(ctx, sd)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	c.e.descs.put(c.role, sql, sd)
	values, err := c.bindParams(ctx, sd, params)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	budget, err := c.e.statementBudget(deadline)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	tok := c.e.signer.Sign(id)
	if !token.SafeLiteral(tok) {
		return nil, c.fail(ctx, &Error{Code: CodeInternal, Message: "identity token is not a safe literal"})
	}
	// Round trip 2: identity, timeout, the statement.
	res, err := c.execute(ctx, tok, budget, values, sd, fields)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	if st := c.pc.TxStatus(); st != 'T' {
		// The statement ended the host's transaction (only possible with the
		// guard bypassed: COMMIT, ROLLBACK). What it did is done; the
		// connection is not trusted again.
		c.destroy(false)
		return nil, &Error{Code: CodeTransactionState, Message: fmt.Sprintf("the statement left the transaction in state %q; the connection was discarded", st)}
	}
	// Round trip 3: COMMIT, then DISCARD ALL.
	if err := c.commit(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

// segment reads pipeline results up to the next sync, handing each to each
// in order. It returns the first error the server reported in the segment
// (the server skips the rest of a segment after an error) and, separately, an
// error that leaves the connection unusable.
func segment(pl *pgconn.Pipeline, each func(i int, r any) error) (serverErr, fatal error) {
	for i := 0; ; {
		r, err := pl.GetResults()
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				if serverErr == nil {
					serverErr = err
				}
				continue
			}
			return serverErr, err
		}
		switch r := r.(type) {
		case nil:
			return serverErr, errors.New("pipeline ended before its sync")
		case *pgconn.PipelineSync:
			return serverErr, nil
		default:
			if err := each(i, r); err != nil {
				var pe *pgconn.PgError
				if errors.As(err, &pe) {
					if serverErr == nil {
						serverErr = err
					}
				} else {
					return serverErr, err
				}
			}
			i++
		}
	}
}

func closeReader(r any) error {
	if rr, ok := r.(*pgconn.ResultReader); ok {
		_, err := rr.Close()
		return err
	}
	return nil
}

// begin is round trip 1.
func (c *call) begin(ctx context.Context, sql string, id *token.Identity) (*pgconn.StatementDescription, error) {
	pl := c.pc.StartPipeline(ctx)
	pl.SendQueryParams("BEGIN", nil, nil, nil, nil)
	pl.SendQueryParams("SELECT pg_catalog.pg_backend_pid(), (extract(epoch FROM pg_catalog.transaction_timestamp()) * 1000000)::bigint", nil, nil, nil, nil)
	st := stmtsOf(c.pc)
	c.stmt = st.name(sql)
	st.forget(sql) // prepared again below, whatever was there
	pl.SendDeallocate(c.stmt)
	pl.SendPrepare(c.stmt, sql, nil)
	if err := pl.Sync(); err != nil {
		return nil, err
	}
	var sd *pgconn.StatementDescription
	var where error
	serverErr, fatal := segment(pl, func(i int, r any) error {
		switch i {
		case 1:
			rr, ok := r.(*pgconn.ResultReader)
			if !ok {
				return errors.New("reading backend pid: unexpected result")
			}
			for rr.NextRow() {
				v := rr.Values()
				pid, err1 := strconv.ParseInt(string(v[0]), 10, 64)
				xact, err2 := strconv.ParseInt(string(v[1]), 10, 64)
				if err1 != nil || err2 != nil {
					where = fmt.Errorf("reading backend pid and transaction start %q %q", v[0], v[1])
				}
				// The slow path's token names this exact instant.
				id.PID, id.NotBefore, id.NotAfter = pid, xact, xact
			}
			_, err := rr.Close()
			return err
		case 3:
			if sd, _ = r.(*pgconn.StatementDescription); sd != nil {
				st.prepared(sql, sd.ParamOIDs)
			}
			return nil
		}
		return closeReader(r)
	})
	if fatal != nil {
		return nil, fatal
	}
	if err := pl.Close(); err != nil && serverErr == nil {
		return nil, err
	}
	if serverErr != nil {
		return nil, serverErr
	}
	if where != nil {
		return nil, where
	}
	if sd == nil || id.PID == 0 {
		return nil, errors.New("round trip 1 returned no statement description")
	}
	return sd, nil
}

// resolveTypes makes sure every OID in oids is in the type cache, asking
// pg_type (readable by every role) about the ones that are not builtins.
func (c *call) resolveTypes(ctx context.Context, oids []uint32) error {
	var missing []uint32
	for _, o := range oids {
		if _, ok := c.e.types.get(o); !ok {
			missing = append(missing, o)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	rows := map[uint32]pgTypeRow{}
	for round := 0; round < 4 && len(missing) > 0; round++ {
		arg := make([]byte, 0, 16*len(missing))
		arg = append(arg, '{')
		for i, o := range missing {
			if i > 0 {
				arg = append(arg, ',')
			}
			arg = strconv.AppendUint(arg, uint64(o), 10)
		}
		arg = append(arg, '}')
		rr := c.pc.ExecParams(ctx, "SELECT oid::int8, typtype, typcategory, typelem::int8, typbasetype::int8, typdelim FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])",
			[][]byte{arg}, nil, nil, nil)
		var next []uint32
		for rr.NextRow() {
			v := rr.Values()
			oid, _ := strconv.ParseUint(string(v[0]), 10, 32)
			elem, _ := strconv.ParseUint(string(v[3]), 10, 32)
			base, _ := strconv.ParseUint(string(v[4]), 10, 32)
			r := pgTypeRow{typtype: first(v[1]), typcategory: first(v[2]), elem: uint32(elem), base: uint32(base), delim: first(v[5])}
			rows[uint32(oid)] = r
			for _, dep := range []uint32{r.elem, r.base} {
				if _, known := c.e.types.get(dep); dep != 0 && !known {
					if _, seen := rows[dep]; !seen {
						next = append(next, dep)
					}
				}
			}
		}
		if _, err := rr.Close(); err != nil {
			return err
		}
		missing = next
	}
	for _, o := range oids {
		if _, ok := c.e.types.get(o); !ok {
			c.e.types.put(o, resolveType(o, rows, &c.e.types, 0))
		}
	}
	return nil
}

func first(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func (c *call) fieldTypes(ctx context.Context, sd *pgconn.StatementDescription) ([]*typeInfo, error) {
	oids := make([]uint32, 0, len(sd.Fields)+len(sd.ParamOIDs))
	for _, f := range sd.Fields {
		oids = append(oids, f.DataTypeOID)
	}
	oids = append(oids, sd.ParamOIDs...)
	if err := c.resolveTypes(ctx, oids); err != nil {
		return nil, err
	}
	out := make([]*typeInfo, len(sd.Fields))
	for i, f := range sd.Fields {
		out[i], _ = c.e.types.get(f.DataTypeOID)
	}
	return out, nil
}

func (c *call) bindParams(ctx context.Context, sd *pgconn.StatementDescription, params []any) ([][]byte, error) {
	if len(params) != len(sd.ParamOIDs) {
		return nil, &Error{Code: CodeInvalidParams, Message: fmt.Sprintf("the statement takes %d parameters, the request gives %d", len(sd.ParamOIDs), len(params))}
	}
	values := make([][]byte, len(params))
	for i, p := range params {
		t, _ := c.e.types.get(sd.ParamOIDs[i])
		if t == nil {
			t = tText
		}
		v, err := encodeParam(t, p)
		if err != nil {
			return nil, &Error{Code: CodeInvalidParams, Message: fmt.Sprintf("parameter $%d: %v", i+1, err)}
		}
		values[i] = v
	}
	return values, nil
}

// execute is round trip 2: SET LOCAL the identity and the timeout, then run
// the prepared statement, streaming its rows into JSON under the limits.
func (c *call) execute(ctx context.Context, tok string, budget time.Duration, values [][]byte, sd *pgconn.StatementDescription, types []*typeInfo) (*Result, error) {
	names := make([][]byte, len(sd.Fields))
	cols := make([]string, len(sd.Fields))
	for i, f := range sd.Fields {
		cols[i] = f.Name
		names[i] = appendJSONString(nil, f.Name)
	}
	pl := c.pc.StartPipeline(ctx)
	pl.SendQueryParams("SET LOCAL aerofn.token = '"+tok+"'", nil, nil, nil, nil)
	pl.SendQueryParams("SET LOCAL statement_timeout = "+strconv.FormatInt(max(budget.Milliseconds(), 1), 10), nil, nil, nil, nil)
	pl.SendQueryPrepared(c.stmt, values, nil, nil)
	if err := pl.Sync(); err != nil {
		return nil, err
	}
	res := &Result{Columns: cols}
	serverErr, fatal := segment(pl, func(i int, r any) error {
		rr, ok := r.(*pgconn.ResultReader)
		if !ok {
			return errors.New("unexpected pipeline result")
		}
		if i < 2 {
			_, err := rr.Close()
			return err
		}
		return c.readRows(rr, res, names, types)
	})
	if fatal != nil {
		return nil, fatal
	}
	if err := pl.Close(); err != nil && serverErr == nil {
		return nil, err
	}
	if serverErr != nil {
		return nil, serverErr
	}
	return res, nil
}

// readRows streams one statement's rows into res as JSON objects, under
// MaxRows and MaxBytes, and reads its command tag. names are the columns as
// JSON strings; types say how to write each column.
func (c *call) readRows(rr *pgconn.ResultReader, res *Result, names [][]byte, types []*typeInfo) error {
	maxRows, maxBytes := c.e.cfg.MaxRows, c.e.cfg.MaxBytes
	var buf []byte
	for rr.NextRow() {
		if len(res.Rows) >= maxRows {
			return &limitError{&Error{Code: CodeTooManyRows, Message: fmt.Sprintf("the result has more than %d rows; add a LIMIT or page through it", maxRows)}}
		}
		buf = buf[:0]
		buf = append(buf, '{')
		for j, v := range rr.Values() {
			if j > 0 {
				buf = append(buf, ',')
			}
			if j < len(names) {
				buf = append(buf, names[j]...)
				buf = append(buf, ':')
				buf = appendValue(buf, types[j], v)
			}
		}
		buf = append(buf, '}')
		res.bytes += len(buf) + 1
		if res.bytes > maxBytes {
			return &limitError{&Error{Code: CodeResultTooLarge, Message: fmt.Sprintf("the result is larger than %d bytes; select fewer rows or columns", maxBytes)}}
		}
		res.Rows = append(res.Rows, json.RawMessage(bytes.Clone(buf)))
	}
	tag, err := rr.Close()
	if err != nil {
		return err
	}
	res.Command = commandOf(tag.String())
	res.RowCount = tag.RowsAffected()
	return nil
}

// commit is round trip 3: COMMIT, and then, in its own implicit
// transaction, the session reset (resetSession). On any doubt the
// connection is destroyed.
func (c *call) commit(ctx context.Context) error {
	c.committing = true
	pl := c.pc.StartPipeline(ctx)
	pl.SendQueryParams("COMMIT", nil, nil, nil, nil)
	if err := pl.Sync(); err != nil {
		return c.fail(ctx, err)
	}
	var tag string
	commitErr, fatal := segment(pl, func(i int, r any) error {
		rr, ok := r.(*pgconn.ResultReader)
		if !ok {
			return errors.New("unexpected pipeline result")
		}
		t, err := rr.Close()
		tag = t.String()
		return err
	})
	if fatal == nil {
		fatal = pl.Close()
	}
	if fatal != nil {
		return c.fail(ctx, fatal)
	}
	// The commit's outcome is known. The reset only decides whether the
	// connection can be reused, so it runs off the caller's path, under its
	// own deadline (the call's context ends with the call); the connection
	// goes back to the pool, or is destroyed, only after it, so no one ever
	// gets it unreset.
	c.resetInBackground(false)
	if commitErr != nil {
		return AsError(commitErr)
	}
	if tag != "COMMIT" {
		return &Error{Code: CodeTransactionState, Message: "the transaction did not commit (" + tag + ")"}
	}
	return nil
}

// resetInBackground resets the session (resetSession) on its own goroutine,
// under its own deadline (the call's context ends with the call), reads the
// server's clock on the way, and then releases the connection, or destroys it
// if anything was amiss; no one ever gets it unreset. commitFirst ends the
// call's transaction first: the fast path does that for a transaction that
// wrote nothing, whose outcome the caller does not need to wait for.
func (c *call) resetInBackground(commitFirst bool) {
	c.e.background(func() {
		rctx, cancel := context.WithTimeout(context.Background(), resetTimeout)
		defer cancel()
		// One simple-protocol message: the server parses it once and runs
		// the statements in order, stopping at the first error.
		sql := resetScript
		if st := stmtsOf(c.pc); st.full() {
			sql = "DEALLOCATE ALL;" + sql
			st.clear()
		}
		if commitFirst {
			sql = "COMMIT;" + sql
		}
		sent := time.Now()
		results, err := c.pc.Exec(rctx, sql).ReadAll()
		received := time.Now()
		n := len(results)
		clean := err == nil && n >= len(resetSession)+1
		if clean && commitFirst && results[0].CommandTag.String() != "COMMIT" {
			clean = false
		}
		if clean {
			if sqlPrepared := results[n-2]; len(sqlPrepared.Rows) != 1 || string(sqlPrepared.Rows[0][0]) != "0" {
				clean = false
			}
		}
		if clean {
			last := results[n-1]
			if len(last.Rows) == 1 && len(last.Rows[0]) == 1 {
				if server, err := strconv.ParseInt(string(last.Rows[0][0]), 10, 64); err == nil {
					calibrate(c.pc, server, sent, received)
				}
			}
		}
		if clean && c.pc.TxStatus() == 'I' {
			c.release()
		} else {
			c.destroy(false)
		}
	})
}

// resetScript is resetSession and a reading of the server's clock, as one
// simple-protocol query.
var resetScript = strings.Join(resetSession, ";") + ";" + clockSQL

// resetTimeout bounds the background reset of a connection after a commit.
const resetTimeout = 5 * time.Second

// rollback ends a transaction that an ordinary server error aborted, and
// resets the session, so that the connection can be reused.
func (c *call) rollback(ctx context.Context) error {
	if c.pc.IsClosed() || c.pc.IsBusy() {
		return errors.New("connection not idle")
	}
	pl := c.pc.StartPipeline(ctx)
	pl.SendQueryParams("ROLLBACK", nil, nil, nil, nil)
	pl.SendPipelineSync()
	sendReset(pl)
	if err := pl.Sync(); err != nil {
		return err
	}
	rbErr, fatal := segment(pl, func(i int, r any) error { return closeReader(r) })
	if fatal != nil {
		return fatal
	}
	clean, resetErr, fatal := readReset(pl)
	if fatal != nil {
		return fatal
	}
	if err := pl.Close(); err != nil {
		return err
	}
	switch {
	case rbErr != nil:
		return rbErr
	case resetErr != nil:
		return resetErr
	case !clean:
		return errors.New("the session reset failed")
	case c.pc.TxStatus() != 'I':
		return errors.New("still in a transaction after ROLLBACK")
	}
	return nil
}

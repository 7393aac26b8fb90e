package sqlexec

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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

package sqlexec

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/sqlexec/token"
)

// Setup makes the database ready for Executor: the function roles (created
// if absent, their attributes corrected, refused if they are a member of any
// role), their grants, their per-database settings, the signing key
// (generated once per database) and the hardening listed in docs/RLS.md.
// It needs migration 002 applied (db.Migrate) and an admin that may create
// roles; BYPASSRLS on the service role needs a superuser the first time.
//
// Setup is idempotent and meant to run on every `aerofn migrate`, so that it
// re-asserts what it guards (a revoked privilege granted back by hand is
// revoked again). Roles are shared by every database on the cluster, so two
// Setups may race on them (two nodes, or parallel tests); the statements that
// touch cluster-wide catalogs tolerate duplicate_object and retry on
// "tuple concurrently updated".
func Setup(ctx context.Context, admin *pgxpool.Pool, cfg Config) error {
	cfg = cfg.WithDefaults()
	if cfg.AdminURL == "" {
		cfg.AdminURL = admin.Config().ConnString()
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	conn, err := admin.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring admin connection for rls setup: %w", err)
	}
	defer conn.Release()
	c := conn.Conn()

	var ok bool
	if err := c.QueryRow(ctx, "SELECT to_regclass('aerofn.rls_signing_key') IS NOT NULL AND to_regprocedure('aerofn.current_identity()') IS NOT NULL AND to_regprocedure('aerofn.verified_identity()') IS NOT NULL").Scan(&ok); err != nil {
		return fmt.Errorf("checking rls migration: %w", err)
	}
	if !ok {
		return errors.New("checking rls migration: migrations 002_rls and 007_rls_window are not applied; run db.Migrate first")
	}
	for _, pr := range cfg.principals() {
		if err := retryConcurrent(ctx, func() error { return ensureRole(ctx, c, cfg, pr[0], pr[1]) }); err != nil {
			return err
		}
	}
	if err := retryConcurrent(ctx, func() error { return grantAndHarden(ctx, c, cfg) }); err != nil {
		return err
	}
	if err := ensureKey(ctx, c); err != nil {
		return err
	}
	return verifyHardening(ctx, c, cfg)
}

// verifyHardening checks the outcome rather than trusting the statements: a
// REVOKE by an admin without the right to revoke is only a warning in
// PostgreSQL, and a privilege granted to a role directly survives a REVOKE
// from PUBLIC.
func verifyHardening(ctx context.Context, c *pgx.Conn, cfg Config) error {
	for _, pr := range cfg.principals() {
		role := pr[1]
		var leaks []string
		err := c.QueryRow(ctx, `SELECT coalesce(array_agg(what ORDER BY what), '{}') FROM (
			SELECT 'EXECUTE on ' || f AS what FROM (`+hardeningFunctions+`) fs(f)
				WHERE has_function_privilege($1, f, 'EXECUTE')
			UNION ALL SELECT 'TEMPORARY on the database' WHERE has_database_privilege($1, current_database(), 'TEMPORARY')
			UNION ALL SELECT 'CREATE on the database' WHERE has_database_privilege($1, current_database(), 'CREATE')
			UNION ALL SELECT 'CREATE on schema ' || nspname FROM pg_namespace WHERE has_schema_privilege($1, oid, 'CREATE')
			UNION ALL SELECT 'USAGE on schema aerofn' WHERE has_schema_privilege($1, 'aerofn', 'USAGE')
			UNION ALL SELECT 'SELECT on pg_stat_activity' WHERE has_table_privilege($1, 'pg_catalog.pg_stat_activity', 'SELECT')
		) x`, role).Scan(&leaks)
		if err != nil {
			return fmt.Errorf("verifying hardening for role %s: %w", role, err)
		}
		if len(leaks) > 0 {
			return fmt.Errorf("verifying hardening: role %s still has %s; the admin running migrate must be a superuser (or revoke these as one)", role, strings.Join(leaks, ", "))
		}
	}
	return nil
}

// retryConcurrent retries f when a concurrent Setup on the same cluster made
// it fail: CREATE ROLE racing another (duplicate_object, or unique_violation
// on pg_authid), or two GRANT/ALTER statements updating the same shared
// catalog row ("tuple concurrently updated", XX000).
func retryConcurrent(ctx context.Context, f func() error) error {
	var err error
	for attempt := 0; attempt < 15; attempt++ {
		if err = f(); err == nil {
			return nil
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			return err
		}
		switch {
		case pe.Code == "42710", pe.Code == "23505", pe.Code == "40001", pe.Code == "40P01",
			pe.Code == "XX000" && strings.Contains(pe.Message, "concurrently"):
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1)*20*time.Millisecond + time.Duration(mrand.Int64N(int64(20*time.Millisecond)))):
		}
	}
	return err
}

// ensureRole creates role as a LOGIN role that is a member of nothing, or
// brings an existing one to exactly that: the only thing between a function
// and its neighbours' rows is that it cannot become anyone else.
func ensureRole(ctx context.Context, c *pgx.Conn, cfg Config, principal, role string) error {
	bypass := principal == "service_role"
	var exists bool
	if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
		return fmt.Errorf("looking up role %s: %w", role, err)
	}
	attrs := "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION " + map[bool]string{true: "BYPASSRLS", false: "NOBYPASSRLS"}[bypass]
	if !exists {
		if _, err := c.Exec(ctx, "CREATE ROLE "+pgx.Identifier{role}.Sanitize()+" "+attrs); err != nil {
			return fmt.Errorf("creating role %s: %w", role, err)
		}
	}
	var super, createdb, createrole, inherit, repl, login, bypassrls bool
	if err := c.QueryRow(ctx, `SELECT rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolreplication, rolcanlogin, rolbypassrls
		FROM pg_roles WHERE rolname = $1`, role).Scan(&super, &createdb, &createrole, &inherit, &repl, &login, &bypassrls); err != nil {
		return fmt.Errorf("reading attributes of role %s: %w", role, err)
	}
	// ALTER only when something differs: every ALTER ROLE rewrites a
	// cluster-wide catalog row that concurrent Setups would fight over.
	if super || createdb || createrole || inherit || repl || !login || bypassrls != bypass {
		if _, err := c.Exec(ctx, "ALTER ROLE "+pgx.Identifier{role}.Sanitize()+" "+attrs); err != nil {
			return fmt.Errorf("setting attributes of role %s: %w", role, err)
		}
	}
	var memberOf []string
	if err := c.QueryRow(ctx, `SELECT coalesce(array_agg(m.roleid::regrole::text ORDER BY 1), '{}')
		FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1`, role).Scan(&memberOf); err != nil {
		return fmt.Errorf("reading memberships of role %s: %w", role, err)
	}
	if len(memberOf) > 0 {
		return fmt.Errorf("checking role %s: it is a member of %s; a function role must be a member of no role (SET ROLE could reach them), revoke the membership", role, strings.Join(memberOf, ", "))
	}
	// Settings a role gave itself (ALTER ROLE self SET is open to every
	// role) would apply to every new connection; only Setup's own remain.
	var global bool
	if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
		WHERE r.rolname = $1 AND s.setdatabase = 0)`, role).Scan(&global); err != nil {
		return fmt.Errorf("reading settings of role %s: %w", role, err)
	}
	if global {
		if _, err := c.Exec(ctx, "ALTER ROLE "+pgx.Identifier{role}.Sanitize()+" RESET ALL"); err != nil {
			return fmt.Errorf("resetting settings of role %s: %w", role, err)
		}
	}
	if pw := cfg.rolePassword(role); pw != "" {
		// pw is hex, so it is safe as a literal; ALTER ROLE takes no parameters.
		if _, err := c.Exec(ctx, "ALTER ROLE "+pgx.Identifier{role}.Sanitize()+" PASSWORD '"+pw+"'"); err != nil {
			return fmt.Errorf("setting password of role %s: %w", role, err)
		}
	}
	return nil
}

// applyRoleSettings replaces role's settings in the current database with
// cfg's. Used by Setup and by the Executor when it finds them changed.
func applyRoleSettings(ctx context.Context, c *pgx.Conn, cfg Config, role, database string) error {
	r, d := pgx.Identifier{role}.Sanitize(), pgx.Identifier{database}.Sanitize()
	var b strings.Builder
	fmt.Fprintf(&b, "ALTER ROLE %s IN DATABASE %s RESET ALL;\n", r, d)
	for _, s := range cfg.roleSettings() {
		name, value, _ := strings.Cut(s, "=")
		fmt.Fprintf(&b, "ALTER ROLE %s IN DATABASE %s SET %s = '%s';\n", r, d, name, value)
	}
	_, err := c.Exec(ctx, b.String())
	if err != nil {
		return fmt.Errorf("setting database settings of role %s: %w", role, err)
	}
	return nil
}

// hardeningFunctions are the built-in functions that PUBLIC may execute by
// default and that a function must not: each either changes identity or
// session state (set_config), reaches other sessions (pg_notify, advisory
// locks other than releasing one's own, signalling backends, reading their
// activity), reaches files or large
// objects (lo_*), or runs SQL text of its own that the guard never sees
// (query_to_xml, cursor_to_xml, ts_stat, ts_rewrite). EXECUTE can only be
// revoked from PUBLIC, not from a single role, so other roles lose them too;
// Setup grants them back to the admin, and docs/RLS.md says how to grant them
// to an application role that needs them.
const hardeningFunctions = `
SELECT p.oid::regprocedure::text
FROM pg_proc p
WHERE p.pronamespace = 'pg_catalog'::regnamespace AND (
	p.proname IN ('set_config', 'pg_notify', 'pg_terminate_backend', 'pg_cancel_backend',
		'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema',
		'cursor_to_xml', 'cursor_to_xmlschema', 'ts_stat', 'ts_rewrite',
		'loread', 'lowrite', 'pg_stat_get_activity', 'pg_stat_get_backend_activity',
		'pg_stat_get_backend_activity_start', 'pg_stat_get_backend_client_addr',
		'pg_stat_get_backend_client_port', 'pg_stat_get_backend_userid',
		'pg_stat_get_backend_dbid', 'pg_stat_get_backend_pid', 'pg_stat_get_backend_idset',
		'pg_stat_get_backend_start', 'pg_stat_get_backend_xact_start',
		'pg_stat_get_backend_wait_event', 'pg_stat_get_backend_wait_event_type',
		'pg_stat_get_progress_info', 'pg_blocking_pids', 'pg_safe_snapshot_blocking_pids')
	OR (p.proname LIKE 'pg\_advisory\_%' AND p.proname <> 'pg_advisory_unlock_all') OR p.proname LIKE 'pg\_try\_advisory\_%'
	OR p.proname LIKE 'lo\_%'
)
ORDER BY 1`

// grantAndHarden grants the roles what they need in this database, revokes
// from PUBLIC what they must not have, and records the roles for the token
// verifier.
func grantAndHarden(ctx context.Context, c *pgx.Conn, cfg Config) error {
	var dbname, adminRole string
	if err := c.QueryRow(ctx, "SELECT current_database(), current_user").Scan(&dbname, &adminRole); err != nil {
		return fmt.Errorf("reading current database: %w", err)
	}
	db := pgx.Identifier{dbname}.Sanitize()
	admin := pgx.Identifier{adminRole}.Sanitize()
	var roles []string
	for _, pr := range cfg.principals() {
		roles = append(roles, pgx.Identifier{pr[1]}.Sanitize())
	}
	all := strings.Join(roles, ", ")

	rows, err := c.Query(ctx, hardeningFunctions)
	if err != nil {
		return fmt.Errorf("listing functions to revoke: %w", err)
	}
	funcs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("listing functions to revoke: %w", err)
	}

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+";\n", args...) }
	// Database level: functions connect but create nothing, not even
	// temporary objects (a temp table or view would shadow a real one for
	// the next caller of a pooled connection). TEMPORARY comes from PUBLIC,
	// so it is revoked from PUBLIC and given back to the admin.
	w("GRANT CONNECT ON DATABASE %s TO %s", db, all)
	w("REVOKE TEMPORARY ON DATABASE %s FROM PUBLIC", db)
	w("REVOKE ALL ON DATABASE %s FROM %s", db, all)
	w("GRANT CONNECT ON DATABASE %s TO %s", db, all)
	w("GRANT TEMPORARY ON DATABASE %s TO %s", db, admin)
	// Schemas: public is where application tables live (PostgreSQL 14 and
	// older still let PUBLIC create there); auth holds the helpers; aerofn
	// is aerofn's own and is nobody else's business.
	w("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
	w("GRANT USAGE ON SCHEMA public TO %s", all)
	w("REVOKE CREATE ON SCHEMA public FROM %s", all)
	w("REVOKE ALL ON SCHEMA auth FROM PUBLIC")
	w("GRANT USAGE ON SCHEMA auth TO %s", all)
	w("REVOKE ALL ON SCHEMA aerofn FROM PUBLIC")
	w("REVOKE ALL ON SCHEMA aerofn FROM %s", all)
	w("REVOKE ALL ON ALL TABLES IN SCHEMA aerofn FROM PUBLIC")
	w("REVOKE ALL ON ALL TABLES IN SCHEMA aerofn FROM %s", all)
	w("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA aerofn FROM PUBLIC")
	// The helpers run as the caller and call the verifier, which only ever
	// tells a session its own identity.
	w("GRANT EXECUTE ON FUNCTION aerofn.current_identity(), aerofn.verified_identity() TO PUBLIC")
	w("GRANT EXECUTE ON FUNCTION auth.uid(), auth.sub(), auth.role(), auth.jwt() TO PUBLIC")
	// Built-in functions (see hardeningFunctions).
	for _, f := range funcs {
		w("REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, %s", f, all)
		w("GRANT EXECUTE ON FUNCTION %s TO %s", f, admin)
	}
	// The session reset releases the caller's own advisory locks with it.
	w("GRANT EXECUTE ON FUNCTION pg_catalog.pg_advisory_unlock_all() TO PUBLIC")
	// Other sessions' queries (which carry their identity tokens) and the
	// large-object store stay out of reach; monitoring keeps
	// pg_stat_activity through pg_read_all_stats.
	w("REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC")
	w("GRANT SELECT ON pg_catalog.pg_stat_activity TO pg_read_all_stats, %s", admin)
	if _, err := c.Exec(ctx, b.String()); err != nil {
		return fmt.Errorf("granting and hardening: %w", err)
	}

	for _, pr := range cfg.principals() {
		if err := applyRoleSettingsIfChanged(ctx, c, cfg, pr[1], dbname); err != nil {
			return err
		}
	}
	// The roles the verifier recognises: exactly the configured three.
	_, err = c.Exec(ctx, `WITH want(rolname, principal) AS (VALUES ($1::name, 'anon'), ($2::name, 'authenticated'), ($3::name, 'service_role')),
		gone AS (DELETE FROM aerofn.rls_roles r WHERE NOT EXISTS (SELECT 1 FROM want w WHERE w.rolname = r.rolname AND w.principal = r.principal))
		INSERT INTO aerofn.rls_roles (rolname, principal) SELECT rolname, principal FROM want
		ON CONFLICT DO NOTHING`, cfg.Roles.Anon, cfg.Roles.Authenticated, cfg.Roles.Service)
	if err != nil {
		return fmt.Errorf("recording function roles: %w", err)
	}
	return nil
}

// applyRoleSettingsIfChanged rewrites role's settings in this database only
// when they differ, because every rewrite updates pg_db_role_setting, a
// cluster-wide catalog.
func applyRoleSettingsIfChanged(ctx context.Context, c *pgx.Conn, cfg Config, role, dbname string) error {
	var have []string
	err := c.QueryRow(ctx, `SELECT coalesce(s.setconfig, '{}') FROM pg_roles r
		LEFT JOIN pg_db_role_setting s ON s.setrole = r.oid AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
		WHERE r.rolname = $1`, role).Scan(&have)
	if err != nil {
		return fmt.Errorf("reading database settings of role %s: %w", role, err)
	}
	if sameSet(have, cfg.roleSettings()) {
		return nil
	}
	return applyRoleSettings(ctx, c, cfg, role, dbname)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		if !m[s] {
			return false
		}
	}
	return true
}

// ensureKey generates this database's signing key once. A key is per
// database so that a token from one database is worthless in another.
func ensureKey(ctx context.Context, c *pgx.Conn) error {
	key := make([]byte, token.KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("generating signing key: %w", err)
	}
	ipad, opad := token.Pads(key)
	if _, err := c.Exec(ctx, `INSERT INTO aerofn.rls_signing_key (id, key, ipad, opad) VALUES (1, $1, $2, $3)
		ON CONFLICT (id) DO NOTHING`, key, ipad, opad); err != nil {
		return fmt.Errorf("storing signing key: %w", err)
	}
	return nil
}

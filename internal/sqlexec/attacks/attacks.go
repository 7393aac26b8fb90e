package attacks

// Category groups attacks by what they try.
type Category string

const (
	RoleSwitching   Category = "role switching"
	ClaimSpoofing   Category = "claim spoofing"
	Transactions    Category = "transaction control and multiple statements"
	DOBlocks        Category = "DO blocks"
	DDL             Category = "DDL"
	FilesAndLOs     Category = "files and large objects"
	ListenNotify    Category = "LISTEN/NOTIFY"
	Shadowing       Category = "shadowing for the next caller"
	SessionState    Category = "session state left behind"
	Locks           Category = "advisory locks and LOCK TABLE"
	CatalogReads    Category = "catalog reads"
	DenialOfService Category = "denial of service"
	PolicyBypass    Category = "policy bypass through data"
	GuardEvasion    Category = "guard evasion"
)

// Outcome is what PostgreSQL alone does with an attack, on a function
// role's connection inside the host's transaction, with the guard bypassed.
type Outcome string

const (
	// Refused: the database returns an error.
	Refused Outcome = "refused"
	// Contained: the database may run it, but it reaches nothing: the reply
	// holds none of the victim's data, the fixture is unchanged, and the
	// next call on the connection starts clean.
	Contained Outcome = "contained"
	// Harmless: the database runs it without error and it reaches nothing
	// (an error would itself tell the attacker something, e.g. that a
	// hidden row exists).
	Harmless Outcome = "harmless"
	// GuardOnly: the database alone would let it have an effect outside the
	// call, so only the guard stands in its way; it is not replayed against
	// the database. docs/RLS.md lists these.
	GuardOnly Outcome = "guard only"
)

// Attack is one hostile statement.
type Attack struct {
	Name     string
	Category Category
	SQL      string // may hold the placeholders that Fixture.Expand fills
	Params   []any
	AsAnon   bool // run as anon rather than as the attacker

	// Guard: the statement guard refuses it (statement_rejected) before it
	// reaches the database. When false, the guard admits it and Database is
	// what happens on every path.
	Guard bool
	// Database is what PostgreSQL alone does with it.
	Database Outcome
	// Code, when set, is the error code the database path must return
	// (a SQLSTATE, or timeout / too_many_rows / result_too_large).
	Code string
	// Persists: with the guard bypassed it changes a cluster-wide role
	// default; the executor must undo it before the next new connection.
	Persists bool
	// Slow: it is only stopped by the call's deadline; give it a short one.
	Slow bool
	// Why names what stops it.
	Why string
}

// All is every attack, in a stable order.
var All = []Attack{
	// --- role switching: a function role is a member of nothing ---
	{Name: "set-role-service", Category: RoleSwitching, SQL: `SET ROLE {{service_role}}`, Guard: true, Database: Refused, Code: "42501", Why: "not a member of the service role"},
	{Name: "set-role-superuser", Category: RoleSwitching, SQL: `SET ROLE postgres`, Guard: true, Database: Refused, Code: "42501", Why: "not a member of postgres"},
	{Name: "set-local-role", Category: RoleSwitching, SQL: `SET LOCAL ROLE {{service_role}}`, Guard: true, Database: Refused, Code: "42501", Why: "not a member"},
	{Name: "reset-role", Category: RoleSwitching, SQL: `RESET ROLE`, Guard: true, Database: Contained, Why: "the session role is the function role itself"},
	{Name: "set-role-none", Category: RoleSwitching, SQL: `SET ROLE NONE`, Guard: true, Database: Contained, Why: "the session role is the function role itself"},
	{Name: "set-session-authorization", Category: RoleSwitching, SQL: `SET SESSION AUTHORIZATION postgres`, Guard: true, Database: Refused, Code: "42501", Why: "superuser only"},
	{Name: "set-config-role", Category: RoleSwitching, SQL: `SELECT set_config('role', '{{service_role}}', false)`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on set_config revoked"},
	{Name: "set-config-session-authorization", Category: RoleSwitching, SQL: `SELECT set_config('session_authorization', 'postgres', true)`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on set_config revoked"},
	{Name: "set-config-role-in-cte", Category: RoleSwitching, SQL: `WITH x AS (SELECT set_config('role', '{{service_role}}', true)) SELECT * FROM todos, x`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on set_config revoked"},
	{Name: "grant-service-role-to-self", Category: RoleSwitching, SQL: `GRANT {{service_role}} TO {{authenticated}}`, Guard: true, Database: Refused, Code: "42501", Why: "no ADMIN OPTION"},
	{Name: "grant-postgres-to-self", Category: RoleSwitching, SQL: `GRANT postgres TO {{authenticated}}`, Guard: true, Database: Refused, Code: "42501", Why: "no ADMIN OPTION"},
	{Name: "alter-role-superuser", Category: RoleSwitching, SQL: `ALTER ROLE {{authenticated}} SUPERUSER`, Guard: true, Database: Refused, Code: "42501", Why: "superuser only"},
	{Name: "alter-role-bypassrls", Category: RoleSwitching, SQL: `ALTER ROLE {{authenticated}} BYPASSRLS`, Guard: true, Database: Refused, Code: "42501", Why: "superuser only"},
	{Name: "create-role", Category: RoleSwitching, SQL: `CREATE ROLE aerofn_evil SUPERUSER LOGIN`, Guard: true, Database: Refused, Code: "42501", Why: "no CREATEROLE"},
	{Name: "alter-role-set-role-default", Category: RoleSwitching, SQL: `ALTER ROLE {{authenticated}} SET role = '{{service_role}}'`, Guard: true, Database: Contained, Persists: true, Why: "the default only warns at connect, and the executor resets role defaults it did not set"},

	// --- claim spoofing: identity is a signed token bound to backend and transaction ---
	{Name: "set-token-forged", Category: ClaimSpoofing, SQL: `SET aerofn.token = '{{forged_token}}'`, Guard: true, Database: Contained, Why: "nothing runs after it in the call; the next call sets its own token"},
	{Name: "set-local-token-stolen", Category: ClaimSpoofing, SQL: `SET LOCAL aerofn.token = '{{stolen_token}}'`, Guard: true, Database: Contained, Why: "nothing runs after it in the call"},
	{Name: "set-config-token-then-read", Category: ClaimSpoofing, SQL: `SELECT set_config('aerofn.token', '{{stolen_token}}', true), title FROM todos`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on set_config revoked"},
	{Name: "do-stolen-token-update", Category: ClaimSpoofing, SQL: `DO $$BEGIN EXECUTE 'SET LOCAL aerofn.token = ''{{stolen_token}}'''; UPDATE todos SET title = 'pwned' WHERE owner = '{{victim}}'; END$$`, Guard: true, Database: Refused, Code: "28000", Why: "the token belongs to another backend and transaction"},
	{Name: "do-stolen-window-token-update", Category: ClaimSpoofing, SQL: `DO $$BEGIN EXECUTE 'SET LOCAL aerofn.token = ''{{stolen_window_token}}'''; UPDATE todos SET title = 'pwned' WHERE owner = '{{victim}}'; END$$`, Guard: true, Database: Refused, Code: "28000", Why: "a fast-path token, with a window that covers now, still belongs to another backend"},
	{Name: "do-forged-token-insert", Category: ClaimSpoofing, SQL: `DO $$BEGIN EXECUTE 'SET LOCAL aerofn.token = ''{{forged_token}}'''; INSERT INTO todos (owner, title) VALUES ('{{victim}}', 'planted'); END$$`, Guard: true, Database: Refused, Code: "28000", Why: "the signature does not verify"},
	{Name: "do-reset-token-update", Category: ClaimSpoofing, SQL: `DO $$BEGIN EXECUTE 'RESET aerofn.token'; UPDATE todos SET title = 'pwned'; END$$`, Guard: true, Database: Refused, Code: "28000", Why: "a function session without a token is refused, not anonymous"},
	{Name: "do-hand-made-token", Category: ClaimSpoofing, SQL: `DO $$BEGIN EXECUTE format('SET LOCAL aerofn.token = %L', 'v1|' || encode(convert_to('{{victim}}', 'UTF8'), 'base64') || '|authenticated|' || pg_backend_pid() || '|' || (extract(epoch FROM now()) * 1000000)::bigint || '|9999999999999|e30=|' || repeat('0', 64)); DELETE FROM todos WHERE owner = '{{victim}}'; END$$`, Guard: true, Database: Refused, Code: "28000", Why: "the key is unreadable, so the signature cannot be made"},
	{Name: "set-jwt-claims", Category: ClaimSpoofing, SQL: `SET request.jwt.claims = '{"sub":"{{victim}}","role":"service_role"}'`, Guard: true, Database: Contained, Why: "aerofn's helpers never read request.jwt.*"},
	{Name: "set-jwt-claim-sub", Category: ClaimSpoofing, SQL: `SET request.jwt.claim.sub = '{{victim}}'`, Guard: true, Database: Contained, Why: "aerofn's helpers never read request.jwt.*"},
	{Name: "set-config-jwt-claims", Category: ClaimSpoofing, SQL: `SELECT set_config('request.jwt.claims', '{"sub":"{{victim}}"}', true), title FROM todos`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on set_config revoked"},
	{Name: "read-own-token", Category: ClaimSpoofing, SQL: `SELECT current_setting('aerofn.token') AS t`, Guard: false, Database: Harmless, Why: "a function may see its own token; it is worthless outside this transaction"},
	{Name: "call-verifier-directly", Category: ClaimSpoofing, SQL: `SELECT aerofn.current_identity()`, Guard: true, Database: Refused, Code: "42501", Why: "no USAGE on schema aerofn"},
	{Name: "replace-auth-uid", Category: ClaimSpoofing, SQL: `CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql AS $$SELECT '{{victim}}'::uuid$$`, Guard: true, Database: Refused, Code: "42501", Why: "not the owner; no CREATE on schema auth"},

	// --- transaction control and multiple statements ---
	{Name: "commit", Category: Transactions, SQL: `COMMIT`, Guard: true, Database: Contained, Why: "the host sees its transaction gone and destroys the connection"},
	{Name: "rollback", Category: Transactions, SQL: `ROLLBACK`, Guard: true, Database: Contained, Why: "the host sees its transaction gone and destroys the connection"},
	{Name: "commit-then-delete", Category: Transactions, SQL: `COMMIT; DELETE FROM todos`, Guard: true, Database: Refused, Code: "42601", Why: "the extended protocol takes one statement"},
	{Name: "select-then-set-role", Category: Transactions, SQL: `SELECT 1; SET ROLE {{service_role}}`, Guard: true, Database: Refused, Code: "42601", Why: "the extended protocol takes one statement"},
	{Name: "statement-after-line-comment", Category: Transactions, SQL: "SELECT 1 --\n; DELETE FROM todos", Guard: true, Database: Refused, Code: "42601", Why: "the extended protocol takes one statement"},
	{Name: "statement-after-dollar-quote", Category: Transactions, SQL: `SELECT $$;$$; DELETE FROM todos`, Guard: true, Database: Refused, Code: "42601", Why: "the extended protocol takes one statement"},
	{Name: "begin-nested", Category: Transactions, SQL: `BEGIN`, Guard: true, Database: Contained, Why: "only a warning inside the host's transaction"},
	{Name: "savepoint", Category: Transactions, SQL: `SAVEPOINT s1`, Guard: true, Database: Contained, Why: "released by the host's COMMIT"},
	{Name: "rollback-to-savepoint", Category: Transactions, SQL: `ROLLBACK TO SAVEPOINT s1`, Guard: true, Database: Refused, Code: "3B001", Why: "no such savepoint"},
	{Name: "prepare-transaction", Category: Transactions, SQL: `PREPARE TRANSACTION 'aerofn_evil'`, Guard: true, Database: Contained, Why: "disabled (max_prepared_transactions = 0), or the host sees its transaction gone"},
	{Name: "commit-and-chain", Category: Transactions, SQL: `COMMIT AND CHAIN`, Guard: true, Database: Contained, Why: "the chained transaction has no identity and is committed empty"},
	{Name: "end", Category: Transactions, SQL: `END`, Guard: true, Database: Contained, Why: "the host sees its transaction gone and destroys the connection"},
	{Name: "set-transaction-isolation", Category: Transactions, SQL: `SET TRANSACTION ISOLATION LEVEL SERIALIZABLE`, Guard: true, Database: Contained, Why: "it can only change its own transaction (the slow path has run a query first, so there it is refused with 25001; the fast path has not); every later transaction starts from default_transaction_isolation, which is pinned"},

	// --- DO blocks: PL/pgSQL runs with the role's own privileges ---
	{Name: "do-set-role", Category: DOBlocks, SQL: `DO $$BEGIN EXECUTE 'SET ROLE {{service_role}}'; END$$`, Guard: true, Database: Refused, Code: "42501", Why: "not a member"},
	{Name: "do-set-config", Category: DOBlocks, SQL: `DO $$BEGIN PERFORM set_config('role', '{{service_role}}', false); END$$`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on set_config revoked"},
	{Name: "do-disable-rls", Category: DOBlocks, SQL: `DO $$BEGIN EXECUTE 'ALTER TABLE todos DISABLE ROW LEVEL SECURITY'; END$$`, Guard: true, Database: Refused, Code: "42501", Why: "not the owner"},
	{Name: "do-create-definer", Category: DOBlocks, SQL: `DO $$BEGIN EXECUTE 'CREATE FUNCTION public.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS ''SELECT 1'''; END$$`, Guard: true, Database: Refused, Code: "42501", Why: "no CREATE on schema public"},
	{Name: "do-delete-everything", Category: DOBlocks, SQL: `DO $$BEGIN DELETE FROM todos WHERE owner = '{{victim}}'; UPDATE todos SET title = 'pwned' WHERE id = '{{victim_todo}}'; END$$`, Guard: true, Database: Contained, Why: "row-level security applies inside PL/pgSQL"},
	{Name: "do-language-sql", Category: DOBlocks, SQL: `DO LANGUAGE sql $$SET ROLE postgres$$`, Guard: true, Database: Refused, Why: "SQL has no inline code"},

	// --- DDL: function roles own nothing and can create nothing ---
	{Name: "disable-rls", Category: DDL, SQL: `ALTER TABLE todos DISABLE ROW LEVEL SECURITY`, Guard: true, Database: Refused, Code: "42501", Why: "not the owner"},
	{Name: "no-force-rls", Category: DDL, SQL: `ALTER TABLE todos NO FORCE ROW LEVEL SECURITY`, Guard: true, Database: Refused, Code: "42501", Why: "not the owner"},
	{Name: "alter-policy", Category: DDL, SQL: `ALTER POLICY todos_select ON todos USING (true)`, Guard: true, Database: Refused, Code: "42501", Why: "not the owner"},
	{Name: "drop-policy", Category: DDL, SQL: `DROP POLICY todos_select ON todos`, Guard: true, Database: Refused, Code: "42501", Why: "not the owner"},
	{Name: "create-policy", Category: DDL, SQL: `CREATE POLICY evil ON todos FOR SELECT USING (true)`, Guard: true, Database: Refused, Code: "42501", Why: "not the owner"},
	{Name: "create-security-definer", Category: DDL, SQL: `CREATE FUNCTION public.steal() RETURNS SETOF todos LANGUAGE sql SECURITY DEFINER AS $$SELECT * FROM todos$$`, Guard: true, Database: Refused, Code: "42501", Why: "no CREATE on schema public"},
	{Name: "grant-all-to-anon", Category: DDL, SQL: `GRANT ALL ON todos TO {{anon}}`, Guard: true, Database: Contained, Why: "without grant option nothing is granted (a warning)"},
	{Name: "drop-table", Category: DDL, SQL: `DROP TABLE todos`, Guard: true, Database: Refused, Code: "42501", Why: "not the owner"},
	{Name: "truncate", Category: DDL, SQL: `TRUNCATE todos`, Guard: true, Database: Refused, Code: "42501", Why: "no TRUNCATE privilege (TRUNCATE ignores row-level security: never grant it)"},
	{Name: "create-table", Category: DDL, SQL: `CREATE TABLE public.evil (x int)`, Guard: true, Database: Refused, Code: "42501", Why: "no CREATE on schema public"},
	{Name: "create-schema", Category: DDL, SQL: `CREATE SCHEMA evil`, Guard: true, Database: Refused, Code: "42501", Why: "no CREATE on the database"},
	{Name: "alter-table-owner", Category: DDL, SQL: `ALTER TABLE todos OWNER TO {{authenticated}}`, Guard: true, Database: Refused, Code: "42501", Why: "not the owner"},
	{Name: "create-trigger", Category: DDL, SQL: `CREATE TRIGGER evil BEFORE UPDATE ON todos FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()`, Guard: true, Database: Refused, Code: "42501", Why: "no TRIGGER privilege"},
	{Name: "create-rule", Category: DDL, SQL: `CREATE RULE evil AS ON UPDATE TO todos DO INSTEAD NOTHING`, Guard: true, Database: Refused, Code: "42501", Why: "not the owner"},
	{Name: "create-extension", Category: DDL, SQL: `CREATE EXTENSION dblink`, Guard: true, Database: Refused, Why: "no CREATE on the database, and not installed"},
	{Name: "comment-on-table", Category: DDL, SQL: `COMMENT ON TABLE todos IS 'pwned'`, Guard: true, Database: Refused, Code: "42501", Why: "not the owner"},
	{Name: "alter-default-privileges", Category: DDL, SQL: `ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO {{anon}}`, Guard: true, Database: Contained, Why: "only covers objects the role creates, and it can create none"},
	{Name: "drop-owned-by-anon", Category: DDL, SQL: `DROP OWNED BY {{anon}}`, Guard: true, Database: Refused, Code: "42501", Why: "not a member of anon"},
	{Name: "alter-role-set-self-default", Category: DDL, SQL: `ALTER ROLE {{authenticated}} SET default_transaction_read_only = on`, Guard: true, Database: Contained, Persists: true, Why: "startup parameters outrank it, and the executor resets role defaults it did not set"},
	{Name: "alter-role-set-self-in-database", Category: DDL, SQL: `ALTER ROLE {{authenticated}} IN DATABASE {{database}} SET search_path = 'pg_temp'`, Guard: true, Database: Contained, Persists: true, Why: "startup parameters outrank it, and the executor resets role defaults it did not set"},
	{Name: "alter-role-password-self", Category: DDL, SQL: `ALTER ROLE {{authenticated}} PASSWORD 'pwned'`, Guard: true, Database: GuardOnly, Why: "any role may change its own password; under password authentication that locks the host out until the next migrate"},

	// --- files and large objects ---
	{Name: "copy-to-program", Category: FilesAndLOs, SQL: `COPY todos TO PROGRAM 'id'`, Guard: true, Database: Refused, Code: "42501", Why: "pg_execute_server_program only"},
	{Name: "copy-from-file", Category: FilesAndLOs, SQL: `COPY todos FROM '/etc/passwd'`, Guard: true, Database: Refused, Code: "42501", Why: "pg_read_server_files only"},
	{Name: "copy-to-file", Category: FilesAndLOs, SQL: `COPY (SELECT 1) TO '/tmp/aerofn-pwned'`, Guard: true, Database: Refused, Code: "42501", Why: "pg_write_server_files only"},
	{Name: "copy-to-stdout", Category: FilesAndLOs, SQL: `COPY todos TO STDOUT`, Guard: true, Database: Contained, Why: "row-level security applies to COPY TO; the host drops a connection that answers with COPY"},
	{Name: "pg-read-file", Category: FilesAndLOs, SQL: `SELECT pg_read_file('/etc/passwd')`, Guard: true, Database: Refused, Code: "42501", Why: "not granted by default"},
	{Name: "pg-read-binary-file", Category: FilesAndLOs, SQL: `SELECT pg_read_binary_file('postgresql.conf')`, Guard: true, Database: Refused, Code: "42501", Why: "not granted by default"},
	{Name: "pg-ls-dir", Category: FilesAndLOs, SQL: `SELECT pg_ls_dir('.')`, Guard: true, Database: Refused, Code: "42501", Why: "not granted by default"},
	{Name: "pg-stat-file", Category: FilesAndLOs, SQL: `SELECT pg_stat_file('postgresql.conf')`, Guard: true, Database: Refused, Code: "42501", Why: "not granted by default"},
	{Name: "lo-import", Category: FilesAndLOs, SQL: `SELECT lo_import('/etc/passwd')`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on lo_* revoked"},
	{Name: "lo-export", Category: FilesAndLOs, SQL: `SELECT lo_export(1, '/tmp/aerofn-pwned')`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on lo_* revoked"},
	{Name: "lo-from-bytea", Category: FilesAndLOs, SQL: `SELECT lo_from_bytea(0, '\x00'::bytea)`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on lo_* revoked"},
	{Name: "lo-create", Category: FilesAndLOs, SQL: `SELECT lo_create(4242)`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on lo_* revoked"},
	{Name: "read-pg-largeobject", Category: FilesAndLOs, SQL: `SELECT * FROM pg_largeobject`, Guard: true, Database: Refused, Code: "42501", Why: "not readable"},
	{Name: "dblink-connect", Category: FilesAndLOs, SQL: `SELECT dblink_connect('host=127.0.0.1 user=postgres')`, Guard: true, Database: Refused, Why: "not installed; EXECUTE revoked where it is"},

	// --- LISTEN/NOTIFY ---
	{Name: "listen", Category: ListenNotify, SQL: `LISTEN aerofn_secrets`, Guard: true, Database: Contained, Why: "DISCARD ALL after every call unlistens"},
	{Name: "pg-notify", Category: ListenNotify, SQL: `SELECT pg_notify('app_events', 'forged')`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on pg_notify revoked"},
	{Name: "notify", Category: ListenNotify, SQL: `NOTIFY app_events, 'forged'`, Guard: true, Database: GuardOnly, Why: "NOTIFY needs no privilege; only the guard keeps a function from sending to the application's channels"},

	// --- shadowing a real table for the next caller of the connection ---
	{Name: "temp-table-shadow", Category: Shadowing, SQL: `CREATE TEMP TABLE todos (id uuid, owner uuid, title text, done boolean)`, Guard: true, Database: Refused, Code: "42501", Why: "TEMPORARY revoked on the database"},
	{Name: "temp-view-shadow", Category: Shadowing, SQL: `CREATE TEMP VIEW todos AS SELECT * FROM posts`, Guard: true, Database: Refused, Code: "42501", Why: "TEMPORARY revoked on the database"},
	{Name: "select-into-temp", Category: Shadowing, SQL: `SELECT * INTO TEMP shadow FROM todos`, Guard: true, Database: Refused, Code: "42501", Why: "TEMPORARY revoked on the database"},
	{Name: "create-table-as", Category: Shadowing, SQL: `CREATE TABLE shadow AS SELECT * FROM todos`, Guard: true, Database: Refused, Code: "42501", Why: "no CREATE on schema public"},
	{Name: "pg-temp-function", Category: Shadowing, SQL: `CREATE FUNCTION pg_temp.uid() RETURNS uuid LANGUAGE sql AS $$SELECT '{{victim}}'::uuid$$`, Guard: true, Database: Refused, Code: "42501", Why: "TEMPORARY revoked on the database"},
	{Name: "temp-sequence", Category: Shadowing, SQL: `CREATE TEMP SEQUENCE shadow_seq`, Guard: true, Database: Refused, Code: "42501", Why: "TEMPORARY revoked on the database"},
	{Name: "search-path-temp-first", Category: Shadowing, SQL: `SET search_path = pg_temp, public`, Guard: true, Database: Contained, Why: "DISCARD ALL resets it; there is nothing in pg_temp anyway"},
	{Name: "set-config-search-path", Category: Shadowing, SQL: `SELECT set_config('search_path', 'pg_temp, public', false)`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on set_config revoked"},

	// --- session state left behind ---
	{Name: "statement-timeout-zero", Category: SessionState, SQL: `SET statement_timeout = 0`, Guard: true, Database: Contained, Why: "DISCARD ALL resets it; every call sets its own"},
	{Name: "prepare-left-behind", Category: SessionState, SQL: `PREPARE evil AS DELETE FROM todos`, Guard: true, Database: Contained, Why: "DISCARD ALL deallocates it"},
	{Name: "cursor-with-hold", Category: SessionState, SQL: `DECLARE evil CURSOR WITH HOLD FOR SELECT * FROM todos`, Guard: true, Database: Contained, Why: "DISCARD ALL closes it"},
	{Name: "session-read-only", Category: SessionState, SQL: `SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`, Guard: true, Database: Contained, Why: "DISCARD ALL resets it"},
	{Name: "row-security-off", Category: SessionState, SQL: `SET row_security = off`, Guard: true, Database: Contained, Why: "off makes policies raise errors, never bypass them; DISCARD ALL resets it"},
	{Name: "session-replication-role", Category: SessionState, SQL: `SET session_replication_role = replica`, Guard: true, Database: Refused, Code: "42501", Why: "superuser only (it would silence triggers)"},
	{Name: "datestyle", Category: SessionState, SQL: `SET DateStyle = 'SQL, DMY'`, Guard: true, Database: Contained, Why: "DISCARD ALL resets it to the startup value"},
	{Name: "discard-all-inside", Category: SessionState, SQL: `DISCARD ALL`, Guard: true, Database: Refused, Code: "25001", Why: "cannot run inside the host's transaction"},
	{Name: "reset-all", Category: SessionState, SQL: `RESET ALL`, Guard: true, Database: Contained, Why: "resets to the startup values the host chose"},
	{Name: "load-library", Category: SessionState, SQL: `LOAD 'plpgsql'`, Guard: true, Database: Refused, Code: "42501", Why: "only $libdir/plugins for non-superusers"},
	{Name: "set-log-statement", Category: SessionState, SQL: `SET log_statement = 'none'`, Guard: true, Database: Refused, Code: "42501", Why: "superuser only"},
	{Name: "explain-analyze", Category: SessionState, SQL: `EXPLAIN ANALYZE SELECT * FROM todos`, Guard: true, Database: GuardOnly, Why: "runs with row-level security, but its \"Rows Removed by Filter\" counts other users' rows"},
	{Name: "show-all", Category: SessionState, SQL: `SHOW ALL`, Guard: true, Database: Contained, Why: "settings hold no other session's data"},

	// --- advisory locks and LOCK TABLE ---
	{Name: "advisory-lock", Category: Locks, SQL: `SELECT pg_advisory_lock(42)`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on advisory locks revoked"},
	{Name: "try-advisory-lock", Category: Locks, SQL: `SELECT pg_try_advisory_lock(42)`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on advisory locks revoked"},
	{Name: "advisory-xact-lock", Category: Locks, SQL: `SELECT pg_advisory_xact_lock(42)`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on advisory locks revoked"},
	{Name: "advisory-lock-shared", Category: Locks, SQL: `SELECT pg_advisory_lock_shared(1, 2)`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on advisory locks revoked"},
	{Name: "lock-table", Category: Locks, SQL: `LOCK TABLE todos IN ACCESS EXCLUSIVE MODE`, Guard: true, Database: Contained, Why: "held only until the host's COMMIT"},
	{Name: "lock-aerofn-table", Category: Locks, SQL: `LOCK TABLE aerofn.functions`, Guard: true, Database: Refused, Code: "42501", Why: "no USAGE on schema aerofn"},
	{Name: "select-for-update-victim", Category: Locks, SQL: `SELECT * FROM todos WHERE id = $1 FOR UPDATE`, Params: []any{"{{victim_todo}}"}, Guard: false, Database: Harmless, Why: "row-level security hides the row, so it is not locked"},
	{Name: "terminate-backends", Category: Locks, SQL: `SELECT pg_terminate_backend(pid) FROM pg_stat_activity`, Guard: true, Database: Refused, Code: "42501", Why: "pg_stat_activity and pg_terminate_backend revoked"},

	// --- catalog reads ---
	{Name: "pg-authid", Category: CatalogReads, SQL: `SELECT rolname, rolpassword FROM pg_authid`, Guard: true, Database: Refused, Code: "42501", Why: "not readable"},
	{Name: "pg-shadow", Category: CatalogReads, SQL: `SELECT usename, passwd FROM pg_shadow`, Guard: true, Database: Refused, Code: "42501", Why: "not readable"},
	{Name: "pg-stat-activity", Category: CatalogReads, SQL: `SELECT pid, usename, query FROM pg_stat_activity`, Guard: true, Database: Refused, Code: "42501", Why: "SELECT revoked from PUBLIC"},
	{Name: "pg-stat-get-activity", Category: CatalogReads, SQL: `SELECT * FROM pg_stat_get_activity(NULL)`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE revoked from PUBLIC"},
	{Name: "signing-key", Category: CatalogReads, SQL: `SELECT key FROM aerofn.rls_signing_key`, Guard: true, Database: Refused, Code: "42501", Why: "no USAGE on schema aerofn"},
	{Name: "aerofn-functions", Category: CatalogReads, SQL: `SELECT * FROM aerofn.functions`, Guard: true, Database: Refused, Code: "42501", Why: "no USAGE on schema aerofn"},
	{Name: "aerofn-invocations", Category: CatalogReads, SQL: `SELECT * FROM aerofn.invocations`, Guard: true, Database: Refused, Code: "42501", Why: "no USAGE on schema aerofn"},
	{Name: "quoted-catalog", Category: CatalogReads, SQL: `SELECT * FROM "pg_catalog"."pg_authid"`, Guard: true, Database: Refused, Code: "42501", Why: "not readable"},
	{Name: "upper-case-catalog", Category: CatalogReads, SQL: `SELECT * FROM PG_CATALOG.PG_AUTHID`, Guard: true, Database: Refused, Code: "42501", Why: "not readable"},
	{Name: "information-schema", Category: CatalogReads, SQL: `SELECT table_schema, table_name FROM information_schema.tables`, Guard: true, Database: Contained, Why: "lists only what the role may use"},
	{Name: "pg-settings", Category: CatalogReads, SQL: `SELECT name, setting FROM pg_settings`, Guard: true, Database: Contained, Why: "settings hold no other session's data"},
	{Name: "verifier-source", Category: CatalogReads, SQL: `SELECT prosrc FROM pg_proc WHERE proname = 'current_identity'`, Guard: true, Database: Contained, Why: "the source holds no key"},
	{Name: "query-to-xml", Category: CatalogReads, SQL: `SELECT query_to_xml('SELECT * FROM todos', true, false, '')`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE revoked (it runs SQL text of its own)"},
	{Name: "cursor-to-xml", Category: CatalogReads, SQL: `SELECT cursor_to_xml('c', 1, true, false, '')`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE revoked"},
	{Name: "ts-stat", Category: CatalogReads, SQL: `SELECT * FROM ts_stat('SELECT to_tsvector(title) FROM todos')`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE revoked (it runs SQL text of its own)"},
	{Name: "table-to-xml", Category: CatalogReads, SQL: `SELECT table_to_xml('todos', true, false, '')`, Guard: true, Database: Contained, Why: "reads with the caller's row-level security"},

	// --- denial of service ---
	{Name: "pg-sleep", Category: DenialOfService, SQL: `SELECT pg_sleep(30)`, Guard: false, Database: Refused, Code: "timeout", Slow: true, Why: "statement_timeout from the call's deadline"},
	{Name: "huge-count", Category: DenialOfService, SQL: `SELECT count(*) FROM generate_series(1, 10000000000)`, Guard: false, Database: Refused, Code: "timeout", Slow: true, Why: "statement_timeout from the call's deadline"},
	{Name: "cross-join", Category: DenialOfService, SQL: `SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b`, Guard: false, Database: Refused, Code: "timeout", Slow: true, Why: "statement_timeout from the call's deadline"},
	{Name: "too-many-rows", Category: DenialOfService, SQL: `SELECT g FROM generate_series(1, 200000) g`, Guard: false, Database: Refused, Code: "too_many_rows", Why: "the host's row limit; the connection is destroyed"},
	{Name: "result-too-large", Category: DenialOfService, SQL: `SELECT repeat('x', 1048576) AS x FROM generate_series(1, 12)`, Guard: false, Database: Refused, Code: "result_too_large", Why: "the host's byte limit; the connection is destroyed"},
	{Name: "endless-recursion", Category: DenialOfService, SQL: `WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r`, Guard: false, Database: Refused, Code: "too_many_rows", Why: "the host's row limit"},
	{Name: "insert-flood", Category: DenialOfService, SQL: `INSERT INTO todos (owner, title) SELECT $1, 'flood' FROM generate_series(1, 20000) RETURNING id`, Params: []any{"{{attacker}}"}, Guard: false, Database: Refused, Code: "too_many_rows", Why: "the row limit; the insert is not committed"},
	{Name: "do-swallow-cancel", Category: DenialOfService, SQL: `DO $$BEGIN LOOP BEGIN PERFORM pg_sleep(0.05); EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END$$`, Guard: true, Database: Refused, Code: "timeout", Slow: true, Why: "the loop swallows cancel requests; the host terminates the backend"},

	// --- policy bypass through data: the policies hold ---
	{Name: "read-victim-todos", Category: PolicyBypass, SQL: `SELECT * FROM todos WHERE owner = $1`, Params: []any{"{{victim}}"}, Guard: false, Database: Harmless, Why: "todos_select"},
	{Name: "update-victim-todo", Category: PolicyBypass, SQL: `UPDATE todos SET title = 'pwned' WHERE id = $1 RETURNING *`, Params: []any{"{{victim_todo}}"}, Guard: false, Database: Harmless, Why: "todos_update USING"},
	{Name: "delete-victim-todos", Category: PolicyBypass, SQL: `DELETE FROM todos WHERE owner = $1 RETURNING *`, Params: []any{"{{victim}}"}, Guard: false, Database: Harmless, Why: "todos_delete USING"},
	{Name: "insert-as-victim", Category: PolicyBypass, SQL: `INSERT INTO todos (owner, title) VALUES ($1, 'planted')`, Params: []any{"{{victim}}"}, Guard: false, Database: Refused, Code: "42501", Why: "todos_insert WITH CHECK"},
	{Name: "give-row-to-victim", Category: PolicyBypass, SQL: `UPDATE todos SET owner = $1 WHERE owner = $2`, Params: []any{"{{victim}}", "{{attacker}}"}, Guard: false, Database: Contained, Why: "todos_update WITH CHECK (refused while the attacker still has rows)"},
	{Name: "upsert-victim-row", Category: PolicyBypass, SQL: `INSERT INTO todos (id, owner, title) VALUES ($1, $2, 'x') ON CONFLICT (id) DO UPDATE SET title = 'pwned'`, Params: []any{"{{victim_todo}}", "{{attacker}}"}, Guard: false, Database: Refused, Code: "42501", Why: "ON CONFLICT DO UPDATE checks todos_update USING on the existing row"},
	{Name: "leaky-where", Category: PolicyBypass, SQL: `SELECT * FROM todos WHERE CASE WHEN owner = $1 THEN 1 / (length(title) - length(title)) ELSE 0 END = 0`, Params: []any{"{{victim}}"}, Guard: false, Database: Harmless, Why: "policy quals run before the caller's non-leakproof ones"},
	{Name: "cte-delete", Category: PolicyBypass, SQL: `WITH d AS (DELETE FROM todos WHERE owner = $1 RETURNING *) SELECT * FROM d`, Params: []any{"{{victim}}"}, Guard: false, Database: Harmless, Why: "todos_delete USING"},
	{Name: "private-posts", Category: PolicyBypass, SQL: `SELECT body FROM posts WHERE NOT published`, Guard: false, Database: Harmless, Why: "posts_read"},
	{Name: "exists-probe", Category: PolicyBypass, SQL: `SELECT EXISTS (SELECT 1 FROM todos WHERE title LIKE 'VICTIM%') AS found`, Guard: false, Database: Harmless, Why: "todos_select"},
	{Name: "anon-private-posts", Category: PolicyBypass, SQL: `SELECT body FROM posts`, AsAnon: true, Guard: false, Database: Harmless, Why: "posts_read"},
	{Name: "anon-todos", Category: PolicyBypass, SQL: `SELECT * FROM todos`, AsAnon: true, Guard: false, Database: Refused, Code: "42501", Why: "anon has no grant on todos"},
	{Name: "anon-insert-post", Category: PolicyBypass, SQL: `INSERT INTO posts (owner, body) VALUES ($1, 'planted')`, Params: []any{"{{victim}}"}, AsAnon: true, Guard: false, Database: Refused, Code: "42501", Why: "anon has no INSERT grant"},
	{Name: "anon-update-post", Category: PolicyBypass, SQL: `UPDATE posts SET body = 'pwned' WHERE id = $1`, Params: []any{"{{victim_post}}"}, AsAnon: true, Guard: false, Database: Refused, Code: "42501", Why: "anon has no UPDATE grant"},

	// --- guard evasion: what hides in comments and literals is not a statement ---
	{Name: "comment-hides-set-role", Category: GuardEvasion, SQL: `SELECT current_user AS u /* ; SET ROLE postgres */`, Guard: false, Database: Harmless, Why: "a comment"},
	{Name: "string-hides-set-role", Category: GuardEvasion, SQL: `SELECT 'x''; SET ROLE postgres; --' AS s`, Guard: false, Database: Harmless, Why: "a string"},
	{Name: "dollar-hides-set-role", Category: GuardEvasion, SQL: `SELECT $x$; SET ROLE postgres; $x$ AS s`, Guard: false, Database: Harmless, Why: "a dollar-quoted string"},
	{Name: "nested-comment", Category: GuardEvasion, SQL: `SELECT 1 AS n /* /* */ ; SET ROLE postgres; */`, Guard: false, Database: Harmless, Why: "comments nest"},
	{Name: "escape-string", Category: GuardEvasion, SQL: `SELECT E'\'; SET ROLE postgres; --' AS s`, Guard: false, Database: Harmless, Why: "a backslash escapes the quote in E''"},
	{Name: "unicode-identifier", Category: GuardEvasion, SQL: `SELECT * FROM U&"\0070g_authid"`, Guard: true, Database: Refused, Code: "42501", Why: "not readable"},
	{Name: "qualified-set-config", Category: GuardEvasion, SQL: `SELECT pg_catalog.set_config('role', '{{service_role}}', false)`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on set_config revoked"},
	{Name: "quoted-set-config", Category: GuardEvasion, SQL: `SELECT "set_config"('role', '{{service_role}}', false)`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on set_config revoked"},
	{Name: "comment-between-name-and-paren", Category: GuardEvasion, SQL: `SELECT set_config/**/('role', '{{service_role}}', false)`, Guard: true, Database: Refused, Code: "42501", Why: "EXECUTE on set_config revoked"},
	{Name: "leading-whitespace", Category: GuardEvasion, SQL: "  \n\t-- hi\n SET ROLE {{service_role}}", Guard: true, Database: Refused, Code: "42501", Why: "not a member"},
	{Name: "parenthesised-select-into", Category: GuardEvasion, SQL: `(SELECT * INTO evil FROM todos)`, Guard: true, Database: Refused, Why: "no CREATE on schema public"},
	{Name: "with-then-set", Category: GuardEvasion, SQL: `WITH x AS (SELECT 1) SET ROLE postgres`, Guard: true, Database: Refused, Code: "42601", Why: "a syntax error"},
	{Name: "table-command", Category: GuardEvasion, SQL: `TABLE todos`, Guard: true, Database: Contained, Why: "row-level security applies"},
	{Name: "values-command", Category: GuardEvasion, SQL: `VALUES (1)`, Guard: true, Database: Contained, Why: "reads nothing"},
	{Name: "call-procedure", Category: GuardEvasion, SQL: `CALL nonexistent()`, Guard: true, Database: Refused, Code: "42883", Why: "no such procedure, and no CREATE to make one"},
}

-- Database triggers (internal/dbtrigger): change capture in the writer's own
-- transaction, the subscriptions that say which function gets which change,
-- the per-function backlog of held and ordered deliveries, and the nodes that
-- deliver. River's own tables are created beside these by rivermigrate at
-- start-up (schema aerofn).

-- One row per captured change, written by the capture triggers inside the
-- writer's transaction (so a rollback leaves nothing) and deleted by the
-- dispatcher in the transaction that turns it into River jobs (so nothing is
-- lost between the two). Rows live here for milliseconds.
CREATE TABLE aerofn.events (
	id          bigserial PRIMARY KEY,
	table_oid   oid NOT NULL,
	schema_name name NOT NULL,
	table_name  name NOT NULL,
	op          text NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
	old         jsonb,
	new         jsonb,
	-- {"role", "sub", "claims", "source"} when the writer's identity is known.
	writer      jsonb,
	txid        xid8 NOT NULL,
	captured_at timestamptz NOT NULL
);
-- A queue table: rows are inserted and deleted at a high rate.
ALTER TABLE aerofn.events SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);

-- Which function receives which table's changes. The capture triggers on a
-- table are exactly those that the table's subscriptions need.
CREATE TABLE aerofn.event_subscriptions (
	function_id  uuid NOT NULL REFERENCES aerofn.functions (id) ON DELETE CASCADE,
	table_oid    oid NOT NULL,
	table_name   text NOT NULL, -- as configured, for people
	ops          text[] NOT NULL,
	ordered      boolean NOT NULL DEFAULT false,
	max_attempts integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
	created_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (function_id, table_oid)
);
CREATE INDEX event_subscriptions_table ON aerofn.event_subscriptions (table_oid);

-- Deliveries that are not in River yet: those of a disabled function (held
-- until it is enabled) and those of an ordered function (fed to River one at
-- a time, in seq order; job_id is the head's job while it is in flight).
CREATE TABLE aerofn.event_backlog (
	seq          bigserial PRIMARY KEY,
	function_id  uuid NOT NULL REFERENCES aerofn.functions (id) ON DELETE CASCADE,
	event_id     bigint NOT NULL,
	max_attempts integer NOT NULL,
	change       jsonb NOT NULL,
	job_id       bigint,
	held_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_backlog_function ON aerofn.event_backlog (function_id, seq);

-- The delivering nodes, each with the backend of a connection it holds for
-- as long as it lives: a node whose backend is gone has died, and the jobs it
-- was running are handed to the others at once.
CREATE TABLE aerofn.event_nodes (
	client_id     text PRIMARY KEY,
	backend_pid   integer NOT NULL,
	backend_start timestamptz NOT NULL,
	started_at    timestamptz NOT NULL DEFAULT now()
);

-- aerofn.capture_writer() is the writer's identity: the verified identity
-- token of a write made through db_query (aerofn.current_identity), else the
-- JWT claims an application session set in request.jwt.claims (the PostgREST
-- convention; function sessions cannot set it: set_config is revoked from
-- them and the statement guard refuses SET), else NULL.
CREATE FUNCTION aerofn.capture_writer() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	i jsonb := aerofn.current_identity();
	c text;
BEGIN
	IF i IS NOT NULL THEN
		RETURN jsonb_strip_nulls(jsonb_build_object('role', i ->> 'role', 'sub', i ->> 'sub', 'claims', i -> 'claims', 'source', 'db_query'));
	END IF;
	c := nullif(current_setting('request.jwt.claims', true), '');
	IF c IS NULL THEN
		RETURN NULL;
	END IF;
	-- Claims that do not parse must not fail the writer's statement.
	BEGIN
		i := c::jsonb;
	EXCEPTION WHEN others THEN
		RETURN NULL;
	END;
	IF jsonb_typeof(i) IS DISTINCT FROM 'object' THEN
		RETURN NULL;
	END IF;
	RETURN jsonb_strip_nulls(jsonb_build_object('role', i ->> 'role', 'sub', i ->> 'sub', 'claims', i, 'source', 'session'));
END
$fn$;

-- The capture trigger functions. INSERT and DELETE are statement-level with
-- a transition table, so a 10,000-row statement costs one INSERT ... SELECT
-- and one identity check; UPDATE is row-level, because the old and new
-- transition tables of an UPDATE cannot be paired row by row. All three are
-- SECURITY DEFINER (owned by the admin, which alone may write aerofn.events
-- and call pg_notify) with search_path pinned, so no object a writer creates
-- can stand in for what they call. The notification only wakes the
-- dispatcher; the rows are the truth, and it polls too. The application's
-- columns are in scope inside these functions, so their own names are
-- prefixed, variables win any clash, and rows are taken whole (alias.*).
CREATE FUNCTION aerofn.capture_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_variable
DECLARE
	aerofn_writer jsonb := aerofn.capture_writer();
	aerofn_txid   xid8 := pg_current_xact_id();
	aerofn_at     timestamptz := clock_timestamp();
BEGIN
	INSERT INTO aerofn.events (table_oid, schema_name, table_name, op, new, writer, txid, captured_at)
	SELECT TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'INSERT', to_jsonb(aerofn_new_row.*), aerofn_writer, aerofn_txid, aerofn_at
	FROM aerofn_new AS aerofn_new_row;
	IF FOUND THEN
		PERFORM pg_notify('aerofn_events', '');
	END IF;
	RETURN NULL;
END
$fn$;

CREATE FUNCTION aerofn.capture_deleted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_variable
DECLARE
	aerofn_writer jsonb := aerofn.capture_writer();
	aerofn_txid   xid8 := pg_current_xact_id();
	aerofn_at     timestamptz := clock_timestamp();
BEGIN
	INSERT INTO aerofn.events (table_oid, schema_name, table_name, op, old, writer, txid, captured_at)
	SELECT TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'DELETE', to_jsonb(aerofn_old_row.*), aerofn_writer, aerofn_txid, aerofn_at
	FROM aerofn_old AS aerofn_old_row;
	IF FOUND THEN
		PERFORM pg_notify('aerofn_events', '');
	END IF;
	RETURN NULL;
END
$fn$;

CREATE FUNCTION aerofn.capture_updated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	INSERT INTO aerofn.events (table_oid, schema_name, table_name, op, old, new, writer, txid, captured_at)
	VALUES (TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, 'UPDATE', to_jsonb(OLD), to_jsonb(NEW),
		aerofn.capture_writer(), pg_current_xact_id(), clock_timestamp());
	PERFORM pg_notify('aerofn_events', '');
	RETURN NULL;
END
$fn$;

REVOKE ALL ON FUNCTION aerofn.capture_writer(), aerofn.capture_inserted(), aerofn.capture_deleted(), aerofn.capture_updated() FROM PUBLIC;

-- The function registry: module bytes stored once by SHA-256, functions, and
-- their immutable versions; plus the invocation records.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE aerofn.modules (
	hash       text PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{64}$'),
	bytes      bytea NOT NULL,
	size       integer NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE aerofn.functions (
	id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	name            text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_-]{0,63}$'),
	description     text NOT NULL DEFAULT '',
	enabled         boolean NOT NULL DEFAULT true,
	config          jsonb NOT NULL DEFAULT '{}',
	current_version integer NOT NULL,
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE aerofn.versions (
	function_id uuid NOT NULL REFERENCES aerofn.functions (id) ON DELETE CASCADE,
	version     integer NOT NULL,
	wasm_hash   text NOT NULL REFERENCES aerofn.modules (hash),
	config      jsonb NOT NULL DEFAULT '{}',
	description text NOT NULL DEFAULT '',
	created_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (function_id, version)
);

-- Invocation records outlive their function (no foreign key): the history of
-- a deleted function stays readable by operators.
CREATE TABLE aerofn.invocations (
	id             uuid PRIMARY KEY,
	function_id    uuid NOT NULL,
	function_name  text NOT NULL,
	version        integer NOT NULL,
	trigger        text NOT NULL,
	status         text NOT NULL,
	http_status    integer,
	duration_ms    double precision NOT NULL,
	memory_peak_mb double precision NOT NULL,
	role           text NOT NULL,
	user_id        text,
	request_id     text,
	error          text,
	logs           jsonb NOT NULL DEFAULT '[]',
	logs_dropped   integer NOT NULL DEFAULT 0,
	created_at     timestamptz NOT NULL
);
CREATE INDEX invocations_function_time ON aerofn.invocations (function_name, created_at DESC);

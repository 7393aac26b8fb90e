-- Compiled modules shared between nodes (internal/registry/artifacts.go): the
-- node that deploys a version compiles it once and stores the artifact here,
-- keyed by the module and by the fingerprint of the engine that compiled it
-- (wasmtime version, target, compiler settings); every other node with that
-- fingerprint loads it instead of compiling. An artifact is native code that
-- wasmtime trusts, so each row carries an HMAC under a key derived from the
-- secrets key, which every node has and the database does not.
CREATE TABLE aerofn.artifacts (
	-- No foreign key to aerofn.modules: a deploy stores the artifact before
	-- its transaction stores the module, so that no node is told of a
	-- version whose artifact is not there yet.
	wasm_hash   text NOT NULL CHECK (wasm_hash ~ '^[0-9a-f]{64}$'),
	fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
	bytes       bytea NOT NULL,
	mac         bytea NOT NULL,
	size        integer NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (wasm_hash, fingerprint)
);
-- Artifacts are machine code and zero-filled memory images; PostgreSQL's
-- compression costs more time than it saves on loopback, so values are
-- stored out of line as they are.
ALTER TABLE aerofn.artifacts ALTER COLUMN bytes SET STORAGE EXTERNAL;
REVOKE ALL ON aerofn.artifacts FROM PUBLIC;

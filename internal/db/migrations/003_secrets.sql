-- Secrets that functions read through env(): encrypted with AES-256-GCM under
-- a key derived from AEROFN_SECRETS_KEY, which never reaches the database.
CREATE TABLE aerofn.secrets (
	name       text PRIMARY KEY CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'),
	nonce      bytea NOT NULL,
	ciphertext bytea NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);

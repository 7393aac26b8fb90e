-- Plain configuration values that functions read through env() beside
-- secrets: not encrypted, shown by the API, any length including empty. A
-- name is either a secret or a plain value, never both (the API refuses
-- the second with 409 under an advisory lock both writers take).
CREATE TABLE aerofn.env_values (
	name       text PRIMARY KEY CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'),
	value      text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);

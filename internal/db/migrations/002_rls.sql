-- Row-level security for functions (docs/RLS.md, internal/sqlexec).
--
-- This migration holds the per-database objects: the signing key table, the
-- table naming the function roles, the token verifier and the Supabase-style
-- helpers auth.uid() / auth.role() / auth.jwt() / auth.sub(). Everything that
-- names a role (roles are cluster-wide and their names configurable), the key
-- itself and the hardening are done by sqlexec.Setup, which `aerofn migrate`
-- runs after this, every time, so that they are re-asserted and not only
-- applied once.

-- The key that signs identity tokens. One row; no function role can read it
-- (schema aerofn grants nothing to PUBLIC, and neither does this table).
-- ipad/opad are the HMAC-SHA256 key blocks, stored so that verifying a token
-- costs two sha256() calls and needs no extension.
CREATE TABLE aerofn.rls_signing_key (
	id         integer PRIMARY KEY CHECK (id = 1),
	key        bytea NOT NULL CHECK (length(key) = 32),
	ipad       bytea NOT NULL CHECK (length(ipad) = 64),
	opad       bytea NOT NULL CHECK (length(opad) = 64),
	created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON aerofn.rls_signing_key FROM PUBLIC;

-- The database roles that functions log in as, and the principal role each
-- one stands for. A session whose session_user is listed here must carry a
-- valid token; any other session (the admin, the application's own roles)
-- has no identity and the helpers return NULL.
CREATE TABLE aerofn.rls_roles (
	rolname   name PRIMARY KEY,
	principal text NOT NULL UNIQUE CHECK (principal IN ('anon', 'authenticated', 'service_role'))
);
REVOKE ALL ON aerofn.rls_roles FROM PUBLIC;

-- aerofn.current_identity() verifies the token that the host set with
-- SET LOCAL aerofn.token in this transaction and returns
-- {"sub", "uid", "role", "claims", "jwt"}, or NULL in a session that is not a function
-- role's. It raises (SQLSTATE 28000) rather than return NULL when a function
-- session's token is missing, forged, for another backend, for another
-- transaction or expired, so that a policy can never mistake a bad token for
-- "no user".
--
-- SECURITY DEFINER because only the owner can read the key; search_path is
-- pinned so that no object a caller could create shadows sha256 or the key
-- table. Not PARALLEL SAFE: pg_backend_pid() must be the leader's. It is the
-- only costly piece (one catalog read, two sha256), so the auth.* helpers
-- below call it once each and policies should wrap them in (SELECT ...), as
-- docs/RLS.md says, to call it once per statement.
CREATE FUNCTION aerofn.current_identity() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	tok   text := current_setting('aerofn.token', true);
	parts text[];
	k     record;
	sub    text;
	claims jsonb;
	ident  jsonb;
BEGIN
	IF tok IS NULL OR tok = '' THEN
		IF EXISTS (SELECT 1 FROM aerofn.rls_roles r WHERE r.rolname = session_user) THEN
			RAISE EXCEPTION 'no identity token in this transaction' USING ERRCODE = '28000';
		END IF;
		RETURN NULL;
	END IF;
	SELECT r.principal, s.ipad, s.opad INTO k
	FROM aerofn.rls_signing_key s LEFT JOIN aerofn.rls_roles r ON r.rolname = session_user
	WHERE s.id = 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no signing key; run aerofn migrate' USING ERRCODE = '28000';
	END IF;
	parts := string_to_array(tok, '|');
	IF coalesce(array_length(parts, 1), 0) <> 8 OR parts[1] <> 'v1' THEN
		RAISE EXCEPTION 'malformed identity token' USING ERRCODE = '28000';
	END IF;
	IF encode(sha256(k.opad || sha256(k.ipad || convert_to(array_to_string(parts[1:7], '|'), 'UTF8'))), 'hex') IS DISTINCT FROM parts[8] THEN
		RAISE EXCEPTION 'identity token signature does not verify' USING ERRCODE = '28000';
	END IF;
	IF k.principal IS DISTINCT FROM parts[3] THEN
		RAISE EXCEPTION 'identity token is for role %, not for this session''s role', parts[3] USING ERRCODE = '28000';
	END IF;
	IF parts[4] IS DISTINCT FROM pg_backend_pid()::text THEN
		RAISE EXCEPTION 'identity token belongs to another connection' USING ERRCODE = '28000';
	END IF;
	IF parts[5] IS DISTINCT FROM ((extract(epoch FROM transaction_timestamp()) * 1000000)::bigint)::text THEN
		RAISE EXCEPTION 'identity token belongs to another transaction' USING ERRCODE = '28000';
	END IF;
	IF parts[6]::bigint < (extract(epoch FROM clock_timestamp()) * 1000)::bigint THEN
		RAISE EXCEPTION 'identity token has expired' USING ERRCODE = '28000';
	END IF;
	sub := nullif(convert_from(decode(parts[2], 'base64'), 'UTF8'), '');
	claims := convert_from(decode(parts[7], 'base64'), 'UTF8')::jsonb;
	ident := jsonb_build_object('sub', sub, 'role', parts[3]);
	RETURN ident || jsonb_build_object(
		-- uid: the sub as a uuid when it is one; NULL otherwise, which never
		-- equals an owner column, so a policy fails closed.
		'uid', CASE WHEN sub ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN sub END,
		-- claims: as the principal carried them; jwt: the same with role and
		-- sub always those of the token (what auth.jwt() returns).
		'claims', claims,
		'jwt', claims || jsonb_strip_nulls(ident));
END
$fn$;

-- The helpers for policies, named as Supabase names them so that policies
-- carry over. Each is one expression in a SQL-standard body: PostgreSQL
-- inlines it into the policy, and its references were bound when it was
-- created, so no search_path can redirect them. They run as the caller;
-- EXECUTE on aerofn.current_identity() is PUBLIC's (Setup grants it) because
-- it only ever tells a session its own identity. Outside a function (the
-- admin, the application's own roles) they return NULL.
-- They read the verified setting, so a trigger function owned by the admin
-- that runs inside a function's write sees the writer's identity too.
CREATE SCHEMA IF NOT EXISTS auth;

-- auth.uid() is the caller's sub as a uuid; NULL without a user or when the
-- sub is not a uuid (auth.sub() has it then).
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT (aerofn.current_identity() ->> 'uid')::uuid;
END;

-- auth.sub() is the caller's sub as text, whatever its form.
CREATE OR REPLACE FUNCTION auth.sub() RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT aerofn.current_identity() ->> 'sub';
END;

-- auth.role() is anon, authenticated or service_role.
CREATE OR REPLACE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT aerofn.current_identity() ->> 'role';
END;

-- auth.jwt() is the caller's verified claims.
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT aerofn.current_identity() -> 'jwt';
END;

-- Identity tokens bound to a window of transaction start (token format v2),
-- and a leaner verifier for auth.uid(), auth.sub() and auth.role().
--
-- A v1 token names the exact transaction_timestamp() of its transaction, so
-- the host must read it after BEGIN before it can sign: a round trip of its
-- own. A v2 token names a window, [not_before, not_after] in microseconds,
-- that the transaction must have started in; the host signs it before BEGIN
-- from its estimate of this server's clock (measured on every connection,
-- off the caller's path), so BEGIN, the token and the statement travel
-- together. The window is about a tenth of a second; the token is still bound
-- to one backend and expires with the call; and a token is only ever readable
-- inside its own transaction. docs/RATIONALE.md weighs the two.
--
-- aerofn.verified_identity() does the verifying and returns the identity as
-- a row (sub, uid, role, claims), so that the helpers a policy calls on every
-- statement no longer build and parse JSON; aerofn.current_identity() keeps
-- its jsonb for auth.jwt(). Everything else is as in 002_rls.sql.

CREATE TYPE aerofn.identity AS (sub text, uid uuid, role text, claims text);

-- Raises (SQLSTATE 28000) when a function session's token is missing,
-- malformed, forged, for another role, backend or transaction, or expired;
-- NULL in a session that is not a function role's. claims is the claims
-- object as JSON text.
CREATE FUNCTION aerofn.verified_identity() RETURNS aerofn.identity
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	tok  text := current_setting('aerofn.token', true);
	p    text[];
	n    int;
	xact bigint;
	k    record;
	sub  text;
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
	p := string_to_array(tok, '|');
	n := cardinality(p);
	IF NOT ((n = 8 AND p[1] = 'v1') OR (n = 9 AND p[1] = 'v2')) THEN
		RAISE EXCEPTION 'malformed identity token' USING ERRCODE = '28000';
	END IF;
	IF encode(sha256(k.opad || sha256(k.ipad || convert_to(left(tok, length(tok) - 65), 'UTF8'))), 'hex') IS DISTINCT FROM p[n] THEN
		RAISE EXCEPTION 'identity token signature does not verify' USING ERRCODE = '28000';
	END IF;
	IF k.principal IS DISTINCT FROM p[3] THEN
		RAISE EXCEPTION 'identity token is for role %, not for this session''s role', p[3] USING ERRCODE = '28000';
	END IF;
	IF p[4] IS DISTINCT FROM pg_backend_pid()::text THEN
		RAISE EXCEPTION 'identity token belongs to another connection' USING ERRCODE = '28000';
	END IF;
	xact := (extract(epoch FROM transaction_timestamp()) * 1000000)::bigint;
	IF n = 8 THEN
		IF p[5] IS DISTINCT FROM xact::text THEN
			RAISE EXCEPTION 'identity token belongs to another transaction' USING ERRCODE = '28000';
		END IF;
	ELSIF NOT (xact BETWEEN p[5]::bigint AND p[6]::bigint) THEN
		RAISE EXCEPTION 'identity token belongs to another transaction (outside its window)' USING ERRCODE = '28000';
	END IF;
	IF p[n-2]::bigint < (extract(epoch FROM clock_timestamp()) * 1000)::bigint THEN
		RAISE EXCEPTION 'identity token has expired' USING ERRCODE = '28000';
	END IF;
	sub := nullif(convert_from(decode(p[2], 'base64'), 'UTF8'), '');
	-- uid: the sub as a uuid when it is one; NULL otherwise, which never
	-- equals an owner column, so a policy fails closed.
	RETURN ROW(sub,
		CASE WHEN sub ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN sub::uuid END,
		p[3],
		convert_from(decode(p[n-1], 'base64'), 'UTF8'))::aerofn.identity;
END
$fn$;

-- {"sub", "uid", "role", "claims", "jwt"} as before, from the verified row.
CREATE OR REPLACE FUNCTION aerofn.current_identity() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	i      aerofn.identity := aerofn.verified_identity();
	claims jsonb;
	ident  jsonb;
BEGIN
	IF i IS NULL THEN
		RETURN NULL;
	END IF;
	claims := i.claims::jsonb;
	ident := jsonb_build_object('sub', i.sub, 'role', i.role);
	RETURN ident || jsonb_build_object(
		'uid', i.uid,
		-- claims: as the principal carried them; jwt: the same with role and
		-- sub always those of the token (what auth.jwt() returns).
		'claims', claims,
		'jwt', claims || jsonb_strip_nulls(ident));
END
$fn$;

-- The helpers that policies call most read the row; one expression each, so
-- that PostgreSQL inlines them.
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT (aerofn.verified_identity()).uid;
END;

CREATE OR REPLACE FUNCTION auth.sub() RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT (aerofn.verified_identity()).sub;
END;

CREATE OR REPLACE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT (aerofn.verified_identity()).role;
END;

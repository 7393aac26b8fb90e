-- Identity tokens bound to a window of transaction start (token format v2),
-- and a leaner verifier.
--
-- A v1 token (002_rls.sql) names the exact transaction_timestamp() of its
-- transaction, so the host must read it after BEGIN before it can sign: a
-- round trip of its own. A v2 token names a window, [not_before, not_after]
-- in microseconds, that the transaction must have started in. The host's
-- slow path still signs one exact instant (not_before = not_after); its fast
-- path signs before BEGIN, from its estimate of this server's clock (measured
-- on every connection, off the caller's path), a window of about a tenth of a
-- second, so that BEGIN, the token and the statement travel together. The
-- token is still bound to one backend and to its database role, expires with
-- the call, and is only ever readable inside its own transaction.
-- docs/RATIONALE.md weighs the two.
--
--   v2|base64(sub)|uid|role|db_role|backend_pid|not_before_us|not_after_us|expires_ms|base64(claims)|hmac
--
-- The host does what needs no secret (uid is the sub in canonical form when
-- it is a UUID; db_role the connection's role), so that the verifier, which
-- every statement under a policy runs, only checks: one read of the key, one
-- HMAC, four comparisons. It returns the identity as a row and leaves the
-- sub and the claims in base64 for the helpers that want them.
-- aerofn.current_identity() keeps its jsonb for auth.jwt(). v1 tokens (signed
-- by aerofn before this migration, during a rolling upgrade) still verify.

CREATE TYPE aerofn.identity AS (uid uuid, role text, sub_b64 text, claims_b64 text);

-- Raises (SQLSTATE 28000) when a function session's token is missing,
-- malformed, forged, for another role, backend or transaction, or expired;
-- NULL in a session that is not a function role's.
CREATE FUNCTION aerofn.verified_identity() RETURNS aerofn.identity
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	tok  text := current_setting('aerofn.token', true);
	p    text[];
	n    int;
	k    record;
	xact bigint;
	sub  text;
BEGIN
	IF tok IS NULL OR tok = '' THEN
		IF EXISTS (SELECT 1 FROM aerofn.rls_roles r WHERE r.rolname = session_user) THEN
			RAISE EXCEPTION 'no identity token in this transaction' USING ERRCODE = '28000';
		END IF;
		RETURN NULL;
	END IF;
	SELECT s.ipad, s.opad INTO k FROM aerofn.rls_signing_key s WHERE s.id = 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no signing key; run aerofn migrate' USING ERRCODE = '28000';
	END IF;
	p := string_to_array(tok, '|');
	n := cardinality(p);
	IF NOT ((n = 11 AND p[1] = 'v2') OR (n = 8 AND p[1] = 'v1')) THEN
		RAISE EXCEPTION 'malformed identity token' USING ERRCODE = '28000';
	END IF;
	-- The HMAC is over everything before its own 64 hex digits and '|'.
	IF encode(sha256(k.opad || sha256(k.ipad || convert_to(left(tok, length(tok) - 65), 'UTF8'))), 'hex') IS DISTINCT FROM p[n] THEN
		RAISE EXCEPTION 'identity token signature does not verify' USING ERRCODE = '28000';
	END IF;
	xact := (extract(epoch FROM transaction_timestamp()) * 1000000)::bigint;
	IF n = 11 THEN
		IF p[5] IS DISTINCT FROM session_user::text THEN
			RAISE EXCEPTION 'identity token is for role %, not for this session''s role', p[5] USING ERRCODE = '28000';
		END IF;
		IF p[6] IS DISTINCT FROM pg_backend_pid()::text THEN
			RAISE EXCEPTION 'identity token belongs to another connection' USING ERRCODE = '28000';
		END IF;
		IF NOT (xact BETWEEN p[7]::bigint AND p[8]::bigint) THEN
			RAISE EXCEPTION 'identity token belongs to another transaction (outside its window)' USING ERRCODE = '28000';
		END IF;
		IF p[9]::bigint < (extract(epoch FROM clock_timestamp()) * 1000)::bigint THEN
			RAISE EXCEPTION 'identity token has expired' USING ERRCODE = '28000';
		END IF;
		RETURN ROW(nullif(p[3], '')::uuid, p[4], p[2], p[10])::aerofn.identity;
	END IF;
	-- v1: v1|base64(sub)|role|backend_pid|xact_start_us|expires_ms|base64(claims)|hmac
	IF NOT EXISTS (SELECT 1 FROM aerofn.rls_roles r WHERE r.rolname = session_user AND r.principal = p[3]) THEN
		RAISE EXCEPTION 'identity token is for role %, not for this session''s role', p[3] USING ERRCODE = '28000';
	END IF;
	IF p[4] IS DISTINCT FROM pg_backend_pid()::text THEN
		RAISE EXCEPTION 'identity token belongs to another connection' USING ERRCODE = '28000';
	END IF;
	IF p[5] IS DISTINCT FROM xact::text THEN
		RAISE EXCEPTION 'identity token belongs to another transaction' USING ERRCODE = '28000';
	END IF;
	IF p[6]::bigint < (extract(epoch FROM clock_timestamp()) * 1000)::bigint THEN
		RAISE EXCEPTION 'identity token has expired' USING ERRCODE = '28000';
	END IF;
	sub := convert_from(decode(p[2], 'base64'), 'UTF8');
	RETURN ROW(CASE WHEN sub ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN sub::uuid END,
		p[3], p[2], p[7])::aerofn.identity;
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
	claims := convert_from(decode(i.claims_b64, 'base64'), 'UTF8')::jsonb;
	ident := jsonb_build_object('sub', nullif(convert_from(decode(i.sub_b64, 'base64'), 'UTF8'), ''), 'role', i.role);
	RETURN ident || jsonb_build_object(
		-- uid: the sub as a uuid when it is one; NULL otherwise, which never
		-- equals an owner column, so a policy fails closed.
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
	SELECT nullif(convert_from(decode((aerofn.verified_identity()).sub_b64, 'base64'), 'UTF8'), '');
END;

CREATE OR REPLACE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT (aerofn.verified_identity()).role;
END;

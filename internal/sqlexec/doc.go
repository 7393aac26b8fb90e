// Package sqlexec runs the SQL of db_query under the row-level security of
// the invocation's principal, so that a hostile function cannot act for
// anyone else: row-level security that a hostile function cannot escape.
// docs/RLS.md is the application developer's side of it, and
// docs/RATIONALE.md ("db_query and row-level security") says why it is
// built this way.
//
// # Walls
//
//  1. Roles. anon, authenticated and service_role (names configurable) are
//     LOGIN roles that are members of no role, one pgx pool each. No SET
//     ROLE can climb from them; only service_role has BYPASSRLS. Setup makes
//     them so on every migrate, and every new connection checks it again.
//  2. Identity. The host signs a token sub|uid|role|database role|backend
//     pid|transaction start window|expiry|claims with a per-database key that
//     no function role can read (package token), sets it with SET LOCAL in
//     the call's own transaction, and aerofn.verified_identity() verifies it
//     for auth.uid(), auth.role(), auth.sub() and (through
//     aerofn.current_identity()) auth.jwt(). A copied or forged token is
//     refused (SQLSTATE 28000) anywhere but its own backend and transaction
//     (the slow path: its exact start; the fast path: a window of about 0.1 s
//     around it).
//  3. Hardening (Setup). No TEMPORARY on the database (nothing can shadow a
//     real table), no CREATE anywhere, EXECUTE revoked on set_config,
//     pg_notify, advisory locks, backend signalling, lo_*, the functions that
//     run SQL text of their own, and the activity functions; pg_stat_activity
//     unreadable; temp_file_limit and idle_in_transaction_session_timeout on
//     the roles; the session settings pinned in the startup packet, which
//     outranks any default a role gives itself.
//  4. The guard (CheckStatement). One SELECT, INSERT, UPDATE or DELETE,
//     optionally led by WITH, judged on PostgreSQL's own tokens; catalogs,
//     aerofn's schema and session-changing functions refused. The extended
//     protocol keeps the statement to one.
//  5. One transaction per call, with a statement_timeout from the call's
//     deadline, and a connection that is reset before reuse or destroyed.
//
// The attack suite (package attacks) shows each wall doing its part: every
// attack through the guard, and what the guard refuses straight against the
// role connection.
//
// # One call
//
// The slow path, for the first call of a statement text (and whenever the
// fast path cannot be used):
//
//	            share  (the function's and the user's count in the role's pool; share.go)
//	               │  at its limit? ── wait in line for one of its own to end, never
//	               │                   past the deadline (or ShareWait): connection_share_exceeded
//	               ▼
//	            acquire (pool of the principal's role; waits at most until ctx's deadline)
//	               │  new connection? ── check role, attributes, memberships, own settings
//	               ▼
//	round trip 1   BEGIN
//	               SELECT pg_backend_pid(), transaction start      ── what the token binds to; a clock reading
//	               Close + Parse + Describe the statement          ── under its name on this connection (connStmts);
//	                                                                  types of params and columns (cached after)
//	               │  unknown type OIDs? ── one pg_type lookup, cached
//	               │  params → text binds for the described types
//	               ▼
//	round trip 2   SET LOCAL aerofn.token = '<signed token: this backend, this exact start>'
//	               SET LOCAL statement_timeout = <deadline − reserve>
//	               Bind + Execute the prepared statement           ── rows stream into JSON under MaxRows/MaxBytes
//	               │  transaction still open ('T')? else destroy
//	               ▼
//	round trip 3   COMMIT
//	               ▼
//	            result (or *Error)
//	   background  CLOSE ALL; RESET ALL; RESET ROLE; UNLISTEN *; DISCARD SEQUENCES;
//	               DISCARD TEMP; pg_advisory_unlock_all(); count of SQL-PREPAREd statements;
//	               clock reading
//	               │  all ok, none PREPAREd, idle ('I')? release : destroy
//
// The fast path (fast.go), once the statement's description is cached and
// the connection has a fresh reading of the server's clock:
//
//	round trip 1   BEGIN
//	               SET LOCAL aerofn.token = '<signed token: this backend, a window of transaction start>'
//	               SET LOCAL statement_timeout = <deadline − reserve>
//	               [Parse, if not yet on this connection] Bind + Describe + Execute
//	               SELECT pg_current_xact_id_if_assigned() IS NULL ── did it write anything? (prepared too)
//	               │  token refused for its window or backend, class-42 error,
//	               │  unknown column type? ── roll back (or drop), run the slow path
//	               ▼
//	wrote nothing: result; COMMIT joins the background reset
//	wrote:         round trip 2  COMMIT, then the result; the reset in the background
//
// Each round trip is one pgconn pipeline ending in a Sync; the reset is one
// simple-protocol message. The reset is DISCARD ALL without DISCARD PLANS and
// DEALLOCATE ALL: plans carry nothing of a caller, and keeping them (the
// verifier's, and the host's prepared statements) saves a re-plan on every
// call.
//
// # Failure modes
//
//	what happens                              reply                       connection
//	guard refuses                             statement_rejected          not touched
//	function or user at its share of the      connection_share_exceeded   not touched
//	  pool until the deadline
//	deadline too close to start               timeout                     not touched
//	no connection before the deadline         timeout                     -
//	server error (syntax, 42501, 28000, ...)  SQLSTATE and message        ROLLBACK + reset, reused
//	wrong number of params, unbindable value  invalid_params              ROLLBACK + reset, reused
//	statement_timeout or cancel (57014)       timeout                     destroyed
//	ctx ends mid-statement                    timeout                     cancel request, destroyed, backend terminated
//	more than MaxRows / MaxBytes              too_many_rows /             destroyed (nothing commits),
//	                                          result_too_large            backend terminated
//	statement ended the transaction           transaction_state           destroyed
//	  (COMMIT, ROLLBACK: only unguarded)
//	COMMIT fails (deferred constraint)        SQLSTATE and message        reset, reused
//	reset fails                               the call's own result       destroyed
//	I/O error, FATAL, unexpected message      unavailable                 destroyed, backend terminated
//	connection lost before COMMIT was sent    the second run's reply      destroyed; the call runs once more
//	  (I/O error, class 08, 57P01-57P03)                                  (idle ones pinged, dead ones dropped)
//
// Pooled connections are not pinged when acquired: each was reset, so seen
// alive, when it was released. A connection that died in the pool (a server
// restart, pg_terminate_backend) shows up as a lost connection in the call's
// first round trip, and nothing is committed before COMMIT, so the call runs
// once more. A connection lost during COMMIT leaves the outcome unknown: the
// call fails and is not run again.
//
// "Backend terminated": the host asks the admin connection to
// pg_terminate_backend the pid, because closing the socket stops a backend
// only when it next writes, and a PL/pgSQL loop can swallow a cancel request
// but not termination.
//
// A new connection whose role has settings Setup did not give it (ALTER ROLE
// self SET is open to every role) is refused; the admin connection resets the
// role's settings first, and the pool connects again.
package sqlexec

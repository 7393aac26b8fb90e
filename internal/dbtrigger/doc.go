// Package dbtrigger runs functions when rows of a table change: every
// committed INSERT, UPDATE and DELETE reaches each subscribed function at
// least once, durably, with retries, dead letters and replay.
//
// # Pieces
//
//   - Hook (registry.Hook) keeps aerofn.event_subscriptions and the capture
//     triggers on each table in step with the functions' configs, inside
//     the deploy/patch/delete transaction.
//   - The capture triggers (migration 004) write each change to
//     aerofn.events in the writer's own transaction, with the writer's
//     identity and txid, and NOTIFY aerofn_events. INSERT and DELETE are
//     statement-level with transition tables; UPDATE is row-level.
//   - The dispatcher, on the leading node, moves captured changes into River
//     jobs (one per change and subscribed function) in the transaction that
//     deletes them from aerofn.events.
//   - The worker (River, on every node) runs one delivery through
//     invoker.Invoke and turns its outcome into River's success, retry,
//     snooze or cancel.
//   - The leader also releases held deliveries, feeds ordered functions
//     one delivery at a time, and rescues the deliveries of dead nodes.
//   - Leading is the cluster node's leadership cluster.EventDispatcher, on
//     the node's session (package cluster), which also listens on
//     aerofn_events for the leader and is the node's liveness: each of its
//     sessions records its backend in aerofn.event_nodes (registerNode).
//
// # A delivery's life
//
//	           writer's transaction commits
//	                       │ (a rollback leaves nothing: never captured)
//	                       ▼
//	                 ┌──────────┐
//	                 │ captured │  row in aerofn.events
//	                 └────┬─────┘
//	                      │ dispatch pass: DELETE … RETURNING + River insert, one transaction
//	      ┌───────────────┴──────────────┐
//	      │ enabled, unordered           │ disabled, or ordered
//	      │                              ▼
//	      │                        ┌──────────┐
//	      │                        │   held   │  row in aerofn.event_backlog
//	      │                        └────┬─────┘
//	      ▼                             │ enabled / the ordered head's turn
//	┌────────────┐◄─────────────────────┘
//	│ dispatched │ fetched by one node  ┌─────────┐
//	│ (available)│─────────────────────►│ running │◄──────────────┐
//	└────────────┘         ┌─────────────────┼──────────────┐     │ backoff
//	                       │ success         │ failure      │     │ 1 s·4ⁿ ±25%
//	                       ▼                 ▼              │     │
//	                ┌───────────┐    attempts left? ──yes──►┌──────────┐
//	                │ succeeded │          │ no             │ retrying │
//	                └───────────┘          ▼                └──────────┘
//	                                ┌──────────┐
//	                                │   dead   │◄── can never succeed (function
//	                                └──────────┘    deleted, module invalid)
//
//	replay (POST …/events/{id}/replay): dead or succeeded ──► dispatched,
//	as one more attempt of the same job.
//
// In River's terms: dispatched = available, running = running, retrying =
// available/retryable after an error, succeeded = completed, dead =
// discarded (attempts used up) or cancelled (river.JobCancel). A running
// delivery whose function has been disabled goes back to held (parked) in
// the transaction that completes its job.
//
// # Guarantees and why they hold
//
//   - No committed change is lost. Capture is part of the writer's
//     transaction. The dispatcher only ever deletes rows it has just
//     inserted as jobs, in the same transaction; it keeps no cursor, so a
//     change whose transaction commits late (a smaller id, visible later)
//     is simply taken by a later pass.
//   - At least once; each delivery handled by one node at a time. River
//     locks a job to one client when it fetches it. A job goes back to
//     available only after a failed attempt, or when the node that ran it
//     has died (below). event_id, the same on every attempt, is the
//     function's idempotency key.
//   - Ordered functions (ordered: true on any of their database triggers)
//     have one delivery in flight at a time, fed from the backlog in
//     dispatch order; a failing head holds the rest back until it succeeds
//     or is dead. Dispatch order is commit order between any two changes
//     where one's transaction saw the other's commit (every pair of
//     changes to one row, every causal chain) and between transactions
//     whose commits are separated by a dispatch pass; two transactions that
//     commit within one pass without seeing each other go in capture order.
//     True total commit order would need track_commit_timestamp or
//     serialised commits (see docs/RATIONALE.md).
//
// # Failure modes
//
//   - Node killed (SIGKILL, OOM, power): its node session closes, its
//     backend leaves pg_stat_activity, and after DeadAfter (2 s) the leader
//     moves the deliveries it was running back to available (or dead, if
//     that was the last attempt), noting it in the job's errors. A delivery
//     whose function had already done its work runs again: a duplicate,
//     only ever for deliveries the crash interrupted. If the dead node led,
//     another takes the leadership within the cluster node's Retry (250 ms);
//     changes captured meanwhile wait in aerofn.events.
//   - Leader frozen (SIGSTOP) or cut off behind a network that still
//     answers keepalives: its session runs no statement, and after 5 s a
//     node that wants the leadership ends it (cluster.Config.StaleAfter).
//   - Node alive but its node session lost (network partition): it
//     reconnects and re-registers; if that takes longer than DeadAfter its
//     running deliveries may be handed out twice. At least once still holds.
//   - Postgres down: writers cannot commit, so nothing is captured; the
//     dispatcher and workers retry; River's retries resume when it returns.
//   - Function disabled: deliveries are held (listed as held), capture
//     continues; enable releases them, oldest first.
//   - Function deleted: its held deliveries go with it; jobs already queued
//     are cancelled when they run. A function deployed again under the same
//     name is a new function (new id) and gets only new changes.
//   - Module cannot run (invalid, missing, corrupt): dead at once
//     (river.JobCancel), no retries. Node over its concurrency limit:
//     snoozed briefly, no attempt spent.
//   - Table dropped: its triggers go with it, and the next change of the
//     function (a patch, a deploy) drops the subscription; a new config
//     that names the table is refused (400).
//   - A change made with session_replication_role = replica (logical
//     replication apply, some restores) does not fire triggers and is not
//     captured; TRUNCATE is not captured.
package dbtrigger

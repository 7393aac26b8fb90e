// Package scheduler runs cron-triggered functions: each due tick of each
// schedule trigger runs once, whatever the number of nodes and whoever
// crashes, and every tick leaves a row that says what became of it.
//
// Expressions, timezones and daylight saving are the business of the pure
// package cronspec; this package stores schedules, turns due ticks into runs
// and runs them through the invoker, the one path every trigger takes.
//
// # Tables
//
//	aerofn.schedules      one row per schedule trigger (function_id, trigger_index):
//	                      cron, timezone, catch_up, overlap, enabled, next_tick.
//	                      Written only by Hook, in the registry's transaction, and
//	                      next_tick by the ticker.
//	aerofn.schedule_runs  one row per handled tick, PRIMARY KEY (function_id,
//	                      trigger_index, scheduled_time): a tick can be inserted
//	                      once across all nodes, and a second insert is a no-op.
//
// # Roles
//
// The scheduler runs on the node's cluster.Node, its one dedicated session
// (application_name "aerofn node <name>"), which holds two kinds of
// session-level advisory lock (internal/cluster/locks.go):
//
//   - the node's liveness lock (cluster.NodeSpace, Node.Key()), for as long
//     as the node lives. A run claimed by a node records the node's name and
//     key; a run whose key is no longer locked belongs to a dead node.
//   - the ticker lock (cluster.NodeSpace, 0), the leadership cluster.Ticker,
//     which one node holds. The others try for it every 250 ms. A killed
//     node's session ends with its TCP connection, so its locks free at once
//     and another node ticks within a quarter of a second.
//
// Ticks, sweeps and claims run on that session too (cluster.Node.Do), in
// transactions of the backend that holds the locks: a tick commits only
// while its node holds the ticker lock, a claim only while its node's
// liveness lock is held, and ending a frozen node's session ends its
// half-done transactions with its locks. Pruning, finishing and handing back
// runs, and the API's reads go through the pool.
//
// The ticker, in one transaction, locks the due schedules (FOR UPDATE SKIP
// LOCKED), inserts their due ticks as runs, advances next_tick, and notifies
// WakeChannel. Every node (the ticker too) listens on WakeChannel on its
// session (Node.Listen) and polls every 250 ms, and claims pending runs.
// Correctness never rests on there being one ticker: two tickers insert the
// same primary keys, and the second insert does nothing.
//
// # A run's states
//
//	ticker, due tick ─┬─► skipped_overlap   overlap "skip" and a run of the trigger
//	                  │                     is going; or overlap "queue" and
//	                  │                     MaxQueued runs already wait
//	                  ├─► skipped_missed    catch_up "skip": one row standing for
//	                  │                     the ticks missed while no node was up
//	                  ▼
//	               pending ────────────► cancelled   disable, delete or trigger
//	                  │                              removed (Hook, same transaction)
//	                  │ claim, on any node: schedule row locked, enabled, no run
//	                  │ of the trigger going, oldest first; COMMITTED before the call
//	                  ▼
//	               running ─┬──────────► pending     node at its concurrency limit:
//	                        │                        nothing started, claimed again
//	                        ├──────────► cancelled   function disabled or deleted
//	                        │                        between claim and call
//	         ┌──────────────┼──────────────┐
//	         ▼              ▼              ▼
//	     succeeded       failed       interrupted    its node died (liveness lock
//	                  (error, timeout,               gone); never run again
//	                   memory limit)
//
// Each row says why it is in its state in note (a skip, a catch-up, a
// cancellation, an interruption) and why the call failed in error.
//
// POST /admin/v1/functions/{name}/run inserts a "manual" run directly as running on
// the node that serves the request. A catch-up run (catch_up "once") is a
// pending run of kind catch_up at the latest missed tick, with missed_count.
//
// # Exactly once per tick
//
// "Exactly once" is read as: every due tick is recorded exactly once, and is
// started at most once. The insert is exactly once because of the primary
// key and because the ticker moves next_tick in the same transaction as it
// inserts: a ticker that dies before committing leaves next_tick where it
// was, and the next ticker inserts the same ticks. The start is at most once
// because the claim commits before the call: a node that dies after the
// claim leaves a running row that the sweeper marks interrupted; nothing can
// tell whether the function had already written its effects, and running it
// a second time is the failure users of other platforms complain of. Retrying
// would make the start at-least-once (a queue such as River's) and turns a
// crash into a double run.
//
// # Failure modes
//
//   - Ticker killed (SIGKILL, crash): its session ends with its TCP
//     connection, the lock frees, the next node takes it within 250 ms
//     (cluster's Retry) and ticks what is due; ticks late by less than Grace
//     all run, one by one.
//   - Ticker frozen (SIGSTOP, a hung machine) or cut off behind a network
//     that still answers keepalives: its session keeps the lock but runs no
//     statement; after 5 s another node ends that session
//     (pg_terminate_backend) and takes over, well within Grace. A tick or
//     claim the frozen node had begun ends with that session, so none of its
//     row locks stands in the new ticker's way and none of its writes
//     commits. A machine that vanishes is dropped by the server's TCP
//     keepalives and tcp_user_timeout, set on the session, within about 10 s.
//   - Every node down: on restart the ticker finds next_tick far in the past.
//     Ticks older than Grace are missed: catch_up "once" inserts one run at
//     the latest missed tick standing for them all (missed_count), "skip"
//     records one skipped_missed row. Then next_tick moves past now.
//   - Node killed mid-run: the run is marked interrupted within a second
//     (sweep); the trigger is free for its next tick.
//   - Node session lost while runs go on (network blip): the sweeper may
//     mark them interrupted; when they end, their real outcome replaces it.
//     Until the node has its session back it neither ticks nor claims.
//   - Database unreachable: no ticks are inserted and no runs claimed; when it
//     returns, late ticks run and missed ones follow catch_up.
//   - Function disabled or deleted: Hook disables or removes the schedule and
//     cancels pending runs in the same transaction; a claim locks the
//     schedule row and checks enabled, and the invoker's lookup is refreshed
//     before the call, so nothing starts after the change commits.
//   - Node at its concurrency limit: the claimed run never started, so it is
//     handed back as pending and this node leaves runs to others for 200 ms.
//   - Clocks disagree: due-ness is decided by the database clock; nodes only
//     use their own clock to sleep, corrected by the measured offset.
package scheduler

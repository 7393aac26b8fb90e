package dbtrigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/aerodb/aerofn/internal/cluster"
)

// dispatchAll runs dispatch passes until one finds less than a full batch.
func (s *Service) dispatchAll(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := s.dispatchPass(ctx)
		if err != nil {
			return err
		}
		if n < s.cfg.BatchSize {
			return nil
		}
	}
	return ctx.Err()
}

// sub is a subscription as the dispatcher needs it.
type sub struct {
	functionID, function string
	enabled, ordered     bool // ordered: any of the function's subscriptions is
	ops                  []string
	maxAttempts          int
}

// dispatchPass moves the oldest captured changes (by id) into deliveries,
// in one transaction: the rows are deleted from aerofn.events as the River
// jobs (or backlog rows) that carry them are inserted, so a change is
// dispatched exactly once and nothing is lost in between. Only committed
// changes are visible; one whose transaction commits later is simply taken
// by a later pass, since nothing here keeps a cursor that could pass it by.
func (s *Service) dispatchPass(ctx context.Context) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.cfg.Pool, func(tx pgx.Tx) error {
		// Only the leader dispatches, but a leader that lost its node
		// connection may still be finishing a pass when the next one starts:
		// the lock keeps passes one after another, which the ordering
		// argument needs.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, cluster.EventDispatch); err != nil {
			return fmt.Errorf("taking dispatch lock: %w", err)
		}
		rows, err := tx.Query(ctx, `DELETE FROM aerofn.events WHERE id IN (SELECT id FROM aerofn.events ORDER BY id LIMIT $1)
			RETURNING id, table_oid, schema_name::text, table_name::text, op, old, new, writer, txid::text, captured_at`, s.cfg.BatchSize)
		if err != nil {
			return fmt.Errorf("taking captured changes: %w", err)
		}
		var changes []Change
		for rows.Next() {
			var c Change
			var writer []byte
			var txid string
			if err := rows.Scan(&c.EventID, &c.TableOID, &c.Schema, &c.Table, &c.Op, &c.Old, &c.New, &writer, &txid, &c.CapturedAt); err != nil {
				rows.Close()
				return fmt.Errorf("reading captured change: %w", err)
			}
			if len(writer) > 0 {
				c.Writer = &Writer{}
				if err := json.Unmarshal(writer, c.Writer); err != nil {
					c.Writer = nil // an identity we cannot read is no identity
				}
			}
			c.TxID, _ = strconv.ParseUint(txid, 10, 64)
			changes = append(changes, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("taking captured changes: %w", err)
		}
		n = len(changes)
		if n == 0 {
			return nil
		}
		// DELETE ... RETURNING gives no order; deliveries go in capture order.
		slices.SortFunc(changes, func(a, b Change) int { return cmpInt64(a.EventID, b.EventID) })
		subs, err := loadSubscriptions(ctx, tx)
		if err != nil {
			return err
		}
		var jobs []river.InsertManyParams
		var held [][]any
		ordered := map[string]sub{}
		for _, c := range changes {
			for _, sb := range subs[c.TableOID] {
				if !slices.Contains(sb.ops, c.Op) {
					continue
				}
				if sb.enabled && !sb.ordered {
					jobs = append(jobs, river.InsertManyParams{
						Args:       deliveryArgs{FunctionID: sb.functionID, Function: sb.function, EventID: c.EventID, Change: c},
						InsertOpts: &river.InsertOpts{Queue: QueueName, MaxAttempts: sb.maxAttempts},
					})
					continue
				}
				b, err := json.Marshal(c)
				if err != nil {
					return fmt.Errorf("encoding change %d: %w", c.EventID, err)
				}
				held = append(held, []any{sb.functionID, c.EventID, sb.maxAttempts, b})
				if sb.ordered {
					ordered[sb.functionID] = sb
				}
			}
		}
		if len(jobs) > 0 {
			if _, err := s.client.InsertManyFastTx(ctx, tx, jobs); err != nil {
				return fmt.Errorf("queueing %d deliveries: %w", len(jobs), err)
			}
		}
		if len(held) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"aerofn", "event_backlog"}, []string{"function_id", "event_id", "max_attempts", "change"},
				pgx.CopyFromRows(held)); err != nil {
				return fmt.Errorf("holding %d deliveries: %w", len(held), err)
			}
		}
		for _, sb := range ordered {
			if err := s.advanceOrdered(ctx, tx, sb.functionID, sb.function, sb.enabled); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// loadSubscriptions reads every subscription by table.
func loadSubscriptions(ctx context.Context, tx pgx.Tx) (map[uint32][]sub, error) {
	rows, err := tx.Query(ctx, `SELECT s.table_oid, s.function_id::text, f.name, f.enabled, s.ops, s.max_attempts,
			bool_or(s.ordered) OVER (PARTITION BY s.function_id)
		FROM aerofn.event_subscriptions s JOIN aerofn.functions f ON f.id = s.function_id`)
	if err != nil {
		return nil, fmt.Errorf("reading subscriptions: %w", err)
	}
	defer rows.Close()
	out := map[uint32][]sub{}
	for rows.Next() {
		var oid uint32
		var sb sub
		if err := rows.Scan(&oid, &sb.functionID, &sb.function, &sb.enabled, &sb.ops, &sb.maxAttempts, &sb.ordered); err != nil {
			return nil, fmt.Errorf("reading subscriptions: %w", err)
		}
		out[oid] = append(out[oid], sb)
	}
	return out, rows.Err()
}

// releaseHeld moves the held deliveries of enabled, unordered functions into
// River, oldest first, a batch per transaction.
func (s *Service) releaseHeld(ctx context.Context) error {
	rows, err := s.cfg.Pool.Query(ctx, `SELECT f.id::text, f.name FROM aerofn.functions f
		WHERE f.enabled
			AND EXISTS (SELECT 1 FROM aerofn.event_backlog b WHERE b.function_id = f.id)
			AND NOT EXISTS (SELECT 1 FROM aerofn.event_subscriptions s WHERE s.function_id = f.id AND s.ordered)`)
	if err != nil {
		return fmt.Errorf("finding held deliveries: %w", err)
	}
	type fnRef struct{ id, name string }
	fns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fnRef, error) {
		var f fnRef
		return f, r.Scan(&f.id, &f.name)
	})
	if err != nil {
		return fmt.Errorf("finding held deliveries: %w", err)
	}
	for _, f := range fns {
		for ctx.Err() == nil {
			var n int
			err := pgx.BeginFunc(ctx, s.cfg.Pool, func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, `DELETE FROM aerofn.event_backlog WHERE seq IN (
						SELECT seq FROM aerofn.event_backlog WHERE function_id = $1 ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED)
					RETURNING event_id, max_attempts, change`, f.id, s.cfg.BatchSize)
				if err != nil {
					return fmt.Errorf("taking held deliveries: %w", err)
				}
				var jobs []river.InsertManyParams
				for rows.Next() {
					var a deliveryArgs
					var maxAttempts int
					var change []byte
					if err := rows.Scan(&a.EventID, &maxAttempts, &change); err != nil {
						rows.Close()
						return fmt.Errorf("reading held delivery: %w", err)
					}
					if err := json.Unmarshal(change, &a.Change); err != nil {
						rows.Close()
						return fmt.Errorf("decoding held delivery %d: %w", a.EventID, err)
					}
					a.FunctionID, a.Function = f.id, f.name
					jobs = append(jobs, river.InsertManyParams{Args: a, InsertOpts: &river.InsertOpts{Queue: QueueName, MaxAttempts: maxAttempts}})
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return fmt.Errorf("taking held deliveries: %w", err)
				}
				n = len(jobs)
				slices.SortFunc(jobs, func(a, b river.InsertManyParams) int {
					return cmpInt64(a.Args.(deliveryArgs).EventID, b.Args.(deliveryArgs).EventID)
				})
				if n > 0 {
					if _, err := s.client.InsertManyFastTx(ctx, tx, jobs); err != nil {
						return fmt.Errorf("queueing held deliveries: %w", err)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			if n < s.cfg.BatchSize {
				break
			}
		}
	}
	return nil
}

// advanceAllOrdered makes sure every ordered function with a backlog has
// its head in flight: the safety net for a head whose job ended without
// advancing (its node died, or River's rescuer discarded it).
func (s *Service) advanceAllOrdered(ctx context.Context) error {
	rows, err := s.cfg.Pool.Query(ctx, `SELECT f.id::text, f.name, f.enabled FROM aerofn.functions f
		WHERE EXISTS (SELECT 1 FROM aerofn.event_backlog b WHERE b.function_id = f.id)
			AND EXISTS (SELECT 1 FROM aerofn.event_subscriptions s WHERE s.function_id = f.id AND s.ordered)`)
	if err != nil {
		return fmt.Errorf("finding ordered functions: %w", err)
	}
	type fnRef struct {
		id, name string
		enabled  bool
	}
	fns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fnRef, error) {
		var f fnRef
		return f, r.Scan(&f.id, &f.name, &f.enabled)
	})
	if err != nil {
		return fmt.Errorf("finding ordered functions: %w", err)
	}
	for _, f := range fns {
		if err := pgx.BeginFunc(ctx, s.cfg.Pool, func(tx pgx.Tx) error {
			return s.advanceOrdered(ctx, tx, f.id, f.name, f.enabled)
		}); err != nil {
			return err
		}
	}
	return nil
}

// advanceOrdered puts an ordered function's next delivery in flight when
// none is: it drops heads whose job has ended, and queues a job for the
// first one without a job (when the function is enabled). One job at a
// time per function is what makes delivery ordered; the function's lock
// keeps the dispatcher and the workers from advancing it at once.
func (s *Service) advanceOrdered(ctx context.Context, tx pgx.Tx, functionID, function string, enabled bool) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+cluster.OrderedKeySQL+`)`, functionID); err != nil {
		return fmt.Errorf("locking ordered deliveries of %s: %w", function, err)
	}
	for {
		var (
			seq, eventID int64
			maxAttempts  int
			change       []byte
			jobID        *int64
		)
		err := tx.QueryRow(ctx, `SELECT seq, event_id, max_attempts, change, job_id FROM aerofn.event_backlog
			WHERE function_id = $1 ORDER BY seq LIMIT 1`, functionID).Scan(&seq, &eventID, &maxAttempts, &change, &jobID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading head of %s: %w", function, err)
		}
		if jobID != nil {
			job, err := s.client.JobGetTx(ctx, tx, *jobID)
			if err != nil && !errors.Is(err, river.ErrNotFound) {
				return fmt.Errorf("reading job of %s's head: %w", function, err)
			}
			if err == nil && !finalized(job.State) {
				return nil // in flight
			}
			if _, err := tx.Exec(ctx, `DELETE FROM aerofn.event_backlog WHERE seq = $1`, seq); err != nil {
				return fmt.Errorf("dropping ended head of %s: %w", function, err)
			}
			continue
		}
		if !enabled {
			return nil
		}
		a := deliveryArgs{FunctionID: functionID, Function: function, EventID: eventID, Seq: seq}
		if err := json.Unmarshal(change, &a.Change); err != nil {
			return fmt.Errorf("decoding held delivery %d: %w", eventID, err)
		}
		res, err := s.client.InsertTx(ctx, tx, a, &river.InsertOpts{Queue: QueueName, MaxAttempts: maxAttempts})
		if err != nil {
			return fmt.Errorf("queueing head of %s: %w", function, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE aerofn.event_backlog SET job_id = $2 WHERE seq = $1`, seq, res.Job.ID); err != nil {
			return fmt.Errorf("marking head of %s in flight: %w", function, err)
		}
		return nil
	}
}

func finalized(s rivertype.JobState) bool {
	return s == rivertype.JobStateCompleted || s == rivertype.JobStateDiscarded || s == rivertype.JobStateCancelled
}

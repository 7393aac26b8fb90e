package dbtrigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/aerodb/aerofn/internal/cluster"
	"github.com/aerodb/aerofn/internal/db"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/invoker"
)

// worker runs one delivery: one change, one function, one attempt.
type worker struct {
	river.WorkerDefaults[deliveryArgs]
	svc *Service
}

// NextRetry implements river.Worker: exponential backoff with jitter.
func (w *worker) NextRetry(job *river.Job[deliveryArgs]) time.Time {
	return time.Now().Add(backoff(w.svc.cfg.RetryBase, w.svc.cfg.RetryMax, job.Attempt))
}

// Work implements river.Worker. A nil return is success; an error is a
// failed attempt (River retries it with NextRetry's backoff until
// max_attempts, then discards it: a dead letter); JobCancel is a failure
// that can never succeed and goes to the dead letters at once; JobSnooze
// tries again later without spending an attempt.
func (w *worker) Work(ctx context.Context, job *river.Job[deliveryArgs]) error {
	a := job.Args
	ev, err := a.Change.EventJSON(job.Attempt)
	if err != nil {
		return river.JobCancel(err)
	}
	// Background work may wait for a compile (when no node left an
	// artifact), where an HTTP call would be refused.
	out, err := w.svc.cfg.Invoker.Invoke(ctx, a.Function, invoker.Call{Trigger: TriggerType, FunctionID: a.FunctionID, Event: ev,
		Principal: a.Change.Principal(), RequestID: strconv.FormatInt(a.EventID, 10), WaitForCompile: true})
	switch {
	case errors.Is(err, invoker.ErrNotFound):
		// Deleted, or deleted and deployed again under the same name.
		return river.JobCancel(fmt.Errorf("function %s (%s) no longer exists", a.Function, a.FunctionID))
	case errors.Is(err, invoker.ErrDisabled):
		return w.park(ctx, job)
	case invoker.Retryable(err):
		return river.JobSnooze(time.Duration(50+mrand.IntN(100)) * time.Millisecond)
	case err != nil:
		return fmt.Errorf("invoking %s: %w", a.Function, err)
	case errors.Is(out.Err, invoker.ErrLoad):
		// It will never load: every further attempt would fail the same way.
		err = fmt.Errorf("function %s (invocation %s): %w", a.Function, out.ID, out.Err)
		if aerr := w.endOrdered(ctx, job); aerr != nil {
			return errors.Join(err, aerr) // retried: the head must not be left behind
		}
		return river.JobCancel(err)
	}
	fn := out.Function
	if out.Status != engine.StatusSuccess {
		// River keeps the error in a jsonb column, which refuses NUL: the
		// guest's text is made valid first, or the completion would fail
		// and with it the batch of other jobs River completes beside it.
		ferr := fmt.Errorf("function %s ended %s (invocation %s): %s", fn.Name, out.Status, out.ID, db.Truncate(db.Text(out.Error), 2000))
		if job.Attempt >= job.MaxAttempts {
			if err := w.endOrdered(ctx, job); err != nil {
				return errors.Join(ferr, err)
			}
		}
		return ferr
	}
	if a.Seq != 0 {
		return w.completeOrdered(ctx, job)
	}
	return nil
}

// park holds a delivery of a disabled function until it is enabled: back
// into the backlog, in the transaction that completes the job. An ordered
// head stays the head, only without a job.
func (w *worker) park(ctx context.Context, job *river.Job[deliveryArgs]) error {
	a := job.Args
	return pgx.BeginFunc(ctx, w.svc.cfg.Pool, func(tx pgx.Tx) error {
		parked := false
		if a.Seq != 0 {
			tag, err := tx.Exec(ctx, `UPDATE aerofn.event_backlog SET job_id = NULL WHERE seq = $1 AND job_id = $2`, a.Seq, job.ID)
			if err != nil {
				return fmt.Errorf("parking ordered delivery %d: %w", a.EventID, err)
			}
			parked = tag.RowsAffected() == 1
		}
		if !parked {
			b, err := json.Marshal(a.Change)
			if err != nil {
				return fmt.Errorf("encoding change %d: %w", a.EventID, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO aerofn.event_backlog (function_id, event_id, max_attempts, change) VALUES ($1, $2, $3, $4)`,
				a.FunctionID, a.EventID, job.MaxAttempts, b); err != nil {
				return fmt.Errorf("holding delivery %d: %w", a.EventID, err)
			}
		}
		if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
			return fmt.Errorf("completing parked delivery %d: %w", a.EventID, err)
		}
		return nil
	})
}

// completeOrdered finishes an ordered function's head: the job completes,
// the head leaves the backlog and the next one is queued, all in one
// transaction, so the function never has two deliveries in flight and
// never none while it has a backlog.
func (w *worker) completeOrdered(ctx context.Context, job *river.Job[deliveryArgs]) error {
	return pgx.BeginFunc(ctx, w.svc.cfg.Pool, func(tx pgx.Tx) error {
		if err := w.advancePast(ctx, tx, job); err != nil {
			return err
		}
		if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
			return fmt.Errorf("completing ordered delivery %d: %w", job.Args.EventID, err)
		}
		return nil
	})
}

// endOrdered moves an ordered function past a head that is about to become
// a dead letter (River records that when Work returns; should this node die
// first, the leader's safety net finds the job ended and advances).
func (w *worker) endOrdered(ctx context.Context, job *river.Job[deliveryArgs]) error {
	if job.Args.Seq == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, w.svc.cfg.Pool, func(tx pgx.Tx) error { return w.advancePast(ctx, tx, job) })
}

// advancePast drops job's head and queues the next one, when job is the
// head; a replayed or duplicated delivery is not, and moves nothing.
func (w *worker) advancePast(ctx context.Context, tx pgx.Tx, job *river.Job[deliveryArgs]) error {
	a := job.Args
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+cluster.OrderedKeySQL+`)`, a.FunctionID); err != nil {
		return fmt.Errorf("locking ordered deliveries of %s: %w", a.Function, err)
	}
	tag, err := tx.Exec(ctx, `DELETE FROM aerofn.event_backlog WHERE seq = $1 AND job_id = $2`, a.Seq, job.ID)
	if err != nil {
		return fmt.Errorf("dropping head of %s: %w", a.Function, err)
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	var enabled bool
	if err := tx.QueryRow(ctx, `SELECT enabled FROM aerofn.functions WHERE id = $1`, a.FunctionID).Scan(&enabled); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return fmt.Errorf("reading function %s: %w", a.Function, err)
	}
	return w.svc.advanceOrdered(ctx, tx, a.FunctionID, a.Function, enabled)
}

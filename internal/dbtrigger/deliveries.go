package dbtrigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/aerodb/aerofn/internal/registry"
)

// Delivery states as the API shows them. A delivery is one change on its
// way to one function.
const (
	StateHeld      = "held"      // waiting in the backlog: the function is disabled, or ordered and not at this one yet
	StatePending   = "pending"   // queued, not tried yet
	StateRunning   = "running"   // a node is running it
	StateRetrying  = "retrying"  // failed, will be tried again after a backoff
	StateSucceeded = "succeeded" // the function succeeded
	StateDead      = "dead"      // failed on every attempt, or could never succeed: a dead letter
)

var riverStates = map[string][]rivertype.JobState{
	StatePending:   {rivertype.JobStateAvailable, rivertype.JobStateScheduled, rivertype.JobStatePending},
	StateRunning:   {rivertype.JobStateRunning},
	StateRetrying:  {rivertype.JobStateRetryable, rivertype.JobStateAvailable, rivertype.JobStateScheduled},
	StateSucceeded: {rivertype.JobStateCompleted},
	StateDead:      {rivertype.JobStateDiscarded, rivertype.JobStateCancelled},
}

func stateOf(j *rivertype.JobRow) string {
	switch j.State {
	case rivertype.JobStateRunning:
		return StateRunning
	case rivertype.JobStateCompleted:
		return StateSucceeded
	case rivertype.JobStateDiscarded, rivertype.JobStateCancelled:
		return StateDead
	case rivertype.JobStateRetryable:
		return StateRetrying
	}
	if j.Attempt > 0 {
		return StateRetrying
	}
	return StatePending
}

// Delivery is one entry of GET /admin/v1/functions/{name}/events.
type Delivery struct {
	EventID     string                   `json:"id"`
	JobID       int64                    `json:"job_id,omitempty"`
	State       string                   `json:"state"`
	Table       string                   `json:"table"`
	Operation   string                   `json:"operation"`
	Old         json.RawMessage          `json:"old,omitempty"`
	New         json.RawMessage          `json:"new,omitempty"`
	Writer      *Writer                  `json:"writer,omitempty"`
	CapturedAt  time.Time                `json:"captured_at"`
	Attempt     int                      `json:"attempt"`
	MaxAttempts int                      `json:"max_attempts"`
	Errors      []rivertype.AttemptError `json:"errors,omitempty"`
	LastError   string                   `json:"last_error,omitempty"`
	FinalizedAt *time.Time               `json:"finalized_at,omitempty"`
}

func deliveryFromJob(j *rivertype.JobRow) (Delivery, error) {
	var a deliveryArgs
	if err := json.Unmarshal(j.EncodedArgs, &a); err != nil {
		return Delivery{}, fmt.Errorf("decoding delivery %d: %w", j.ID, err)
	}
	d := deliveryFromChange(a.Change)
	d.JobID, d.State, d.Attempt, d.MaxAttempts, d.Errors, d.FinalizedAt = j.ID, stateOf(j), j.Attempt, j.MaxAttempts, j.Errors, j.FinalizedAt
	if len(j.Errors) > 0 {
		d.LastError = j.Errors[len(j.Errors)-1].Error
	}
	return d, nil
}

func deliveryFromChange(c Change) Delivery {
	return Delivery{EventID: strconv.FormatInt(c.EventID, 10), Table: c.Schema + "." + c.Table, Operation: c.Op,
		Old: c.Old, New: c.New, Writer: c.Writer, CapturedAt: c.CapturedAt}
}

// Why Deliveries or Replay refused; each error's text is the whole
// message for people, and errors.Is tells which.
var (
	// ErrInvalidState: Deliveries was asked for a state that is not one of
	// the States.
	ErrInvalidState = errors.New("invalid delivery state")
	// ErrNoDelivery: the function has no delivery of that event (any more).
	ErrNoDelivery = errors.New("no such delivery")
	// ErrNotReplayable: the delivery is still pending, running or retrying.
	ErrNotReplayable = errors.New("delivery cannot be replayed yet")
)

// States are the states Deliveries accepts.
var States = []string{StateHeld, StatePending, StateRunning, StateRetrying, StateSucceeded, StateDead}

// refusal is an error whose text is its message and whose kind is one of
// the errors above.
type refusal struct {
	kind error
	msg  string
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.kind }

func refuse(kind error, format string, args ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Deliveries lists fn's deliveries, newest first, at most limit. state is
// one of States; "" means all but held.
func (s *Service) Deliveries(ctx context.Context, fn registry.Function, state string, limit int) ([]Delivery, error) {
	var out []Delivery
	var err error
	switch {
	case state == StateHeld:
		out, err = s.listHeld(ctx, fn, limit)
	case state == "" || riverStates[state] != nil:
		out, err = s.listJobs(ctx, fn, state, limit)
	default:
		return nil, refuse(ErrInvalidState, "state %q is not one of held, pending, running, retrying, succeeded, dead", state)
	}
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []Delivery{}
	}
	return out, nil
}

func functionFilter(fn registry.Function, eventID int64) string {
	m := map[string]any{"function_id": fn.ID}
	if eventID != 0 {
		m["event_id"] = eventID
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func (s *Service) listJobs(ctx context.Context, fn registry.Function, state string, limit int) ([]Delivery, error) {
	p := river.NewJobListParams().Kinds(JobKind).First(limit).OrderBy(river.JobListOrderByID, river.SortOrderDesc).
		Where("args @> @filter::jsonb", river.NamedArgs{"filter": functionFilter(fn, 0)})
	if state != "" {
		p = p.States(riverStates[state]...)
		switch state {
		case StatePending:
			p = p.Where("attempt = 0")
		case StateRetrying:
			p = p.Where("(state = 'retryable' OR attempt > 0)")
		}
	}
	res, err := s.client.JobList(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("listing deliveries of %s: %w", fn.Name, err)
	}
	out := make([]Delivery, 0, len(res.Jobs))
	for _, j := range res.Jobs {
		d, err := deliveryFromJob(j)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func (s *Service) listHeld(ctx context.Context, fn registry.Function, limit int) ([]Delivery, error) {
	rows, err := s.cfg.Pool.Query(ctx, `SELECT change, max_attempts FROM aerofn.event_backlog
		WHERE function_id = $1 AND job_id IS NULL ORDER BY seq DESC LIMIT $2`, fn.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("listing held deliveries of %s: %w", fn.Name, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) {
		var b []byte
		var maxAttempts int
		if err := r.Scan(&b, &maxAttempts); err != nil {
			return Delivery{}, fmt.Errorf("listing held deliveries: %w", err)
		}
		var c Change
		if err := json.Unmarshal(b, &c); err != nil {
			return Delivery{}, fmt.Errorf("decoding held delivery: %w", err)
		}
		d := deliveryFromChange(c)
		d.State, d.MaxAttempts = StateHeld, maxAttempts
		return d, nil
	})
}

// Replay runs a dead (or succeeded) delivery of event id to fn again, as
// one more attempt of the same job, so it leaves the dead letters when it
// succeeds and returns to them when it fails. An ordered function's replay
// runs beside its stream, not in its place. It returns the delivery as it
// is once queued again.
func (s *Service) Replay(ctx context.Context, fn registry.Function, id int64) (Delivery, error) {
	res, err := s.client.JobList(ctx, river.NewJobListParams().Kinds(JobKind).First(10).OrderBy(river.JobListOrderByID, river.SortOrderDesc).
		Where("args @> @filter::jsonb", river.NamedArgs{"filter": functionFilter(fn, id)}))
	if err != nil {
		return Delivery{}, fmt.Errorf("finding event %d of %s: %w", id, fn.Name, err)
	}
	if len(res.Jobs) == 0 {
		return Delivery{}, refuse(ErrNoDelivery, "function %q has no delivery of event %d (deliveries are kept 24 h after success, 30 days when dead)", fn.Name, id)
	}
	var target *rivertype.JobRow
	for _, j := range res.Jobs {
		switch stateOf(j) {
		case StateDead, StateSucceeded:
			if target == nil {
				target = j
			}
		default:
			return Delivery{}, refuse(ErrNotReplayable, "event %d of %q is %s; only dead or succeeded deliveries can be replayed", id, fn.Name, stateOf(j))
		}
	}
	job, err := s.client.JobRetry(ctx, target.ID)
	if errors.Is(err, river.ErrNotFound) {
		return Delivery{}, refuse(ErrNoDelivery, "delivery of event %d is gone", id)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("replaying event %d of %s: %w", id, fn.Name, err)
	}
	return deliveryFromJob(job)
}

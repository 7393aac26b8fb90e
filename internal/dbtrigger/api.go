package dbtrigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/aerodb/aerofn/internal/httpapi"
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

// Routes are the API's per-function routes for database events.
func (s *Service) Routes() []httpapi.Route {
	return []httpapi.Route{
		{Method: http.MethodGet, Suffix: "events", Handler: s.listHandler},
		{Method: http.MethodPost, Suffix: "events/*/replay", Handler: s.replayHandler},
	}
}

func apiErr(status int, code, format string, args ...any) error {
	return &httpapi.Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// listHandler serves GET /admin/v1/functions/{name}/events?state=dead&limit=100:
// the function's deliveries, newest first. state is one of held, pending,
// running, retrying, succeeded, dead; without it, all but held.
func (s *Service) listHandler(w http.ResponseWriter, r *http.Request, fn registry.Function, _ []string) error {
	state := r.URL.Query().Get("state")
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return apiErr(http.StatusBadRequest, "invalid_limit", "limit %q is not a number from 1 to 1000", v)
		}
		limit = n
	}
	var out []Delivery
	var err error
	switch {
	case state == StateHeld:
		out, err = s.listHeld(r.Context(), fn, limit)
	case state == "" || riverStates[state] != nil:
		out, err = s.listJobs(r.Context(), fn, state, limit)
	default:
		return apiErr(http.StatusBadRequest, "invalid_state", "state %q is not one of held, pending, running, retrying, succeeded, dead", state)
	}
	if err != nil {
		return err
	}
	if out == nil {
		out = []Delivery{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"function": fn.Name, "state": state, "count": len(out), "events": out})
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

// replayHandler serves POST /admin/v1/functions/{name}/events/{id}/replay: a dead
// (or succeeded) delivery of event id to this function runs again, as one
// more attempt of the same job, so it leaves the dead letters when it
// succeeds and returns to them when it fails. An ordered function's replay
// runs beside its stream, not in its place.
func (s *Service) replayHandler(w http.ResponseWriter, r *http.Request, fn registry.Function, parts []string) error {
	id, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || id <= 0 {
		return apiErr(http.StatusBadRequest, "invalid_event_id", "event id %q is not a positive integer", parts[1])
	}
	ctx := r.Context()
	res, err := s.client.JobList(ctx, river.NewJobListParams().Kinds(JobKind).First(10).OrderBy(river.JobListOrderByID, river.SortOrderDesc).
		Where("args @> @filter::jsonb", river.NamedArgs{"filter": functionFilter(fn, id)}))
	if err != nil {
		return fmt.Errorf("finding event %d of %s: %w", id, fn.Name, err)
	}
	if len(res.Jobs) == 0 {
		return apiErr(http.StatusNotFound, "not_found", "function %q has no delivery of event %d (deliveries are kept 24 h after success, 30 days when dead)", fn.Name, id)
	}
	var target *rivertype.JobRow
	for _, j := range res.Jobs {
		switch stateOf(j) {
		case StateDead, StateSucceeded:
			if target == nil {
				target = j
			}
		default:
			return apiErr(http.StatusConflict, "conflict", "event %d of %q is %s; only dead or succeeded deliveries can be replayed", id, fn.Name, stateOf(j))
		}
	}
	job, err := s.client.JobRetry(ctx, target.ID)
	if errors.Is(err, river.ErrNotFound) {
		return apiErr(http.StatusNotFound, "not_found", "delivery of event %d is gone", id)
	}
	if err != nil {
		return fmt.Errorf("replaying event %d of %s: %w", id, fn.Name, err)
	}
	d, err := deliveryFromJob(job)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, d)
}

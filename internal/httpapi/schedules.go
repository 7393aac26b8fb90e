package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/aerodb/aerofn/internal/invoker"
	"github.com/aerodb/aerofn/internal/registry"
	"github.com/aerodb/aerofn/internal/scheduler"
)

// nextRunsShown is how many run times GET /admin/v1/functions/{name} shows per
// schedule trigger.
const nextRunsShown = 5

// AddSchedules serves a function's schedule triggers from sch:
//
//	POST /admin/v1/functions/{name}/run    {"trigger_index": n} (optional)
//	GET  /admin/v1/functions/{name}/runs?limit=&state=&before=
//
// and adds next_runs to GET /admin/v1/functions/{name}. Call before serving.
func (a *API) AddSchedules(sch *scheduler.Scheduler) {
	a.describers = append(a.describers, func(_ context.Context, fn registry.Function) (string, any, error) {
		nr, err := scheduler.NextRunsOf(fn, time.Now(), nextRunsShown)
		if err != nil || len(nr) == 0 {
			// A stored config always parsed once; never fail a GET over it.
			return "", nil, nil //nolint:nilerr // see above
		}
		return "next_runs", nr, nil
	})
	a.routes = append(a.routes,
		route{method: http.MethodPost, suffix: "run", handler: func(w http.ResponseWriter, r *http.Request, fn registry.Function, _ []string) error {
			return runNow(w, r, sch, fn)
		}},
		route{method: http.MethodGet, suffix: "runs", handler: func(w http.ResponseWriter, r *http.Request, fn registry.Function, _ []string) error {
			return listRuns(w, r, sch, fn)
		}})
}

type runNowBody struct {
	// TriggerIndex picks the schedule trigger (config.triggers[i]); default
	// the first.
	TriggerIndex *int `json:"trigger_index"`
}

type runNowResponse struct {
	Run        scheduler.Run   `json:"run"`
	Invocation string          `json:"invocation_id"`
	Status     string          `json:"status"`
	Role       string          `json:"role"`
	DurationMS float64         `json:"duration_ms"`
	Result     json.RawMessage `json:"result,omitempty"`
	Error      string          `json:"error,omitempty"`
}

// runNow runs a scheduled function at once, for testing, and answers the
// run and the call's outcome.
func runNow(w http.ResponseWriter, r *http.Request, sch *scheduler.Scheduler, fn registry.Function) error {
	var body runNowBody
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		return badRequest("invalid_json", "reading the body: %v", err)
	}
	if len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return badRequest("invalid_json", "the body is not {\"trigger_index\": n}: %v", err)
		}
	}
	index := -1
	if body.TriggerIndex != nil {
		index = *body.TriggerIndex
	}
	run, out, err := sch.RunNow(r.Context(), fn, index)
	switch {
	case errors.Is(err, invoker.ErrNotFound), errors.Is(err, invoker.ErrDisabled):
		return notFound("function %q is disabled", fn.Name)
	case errors.Is(err, scheduler.ErrNotScheduled):
		return apiError(http.StatusConflict, "not_scheduled", "%s", err.Error())
	case err != nil:
		return invokeError(fn.Name, err)
	}
	resp := runNowResponse{Run: run, Invocation: out.ID, Status: string(out.Status), Role: string(out.Principal.Role),
		DurationMS: float64(out.Duration.Microseconds()) / 1000, Error: out.Error}
	if len(out.Output) > 0 {
		if json.Valid(out.Output) {
			resp.Result = out.Output
		} else {
			b, _ := json.Marshal(string(out.Output))
			resp.Result = b
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

type runsResponse struct {
	Schedules []scheduleView  `json:"schedules"`
	Runs      []scheduler.Run `json:"runs"`
}

type scheduleView struct {
	scheduler.Schedule
	NextRuns []time.Time `json:"next_runs"`
}

// listRuns answers what ran, what was skipped (runs, newest first) and what
// comes next (each schedule with its next run times).
func listRuns(w http.ResponseWriter, r *http.Request, sch *scheduler.Scheduler, fn registry.Function) error {
	q := scheduler.RunsQuery{FunctionID: fn.ID, State: r.URL.Query().Get("state")}
	var err error
	if q.Limit, err = limitParam(r, 0); err != nil {
		return err
	}
	if v := r.URL.Query().Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return badRequest("invalid_before", "before must be an RFC 3339 time such as 2025-01-02T03:04:05Z")
		}
		q.Before = t
	}
	runs, err := sch.Runs(r.Context(), q)
	if err != nil {
		return err
	}
	stored, err := sch.Schedules(r.Context(), fn.ID)
	if err != nil {
		return err
	}
	next, _ := scheduler.NextRunsOf(fn, time.Now(), nextRunsShown)
	views := make([]scheduleView, 0, len(stored))
	for _, sc := range stored {
		v := scheduleView{Schedule: sc, NextRuns: []time.Time{}}
		for _, n := range next {
			if n.TriggerIndex == sc.TriggerIndex && sc.Enabled {
				v.NextRuns = n.Times
			}
		}
		views = append(views, v)
	}
	writeJSON(w, http.StatusOK, runsResponse{Schedules: views, Runs: runs})
	return nil
}

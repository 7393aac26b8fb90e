package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/aerodb/aerofn/internal/httpapi"
	"github.com/aerodb/aerofn/internal/invoker"
	"github.com/aerodb/aerofn/internal/registry"
	"github.com/aerodb/aerofn/internal/scheduler"
)

// nextRunsShown is how many run times GET /admin/v1/functions/{name} shows per
// schedule trigger.
const nextRunsShown = 5

// openSchedules wires cron-triggered functions: registry hook, the
// scheduler service, API routes and describers.
func (s *Server) openSchedules(ctx context.Context) error {
	sch := scheduler.New(scheduler.Config{Pool: s.Pool, Invoker: s.Invoker, Logger: s.log, Node: s.Node})
	s.Registry.AddHook(scheduler.Hook{})
	s.AddService(sch)
	s.API.AddDescriber(func(_ context.Context, fn registry.Function) (string, any, error) {
		nr, err := scheduler.NextRunsOf(fn, time.Now(), nextRunsShown)
		if err != nil || len(nr) == 0 {
			// A stored config always parsed once; never fail a GET over it.
			return "", nil, nil //nolint:nilerr // see above
		}
		return "next_runs", nr, nil
	})
	s.API.AddRoute(httpapi.Route{Method: http.MethodPost, Suffix: "run", Handler: func(w http.ResponseWriter, r *http.Request, fn registry.Function, _ []string) error {
		return schedRunNow(w, r, sch, fn)
	}})
	s.API.AddRoute(httpapi.Route{Method: http.MethodGet, Suffix: "runs", Handler: func(w http.ResponseWriter, r *http.Request, fn registry.Function, _ []string) error {
		return schedListRuns(w, r, sch, fn)
	}})
	return nil
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

// schedRunNow serves POST /admin/v1/functions/{name}/run: run a scheduled function at
// once, for testing; the caller is already known to be service_role.
func schedRunNow(w http.ResponseWriter, r *http.Request, sch *scheduler.Scheduler, fn registry.Function) error {
	var body runNowBody
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		return schedAPIError(http.StatusBadRequest, "invalid_json", "reading the body: "+err.Error())
	}
	if len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return schedAPIError(http.StatusBadRequest, "invalid_json", "the body is not {\"trigger_index\": n}: "+err.Error())
		}
	}
	index := -1
	if body.TriggerIndex != nil {
		index = *body.TriggerIndex
	}
	run, out, err := sch.RunNow(r.Context(), fn, index)
	switch {
	case errors.Is(err, invoker.ErrNotFound), errors.Is(err, invoker.ErrDisabled):
		return schedAPIError(http.StatusNotFound, "not_found", "function "+strconv.Quote(fn.Name)+" is disabled")
	case errors.Is(err, scheduler.ErrNotScheduled):
		return schedAPIError(http.StatusConflict, "not_scheduled", err.Error())
	case errors.Is(err, invoker.ErrBusy):
		return &httpapi.Error{Status: http.StatusTooManyRequests, Code: "too_many_requests",
			Message: "this node is running as many calls as it admits; retry shortly", RetryAfter: 1}
	case errors.Is(err, invoker.ErrNotReady):
		return &httpapi.Error{Status: http.StatusServiceUnavailable, Code: "not_ready",
			Message: "this node has no compiled copy of the function's module yet and is compiling it; retry in a few seconds", RetryAfter: 5}
	case err != nil:
		return err
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
	return schedJSON(w, http.StatusOK, resp)
}

type runsResponse struct {
	Schedules []scheduleView  `json:"schedules"`
	Runs      []scheduler.Run `json:"runs"`
}

type scheduleView struct {
	scheduler.Schedule
	NextRuns []time.Time `json:"next_runs"`
}

// schedListRuns serves GET /admin/v1/functions/{name}/runs?limit=&state=&before=:
// what ran, what was skipped (runs, newest first) and what comes next
// (each schedule with its next run times).
func schedListRuns(w http.ResponseWriter, r *http.Request, sch *scheduler.Scheduler, fn registry.Function) error {
	q := scheduler.RunsQuery{FunctionID: fn.ID, State: r.URL.Query().Get("state")}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return schedAPIError(http.StatusBadRequest, "invalid_limit", "limit must be a whole number from 1 to 1000")
		}
		q.Limit = n
	}
	if v := r.URL.Query().Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return schedAPIError(http.StatusBadRequest, "invalid_before", "before must be an RFC 3339 time such as 2025-01-02T03:04:05Z")
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
	return schedJSON(w, http.StatusOK, runsResponse{Schedules: views, Runs: runs})
}

func schedAPIError(status int, code, msg string) error {
	return &httpapi.Error{Status: status, Code: code, Message: msg}
}

func schedJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/aerodb/aerofn/internal/dbtrigger"
	"github.com/aerodb/aerofn/internal/registry"
)

// AddEvents serves a function's database-trigger deliveries from svc:
//
//	GET  /admin/v1/functions/{name}/events?state=dead&limit=100
//	POST /admin/v1/functions/{name}/events/{id}/replay
//
// Call before serving.
func (a *API) AddEvents(svc *dbtrigger.Service) {
	a.routes = append(a.routes,
		route{method: http.MethodGet, suffix: "events", handler: func(w http.ResponseWriter, r *http.Request, fn registry.Function, _ []string) error {
			return listEvents(w, r, svc, fn)
		}},
		route{method: http.MethodPost, suffix: "events/*/replay", handler: func(w http.ResponseWriter, r *http.Request, fn registry.Function, parts []string) error {
			return replayEvent(w, r, svc, fn, parts[1])
		}})
}

// listEvents answers the function's deliveries, newest first. state is one
// of held, pending, running, retrying, succeeded, dead; without it, all but
// held.
func listEvents(w http.ResponseWriter, r *http.Request, svc *dbtrigger.Service, fn registry.Function) error {
	limit, err := limitParam(r, 100)
	if err != nil {
		return err
	}
	state := r.URL.Query().Get("state")
	out, err := svc.Deliveries(r.Context(), fn, state, limit)
	if errors.Is(err, dbtrigger.ErrInvalidState) {
		return badRequest("invalid_state", "%s", err.Error())
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"function": fn.Name, "state": state, "count": len(out), "events": out})
	return nil
}

// replayEvent runs a dead (or succeeded) delivery of event id again: 202
// with the delivery queued again.
func replayEvent(w http.ResponseWriter, r *http.Request, svc *dbtrigger.Service, fn registry.Function, rawID string) error {
	id, err := strconv.ParseInt(rawID, 10, 64)
	if err != nil || id <= 0 {
		return badRequest("invalid_event_id", "event id %q is not a positive integer", rawID)
	}
	d, err := svc.Replay(r.Context(), fn, id)
	switch {
	case errors.Is(err, dbtrigger.ErrNoDelivery):
		return notFound("%s", err.Error())
	case errors.Is(err, dbtrigger.ErrNotReplayable):
		return apiError(http.StatusConflict, "conflict", "%s", err.Error())
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusAccepted, d)
	return nil
}

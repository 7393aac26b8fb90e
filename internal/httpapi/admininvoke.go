package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/invoker"
)

// adminInvokeBody is POST /admin/v1/functions/{name}/invoke: run the
// function once with a given event as a given trigger, for trying triggers
// without a row change, a tick or a signed delivery (`aerofn invoke
// --event`).
type adminInvokeBody struct {
	Trigger string          `json:"trigger"`
	Event   json.RawMessage `json:"event"`
}

// adminInvokeResponse is what the call produced, its log lines included.
type adminInvokeResponse struct {
	InvocationID string           `json:"invocation_id"`
	RequestID    string           `json:"request_id"`
	Function     string           `json:"function"`
	Version      int              `json:"version"`
	Trigger      string           `json:"trigger"`
	Status       string           `json:"status"`
	Role         string           `json:"role"`
	UserID       string           `json:"user_id,omitempty"`
	DurationMS   float64          `json:"duration_ms"`
	Result       json.RawMessage  `json:"result"`
	Error        string           `json:"error,omitempty"`
	Logs         []engine.LogLine `json:"logs"`
	LogsDropped  int              `json:"logs_dropped,omitempty"`
}

// eventPrincipal is who a trigger's call acts for before run_as, as the
// trigger itself decides: a schedule runs as the service role, a webhook as
// anon, a database event as the writer the event names (anon when none) and
// an HTTP event as the role and user it names (anon when none).
func eventPrincipal(trigger string, ev map[string]json.RawMessage) auth.Principal {
	switch trigger {
	case "schedule":
		return auth.Service()
	case "webhook":
		return auth.Anon()
	}
	var role, user string
	_ = json.Unmarshal(ev["role"], &role)
	_ = json.Unmarshal(ev["user_id"], &user)
	if !auth.Role(role).Valid() {
		return auth.Anon()
	}
	return auth.Principal{Role: auth.Role(role), UserID: user}
}

func (a *API) adminInvoke(w http.ResponseWriter, r *http.Request, name string) error {
	var body adminInvokeBody
	if err := decodeJSON(r, MaxEvent+1024, &body); err != nil {
		return err
	}
	switch body.Trigger {
	case "http", "database", "schedule", "webhook":
	default:
		return badRequest("invalid_trigger", "trigger %q is not one of http, database, schedule, webhook", body.Trigger)
	}
	var ev map[string]json.RawMessage
	if len(body.Event) > 0 && !bytes.Equal(body.Event, []byte("null")) {
		if err := json.Unmarshal(body.Event, &ev); err != nil {
			return badRequest("invalid_event", "event must be a JSON object: %v", err)
		}
	}
	if ev == nil {
		ev = map[string]json.RawMessage{}
	}
	// The event says which trigger it is, as the real ones do.
	tj, _ := json.Marshal(body.Trigger)
	if t, ok := ev["trigger"]; ok && !bytes.Equal(bytes.TrimSpace(t), tj) {
		return badRequest("invalid_event", "the event's trigger %s is not the call's trigger %q", t, body.Trigger)
	}
	ev["trigger"] = tj
	requestID := ""
	for _, k := range []string{"request_id", "delivery_id"} {
		_ = json.Unmarshal(ev[k], &requestID)
		if requestID != "" {
			break
		}
	}
	requestID = requestIDFrom(requestID)
	evJSON, err := encodeEvent(ev)
	if err != nil {
		return err
	}
	call := invoker.Call{Trigger: body.Trigger, Event: evJSON, Principal: eventPrincipal(body.Trigger, ev), RequestID: requestID}
	if body.Trigger == "http" || body.Trigger == "webhook" {
		_, httpStatus := answer()
		call.CheckOutput, call.HTTPStatus = checkResult, httpStatus
	}
	out, err := a.cfg.Invoker.Invoke(r.Context(), name, call)
	if err != nil {
		return invokeError(name, err)
	}
	res := adminInvokeResponse{InvocationID: out.ID, RequestID: requestID, Function: out.Function.Name, Version: out.Version,
		Trigger: body.Trigger, Status: string(out.Status), Role: string(out.Principal.Role), UserID: out.Principal.UserID,
		DurationMS: float64(out.Duration.Microseconds()) / 1000, Error: out.Error, Logs: out.Logs, LogsDropped: out.LogsDropped}
	if res.Logs == nil {
		res.Logs = []engine.LogLine{}
	}
	switch trimmed := bytes.TrimSpace(out.Output); {
	case len(trimmed) == 0:
		res.Result = json.RawMessage("null")
	case json.Valid(trimmed):
		res.Result = json.RawMessage(trimmed)
	default:
		res.Result = jsonNoHTML(string(trimmed))
	}
	w.Header().Set("X-Request-Id", requestID)
	w.Header().Set("X-Aerofn-Invocation-Id", out.ID)
	writeJSON(w, http.StatusOK, res)
	return nil
}

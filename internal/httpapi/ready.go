package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// ReadyCheck is one condition of GET /readyz; Check returns why it fails.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// readyTimeout bounds each check, so that a hung database answers 503 in
// time for a load balancer's probe instead of hanging it.
const readyTimeout = 2 * time.Second

type readyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
	// On failure, the error body's fields and the checks that failed.
	Error   string   `json:"error,omitempty"`
	Code    string   `json:"code,omitempty"`
	Message string   `json:"message,omitempty"`
	Failed  []string `json:"failed,omitempty"`
}

// readyz answers 200 when every check passes (the node can serve calls:
// database reachable, migrations applied, engine started and not stopping),
// else 503 with the error fields, the failed checks and each check's result.
// /healthz stays a liveness probe: the process answers.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) error {
	out := readyBody{Status: "ready", Checks: map[string]string{}}
	for _, c := range a.cfg.ReadyChecks {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		err := c.Check(ctx)
		cancel()
		if err != nil {
			out.Checks[c.Name] = err.Error()
			out.Failed = append(out.Failed, c.Name)
			continue
		}
		out.Checks[c.Name] = "ok"
	}
	if len(out.Failed) == 0 {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	msgs := make([]string, len(out.Failed))
	for i, n := range out.Failed {
		msgs[i] = n + ": " + out.Checks[n]
	}
	out.Status, out.Code = "not_ready", "not_ready"
	out.Error = "not ready: " + strings.Join(msgs, "; ")
	out.Message = out.Error
	w.Header().Set(relayErrorHeader, "true")
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusServiceUnavailable, out)
	return nil
}

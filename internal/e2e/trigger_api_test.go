package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
)

// TestTriggerEndpointRefusals: the refusals of the trigger endpoints that no
// other test crosses keep their status, code and JSON shape: a replay of a
// delivery still running (409), limits out of range on every list (400
// invalid_limit, one parser), a bad state, a bad before, a bad run-now body,
// and run-now on a disabled function (404).
func TestTriggerEndpointRefusals(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	if _, err := e.Admin.Exec(t.Context(), `CREATE TABLE spins (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	e.MustDeploy("spin", compile(t, watLoop), map[string]any{"timeout": 3, "triggers": []any{
		map[string]any{"type": "database", "table": "spins", "max_attempts": 1}}})
	e.MustDeploy("tick", compile(t, watLoop), map[string]any{"timeout": 1, "triggers": []any{
		map[string]any{"type": "schedule", "cron": "0 0 1 1 *"}}})
	if _, err := e.Admin.Exec(t.Context(), `INSERT INTO spins VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	var eventID string
	deadline := time.Now().Add(20 * time.Second)
	for eventID == "" {
		r := e.JSONRequest("GET", "/admin/v1/functions/spin/events?state=running", e.ServiceKey, nil)
		if evs, _ := r.JSON(t)["events"].([]any); len(evs) == 1 {
			eventID = evs[0].(map[string]any)["id"].(string)
		} else if time.Now().After(deadline) {
			t.Fatalf("no running delivery: %s", r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		code, msg    string
	}{
		{"POST", "/admin/v1/functions/spin/events/" + eventID + "/replay", nil, http.StatusConflict, "conflict", "is running"},
		{"GET", "/admin/v1/functions/spin/events?limit=0", nil, http.StatusBadRequest, "invalid_limit", "1 to 1000"},
		{"GET", "/admin/v1/functions/spin/events?limit=1001", nil, http.StatusBadRequest, "invalid_limit", "1 to 1000"},
		{"GET", "/admin/v1/functions/tick/runs?limit=x", nil, http.StatusBadRequest, "invalid_limit", "1 to 1000"},
		{"GET", "/admin/v1/functions/spin/logs?limit=-1", nil, http.StatusBadRequest, "invalid_limit", "1 to 1000"},
		{"GET", "/admin/v1/functions/spin/events?state=bogus", nil, http.StatusBadRequest, "invalid_state", "bogus"},
		{"GET", "/admin/v1/functions/tick/runs?before=yesterday", nil, http.StatusBadRequest, "invalid_before", "RFC 3339"},
		{"POST", "/admin/v1/functions/tick/run", map[string]any{"trigger": 0}, http.StatusBadRequest, "invalid_json", "trigger_index"},
		{"GET", "/admin/v1/functions/nope/events", nil, http.StatusNotFound, "not_found", "nope"},
	} {
		r := e.JSONRequest(c.method, c.path, e.ServiceKey, c.body)
		m := r.JSON(t)
		if r.Status != c.status || r.Code() != c.code || !strings.Contains(fmt.Sprint(m["message"]), c.msg) || m["error"] != m["message"] {
			t.Errorf("%s %s: %d %s, want %d %s with %q", c.method, c.path, r.Status, r.Body, c.status, c.code, c.msg)
		}
	}
	if r := e.JSONRequest("PATCH", "/admin/v1/functions/tick", e.ServiceKey, map[string]any{"enabled": false}); r.Status != http.StatusOK {
		t.Fatalf("disabling: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("POST", "/admin/v1/functions/tick/run", e.ServiceKey, nil); r.Status != http.StatusNotFound || r.Code() != "not_found" ||
		!strings.Contains(string(r.Body), "disabled") {
		t.Errorf("run-now of a disabled function: %d %s, want 404 not_found", r.Status, r.Body)
	}
}

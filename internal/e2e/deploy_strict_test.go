package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aerodb/aerofn/internal/testenv"
)

// TestRollbackVersionOutOfRange: a version past what a version can be
// (int4) is no such version (404), never a 500; a negative one is 400.
func TestRollbackVersionOutOfRange(t *testing.T) {
	e := testenv.Start(t)
	e.MustDeploy("echo", compile(t, watEcho), nil)
	for body, want := range map[string]int{`{"version": 2147483648}`: 404, `{"version": 9007199254740993}`: 404,
		`{"version": 4294967297}`: 404, `{"version": -1}`: 400, `{"version": 1e30}`: 400} {
		r := e.Do("POST", "/admin/v1/functions/echo/rollback", e.ServiceKey, "application/json", stringsReader(body))
		if r.Status != want {
			t.Errorf("rollback %s: %d %s, want %d", body, r.Status, r.Body, want)
		}
	}
}

// TestDeployTriggerFieldStrict: the trigger form field is read as strictly
// as config: an unknown field or trailing data is a 400, not ignored.
func TestDeployTriggerFieldStrict(t *testing.T) {
	e := testenv.Start(t)
	wasm := compile(t, watEcho)
	for trigger, want := range map[string]int{
		`{"type": "schedule", "cron": "@daily"}`:                            http.StatusCreated,
		`[{"type": "schedule", "cron": "@daily"}]`:                          http.StatusCreated,
		`{"type": "schedule", "cron": "@daily", "timezon": "Europe/Paris"}`: http.StatusBadRequest,
		`{"type": "schedule", "cron": "@daily"} {"type": "schedule"}`:       http.StatusBadRequest,
		`[{"type": "schedule", "cron": "@daily"}] trailing`:                 http.StatusBadRequest,
		`"schedule"`: http.StatusBadRequest,
	} {
		ct, body := testenv.DeployForm(map[string]string{"name": "sched", "trigger": trigger}, wasm)
		r := e.Do("POST", "/admin/v1/functions", e.ServiceKey, ct, body)
		if r.Status != want {
			t.Errorf("trigger %s: %d %s, want %d", trigger, r.Status, r.Body, want)
		}
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

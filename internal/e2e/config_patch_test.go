package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/aerodb/aerofn/internal/testenv"
)

// fnConfig reads a function's stored config back through the API.
func fnConfig(t *testing.T, e *testenv.Env, name string) map[string]any {
	t.Helper()
	r := e.JSONRequest("GET", "/admin/v1/functions/"+name, e.ServiceKey, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("get %s: %d %s", name, r.Status, r.Body)
	}
	return r.JSON(t)["config"].(map[string]any)
}

func nextRuns(t *testing.T, e *testenv.Env, name string) int {
	t.Helper()
	r := e.JSONRequest("GET", "/admin/v1/functions/"+name+"/runs", e.ServiceKey, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("runs %s: %d %s", name, r.Status, r.Body)
	}
	var v struct {
		Schedules []any `json:"schedules"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("runs %s: %v: %s", name, err, r.Body)
	}
	return len(v.Schedules)
}

func asJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestPatchConfigMerges: PATCH's config is a JSON merge patch (RFC 7396) on
// the stored config: {"timeout":20} changes the timeout and keeps the
// schedule, the env whitelist and the rest; naming triggers replaces the
// whole list; null puts a field back to its default; a patch whose result
// is invalid is a 400 that changes nothing.
func TestPatchConfigMerges(t *testing.T) {
	e := testenv.Start(t)
	e.MustDeploy("job", compile(t, watEcho), map[string]any{
		"timeout": 5, "env": []string{"API_KEY"}, "methods": []string{"POST"},
		"triggers": []map[string]any{{"type": "schedule", "cron": "0 3 * * *"}},
	})
	if n := nextRuns(t, e, "job"); n != 1 {
		t.Fatalf("schedules after deploy: %d", n)
	}

	r := e.JSONRequest("PATCH", "/admin/v1/functions/job", e.ServiceKey, map[string]any{"config": map[string]any{"timeout": 20}})
	if r.Status != http.StatusOK {
		t.Fatalf("patch timeout: %d %s", r.Status, r.Body)
	}
	cfg := fnConfig(t, e, "job")
	if cfg["timeout"] != float64(20) || asJSON(cfg["env"]) != `["API_KEY"]` || asJSON(cfg["methods"]) != `["POST"]` ||
		asJSON(cfg["triggers"]) != `[{"cron":"0 3 * * *","type":"schedule"}]` {
		t.Fatalf("patching the timeout changed more than the timeout: %s", asJSON(cfg))
	}
	if n := nextRuns(t, e, "job"); n != 1 {
		t.Fatalf("patching the timeout dropped the schedule: %d schedules", n)
	}

	// Naming triggers replaces the list.
	r = e.JSONRequest("PATCH", "/admin/v1/functions/job", e.ServiceKey, map[string]any{"config": map[string]any{
		"triggers": []map[string]any{{"type": "schedule", "cron": "@hourly"}, {"type": "schedule", "cron": "@daily"}}}})
	if r.Status != http.StatusOK {
		t.Fatalf("patch triggers: %d %s", r.Status, r.Body)
	}
	if cfg := fnConfig(t, e, "job"); asJSON(cfg["triggers"]) != `[{"cron":"@hourly","type":"schedule"},{"cron":"@daily","type":"schedule"}]` || cfg["timeout"] != float64(20) {
		t.Fatalf("after replacing triggers: %s", asJSON(cfg))
	}
	if n := nextRuns(t, e, "job"); n != 2 {
		t.Fatalf("schedules after replacing triggers: %d", n)
	}

	// An invalid result is refused and nothing changes.
	for _, bad := range []string{
		`{"config":{"timeout":1000}}`,
		`{"config":{"triggers":[{"type":"schedule","cron":"0 25 * * *"}]}}`,
		`{"config":{"timout":20}}`,
		`{"config":[1]}`,
		`{"config":null}`,
		`{"config":"x"}`,
	} {
		r := e.Do("PATCH", "/admin/v1/functions/job", e.ServiceKey, "application/json", stringsReader(bad))
		if r.Status != http.StatusBadRequest || r.Code() != "invalid_config" {
			t.Errorf("patch %s: %d %s, want 400 invalid_config", bad, r.Status, r.Body)
		}
	}
	if cfg := fnConfig(t, e, "job"); cfg["timeout"] != float64(20) || len(cfg["triggers"].([]any)) != 2 {
		t.Fatalf("a refused patch changed the config: %s", asJSON(cfg))
	}

	// null deletes: the env whitelist goes, the timeout is the default again,
	// an empty list removes every trigger.
	r = e.JSONRequest("PATCH", "/admin/v1/functions/job", e.ServiceKey, map[string]any{"config": map[string]any{"env": nil, "timeout": nil, "triggers": []any{}}})
	if r.Status != http.StatusOK {
		t.Fatalf("patch nulls: %d %s", r.Status, r.Body)
	}
	cfg = fnConfig(t, e, "job")
	if _, ok := cfg["env"]; ok {
		t.Errorf("env survived null: %s", asJSON(cfg))
	}
	if _, ok := cfg["timeout"]; ok {
		t.Errorf("timeout survived null: %s", asJSON(cfg))
	}
	if _, ok := cfg["triggers"]; ok || asJSON(cfg["methods"]) != `["POST"]` {
		t.Errorf("after nulls: %s", asJSON(cfg))
	}
	if n := nextRuns(t, e, "job"); n != 0 {
		t.Fatalf("schedules after removing triggers: %d", n)
	}
}

// TestDeployTriggerFieldKeepsConfig: a redeploy that gives only AeroDB's
// trigger field replaces the triggers and keeps the rest of the config; a
// deploy with config replaces the whole config; one with neither keeps it.
func TestDeployTriggerFieldKeepsConfig(t *testing.T) {
	e := testenv.Start(t)
	wasm := compile(t, watEcho)
	e.MustDeploy("job", wasm, map[string]any{"timeout": 7, "env": []string{"K"}, "triggers": []map[string]any{{"type": "schedule", "cron": "@daily"}}})

	e.MustDeploy("job", wasm, nil)
	if cfg := fnConfig(t, e, "job"); cfg["timeout"] != float64(7) || len(cfg["triggers"].([]any)) != 1 {
		t.Fatalf("a deploy without config changed it: %s", asJSON(cfg))
	}

	ct, body := testenv.DeployForm(map[string]string{"name": "job", "trigger": `{"type":"schedule","cron":"@hourly"}`}, wasm)
	if r := e.Do("POST", "/admin/v1/functions", e.ServiceKey, ct, body); r.Status != http.StatusCreated {
		t.Fatalf("deploy with trigger: %d %s", r.Status, r.Body)
	}
	if cfg := fnConfig(t, e, "job"); cfg["timeout"] != float64(7) || asJSON(cfg["env"]) != `["K"]` ||
		asJSON(cfg["triggers"]) != `[{"cron":"@hourly","type":"schedule"}]` {
		t.Fatalf("deploy with only a trigger: %s", asJSON(cfg))
	}

	e.MustDeploy("job", wasm, map[string]any{"timeout": 9})
	if cfg := fnConfig(t, e, "job"); asJSON(cfg) != `{"timeout":9}` {
		t.Fatalf("a deploy with config is the whole config: %s", asJSON(cfg))
	}
	if n := nextRuns(t, e, "job"); n != 0 {
		t.Fatalf("schedules after a deploy without triggers: %d", n)
	}
}

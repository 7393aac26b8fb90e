package scheduler_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConfigValidation: every wrong schedule trigger is a 400
// invalid_config that names the field and says what is wrong; nothing is
// stored.
func TestConfigValidation(t *testing.T) {
	t.Parallel()
	e := startNode(t)
	echo := echoModule(t)
	cases := []struct {
		trigger map[string]any
		field   string
		says    string
	}{
		{map[string]any{"cron": "61 * * * *"}, "config.triggers[0].cron", "field 1 (minute)"},
		{map[string]any{"cron": "0 25 * * *"}, "config.triggers[0].cron", "field 2 (hour)"},
		{map[string]any{"cron": "* * * *"}, "config.triggers[0].cron", "expected 5 fields"},
		{map[string]any{"cron": "0 0 30 2 *"}, "config.triggers[0].cron", "never fires"},
		{map[string]any{"cron": "@every 10ms"}, "config.triggers[0].cron", "at least 1s"},
		{map[string]any{"cron": "@fortnightly"}, "config.triggers[0].cron", "unknown descriptor"},
		{map[string]any{"cron": ""}, "config.triggers[0].cron", "required"},
		{map[string]any{"cron": "0 3 * * *", "timezone": "Mars/Olympus"}, "config.triggers[0].timezone", "unknown timezone"},
		{map[string]any{"cron": "0 3 * * *", "catch_up": "all"}, "config.triggers[0].catch_up", `"all"`},
		{map[string]any{"cron": "0 3 * * *", "overlap": "parallel"}, "config.triggers[0].overlap", `"parallel"`},
		{map[string]any{"cron": "0 3 * * *", "table": "users"}, "config.triggers[0].table", "database triggers"},
		{map[string]any{"cron": "0 3 * * *", "max_attempts": 3}, "config.triggers[0].max_attempts", "never retried"},
	}
	for _, c := range cases {
		tr := map[string]any{"type": "schedule"}
		for k, v := range c.trigger {
			tr[k] = v
		}
		r := e.Deploy("bad", echo, map[string]any{"triggers": []any{tr}})
		if r.Status != http.StatusBadRequest || r.Code() != "invalid_config" {
			t.Errorf("%v: got %d %s, want 400 invalid_config", c.trigger, r.Status, r.Body)
			continue
		}
		msg := r.JSON(t)["message"].(string)
		if !strings.HasPrefix(msg, c.field+": ") || !strings.Contains(msg, c.says) {
			t.Errorf("%v: message %q does not name %s and say %q", c.trigger, msg, c.field, c.says)
		}
	}
	// The index is the trigger's place among all triggers.
	r := e.Deploy("bad", echo, map[string]any{"triggers": []any{
		map[string]any{"type": "http"}, map[string]any{"type": "schedule", "cron": "0 3 * * * * *"}}})
	if r.Status != 400 || !strings.HasPrefix(r.JSON(t)["message"].(string), "config.triggers[1].cron: ") {
		t.Errorf("second trigger: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("GET", "/admin/v1/functions/bad", e.ServiceKey, nil); r.Status != 404 {
		t.Fatalf("a refused deploy stored the function: %d %s", r.Status, r.Body)
	}

	// Valid forms, and PATCH validates too.
	for _, cron := range []string{"0 3 * * *", "*/15 * * * * *", "@hourly", "@daily", "@weekly", "@monthly", "@every 30s", "CRON_TZ=Asia/Tokyo 0 9 * * mon-fri"} {
		if r := e.Deploy("good", echo, schedule(cron)); r.Status != 201 {
			t.Errorf("%q: %d %s", cron, r.Status, r.Body)
		}
	}
	r = e.JSONRequest("PATCH", "/admin/v1/functions/good", e.ServiceKey, map[string]any{"config": schedule("0 3 * * 8")})
	if r.Status != 400 || !strings.Contains(string(r.Body), "config.triggers[0].cron: ") || !strings.Contains(string(r.Body), "day of week") {
		t.Fatalf("patch with a bad expression: %d %s", r.Status, r.Body)
	}
}

// TestNextRuns: GET /admin/v1/functions/{name} shows the next five run times of
// each schedule trigger, on the schedule's wall clock.
func TestNextRuns(t *testing.T) {
	t.Parallel()
	e := startNode(t)
	e.MustDeploy("nightly", echoModule(t), map[string]any{"triggers": []any{
		map[string]any{"type": "http"},
		map[string]any{"type": "schedule", "cron": "0 3 * * *", "timezone": "Europe/Berlin"},
		map[string]any{"type": "schedule", "cron": "@every 30s"},
	}})
	d := e.JSONRequest("GET", "/admin/v1/functions/nightly", e.ServiceKey, nil)
	if d.Status != 200 {
		t.Fatalf("get: %d %s", d.Status, d.Body)
	}
	var got struct {
		NextRuns []struct {
			TriggerIndex int      `json:"trigger_index"`
			Cron         string   `json:"cron"`
			Timezone     string   `json:"timezone"`
			Times        []string `json:"times"`
		} `json:"next_runs"`
	}
	if err := json.Unmarshal(d.Body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.NextRuns) != 2 || got.NextRuns[0].TriggerIndex != 1 || got.NextRuns[1].TriggerIndex != 2 {
		t.Fatalf("next_runs: %s", d.Body)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	prev := time.Now()
	for _, s := range got.NextRuns[0].Times {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		if w := tm.In(berlin); w.Hour() != 3 || w.Minute() != 0 || !tm.After(prev) {
			t.Fatalf("not 03:00 Berlin in order: %v", got.NextRuns[0].Times)
		}
		if _, off := tm.Zone(); off != 3600 && off != 7200 {
			t.Fatalf("%s is not written in Berlin time", s)
		}
		prev = tm
	}
	if len(got.NextRuns[0].Times) != 5 || len(got.NextRuns[1].Times) != 5 {
		t.Fatalf("want five times each: %s", d.Body)
	}
	every := got.NextRuns[1].Times
	for i := 1; i < 5; i++ {
		a, _ := time.Parse(time.RFC3339, every[i-1])
		b, _ := time.Parse(time.RFC3339, every[i])
		if b.Sub(a) != 30*time.Second || a.Unix()%30 != 0 {
			t.Fatalf("@every 30s: %v", every)
		}
	}
	// A function without schedules has no next_runs; a disabled one runs never.
	e.MustDeploy("plain", echoModule(t), nil)
	if r := e.JSONRequest("GET", "/admin/v1/functions/plain", e.ServiceKey, nil); strings.Contains(string(r.Body), "next_runs") {
		t.Fatalf("plain function: %s", r.Body)
	}
	p := e.JSONRequest("PATCH", "/admin/v1/functions/nightly", e.ServiceKey, map[string]any{"enabled": false})
	if p.Status != 200 || !strings.Contains(string(p.Body), `"times":[]`) {
		t.Fatalf("disabled: %d %s", p.Status, p.Body)
	}
}

// TestEverySecond: an every-second schedule runs each tick once, within a
// second of its time, as service_role, with the documented event; the runs
// endpoint shows what ran and what comes next.
func TestEverySecond(t *testing.T) {
	t.Parallel()
	e := startNode(t)
	e.MustDeploy("tick", echoModule(t), schedule("* * * * * *"))
	waitFor(t, 15*time.Second, "five succeeded runs", func() bool { return count(runs(t, e, "tick"), "succeeded") >= 5 })
	rs := runsWhere(t, e, "tick", "r.state <> 'pending' AND r.state <> 'running'")
	for i, r := range rs {
		if r.State != "succeeded" || r.Kind != "tick" || r.Role != "service_role" || r.Status != "success" || r.InvocationID == "" {
			t.Fatalf("run %d: %+v", i, r)
		}
		if i > 0 && r.ScheduledTime.Sub(rs[i-1].ScheduledTime) != time.Second {
			t.Fatalf("ticks not consecutive: %v then %v", rs[i-1].ScheduledTime, r.ScheduledTime)
		}
		if late := r.StartedAt.Sub(r.ScheduledTime); late < 0 || late > time.Second {
			t.Fatalf("run %d started %s after its time", i, late)
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(r.Output), &ev); err != nil {
			t.Fatalf("output %q: %v", r.Output, err)
		}
		st, err1 := time.Parse(time.RFC3339Nano, ev["scheduled_time"].(string))
		at, err2 := time.Parse(time.RFC3339Nano, ev["actual_time"].(string))
		if ev["trigger"] != "schedule" || ev["cron"] != "* * * * * *" || err1 != nil || err2 != nil ||
			!st.Equal(r.ScheduledTime) || !at.Equal(*r.StartedAt) || len(ev) != 4 {
			t.Fatalf("event: %v (run %+v)", ev, r)
		}
	}
	p50, p95, n := lateness(rs)
	t.Logf("lateness over %d ticks: p50 %s, p95 %s", n, p50, p95)

	// Principal recorded on the invocation too, one per tick.
	e.Flush()
	var roles, ticks int
	if err := e.Admin.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE role = 'service_role'), count(DISTINCT request_id)
		FROM aerofn.invocations WHERE function_name = 'tick' AND trigger = 'schedule'`).Scan(&roles, &ticks); err != nil {
		t.Fatal(err)
	}
	if roles < len(rs) || ticks != roles {
		t.Fatalf("invocations: %d as service_role, %d distinct ticks, %d runs", roles, ticks, len(rs))
	}

	r := e.JSONRequest("GET", "/admin/v1/functions/tick/runs?limit=3", e.ServiceKey, nil)
	var body struct {
		Schedules []struct {
			Cron     string   `json:"cron"`
			CatchUp  string   `json:"catch_up"`
			Overlap  string   `json:"overlap"`
			Enabled  bool     `json:"enabled"`
			NextTick string   `json:"next_tick"`
			NextRuns []string `json:"next_runs"`
		} `json:"schedules"`
		Runs []struct {
			State  string   `json:"state"`
			LateMS *float64 `json:"late_ms"`
		} `json:"runs"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &body) != nil || len(body.Runs) != 3 || len(body.Schedules) != 1 {
		t.Fatalf("runs: %d %s", r.Status, r.Body)
	}
	sc := body.Schedules[0]
	if sc.Cron != "* * * * * *" || sc.CatchUp != "once" || sc.Overlap != "skip" || !sc.Enabled || sc.NextTick == "" || len(sc.NextRuns) != 5 {
		t.Fatalf("schedule view: %s", r.Body)
	}
	if r := e.JSONRequest("GET", "/admin/v1/functions/tick/runs", e.AnonKey, nil); r.Status != 403 {
		t.Fatalf("runs as anon: %d", r.Status)
	}
	if r := e.JSONRequest("GET", "/admin/v1/functions/tick/runs?limit=0", e.ServiceKey, nil); r.Status != 400 {
		t.Fatalf("limit=0: %d", r.Status)
	}
}

// TestRunNow: POST /admin/v1/functions/{name}/run runs a scheduled function at
// once (service role only) and records it as a manual run.
func TestRunNow(t *testing.T) {
	t.Parallel()
	e := startNode(t)
	e.MustDeploy("nightly", echoModule(t), schedule("0 3 * * *", map[string]any{"timezone": "America/New_York"}))
	r := e.JSONRequest("POST", "/admin/v1/functions/nightly/run", e.ServiceKey, nil)
	if r.Status != 200 {
		t.Fatalf("run: %d %s", r.Status, r.Body)
	}
	var got struct {
		Run struct {
			Kind, State, Role, InvocationID string
		} `json:"run"`
		InvocationID string         `json:"invocation_id"`
		Status       string         `json:"status"`
		Role         string         `json:"role"`
		Result       map[string]any `json:"result"`
	}
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Run.Kind != "manual" || got.Run.State != "succeeded" || got.Status != "success" || got.Role != "service_role" ||
		got.Result["trigger"] != "schedule" || got.Result["manual"] != true || got.Result["cron"] != "0 3 * * *" ||
		got.Result["timezone"] != "America/New_York" || got.InvocationID == "" {
		t.Fatalf("run: %s", r.Body)
	}
	if rs := runs(t, e, "nightly"); len(rs) != 1 || rs[0].Kind != "manual" || rs[0].State != "succeeded" || rs[0].InvocationID != got.InvocationID {
		t.Fatalf("recorded: %+v", rs)
	}
	if r := e.JSONRequest("POST", "/admin/v1/functions/nightly/run", e.AnonKey, nil); r.Status != 403 {
		t.Fatalf("run as anon: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("POST", "/admin/v1/functions/nightly/run", "", nil); r.Status != 401 {
		t.Fatalf("run without a token: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("POST", "/admin/v1/functions/nightly/run", e.ServiceKey, map[string]int{"trigger_index": 3}); r.Status != 409 || r.Code() != "not_scheduled" {
		t.Fatalf("run of a missing trigger: %d %s", r.Status, r.Body)
	}
	e.MustDeploy("plain", echoModule(t), nil)
	if r := e.JSONRequest("POST", "/admin/v1/functions/plain/run", e.ServiceKey, nil); r.Status != 409 || r.Code() != "not_scheduled" {
		t.Fatalf("run of an unscheduled function: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("POST", "/admin/v1/functions/nosuch/run", e.ServiceKey, nil); r.Status != 404 {
		t.Fatalf("run of a missing function: %d %s", r.Status, r.Body)
	}
	e.JSONRequest("PATCH", "/admin/v1/functions/nightly", e.ServiceKey, map[string]any{"enabled": false})
	if r := e.JSONRequest("POST", "/admin/v1/functions/nightly/run", e.ServiceKey, nil); r.Status != 404 {
		t.Fatalf("run of a disabled function: %d %s", r.Status, r.Body)
	}
}

// TestPrincipalRunAs: a schedule acts as service_role unless run_as names
// another principal; either way it is recorded.
func TestPrincipalRunAs(t *testing.T) {
	t.Parallel()
	e := startNode(t)
	cfg := schedule("* * * * * *")
	cfg["run_as"] = "anon"
	e.MustDeploy("as-anon", echoModule(t), cfg)
	waitFor(t, 10*time.Second, "a run", func() bool { return count(runs(t, e, "as-anon"), "succeeded") >= 1 })
	rs := runsWhere(t, e, "as-anon", "r.state = 'succeeded'")
	e.Flush()
	var role string
	if err := e.Admin.QueryRow(context.Background(), `SELECT role FROM aerofn.invocations WHERE id = $1`, rs[0].InvocationID).Scan(&role); err != nil {
		t.Fatal(err)
	}
	if rs[0].Role != "anon" || role != "anon" {
		t.Fatalf("run role %q, invocation role %q", rs[0].Role, role)
	}
}

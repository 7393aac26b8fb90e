package scheduler_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
)

// TestCleanupSessions is the seed's third use case end to end: a scheduled
// function (examples/cleanup-sessions, Go SDK) runs
// DELETE FROM sessions WHERE expires_at < NOW() as service_role, which sees
// every user's rows through row-level security, and logs how many it
// deleted.
func TestCleanupSessions(t *testing.T) {
	t.Parallel()
	e := startNode(t)
	exec(t, e, `CREATE TABLE public.sessions (
		id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
		user_id    uuid NOT NULL,
		expires_at timestamptz NOT NULL
	);
	ALTER TABLE public.sessions ENABLE ROW LEVEL SECURITY;
	ALTER TABLE public.sessions FORCE ROW LEVEL SECURITY;
	CREATE POLICY sessions_own ON public.sessions FOR ALL TO authenticated
		USING (user_id = (SELECT auth.uid())) WITH CHECK (user_id = (SELECT auth.uid()));
	GRANT SELECT, INSERT, UPDATE, DELETE ON public.sessions TO authenticated, service_role;
	INSERT INTO public.sessions (user_id, expires_at)
		SELECT gen_random_uuid(), now() - (i || ' hours')::interval FROM generate_series(1, 5) i;
	INSERT INTO public.sessions (user_id, expires_at)
		SELECT gen_random_uuid(), now() + (i || ' hours')::interval FROM generate_series(1, 3) i;`)

	e.MustDeploy("cleanup-sessions", testenv.Example(t, "cleanup-sessions"), schedule("* * * * * *"))
	waitFor(t, time.Minute, "two runs", func() bool { return count(runs(t, e, "cleanup-sessions"), "succeeded") >= 2 })
	// The runs that ran, in tick order. A tick that comes while the run
	// before it is still going is recorded as skipped_overlap (the default
	// overlap policy): on a loaded machine a run can take over a second.
	rs := runsWhere(t, e, "cleanup-sessions", "r.state NOT IN ('pending', 'running', 'skipped_overlap')")
	var deleted []float64
	for _, r := range rs {
		if r.State != "succeeded" || r.Role != "service_role" {
			t.Fatalf("run: %+v", r)
		}
		var out struct{ Deleted float64 }
		if err := json.Unmarshal([]byte(r.Output), &out); err != nil {
			t.Fatalf("output %q: %v", r.Output, err)
		}
		deleted = append(deleted, out.Deleted)
	}
	if deleted[0] != 5 || deleted[1] != 0 {
		t.Fatalf("deleted per run %v, want 5 then 0", deleted)
	}
	var left int
	if err := e.Admin.QueryRow(context.Background(), `SELECT count(*) FROM public.sessions`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 3 {
		t.Fatalf("%d sessions left, want the 3 unexpired", left)
	}
	// The deleted count is in the run's invocation log.
	e.Flush()
	var logs, role string
	if err := e.Admin.QueryRow(context.Background(), `SELECT logs::text, role FROM aerofn.invocations WHERE id = $1`,
		rs[0].InvocationID).Scan(&logs, &role); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "deleted 5 expired sessions") || role != "service_role" {
		t.Fatalf("invocation: role %s, logs %s", role, logs)
	}
	r := e.JSONRequest("GET", "/admin/v1/functions/cleanup-sessions/logs", e.ServiceKey, nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), "deleted 5 expired sessions") {
		t.Fatalf("logs: %d %s", r.Status, r.Body)
	}
}

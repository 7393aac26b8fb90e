package scheduler_test

import (
	"context"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/cluster"
)

// TestOneNodeIdentity: a node has one dedicated session, and one identity
// on it: the session holds the node's liveness lock and the ticker lock, is
// the backend the database triggers register, and the runs the node claims
// carry its name and liveness key.
func TestOneNodeIdentity(t *testing.T) {
	t.Parallel()
	e := startNode(t)
	node := e.Server.Cluster
	e.MustDeploy("tick", echoModule(t), schedule("* * * * * *"))
	waitFor(t, 10*time.Second, "a run", func() bool { return count(runs(t, e, "tick"), "succeeded") >= 1 })
	ctx := context.Background()

	rows, err := e.Admin.Query(ctx, `SELECT pid, application_name FROM pg_stat_activity
		WHERE datname = current_database() AND application_name LIKE $1`, cluster.ApplicationNamePrefix+"%")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int32
	for rows.Next() {
		var pid int32
		var app string
		if err := rows.Scan(&pid, &app); err != nil {
			t.Fatal(err)
		}
		if app != cluster.ApplicationNamePrefix+node.Name() {
			t.Fatalf("a dedicated session %q that is not the node's (%s)", app, node.Name())
		}
		pids = append(pids, pid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(pids) != 1 {
		t.Fatalf("%d dedicated sessions for one node, want 1", len(pids))
	}
	session := pids[0]

	holder := func(object int32) int32 {
		t.Helper()
		var pid int32
		if err := e.Admin.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
				AND classid::int8 = $1 AND objid::int8 = $2
				AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
			int64(cluster.NodeSpace), int64(object)).Scan(&pid); err != nil {
			t.Fatalf("finding the holder of (NodeSpace, %d): %v", object, err)
		}
		return pid
	}
	if p := holder(cluster.TickerObject); p != session {
		t.Fatalf("the ticker lock is held by backend %d, the node's session is %d", p, session)
	}
	if p := holder(node.Key()); p != session {
		t.Fatalf("the liveness lock is held by backend %d, the node's session is %d", p, session)
	}
	var registered int32
	if err := e.Admin.QueryRow(ctx, `SELECT backend_pid FROM aerofn.event_nodes WHERE client_id = $1`, node.Name()).Scan(&registered); err != nil {
		t.Fatalf("the node's row in aerofn.event_nodes: %v", err)
	}
	if registered != session {
		t.Fatalf("the database triggers registered backend %d, the node's session is %d", registered, session)
	}
	var others int
	if err := e.Admin.QueryRow(ctx, `SELECT count(*) FROM aerofn.schedule_runs WHERE node IS NOT NULL
			AND (node <> $1 OR node_key <> $2)`, node.Name(), node.Key()).Scan(&others); err != nil {
		t.Fatal(err)
	}
	if others != 0 {
		t.Fatalf("%d runs carry another name or key than the node's", others)
	}
}

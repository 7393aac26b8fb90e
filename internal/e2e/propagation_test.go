package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aerodb/aerofn/internal/cluster"
	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/propagation"
	"github.com/aerodb/aerofn/internal/testenv"
)

// propagationOf reads the "propagation" field of a change's response.
func propagationOf(t *testing.T, r testenv.Response) propagation.Result {
	t.Helper()
	var body struct {
		Propagation *propagation.Result `json:"propagation"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Propagation == nil {
		t.Fatalf("no propagation in %d %s (%v)", r.Status, r.Body, err)
	}
	return *body.Propagation
}

// A deploy, a rollback and an enable answer once every other live node
// serves the change: its module loaded (here checked before any call
// reaches the other node) and its cached copy the new one; the response
// counts the nodes.
func TestChangesReturnOnceEveryNodeServesThem(t *testing.T) {
	a := testenv.Start(t)
	b := testenv.StartOn(t, a.DatabaseURL, small)

	r := a.Deploy("hello", testenv.Example(t, "hello"), nil)
	if r.Status != 201 {
		t.Fatalf("deploy: %d %s", r.Status, r.Body)
	}
	hash := r.JSON(t)["wasm_hash"].(string)
	if p := propagationOf(t, r); p.Nodes != 2 || p.Ready != 2 || len(p.Pending) != 0 {
		t.Fatalf("deploy's propagation %+v, want 2 of 2 nodes", p)
	}
	if s := b.Server.Engine.Stats(); !b.Server.Engine.Cached(hash) || s.ArtifactLoads != 1 || s.Compiles != 0 {
		t.Fatalf("the other node had not loaded the artifact when the deploy answered: %+v", s)
	}
	start := time.Now()
	if r := b.Invoke("hello", b.AnonKey, map[string]string{"name": "B"}); r.Status != 200 {
		t.Fatalf("first call on the other node: %d %s", r.Status, r.Body)
	}
	t.Logf("first call on the other node after the deploy: %v", time.Since(start))

	// A rollback to a version the other node has never loaded, whose
	// artifact is already stored (so no artifact notice comes before the
	// commit): the rollback answers once that node has loaded it.
	h1 := a.MustDeploy("fn", compile(t, watEcho), nil)["wasm_hash"].(string)
	a.MustDeploy("fn", compile(t, watLoop), nil)
	c := testenv.StartOn(t, a.DatabaseURL, small)
	if c.Server.Engine.Cached(h1) {
		t.Fatal("a new node loaded a version that is not current")
	}
	r = a.JSONRequest("POST", "/admin/v1/functions/fn/rollback", a.ServiceKey, map[string]any{"version": 1})
	if r.Status != 200 {
		t.Fatalf("rollback: %d %s", r.Status, r.Body)
	}
	if p := propagationOf(t, r); p.Nodes != 3 || p.Ready != 3 {
		t.Fatalf("rollback's propagation %+v, want 3 of 3 nodes", p)
	}
	if !c.Server.Engine.Cached(h1) {
		t.Fatalf("the rollback answered before the node loaded the version: %+v", c.Server.Engine.Stats())
	}

	for _, enabled := range []bool{false, true} {
		r = a.JSONRequest("PATCH", "/admin/v1/functions/fn", a.ServiceKey, map[string]any{"enabled": enabled})
		if r.Status != 200 {
			t.Fatalf("patch enabled=%v: %d %s", enabled, r.Status, r.Body)
		}
		if p := propagationOf(t, r); p.Nodes != 3 || p.Ready != 3 {
			t.Fatalf("propagation of enabled=%v: %+v, want 3 of 3 nodes", enabled, p)
		}
		// Each node's cached copy is the patched one: a disabled function
		// is not found at once, an enabled one answers.
		for _, n := range []*testenv.Env{b, c} {
			want := 404
			if enabled {
				want = 200
			}
			if r := n.Invoke("fn", n.AnonKey, map[string]string{"x": "y"}); r.Status != want {
				t.Fatalf("call after enabled=%v: %d %s", enabled, r.Status, r.Body)
			}
		}
	}
}

// silentNode holds a liveness lock as a node's session would, and never
// acknowledges anything: a frozen node, or one whose acknowledgement is
// lost. It returns the backend pid of that session, to end it.
func silentNode(t *testing.T, dbURL, name string) uint32 {
	t.Helper()
	cc, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	cc.RuntimeParams["application_name"] = cluster.ApplicationNamePrefix + name
	conn, err := pgx.ConnectConfig(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_lock($1, $2)`, cluster.NodeSpace, cluster.NewNodeKey()); err != nil {
		t.Fatal(err)
	}
	return conn.PgConn().PID()
}

// A live node that never acknowledges holds a deploy up to
// AEROFN_DEPLOY_PROPAGATION_TIMEOUT and no longer: the deploy succeeds and
// names the node. A node that dies during the wait stops being waited for.
func TestDeployPropagationTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	a := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.DeployPropagationTimeout = timeout }})
	b := testenv.StartOn(t, a.DatabaseURL, small)
	silentNode(t, a.DatabaseURL, "silent")

	start := time.Now()
	r := a.Deploy("echo", compile(t, watEcho), nil)
	took := time.Since(start)
	if r.Status != 201 {
		t.Fatalf("deploy: %d %s", r.Status, r.Body)
	}
	p := propagationOf(t, r)
	if p.Nodes != 3 || p.Ready != 2 || !slices.Equal(p.Pending, []string{"silent"}) {
		t.Fatalf("propagation %+v, want 2 of 3 nodes ready and the silent one pending", p)
	}
	if took < timeout || took > timeout+10*time.Second {
		t.Fatalf("deploy took %v with a node that never acknowledges; the timeout is %v", took, timeout)
	}
	if r := b.Invoke("echo", b.AnonKey, map[string]string{"name": "B"}); r.Status != 200 {
		t.Fatalf("call on the node that acknowledged: %d %s", r.Status, r.Body)
	}

	// Timeout 0: no wait at all.
	z := testenv.StartOn(t, a.DatabaseURL, testenv.Options{Config: func(c *config.Config) {
		c.RolePoolSize = 2
		c.DeployPropagationTimeout = 0
	}})
	loop := compile(t, watLoop)
	z.MustDeploy("loop", loop, nil) // the module is loaded on z: the next deploy is its commit and its wait
	start = time.Now()
	r = z.Deploy("loop2", loop, nil)
	if took := time.Since(start); r.Status != 201 || took > timeout {
		t.Fatalf("deploy without a wait: %d after %v: %s", r.Status, took, r.Body)
	}
	if p := propagationOf(t, r); p.Nodes != 4 || !slices.Contains(p.Pending, "silent") {
		t.Fatalf("propagation without a wait: %+v", p)
	}
}

// A node that dies while a deploy waits for it (its session ends, as when
// its process is killed) stops being waited for.
func TestDeployStopsWaitingForANodeThatDies(t *testing.T) {
	a := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.DeployPropagationTimeout = time.Minute }})
	pid := silentNode(t, a.DatabaseURL, "dying")
	killed := make(chan time.Time, 1)
	go func() {
		// Once the version is committed, the deploy is waiting.
		ctx := context.Background()
		for {
			var n int
			if err := a.Admin.QueryRow(ctx, `SELECT count(*) FROM aerofn.versions`).Scan(&n); err != nil || n > 0 {
				break
			}
			time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
		}
		time.Sleep(300 * time.Millisecond)
		_, _ = a.Admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid)
		killed <- time.Now()
	}()
	r := a.Deploy("echo", compile(t, watEcho), nil)
	answered := time.Now()
	if r.Status != 201 {
		t.Fatalf("deploy: %d %s", r.Status, r.Body)
	}
	if p := propagationOf(t, r); p.Nodes != 1 || p.Ready != 1 || len(p.Pending) != 0 {
		t.Fatalf("propagation %+v, want the dead node dropped", p)
	}
	select {
	case k := <-killed:
		if d := answered.Sub(k); d > 10*time.Second {
			t.Fatalf("the deploy answered %v after the node died", d)
		} else {
			t.Logf("the deploy answered %v after the node died", d)
		}
	default:
		t.Fatal("the deploy answered before the node died, with the node live")
	}
}

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/registry"
	"github.com/aerodb/aerofn/internal/testenv"
	"github.com/aerodb/aerofn/internal/testenv/wat"
)

// No call pays a compile (docs/RATIONALE.md, "Compiled artifacts reach
// every node"): the deploying node compiles once and stores the artifact;
// another node, and a node restarted with an empty data directory, load it.
func TestArtifactsReachEveryNode(t *testing.T) {
	hello := testenv.Example(t, "hello")
	a := testenv.Start(t)
	b := testenv.StartOn(t, a.DatabaseURL, small)

	d := a.MustDeploy("hello", hello, nil)
	hash := d["wasm_hash"].(string)
	if s := a.Server.Engine.Stats(); s.Compiles != 1 || s.InitCompiles != 1 || s.Preinitialized != 1 {
		t.Fatalf("deploying node: %+v, want one compile (and one cheap compile for _initialize)", s)
	}
	var stored int
	if err := a.Admin.QueryRow(context.Background(), `SELECT count(*) FROM aerofn.artifacts WHERE wasm_hash = $1 AND fingerprint = $2`,
		hash, a.Server.Engine.Fingerprint()).Scan(&stored); err != nil || stored != 1 {
		t.Fatalf("artifacts stored: %d %v", stored, err)
	}

	start := time.Now()
	r := b.Invoke("hello", b.AnonKey, map[string]string{"name": "B"})
	took := time.Since(start)
	if r.Status != 200 {
		t.Fatalf("first call on the other node: %d %s", r.Status, r.Body)
	}
	// The cheap artifact the deploy answered with, then (or at once) the
	// optimised one.
	if s := b.Server.Engine.Stats(); s.Compiles != 0 || s.InitCompiles != 0 || s.ArtifactLoads < 1 {
		t.Fatalf("other node: %+v, want the artifact loaded and nothing compiled", s)
	}
	t.Logf("first call on the other node: %v", took)

	stop(t, b)

	// A node starting on an empty data directory loads it before it serves.
	c := testenv.StartOn(t, a.DatabaseURL, small)
	if !c.Server.Engine.Cached(hash) {
		t.Fatalf("restarted node serves before the module is loaded: %+v", c.Server.Engine.Stats())
	}
	start = time.Now()
	if r := c.Invoke("hello", c.AnonKey, map[string]string{"name": "C"}); r.Status != 200 {
		t.Fatalf("first call on the restarted node: %d %s", r.Status, r.Body)
	}
	took = time.Since(start)
	if s := c.Server.Engine.Stats(); s.Compiles != 0 || s.ArtifactLoads != 1 {
		t.Fatalf("restarted node: %+v", s)
	}
	t.Logf("first call on a node started with an empty data directory: %v", took)
}

// An artifact in the database that cannot be used (its MAC fails, or
// wasmtime refuses it) never crashes a node and is never run: the node
// compiles the module in the background, answers 503 not_ready with
// Retry-After meanwhile, and replaces the bad artifact.
func TestBadArtifactFallsBackToCompiling(t *testing.T) {
	hello := testenv.Example(t, "hello")
	a := testenv.Start(t)
	hash := a.MustDeploy("hello", hello, nil)["wasm_hash"].(string)
	fp := a.Server.Engine.Fingerprint()
	arts := registry.NewArtifacts(a.Admin, testenv.SecretsKey)
	ctx := context.Background()
	// Only the optimised artifact: the cheap one the deploy answered with
	// would serve instead.
	if _, err := a.Admin.Exec(ctx, `DELETE FROM aerofn.artifacts WHERE fingerprint <> $1`, fp); err != nil {
		t.Fatal(err)
	}

	damage := map[string]func(){
		// Changed behind the nodes' back: the MAC no longer matches.
		"tampered": func() {
			if _, err := a.Admin.Exec(ctx, `UPDATE aerofn.artifacts SET bytes = overlay(bytes placing '\x00'::bytea from 5000)
				WHERE wasm_hash = $1`, hash); err != nil {
				t.Fatal(err)
			}
		},
		// Signed, but not an artifact wasmtime accepts.
		"incompatible": func() {
			if err := arts.Put(ctx, hash, fp, []byte("\x7fELF, but not from this engine")); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, spoil := range damage {
		t.Run(name, func(t *testing.T) {
			spoil()
			n := testenv.StartOn(t, a.DatabaseURL, small)
			r := n.Invoke("hello", n.AnonKey, map[string]string{"name": "N"})
			if r.Status == 503 {
				if r.Code() != "not_ready" || r.Header.Get("Retry-After") == "" {
					t.Fatalf("503 without code not_ready and Retry-After: %s %v", r.Body, r.Header)
				}
				r = waitFor(t, 3*time.Minute, func() testenv.Response {
					return n.Invoke("hello", n.AnonKey, map[string]string{"name": "N"})
				})
			}
			if r.Status != 200 {
				t.Fatalf("call: %d %s", r.Status, r.Body)
			}
			if s := n.Server.Engine.Stats(); s.Compiles != 1 || s.ArtifactLoads != 0 || s.ArtifactLoadFailures == 0 {
				t.Fatalf("node: %+v, want the artifact refused and one compile", s)
			}
			// The compile replaced the bad artifact: the next node loads it.
			waitFor(t, time.Minute, func() testenv.Response {
				if art, err := arts.Get(ctx, hash, fp); err == nil && art != nil && len(art) > 1000 {
					return testenv.Response{Status: 200}
				}
				return testenv.Response{Status: 503}
			})
			stop(t, n)
			m := testenv.StartOn(t, a.DatabaseURL, small)
			if s := m.Server.Engine.Stats(); s.Compiles != 0 || s.ArtifactLoads != 1 {
				t.Fatalf("node after the replacement: %+v", s)
			}
			stop(t, m)
		})
	}
}

// A rollback makes an older version current; its artifact is made ready
// before the change commits, even if the database lost it.
func TestRollbackArtifactReady(t *testing.T) {
	v1, v2 := compile(t, watEcho), compile(t, watLoop)
	a := testenv.Start(t)
	h1 := a.MustDeploy("fn", v1, nil)["wasm_hash"].(string)
	a.MustDeploy("fn", v2, nil)
	// As if v1 had been deployed by an aerofn that did not store artifacts.
	if _, err := a.Admin.Exec(context.Background(), `DELETE FROM aerofn.artifacts WHERE wasm_hash = $1`, h1); err != nil {
		t.Fatal(err)
	}
	b := testenv.StartOn(t, a.DatabaseURL, small)
	if r := a.JSONRequest("POST", "/admin/v1/functions/fn/rollback", a.ServiceKey, map[string]any{"version": 1}); r.Status != 200 {
		t.Fatalf("rollback: %d %s", r.Status, r.Body)
	}
	if r := b.Invoke("fn", b.AnonKey, map[string]string{"x": "y"}); r.Status != 200 {
		t.Fatalf("call after rollback: %d %s", r.Status, r.Body)
	}
	if s := b.Server.Engine.Stats(); s.Compiles != 0 {
		t.Fatalf("other node compiled after the rollback: %+v", s)
	}
}

// A node without any artifact for its engine (here: every artifact
// deleted, as after an engine upgrade) compiles in the background at
// startup and serves once that is done; nothing compiles on a call.
func TestStartupCompilesMissingArtifacts(t *testing.T) {
	a := testenv.Start(t)
	a.MustDeploy("fn", compile(t, watEcho), nil)
	if _, err := a.Admin.Exec(context.Background(), `DELETE FROM aerofn.artifacts`); err != nil {
		t.Fatal(err)
	}
	n := testenv.StartOn(t, a.DatabaseURL, small)
	r := waitFor(t, time.Minute, func() testenv.Response { return n.Invoke("fn", n.AnonKey, map[string]string{"x": "y"}) })
	if r.Status != 200 {
		t.Fatalf("call: %d %s", r.Status, r.Body)
	}
	if s := n.Server.Engine.Stats(); s.Compiles != 1 {
		t.Fatalf("node: %+v, want one (background) compile", s)
	}
}

// small keeps the extra nodes' role pools small: the test database server
// is shared.
var small = testenv.Options{Config: func(c *config.Config) { c.RolePoolSize = 2 }}

// stop stops an extra node early, giving its connections back.
func stop(t *testing.T, e *testenv.Env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Server.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls call until it answers something other than 503, or fails
// the test at the deadline.
func waitFor(t *testing.T, within time.Duration, call func() testenv.Response) testenv.Response {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := call()
		if r.Status != 503 {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("still 503 after %v: %s", within, r.Body)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

// A stored artifact is announced at once, before the deploy that stored it
// commits its version: another node fetches it then, so its first call
// after the deploy does not wait for the fetch. Here no version is ever
// made current, and the other node loads the module all the same.
func TestStoredArtifactIsPrefetched(t *testing.T) {
	a := testenv.Start(t)
	b := testenv.StartOn(t, a.DatabaseURL, small)
	wasm := wat.Compile(wat.Echo)
	sum := sha256.Sum256(wasm)
	hash := hex.EncodeToString(sum[:])
	if b.Server.Engine.Cached(hash) {
		t.Fatal("cached before anything was stored")
	}
	if err := a.Server.Invoker.Prepare(context.Background(), hash, func() ([]byte, error) { return wasm, nil }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !b.Server.Engine.Cached(hash) {
		if time.Now().After(deadline) {
			t.Fatalf("the other node did not fetch the announced artifact: %+v", b.Server.Engine.Stats())
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
	if s := b.Server.Engine.Stats(); s.Compiles != 0 || s.ArtifactLoads != 1 {
		t.Fatalf("other node: %+v, want the artifact loaded and nothing compiled", s)
	}
}

// A node's engine reserves 4 GiB per memory, so the code it compiles has no
// bounds checks (engine.Config.ElideBoundsChecks), and calls still trap on
// an access past the end of memory.
func TestNodeEngineElidesBoundsChecks(t *testing.T) {
	e := testenv.Start(t)
	if !e.Server.Engine.BoundsChecksElided() {
		t.Fatal("the node's engine compiles bounds checks")
	}
	e.MustDeploy("oob", compile(t, `(module
  (memory (export "memory") 1)
  (func (export "handler") (result i32)
    (drop (i32.load (i32.const 65536)))
    (i32.const 0)))`), nil)
	r := e.Send("POST", "/functions/v1/oob", hdr("Authorization", "Bearer "+e.ServiceKey), nil)
	if r.Status != 500 || !strings.Contains(string(r.Body), "out of bounds") {
		t.Fatalf("out-of-bounds load: %d %s", r.Status, r.Body)
	}
}

// A deploy whose artifact cannot be stored fails with a JSON error and
// makes nothing current: the cheap artifact is stored while the node maps
// its own copy (engine.Source.Share), and that store's failure is the
// deploy's. Once the table takes writes again, the same deploy succeeds.
func TestDeployFailsWhenItsArtifactCannotBeStored(t *testing.T) {
	hello := testenv.Example(t, "hello")
	a := testenv.Start(t)
	ctx := context.Background()
	if _, err := a.Admin.Exec(ctx, `
		CREATE FUNCTION aerofn.refuse_artifacts() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'artifacts refused by the test'; END $$;
		CREATE TRIGGER refuse_artifacts BEFORE INSERT OR UPDATE ON aerofn.artifacts
			FOR EACH ROW EXECUTE FUNCTION aerofn.refuse_artifacts()`); err != nil {
		t.Fatal(err)
	}
	r := a.Deploy("hello", hello, nil)
	if r.Status < 500 || !strings.Contains(string(r.Body), `"error"`) {
		t.Fatalf("deploy with the artifacts table refusing writes: %d %s", r.Status, r.Body)
	}
	var fns int
	if err := a.Admin.QueryRow(ctx, `SELECT count(*) FROM aerofn.functions WHERE name = 'hello'`).Scan(&fns); err != nil || fns != 0 {
		t.Fatalf("functions named hello after the failed deploy: %d %v", fns, err)
	}
	if _, err := a.Admin.Exec(ctx, `DROP TRIGGER refuse_artifacts ON aerofn.artifacts`); err != nil {
		t.Fatal(err)
	}
	a.MustDeploy("hello", hello, nil)
	if r := a.Invoke("hello", a.AnonKey, map[string]string{"name": "again"}); r.Status != 200 {
		t.Fatalf("call after the second deploy: %d %s", r.Status, r.Body)
	}
}

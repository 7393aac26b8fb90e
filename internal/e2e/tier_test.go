package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/testenv"
)

// A deploy answers once the cheap compile of the snapshot serves on every
// node (docs/RATIONALE.md, "Compiled artifacts reach every node"); the
// deploying node then compiles the optimised artifact in the background,
// stores and announces it, and every node swaps it in while calls keep
// succeeding; a node started afterwards takes the optimised artifact.
func TestDeployAnswersOnTheCheapTier(t *testing.T) {
	hello := testenv.Example(t, "hello")
	// The deploy answers once node B has loaded the cheap artifact too; on
	// a loaded machine that can take longer than the test nodes' usual 5 s
	// bound, after which the deploy would answer with B pending.
	a := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.DeployPropagationTimeout = 2 * time.Minute }})
	b := testenv.StartOn(t, a.DatabaseURL, small)

	r := a.Deploy("hello", hello, nil)
	if r.Status != 201 {
		t.Fatalf("deploy: %d %s", r.Status, r.Body)
	}
	if p := propagationOf(t, r); p.Ready != p.Nodes || p.Nodes != 2 {
		t.Fatalf("propagation: %+v", p)
	}
	hash := r.JSON(t)["wasm_hash"].(string)
	for _, n := range []*testenv.Env{a, b} {
		if tier, ok := n.Server.Engine.Tier(hash); !ok || tier != engine.TierCheap {
			t.Fatalf("when the deploy answered: tier %v (loaded %v), want cheap", tier, ok)
		}
	}
	if s := a.Server.Engine.Stats(); s.CheapCompiles != 1 || s.Compiles != 1 {
		t.Fatalf("deploying node: %+v, want one cheap compile", s)
	}
	if s := b.Server.Engine.Stats(); s.Compiles != 0 || s.ArtifactLoads != 1 {
		t.Fatalf("other node: %+v, want the cheap artifact loaded", s)
	}
	rows := func(fp string) int {
		var n int
		if err := a.Admin.QueryRow(context.Background(), `SELECT count(*) FROM aerofn.artifacts WHERE wasm_hash = $1 AND fingerprint = $2`,
			hash, fp).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if rows(a.Server.Engine.CheapFingerprint()) != 1 {
		t.Fatal("the cheap artifact is not stored")
	}

	// Calls on both nodes while the optimised compile is swapped in.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	calls := 0
	done := make(chan struct{})
	for _, n := range []*testenv.Env{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				r := n.Invoke("hello", n.AnonKey, map[string]string{"name": "T"})
				mu.Lock()
				calls++
				if r.Status != 200 || !strings.Contains(string(r.Body), "T") {
					failures = append(failures, string(r.Body))
				}
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ta, _ := a.Server.Engine.Tier(hash)
		tb, _ := b.Server.Engine.Tier(hash)
		if ta == engine.TierOptimized && tb == engine.TierOptimized {
			break
		}
		if time.Now().After(deadline) {
			close(done)
			wg.Wait()
			t.Fatalf("not optimised after 3 minutes: A %v %+v, B %v %+v", ta, a.Server.Engine.Stats(), tb, b.Server.Engine.Stats())
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	// A few calls on the optimised modules, counted rather than slept for.
	mu.Lock()
	after := calls + 8
	mu.Unlock()
	for {
		mu.Lock()
		n := calls
		mu.Unlock()
		if n >= after || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	close(done)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d calls during the swap failed, first: %s", len(failures), calls, failures[0])
	}
	t.Logf("%d calls during the swap", calls)
	if s := a.Server.Engine.Stats(); s.Optimizes != 1 || s.TierUpgrades != 1 || s.CheapModules != 0 {
		t.Fatalf("deploying node after the swap: %+v", s)
	}
	if s := b.Server.Engine.Stats(); s.Compiles != 0 || s.Optimizes != 0 || s.TierUpgrades != 1 || s.ArtifactLoads != 2 {
		t.Fatalf("other node after the swap: %+v, want the optimised artifact loaded, nothing compiled", s)
	}
	if rows(a.Server.Engine.Fingerprint()) != 1 {
		t.Fatal("the optimised artifact is not stored")
	}
	m := a.Do("GET", "/metrics", "", "", nil)
	for _, series := range []string{"aerofn_modules_cheap 0", "aerofn_modules_tier_upgrades_total 1"} {
		if !strings.Contains(string(m.Body), series) {
			t.Errorf("metrics lack %q", series)
		}
	}

	// A node started now takes the optimised artifact.
	stop(t, b)
	c := testenv.StartOn(t, a.DatabaseURL, small)
	if tier, ok := c.Server.Engine.Tier(hash); !ok || tier != engine.TierOptimized {
		t.Fatalf("restarted node: tier %v (loaded %v): %+v", tier, ok, c.Server.Engine.Stats())
	}
	if r := c.Invoke("hello", c.AnonKey, map[string]string{"name": "C"}); r.Status != 200 {
		t.Fatalf("call on the restarted node: %d %s", r.Status, r.Body)
	}
	if s := c.Server.Engine.Stats(); s.Compiles != 0 || s.ArtifactLoads != 1 || c.Server.Invoker.BackgroundPending() != 0 {
		t.Fatalf("restarted node: %+v", s)
	}
}

// A node that starts while only the cheap artifact is stored (the
// deploying node stopped before its optimised compile was stored) serves
// the cheap one and compiles the optimised one itself, in the background.
func TestStartWithOnlyTheCheapArtifact(t *testing.T) {
	hello := testenv.Example(t, "hello")
	a := testenv.Start(t)
	hash := a.MustDeploy("hello", hello, nil)["wasm_hash"].(string)
	if _, err := a.Admin.Exec(context.Background(), `DELETE FROM aerofn.artifacts WHERE wasm_hash = $1 AND fingerprint = $2`,
		hash, a.Server.Engine.Fingerprint()); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := a.Admin.QueryRow(context.Background(), `SELECT count(*) FROM aerofn.artifacts WHERE wasm_hash = $1`, hash).Scan(&n); err != nil || n != 1 {
		t.Fatalf("cheap artifact rows: %d %v", n, err)
	}
	b := testenv.StartOn(t, a.DatabaseURL, small)
	if tier, ok := b.Server.Engine.Tier(hash); !ok || tier != engine.TierCheap {
		t.Fatalf("started node: tier %v (loaded %v), want the cheap artifact", tier, ok)
	}
	if r := b.Invoke("hello", b.AnonKey, map[string]string{"name": "B"}); r.Status != 200 {
		t.Fatalf("call: %d %s", r.Status, r.Body)
	}
	b.WaitOptimized()
	if tier, _ := b.Server.Engine.Tier(hash); tier != engine.TierOptimized {
		t.Fatalf("after the background compile: tier %v: %+v", tier, b.Server.Engine.Stats())
	}
	if s := b.Server.Engine.Stats(); s.Optimizes != 1 {
		t.Fatalf("started node: %+v, want one optimising compile", s)
	}
	if err := a.Admin.QueryRow(context.Background(), `SELECT count(*) FROM aerofn.artifacts WHERE wasm_hash = $1 AND fingerprint = $2`,
		hash, a.Server.Engine.Fingerprint()).Scan(&n); err != nil || n != 1 {
		t.Fatalf("optimised artifact rows: %d %v", n, err)
	}
}

package engine

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// A cheap load serves at once, Optimize swaps the optimised compile in
// while calls run, another engine loads the cheap artifact and upgrades to
// the optimised one, and a restart finds the optimised one on disk.
func TestCheapTierThenOptimized(t *testing.T) {
	wasm := fixture(t, "init")
	dirA := t.TempDir()
	cfg := Config{CacheDir: dirA, ElideBoundsChecks: true, PoolSlots: 8}
	a := newEngine(t, cfg)
	if a.CheapFingerprint() == a.Fingerprint() {
		t.Fatal("the cheap tier shares the optimised tier's key")
	}
	var shared [][]byte
	m, err := a.LoadFrom("tier1", Source{Wasm: func() ([]byte, error) { return wasm, nil }, Cheap: true,
		Share: func(art []byte) { shared = append(shared, art) }})
	if err != nil {
		t.Fatal(err)
	}
	if m.Tier() != TierCheap {
		t.Fatalf("tier %v, want cheap", m.Tier())
	}
	wantPreinit(t, m, true, "")
	if s := a.Stats(); s.CheapCompiles != 1 || s.CheapModules != 1 || s.Compiles != 1 {
		t.Fatalf("after the cheap load: %+v", s)
	}
	res := run(t, a, m, "", Limits{}, nil)
	wantStatus(t, res, StatusSuccess)
	cheapArt, tier, err := a.ArtifactOf("tier1")
	if err != nil || tier != TierCheap {
		t.Fatalf("artifact: tier %v, %v", tier, err)
	}
	// The load shared the artifact it compiled, once, while it loaded.
	if len(shared) != 1 || !bytes.Equal(shared[0], cheapArt) {
		t.Fatalf("shared %d artifacts; want the one ArtifactOf reads", len(shared))
	}

	// Another engine (a second node) serves the cheap artifact.
	b := newEngine(t, Config{CacheDir: t.TempDir(), ElideBoundsChecks: true, PoolSlots: 8})
	if b.CheapFingerprint() != a.CheapFingerprint() {
		t.Fatal("same settings, different cheap fingerprints")
	}
	mb, err := b.LoadFrom("tier1", Source{
		Artifact:      func() ([]byte, error) { return nil, nil },
		CheapArtifact: func() ([]byte, error) { return cheapArt, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if mb.Tier() != TierCheap {
		t.Fatalf("second engine: tier %v", mb.Tier())
	}
	wantStatus(t, run(t, b, mb, "", Limits{}, nil), StatusSuccess)

	// Calls keep running while the optimised compile is swapped in.
	var stop atomic.Bool
	var failed atomic.Value
	var calls atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				m, err := a.LoadFrom("tier1", Source{})
				if err != nil {
					failed.Store(err.Error())
					return
				}
				if r := a.Run(context.Background(), m, nil, Limits{}, nil); r.Status != StatusSuccess || string(r.Output) != "initialized" {
					failed.Store(string(r.Status) + " " + string(r.Output))
					return
				}
				calls.Add(1)
			}
		}()
	}
	ok, err := a.Optimize(context.Background(), "tier1", func() ([]byte, error) {
		t.Error("the snapshot was compiled from the module's bytes again")
		return wasm, nil
	})
	stop.Store(true)
	wg.Wait()
	if !ok || err != nil {
		t.Fatalf("Optimize: %v %v", ok, err)
	}
	if f := failed.Load(); f != nil {
		t.Fatalf("a call during the swap failed: %v", f)
	}
	if tr, _ := a.Tier("tier1"); tr != TierOptimized {
		t.Fatalf("after Optimize: tier %v", tr)
	}
	if s := a.Stats(); s.Optimizes != 1 || s.TierUpgrades != 1 || s.CheapModules != 0 || s.Compiles != 1 {
		t.Fatalf("after Optimize: %+v", s)
	}
	// The cheap module's idle instances were ended: none is left for a
	// module nobody will call again.
	a.reuseMu.Lock()
	if a.idle != nil {
		for el := a.idle.Front(); el != nil; el = el.Next() {
			if el.Value.(*warmInst).mod == m {
				a.reuseMu.Unlock()
				t.Fatal("an idle instance of the cheap module is kept")
			}
		}
	}
	a.reuseMu.Unlock()
	m2, _ := a.LoadFrom("tier1", Source{})
	wantStatus(t, run(t, a, m2, "", Limits{}, nil), StatusSuccess)
	optArt, tier, err := a.ArtifactOf("tier1")
	if err != nil || tier != TierOptimized {
		t.Fatalf("artifact after Optimize: tier %v, %v", tier, err)
	}
	if again, _ := a.Optimize(context.Background(), "tier1", nil); again {
		t.Fatal("optimised twice")
	}

	// The second engine upgrades when the optimised artifact is announced.
	if !b.Upgrade("tier1", func() ([]byte, error) { return optArt, nil }) {
		t.Fatalf("Upgrade refused: %+v", b.Stats())
	}
	if tr, _ := b.Tier("tier1"); tr != TierOptimized {
		t.Fatalf("second engine after Upgrade: tier %v", tr)
	}
	mb2, _ := b.LoadFrom("tier1", Source{})
	wantStatus(t, run(t, b, mb2, "", Limits{}, nil), StatusSuccess)
	// A call still holding the cheap module finishes on it.
	wantStatus(t, run(t, b, mb, "", Limits{}, nil), StatusSuccess)

	// A restart finds the optimised artifact on disk, and the cheap one is gone.
	a.persisting.Wait()
	c := newEngine(t, cfg)
	mc, err := c.LoadFrom("tier1", Source{Cheap: true})
	if err != nil {
		t.Fatal(err)
	}
	if mc.Tier() != TierOptimized || c.Stats().DiskLoads != 1 {
		t.Fatalf("restarted: tier %v, %+v", mc.Tier(), c.Stats())
	}
	if _, err := os.Stat(a.cheapPath("tier1")); !os.IsNotExist(err) {
		t.Fatalf("cheap artifact left on disk: %v", err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dirA, "*.tmp")); len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
	t.Logf("calls during the swap: %d", calls.Load())
}

// A cheap artifact on disk is taken when no optimised one exists, and
// Optimize then compiles from the module's bytes (a restarted node has no
// snapshot).
func TestCheapTierFromDiskOptimizesFromWasm(t *testing.T) {
	wasm := fixture(t, "init")
	dir := t.TempDir()
	a := newEngine(t, Config{CacheDir: dir})
	if _, err := a.LoadFrom("tier2", Source{Wasm: func() ([]byte, error) { return wasm, nil }, Cheap: true}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := newEngine(t, Config{CacheDir: dir})
	m, err := b.LoadFrom("tier2", Source{})
	if err != nil || m.Tier() != TierCheap {
		t.Fatalf("restarted: %v %v", m, err)
	}
	fetched := false
	ok, err := b.Optimize(context.Background(), "tier2", func() ([]byte, error) { fetched = true; return wasm, nil })
	if !ok || err != nil || !fetched {
		t.Fatalf("Optimize: %v %v (module fetched: %v)", ok, err, fetched)
	}
	m2, _ := b.LoadFrom("tier2", Source{})
	if m2.Tier() != TierOptimized {
		t.Fatalf("tier %v", m2.Tier())
	}
	wantPreinit(t, m2, true, "")
	wantStatus(t, run(t, b, m2, "", Limits{}, nil), StatusSuccess)
}

// TestMeasureTierLoad prints the process CPU of a cheap Load of
// examples/hello, of the Optimize that follows and of a full Load, on
// engines configured as the server's, interleaved over rounds
// (docs/RATIONALE.md, "A cheap tier first"). AEROFN_MEASURE_TIER=rounds
// runs it.
func TestMeasureTierLoad(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("AEROFN_MEASURE_TIER"))
	if rounds <= 0 {
		t.Skip("AEROFN_MEASURE_TIER not set")
	}
	wasm := goGuest(t, "hello")
	for r := range rounds {
		for _, cheap := range []bool{r%2 == 0, r%2 != 0} {
			e := newEngine(t, Config{CacheDir: t.TempDir(), ElideBoundsChecks: true, PoolSlots: 16})
			c0 := cpuNow()
			hash := fmt.Sprintf("m%d%v", r, cheap)
			if _, err := e.LoadFrom(hash, Source{Wasm: func() ([]byte, error) { return wasm, nil }, Cheap: cheap}); err != nil {
				t.Fatal(err)
			}
			load := cpuNow() - c0
			if !cheap {
				t.Logf("round %d full load %v", r, load)
				e.Close()
				continue
			}
			c0 = cpuNow()
			if ok, err := e.Optimize(context.Background(), hash, nil); !ok || err != nil {
				t.Fatal(ok, err)
			}
			t.Logf("round %d cheap load %v, then Optimize %v", r, load, cpuNow()-c0)
			e.Close()
		}
	}
}

// A cheap load maps its module from the artifact it writes to the cache
// directory, as a load of a fetched artifact does, rather than copying
// the artifact into the engine: the file is mapped (the memory image
// included) and no other copy is made. Without a cache directory the
// module is deserialized from the bytes, and a snapshot refused after its
// cheap compile leaves no file behind.
func TestCheapCompileMapsItsArtifactFile(t *testing.T) {
	wasm := fixture(t, "init")
	dir := t.TempDir()
	e := newEngine(t, Config{CacheDir: dir, ElideBoundsChecks: true, PoolSlots: 4})
	m, err := e.LoadFrom("mapped1", Source{Wasm: func() ([]byte, error) { return wasm, nil }, Cheap: true})
	if err != nil {
		t.Fatal(err)
	}
	if m.Tier() != TierCheap {
		t.Fatalf("tier %v, want cheap", m.Tier())
	}
	wantStatus(t, run(t, e, m, "", Limits{}, nil), StatusSuccess)
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps:", err)
	}
	cheap := filepath.Base(e.cheapPath("mapped1"))
	found := false
	for _, line := range strings.Split(string(maps), "\n") {
		if strings.Contains(line, dir) && strings.Contains(line, cheap) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no mapping of %s in %s", cheap, dir)
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.cheapPath("mapped1")); err != nil {
		t.Fatalf("the cheap artifact was not named: %v", err)
	}

	// No cache directory: from the bytes.
	n := newEngine(t, Config{ElideBoundsChecks: true, PoolSlots: 4})
	mn, err := n.LoadFrom("mapped2", Source{Wasm: func() ([]byte, error) { return wasm, nil }, Cheap: true})
	if err != nil {
		t.Fatal(err)
	}
	if mn.Tier() != TierCheap {
		t.Fatalf("without a cache directory: tier %v, want cheap", mn.Tier())
	}
	wantStatus(t, run(t, n, mn, "", Limits{}, nil), StatusSuccess)
}

// TestMeasureCheapMapping compares the two ways a cheap compile's artifact
// can become the Engine's module, interleaved, CPU of the process and wall
// time per round, writing the artifact to the cache directory and priming
// (the first instantiation) included: deserialized from the bytes (as
// before), or mapped from the file written (compileSnapshot now). AEROFN_MEASURE_CHEAP_MAP=rounds.
func TestMeasureCheapMapping(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("AEROFN_MEASURE_CHEAP_MAP"))
	if rounds <= 0 {
		t.Skip("AEROFN_MEASURE_CHEAP_MAP not set")
	}
	wasm := goGuest(t, "hello")
	dir := t.TempDir()
	e := newEngine(t, Config{CacheDir: dir, ElideBoundsChecks: true, PoolSlots: 16})
	if _, err := e.LoadFrom("src", Source{Wasm: func() ([]byte, error) { return wasm, nil }, Cheap: true}); err != nil {
		t.Fatal(err)
	}
	art, tier, err := e.ArtifactOf("src")
	if err != nil || tier != TierCheap {
		t.Fatal(tier, err)
	}
	info, err := checkModule(e.current("src").m, true)
	if err != nil {
		t.Fatal(err)
	}
	for r := range rounds {
		for _, mapped := range []bool{r%2 == 0, r%2 != 0} {
			runtime.GC()
			c0, w0 := cpuNow(), time.Now()
			var m *wasmtime.Module
			if mapped {
				tmp, err := writeTemp(filepath.Join(dir, fmt.Sprintf("r%d.cwasm", r)), art)
				if err != nil {
					t.Fatal(err)
				}
				m, err = wasmtime.NewModuleDeserializeFile(e.wt, tmp)
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if m, err = wasmtime.NewModuleDeserialize(e.wt, art); err != nil {
					t.Fatal(err)
				}
				// The artifact was written to the cache directory all the same.
				if _, err := writeTemp(filepath.Join(dir, fmt.Sprintf("r%d.cwasm", r)), art); err != nil {
					t.Fatal(err)
				}
			}
			e.prime(&Module{hash: fmt.Sprintf("r%d%v", r, mapped), m: m, info: info, tier: TierCheap})
			t.Logf("round %d mapped=%v: CPU %v wall %v", r, mapped, cpuNow()-c0, time.Since(w0))
		}
	}
}

// Only a cheap compile shares its artifact while it loads: an optimised
// one is stored by its caller afterwards.
func TestShareOnlyForTheCheapCompile(t *testing.T) {
	wasm := fixture(t, "init")
	e := newEngine(t, Config{CacheDir: t.TempDir(), ElideBoundsChecks: true, PoolSlots: 8})
	m, err := e.LoadFrom("opt", Source{Wasm: func() ([]byte, error) { return wasm, nil },
		Share: func([]byte) { t.Error("an optimised compile shared its artifact") }})
	if err != nil {
		t.Fatal(err)
	}
	if m.Tier() != TierOptimized {
		t.Fatalf("tier %v", m.Tier())
	}
}

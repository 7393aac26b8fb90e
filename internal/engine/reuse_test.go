package engine

import (
	"strings"
	"testing"
)

// A reused instance starts every call from the snapshot: memory written by
// the call before (a byte of the image, a byte of zeroed memory, the output
// buffer) and globals it set are back, whether the written pages are copied
// back or dropped; with reuse off every call has a new instance.
func TestReuseFreshState(t *testing.T) {
	for name, c := range map[string]struct {
		cfg      Config
		drop     bool // the reset drops private pages instead of copying them
		reuseOff bool
	}{
		"copy":     {cfg: Config{PoolSlots: 1}},
		"drop":     {cfg: Config{PoolSlots: 1}, drop: true},
		"disabled": {cfg: Config{PoolSlots: 1, DisableReuse: true}, reuseOff: true},
	} {
		t.Run(name, func(t *testing.T) {
			if c.drop {
				old := reuseDirtyLimit
				reuseDirtyLimit = 0
				t.Cleanup(func() { reuseDirtyLimit = old })
			}
			e := newEngine(t, c.cfg)
			m := load(t, e, "reuse")
			if !m.info.preinit || !m.info.resettable {
				t.Fatalf("module info %+v: want a resettable snapshot", m.info)
			}
			if pagemapFD() < 0 {
				t.Skip("PAGEMAP_SCAN is not available on this kernel")
			}
			const calls = 5
			for i := range calls {
				res := run(t, e, m, "", Limits{}, nil)
				wantStatus(t, res, StatusSuccess)
				if want := "A079"; string(res.Output) != want {
					t.Fatalf("call %d saw %q, want %q: state crossed calls", i, res.Output, want)
				}
			}
			// The first call too: on the instance the load primed (prime.go).
			reused := e.Stats().Reused
			if c.reuseOff && reused != 0 || !c.reuseOff && reused != calls {
				t.Fatalf("%d calls reused an instance", reused)
			}
		})
	}
}

// A Go guest on a reused instance: each call counts from the snapshot, a
// call that grows memory (8 MiB) ends its instance, and the next one starts
// from the snapshot again.
func TestReuseGoGuest(t *testing.T) {
	if pagemapFD() < 0 {
		t.Skip("PAGEMAP_SCAN is not available on this kernel")
	}
	e := goEngine(t, Config{PoolSlots: 2})
	m := loadBytes(t, e, "goguest", goGuest(t, "goguest"))
	state := func() {
		t.Helper()
		res := run(t, e, m, `{"trigger":"http","body":{"do":"state"}}`, Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if !strings.Contains(string(res.Output), `"calls":1,`) {
			t.Fatalf("output %s: state crossed calls", res.Output)
		}
	}
	for range 5 {
		state()
	}
	// The first call too: on the instance the load primed (prime.go).
	if r := e.Stats().Reused; r != 5 {
		t.Fatalf("%d of 5 calls reused an instance, want 5", r)
	}
	wantStatus(t, run(t, e, m, `{"trigger":"http","body":{"do":"alloc","mib":8}}`, Limits{}, nil), StatusSuccess)
	state()
	state()
	// The grown instance was ended, not kept: the alloc call reused one
	// instance, the state call after it started a new one.
	if r := e.Stats().Reused; r != 7 {
		t.Fatalf("%d calls reused an instance, want 7", r)
	}
}

// JavaScript functions run on the runtime's snapshot, whose instances are
// reused too: a global a call sets is gone in the next call.
func TestReuseScriptGlobals(t *testing.T) {
	if pagemapFD() < 0 {
		t.Skip("PAGEMAP_SCAN is not available on this kernel")
	}
	e := newJSEngine(t, Config{CacheDir: t.TempDir()})
	m := loadScript(t, e, "reuse-globals", `var __aerofn_exports = { handler() {
		globalThis.seen = (globalThis.seen || 0) + 1;
		return { seen: globalThis.seen };
	} };`)
	base := e.Stats().Reused // the load's compile to bytecode ran on the runtime's primed instance
	for i := range 4 {
		res := run(t, e, m, `{"trigger":"http","body":{}}`, Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if string(res.Output) != `{"seen":1}` {
			t.Fatalf("call %d returned %s: state crossed calls", i, res.Output)
		}
	}
	if r := e.Stats().Reused - base; r != 3 {
		t.Fatalf("%d of 4 calls reused an instance, want 3", r)
	}
}

// The instance a module's image was read from (the one priming keeps for
// the first call) is left with none of its image's or zero pages present,
// as any other fresh instance: each reset scans every present page, and
// reading the image made them all present (864 pages of a Go guest, where a
// call touches about 230). Pages holding a private copy stay (a reused
// slot's kept-resident pages are zeroed, so private). Its calls still start
// from the snapshot.
func TestReuseImageInstanceDropsItsPages(t *testing.T) {
	if pagemapFD() < 0 {
		t.Skip("PAGEMAP_SCAN is not available on this kernel")
	}
	e := goEngine(t, Config{PoolSlots: 2})
	m := loadBytes(t, e, "goguest", goGuest(t, "goguest"))
	if !m.imageMapped.Load() {
		t.Skip("the image is not mapped from the compiled artifact here")
	}
	w := e.takeWarm(m)
	if w == nil {
		t.Fatal("no primed instance")
	}
	data := w.mem.UnsafeData(w.store)
	shared, _, err := w.scan.scan(data, 0, pageIsPresent, 0, pageIsFile|pageIsPFNZero)
	if err != nil {
		t.Fatal(err)
	}
	if len(shared) != 0 {
		t.Errorf("%d regions of the image or zero pages of the primed instance present, first %v; want none", len(shared), shared[0])
	}
	e.finish(w, true)
	for range 3 {
		res := run(t, e, m, `{"trigger":"http","body":{"do":"state"}}`, Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if !strings.Contains(string(res.Output), `"calls":1,`) {
			t.Fatalf("output %s: state crossed calls", res.Output)
		}
	}
}

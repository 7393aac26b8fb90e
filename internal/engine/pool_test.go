package engine

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// With one slot every call reuses the same pooled memory, so whatever a call
// wrote, grew or set would show in the next one; it must not, whether the
// initial memory is mapped copy-on-write or copied in, and whatever part of
// it is kept resident.
func TestPoolFreshStatePerCall(t *testing.T) {
	for name, cfg := range map[string]Config{
		"cow":           {PoolSlots: 1},
		"copy":          {PoolSlots: 1, CopyMemoryInit: true},
		"no-keep":       {PoolSlots: 1, KeepResident: -1, TableKeepResident: -1},
		"keep-one-page": {PoolSlots: 1, KeepResident: 4096},
		"without-pool":  {DisablePooling: true},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEngine(t, cfg)
			if (e.slots != nil) == cfg.DisablePooling {
				t.Fatalf("pooling on: %v", e.slots != nil)
			}
			m := load(t, e, "dirty")
			for i := range 5 {
				res := run(t, e, m, "", Limits{}, nil)
				wantStatus(t, res, StatusSuccess)
				if want := "seed\x00\x00\x00\x00"; string(res.Output) != want {
					t.Fatalf("call %d saw %q, want %q", i, res.Output, want)
				}
			}
		})
	}
}

// The Go guest keeps its heap in linear memory: each call on the one slot
// must start from the snapshot, not from the previous call's heap (which
// counted a call and allocated 8 MiB), whether memory is mapped or copied in.
func TestPoolFreshStateGoGuest(t *testing.T) {
	wasm := goGuest(t, "goguest")
	for _, cfg := range []Config{{PoolSlots: 1}, {PoolSlots: 1, CopyMemoryInit: true}} {
		e := goEngine(t, cfg)
		m := loadBytes(t, e, "goguest", wasm)
		for i := range 3 {
			wantStatus(t, run(t, e, m, `{"trigger":"http","body":{"do":"alloc","mib":8}}`, Limits{}, nil), StatusSuccess)
			res := run(t, e, m, `{"trigger":"http","body":{"do":"state"}}`, Limits{}, nil)
			wantStatus(t, res, StatusSuccess)
			if !strings.Contains(string(res.Output), `"calls":1,`) {
				t.Fatalf("call %d (%+v) output %s: state crossed calls", i, cfg, res.Output)
			}
		}
	}
}

// A call whose limit is over what a slot holds is capped at the slot: the
// guest that grows until refused is memory_exceeded, not an error.
func TestPoolMemoryCap(t *testing.T) {
	e := newEngine(t, Config{PoolSlots: 2, MaxMemoryBytes: 2 << 20})
	m := load(t, e, "membomb")
	res := run(t, e, m, "", Limits{MemoryBytes: 64 << 20}, nil)
	wantStatus(t, res, StatusMemoryExceeded)
	if res.MemoryPeak > 2<<20 {
		t.Fatalf("memory peak %d over the slot's 2 MiB", res.MemoryPeak)
	}
	// Under the slot's size the call's own limit bites.
	res = run(t, e, m, "", Limits{MemoryBytes: 1 << 20}, nil)
	wantStatus(t, res, StatusMemoryExceeded)
	if res.MemoryPeak > 1<<20 {
		t.Fatalf("memory peak %d over the 1 MiB limit", res.MemoryPeak)
	}
}

// blockingHost holds every db_query until release is closed, and says when
// one has started.
type blockingHost struct {
	fakeHost
	entered chan struct{}
	release chan struct{}
}

func newBlockingHost() *blockingHost {
	h := &blockingHost{entered: make(chan struct{}, 16), release: make(chan struct{})}
	h.db = func(ctx context.Context, req []byte) []byte {
		h.entered <- struct{}{}
		select {
		case <-h.release:
		case <-ctx.Done():
		}
		return []byte(`{"rows":[]}`)
	}
	return h
}

// More instances than slots: the call that finds none fails at once with
// ErrPoolExhausted, and once a slot is free calls run again.
func TestPoolExhausted(t *testing.T) {
	e := newEngine(t, Config{PoolSlots: 1, MaxRunning: 2})
	m := load(t, e, "hostcalls")
	h := newBlockingHost()
	done := make(chan Result)
	go func() { done <- run(t, e, m, `{}`, Limits{}, h) }()
	<-h.entered // the first call holds the only slot

	res := run(t, e, load(t, e, "hello"), "", Limits{}, nil)
	if res.Status != StatusError || !errors.Is(res.Err, ErrPoolExhausted) {
		t.Fatalf("second call: status %s err %v, want ErrPoolExhausted", res.Status, res.Err)
	}
	close(h.release)
	wantStatus(t, <-done, StatusSuccess)
	wantStatus(t, run(t, e, load(t, e, "hello"), "", Limits{}, nil), StatusSuccess)
}

// A call blocked in a host function lends its run token: with one token, a
// second call runs while the first waits on db_query.
func TestRunGateLentDuringHostCall(t *testing.T) {
	e := newEngine(t, Config{MaxRunning: 1})
	m := load(t, e, "hostcalls")
	h := newBlockingHost()
	done := make(chan Result)
	go func() { done <- run(t, e, m, `{}`, Limits{}, h) }()
	<-h.entered

	res := run(t, e, load(t, e, "hello"), "", Limits{Timeout: 5 * time.Second}, nil)
	wantStatus(t, res, StatusSuccess)
	close(h.release)
	wantStatus(t, <-done, StatusSuccess)
}

// A call that cannot get a run token before its deadline times out without
// running, and one whose caller goes away is cancelled.
func TestRunGateWaitBounded(t *testing.T) {
	e := newEngine(t, Config{MaxRunning: 1})
	loop := load(t, e, "loop")
	started := make(chan Result)
	go func() { started <- run(t, e, loop, "", Limits{Timeout: 3 * time.Second}, nil) }()
	// Wait until the loop holds the token.
	deadline := time.Now().Add(10 * time.Second)
	for len(e.running) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the looping call never started")
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	hello := load(t, e, "hello")
	res := run(t, e, hello, "", Limits{Timeout: 50 * time.Millisecond}, nil)
	wantStatus(t, res, StatusTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res = e.Run(ctx, hello, nil, Limits{}, nil)
	if res.Status != StatusError || !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("cancelled call: %s %v", res.Status, res.Err)
	}
	wantStatus(t, <-started, StatusTimeout)
	wantStatus(t, run(t, e, hello, "", Limits{}, nil), StatusSuccess)
}

// GateWaits counts every call at the run gate: one that found a token free
// as a wait of 0, one that waited until its deadline with its wait.
func TestRunGateWaitsCounted(t *testing.T) {
	e := newEngine(t, Config{MaxRunning: 1})
	loop := load(t, e, "loop")
	hello := load(t, e, "hello")
	wantStatus(t, run(t, e, hello, "", Limits{}, nil), StatusSuccess)
	started := make(chan Result)
	go func() { started <- run(t, e, loop, "", Limits{Timeout: 2 * time.Second}, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.running) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the looping call never started")
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	wantStatus(t, run(t, e, hello, "", Limits{Timeout: 60 * time.Millisecond}, nil), StatusTimeout)
	wantStatus(t, <-started, StatusTimeout)

	w := e.GateWaits()
	if len(w.Counts) != len(w.Bounds)+1 {
		t.Fatalf("%d counts for %d bounds", len(w.Counts), len(w.Bounds))
	}
	var total, over50ms uint64
	for i, n := range w.Counts {
		total += n
		if i > 0 && w.Bounds[i-1] >= 50*time.Millisecond {
			over50ms += n
		}
	}
	// The first hello and the loop found the token free; the second hello
	// waited about 60 ms for it and gave up.
	if total != 3 || w.Counts[0] != 2 || over50ms != 1 || w.Sum < 50*time.Millisecond || w.Sum > 5*time.Second {
		t.Fatalf("gate waits: counts %v over bounds %v, sum %s", w.Counts, w.Bounds, w.Sum)
	}
}

// Many engines, each with as many slots as a server admits calls, live in one
// process (tests build dozens): the pool must reserve address space and
// memory maps modestly enough that none fails to start or aborts.
func TestManyPooledEngines(t *testing.T) {
	wasm := fixture(t, "hello")
	maps0 := countMaps(t)
	var engines []*Engine
	for range 40 {
		e := newEngine(t, Config{PoolSlots: 1000})
		m, err := e.Load("hello", func() ([]byte, error) { return wasm, nil })
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, run(t, e, m, "", Limits{}, nil), StatusSuccess)
		engines = append(engines, e)
	}
	per := (countMaps(t) - maps0) / len(engines)
	t.Logf("%d memory maps per engine", per)
	if per > 200 {
		t.Fatalf("%d memory maps per engine", per)
	}
	var wg sync.WaitGroup
	for _, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, _ := e.Load("hello", nil)
			wantStatus(t, run(t, e, m, "", Limits{}, nil), StatusSuccess)
		}()
	}
	wg.Wait()
}

func countMaps(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps")
	}
	return strings.Count(string(b), "\n")
}

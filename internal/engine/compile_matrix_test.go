package engine

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	watmod "github.com/aerodb/aerofn/internal/testenv/wat"
	"github.com/bytecodealliance/wasmtime-go/v39"
)

// TestCompileMatrix measures, in one process and interleaved, the full
// compile of examples/hello's snapshot and the CPU of hello and WAT echo
// calls under several compiler settings (docs/RATIONALE.md, "Engine:
// pre-initialised snapshots"). It runs only when AEROFN_COMPILE_MATRIX is
// set (to the number of rounds):
//
//	AEROFN_COMPILE_MATRIX=3 go test ./internal/engine -run CompileMatrix -v -timeout 30m
func TestCompileMatrix(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("AEROFN_COMPILE_MATRIX"))
	if rounds <= 0 {
		t.Skip("set AEROFN_COMPILE_MATRIX to the number of rounds")
	}
	ctx := context.Background()
	wasm := goGuest(t, "hello")
	base := newEngine(t, Config{DisablePreinit: true})
	g, err := rewriteGrow(wasm)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseWasm(g)
	if err != nil {
		t.Fatal(err)
	}
	ie, err := base.initEngine()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ie.compile(p.instrumented())
	if err != nil {
		t.Fatal(err)
	}
	snap, err := base.snapshotOn(ctx, ie, im, p)
	if err != nil {
		t.Fatal(err)
	}
	im.Close()

	large := func(c *wasmtime.Config) { setReservation(c, 4<<30, 32<<20) }
	opt := func(l wasmtime.OptLevel) func(*wasmtime.Config) {
		return func(c *wasmtime.Config) { c.SetCraneliftOptLevel(l) }
	}
	single := func(c *wasmtime.Config) { c.SetCraneliftFlag("regalloc_algorithm", "single_pass") }
	all := func(fs ...func(*wasmtime.Config)) func(*wasmtime.Config) {
		return func(c *wasmtime.Config) {
			for _, f := range fs {
				f(c)
			}
		}
	}
	variants := []struct {
		name string
		tune func(*wasmtime.Config)
	}{
		{"today (512 MiB + 64 KiB, speed, backtracking)", nil},
		{"4 GiB + 32 MiB", large},
		{"opt none", opt(wasmtime.OptLevelNone)},
		{"opt speed_and_size", opt(wasmtime.OptLevelSpeedAndSize)},
		{"single_pass", single},
		{"4 GiB, opt none", all(large, opt(wasmtime.OptLevelNone))},
		{"4 GiB, single_pass", all(large, single)},
		{"4 GiB, opt none, single_pass", all(large, opt(wasmtime.OptLevelNone), single)},
	}
	if os.Getenv("AEROFN_COMPILE_MATRIX_SERIAL") != "" {
		variants = append(variants, struct {
			name string
			tune func(*wasmtime.Config)
		}{"4 GiB, serial compile", all(large, func(c *wasmtime.Config) { setParallel(c, false) })})
	}
	if only := os.Getenv("AEROFN_COMPILE_MATRIX_ONLY"); only != "" {
		var picked []struct {
			name string
			tune func(*wasmtime.Config)
		}
		for _, f := range strings.Split(only, ",") {
			i, err := strconv.Atoi(f)
			if err != nil || i < 0 || i >= len(variants) {
				t.Fatalf("AEROFN_COMPILE_MATRIX_ONLY: %q is not a variant's index", f)
			}
			picked = append(picked, variants[i])
		}
		variants = picked
	}
	type stat struct {
		compileCPU, compileWall []time.Duration
		helloCPU, echoCPU       []time.Duration
		helloWall, echoWall     []time.Duration
		jsonCPU, jsonWall       []time.Duration
		size                    int
	}
	stats := make([]stat, len(variants))
	engines := make([]*Engine, len(variants))
	hello := make([]*Module, len(variants))
	echo := make([]*Module, len(variants))
	// AEROFN_COMPILE_MATRIX_JSONWORK: a compiled internal/bench/guests/jsonwork,
	// a call that computes for milliseconds, measured too.
	var jsonWasm []byte
	if path := os.Getenv("AEROFN_COMPILE_MATRIX_JSONWORK"); path != "" {
		if jsonWasm, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	jsonwork := make([]*Module, len(variants))
	input := []byte(`{"trigger":"http","method":"POST","path":"/","headers":{},"query":{},"body":{"name":"World"},"user_id":null,"role":"anon","request_id":"r"}`)
	echoWasm, err := wasmtime.Wat2Wasm(watmod.Echo)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range variants {
		engines[i] = newEngine(t, Config{PoolSlots: 64, tune: v.tune})
		hello[i] = loadBytes(t, engines[i], "hello", wasm)
		echo[i] = loadBytes(t, engines[i], "echo", echoWasm)
		if jsonWasm != nil {
			jsonwork[i] = loadBytes(t, engines[i], "jsonwork", jsonWasm)
		}
	}
	// AEROFN_COMPILE_MATRIX_CALLS=n: only calls, n a round, the CPU of the
	// calling thread (the call runs on it), not the compile.
	calls, callsOnly := 2000, false
	if n, _ := strconv.Atoi(os.Getenv("AEROFN_COMPILE_MATRIX_CALLS")); n > 0 {
		calls, callsOnly = n, true
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	for r := range rounds {
		for i := range variants {
			if callsOnly {
				break
			}
			i := (i + r) % len(variants)
			c0, w0 := cpuNow(), time.Now()
			m, err := compileWith(engines[i].wt, snap)
			stats[i].compileWall = append(stats[i].compileWall, time.Since(w0))
			stats[i].compileCPU = append(stats[i].compileCPU, cpuNow()-c0)
			if err != nil {
				t.Fatal(err)
			}
			if art, err := m.Serialize(); err == nil {
				stats[i].size = len(art)
			}
			m.Close()
		}
		for i := range variants {
			i := (i + r) % len(variants)
			for _, k := range []struct {
				m         *Module
				in        []byte
				cpu, wall *[]time.Duration
				n         int
			}{{hello[i], input, &stats[i].helloCPU, &stats[i].helloWall, calls}, {echo[i], input, &stats[i].echoCPU, &stats[i].echoWall, calls},
				{jsonwork[i], input, &stats[i].jsonCPU, &stats[i].jsonWall, max(calls/100, 2)}} {
				if k.m == nil {
					continue
				}
				c0, w0 := threadCPU(), time.Now()
				for range k.n {
					if res := engines[i].Run(ctx, k.m, k.in, Limits{Timeout: time.Minute}, nil); res.Status != StatusSuccess {
						t.Fatalf("%s: %v", variants[i].name, res.Err)
					}
				}
				*k.wall = append(*k.wall, time.Since(w0)/time.Duration(k.n))
				*k.cpu = append(*k.cpu, (threadCPU()-c0)/time.Duration(k.n))
			}
		}
	}
	for i, v := range variants {
		s := stats[i]
		if callsOnly {
			t.Logf("%-48s hello CPU/call median %v mean %v | echo CPU/call median %v mean %v", v.name,
				median(s.helloCPU), mean(s.helloCPU), median(s.echoCPU), mean(s.echoCPU))
			if jsonWasm != nil {
				t.Logf("%-48s jsonwork CPU/call median %v mean %v", v.name, median(s.jsonCPU), mean(s.jsonCPU))
			}
			continue
		}
		t.Logf("%-48s compile CPU %v wall %v | hello CPU/call %v wall %v | echo CPU/call %v wall %v | artifact %d",
			v.name, s.compileCPU, s.compileWall, s.helloCPU, s.helloWall, s.echoCPU, s.echoWall, s.size)
	}
}

// cpuNow is the process's user + system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// threadCPU is the calling thread's user + system CPU time.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

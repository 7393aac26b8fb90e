package engine

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"github.com/tetratelabs/wazero"
)

// TestMeasureInit compares, in one process and interleaved, what running
// _initialize once costs: wasmtime's cheapest compile, wazero's
// interpreter, wazero's compiler. AEROFN_MEASURE_INIT=path.wasm runs it.
func TestMeasureInit(t *testing.T) {
	path := os.Getenv("AEROFN_MEASURE_INIT")
	if path == "" {
		t.Skip("AEROFN_MEASURE_INIT not set")
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := guardGrow(wasm)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseWasm(g)
	if err != nil {
		t.Fatal(err)
	}
	inst := p.instrumentedCapped(initMemoryPages())

	cfg := wasmtime.NewConfig()
	cfg.SetEpochInterruption(true)
	cfg.SetCraneliftOptLevel(wasmtime.OptLevelNone)
	cfg.SetCraneliftFlag("regalloc_algorithm", "single_pass")
	wt := wasmtime.NewEngineWithConfig(cfg)
	linker, err := newLinker(wt, false)
	if err != nil {
		t.Fatal(err)
	}
	interp, err := newInitRuntime(wazero.NewRuntimeConfigInterpreter())
	if err != nil {
		t.Fatal(err)
	}
	comp, err := newInitRuntime(wazero.NewRuntimeConfigCompiler())
	if err != nil {
		t.Fatal(err)
	}
	newState := func() *callState {
		start := time.Now()
		return &callState{lim: preinitLimits, start: start, parent: context.Background(), deadline: start.Add(time.Minute),
			monoOrigin: start, monoOffset: initClockStart, preinit: true}
	}
	type phase struct{ cpu, wall time.Duration }
	measure := func(f func()) phase {
		c, w := cpuNow(), time.Now()
		f()
		return phase{cpuNow() - c, time.Since(w)}
	}
	wasmtimeRun := func() (phase, phase) {
		var m *wasmtime.Module
		a := measure(func() {
			m, err = wasmtime.NewModule(wt, inst)
			if err != nil {
				t.Fatal(err)
			}
		})
		b := measure(func() {
			st := newState()
			store := wasmtime.NewStoreWithData(wt, st)
			store.SetEpochDeadline(1 << 40)
			in, err := linker.Instantiate(store, m)
			if err != nil {
				t.Fatal(err)
			}
			st.mem = exportedMemory(store, in, "memory")
			if _, err := exportedFunc(store, in, "_initialize").Call(store); err != nil {
				t.Fatal(err)
			}
			store.Close()
		})
		m.Close()
		return a, b
	}
	wazeroRun := func(ir *initRuntime) (phase, phase) {
		var cm wazero.CompiledModule
		a := measure(func() {
			cm, err = ir.compile(context.Background(), inst)
			if err != nil {
				t.Fatal(err)
			}
		})
		b := measure(func() {
			if _, err := ir.run(newState(), cm, p, func(mem []byte, gl map[int]snapshotValue) ([]byte, error) { return nil, nil }); err != nil {
				t.Fatal(err)
			}
		})
		cm.Close(context.Background())
		return a, b
	}
	names := []string{"wasmtime cheap", "wazero interpreter", "wazero compiler"}
	runs := []func() (phase, phase){wasmtimeRun, func() (phase, phase) { return wazeroRun(interp) }, func() (phase, phase) { return wazeroRun(comp) }}
	var sum [3][2]phase
	rounds := 3
	for r := 0; r < rounds; r++ {
		for i, f := range runs {
			a, b := f()
			t.Logf("round %d %-20s compile cpu %v wall %v | init cpu %v wall %v", r, names[i], a.cpu.Round(time.Millisecond), a.wall.Round(time.Millisecond), b.cpu.Round(time.Millisecond), b.wall.Round(time.Millisecond))
			sum[i][0].cpu += a.cpu
			sum[i][0].wall += a.wall
			sum[i][1].cpu += b.cpu
			sum[i][1].wall += b.wall
		}
	}
	for i := range runs {
		n := time.Duration(rounds)
		t.Logf("mean %-20s compile cpu %v wall %v | init cpu %v wall %v", names[i], (sum[i][0].cpu / n).Round(time.Millisecond), (sum[i][0].wall / n).Round(time.Millisecond), (sum[i][1].cpu / n).Round(time.Millisecond), (sum[i][1].wall / n).Round(time.Millisecond))
	}
}

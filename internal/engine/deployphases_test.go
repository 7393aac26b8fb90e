package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMeasureDeployPhases prints, as one JSON line per module, the CPU
// (user+sys of the process, wasmtime's compile threads included) and wall
// time of each phase of a pre-initialising Load: rewriting memory.grow,
// pre-initialisation up to the snapshot's bytes, the snapshot's compile,
// serializing. AEROFN_MEASURE_DEPLOY=a.wasm,b.wasm runs it.
func TestMeasureDeployPhases(t *testing.T) {
	paths := os.Getenv("AEROFN_MEASURE_DEPLOY")
	if paths == "" {
		t.Skip("AEROFN_MEASURE_DEPLOY not set")
	}
	for _, path := range strings.Split(paths, ",") {
		wasm, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		e := newEngine(t, Config{})
		type phase struct {
			CPU, Wall float64 // seconds
		}
		phases := map[string]phase{}
		measure := func(name string, f func()) {
			c, w := cpuNow(), time.Now()
			f()
			phases[name] = phase{(cpuNow() - c).Seconds(), time.Since(w).Seconds()}
		}
		var g, snap []byte
		measure("rewrite", func() {
			if g, err = rewriteGrow(wasm); err != nil {
				t.Fatal(err)
			}
		})
		measure("init", func() { snap = measureInit(t, e, g) })
		var art []byte
		measure("compile", func() {
			m, err := e.compile(snap)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			measure("serialize", func() {
				if art, err = m.Serialize(); err != nil {
					t.Fatal(err)
				}
			})
		})
		c := phases["compile"]
		c.CPU -= phases["serialize"].CPU
		c.Wall -= phases["serialize"].Wall
		phases["compile"] = c
		b, _ := json.Marshal(map[string]any{"module": path, "phases": phases, "artifact": len(art)})
		fmt.Println(string(b))
	}
}

// measureInit is pre-initialisation up to the snapshot's bytes.
func measureInit(t *testing.T, e *Engine, g []byte) []byte {
	p, err := parseWasm(g)
	if err != nil {
		t.Fatal(err)
	}
	if err := scanCode(p.section(secCode)); err != nil {
		t.Fatal(err)
	}
	ir, err := e.initRuntime()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := e.snapshot(context.Background(), ir, p)
	var gaveUp *interpreterGaveUp
	if errors.As(err, &gaveUp) {
		t.Logf("%v: run again on wasmtime", err)
		snap, err = e.snapshotCompiled(context.Background(), p)
	}
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

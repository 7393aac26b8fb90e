package engine

import "github.com/bytecodealliance/wasmtime-go/v39"

// Priming a loaded module.
//
// wasmtime does part of a module's set-up on its first instantiation, not
// when the module is compiled or deserialized: for a pre-initialised Go
// guest (a 4 MiB memory image, thousands of functions) about 15 ms of CPU
// and 900 page faults, against 0.1-3 ms for every later call. The first
// call of every module on every node paid it: the deploying node's, a node
// that fetched the artifact on the deploy's notice, a node restarted and
// warmed before it listened (measured 45-283 ms and 80-107 ms on a loaded
// machine, docs/RATIONALE.md, "Compiled artifacts reach every node").
//
// So a module is instantiated once as soon as it is loaded, before any
// call can find it; a module whose instances are reused keeps that one,
// unused, for its first call (a slot's memory left by an instance that
// ended is not the image file's any more, and could not be reset cheaply).
// Only a pre-initialised or resettable module is primed: neither has a
// start function (compileResettable), so instantiating it runs no guest
// code; any other module's start function would run here, outside a call.

// prime instantiates m once. A module whose calls reuse instances
// (reuse.go) keeps that instance, untouched, for its first call; any other
// drops it. A failure is ignored: the first call then does the work, and
// reports any error itself.
func (e *Engine) prime(m *Module) {
	if m == nil || !(m.info.preinit || m.info.resettable) || m.js != nil {
		return // a script's module is the runtime's, primed when it loaded
	}
	if !e.acquireSlotOf(m) {
		return // every slot busy: the node is serving, not starting
	}
	st := &callState{lim: Limits{}.WithDefaults()}
	defer st.release()
	box := &storeBox{st: st}
	var store *wasmtime.Store
	if e.reusable(m) {
		store = wasmtime.NewStoreWithData(e.wtOf(m), box)
	} else {
		store = wasmtime.NewStoreWithData(e.wtOf(m), st)
	}
	store.Limiter(st.lim.MemoryBytes, maxTableElements, maxInstances, maxTables, maxMemories)
	inst, err := e.linkerOf(m).Instantiate(store, m.m)
	if err != nil {
		store.Close()
		e.releaseSlotOf(m)
		return
	}
	e.primed.Add(1)
	if e.reusable(m) {
		if w := e.adopt(m, store, box, inst, exportedMemory(store, inst, "memory")); w != nil {
			e.finish(w, true) // idle, for the first call; or ended
			return
		}
	}
	store.Close()
	e.releaseSlotOf(m)
}

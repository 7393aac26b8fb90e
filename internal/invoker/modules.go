package invoker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/registry"
)

// How a node gets compiled modules, so that no call ever waits for a
// compile (docs/RATIONALE.md, "Compiled artifacts reach every node"):
//
//	deploy, rollback, enable  Prepare: load (memory, disk, the shared
//	                          artifact) or compile cheaply, then store the
//	                          artifact in the database before the change
//	                          commits; once the request is answered,
//	                          compile the optimised artifact in the
//	                          background, store and announce it
//	artifact notice           Prefetch: load the announced artifact, or
//	                          swap a cheap module for the optimised one
//	change notice, startup    Warm / WarmAll: load from disk or the shared
//	                          artifact; none usable: compile in the
//	                          background (one at a time)
//	a call                    module: memory, disk or the shared artifact,
//	                          never a compile; none usable: ErrNotReady and
//	                          a background compile
//
// "Usable" is decided by wasmtime: an artifact compiled by an engine with
// another fingerprint is not even fetched, one it refuses anyway (or one
// whose MAC fails) is counted and skipped.

// ErrNotReady: the function's module has no compiled artifact this node
// can use yet (a version deployed by an older aerofn, or the first minutes
// after an engine upgrade); it is being compiled in the background. The
// call was not run; retrying in a few seconds succeeds.
var ErrNotReady = errors.New("function's module is being compiled on this node")

// backgroundCompiles run one at a time: a node that finds many modules
// without artifacts (after an upgrade) keeps a core for its calls.
const backgroundCompiles = 1

// modules is the invoker's background loading state.
type modules struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}

	mu      sync.Mutex
	pending map[string]bool  // hashes queued or compiling in the background
	failed  map[string]error // hashes whose background compile failed for good
}

func newModules() *modules {
	ctx, cancel := context.WithCancel(context.Background())
	return &modules{ctx: ctx, cancel: cancel, sem: make(chan struct{}, backgroundCompiles), pending: map[string]bool{},
		failed: map[string]error{}}
}

// artifactSource fetches the shared artifact of hash for this engine.
func (inv *Invoker) artifactSource(ctx context.Context, hash string) func() ([]byte, error) {
	return inv.artifactOf(ctx, hash, inv.cfg.Engine.Fingerprint())
}

// source is where a load finds hash's shared artifacts: the optimised
// one, else the cheap one (engine.Tier).
func (inv *Invoker) source(ctx context.Context, hash string) engine.Source {
	return engine.Source{Artifact: inv.artifactSource(ctx, hash),
		CheapArtifact: inv.artifactOf(ctx, hash, inv.cfg.Engine.CheapFingerprint())}
}

func (inv *Invoker) artifactOf(ctx context.Context, hash, fp string) func() ([]byte, error) {
	if inv.cfg.Artifacts == nil {
		return nil
	}
	return func() ([]byte, error) {
		art, err := inv.cfg.Artifacts.Get(ctx, hash, fp)
		if err != nil {
			inv.cfg.Logger.Warn("shared artifact unusable", "hash", hash, "error", err)
		}
		return art, err
	}
}

// module returns the compiled module for a call: never compiled here.
// Without an artifact store (Config.Artifacts nil) it compiles, as a
// single node without sharing has to.
func (inv *Invoker) module(ctx context.Context, hash string) (*engine.Module, error) {
	if m, ok := inv.cfg.Engine.Loaded(hash); ok {
		return m, nil
	}
	if inv.cfg.Artifacts == nil {
		return inv.cfg.Engine.Load(hash, func() ([]byte, error) { return inv.cfg.Registry.ModuleBytes(ctx, hash) })
	}
	m, err := inv.cfg.Engine.LoadFrom(hash, inv.source(ctx, hash))
	if errors.Is(err, engine.ErrNotCompiled) {
		// A module that cannot compile (invalid, missing, or its stored
		// bytes do not match their hash) fails its calls with the reason,
		// as it did when calls compiled, rather than "not ready" forever.
		inv.bg.mu.Lock()
		ferr := inv.bg.failed[hash]
		inv.bg.mu.Unlock()
		if ferr != nil {
			return nil, ferr
		}
		inv.compileLater(hash)
		return nil, ErrNotReady
	}
	return m, err
}

// permanent reports whether a failed compile will fail again.
func permanent(err error) bool {
	return errors.Is(err, engine.ErrInvalidModule) || errors.Is(err, registry.ErrCorruptModule) || errors.Is(err, registry.ErrNotFound)
}

// Load returns the compiled module for work that may wait for a compile
// (a database trigger's delivery): memory, disk, the shared artifact, else
// compiled from the stored bytes.
func (inv *Invoker) Load(ctx context.Context, hash string) (*engine.Module, error) {
	src := inv.source(ctx, hash)
	src.Wasm = func() ([]byte, error) { return inv.cfg.Registry.ModuleBytes(ctx, hash) }
	return inv.cfg.Engine.LoadFrom(hash, src)
}

// Prepare makes module hash ready on this node and for every node: loaded
// here (compiled from wasm only when no artifact serves) and its artifact
// stored in the database. Deploy, rollback and enable call it before their
// change commits, so that the nodes the change notice reaches load the
// artifact instead of compiling. wasm nil reads the stored module bytes.
//
// A pre-initialised module that has to be compiled is compiled cheaply
// (engine.TierCheap: about 0.4x the CPU); once ctx ends (the request was
// answered: net/http ends a request's context when its handler returns)
// the optimised artifact is compiled in the background, stored and
// announced, and every node swaps it in (optimizeLater).
func (inv *Invoker) Prepare(ctx context.Context, hash string, wasm func() ([]byte, error)) error {
	return inv.prepare(ctx, hash, wasm, true)
}

func (inv *Invoker) prepare(ctx context.Context, hash string, wasm func() ([]byte, error), cheap bool) error {
	if wasm == nil {
		wasm = func() ([]byte, error) { return inv.cfg.Registry.ModuleBytes(ctx, hash) }
	}
	compiled := false
	src := inv.source(ctx, hash)
	src.Wasm = func() ([]byte, error) { compiled = true; return wasm() }
	src.Context, src.Cheap = ctx, cheap
	var sh sharing
	if inv.cfg.Artifacts != nil {
		src.Share = func(art []byte) {
			sh.start(func() error { return inv.cfg.Artifacts.Put(ctx, hash, inv.cfg.Engine.CheapFingerprint(), art) })
		}
	}
	m, err := inv.cfg.Engine.LoadFrom(hash, src)
	shared, serr := sh.wait()
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("sharing compiled module %s: %w", hash, serr)
	}
	inv.bg.mu.Lock()
	delete(inv.bg.failed, hash)
	inv.bg.mu.Unlock()
	// Compiled here: the stored artifact, if any, was unusable (its MAC
	// failed or wasmtime refused it), so this one replaces it. A cheap
	// module whose artifact the engine shared while it loaded is stored
	// already.
	if !(shared && m.Tier() == engine.TierCheap) {
		if err := inv.publish(ctx, hash, compiled, false); err != nil {
			return err
		}
	}
	if m.Tier() == engine.TierCheap {
		context.AfterFunc(ctx, func() { inv.optimizeLater(hash) })
	}
	return nil
}

// sharing stores the artifacts a load shares (engine.Source.Share) while
// the load goes on, one after another in the order shared: a load that
// compiles twice (memory.grow guarded, then not) shares twice, and the
// last one stored is the module's.
type sharing struct {
	mu   sync.Mutex
	last chan error
}

func (s *sharing) start(put func() error) {
	s.mu.Lock()
	prev, done := s.last, make(chan error, 1)
	s.last = done
	s.mu.Unlock()
	go func() {
		if prev != nil {
			if err := <-prev; err != nil {
				done <- err
				return
			}
		}
		done <- put()
	}()
}

// wait waits for what was started: whether anything was, and the first
// error.
func (s *sharing) wait() (bool, error) {
	s.mu.Lock()
	last := s.last
	s.mu.Unlock()
	if last == nil {
		return false, nil
	}
	return true, <-last
}

// publish stores this node's artifact of hash, unless the database has one
// and replace is false; background: no request waits for it
// (Artifacts.PutBackground).
func (inv *Invoker) publish(ctx context.Context, hash string, replace, background bool) error {
	if inv.cfg.Artifacts == nil {
		return nil
	}
	art, tier, err := inv.cfg.Engine.ArtifactOf(hash)
	if err != nil {
		return fmt.Errorf("sharing compiled module %s: %w", hash, err)
	}
	fp := inv.cfg.Engine.Fingerprint()
	if tier == engine.TierCheap {
		fp = inv.cfg.Engine.CheapFingerprint()
	}
	if !replace {
		if ok, err := inv.cfg.Artifacts.Has(ctx, hash, fp); err != nil || ok {
			return err
		}
	}
	if background {
		return inv.cfg.Artifacts.PutBackground(ctx, hash, fp, art)
	}
	return inv.cfg.Artifacts.Put(ctx, hash, fp, art)
}

// Warm loads module hash ahead of calls: from disk or the shared artifact
// now, else by compiling it in the background. It returns ErrNotReady in
// that case.
func (inv *Invoker) Warm(ctx context.Context, hash string) error {
	_, err := inv.module(ctx, hash)
	return err
}

// Prefetch loads module hash from the artifact another node announced
// (registry.ArtifactNotice) ahead of the version that uses it: never a
// compile, and nothing is remembered when there is no usable artifact (the
// module may not be stored yet, or belong to a deploy that fails).
func (inv *Invoker) Prefetch(ctx context.Context, hash string) error {
	if inv.cfg.Artifacts == nil {
		return nil
	}
	m, err := inv.cfg.Engine.LoadFrom(hash, inv.source(ctx, hash))
	if errors.Is(err, engine.ErrNotCompiled) {
		return nil
	}
	if err == nil && m.Tier() == engine.TierCheap {
		// The announcement may be of the optimised artifact: swap it in.
		inv.cfg.Engine.Upgrade(hash, inv.artifactSource(ctx, hash))
	}
	return err
}

// WarmFunction warms the current version of the named function, if it is
// enabled (the registry listener calls it on every change notice), and
// returns the function as it read it: what this node now serves. A
// function that does not exist is ErrNotFound.
func (inv *Invoker) WarmFunction(ctx context.Context, name string) (registry.Function, error) {
	gen := inv.generation()
	fn, err := inv.cfg.Registry.Get(ctx, name)
	if err != nil {
		return fn, err
	}
	// The first call after a change finds the function as well as its
	// module (a lookup is a database round trip).
	inv.remember(fn, gen)
	if !fn.Enabled {
		return fn, nil
	}
	return fn, inv.Warm(ctx, fn.WasmHash)
}

// WarmStats is what WarmAll did.
type WarmStats struct {
	Functions int           // enabled functions
	Ready     int           // whose module is loaded
	Compiling int           // whose module is being compiled in the background
	Failed    int           // whose module could not be loaded (logged)
	Took      time.Duration // wall time
}

// WarmAll warms the current version of every enabled function, two at a
// time, up to the engine's in-memory capacity. The server runs it before
// it listens, so a restarted node (even with an empty data directory)
// serves its first calls from loaded modules.
func (inv *Invoker) WarmAll(ctx context.Context, max int) (WarmStats, error) {
	start := time.Now()
	fns, err := inv.cfg.Registry.List(ctx)
	if err != nil {
		return WarmStats{}, err
	}
	var st WarmStats
	var hashes []string
	seen := map[string]bool{}
	for _, fn := range fns {
		if !fn.Enabled {
			continue
		}
		st.Functions++
		if !seen[fn.WasmHash] && (max <= 0 || len(hashes) < max) {
			seen[fn.WasmHash] = true
			hashes = append(hashes, fn.WasmHash)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan string)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for h := range work {
				err := inv.Warm(ctx, h)
				if tier, ok := inv.cfg.Engine.Tier(h); err == nil && ok && tier == engine.TierCheap {
					// The node that deployed it may be gone before its
					// optimised compile was stored.
					inv.optimizeLater(h)
				}
				mu.Lock()
				switch {
				case err == nil:
					st.Ready++
				case errors.Is(err, ErrNotReady):
					st.Compiling++
				default:
					st.Failed++
					inv.cfg.Logger.Error("warming module", "hash", h, "error", err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, h := range hashes {
		work <- h
	}
	close(work)
	wg.Wait()
	st.Took = time.Since(start)
	return st, nil
}

// later runs work in the background under key, once however many ask
// while it is queued or running, one at a time with the other background
// work (the semaphore), and never after the invoker stops. work gets the
// background context.
func (b *modules) later(key string, work func(ctx context.Context)) {
	b.mu.Lock()
	if b.pending[key] || b.ctx.Err() != nil {
		b.mu.Unlock()
		return
	}
	b.pending[key] = true
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		defer func() {
			b.mu.Lock()
			delete(b.pending, key)
			b.mu.Unlock()
		}()
		select {
		case b.sem <- struct{}{}:
		case <-b.ctx.Done():
			return
		}
		defer func() { <-b.sem }()
		work(b.ctx)
	}()
}

// compileLater compiles module hash in the background (once, however many
// calls ask) and shares its artifact.
func (inv *Invoker) compileLater(hash string) {
	inv.bg.later(hash, func(ctx context.Context) {
		start := time.Now()
		err := inv.prepare(ctx, hash, nil, false)
		if err != nil && ctx.Err() == nil {
			inv.cfg.Logger.Error("compiling module in the background", "hash", hash, "error", err)
			if permanent(err) {
				inv.bg.mu.Lock()
				inv.bg.failed[hash] = err
				inv.bg.mu.Unlock()
			}
			return
		}
		inv.cfg.Logger.Info("compiled module in the background", "hash", hash, "took", time.Since(start).String())
	})
}

// optimizeLater replaces a cheap module by its optimised compile in the
// background (engine.Optimize), one at a time with compileLater's
// compiles, and stores and announces the artifact so that every node
// swaps it in (Prefetch). Before compiling it looks for one stored
// meanwhile by another node.
func (inv *Invoker) optimizeLater(hash string) {
	inv.bg.later("optimize "+hash, func(ctx context.Context) {
		if inv.cfg.Engine.Upgrade(hash, inv.artifactSource(ctx, hash)) {
			return
		}
		start := time.Now()
		ok, err := inv.cfg.Engine.Optimize(ctx, hash, func() ([]byte, error) { return inv.cfg.Registry.ModuleBytes(ctx, hash) })
		if err == nil && ok {
			err = inv.publish(ctx, hash, true, true)
		}
		if err != nil {
			if ctx.Err() == nil {
				inv.cfg.Logger.Error("optimising module in the background", "hash", hash, "error", err)
			}
			return
		}
		if ok {
			inv.cfg.Logger.Info("optimised module in the background", "hash", hash, "took", time.Since(start).String())
		}
	})
}

// BackgroundPending is how many modules are queued or compiling in the
// background (compileLater).
func (inv *Invoker) BackgroundPending() int {
	inv.bg.mu.Lock()
	defer inv.bg.mu.Unlock()
	return len(inv.bg.pending)
}

// stopBackground ends background work: queued compiles are dropped, one in
// progress is waited for (a wasmtime compile cannot be interrupted).
// Idempotent.
func (inv *Invoker) stopBackground() {
	inv.bg.mu.Lock()
	inv.bg.cancel()
	inv.bg.mu.Unlock()
	inv.bg.wg.Wait()
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// Module is a compiled, validated module, ready to run any number of times
// concurrently.
type Module struct {
	hash string
	m    *wasmtime.Module
	info moduleInfo
	// js is a JavaScript function's script; m is then the JavaScript
	// runtime's module (script.go).
	js *jsScript
	// imageMapped: a page of an instance's memory was seen mapped from the
	// module's image file, so dropping private pages restores the image
	// (reuse.go).
	imageMapped atomic.Bool

	// tier: how its code was compiled (tier.go); snap, for a cheap module
	// compiled here, the snapshot Optimize compiles again.
	tier Tier
	snap []byte
	// retired: replaced in the cache by another compile of the same
	// module (swap); its instances are not kept for reuse.
	retired atomic.Bool
}

// Tier reports how the module's code was compiled (tier.go).
func (m *Module) Tier() Tier { return m.tier }

// Script reports whether the module is a JavaScript function run by the
// JavaScript runtime (script.go).
func (m *Module) Script() bool { return m.js != nil }

// Hash is the key the module was loaded under.
func (m *Module) Hash() string { return m.hash }

// Preinitialized reports whether calls start from a snapshot taken after
// _initialize (see preinit.go) rather than running it. When they do not and
// this engine tried, err says why; it is nil for a module without
// _initialize, and for one loaded from the cache directory, which keeps
// the outcome but not the reason.
func (m *Module) Preinitialized() (ok bool, err error) {
	return m.info.preinit, m.info.preinitErr
}

// loadCall is a Load in progress; later Loads of the same hash wait for it.
type loadCall struct {
	done      chan struct{}
	compiling chan struct{} // closed when the load starts compiling
	m         *Module
	err       error
}

// Load returns the compiled module for hash: from memory, else from the disk
// cache, else by compiling the bytes wasm returns (called only then). hash
// names the module's content (the registry uses its SHA-256); it must be
// 1-128 characters of [0-9A-Za-z_-] because it becomes a file name.
// Concurrent Loads of one hash compile once. Errors are not cached.
func (e *Engine) Load(hash string, wasm func() ([]byte, error)) (*Module, error) {
	return e.LoadFrom(hash, Source{Wasm: wasm})
}

// Loaded returns the module for hash when it is in memory, as LoadFrom
// would (counted as a hit, moved to the front of the cache), without the
// Source a miss needs: a call's common case builds none.
func (e *Engine) Loaded(hash string) (*Module, bool) {
	if e.closed.Load() {
		return nil, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hitLocked(hash)
}

// hitLocked returns module hash if it is in memory, moved to the front of
// the cache and counted as a hit. e.mu is held.
func (e *Engine) hitLocked(hash string) (*Module, bool) {
	el, ok := e.modules[hash]
	if !ok {
		return nil, false
	}
	e.lru.MoveToFront(el)
	e.memoryHits.Add(1)
	return el.Value.(*Module), true
}

// LoadFrom is Load with more places to look: after memory and the cache
// directory it tries src.Artifact (see artifact.go), and only then compiles
// src.Wasm. With src.Wasm nil it never compiles, nor waits for another
// Load's compile: it fails with ErrNotCompiled instead.
func (e *Engine) LoadFrom(hash string, src Source) (*Module, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if !validHash(hash) {
		return nil, fmt.Errorf("loading module: hash %q is not 1-128 characters of [0-9A-Za-z_-]", hash)
	}
	for {
		e.mu.Lock()
		if m, ok := e.hitLocked(hash); ok {
			e.mu.Unlock()
			return m, nil
		}
		c, ok := e.inflight[hash]
		if !ok {
			break // with e.mu held
		}
		e.mu.Unlock()
		if src.Wasm == nil {
			select {
			case <-c.done:
			case <-c.compiling:
				return nil, fmt.Errorf("loading module %s: %w (compiling now)", hash, ErrNotCompiled)
			}
		} else {
			<-c.done
		}
		// A load that was not allowed to compile does not answer for one
		// that is: try again, now in charge.
		if errors.Is(c.err, ErrNotCompiled) && src.Wasm != nil {
			continue
		}
		return c.m, c.err
	}
	c := &loadCall{done: make(chan struct{}), compiling: make(chan struct{})}
	e.inflight[hash] = c
	e.mu.Unlock()

	c.m, c.err = e.load(hash, src, c.compiling)
	if c.err == nil {
		e.prime(c.m)
	}

	e.mu.Lock()
	delete(e.inflight, hash)
	if c.err == nil {
		e.modules[hash] = e.lru.PushFront(c.m)
		for e.lru.Len() > e.cfg.MaxModules {
			// Evicted modules are not closed: a running call may hold one.
			// The finalizer frees it once nothing does.
			old := e.lru.Remove(e.lru.Back()).(*Module)
			delete(e.modules, old.hash)
		}
	}
	e.mu.Unlock()
	close(c.done)
	return c.m, c.err
}

func validHash(h string) bool {
	if len(h) == 0 || len(h) > 128 {
		return false
	}
	for _, r := range h {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (e *Engine) load(hash string, src Source, compiling chan struct{}) (mod *Module, err error) {
	// A panic in the caller's fetch function or in wasmtime must not leave
	// other Loads of this hash waiting forever.
	defer func() {
		if r := recover(); r != nil {
			mod, err = nil, fmt.Errorf("loading module %s: panic: %v", hash, r)
		}
	}()

	if m, ok, err := e.loadCachedScript(hash, src.Wasm != nil); ok {
		return m, err
	}
	path := e.cachePath(hash)
	if path != "" {
		if m, ok := e.loadCached(e.wt, path); ok {
			info, err := checkModule(m, true)
			if err != nil {
				return nil, fmt.Errorf("loading module %s: %w", hash, err)
			}
			e.diskLoads.Add(1)
			if cp := e.cheapPath(hash); cp != "" {
				removeCache(cp) // superseded (tier.go)
			}
			return &Module{hash: hash, m: m, info: info}, nil
		}
	}

	// A script's artifact is its bytecode and stored bytes (script.go).
	var scriptArt []byte
	if fetch := src.Artifact; fetch != nil {
		src.Artifact = func() ([]byte, error) {
			b, err := fetch()
			if err == nil && isScriptArtifact(b) {
				scriptArt = b
				return nil, nil
			}
			return b, err
		}
	}
	if m, ok := e.loadArtifact(e.wt, hash, path, src.Artifact); ok {
		return m, nil
	}
	if scriptArt != nil {
		m, err := e.bindScript(hash, scriptArt, src.Wasm != nil, false)
		if err == nil {
			e.artifactLoads.Add(1)
		}
		return m, err
	}
	// No optimised artifact: a cheap one (tier.go), this node's, else
	// another's.
	if cp := e.cheapPath(hash); cp != "" && fileExists(cp) && e.tierRuntime().err == nil {
		if m, ok := e.loadCached(e.tierEngine(), cp); ok {
			info, err := checkModule(m, true)
			if err != nil {
				return nil, fmt.Errorf("loading module %s: %w", hash, err)
			}
			e.diskLoads.Add(1)
			return &Module{hash: hash, m: m, info: info, tier: TierCheap}, nil
		}
	}
	if src.CheapArtifact != nil && e.tierRuntime().err == nil {
		if m, ok := e.loadArtifact(e.tierEngine(), hash, e.cheapPath(hash), src.CheapArtifact); ok {
			m.tier = TierCheap
			return m, nil
		}
	}
	if src.Wasm == nil {
		return nil, fmt.Errorf("loading module %s: %w", hash, ErrNotCompiled)
	}
	ctx := src.Context
	if ctx == nil {
		ctx = context.Background()
	}
	// A load given up is ErrNotCompiled too: a Load of the same hash that
	// waited for this one and may compile tries again.
	if ctx.Err() != nil {
		return nil, fmt.Errorf("loading module %s: %w: %w", hash, ErrNotCompiled, context.Cause(ctx))
	}
	close(compiling)
	e.compilingNow.Add(1)
	defer e.compilingNow.Add(-1)
	b, err := src.Wasm()
	if err != nil {
		return nil, fmt.Errorf("fetching module %s: %w", hash, err)
	}
	if IsScript(b) {
		return e.bindScript(hash, b, true, false)
	}
	var tr *tierRequest
	if src.Cheap && !e.cfg.DisablePreinit {
		tr = &tierRequest{path: e.cheapPath(hash), share: src.Share}
		ctx = context.WithValue(ctx, tierKey{}, tr)
	}
	m, info, err := e.compileModule(ctx, b)
	if tr != nil && tr.tmp != "" && (err != nil || tr.mod != m) {
		// The cheap compile's file, of a snapshot refused after all.
		os.Remove(tr.tmp)
		tr.tmp = ""
	}
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("loading module %s: %w: %w", hash, ErrNotCompiled, context.Cause(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("loading module %s: %w", hash, err)
	}
	e.compiles.Add(1)
	if tr != nil && tr.mod == m {
		e.cheapCompiles.Add(1)
		if tr.tmp != "" {
			e.persistLater(tr.tmp, tr.path)
		}
		return &Module{hash: hash, m: m, info: info, tier: TierCheap, snap: tr.snap}, nil
	}
	if path != "" {
		if err := e.writeCompiled(path, m); err != nil {
			e.diskWriteErrors.Add(1)
		} else {
			// Artifacts an older aerofn left under its names are superseded.
			for _, old := range staleCacheNames {
				os.Remove(filepath.Join(e.cfg.CacheDir, hash+old))
			}
			if !e.cfg.DisablePreinit {
				// So is the artifact of an engine without pre-initialisation.
				os.Remove(filepath.Join(e.cfg.CacheDir, hash+cacheVersion+".cwasm"))
			}
		}
	}
	return &Module{hash: hash, m: m, info: info}, nil
}

// cachePath names the artifact for hash. An engine that pre-initialises
// modules uses its own names: its artifact for a module that exports
// _initialize differs (a snapshot), and each of its artifacts records
// that the attempt was made, so a module cached before is pre-initialised
// once, not loaded as it was. cacheVersion is in every name and changes
// with artifactFormat, so an artifact an older aerofn compiled (with
// memory.grow unguarded, say) is compiled again rather than loaded.
func (e *Engine) cachePath(hash string) string {
	dir := e.cfg.CacheDir
	if e.cfg.JSRuntimeCacheDir != "" && e.jsrt.hash != "" && hash == e.jsrt.hash {
		// Shared by engines that may be configured differently (a
		// server's engine elides bounds checks, a tool's may not), whose
		// artifacts wasmtime would refuse from each other: each kind
		// keeps its own.
		dir = e.cfg.JSRuntimeCacheDir
		hash += "." + e.Fingerprint()[:16]
	}
	if dir == "" {
		return ""
	}
	if e.cfg.DisablePreinit {
		return filepath.Join(dir, hash+cacheVersion+".cwasm")
	}
	return filepath.Join(dir, hash+cacheVersion+".preinit.cwasm")
}

// cacheVersion and the names older aerofns used (removed once superseded).
const cacheVersion = ".v2"

var staleCacheNames = []string{".cwasm", ".preinit.cwasm"}

// fileExists reports whether path names something that exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// loadCached returns the module in path if the file exists and wasmtime
// accepts it: it checks that the artifact was produced by this wasmtime
// version with this configuration and is well formed. A file that fails is
// counted and recompiled (and overwritten) by the caller.
//
// The file is mapped, not read: about 0.3 ms for a Go guest's 9 MiB artifact
// against 10 ms to read and copy it. Mapping is safe because files are only
// ever replaced by rename, never rewritten in place.
func (e *Engine) loadCached(wt *wasmtime.Engine, path string) (*wasmtime.Module, bool) {
	if _, err := os.Stat(path); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			e.diskLoadFailures.Add(1)
		}
		return nil, false
	}
	m, err := wasmtime.NewModuleDeserializeFile(wt, path)
	if err != nil {
		e.diskLoadFailures.Add(1)
		return nil, false
	}
	return m, true
}

// writeCompiled stores a module compiled here under path, as loadArtifact
// stores a fetched one: written now without waiting for the disk, synced
// and named in the background (persistLater). The load, and so a deploy,
// does not wait for the sync of 10-20 MiB (measured 60 ms of CPU and
// 0.1-0.3 s of wall time on a busy machine); until the rename, Artifact
// reads the temporary file, and a restart recompiles or fetches the
// artifact rather than finding a file cut short.
func (e *Engine) writeCompiled(path string, m *wasmtime.Module) error {
	art, err := m.Serialize()
	if err != nil {
		return fmt.Errorf("serializing module: %w", err)
	}
	tmp, err := writeTemp(path, art)
	if err != nil {
		return err
	}
	e.persistLater(tmp, path)
	return nil
}

// writeFile writes art to path the same way.
func writeFile(path string, art []byte) error {
	tmp, err := writeTemp(path, art)
	if err == nil {
		err = syncRename(tmp, path)
	}
	return err
}

// writeTemp writes art to a new temporary file beside path, not synced,
// and returns its name. removeStaleTemps deletes one a crash left behind.
func writeTemp(path string, art []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("writing module cache: %w", err)
	}
	_, err = f.Write(art)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("writing module cache: %w", err)
	}
	return f.Name(), nil
}

// syncRename syncs tmp to the disk and gives it the name path; on failure
// tmp is removed.
func syncRename(tmp, path string) error {
	f, err := os.OpenFile(tmp, os.O_WRONLY, 0)
	if err == nil {
		err = syncFile(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing module cache: %w", err)
	}
	return nil
}

// syncFile is (*os.File).Sync; tests replace it to hold a sync back.
var syncFile = (*os.File).Sync

// persistLater syncs tmp and renames it to path in the background (see
// loadArtifact and writeCompiled). Stop waits for it. A module mapped from
// tmp is unaffected: the rename keeps the file, and a failure only unlinks
// its name. Meanwhile readCacheFile finds the file under tmp.
func (e *Engine) persistLater(tmp, path string) {
	e.persisting.Add(1)
	e.pendingMu.Lock()
	if e.pending == nil {
		e.pending = make(map[string]string)
	}
	e.pending[path] = tmp
	e.pendingMu.Unlock()
	go func() {
		defer e.persisting.Done()
		if err := syncRename(tmp, path); err != nil {
			e.diskWriteErrors.Add(1)
		}
		e.pendingMu.Lock()
		if e.pending[path] == tmp {
			delete(e.pending, path)
		}
		e.pendingMu.Unlock()
	}()
}

// readCacheFile reads the artifact stored under path, or still being
// synced before it gets that name (persistLater).
func (e *Engine) readCacheFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if !errors.Is(err, os.ErrNotExist) {
		return b, err
	}
	e.pendingMu.Lock()
	tmp, ok := e.pending[path]
	e.pendingMu.Unlock()
	if !ok {
		return nil, err
	}
	if b, err := os.ReadFile(tmp); err == nil {
		return b, nil
	}
	// Renamed (or given up) since path was read.
	return os.ReadFile(path)
}

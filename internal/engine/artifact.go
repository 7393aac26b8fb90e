package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// Artifacts shared between nodes.
//
// A compiled artifact is what Load keeps in the cache directory: the
// serialized wasmtime module (for a Go guest, its pre-initialised snapshot).
// Compiling one costs seconds; deserializing it, milliseconds. So an
// artifact compiled once, on the node that deploys a version, is meant to
// be handed to every other node (the server stores it in PostgreSQL) and
// loaded through Source.Artifact instead of being compiled again.
//
// wasmtime accepts a serialized module only from the same wasmtime version
// with the same compilation settings, and checks that itself on load.
// Fingerprint names exactly that: artifacts are stored under it, so nodes
// running different engines (during an upgrade, or with other settings)
// never overwrite or fetch each other's, and an artifact that wasmtime still
// refuses is counted (Stats.ArtifactLoadFailures) and never used.

// ErrNotCompiled is returned by LoadFrom when no artifact serves and the
// Source has no Wasm to compile, or when the module is being compiled by
// another Load right now: the caller did not ask to wait for a compile.
var ErrNotCompiled = errors.New("module is not compiled yet")

// Source says where LoadFrom may find a module that is neither in memory
// nor in the cache directory.
type Source struct {
	// Artifact returns an artifact that an engine with the same Fingerprint
	// serialized, or nil when there is none. nil: not asked.
	Artifact func() ([]byte, error)
	// CheapArtifact returns an artifact of the cheap tier (tier.go), which
	// an engine with the same CheapFingerprint serialized, or nil; asked
	// only when neither the cache directory nor Artifact has an optimised
	// one. nil: not asked.
	CheapArtifact func() ([]byte, error)
	// Cheap: a pre-initialised snapshot that LoadFrom compiles is compiled
	// cheaply, and the module is TierCheap until Optimize replaces it.
	Cheap bool
	// Wasm returns the module's bytes, which LoadFrom then compiles.
	// nil: LoadFrom never compiles, and fails with ErrNotCompiled instead.
	Wasm func() ([]byte, error)
	// Context, when set, gives the load up once it ends: before the
	// compile and between its steps (a wasmtime compile in progress cannot
	// be interrupted and finishes first; the run of _initialize is
	// interrupted). Loads of the same hash waiting for this one then
	// fail with its error and may try again.
	Context context.Context
	// Share, when set, is given the serialized artifact of a cheap compile
	// (of a snapshot that passed the ABI's checks) as soon as it exists,
	// before this engine maps and primes the module, so that storing it for
	// the other nodes runs beside the rest of the load instead of after it.
	// It must not block; the bytes are its to keep. Not called for any
	// other load: the caller then asks ArtifactOf.
	Share func(art []byte)
}

// artifactFormat changes whenever what an artifact holds changes in a way
// wasmtime cannot see (how aerofn builds snapshots, the marks it exports),
// so that artifacts of an older aerofn are not loaded as if they were new.
// 2: memory.grow is guarded (growguard.go).
const artifactFormat = "aerofn-artifact-2"

// artifactState is the part of Engine this file and preinit.go own.
type artifactState struct {
	initOnce     sync.Once
	init         *initRuntime
	initErr      error
	initCompiles atomic.Uint64
	initRetries  atomic.Uint64 // runs of _initialize the interpreter gave up on

	wtInitOnce sync.Once
	wtInit     *initEngine
	wtInitErr  error

	fpOnce sync.Once
	fp     string

	artifactLoads, artifactLoadFailures atomic.Uint64
}

// Fingerprint identifies what this engine's artifacts are compatible with:
// a SHA-256 (hex) over the compatibility record wasmtime writes into every
// artifact (its version, the target and CPU features, every compiler
// setting and tunable that affects code: the ".wasmtime.engine" section),
// whether modules are pre-initialised, and artifactFormat. Two engines with
// one fingerprint can use each other's artifacts.
func (e *Engine) Fingerprint() string {
	e.fpOnce.Do(func() {
		h := sha256.New()
		h.Write([]byte(artifactFormat))
		if e.cfg.DisablePreinit {
			h.Write([]byte("\x00plain\x00"))
		} else {
			h.Write([]byte("\x00preinit\x00"))
		}
		h.Write(engineRecord(e.wt))
		e.fp = hex.EncodeToString(h.Sum(nil))
	})
	return e.fp
}

// engineRecord returns the compatibility record of artifacts made by wt,
// read from an empty module's artifact. Should wasmtime stop writing the
// section, the whole artifact of the empty module stands in for it: it
// holds the same record and is deterministic.
func engineRecord(wt *wasmtime.Engine) []byte {
	m, err := wasmtime.NewModule(wt, []byte("\x00asm\x01\x00\x00\x00"))
	if err != nil {
		panic(fmt.Sprintf("compiling the empty module: %v", err))
	}
	defer m.Close()
	art, err := m.Serialize()
	if err != nil {
		panic(fmt.Sprintf("serializing the empty module: %v", err))
	}
	if f, err := elf.NewFile(bytes.NewReader(art)); err == nil {
		if s := f.Section(".wasmtime.engine"); s != nil {
			if b, err := s.Data(); err == nil && len(b) > 0 {
				return b
			}
		}
	}
	return art
}

// Artifact returns the serialized artifact of a loaded module, to hand to
// other engines: the cache directory's file when there is one, else the
// module in memory serialized. ErrNotCompiled: this engine holds neither.
// It may be of the cheap tier: ArtifactOf says which.
func (e *Engine) Artifact(hash string) ([]byte, error) {
	b, _, err := e.ArtifactOf(hash)
	return b, err
}

// ArtifactOf is Artifact with the artifact's tier: the optimised one
// when this engine has it, else the cheap one (tier.go).
func (e *Engine) ArtifactOf(hash string) ([]byte, Tier, error) {
	b, err := e.artifact(hash)
	if err == nil || !errors.Is(err, ErrNotCompiled) {
		return b, TierOptimized, err
	}
	if cp := e.cheapPath(hash); cp != "" {
		if b, err := e.readCacheFile(cp); err == nil {
			return b, TierCheap, nil
		}
	}
	e.mu.Lock()
	el, ok := e.modules[hash]
	e.mu.Unlock()
	if !ok {
		return nil, 0, fmt.Errorf("artifact of %s: %w", hash, ErrNotCompiled)
	}
	m := el.Value.(*Module)
	art, err := m.m.Serialize()
	if err != nil {
		return nil, 0, fmt.Errorf("serializing module: %w", err)
	}
	return art, m.tier, nil
}

// artifact is Artifact's optimised part: ErrNotCompiled when the engine
// holds no optimised artifact of hash.
func (e *Engine) artifact(hash string) ([]byte, error) {
	if !validHash(hash) {
		return nil, fmt.Errorf("reading artifact: hash %q is not 1-128 characters of [0-9A-Za-z_-]", hash)
	}
	e.mu.Lock()
	if el, ok := e.modules[hash]; ok && el.Value.(*Module).js != nil {
		s := el.Value.(*Module).js
		e.mu.Unlock()
		return s.artifact(), nil
	}
	e.mu.Unlock()
	if path := e.scriptPath(hash); path != "" {
		if b, err := os.ReadFile(path); err == nil && isScriptArtifact(b) {
			return b, nil
		}
	}
	if path := e.cachePath(hash); path != "" {
		b, err := e.readCacheFile(path)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("reading artifact: %w", err)
		}
	}
	e.mu.Lock()
	el, ok := e.modules[hash]
	e.mu.Unlock()
	if !ok || el.Value.(*Module).tier != TierOptimized {
		return nil, fmt.Errorf("artifact of %s: %w", hash, ErrNotCompiled)
	}
	art, err := el.Value.(*Module).m.Serialize()
	if err != nil {
		return nil, fmt.Errorf("serializing module: %w", err)
	}
	return art, nil
}

// MaxModules is how many modules the engine keeps in memory
// (Config.MaxModules): warming more than that only evicts.
func (e *Engine) MaxModules() int { return e.cfg.MaxModules }

// Cached reports whether the module is in memory, without loading it.
func (e *Engine) Cached(hash string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.modules[hash]
	return ok
}

// loadArtifact turns an artifact from src into a module: written to the
// cache directory and mapped from there (so a restart finds it, and its
// memory is the page cache's, not the process's; the file is synced and
// named in the background), or deserialized from memory without a cache
// directory. ok false: there was none, or it was
// unusable (counted), and the caller goes on as without it.
func (e *Engine) loadArtifact(wt *wasmtime.Engine, hash, path string, fetch func() ([]byte, error)) (*Module, bool) {
	if fetch == nil {
		return nil, false
	}
	art, err := fetch()
	if err != nil || art == nil {
		if err != nil {
			e.artifactLoadFailures.Add(1)
		}
		return nil, false
	}
	var m *wasmtime.Module
	tmp := ""
	if path != "" {
		// Written without waiting for the disk: the call that needs the
		// module maps it from the unsynced file at once, and the file
		// gets its final name (after fsync, as writeFile does) in the
		// background. Syncing 10-20 MiB first took 0.1-0.3 s on a busy
		// machine, which a node's first call after a deploy paid.
		if tmp, err = writeTemp(path, art); err != nil {
			e.diskWriteErrors.Add(1)
			m, err = wasmtime.NewModuleDeserialize(wt, art)
			if err != nil {
				e.artifactLoadFailures.Add(1)
				return nil, false
			}
		} else if m, err = wasmtime.NewModuleDeserializeFile(wt, tmp); err != nil {
			os.Remove(tmp)
			e.artifactLoadFailures.Add(1)
			return nil, false
		}
	} else if m, err = wasmtime.NewModuleDeserialize(wt, art); err != nil {
		e.artifactLoadFailures.Add(1)
		return nil, false
	}
	info, err := checkModule(m, true)
	if err != nil {
		m.Close()
		if tmp != "" {
			os.Remove(tmp)
		}
		e.artifactLoadFailures.Add(1)
		return nil, false
	}
	if tmp != "" {
		e.persistLater(tmp, path)
	}
	e.artifactLoads.Add(1)
	return &Module{hash: hash, m: m, info: info}, true
}

package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// A module compiled by one engine is loaded by another from its artifact:
// no compile, no module bytes fetched, and it runs from the snapshot.
func TestLoadFromArtifact(t *testing.T) {
	wasm := fixture(t, "init")
	a := newEngine(t, Config{CacheDir: t.TempDir()})
	ma := loadBytes(t, a, "init1", wasm)
	wantPreinit(t, ma, true, "")
	if s := a.Stats(); s.Compiles != 1 || s.InitCompiles != 1 || s.Preinitialized != 1 {
		t.Fatalf("compiling engine: %+v", s)
	}
	art, err := a.Artifact("init1")
	if err != nil {
		t.Fatal(err)
	}

	for _, dir := range []string{t.TempDir(), ""} { // with and without a cache directory
		b := newEngine(t, Config{CacheDir: dir})
		if b.Fingerprint() != a.Fingerprint() {
			t.Fatalf("same settings, fingerprints %s and %s", a.Fingerprint(), b.Fingerprint())
		}
		m, err := b.LoadFrom("init1", Source{
			Artifact: func() ([]byte, error) { return art, nil },
			Wasm:     func() ([]byte, error) { t.Fatal("fetched the module's bytes"); return nil, nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		if s := b.Stats(); s.Compiles != 0 || s.InitCompiles != 0 || s.ArtifactLoads != 1 {
			t.Fatalf("loading engine (cache dir %q): %+v", dir, s)
		}
		wantPreinit(t, m, true, "")
		res := run(t, b, m, "", Limits{}, nil)
		wantStatus(t, res, StatusSuccess)
		if string(res.Output) != "initialized" {
			t.Fatalf("output %q", res.Output)
		}
		if dir != "" {
			// Written to the cache directory: a restart maps it from there.
			b.persisting.Wait()
			if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmps) != 0 {
				t.Fatalf("temporary files left: %v", tmps)
			}
			c := newEngine(t, Config{CacheDir: dir})
			if _, err := c.LoadFrom("init1", Source{}); err != nil || c.Stats().DiskLoads != 1 {
				t.Fatalf("after restart: %v %+v", err, c.Stats())
			}
		}
	}
}

// Without an artifact and without bytes to compile, LoadFrom does not
// compile: ErrNotCompiled. Nor does it wait for another Load's compile.
func TestLoadFromNeverCompiles(t *testing.T) {
	e := newEngine(t, Config{})
	_, err := e.LoadFrom("hello", Source{Artifact: func() ([]byte, error) { return nil, nil }})
	if !errors.Is(err, ErrNotCompiled) {
		t.Fatalf("err %v, want ErrNotCompiled", err)
	}
	if s := e.Stats(); s.Compiles != 0 || s.ArtifactLoadFailures != 0 {
		t.Fatalf("%+v", s)
	}

	// A compile in progress: a no-compile load returns at once.
	wasm := fixture(t, "hello")
	fetching, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := e.Load("hello", func() ([]byte, error) { close(fetching); <-release; return wasm, nil })
		if err != nil {
			t.Error(err)
		}
	}()
	<-fetching
	_, err = e.LoadFrom("hello", Source{})
	close(release)
	wg.Wait()
	if !errors.Is(err, ErrNotCompiled) {
		t.Fatalf("during a compile: err %v, want ErrNotCompiled", err)
	}
	if _, err := e.LoadFrom("hello", Source{}); err != nil {
		t.Fatalf("after the compile: %v", err)
	}
}

// An artifact that cannot be used (cut short, from another engine
// configuration, not an artifact at all, or whose fetch fails) is counted
// and skipped: the module is compiled when the Source allows it, and the
// cache directory is left without the bad file.
func TestLoadFromBadArtifact(t *testing.T) {
	wasm := fixture(t, "hello")
	good := newEngine(t, Config{})
	loadBytes(t, good, "h", wasm)
	art, err := good.Artifact("h")
	if err != nil {
		t.Fatal(err)
	}
	other, err := wasmtime.NewModule(wasmtime.NewEngineWithConfig(wasmtime.NewConfig()), wasm)
	if err != nil {
		t.Fatal(err)
	}
	otherArt, err := other.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func() ([]byte, error){
		"truncated":     func() ([]byte, error) { return art[:len(art)/2], nil },
		"other config":  func() ([]byte, error) { return otherArt, nil },
		"garbage":       func() ([]byte, error) { return []byte("\x7fELF not really"), nil },
		"fetch failure": func() ([]byte, error) { return nil, errors.New("database down") },
	}
	for name, artifact := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			e := newEngine(t, Config{CacheDir: dir})
			if _, err := e.LoadFrom("h", Source{Artifact: artifact}); !errors.Is(err, ErrNotCompiled) {
				t.Fatalf("no bytes to compile: err %v", err)
			}
			if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
				t.Fatalf("bad artifact left in the cache directory: %v", files)
			}
			m, err := e.LoadFrom("h", Source{Artifact: artifact, Wasm: func() ([]byte, error) { return wasm, nil }})
			if err != nil {
				t.Fatal(err)
			}
			if s := e.Stats(); s.ArtifactLoadFailures != 2 || s.ArtifactLoads != 0 || s.Compiles != 1 {
				t.Fatalf("%+v", s)
			}
			wantStatus(t, run(t, e, m, "", Limits{}, nil), StatusSuccess)
		})
	}
}

// Engines whose artifacts are not interchangeable have different
// fingerprints; the fingerprint is stable for one configuration.
func TestFingerprint(t *testing.T) {
	a, b := newEngine(t, Config{}), newEngine(t, Config{})
	plain := newEngine(t, Config{DisablePreinit: true})
	if a.Fingerprint() != b.Fingerprint() || len(a.Fingerprint()) != 64 {
		t.Fatalf("fingerprints %q %q", a.Fingerprint(), b.Fingerprint())
	}
	if a.Fingerprint() == plain.Fingerprint() {
		t.Fatal("pre-initialising and plain engines share a fingerprint")
	}
	// The record it hashes is the one wasmtime checks: an engine with other
	// code-affecting settings writes another.
	cfg := wasmtime.NewConfig()
	cfg.SetEpochInterruption(true)
	cfg.SetCraneliftOptLevel(wasmtime.OptLevelNone)
	if string(engineRecord(a.wt)) == string(engineRecord(wasmtime.NewEngineWithConfig(cfg))) {
		t.Fatal("opt level none and speed give the same compatibility record")
	}
}

// A Go guest (the hello example) is compiled once at full cost: the run of
// _initialize uses the init engine's cheap compile, and the result runs.
func TestGoGuestOneFullCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a Go guest")
	}
	wasm := goGuest(t, "hello")
	e := newEngine(t, Config{CacheDir: t.TempDir()})
	m := loadBytes(t, e, "hello-once", wasm)
	wantPreinit(t, m, true, "")
	if s := e.Stats(); s.Compiles != 1 || s.InitCompiles != 1 || s.Preinitialized != 1 {
		t.Fatalf("%+v", s)
	}
	wantStatus(t, run(t, e, m, `{"name":"x"}`, Limits{}, nil), StatusSuccess)
	e.persisting.Wait()
	if _, err := os.Stat(filepath.Join(e.cfg.CacheDir, "hello-once.v2.preinit.cwasm")); err != nil {
		t.Fatal(err)
	}
}

// A module loaded from an artifact serves calls before its file is synced
// to the disk: the sync and the rename to the cache file's name happen in
// the background, and Stop waits for them. Until then a restart does not
// find the file (it fetches the artifact again), never a file cut short.
func TestLoadFromArtifactDoesNotWaitForSync(t *testing.T) {
	wasm := fixture(t, "init")
	a := newEngine(t, Config{})
	loadBytes(t, a, "init2", wasm)
	art, err := a.Artifact("init2")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	syncing := make(chan struct{}, 1)
	syncFile = func(f *os.File) error {
		syncing <- struct{}{}
		<-release
		return f.Sync()
	}
	t.Cleanup(func() { syncFile = (*os.File).Sync })

	dir := t.TempDir()
	b, err := New(Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	type loaded struct {
		m   *Module
		err error
	}
	done := make(chan loaded, 1)
	go func() {
		m, err := b.LoadFrom("init2", Source{Artifact: func() ([]byte, error) { return art, nil }})
		done <- loaded{m, err}
	}()
	var m *Module
	select {
	case l := <-done:
		if l.err != nil {
			t.Fatal(l.err)
		}
		m = l.m
	case <-time.After(20 * time.Second):
		close(release)
		t.Fatal("LoadFrom waited for the artifact's sync to the disk")
	}
	<-syncing // started, and held back
	res := run(t, b, m, "", Limits{}, nil)
	wantStatus(t, res, StatusSuccess)
	if string(res.Output) != "initialized" {
		t.Fatalf("output %q", res.Output)
	}
	final := b.cachePath("init2")
	if _, err := os.Stat(final); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cache file named before its sync: %v", err)
	}
	stopped := make(chan error)
	go func() { stopped <- b.Close() }()
	select {
	case err := <-stopped:
		t.Fatalf("Close returned (%v) with a sync in progress", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(final); err != nil {
		t.Fatalf("after the sync: %v", err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
	c := newEngine(t, Config{CacheDir: dir})
	if _, err := c.LoadFrom("init2", Source{}); err != nil || c.Stats().DiskLoads != 1 {
		t.Fatalf("after restart: %v %+v", err, c.Stats())
	}
}

// Calls that arrive while a module's artifact is being fetched wait for
// that fetch (never ErrNotCompiled, never a second fetch): the first calls
// on a node right after a deploy share one database read.
func TestConcurrentFirstLoadsFetchArtifactOnce(t *testing.T) {
	a := newEngine(t, Config{})
	loadBytes(t, a, "shared", fixture(t, "init"))
	art, err := a.Artifact("shared")
	if err != nil {
		t.Fatal(err)
	}
	b := newEngine(t, Config{CacheDir: t.TempDir()})
	var fetches atomic.Int32
	var wg sync.WaitGroup
	mods := make([]*Module, 20)
	for i := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := b.LoadFrom("shared", Source{Artifact: func() ([]byte, error) {
				fetches.Add(1)
				time.Sleep(50 * time.Millisecond)
				return art, nil
			}})
			if err != nil {
				t.Error(err)
			}
			mods[i] = m
		}()
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("artifact fetched %d times", n)
	}
	if s := b.Stats(); s.ArtifactLoads != 1 || s.Compiles != 0 {
		t.Fatalf("%+v", s)
	}
	for _, m := range mods {
		if m == nil || m != mods[0] {
			t.Fatal("different modules for one hash")
		}
	}
}

// A module compiled here is written to the cache directory without waiting
// for the disk either: Load (a deploy) returns while the sync is held
// back, Artifact reads the file not yet named, and the cache file gets its
// name only once synced, before Stop returns.
func TestCompileDoesNotWaitForSync(t *testing.T) {
	wasm := fixture(t, "init")
	release := make(chan struct{})
	syncing := make(chan struct{}, 1)
	syncFile = func(f *os.File) error {
		syncing <- struct{}{}
		<-release
		return f.Sync()
	}
	t.Cleanup(func() { syncFile = (*os.File).Sync })

	dir := t.TempDir()
	e, err := New(Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.Load("init3", func() ([]byte, error) { return wasm, nil })
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		close(release)
		t.Fatal("Load waited for the compiled artifact's sync to the disk")
	}
	<-syncing // started, and held back
	final := e.cachePath("init3")
	if _, err := os.Stat(final); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cache file named before its sync: %v", err)
	}
	art, err := e.Artifact("init3")
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error)
	go func() { stopped <- e.Close() }()
	select {
	case err := <-stopped:
		t.Fatalf("Close returned (%v) with a sync in progress", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(final)
	if err != nil {
		t.Fatalf("after the sync: %v", err)
	}
	if !bytes.Equal(art, onDisk) {
		t.Fatalf("Artifact before the sync: %d bytes, the cache file %d", len(art), len(onDisk))
	}
	if tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmps) != 0 {
		t.Fatalf("temporary files left: %v", tmps)
	}
	c := newEngine(t, Config{CacheDir: dir})
	if _, err := c.LoadFrom("init3", Source{}); err != nil || c.Stats().DiskLoads != 1 {
		t.Fatalf("after restart: %v %+v", err, c.Stats())
	}
}

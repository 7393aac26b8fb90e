// Package guest builds Go function modules for tests and benchmarks: a Go
// package compiled for wasip1 as `make examples` compiles one
// (-buildmode=c-shared -trimpath). It imports nothing of aerofn, so any
// test can use it without linking the server.
package guest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Build compiles the Go package pkg (such as ./examples/hello), relative to
// dir ("" for the current directory), and returns the module's bytes.
func Build(dir, pkg string) ([]byte, error) {
	out, err := os.CreateTemp("", "aerofn-guest-*.wasm")
	if err != nil {
		return nil, err
	}
	out.Close()
	defer os.Remove(out.Name())
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out.Name(), pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building %s: %v\n%s", pkg, err, b)
	}
	return os.ReadFile(out.Name())
}

// Once builds pkg, relative to the module root, once per test binary: the
// first call for a package builds it (calls for other packages build at
// the same time), later calls get the same bytes or fail with the same
// error.
func Once(t testing.TB, pkg string) []byte {
	t.Helper()
	builds.Lock()
	r := builds.done[pkg]
	if r == nil {
		r = &result{}
		builds.done[pkg] = r
	}
	builds.Unlock()
	r.once.Do(func() { r.wasm, r.err = Build(root(), pkg) })
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.wasm
}

var builds = struct {
	sync.Mutex
	done map[string]*result
}{done: map[string]*result{}}

type result struct {
	once sync.Once
	wasm []byte
	err  error
}

// root is the module root, from this file's place in it.
func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

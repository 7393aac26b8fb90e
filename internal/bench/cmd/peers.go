package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The peers serve the same handler as examples/hello from their own
// processes: POST {"name"} → {"message":"Hello, <name>!"}. Their sources
// are in internal/bench/peers.
const peersDir = "internal/bench/peers"

// peer is a runtime the bench can start.
type peer struct {
	name    string // row label
	version string
	start   func(addr, logDir string) (*process, error)
}

// helloBody is what every hello handler answers to helloRequest.
const (
	helloRequest = `{"name":"World"}`
	helloAnswer  = "Hello, World!"
)

// checkHello accepts a hello handler's answer.
func checkHello(status int, body []byte) error {
	var out struct{ Message string }
	if status != 200 || json.Unmarshal(body, &out) != nil || out.Message != helloAnswer {
		return fmt.Errorf("want 200 {\"message\":%q}, got %d %.200s", helloAnswer, status, body)
	}
	return nil
}

// peerEnv is the environment of a peer: the bench's, without variables
// that would change how a runtime behaves.
func peerEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AEROFN_") || strings.HasPrefix(k, "NODE_") || strings.HasPrefix(k, "DENO_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// nativeWork is the extra CPU per request of the native handler's loaded
// variants: what a plain Go server's latency on the same cores does as a
// request costs more, beside what aerofn's does.
var nativeWork = []time.Duration{10 * time.Microsecond, 50 * time.Microsecond}

// nativePeers builds internal/bench/peers/native into dir: the bare
// handler first, then the same handler spending each of nativeWork more
// CPU per request.
func nativePeers(ctx context.Context, dir string) ([]peer, error) {
	bin := filepath.Join(dir, "native-hello")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./"+peersDir+"/native").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the native Go peer: %v\n%s", err, out)
	}
	version := goVersion(ctx)
	ps := []peer{{name: nativeName, version: version, start: func(addr, logDir string) (*process, error) {
		return startProcess("native", logDir, peerEnv(), false, bin, addr)
	}}}
	for _, w := range nativeWork {
		ps = append(ps, peer{name: loadedNativeName(w), start: func(addr, logDir string) (*process, error) {
			return startProcess(fmt.Sprintf("native-%s", w), logDir, peerEnv(), false, bin, addr, w.String())
		}})
	}
	return ps, nil
}

const nativeName = "native Go net/http"

func loadedNativeName(w time.Duration) string {
	return fmt.Sprintf("native Go net/http, +%d µs CPU a request", w.Microseconds())
}

func goVersion(ctx context.Context) string {
	out, _ := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	return strings.TrimSpace(string(out))
}

// nodePeer is plain Node.js, when node is installed.
func nodePeer(ctx context.Context) (peer, bool) {
	node, err := exec.LookPath("node")
	if err != nil {
		return peer{}, false
	}
	out, _ := exec.CommandContext(ctx, node, "--version").Output()
	return peer{name: "Node.js node:http", version: "node " + strings.TrimSpace(string(out)), start: func(addr, logDir string) (*process, error) {
		return startProcess("node", logDir, peerEnv(), false, node, filepath.Join(peersDir, "node", "hello.mjs"), portOf(addr))
	}}, true
}

// npmCacheDir is where workerd and Deno are installed:
// $XDG_CACHE_HOME/aerofn-bench, or ~/.cache/aerofn-bench.
func npmCacheDir() (string, error) {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "aerofn-bench"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".cache", "aerofn-bench"), nil
}

// npmBinaries finds the native workerd and deno executables the npm
// packages ship as platform optional dependencies. They are run directly,
// not through the packages' Node.js launchers, so the process measured is
// the runtime itself.
func npmBinaries(dir string) (workerd, deno string) {
	first := func(pattern string) string {
		m, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, p := range m {
			if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
				return p
			}
		}
		return ""
	}
	return first("node_modules/@cloudflare/workerd-*/bin/workerd"), first("node_modules/@deno/*/deno")
}

// npmPeers installs workerd and Deno from npm into the cache directory
// when they are not there yet, and returns the peers it could get, with a
// sentence on each it could not.
func npmPeers(ctx context.Context) ([]peer, []string) {
	dir, err := npmCacheDir()
	if err != nil {
		return nil, []string{"workerd and Deno skipped: no cache directory (" + err.Error() + ")."}
	}
	workerd, deno := npmBinaries(dir)
	var notes []string
	if workerd == "" || deno == "" {
		notes = npmInstall(ctx, dir)
		workerd, deno = npmBinaries(dir)
		if (workerd == "" || deno == "") && len(notes) == 0 {
			notes = append(notes, "npm installed workerd and deno but a platform binary is missing from "+dir+"/node_modules; the rows without it follow.")
		}
	}
	for _, n := range notes {
		fmt.Fprintln(os.Stderr, "bench:", n)
	}
	return collectNPMPeers(ctx, dir, workerd, deno), notes
}

// npmInstall runs npm install into dir; it returns why it failed, or nil.
func npmInstall(ctx context.Context, dir string) []string {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return []string{"workerd and Deno skipped: npm is not installed."}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return []string{"workerd and Deno skipped: " + err.Error()}
	}
	fmt.Fprintf(os.Stderr, "installing workerd and deno from npm into %s...\n", dir)
	ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ictx, npm, "install", "--prefix", dir, "--no-audit", "--no-fund", "--no-save", "--loglevel=error", "workerd", "deno")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	return []string{fmt.Sprintf("npm could not install workerd and deno into %s (%v: %.300s); the rows without them follow.", dir, err, npmReason(string(out)))}
}

// npmReason picks the line of npm's error output that says what went
// wrong, such as "FetchError: request to … failed, reason: connect
// ECONNREFUSED" or "404 Not Found - GET …".
func npmReason(out string) string {
	for _, line := range strings.Split(out, "\n") {
		l := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "npm error"))
		if l == "" || strings.HasPrefix(l, "A complete log") {
			continue
		}
		if f := strings.Fields(l); f[0] == "code" || f[0] == "syscall" || f[0] == "errno" || f[0] == "at" {
			continue
		}
		return l
	}
	return strings.TrimSpace(out)
}

func collectNPMPeers(ctx context.Context, dir, workerd, deno string) []peer {
	version := func(bin string) string {
		vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(vctx, bin, "--version").Output()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return line
	}
	var ps []peer
	if workerd != "" {
		ps = append(ps, peer{name: "workerd", version: version(workerd), start: func(addr, logDir string) (*process, error) {
			return startProcess("workerd", logDir, peerEnv(), false, workerd, "serve", filepath.Join(peersDir, "workerd", "config.capnp"),
				"--socket-addr", "http="+addr)
		}})
	}
	if deno != "" {
		denoDir := filepath.Join(dir, "deno-dir")
		ps = append(ps, peer{name: "Deno.serve", version: version(deno), start: func(addr, logDir string) (*process, error) {
			return startProcess("deno", logDir, peerEnv("DENO_DIR="+denoDir, "DENO_NO_UPDATE_CHECK=1", "NO_COLOR=1"), false,
				deno, "run", "--allow-net=127.0.0.1", filepath.Join(peersDir, "deno", "hello.ts"), portOf(addr))
		}})
	}
	return ps
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is a server the bench started: aerofn serve or a peer. It runs in
// its own process group and dies with the bench (Pdeathsig), so neither a
// failed run nor an interrupted one leaves it behind.
type process struct {
	name string
	addr string // 127.0.0.1:port
	cmd  *exec.Cmd
	log  string // file holding its stderr (and stdout when not discarded)
	done chan struct{}
	err  error // from Wait, once done is closed
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startProcess starts path with args. Its stderr goes to a log file in
// logDir; its stdout too unless discardStdout (aerofn prints a line per
// call there, which under load would be gigabytes).
func startProcess(name, logDir string, env []string, discardStdout bool, path string, args ...string) (*process, error) {
	logPath := filepath.Join(logDir, strings.NewReplacer(" ", "-", "/", "-", ":", "-").Replace(name)+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child holds its own copy
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.Stderr = f
	if !discardStdout {
		cmd.Stdout = f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", name, path, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process group at once and waits for the process.
func (p *process) kill() {
	if p == nil || p.exited() {
		return
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "bench: %s (pid %d) did not exit after SIGKILL\n", p.name, p.pid())
	}
}

// stop asks the process to exit (SIGTERM) and kills it after timeout.
func (p *process) stop(timeout time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
	}
}

// logTail is the end of what the process wrote, for error messages.
func (p *process) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return fmt.Sprintf("last output of %s (%s):\n%s", p.name, p.log, b)
}

// waitReady polls ready until it succeeds, the process exits, or timeout.
func (p *process) waitReady(ctx context.Context, timeout time.Duration, ready func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		last = ready(rctx)
		rcancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v); %s", p.name, p.err, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %v; %s", p.name, timeout, last, p.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startListening starts a server on a free loopback port (start gets the
// address) and waits up to timeout until ready says it serves there. A port
// someone else took between the choice and the bind is retried on another.
// track is given the process as soon as it runs, to kill it at the end.
func startListening(ctx context.Context, timeout time.Duration, start func(addr string) (*process, error),
	ready func(ctx context.Context, addr string) error, track func(*process)) (*process, error) {
	for attempt := 1; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := start(addr)
		if err != nil {
			return nil, err
		}
		track(p)
		p.addr = addr
		err = p.waitReady(ctx, timeout, func(ctx context.Context) error { return ready(ctx, addr) })
		if err == nil {
			return p, nil
		}
		p.kill()
		if attempt < 3 && portTaken(p.log) {
			continue
		}
		return nil, err
	}
}

// portTaken says whether a server's log says its port was taken, in the
// words of Go, Node.js, Deno or workerd.
func portTaken(logPath string) bool {
	b, _ := os.ReadFile(logPath)
	s := strings.ToLower(string(b))
	return strings.Contains(s, "address already in use") || strings.Contains(s, "eaddrinuse") || strings.Contains(s, "addrinuse")
}

// oneShot is a client that opens a new connection for every request, so a
// timed call includes nothing left over from an earlier one.
var oneShot = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 120 * time.Second}

// post sends body to url once and returns the status, the body and the
// wall time from sending to the last byte read.
func post(ctx context.Context, url, body string, headers map[string]string) (int, []byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	t0 := time.Now()
	resp, err := oneShot.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	d := time.Since(t0)
	if err != nil {
		return 0, nil, 0, err
	}
	return resp.StatusCode, b, d, nil
}

// healthy is a readiness check on GET /healthz.
func healthy(base string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/healthz", nil)
		resp, err := oneShot.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return errors.New("/healthz: " + resp.Status)
		}
		return nil
	}
}

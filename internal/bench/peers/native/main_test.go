package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWorkArgument: the second argument is the CPU each request spends
// before the answer, which is the same as without it; one that is not a
// duration is refused with exit status 2.
func TestWorkArgument(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "native")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, bad := range []string{"fast", "-3us"} {
		err := exec.Command(bin, "127.0.0.1:0", bad).Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("work %q: want exit status 2, got %v", bad, err)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, addr, "200us")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) { // its start, which measures the loop first
		resp, err = http.Post("http://"+addr+"/", "application/json", strings.NewReader(`{"name":"Ada"}`))
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"message":"Hello, Ada!"}` {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
}

// TestSpinRate: the loop's measured rate is positive and spin(n) does n
// steps' work (the result depends on every step).
func TestSpinRate(t *testing.T) {
	if r := loopsPerNanosecond(); r <= 0 {
		t.Fatalf("rate %v", r)
	}
	sink = 1
	spin(3)
	a := sink
	sink = 1
	spin(4)
	if a == sink {
		t.Fatal("spin(3) and spin(4) left the same value")
	}
}

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/testenv"
)

// The database URL and address docs/getting-started.md uses, which the test
// replaces with its own.
const (
	docDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres"
	docAddr        = "127.0.0.1:8080"
)

// shCommands are the command lines of the sh code blocks of a markdown
// document, in order.
func shCommands(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cmds []string
	in, cont := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in = true
		case in && strings.TrimSpace(line) == "```":
			in = false
		case in:
			if strings.HasSuffix(line, "\\") {
				cont += strings.TrimSuffix(line, "\\")
				continue
			}
			line, cont = cont+line, ""
			if s := strings.TrimSpace(line); s != "" && !strings.HasPrefix(s, "#") {
				cmds = append(cmds, s)
			}
		}
	}
	return cmds
}

// fileOutput reads what the commands wrote so far.
type fileOutput struct{ path string }

func (f fileOutput) String() string {
	b, _ := os.ReadFile(f.path)
	return string(b)
}

// TestGettingStarted follows docs/getting-started.md word for word: its sh
// blocks run in order in one bash, in an empty directory outside the
// repository, with the Go module proxy off; only the database URL and the
// port are the test's own.
func TestGettingStarted(t *testing.T) {
	dbURL := dbtest.NewDatabase(t)
	// The document's server listens on a fixed port; the test's on another
	// (the document's AEROFN_URL must name it before it starts).
	addr := unusedAddr(t)
	bin := t.TempDir()
	if err := os.Symlink(testenv.Binary(t), filepath.Join(bin, "aerofn")); err != nil {
		t.Fatal(err)
	}
	cmds := shCommands(t, filepath.Join(testenv.RepoRoot(t), "docs", "getting-started.md"))
	doc := strings.Join(cmds, "\n")
	for _, s := range []string{docDatabaseURL, docAddr, "aerofn new hello", "aerofn logs hello -f &", "aerofn runs hello"} {
		if !strings.Contains(doc, s) {
			t.Fatalf("docs/getting-started.md no longer has %q; update this test with it", s)
		}
	}
	// Each command is announced with a marker line, so its output can be
	// found; background jobs write wherever they are.
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for i, c := range cmds {
		c = strings.ReplaceAll(strings.ReplaceAll(c, docDatabaseURL, dbURL), docAddr, addr)
		fmt.Fprintf(&script, "echo '::: %d'\n%s\n", i, c)
	}
	script.WriteString("echo '::: done'\n")

	dir := t.TempDir() // outside the repository
	if strings.HasPrefix(dir, testenv.RepoRoot(t)) {
		t.Fatalf("temp dir %s is inside the repository", dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"GOCACHE=" + goEnv(t, "GOCACHE"), "GOMODCACHE=" + goEnv(t, "GOMODCACHE"), "GOPATH=" + goEnv(t, "GOPATH"),
		"GOPROXY=off", "GOFLAGS=-mod=readonly", "GOWORK=off", "GOTOOLCHAIN=local",
		"AEROFN_OUTPUT=table", "AEROFN_CLI_CONFIG=" + filepath.Join(dir, "no-profile.json")}
	// A file, not a pipe: the background jobs keep their output open after
	// the shell exits, and Wait would wait for them to close a pipe.
	outFile, err := os.Create(filepath.Join(t.TempDir(), "output"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	out := fileOutput{outFile.Name()}
	cmd.Stdout, cmd.Stderr = outFile, outFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The background jobs (the server, the follower) are in the shell's
	// process group.
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err = cmd.Wait()
	if err != nil || !strings.Contains(out.String(), "::: done") {
		log, _ := os.ReadFile(filepath.Join(dir, "aerofn.log"))
		t.Fatalf("the getting-started commands failed: %v\n%s\naerofn.log:\n%s", err, out.String(), log)
	}
	outputOf := func(s string) string {
		for i, c := range cmds {
			if c == s {
				all := out.String()
				start := strings.Index(all, fmt.Sprintf("::: %d\n", i))
				end := strings.Index(all, fmt.Sprintf("::: %d\n", i+1))
				if end < 0 {
					end = strings.Index(all, "::: done")
				}
				return all[start:end]
			}
		}
		t.Fatalf("no command %q in the document", s)
		return ""
	}
	for _, w := range []struct{ cmd, want string }{
		{"aerofn new hello", "created hello"},
		{"go test ./...", "ok"},
		{"aerofn build", "built hello.wasm"},
		{"aerofn deploy .", "deployed hello version 1 (sha256 "},
		{"aerofn deploy .", "trigger: http"},
		{`aerofn invoke hello --data '{"name": "Ada"}'`, `{"message":"Hello, Ada!"}`},
		{`aerofn config set hello 'triggers=[{"type":"schedule","cron":"@every 2s"}]'`, "trigger: schedule @every 2s"},
		{"aerofn runs hello", "schedule 0: @every 2s"},
		{"aerofn runs hello", "succeeded"},
	} {
		if got := outputOf(w.cmd); !strings.Contains(got, w.want) {
			t.Errorf("%s: want %q in its output:\n%s", w.cmd, w.want, got)
		}
	}
	// The follower showed the HTTP call as anon with its log line, and the
	// scheduled runs with theirs (it may print them a moment after the
	// shell is done).
	deadline := time.Now().Add(10 * time.Second)
	for !regexp.MustCompile(`info\s+scheduled run for `).MatchString(out.String()) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	for _, re := range []string{`http\s+success\s.*anon/-`, `info\s+greeting Ada`, `schedule\s+success\s.*service_role/-`, `info\s+scheduled run for `} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("logs -f printed nothing matching %s:\n%s", re, out.String())
		}
	}
}

// unusedAddr is a loopback address with a port that is free now and that
// the kernel will not hand out as the source port of a connection: it lies
// outside the ephemeral range, where a random port could be taken by any
// outgoing connection (the database's, the module proxy's) before the server
// binds it.
func unusedAddr(t *testing.T) string {
	t.Helper()
	low, high := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil {
				low, high = l, h
			}
		}
	}
	var ports []int // 10000 and up, outside [low, high]
	for p := 10000; p < 65536; p++ {
		if p < low || p > high {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		t.Fatalf("the ephemeral port range %d-%d leaves no port from 10000 up", low, high)
	}
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", ports[rand.IntN(len(ports))])
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free port outside the ephemeral range")
	return ""
}

func goEnv(t *testing.T, key string) string {
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

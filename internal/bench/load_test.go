package bench

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// wrkOutput is what wrk 4.1.0 printed for a run of WrkScript's script.
const wrkOutput = `Running 2s test @ http://127.0.0.1:18777/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    33.90ms   87.09ms 621.47ms   90.89%
    Req/Sec     5.85k     4.10k   13.16k    48.65%
  21717 requests in 2.08s, 3.77MB read
  Socket errors: connect 0, read 3, write 0, timeout 5
  Non-2xx or 3xx responses: 7
Requests/sec:  10423.23
Transfer/sec:      1.81MB
AEROFN_WRK requests=21717 duration_us=2083520 p50_us=3979 p99_us=448017 connect=0 read=3 write=0 status=7 timeout=5
`

func TestParseWrk(t *testing.T) {
	r, err := ParseWrk(wrkOutput)
	if err != nil {
		t.Fatal(err)
	}
	want := LoadResult{Requests: 21717, Duration: 2083520 * time.Microsecond, P50: 3979 * time.Microsecond,
		P99: 448017 * time.Microsecond, SocketErrors: 8, BadStatus: 7}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}
	if rps := r.RPS(); rps < 10423 || rps > 10424 {
		t.Fatalf("RPS %.2f", rps)
	}
	if r.Errors() != 15 {
		t.Fatalf("Errors %d", r.Errors())
	}
}

func TestParseWrkRejects(t *testing.T) {
	for name, out := range map[string]string{
		"no marker line":  "Running 2s test @ http://x/\nunable to connect to 127.0.0.1:1 Connection refused\n",
		"a field missing": "AEROFN_WRK requests=1 duration_us=2 p50_us=3 connect=0 read=0 write=0 status=0 timeout=0\n",
		"not a number":    "AEROFN_WRK requests=1.5 duration_us=2 p50_us=3 p99_us=4 connect=0 read=0 write=0 status=0 timeout=0\n",
		"no equals sign":  "AEROFN_WRK requests 1\n",
	} {
		if _, err := ParseWrk(out); err == nil {
			t.Errorf("%s: parsed %q", name, out)
		}
	}
}

func TestLuaString(t *testing.T) {
	for in, want := range map[string]string{
		`{"name":"World"}`: `"{\"name\":\"World\"}"`,
		`a\b`:              `"a\\b"`,
		"line\nnext]]":     `"line\010next]]"`,
	} {
		if got := luaString(in); got != want {
			t.Errorf("luaString(%q) = %s, want %s", in, got, want)
		}
	}
}

// helloServer answers like the benchmarked handler and counts what it saw.
func helloServer(t *testing.T, seen *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Name string }
		if r.Method != "POST" || r.Header.Get("Authorization") != "Bearer k" || json.NewDecoder(r.Body).Decode(&in) != nil || in.Name != "World" {
			http.Error(w, "bad request", 400)
			return
		}
		seen.Add(1)
		_, _ = io.WriteString(w, `{"message":"Hello, World!"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestWrkRun drives a server with the real wrk and the script WrkScript
// writes: the method, body and headers arrive and every answer is counted.
func TestWrkRun(t *testing.T) {
	w := FindWrk(t.TempDir())
	if w == nil {
		if _, err := exec.LookPath("apt-get"); err == nil {
			t.Fatal("wrk is not installed; scripts/ensure-wrk.sh installs it")
		}
		t.Skip("wrk is not installed and cannot be here; the Go fallback is tested below")
	}
	var seen atomic.Int64
	srv := helloServer(t, &seen)
	r, err := w.Run(context.Background(), Request{URL: srv.URL, Body: `{"name":"World"}`, Headers: map[string]string{"Authorization": "Bearer k"}}, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors() != 0 || r.Requests > seen.Load() || r.P50 <= 0 || r.P99 < r.P50 {
		t.Fatalf("%+v, server saw %d", r, seen.Load())
	}
	// A wrong body is a bad status, not a success.
	r, err = w.Run(context.Background(), Request{URL: srv.URL, Body: `{"name":"Nobody"}`, Headers: map[string]string{"Authorization": "Bearer k"}}, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.BadStatus == 0 || r.BadStatus != r.Requests {
		t.Fatalf("bad requests not counted: %+v", r)
	}
	if _, err := w.Run(context.Background(), Request{URL: "http://127.0.0.1:1/"}, 1, time.Second); err == nil || !strings.Contains(err.Error(), "unable to connect") {
		t.Fatalf("a refused connection: %v", err)
	}
}

func TestGoLoad(t *testing.T) {
	var seen atomic.Int64
	srv := helloServer(t, &seen)
	r, err := GoLoad{}.Run(context.Background(), Request{URL: srv.URL, Body: `{"name":"World"}`, Headers: map[string]string{"Authorization": "Bearer k"}}, 4, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors() != 0 || r.Requests > seen.Load() || r.P50 <= 0 || r.P99 < r.P50 || r.Duration < 300*time.Millisecond {
		t.Fatalf("%+v, server saw %d", r, seen.Load())
	}
	r, err = GoLoad{}.Run(context.Background(), Request{URL: srv.URL, Body: `{}`}, 2, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.BadStatus == 0 || r.BadStatus != r.Requests {
		t.Fatalf("bad requests not counted: %+v", r)
	}
	r, err = GoLoad{}.Run(context.Background(), Request{URL: "http://127.0.0.1:1/"}, 1, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.SocketErrors == 0 || r.Requests != 0 {
		t.Fatalf("refused connections not counted: %+v", r)
	}
}

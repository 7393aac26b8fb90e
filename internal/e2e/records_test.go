package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/testenv"
	"github.com/aerodb/aerofn/internal/testenv/wat"
)

// metric returns the value of one series in /metrics, "" when absent.
func metric(t *testing.T, e *testenv.Env, series string) string {
	t.Helper()
	r := e.Do("GET", "/metrics", "", "", nil)
	for _, l := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

// invokeWithID invokes fn with an X-Request-Id header, as raw bytes.
func invokeWithID(t *testing.T, e *testenv.Env, fn, id string) testenv.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", e.URL+"/functions/v1/"+fn, strings.NewReader(`{"a":1}`))
	req.Header.Set("Authorization", "Bearer "+e.AnonKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header["X-Request-Id"] = []string{id}
	resp, err := e.HTTP.Do(req)
	if err != nil {
		t.Fatalf("invoking %s: %v", fn, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return testenv.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// TestHostileTextKeepsEveryRecord: a request id that is not UTF-8 and a
// function whose log line and error hold NUL, called among ordinary calls
// in the same batches, cost no call its record.
func TestHostileTextKeepsEveryRecord(t *testing.T) {
	e := testenv.Start(t)
	e.MustDeploy("echo", compile(t, watEcho), nil)
	e.MustDeploy("nul", compile(t, wat.HostileText(1)), nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]string{} // invocation id → X-Request-Id answered
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn, id := "echo", fmt.Sprintf("req-%d", i)
			switch i % 3 {
			case 1:
				id = "\xff\xfe"
			case 2:
				fn = "nul"
			}
			r := invokeWithID(t, e, fn, id)
			mu.Lock()
			ids[r.Header.Get("X-Aerofn-Invocation-Id")] = r.Header.Get("X-Request-Id")
			mu.Unlock()
		}()
	}
	wg.Wait()
	e.Flush()
	if v := metric(t, e, "aerofn_invocation_records_failed_total"); v != "0" {
		t.Errorf("records_failed_total = %q, want 0", v)
	}
	rows, err := e.Admin.Query(context.Background(), `SELECT id::text, request_id, coalesce(error, ''), logs::text FROM aerofn.invocations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id, reqID, errText, logs string
		if err := rows.Scan(&id, &reqID, &errText, &logs); err != nil {
			t.Fatal(err)
		}
		n++
		answered, ok := ids[id]
		if !ok {
			t.Errorf("record %s matches no call", id)
			continue
		}
		if reqID != answered || !validRequestID(reqID) {
			t.Errorf("record %s: request_id %q, answered X-Request-Id %q", id, reqID, answered)
		}
		if errText != "" && (errText != "bad\uFFFDtext\uFFFD" || !strings.Contains(logs, "bad\uFFFDtext\uFFFD")) {
			t.Errorf("record %s: error %q logs %s, want NUL and the invalid byte as U+FFFD", id, errText, logs)
		}
	}
	if n != 60 {
		t.Errorf("%d records for 60 calls", n)
	}
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// TestRequestIDRule: 1-128 visible ASCII characters are kept; anything else
// (too long, a space, a byte outside ASCII) gets a new id.
func TestRequestIDRule(t *testing.T) {
	e := testenv.Start(t)
	e.MustDeploy("echo", compile(t, watEcho), nil)
	longest := strings.Repeat("a", 127) + "~"
	for id, kept := range map[string]bool{"abc-123_X.y:z/1": true, longest: true, longest + "b": false,
		"has space": false, "caf\xc3\xa9": false, "\xff\xfe": false, "a\tb": false} {
		r := invokeWithID(t, e, "echo", id)
		got := r.Header.Get("X-Request-Id")
		if r.Status != 200 || (got == id) != kept || !validRequestID(got) {
			t.Errorf("X-Request-Id %q: answered %d with id %q, want kept=%v", id, r.Status, got, kept)
		}
	}
}

// TestAdmissionBeforeBody: at its concurrency limit a node answers 429
// without reading the request body (here one that never arrives).
func TestAdmissionBeforeBody(t *testing.T) {
	e := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.MaxConcurrency = 1 }})
	e.MustDeploy("loop", compile(t, watLoop), map[string]any{"timeout": 5, "verify_jwt": false})
	e.MustDeploy("echo", compile(t, watEcho), map[string]any{"verify_jwt": false})
	// The loop and the probes below compete for the one slot: the loop
	// retries until it is admitted (a probe may hold the slot at that
	// moment), and the probes go on until one is refused because of it.
	held := make(chan testenv.Response, 1)
	go func() {
		for {
			if r := e.Invoke("loop", "", nil); r.Status != http.StatusTooManyRequests {
				held <- r
				return
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for e.Invoke("echo", "", nil).Status != http.StatusTooManyRequests {
		if time.Now().After(deadline) {
			t.Fatal("the loop never held the node's only slot")
		}
	}
	// Headers announcing a 6 MiB body, then only a little of it: the answer
	// must come without the rest.
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /functions/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
		6<<20, bytes.Repeat([]byte{1}, 4096))
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("a call refused for concurrency waited for its body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d, want 429 with Retry-After", resp.StatusCode)
	}
	t.Logf("refused in %s without the body", time.Since(start))
	if r := <-held; r.Status != http.StatusGatewayTimeout {
		t.Fatalf("loop: %d %s", r.Status, r.Body)
	}
}

// TestEncodedEventLimit: the 6 MiB limit applies to the event as the guest
// gets it, so a body that grows when encoded (a control character becomes
// six bytes) is refused with 413 before the guest starts.
func TestEncodedEventLimit(t *testing.T) {
	e := testenv.Start(t)
	e.MustDeploy("noop", compile(t, wat.Noop), map[string]any{"verify_jwt": false})
	for _, c := range []struct {
		body   []byte
		ctype  string
		status int
	}{
		{bytes.Repeat([]byte{1}, 1<<20), "text/plain", http.StatusRequestEntityTooLarge},                  // 6 MiB escaped, plus the rest
		{bytes.Repeat([]byte{1}, 1<<20-4096), "text/plain", http.StatusNoContent},                         // just under
		{bytes.Repeat([]byte{0xff}, 5<<20), "application/octet-stream", http.StatusRequestEntityTooLarge}, // base64: 6.7 MiB
		{bytes.Repeat([]byte{0xff}, 4<<20), "application/octet-stream", http.StatusNoContent},
		{[]byte(`"` + strings.Repeat("<", 5<<20) + `"`), "application/json", http.StatusNoContent}, // not HTML-escaped
	} {
		r := e.Do("POST", "/functions/v1/noop", "", c.ctype, bytes.NewReader(c.body))
		if r.Status != c.status || (c.status == 413 && r.Code() != "payload_too_large") {
			t.Errorf("%d bytes of %q (%s): %d %s, want %d", len(c.body), c.body[:1], c.ctype, r.Status, r.Body, c.status)
		}
	}
	e.Flush()
	var n int
	_ = e.Admin.QueryRow(context.Background(), `SELECT count(*) FROM aerofn.invocations WHERE function_name = 'noop'`).Scan(&n)
	if n != 3 {
		t.Errorf("%d records, want 3 (refused events never start the guest)", n)
	}
}

// TestStatusCodeRange: a function may answer 200-599; another statusCode
// (101 would hang the connection) is a 500 function error, recorded as one.
func TestStatusCodeRange(t *testing.T) {
	e := testenv.Start(t)
	for code, want := range map[int]int{101: 500, 199: 500, 0: 500, 600: 500, -1: 500, 200: 200, 418: 418, 599: 599} {
		name := fmt.Sprintf("status%d", code+1)
		e.MustDeploy(name, compile(t, wat.Const(fmt.Sprintf(`{"statusCode":%d,"body":"x"}`, code), 0)), nil)
		r := e.Invoke(name, e.AnonKey, nil)
		if r.Status != want || (want == 500 && (r.Code() != "function_error" || !strings.Contains(string(r.Body), "200-599"))) {
			t.Errorf("statusCode %d: %d %s, want %d", code, r.Status, r.Body, want)
		}
		e.Flush()
		var status string
		_ = e.Admin.QueryRow(context.Background(), `SELECT status FROM aerofn.invocations WHERE function_name = $1`, name).Scan(&status)
		if wantStatus := map[bool]string{true: "error", false: "success"}[want == 500]; status != wantStatus {
			t.Errorf("statusCode %d: recorded %q, want %q", code, status, wantStatus)
		}
	}
}

// TestFunctionCannotForgeRequestID: the X-Request-Id and
// X-Aerofn-Invocation-Id response headers are the server's.
func TestFunctionCannotForgeRequestID(t *testing.T) {
	e := testenv.Start(t)
	e.MustDeploy("forge", compile(t, wat.Const(`{"statusCode":200,"headers":{"x-request-id":"forged","X-Aerofn-Invocation-Id":"forged","X-Other":"ok"},"body":"x"}`, 0)), nil)
	r := invokeWithID(t, e, "forge", "mine")
	if r.Header.Get("X-Request-Id") != "mine" || r.Header.Get("X-Aerofn-Invocation-Id") == "forged" || r.Header.Get("X-Other") != "ok" {
		t.Fatalf("headers %v", r.Header)
	}
}

// TestLogsDroppedRecorded: lines past the per-call cap are counted in the
// record's logs_dropped.
func TestLogsDroppedRecorded(t *testing.T) {
	e := testenv.Start(t)
	e.MustDeploy("chatty", compile(t, `(module
  (import "aerodb" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "line")
  (func (export "handler") (result i32)
    (local $i i32)
    (loop $l
      (call $log (i32.const 1) (i32.const 0) (i32.const 4))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1005))))
    (i32.const 0)))`), nil)
	if r := e.Invoke("chatty", e.AnonKey, nil); r.Status != 204 {
		t.Fatalf("chatty: %d %s", r.Status, r.Body)
	}
	e.Flush()
	var dropped, lines int
	if err := e.Admin.QueryRow(context.Background(), `SELECT logs_dropped, jsonb_array_length(logs) FROM aerofn.invocations
		WHERE function_name = 'chatty'`).Scan(&dropped, &lines); err != nil {
		t.Fatal(err)
	}
	if dropped != 5 || lines < 1000 {
		t.Fatalf("logs_dropped %d with %d lines kept, want 5 and 1000", dropped, lines)
	}
}

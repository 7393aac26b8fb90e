package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aerodb/aerofn/internal/testenv"
	"github.com/aerodb/aerofn/internal/testenv/guest"
)

// planGuest builds testdata/plan (see its doc) once per test binary.
func planGuest(t testing.TB) []byte {
	return guest.Once(t, "./internal/e2e/testdata/plan")
}

// FuzzInvokeRecord drives the whole invoke → record path with bytes the
// fuzzer picks: the request id, a header, the body and its content type,
// and the function's log lines (log import and stderr), error, statusCode,
// response header and body. Each call runs beside an ordinary one. Every
// call the function ran (its answer carries an invocation id) must end with
// exactly one stored record, with a request id that is plain text and the
// status its answer implies; no other call's record may be lost and no
// record may fail to be written.
func FuzzInvokeRecord(f *testing.F) {
	f.Add([]byte("req-1"), []byte("v"), []byte(`{"a":1}`), "application/json", []byte("line"), []byte(""), false, []byte(""), int16(200), []byte("h"), []byte("ok"))
	f.Add([]byte("\xff\xfe"), []byte("\x00\xff"), []byte("\x01\x00\xff"), "text/plain", []byte("nul\x00\xff"), []byte("err\x00"), true, []byte("bad\x00\xfe"), int16(0), []byte("\x00"), []byte("\x00"))
	f.Add([]byte(strings.Repeat("a", 129)), []byte(""), []byte{0xc3}, "application/octet-stream", []byte{}, []byte("x\n\x00y"), false, []byte{}, int16(101), []byte("\r\nSet-Cookie: a=b"), []byte{})
	f.Add([]byte("id"), []byte("v"), []byte("<<<>>>"), "application/json", []byte("\xed\xa0\x80"), []byte{}, false, []byte{}, int16(-1), []byte{}, []byte("\xff"))

	e := testenv.Start(f)
	e.MustDeploy("plan", planGuest(f), map[string]any{"verify_jwt": false})
	e.MustDeploy("echo", compile(f, watEcho), map[string]any{"verify_jwt": false})
	ran := 0 // calls of plan that carried an invocation id, in this process

	f.Fuzz(func(t *testing.T, reqID, hdr, body []byte, ctype string, logLine, stderr []byte, fail bool, errMsg []byte,
		status int16, respHeader, out []byte) {
		plan, _ := json.Marshal(map[string]any{"log": logLine, "stderr": stderr, "fail": fail, "err": errMsg,
			"status": status, "header": respHeader, "out": out})
		req := httptest.NewRequest("POST", "/functions/v1/plan", bytes.NewReader(body))
		req.Header["X-Request-Id"] = []string{string(reqID)}
		req.Header["X-Fuzz"] = []string{string(hdr)}
		req.Header["Content-Type"] = []string{ctype}
		req.Header.Set("X-Plan", base64.RawURLEncoding.EncodeToString(plan))

		var wg sync.WaitGroup
		wg.Add(1)
		var bystander testenv.Response
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			e.Server.API.ServeHTTP(rec, httptest.NewRequest("POST", "/functions/v1/echo", strings.NewReader(`{"ok":1}`)))
			bystander = testenv.Response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
		}()
		rec := httptest.NewRecorder()
		e.Server.API.ServeHTTP(rec, req)
		wg.Wait()
		e.Flush()

		if bystander.Status != 200 {
			t.Fatalf("the ordinary call beside it: %d %s", bystander.Status, bystander.Body)
		}
		if n := recordsOf(t, e, bystander.Header.Get("X-Aerofn-Invocation-Id")); n != 1 {
			t.Fatalf("the ordinary call beside it has %d records", n)
		}
		id := rec.Header().Get("X-Aerofn-Invocation-Id")
		if id != "" {
			ran++
			var reqIDStored, st string
			if err := e.Admin.QueryRow(context.Background(), `SELECT coalesce(request_id, ''), status FROM aerofn.invocations WHERE id = $1`,
				id).Scan(&reqIDStored, &st); err != nil {
				t.Fatalf("the call's record: %v (answer %d %s)", err, rec.Code, rec.Body)
			}
			if got := rec.Header().Get("X-Request-Id"); reqIDStored != got || !validRequestID(got) {
				t.Fatalf("request id stored %q, answered %q", reqIDStored, got)
			}
			failed := fail || (status != 0 && (status < 200 || status > 599))
			if want := map[bool]string{true: "error", false: "success"}[failed]; st != want || (failed && rec.Code != 500) {
				t.Fatalf("answered %d %s, recorded %s", rec.Code, rec.Body, st)
			}
			if rec.Code < 200 || rec.Code > 599 {
				t.Fatalf("answered status %d", rec.Code)
			}
		} else if rec.Code < 400 {
			t.Fatalf("answered %d without an invocation id", rec.Code)
		}
		var total int
		_ = e.Admin.QueryRow(context.Background(), `SELECT count(*) FROM aerofn.invocations WHERE function_name = 'plan'`).Scan(&total)
		if total != ran {
			t.Fatalf("%d records of plan for %d calls that ran", total, ran)
		}
		m := httptest.NewRecorder()
		e.Server.API.ServeHTTP(m, httptest.NewRequest("GET", "/metrics", nil))
		if !strings.Contains(m.Body.String(), "\naerofn_invocation_records_failed_total 0\n") {
			t.Fatal("an invocation record failed to be written")
		}
	})
}

func recordsOf(t *testing.T, e *testenv.Env, id string) int {
	t.Helper()
	var n int
	if err := e.Admin.QueryRow(context.Background(), `SELECT count(*) FROM aerofn.invocations WHERE id::text = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

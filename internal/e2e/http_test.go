package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aerodb/aerofn/internal/testenv"
)

// TestHTTPEventAndAnswer: every value of a repeated header or query
// parameter reaches the function, a function can answer several Set-Cookie
// and binary bytes (Go SDK), and the status it answers is recorded, shown in
// logs and counted by stats and metrics apart from the call's own status.
func TestHTTPEventAndAnswer(t *testing.T) {
	e := testenv.Start(t)
	e.MustDeploy("echo", compile(t, watEcho), nil)
	e.MustDeploy("http-api", testenv.Example(t, "http-api"), nil)
	e.MustDeploy("fail", constModule(t, `custom failure`, 1), nil)

	h := hdr("Authorization", "Bearer "+e.AnonKey, "X-Multi", "a", "X-Multi", "b")
	r := e.Send("GET", "/functions/v1/echo/p?x=1&x=2&y=3", h, nil)
	ev := r.JSON(t)
	if ev["headers"].(map[string]any)["x-multi"] != "a" || ev["query"].(map[string]any)["x"] != "1" {
		t.Fatalf("first values: %s", r.Body)
	}
	all := ev["headers_all"].(map[string]any)["x-multi"].([]any)
	qall := ev["query_all"].(map[string]any)
	if len(all) != 2 || all[1] != "b" || len(qall["x"].([]any)) != 2 || qall["x"].([]any)[1] != "2" || qall["y"].([]any)[0] != "3" {
		t.Fatalf("every value: %s", r.Body)
	}
	if _, ok := ev["headers_all"].(map[string]any)["authorization"]; ok {
		t.Fatalf("credentials in headers_all: %s", r.Body)
	}
	// Through the Go SDK: Event.Headers and Event.Query hold every value.
	r = e.Send("POST", "/functions/v1/http-api/echo?x=1&x=2", h, nil)
	if ev := r.JSON(t); r.Status != 200 || len(ev["query"].(map[string]any)["x"].([]any)) != 2 || len(ev["headers"].(map[string]any)["x-multi"].([]any)) != 2 {
		t.Fatalf("SDK event: %d %s", r.Status, r.Body)
	}

	anon := hdr("Authorization", "Bearer "+e.AnonKey)
	r = e.Send("GET", "/functions/v1/http-api/cookies", anon, nil)
	if c := r.Header.Values("Set-Cookie"); r.Status != 200 || !slices.Equal(c, []string{"a=1; Path=/", "b=2; Path=/"}) {
		t.Fatalf("cookies: %d %v", r.Status, r.Header)
	}
	in := []byte{0x00, 0x01, 0x80, 0xfe, 0xff}
	ct := anon.Clone()
	ct.Set("Content-Type", "application/octet-stream")
	r = e.Send("POST", "/functions/v1/http-api/binary", ct, bytes.NewReader(in))
	want := slices.Clone(in)
	slices.Reverse(want)
	if r.Status != 200 || !bytes.Equal(r.Body, want) || r.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("binary: %d %v %x", r.Status, r.Header, r.Body)
	}
	// The function's own 404 and 204: no x-relay-error.
	for _, c := range []struct {
		method, path string
		status       int
	}{{"GET", "/functions/v1/http-api/nothing", 404}, {"DELETE", "/functions/v1/http-api/users/1", 204}, {"POST", "/functions/v1/fail", 500}} {
		r := e.Send(c.method, c.path, anon, nil)
		if r.Status != c.status || r.Header.Get("X-Relay-Error") != "" {
			t.Fatalf("%s %s: %d %v %s", c.method, c.path, r.Status, r.Header, r.Body)
		}
	}

	e.Flush()
	logs := e.JSONRequest("GET", "/admin/v1/functions/http-api/logs", e.ServiceKey, nil)
	var recs []map[string]any
	if err := json.Unmarshal(logs.Body, &recs); err != nil {
		t.Fatalf("logs: %v %s", err, logs.Body)
	}
	var got []string
	for _, rec := range recs {
		got = append(got, fmt.Sprint(rec["status"], "/", rec["http_status"]))
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"success/200", "success/200", "success/200", "success/204", "success/404"}) {
		t.Fatalf("logs: %v\n%s", got, logs.Body)
	}
	st := e.JSONRequest("GET", "/admin/v1/functions/http-api/stats", e.ServiceKey, nil).JSON(t)
	if by := st["by_http_status"].(map[string]any); by["2xx"] != 4.0 || by["4xx"] != 1.0 || st["success_rate"] != 1.0 {
		t.Fatalf("stats: %v", st)
	}
	if by := e.JSONRequest("GET", "/admin/v1/functions/fail/stats", e.ServiceKey, nil).JSON(t)["by_http_status"].(map[string]any); by["5xx"] != 1.0 {
		t.Fatalf("fail stats: %v", by)
	}
	m := string(e.Do("GET", "/metrics", "", "", nil).Body)
	for _, series := range []string{
		`aerofn_http_responses_total{class="2xx",function="http-api"} 4`,
		`aerofn_http_responses_total{class="4xx",function="http-api"} 1`,
		`aerofn_http_responses_total{class="5xx",function="fail"} 1`,
	} {
		if !strings.Contains(m, series) {
			t.Fatalf("metrics lack %s", series)
		}
	}
}

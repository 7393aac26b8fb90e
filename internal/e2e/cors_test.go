package e2e

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/testenv"
)

const (
	appOrigin   = "https://app.example.com"
	otherOrigin = "https://other.example.com"
)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// vary reports whether the response's Vary names field.
func vary(r testenv.Response, field string) bool {
	for _, v := range r.Header.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), field) {
				return true
			}
		}
	}
	return false
}

func exposes(r testenv.Response, names ...string) bool {
	got := strings.ToLower(r.Header.Get("Access-Control-Expose-Headers"))
	for _, n := range names {
		if !slices.Contains(strings.Split(strings.ReplaceAll(got, " ", ""), ","), strings.ToLower(n)) {
			return false
		}
	}
	return true
}

// TestCORS: preflights are answered before authentication and the methods
// rule, never run or record the function; every response to an allowed
// origin, aerofn's own errors included, carries the CORS headers; a
// function's cors block replaces the server's origins.
func TestCORS(t *testing.T) {
	e := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.CORSOrigins = appOrigin }})
	echo := compile(t, watEcho)
	e.MustDeploy("jwt", echo, nil)
	e.MustDeploy("postonly", echo, map[string]any{"methods": []string{"POST"}})
	e.MustDeploy("open", echo, map[string]any{"verify_jwt": false})
	e.MustDeploy("own", echo, map[string]any{"cors": map[string]any{"origins": []string{otherOrigin}, "expose_headers": []string{"X-Total"}, "max_age": 600}})
	e.MustDeploy("setscors", constModule(t, `{"statusCode":200,"headers":{"Access-Control-Allow-Origin":"*","Vary":"Accept","x-relay-error":"true"},"body":"ok"}`, 0), nil)
	e.MustDeploy("fail", constModule(t, `custom failure`, 1), nil)
	e.MustDeploy("slow", compile(t, watLoop), map[string]any{"timeout": 1})

	preflight := func(fn, origin, method string) testenv.Response {
		return e.Send("OPTIONS", "/functions/v1/"+fn, hdr("Origin", origin, "Access-Control-Request-Method", method,
			"Access-Control-Request-Headers", "authorization, x-client-info, apikey, content-type"), nil)
	}
	for _, c := range []struct{ fn, method string }{{"jwt", "POST"}, {"postonly", "DELETE"}, {"open", "PUT"}, {"nosuch", "POST"}} {
		r := preflight(c.fn, appOrigin, c.method)
		if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != appOrigin || !vary(r, "Origin") ||
			!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "authorization") ||
			r.Header.Get("Access-Control-Allow-Methods") != c.method || len(r.Body) != 0 {
			t.Fatalf("preflight %s %s: %d %v %s", c.fn, c.method, r.Status, r.Header, r.Body)
		}
	}
	// From an origin that is not allowed: no Access-Control-Allow-Origin, and still no call.
	if r := preflight("jwt", otherOrigin, "POST"); r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from a foreign origin: %d %v", r.Status, r.Header)
	}
	// A per-function policy: its origins, its max age.
	if r := preflight("own", otherOrigin, "POST"); r.Header.Get("Access-Control-Allow-Origin") != otherOrigin || r.Header.Get("Access-Control-Max-Age") != "600" {
		t.Fatalf("own preflight: %v", r.Header)
	}
	if r := preflight("own", appOrigin, "POST"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("own preflight from the server's origin: %v", r.Header)
	}
	// No preflight ran or recorded anything.
	e.Flush()
	var n int
	if err := e.Admin.QueryRow(t.Context(), "SELECT count(*) FROM aerofn.invocations").Scan(&n); err != nil || n != 0 {
		t.Fatalf("preflights recorded %d invocations (%v)", n, err)
	}
	// An OPTIONS that is not a preflight is an ordinary call.
	if r := e.Send("OPTIONS", "/functions/v1/open", hdr("Origin", appOrigin), nil); r.Status != 200 || r.JSON(t)["method"] != "OPTIONS" {
		t.Fatalf("plain OPTIONS: %d %s", r.Status, r.Body)
	}

	// Real requests: the function's answers and aerofn's errors alike.
	auth := "Bearer " + e.AnonKey
	cases := []struct {
		name, method, path string
		header             http.Header
		body               []byte
		status             int
		relay              bool
	}{
		{"success", "POST", "/functions/v1/jwt", hdr("Authorization", auth), nil, 200, false},
		{"function error", "POST", "/functions/v1/fail", hdr("Authorization", auth), nil, 500, false},
		{"401", "POST", "/functions/v1/jwt", nil, nil, 401, true},
		{"401 bad token", "POST", "/functions/v1/jwt", hdr("Authorization", "Bearer nope"), nil, 401, true},
		{"403", "GET", "/admin/v1/functions", hdr("Authorization", auth), nil, 403, true},
		{"404", "POST", "/functions/v1/nosuch", hdr("Authorization", auth), nil, 404, true},
		{"405", "GET", "/functions/v1/postonly", hdr("Authorization", auth), nil, 405, true},
		{"413", "POST", "/functions/v1/jwt", hdr("Authorization", auth, "Content-Type", "text/plain"), bytes.Repeat([]byte("x"), 6<<20+1), 413, true},
		{"504", "POST", "/functions/v1/slow", hdr("Authorization", auth), nil, 504, true},
	}
	for _, c := range cases {
		c.header = c.header.Clone()
		if c.header == nil {
			c.header = http.Header{}
		}
		c.header.Set("Origin", appOrigin)
		r := e.Send(c.method, c.path, c.header, bytes.NewReader(c.body))
		if r.Status != c.status || r.Header.Get("Access-Control-Allow-Origin") != appOrigin || !vary(r, "Origin") ||
			!exposes(r, "X-Request-Id", "Retry-After", "X-Relay-Error") {
			t.Fatalf("%s: %d %v %s", c.name, r.Status, r.Header, r.Body)
		}
		if got := r.Header.Get("X-Relay-Error") == "true"; got != c.relay {
			t.Fatalf("%s: x-relay-error %q, want %v", c.name, r.Header.Get("X-Relay-Error"), c.relay)
		}
		if c.relay {
			m := r.JSON(t)
			if m["error"] != m["message"] || len(m["error"].(string)) < 10 || m["error"] == http.StatusText(c.status) || m["code"] == "" {
				t.Fatalf("%s: error body %s", c.name, r.Body)
			}
		}
	}
	// From a foreign origin the same call works (curl does not care) but has no CORS grant.
	if r := e.Send("POST", "/functions/v1/jwt", hdr("Authorization", auth, "Origin", otherOrigin), nil); r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin: %d %v", r.Status, r.Header)
	}
	// Per-function exposure; the function's own CORS and relay headers are dropped, its Vary kept beside Origin.
	if r := e.Send("POST", "/functions/v1/own", hdr("Authorization", auth, "Origin", otherOrigin), nil); r.Header.Get("Access-Control-Allow-Origin") != otherOrigin || !exposes(r, "X-Total", "X-Request-Id") {
		t.Fatalf("own: %v", r.Header)
	}
	r := e.Send("POST", "/functions/v1/setscors", hdr("Authorization", auth, "Origin", appOrigin), nil)
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != appOrigin || !vary(r, "Origin") || !vary(r, "Accept") || r.Header.Get("X-Relay-Error") != "" {
		t.Fatalf("function-set CORS headers: %d %v", r.Status, r.Header)
	}
}

// TestCORSDisabled: AEROFN_CORS_ORIGINS=none grants no origin; a preflight is
// still answered by aerofn and never runs a function.
func TestCORSDisabled(t *testing.T) {
	e := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.CORSOrigins = "none" }})
	e.MustDeploy("open", compile(t, watEcho), map[string]any{"verify_jwt": false})
	r := e.Send("OPTIONS", "/functions/v1/open", hdr("Origin", appOrigin, "Access-Control-Request-Method", "POST"), nil)
	if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight: %d %v", r.Status, r.Header)
	}
	if r := e.Send("POST", "/functions/v1/open", hdr("Origin", appOrigin), nil); r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("call: %d %v", r.Status, r.Header)
	}
}

package hostfn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

type reply struct {
	Status int               `json:"status"`
	Body   string            `json:"body"`
	Header map[string]string `json:"headers"`
	Error  *struct {
		Code, Message string
	} `json:"error"`
}

func fetch(t *testing.T, f *Fetcher, allowed []string, req map[string]any) reply {
	t.Helper()
	b, _ := json.Marshal(req)
	var r reply
	if err := json.Unmarshal(f.Handle(context.Background(), allowed, b), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFetchAllowListAndLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("X-Seen-Method", r.Method)
			b := make([]byte, 100)
			n, _ := r.Body.Read(b)
			_, _ = w.Write(b[:n])
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 2048)))
		case "/redirect":
			http.Redirect(w, r, "http://elsewhere.invalid/", http.StatusFound)
		case "/slow":
			time.Sleep(2 * time.Second)
		}
	}))
	defer srv.Close()
	host := mustHost(t, srv.URL)
	f := NewFetcher(FetcherConfig{AllowPrivate: true, MaxBody: 1024, MaxDuration: 500 * time.Millisecond})

	r := fetch(t, f, []string{host}, map[string]any{"url": srv.URL + "/echo", "method": "POST", "body": "ping"})
	if r.Error != nil || r.Status != 200 || r.Body != "ping" || r.Header["x-seen-method"] != "POST" {
		t.Fatalf("allowed fetch: %+v", r)
	}
	cases := []struct {
		name    string
		allowed []string
		req     map[string]any
		code    string
	}{
		{"host not allowed", []string{"example.com"}, map[string]any{"url": srv.URL + "/echo"}, "host_not_allowed"},
		{"empty allow-list", nil, map[string]any{"url": srv.URL + "/echo"}, "host_not_allowed"},
		{"not http", []string{host}, map[string]any{"url": "file:///etc/passwd"}, "bad_request"},
		{"credentials in URL", []string{host}, map[string]any{"url": "http://u:p@" + host + "/"}, "bad_request"},
		{"response too large", []string{host}, map[string]any{"url": srv.URL + "/big"}, "response_too_large"},
		{"redirect off the list", []string{host}, map[string]any{"url": srv.URL + "/redirect"}, "fetch_failed"},
		{"slower than the limit", []string{host}, map[string]any{"url": srv.URL + "/slow"}, "timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := fetch(t, f, c.allowed, c.req)
			if r.Error == nil || r.Error.Code != c.code {
				t.Fatalf("want %s, got %+v", c.code, r)
			}
		})
	}
	if b := f.Handle(context.Background(), []string{host}, []byte("{not json")); !strings.Contains(string(b), "bad_request") {
		t.Fatalf("malformed request: %s", b)
	}
	if b := f.Handle(context.Background(), []string{host}, make([]byte, 6<<20)); !strings.Contains(string(b), "request_too_large") {
		t.Fatalf("huge request: %s", b)
	}
}

// Without AllowPrivate, an allow-listed name that resolves to loopback is
// refused at connect time (what defeats DNS rebinding to internal services).
func TestFetchRefusesPrivateAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	f := NewFetcher(FetcherConfig{})
	u, _ := url.Parse(srv.URL)
	for _, target := range []string{srv.URL, "http://localhost:" + u.Port()} {
		r := fetch(t, f, []string{"127.0.0.1", "localhost"}, map[string]any{"url": target})
		if r.Error == nil || r.Error.Code != "fetch_failed" || !strings.Contains(r.Error.Message, "not public") {
			t.Fatalf("%s: %+v", target, r)
		}
	}
}

func TestHostAllowed(t *testing.T) {
	allowed := []string{"api.example.com", "*.example.org"}
	for host, want := range map[string]bool{
		"api.example.com": true, "API.example.com.": true, "x.api.example.com": false, "example.com": false,
		"a.example.org": true, "a.b.example.org": true, "example.org": false, "evilexample.org": false,
	} {
		if got := HostAllowed(allowed, host); got != want {
			t.Errorf("%s: got %v", host, got)
		}
	}
}

func TestEnvOnlyWhitelisted(t *testing.T) {
	ctx := context.Background()
	c := &Call{EnvKeys: []string{"A", "DEBUG", "X"}, Secrets: fakeSecrets{"A": "alpha", "B": "beta", "plain:DEBUG": "1", "plain:X": ""}}
	if v, ok := c.Env(ctx, "A"); !ok || v != "alpha" {
		t.Fatalf("A: %q %v", v, ok)
	}
	if _, ok := c.Env(ctx, "B"); ok {
		t.Fatal("B is not whitelisted")
	}
	if _, ok := c.Env(ctx, "C"); ok {
		t.Fatal("C does not exist")
	}
	// Plain values are read, empty included, and never listed for scrubbing.
	if v, ok := c.Env(ctx, "DEBUG"); !ok || v != "1" {
		t.Fatalf("DEBUG: %q %v", v, ok)
	}
	if v, ok := c.Env(ctx, "X"); !ok || v != "" {
		t.Fatalf("X: %q %v", v, ok)
	}
	if got := c.SecretsRead(); len(got) != 1 || got[0] != "alpha" {
		t.Fatalf("secrets read: %v", got)
	}
}

// fakeSecrets holds secrets by name and plain values as "plain:NAME".
type fakeSecrets map[string]string

func (f fakeSecrets) Lookup(_ context.Context, k string) (string, bool, bool, error) {
	if v, ok := f["plain:"+k]; ok {
		return v, false, true, nil
	}
	v, ok := f[k]
	return v, true, ok, nil
}

func mustHost(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname()
}

// TestFetchBinaryBodies: a base64 request body reaches the server as bytes,
// and a response that is not UTF-8 comes back as base64, flagged.
func TestFetchBinaryBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(append(b, 0xff))
	}))
	defer srv.Close()
	host := mustHost(t, srv.URL)
	f := NewFetcher(FetcherConfig{AllowPrivate: true})
	var r struct {
		Status       int    `json:"status"`
		Body         string `json:"body"`
		BodyEncoding string `json:"body_encoding"`
	}
	raw := f.Handle(context.Background(), []string{host}, []byte(`{"url":"`+srv.URL+`","method":"POST","body":"AAH+","body_encoding":"base64"}`))
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != 200 || r.BodyEncoding != "base64" || r.Body != base64.StdEncoding.EncodeToString([]byte{0x00, 0x01, 0xfe, 0xff}) {
		t.Fatalf("binary round trip: %s", raw)
	}
	// Text stays text.
	raw = f.Handle(context.Background(), []string{host}, []byte(`{"url":"`+srv.URL+`/t","method":"POST","body":"héllo"}`))
	if err := json.Unmarshal(raw, &r); err != nil || r.BodyEncoding != "base64" {
		// "héllo" plus 0xff is not UTF-8 either: still base64.
		t.Fatalf("text plus a stray byte: %s", raw)
	}
	for _, bad := range []string{`"body":"%%%","body_encoding":"base64"`, `"body":"x","body_encoding":"hex"`} {
		raw = f.Handle(context.Background(), []string{host}, []byte(`{"url":"`+srv.URL+`",`+bad+`}`))
		if !strings.Contains(string(raw), "bad_request") {
			t.Fatalf("%s: %s", bad, raw)
		}
	}
}

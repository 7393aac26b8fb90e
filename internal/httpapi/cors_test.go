package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestInvokedName(t *testing.T) {
	for path, want := range map[string]string{
		"/functions/v1/hello":            "hello",
		"/functions/v1/hello/users/7":    "hello",
		"/functions/v1/invoke/hello/a/b": "hello",
		"/functions/v1/invoke":           "",
		"/functions/v1/deploy":           "",
		"/functions/v1":                  "",
		"/admin/v1/functions/hello":      "",
		"/webhooks/v1/hello":             "",
	} {
		if got := invokedName(path); got != want {
			t.Errorf("%s: %q, want %q", path, got, want)
		}
	}
}

// BenchmarkCORS is what CORS adds to a request: the same no-op handler bare,
// and behind the server's policy with and without an Origin.
func BenchmarkCORS(b *testing.B) {
	noop := func(w http.ResponseWriter, r *http.Request) {}
	pol := newCORS([]string{"https://app.example.com", "https://*.example.org"}, 0, false, nil)
	run := func(b *testing.B, h func(w http.ResponseWriter, r *http.Request), origin string) {
		r := httptest.NewRequest("POST", "/functions/v1/hello", nil)
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		b.ReportAllocs()
		for b.Loop() {
			h(httptest.NewRecorder(), r)
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, noop, "") })
	b.Run("no-origin", func(b *testing.B) {
		run(b, func(w http.ResponseWriter, r *http.Request) { pol.ServeHTTP(w, r, noop) }, "")
	})
	b.Run("allowed-origin", func(b *testing.B) {
		run(b, func(w http.ResponseWriter, r *http.Request) { pol.ServeHTTP(w, r, noop) }, "https://app.example.com")
	})
	b.Run("preflight", func(b *testing.B) {
		r := httptest.NewRequest("OPTIONS", "/functions/v1/hello", nil)
		r.Header.Set("Origin", "https://app.example.com")
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", "authorization, x-client-info, apikey, content-type")
		b.ReportAllocs()
		for b.Loop() {
			pol.ServeHTTP(httptest.NewRecorder(), r, noop)
		}
	})
}

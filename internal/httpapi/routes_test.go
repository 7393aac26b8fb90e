package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// A wrong method on a fixed route gets aerofn's JSON error with the relay
// header and an Allow header, like every other route, not the mux's plain
// text.
func TestFixedRoutesRefuseOtherMethodsAsJSON(t *testing.T) {
	a := New(Config{Gatherer: prometheus.NewRegistry()})
	for _, c := range []struct{ method, path, allow string }{
		{"POST", "/healthz", "GET"},
		{"DELETE", "/metrics", "GET"},
		{"GET", "/webhooks/v1/hook", "POST"},
	} {
		w := httptest.NewRecorder()
		a.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		var body struct{ Error, Code, Message string }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s %s: body %q is not JSON: %v", c.method, c.path, w.Body.String(), err)
		}
		if w.Code != http.StatusMethodNotAllowed || body.Code != "method_not_allowed" || body.Error == "" ||
			w.Header().Get("Allow") != c.allow || w.Header().Get("X-Relay-Error") != "true" {
			t.Errorf("%s %s: %d %+v Allow %q relay %q", c.method, c.path, w.Code, body, w.Header().Get("Allow"), w.Header().Get("X-Relay-Error"))
		}
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /healthz: %d %s", w.Code, w.Body.String())
	}
}

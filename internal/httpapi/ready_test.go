package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestReadyzNamesFailedChecks: every check runs, each bounded in time; a
// failing or hung one makes a 503 that names it and keeps the others'
// results.
func TestReadyzNamesFailedChecks(t *testing.T) {
	a := New(Config{ReadyChecks: []ReadyCheck{
		{Name: "database", Check: func(ctx context.Context) error {
			<-ctx.Done() // a hung database: the check's own deadline ends it
			return errors.New("ping: " + ctx.Err().Error())
		}},
		{Name: "migrations", Check: func(context.Context) error { return nil }},
		{Name: "engine", Check: func(context.Context) error { return errors.New("starting: warming modules") }},
	}})
	start := time.Now()
	w := httptest.NewRecorder()
	a.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	var body readyBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusServiceUnavailable || body.Code != "not_ready" || len(body.Failed) != 2 || body.Failed[0] != "database" ||
		body.Failed[1] != "engine" || body.Checks["migrations"] != "ok" || body.Checks["engine"] != "starting: warming modules" ||
		body.Error == "" || body.Message != body.Error || w.Header().Get("X-Relay-Error") != "true" {
		t.Fatalf("%d %s", w.Code, w.Body.String())
	}
	if d := time.Since(start); d > readyTimeout+time.Second {
		t.Fatalf("a hung check held /readyz for %v", d)
	}
}

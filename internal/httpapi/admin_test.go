package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/registry"
	"github.com/aerodb/aerofn/internal/secrets"
)

const testJWTSecret = "httpapi-test-jwt-secret-0123456789abcdef"

// adminAPI serves an API over a fresh database with the registry and the
// secrets store, and returns it with a service_role and an anon token.
func adminAPI(t *testing.T) (srv *httptest.Server, service, anon string) {
	t.Helper()
	pool, _ := dbtest.Migrated(t, 4)
	sec, err := secrets.New(pool, "httpapi-test-secrets-key-0123456789abcdef")
	dbtest.Must(t, err, "secrets")
	v, err := auth.NewVerifier(testJWTSecret)
	dbtest.Must(t, err, "verifier")
	a := New(Config{Registry: registry.New(pool), Secrets: sec, Verifier: v})
	srv = httptest.NewServer(a)
	t.Cleanup(srv.Close)
	service, err = auth.Sign(testJWTSecret, auth.RoleService, "", time.Hour)
	dbtest.Must(t, err, "signing")
	anon, err = auth.Sign(testJWTSecret, auth.RoleAnon, "", time.Hour)
	dbtest.Must(t, err, "signing")
	return srv, service, anon
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, srv *httptest.Server, method, path, token, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	dbtest.Must(t, err, "building request")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	dbtest.Must(t, err, method+" "+path)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

// wantError checks the one error shape: status, code, and message, with
// the relay header.
func wantError(t *testing.T, r reply, status int, code string) {
	t.Helper()
	var b struct{ Error, Code, Message string }
	if err := json.Unmarshal(r.body, &b); err != nil || r.status != status || b.Code != code || b.Message == "" || b.Error != b.Message ||
		r.header.Get("X-Relay-Error") != "true" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("got %d %s (relay %q), want %d with code %q", r.status, r.body, r.header.Get("X-Relay-Error"), status, code)
	}
}

// TestAdminNeedsServiceRole: the management API answers 401 without a
// token, 401 for a bad one, 403 for another role, and serves service_role.
func TestAdminNeedsServiceRole(t *testing.T) {
	srv, service, anon := adminAPI(t)
	wantError(t, do(t, srv, "GET", "/admin/v1/secrets", "", ""), http.StatusUnauthorized, "missing_token")
	forged, _ := auth.Sign("another-secret-0123456789abcdef0123456789", auth.RoleService, "", time.Hour)
	if r := do(t, srv, "GET", "/admin/v1/secrets", forged, ""); r.status != http.StatusUnauthorized {
		t.Fatalf("forged token: %d %s", r.status, r.body)
	}
	wantError(t, do(t, srv, "GET", "/admin/v1/secrets", anon, ""), http.StatusForbidden, "forbidden")
	if r := do(t, srv, "GET", "/admin/v1/secrets", service, ""); r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("service_role list: %d %s", r.status, r.body)
	}
}

// TestSecretsEndpoints: values go in and never come out; bad input is a
// 400 that stores nothing; a name taken by a plain value is 409; deleting
// what is not there is 404.
func TestSecretsEndpoints(t *testing.T) {
	srv, service, _ := adminAPI(t)
	if r := do(t, srv, "POST", "/admin/v1/secrets", service, `{"API_KEY":"value-1234","B_KEY":"other-value"}`); r.status != http.StatusOK ||
		!strings.Contains(string(r.body), `"set":["API_KEY","B_KEY"]`) {
		t.Fatalf("set: %d %s", r.status, r.body)
	}
	r := do(t, srv, "GET", "/admin/v1/secrets", service, "")
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"API_KEY"`) || strings.Contains(string(r.body), "value-1234") {
		t.Fatalf("list: %d %s (names only, never values)", r.status, r.body)
	}
	for _, bad := range []string{`{}`, `{"1BAD":"value-1234"}`, `{"SHORT":"abc"}`, `not json`, `{"A":"value-1234"} trailing`} {
		wantError(t, do(t, srv, "POST", "/admin/v1/secrets", service, bad), http.StatusBadRequest, codeFor(bad))
	}
	if r := do(t, srv, "GET", "/admin/v1/secrets", service, ""); strings.Contains(string(r.body), "1BAD") || strings.Contains(string(r.body), "SHORT") {
		t.Fatalf("a refused set stored something: %s", r.body)
	}
	if r := do(t, srv, "DELETE", "/admin/v1/secrets/API_KEY", service, ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	wantError(t, do(t, srv, "DELETE", "/admin/v1/secrets/API_KEY", service, ""), http.StatusNotFound, "not_found")
	wantError(t, do(t, srv, "PATCH", "/admin/v1/secrets", service, "{}"), http.StatusNotFound, "not_found")
}

// codeFor is the code a refused secrets body gets: a body that is not one
// JSON object is invalid_json, a well-formed one with bad content is
// invalid_secrets.
func codeFor(body string) string {
	var m map[string]string
	dec := json.NewDecoder(strings.NewReader(body))
	if dec.Decode(&m) != nil || dec.More() {
		return "invalid_json"
	}
	return "invalid_secrets"
}

// TestFunctionsEndpointsErrors: management of functions that do not exist
// is a JSON 404 and an unknown route a JSON 404, never the mux's text.
func TestFunctionsEndpointsErrors(t *testing.T) {
	srv, service, _ := adminAPI(t)
	if r := do(t, srv, "GET", "/admin/v1/functions", service, ""); r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("empty list: %d %s", r.status, r.body)
	}
	wantError(t, do(t, srv, "GET", "/admin/v1/functions/nope", service, ""), http.StatusNotFound, "not_found")
	wantError(t, do(t, srv, "DELETE", "/admin/v1/functions/nope", service, ""), http.StatusNotFound, "not_found")
	wantError(t, do(t, srv, "PATCH", "/admin/v1/functions/nope", service, `{"enabled":false}`), http.StatusNotFound, "not_found")
	wantError(t, do(t, srv, "GET", "/no/such/route", "", ""), http.StatusNotFound, "not_found")
}

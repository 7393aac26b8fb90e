package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aerodb/aerofn/internal/testenv"
)

// TestInvocationOwnsItsPath: every method on /functions/v1/{name} and on any
// sub-path under it runs the function, even with a service_role token and
// even where the sub-path spells a management word; management answers only
// under /admin/v1.
func TestInvocationOwnsItsPath(t *testing.T) {
	e := testenv.Start(t)
	e.MustDeploy("echo", compile(t, watEcho), nil)

	for _, m := range []string{"GET", "PUT", "PATCH", "DELETE", "POST", "HEAD"} {
		for _, tok := range []string{e.AnonKey, e.ServiceKey} {
			r := e.Do(m, "/functions/v1/echo?x=1", tok, "", nil)
			if r.Status != 200 {
				t.Fatalf("%s /functions/v1/echo: %d %s", m, r.Status, r.Body)
			}
			if m == "HEAD" {
				continue
			}
			ev := r.JSON(t)
			if ev["trigger"] != "http" || ev["method"] != m || ev["path"] != "/" || ev["query"].(map[string]any)["x"] != "1" {
				t.Fatalf("%s: event %s", m, r.Body)
			}
		}
	}
	for _, sub := range []string{"users/123", "logs", "versions", "stats", "rollback", "events/1/replay", "run", "runs"} {
		for _, m := range []string{"GET", "POST", "DELETE"} {
			r := e.Do(m, "/functions/v1/echo/"+sub, e.ServiceKey, "", nil)
			if r.Status != 200 {
				t.Fatalf("%s /functions/v1/echo/%s: %d %s", m, sub, r.Status, r.Body)
			}
			if ev := r.JSON(t); ev["method"] != m || ev["path"] != "/"+sub {
				t.Fatalf("%s %s: event %s", m, sub, r.Body)
			}
		}
	}
	// The function survived the DELETEs and PATCHes above, unchanged.
	d := e.JSONRequest("GET", "/admin/v1/functions/echo", e.ServiceKey, nil)
	if d.Status != 200 || d.JSON(t)["enabled"] != true {
		t.Fatalf("function after invocations: %d %s", d.Status, d.Body)
	}
	// The older /functions/v1/invoke/{name}/... still invokes.
	if r := e.Do("PUT", "/functions/v1/invoke/echo/a/b", e.AnonKey, "", nil); r.Status != 200 || r.JSON(t)["path"] != "/a/b" {
		t.Fatalf("invoke/ path: %d %s", r.Status, r.Body)
	}
	// A former management literal is not a function: 404, nothing runs.
	for _, p := range []string{"/functions/v1/secrets", "/functions/v1/deploy/x"} {
		if r := e.Do("POST", p, e.ServiceKey, "application/json", strings.NewReader(`{"K":"value"}`)); r.Status != 404 {
			t.Fatalf("%s: %d %s", p, r.Status, r.Body)
		}
	}
}

func TestAdminRoutesAndAliases(t *testing.T) {
	e := testenv.Start(t)
	echo := compile(t, watEcho)

	// Deploy under /admin/v1/functions, and through the /functions/v1/deploy alias.
	ct, body := testenv.DeployForm(map[string]string{"name": "a"}, echo)
	if r := e.Do("POST", "/admin/v1/functions", e.ServiceKey, ct, body); r.Status != 201 {
		t.Fatalf("admin deploy: %d %s", r.Status, r.Body)
	}
	ct, body = testenv.DeployForm(map[string]string{"name": "b"}, echo)
	if r := e.Do("POST", "/functions/v1/deploy", e.ServiceKey, ct, body); r.Status != 201 {
		t.Fatalf("alias deploy: %d %s", r.Status, r.Body)
	}
	// List under both paths.
	for _, p := range []string{"/admin/v1/functions", "/functions/v1"} {
		r := e.JSONRequest("GET", p, e.ServiceKey, nil)
		if r.Status != 200 || !strings.Contains(string(r.Body), `"name":"a"`) || !strings.Contains(string(r.Body), `"name":"b"`) {
			t.Fatalf("list %s: %d %s", p, r.Status, r.Body)
		}
		if r := e.JSONRequest("GET", p, e.AnonKey, nil); r.Status != http.StatusForbidden {
			t.Fatalf("list %s as anon: %d", p, r.Status)
		}
	}
	// Reserved names are refused at deploy.
	for _, name := range []string{"deploy", "invoke", "secrets"} {
		ct, body := testenv.DeployForm(map[string]string{"name": name}, echo)
		if r := e.Do("POST", "/admin/v1/functions", e.ServiceKey, ct, body); r.Status != 400 || !strings.Contains(string(r.Body), "reserved") {
			t.Fatalf("deploy %s: %d %s", name, r.Status, r.Body)
		}
	}
	// Management needs the service role; wrong methods are 405; unknown paths 404.
	if r := e.JSONRequest("DELETE", "/admin/v1/functions/a", e.AnonKey, nil); r.Status != http.StatusForbidden {
		t.Fatalf("anon delete: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("DELETE", "/admin/v1/functions/a", "", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("tokenless delete: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("PUT", "/admin/v1/functions/a", e.ServiceKey, nil); r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("PUT on a function: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("GET", "/admin/v1/nothing", e.ServiceKey, nil); r.Status != http.StatusNotFound {
		t.Fatalf("unknown admin path: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("GET", "/admin/v1/functions/a/nothing", e.ServiceKey, nil); r.Status != http.StatusNotFound {
		t.Fatalf("unknown function sub-path: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("DELETE", "/admin/v1/functions/a", e.ServiceKey, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := e.Invoke("a", e.AnonKey, nil); r.Status != http.StatusNotFound {
		t.Fatalf("deleted function still invokes: %d", r.Status)
	}
}

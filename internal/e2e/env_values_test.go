package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aerodb/aerofn/internal/testenv"
)

// watEnvValue answers {"v":"<env(key)>"}, or {"missing":true} when env
// answers -1 (not whitelisted, not set). Values must not need JSON escaping.
func watEnvValue(key string) string {
	return fmt.Sprintf(`(module
  (import "aerodb" "env" (func $env (param i32 i32) (result i32)))
  (import "aerodb" "reply_read" (func $rr (param i32 i32) (result i32)))
  (import "aerodb" "log" (func $log (param i32 i32 i32)))
  (import "aerodb" "output" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) %q)
  (data (i32.const 256) "{\"v\":\"")
  (data (i32.const 512) "{\"missing\":true}")
  (func (export "handler") (result i32)
    (local $n i32)
    (local.set $n (call $env (i32.const 0) (i32.const %d)))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then
      (drop (call $out (i32.const 512) (i32.const 16)))
      (return (i32.const 0))))
    (drop (call $rr (i32.const 262) (local.get $n)))
    (i32.store8 (i32.add (i32.const 262) (local.get $n)) (i32.const 34))
    (i32.store8 (i32.add (i32.const 263) (local.get $n)) (i32.const 125))
    ;; log the value: a plain value is not scrubbed
    (call $log (i32.const 1) (i32.const 262) (local.get $n))
    (drop (call $out (i32.const 256) (i32.add (local.get $n) (i32.const 8))))
    (i32.const 0)))`, key, len(key))
}

type envList struct {
	Env []struct {
		Name      string  `json:"name"`
		Value     *string `json:"value"`
		UpdatedAt string  `json:"updated_at"`
	} `json:"env"`
}

// TestPlainEnvValues: plain values are set, listed with their values,
// read by env() under the function's whitelist (DEBUG=1 and the empty X=
// included), not scrubbed, deleted (404 when absent); a name is a secret
// or a plain value, never both (409, nothing stored).
func TestPlainEnvValues(t *testing.T) {
	e := testenv.Start(t)
	set := func(path string, v map[string]string) testenv.Response {
		return e.JSONRequest("POST", path, e.ServiceKey, v)
	}
	if r := set("/admin/v1/env", map[string]string{"DEBUG": "1", "X": "", "REGION": "eu-west-1"}); r.Status != http.StatusOK ||
		string(r.Body) != `{"set":["DEBUG","REGION","X"]}`+"\n" {
		t.Fatalf("set values: %d %q", r.Status, r.Body)
	}
	r := e.JSONRequest("GET", "/admin/v1/env", e.ServiceKey, nil)
	var l envList
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &l) != nil || len(l.Env) != 3 {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	want := map[string]string{"DEBUG": "1", "X": "", "REGION": "eu-west-1"}
	for _, v := range l.Env {
		if v.Value == nil || *v.Value != want[v.Name] || v.UpdatedAt == "" {
			t.Fatalf("list entry %s: %s", v.Name, r.Body)
		}
	}

	for key, val := range map[string]string{"DEBUG": "1", "X": "", "REGION": "eu-west-1"} {
		name := "read-" + strings.ToLower(key)
		mod := compile(t, watEnvValue(key))
		e.MustDeploy(name, mod, map[string]any{"env": []string{key}})
		e.MustDeploy(name+"-denied", mod, nil)
		if r := e.Invoke(name, e.AnonKey, nil); r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"v":"`+val+`"}` {
			t.Errorf("env(%s) whitelisted: %d %s", key, r.Status, r.Body)
		}
		if r := e.Invoke(name+"-denied", e.AnonKey, nil); r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"missing":true}` {
			t.Errorf("env(%s) not whitelisted: %d %s", key, r.Status, r.Body)
		}
	}
	// Not scrubbed: the logged value is in the record as it is.
	e.Flush()
	if logs := e.JSONRequest("GET", "/admin/v1/functions/read-region/logs", e.ServiceKey, nil); !strings.Contains(string(logs.Body), `"eu-west-1"`) {
		t.Errorf("plain value scrubbed or not logged: %s", logs.Body)
	}

	// A value changes at once for the next calls (the cache is dropped).
	set("/admin/v1/env", map[string]string{"REGION": "us-east-2"})
	if r := e.Invoke("read-region", e.AnonKey, nil); strings.TrimSpace(string(r.Body)) != `{"v":"us-east-2"}` {
		t.Errorf("after update: %s", r.Body)
	}

	// Secret or plain, never both; a refused batch stores nothing.
	if r := set("/admin/v1/secrets", map[string]string{"API_KEY": "sk_test_123456"}); r.Status != 200 {
		t.Fatalf("set secret: %d %s", r.Status, r.Body)
	}
	if r := set("/admin/v1/env", map[string]string{"OTHER": "o", "API_KEY": "plain"}); r.Status != http.StatusConflict || r.Code() != "conflict" ||
		!strings.Contains(r.JSON(t)["error"].(string), "API_KEY") {
		t.Fatalf("plain value over a secret: %d %s", r.Status, r.Body)
	}
	if r := set("/admin/v1/secrets", map[string]string{"DEBUG": "long-enough"}); r.Status != http.StatusConflict || r.Code() != "conflict" {
		t.Fatalf("secret over a plain value: %d %s", r.Status, r.Body)
	}
	var others, secretsNamedDebug int
	_ = e.Admin.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM aerofn.env_values WHERE name IN ('OTHER', 'API_KEY')),
		(SELECT count(*) FROM aerofn.secrets WHERE name = 'DEBUG')`).Scan(&others, &secretsNamedDebug)
	if others != 0 || secretsNamedDebug != 0 {
		t.Fatalf("a refused set stored something: %d plain, %d secret", others, secretsNamedDebug)
	}
	// Secrets are still never listed with their values, and not among plain values.
	if r := e.JSONRequest("GET", "/admin/v1/env", e.ServiceKey, nil); strings.Contains(string(r.Body), "sk_test_123456") || strings.Contains(string(r.Body), "API_KEY") {
		t.Fatalf("a secret in the plain list: %s", r.Body)
	}

	// Bad input: 400, nothing stored.
	for _, bad := range []string{`{"bad name":"x"}`, `{}`, `{"N":1}`, `[]`, `{"N":"` + strings.Repeat("x", 64<<10+1) + `"}`} {
		r := e.Do("POST", "/admin/v1/env", e.ServiceKey, "application/json", strings.NewReader(bad))
		if r.Status != http.StatusBadRequest {
			t.Errorf("set %.40s: %d %s", bad, r.Status, r.Body)
		}
	}
	if r := e.Do("PATCH", "/admin/v1/env", e.ServiceKey, "application/json", strings.NewReader(`{}`)); r.Status != http.StatusMethodNotAllowed {
		t.Errorf("PATCH /admin/v1/env: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("GET", "/admin/v1/env", e.AnonKey, nil); r.Status != http.StatusForbidden {
		t.Errorf("anon list: %d", r.Status)
	}

	// Delete: 204, then 404 JSON; env() no longer finds it.
	if r := e.JSONRequest("DELETE", "/admin/v1/env/DEBUG", e.ServiceKey, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := e.JSONRequest("DELETE", "/admin/v1/env/DEBUG", e.ServiceKey, nil); r.Status != http.StatusNotFound || r.Code() != "not_found" {
		t.Fatalf("delete missing: %d %s", r.Status, r.Body)
	}
	if r := e.Invoke("read-debug", e.AnonKey, nil); strings.TrimSpace(string(r.Body)) != `{"missing":true}` {
		t.Errorf("after delete: %s", r.Body)
	}
	// Once the plain value is gone the name may become a secret.
	if r := set("/admin/v1/secrets", map[string]string{"DEBUG": "now-secret"}); r.Status != 200 {
		t.Fatalf("secret after deleting the plain value: %d %s", r.Status, r.Body)
	}
}

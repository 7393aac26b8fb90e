package httpapi

import (
	"context"
	"errors"
	"net/http"
	"sort"

	"github.com/aerodb/aerofn/internal/secrets"
)

// minSecretValue keeps values long enough to be scrubbed from output safely.
const minSecretValue = 4

// valueKind is one of the two kinds of named values that env() reads beside
// each other, under the same per-function whitelist: secrets and plain
// values. valueRoutes serves both; a kind gives what differs: its checks,
// its store calls and its words. No field may put a value into an error or
// the list: only names reach a response (and from there a log or record).
type valueKind struct {
	code  string // of a refused body: "invalid_secrets", "invalid_env"
	noun  string // "secret", "plain value"
	other string // the kind a name in conflict belongs to, to delete first
	// check says what is wrong with one name and value, nil when they are
	// valid. Its message names the name, never the value.
	check  func(name, value string) error
	list   func(s *secrets.Store, ctx context.Context) (any, error)
	set    func(s *secrets.Store, ctx context.Context, values map[string]string) error
	delete func(s *secrets.Store, ctx context.Context, name string) error
	// allow, when set, answers a method a route does not take with 405 and
	// the methods it does take; else such a request is 404.
	allow bool
}

// secretKind: GET/POST /admin/v1/secrets and DELETE .../secrets/{name}.
// Values go in and never come out: the list shows names only.
var secretKind = valueKind{
	code: "invalid_secrets", noun: "secret", other: "plain value",
	check: func(k, v string) error {
		if !secrets.ValidName(k) {
			return badRequest("invalid_secrets", "%q is not a valid secret name", k)
		}
		if len(v) < minSecretValue || len(v) > secrets.MaxValueSize {
			return badRequest("invalid_secrets", "the value of %s must be %d to %d bytes", k, minSecretValue, secrets.MaxValueSize)
		}
		return nil
	},
	list: func(s *secrets.Store, ctx context.Context) (any, error) {
		return s.List(ctx)
	},
	set:    (*secrets.Store).Set,
	delete: (*secrets.Store).Delete,
}

// envKind: GET/POST /admin/v1/env and DELETE .../env/{name}: plain
// configuration values. Unlike secrets they are shown, may be any length
// (empty included) and are not scrubbed from output. A name that is a
// secret is refused with 409, as is a secret whose name is a plain value.
var envKind = valueKind{
	code: "invalid_env", noun: "plain value", other: "secret",
	check: func(k, v string) error {
		if !secrets.ValidName(k) {
			return badRequest("invalid_env", "%q is not a valid variable name (^[A-Za-z_][A-Za-z0-9_]{0,127}$)", k)
		}
		if len(v) > secrets.MaxValueSize {
			return badRequest("invalid_env", "the value of %s is longer than %d bytes", k, secrets.MaxValueSize)
		}
		return nil
	},
	list: func(s *secrets.Store, ctx context.Context) (any, error) {
		l, err := s.Values(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]any{"env": l}, nil
	},
	set:    (*secrets.Store).SetValues,
	delete: (*secrets.Store).DeleteValue,
	allow:  true,
}

// valueRoutes serves one kind's routes: GET lists, POST (or PUT) sets
// {"NAME": "value", ...} at once (all or nothing), DELETE .../{name}.
func (a *API) valueRoutes(w http.ResponseWriter, r *http.Request, kind valueKind, parts []string) error {
	switch {
	case len(parts) == 0 && r.Method == http.MethodGet:
		l, err := kind.list(a.cfg.Secrets, r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, l)
		return nil
	case len(parts) == 0 && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		var values map[string]string
		if err := decodeJSON(r, maxJSONBody, &values); err != nil {
			return err
		}
		if len(values) == 0 {
			return badRequest(kind.code, "give at least one {\"NAME\": \"value\"}")
		}
		for k, v := range values {
			if err := kind.check(k, v); err != nil {
				return err
			}
		}
		err := kind.set(a.cfg.Secrets, r.Context(), values)
		if errors.Is(err, secrets.ErrConflict) {
			return apiError(http.StatusConflict, "conflict", "%v; a name is a secret or a plain value, not both (delete the %s first)", err, kind.other)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"set": sortedKeys(values)})
		return nil
	case len(parts) == 1 && r.Method == http.MethodDelete:
		err := kind.delete(a.cfg.Secrets, r.Context(), parts[0])
		if errors.Is(err, secrets.ErrNotFound) {
			return notFound("no %s named %q", kind.noun, parts[0])
		}
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	case kind.allow && len(parts) == 0:
		return methodNotAllowed(r.Method, "GET, POST")
	case kind.allow && len(parts) == 1:
		return methodNotAllowed(r.Method, "DELETE")
	}
	return notFound("no route for %s %s", r.Method, r.URL.Path)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

package httpapi

import (
	"errors"
	"net/http"

	"github.com/aerodb/aerofn/internal/secrets"
)

// envValues serves GET/POST /admin/v1/env and DELETE .../env/{name}: plain
// configuration values that env() reads beside secrets, under the same
// per-function whitelist. Unlike secrets they are shown, may be any length
// (empty included) and are not scrubbed from output. A name that is a
// secret is refused with 409, as is a secret whose name is a plain value.
func (a *API) envValues(w http.ResponseWriter, r *http.Request, parts []string) error {
	switch {
	case len(parts) == 0 && r.Method == http.MethodGet:
		l, err := a.cfg.Secrets.Values(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"env": l})
		return nil
	case len(parts) == 0 && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		var values map[string]string
		if err := decodeJSON(r, maxJSONBody, &values); err != nil {
			return err
		}
		if len(values) == 0 {
			return badRequest("invalid_env", "give at least one {\"NAME\": \"value\"}")
		}
		for k, v := range values {
			if !secrets.ValidName(k) {
				return badRequest("invalid_env", "%q is not a valid variable name (^[A-Za-z_][A-Za-z0-9_]{0,127}$)", k)
			}
			if len(v) > secrets.MaxValueSize {
				return badRequest("invalid_env", "the value of %s is longer than %d bytes", k, secrets.MaxValueSize)
			}
		}
		err := a.cfg.Secrets.SetValues(r.Context(), values)
		if errors.Is(err, secrets.ErrConflict) {
			return apiError(http.StatusConflict, "conflict", "%v; a name is a secret or a plain value, not both (delete the secret first)", err)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"set": sortedKeys(values)})
		return nil
	case len(parts) == 1 && r.Method == http.MethodDelete:
		err := a.cfg.Secrets.DeleteValue(r.Context(), parts[0])
		if errors.Is(err, secrets.ErrNotFound) {
			return notFound("no plain value named %q", parts[0])
		}
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	case len(parts) == 0:
		return methodNotAllowed(r.Method, "GET, POST")
	case len(parts) == 1:
		return methodNotAllowed(r.Method, "DELETE")
	}
	return notFound("no route for %s %s", r.Method, r.URL.Path)
}

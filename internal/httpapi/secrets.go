package httpapi

import (
	"errors"
	"net/http"
	"sort"

	"github.com/aerodb/aerofn/internal/secrets"
)

// minSecretValue keeps values long enough to be scrubbed from output safely.
const minSecretValue = 4

// secrets serves GET/POST /admin/v1/secrets and DELETE .../secrets/{name}.
// Values go in and never come out: the list shows names only.
func (a *API) secrets(w http.ResponseWriter, r *http.Request, parts []string) error {
	switch {
	case len(parts) == 0 && r.Method == http.MethodGet:
		l, err := a.cfg.Secrets.List(r.Context())
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
			return badRequest("invalid_secrets", "give at least one {\"NAME\": \"value\"}")
		}
		for k, v := range values {
			if !secrets.ValidName(k) {
				return badRequest("invalid_secrets", "%q is not a valid secret name", k)
			}
			if len(v) < minSecretValue || len(v) > secrets.MaxValueSize {
				return badRequest("invalid_secrets", "the value of %s must be %d to %d bytes", k, minSecretValue, secrets.MaxValueSize)
			}
		}
		err := a.cfg.Secrets.Set(r.Context(), values)
		if errors.Is(err, secrets.ErrConflict) {
			return apiError(http.StatusConflict, "conflict", "%v; a name is a secret or a plain value, not both (delete the plain value first)", err)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"set": sortedKeys(values)})
		return nil
	case len(parts) == 1 && r.Method == http.MethodDelete:
		err := a.cfg.Secrets.Delete(r.Context(), parts[0])
		if errors.Is(err, secrets.ErrNotFound) {
			return notFound("no secret named %q", parts[0])
		}
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
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

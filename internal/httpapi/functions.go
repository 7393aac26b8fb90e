package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/propagation"
	"github.com/aerodb/aerofn/internal/registry"
)

// registryError maps registry failures to API errors.
func registryError(err error, name string) error {
	var ve *registry.ValidationError
	switch {
	case errors.As(err, &ve):
		return badRequest("invalid_config", "%s", ve.Error())
	case errors.Is(err, registry.ErrNotFound):
		return notFound("function %q does not exist", name)
	case errors.Is(err, registry.ErrConflict):
		return apiError(http.StatusConflict, "conflict", "%v", err)
	}
	return err
}

func (a *API) deploy(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxDeployBody)
	if err := r.ParseMultipartForm(maxDeployBody); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apiError(http.StatusRequestEntityTooLarge, "module_too_large", "deploy body exceeds %d bytes (modules may be at most %d bytes)", mbe.Limit, registry.MaxModuleSize)
		}
		return badRequest("invalid_form", "deploy expects multipart/form-data with fields name and wasm: %v", err)
	}
	defer r.MultipartForm.RemoveAll() //nolint:errcheck // temp files only
	name := r.FormValue("name")
	if err := registry.ValidateName(name); err != nil {
		return badRequest("invalid_name", "%v", err)
	}
	wasm, err := a.deployModule(r)
	if err != nil {
		return err
	}
	if len(wasm) > registry.MaxModuleSize {
		return apiError(http.StatusRequestEntityTooLarge, "module_too_large", "module is %d bytes; the limit is %d", len(wasm), registry.MaxModuleSize)
	}
	in := registry.DeployInput{Name: name, Wasm: wasm}
	if _, ok := r.MultipartForm.Value["description"]; ok {
		d := r.FormValue("description")
		if len(d) > 1000 {
			return badRequest("invalid_description", "description is longer than 1000 characters")
		}
		in.Description = &d
	}
	cfg, triggers, err := deployConfig(r)
	if err != nil {
		return err
	}
	if cfg != nil {
		if err := cfg.Validate(a.cfg.Registry.TriggerTypes()); err != nil {
			return registryError(err, name)
		}
		in.Config = cfg
	} else if triggers != nil {
		if err := (registry.Config{Triggers: triggers}).Validate(a.cfg.Registry.TriggerTypes()); err != nil {
			return registryError(err, name)
		}
		in.Triggers = &triggers
	}
	// Preparing validates against the ABI (compiling, unless a node already
	// did), leaves the compiled module in this node's caches and stores its
	// artifact for the other nodes, all before the version exists: no
	// node compiles it again, and no call waits for a compile.
	hash := registry.Hash(wasm)
	// The module's bytes are written while it compiles (StartDeploy).
	pending := a.cfg.Registry.StartDeploy(r.Context(), in)
	defer pending.Abort()
	if err := a.cfg.Invoker.Prepare(r.Context(), hash, func() ([]byte, error) { return wasm, nil }); err != nil {
		if errors.Is(err, engine.ErrInvalidModule) {
			return badRequest("invalid_module", "%s", strings.TrimPrefix(err.Error(), "loading module "+hash+": "))
		}
		if errors.Is(err, engine.ErrNoJSRuntime) {
			return apiError(http.StatusServiceUnavailable, "js_runtime_unavailable", "%s", strings.TrimPrefix(err.Error(), "loading module "+hash+": "))
		}
		return err
	}
	wait := a.cfg.Propagation.Expect(name)
	defer wait.Close()
	d, err := pending.Commit(r.Context())
	if err != nil {
		return registryError(err, name)
	}
	a.cfg.Invoker.Invalidate(name)
	writeJSON(w, http.StatusCreated, struct {
		registry.Deployed
		Propagation propagation.Result `json:"propagation"`
	}{d, wait.Wait(r.Context(), d.Function.UpdatedAt)})
	return nil
}

// deployConfig reads the config field, the whole config of the new
// version, and AeroDB's separate trigger field (one trigger object or an
// array). With config, the triggers are appended to config.triggers; alone,
// they replace the current config's triggers and the rest is kept (the
// registry merges them under the function's row lock).
func deployConfig(r *http.Request) (*registry.Config, []registry.Trigger, error) {
	var cfg *registry.Config
	if raw, ok := formText(r, "config"); ok {
		c, err := registry.ParseConfig([]byte(raw))
		if err != nil {
			return nil, nil, registryError(err, "")
		}
		cfg = &c
	}
	var triggers []registry.Trigger
	if raw, ok := formText(r, "trigger"); ok && strings.TrimSpace(raw) != "" {
		ts, err := registry.ParseTriggers([]byte(raw))
		if err != nil {
			return nil, nil, registryError(err, "")
		}
		triggers = ts
	}
	if cfg != nil {
		cfg.Triggers = append(cfg.Triggers, triggers...)
		return cfg, nil, nil
	}
	return nil, triggers, nil
}

// formText reads a form field given as a value or as a file part.
func formText(r *http.Request, field string) (string, bool) {
	if v, ok := r.MultipartForm.Value[field]; ok && len(v) > 0 {
		return v[0], true
	}
	if fs, ok := r.MultipartForm.File[field]; ok && len(fs) > 0 {
		f, err := fs[0].Open()
		if err != nil {
			return "", false
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxJSONBody))
		if err != nil {
			return "", false
		}
		return string(b), true
	}
	return "", false
}

func formFile(r *http.Request, field string) ([]byte, error) {
	fs := r.MultipartForm.File[field]
	if len(fs) == 0 {
		if v, ok := r.MultipartForm.Value[field]; ok && len(v) > 0 {
			return []byte(v[0]), nil
		}
		return nil, badRequest("missing_module", "the form has no %q file part", field)
	}
	if fs[0].Size > registry.MaxModuleSize {
		return nil, apiError(http.StatusRequestEntityTooLarge, "module_too_large", "module is %d bytes; the limit is %d", fs[0].Size, registry.MaxModuleSize)
	}
	f, err := fs[0].Open()
	if err != nil {
		return nil, fmt.Errorf("opening uploaded module: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, registry.MaxModuleSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading uploaded module: %w", err)
	}
	return b, nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	fns, err := a.cfg.Registry.List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, fns)
	return nil
}

func (a *API) describe(r *http.Request, fn registry.Function) (map[string]any, error) {
	b, err := json.Marshal(fn)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	for _, d := range a.describers {
		k, v, err := d(r.Context(), fn)
		if err != nil {
			return nil, err
		}
		if k != "" {
			out[k] = v
		}
	}
	return out, nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request, name string) error {
	fn, err := a.cfg.Registry.Get(r.Context(), name)
	if err != nil {
		return registryError(err, name)
	}
	d, err := a.describe(r, fn)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

type patchBody struct {
	Description *string         `json:"description"`
	Enabled     *bool           `json:"enabled"`
	Config      json.RawMessage `json:"config"` // a JSON merge patch (RFC 7396)
}

func (a *API) patch(w http.ResponseWriter, r *http.Request, name string) error {
	var pb patchBody
	if err := decodeJSON(r, maxJSONBody, &pb); err != nil {
		return err
	}
	// config merges into the stored config (registry.MergeConfig): a
	// change names only what it changes.
	in := registry.PatchInput{Description: pb.Description, Enabled: pb.Enabled, ConfigPatch: pb.Config}
	if len(pb.Config) > 0 {
		// Checked here too so that a bad change is refused before the
		// enable path below prepares a module.
		if _, err := registry.MergeConfig([]byte("{}"), pb.Config); err != nil {
			var ve *registry.ValidationError
			if errors.As(err, &ve) && ve.Field == "config" {
				return registryError(err, name)
			}
		}
	}
	if in.Description != nil && len(*in.Description) > 1000 {
		return badRequest("invalid_description", "description is longer than 1000 characters")
	}
	if in.Enabled != nil && *in.Enabled {
		// The current version becomes callable: its artifact must be
		// ready, as after a deploy.
		cur, err := a.cfg.Registry.Get(r.Context(), name)
		if err != nil {
			return registryError(err, name)
		}
		if err := a.cfg.Invoker.Prepare(r.Context(), cur.WasmHash, nil); err != nil {
			return err
		}
	}
	wait := a.cfg.Propagation.Expect(name)
	defer wait.Close()
	fn, err := a.cfg.Registry.Patch(r.Context(), name, in)
	if err != nil {
		return registryError(err, name)
	}
	a.cfg.Invoker.Invalidate(name)
	d, err := a.describe(r, fn)
	if err != nil {
		return err
	}
	d["propagation"] = wait.Wait(r.Context(), fn.UpdatedAt)
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (a *API) remove(w http.ResponseWriter, r *http.Request, name string) error {
	if err := a.cfg.Registry.Delete(r.Context(), name); err != nil {
		return registryError(err, name)
	}
	a.cfg.Invoker.Invalidate(name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) versions(w http.ResponseWriter, r *http.Request, name string) error {
	vs, err := a.cfg.Registry.Versions(r.Context(), name)
	if err != nil {
		return registryError(err, name)
	}
	writeJSON(w, http.StatusOK, vs)
	return nil
}

type rollbackBody struct {
	Version  int    `json:"version"`
	WasmHash string `json:"wasm_hash"`
}

func (a *API) rollback(w http.ResponseWriter, r *http.Request, name string) error {
	var rb rollbackBody
	if err := decodeJSON(r, maxJSONBody, &rb); err != nil {
		return err
	}
	if (rb.Version <= 0) == (rb.WasmHash == "") {
		return badRequest("invalid_rollback", "give exactly one of version (a positive number) or wasm_hash")
	}
	// The version that becomes current needs its artifact ready before the
	// change commits, as after a deploy.
	vs, err := a.cfg.Registry.Versions(r.Context(), name)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return err
	}
	for _, v := range vs {
		if v.Version == rb.Version || (rb.Version <= 0 && v.WasmHash == strings.ToLower(rb.WasmHash)) {
			if err := a.cfg.Invoker.Prepare(r.Context(), v.WasmHash, nil); err != nil {
				return err
			}
			break
		}
	}
	wait := a.cfg.Propagation.Expect(name)
	defer wait.Close()
	fn, err := a.cfg.Registry.Rollback(r.Context(), name, rb.Version, strings.ToLower(rb.WasmHash))
	if errors.Is(err, registry.ErrNotFound) {
		return notFound("function %q has no such version", name)
	}
	if err != nil {
		return registryError(err, name)
	}
	a.cfg.Invoker.Invalidate(name)
	writeJSON(w, http.StatusOK, struct {
		registry.Function
		Propagation propagation.Result `json:"propagation"`
	}{fn, wait.Wait(r.Context(), fn.UpdatedAt)})
	return nil
}

func sinceParam(r *http.Request, def time.Duration) (time.Time, error) {
	s := r.URL.Query().Get("since")
	if s == "" {
		return time.Now().Add(-def), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, badRequest("invalid_since", "since %q is neither a duration (1h) nor an RFC 3339 time", s)
	}
	return t, nil
}

func (a *API) stats(w http.ResponseWriter, r *http.Request, name string) error {
	since, err := sinceParam(r, 24*time.Hour)
	if err != nil {
		return err
	}
	s, err := a.cfg.Records.Stats(r.Context(), name, since)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s)
	return nil
}

package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
)

// Limits every function config is checked against.
const (
	DefaultTimeout  = 10 * time.Second
	MinTimeout      = 1 * time.Second
	MaxTimeout      = 300 * time.Second
	DefaultMemory   = 128 << 20
	MinMemory       = 16 << 20
	MaxMemory       = 512 << 20
	MaxModuleSize   = 10 << 20
	maxEnvKeys      = 100
	maxDescription  = 1000
	maxTriggers     = 20
	maxAllowedHosts = 100
)

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	// hostRE: a DNS name (or IPv4 literal) of 1-63 byte labels, as
	// http_fetch compares it; no wildcard, no trailing dot.
	hostRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$`)
)

// reservedNames are the literal segments under /functions/v1/ (deploy,
// invoke) and "secrets", which was one until management moved to /admin/v1:
// a client still posting to /functions/v1/secrets must get a 404, not hand
// secret values to a function of that name.
var reservedNames = map[string]bool{"deploy": true, "invoke": true, "secrets": true}

// ValidationError names the field that is wrong and why.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ValidateName checks a function name.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return invalid("name", "%q must match ^[a-z][a-z0-9_-]{0,63}$", name)
	}
	if reservedNames[name] {
		return invalid("name", "%q is reserved by the API", name)
	}
	return nil
}

// Config is a function's configuration, as deployed or patched. Zero fields
// take their defaults (see Defaults).
type Config struct {
	// Timeout is the wall-clock limit of one call, in seconds (1-300).
	Timeout int `json:"timeout,omitempty"`
	// MaxMemory caps the guest's linear memory, in bytes (16-512 MiB).
	MaxMemory int64 `json:"max_memory,omitempty"`
	// Env lists the variables and secrets the function may read with env().
	Env []string `json:"env,omitempty"`
	// VerifyJWT: when false, HTTP calls without a token run as anon. A token
	// that is present is always verified.
	VerifyJWT *bool `json:"verify_jwt,omitempty"`
	// RunAs "service_role" makes every call act as the service role.
	RunAs string `json:"run_as,omitempty"`
	// Methods allowed on HTTP invoke; empty means any.
	Methods []string `json:"methods,omitempty"`
	// AllowedHosts is http_fetch's allow-list (host or *.suffix).
	AllowedHosts []string `json:"allowed_hosts,omitempty"`
	// Triggers beyond HTTP: database, schedule, webhook.
	Triggers []Trigger `json:"triggers,omitempty"`
	// CORS replaces the server's cross-origin policy for this function.
	CORS *CORS `json:"cors,omitempty"`
}

// TriggerValidator checks triggers of one type; packages owning a trigger
// type register one so that deploy refuses what they cannot run.
type TriggerValidator func(t Trigger, index int) error

// ParseConfig decodes a config document strictly: unknown fields are errors,
// so a typo does not silently fall back to a default, and each trigger
// has the fields of its own type only (parseTrigger).
func ParseConfig(raw []byte) (Config, error) {
	var c Config
	if len(strings.TrimSpace(string(raw))) == 0 {
		return c, nil
	}
	// The triggers first, strictly and by index (a type's decoder cannot
	// see the document decoder's settings, nor the trigger's place). A
	// document that is not even this shape fails below.
	var ts struct {
		Triggers []json.RawMessage `json:"triggers"`
	}
	var triggers []Trigger
	if json.Unmarshal(raw, &ts) == nil {
		for i, r := range ts.Triggers {
			t, err := parseTrigger(r, fmt.Sprintf("config.triggers[%d]", i))
			if err != nil {
				return c, err
			}
			triggers = append(triggers, t)
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, invalid("config", "not a valid config document: %v", err)
	}
	if dec.More() {
		return c, invalid("config", "trailing data after the config document")
	}
	c.Triggers = triggers
	return c, nil
}

// MergeConfig applies patch, a JSON merge patch (RFC 7396), to the stored
// config cur and decodes the result as strictly as ParseConfig. The patch
// must be an object: fields it names are set, fields it sets to null go
// back to their defaults, lists are replaced whole, objects (cors) merge.
func MergeConfig(cur, patch []byte) (Config, error) {
	p := bytes.TrimSpace(patch)
	if len(p) == 0 || p[0] != '{' {
		return Config{}, invalid("config", "a config change must be a JSON object (a merge patch: the fields it names change, null resets one)")
	}
	if len(bytes.TrimSpace(cur)) == 0 {
		cur = []byte("{}")
	}
	merged, err := jsonpatch.MergePatch(cur, p)
	if err != nil {
		return Config{}, invalid("config", "not a valid merge patch: %v", err)
	}
	return ParseConfig(merged)
}

// ParseTriggers decodes AeroDB's separate trigger field of a deploy, one
// trigger object or an array of them, as strictly as ParseConfig.
func ParseTriggers(raw []byte) ([]Trigger, error) {
	raw = bytes.TrimSpace(raw)
	dec := json.NewDecoder(bytes.NewReader(raw))
	var items []json.RawMessage
	var err error
	array := len(raw) > 0 && raw[0] == '['
	if array {
		err = dec.Decode(&items)
	} else {
		var one json.RawMessage
		err = dec.Decode(&one)
		items = []json.RawMessage{one}
	}
	if err != nil {
		return nil, invalid("trigger", "not a trigger object or array: %v", err)
	}
	if dec.More() {
		return nil, invalid("trigger", "trailing data after the trigger")
	}
	ts := make([]Trigger, 0, len(items))
	for i, r := range items {
		path := "trigger"
		if array {
			path = fmt.Sprintf("trigger[%d]", i)
		}
		t, err := parseTrigger(r, path)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// Validate checks every field's range; triggers are checked against the
// registered validators.
func (c Config) Validate(validators map[string]TriggerValidator) error {
	if c.Timeout != 0 && (c.Timeout < int(MinTimeout/time.Second) || c.Timeout > int(MaxTimeout/time.Second)) {
		return invalid("config.timeout", "%d s is outside 1-300 s", c.Timeout)
	}
	if c.MaxMemory != 0 && (c.MaxMemory < MinMemory || c.MaxMemory > MaxMemory) {
		return invalid("config.max_memory", "%d bytes is outside 16-512 MiB (%d-%d bytes)", c.MaxMemory, MinMemory, MaxMemory)
	}
	if len(c.Env) > maxEnvKeys {
		return invalid("config.env", "at most %d keys", maxEnvKeys)
	}
	for _, k := range c.Env {
		if !envKeyRE.MatchString(k) {
			return invalid("config.env", "%q is not a valid variable name", k)
		}
	}
	switch c.RunAs {
	case "", "service_role", "anon":
	default:
		return invalid("config.run_as", "%q is not one of service_role, anon (or empty: the caller)", c.RunAs)
	}
	for _, m := range c.Methods {
		switch m {
		case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS":
		default:
			return invalid("config.methods", "%q is not an HTTP method", m)
		}
	}
	if len(c.AllowedHosts) > maxAllowedHosts {
		return invalid("config.allowed_hosts", "at most %d hosts", maxAllowedHosts)
	}
	for _, h := range c.AllowedHosts {
		// An entry that can never match (such as "*" or "*.") would allow
		// nothing while looking like it allows everything: refuse it.
		if name := strings.TrimPrefix(h, "*."); len(h) > 253 || !hostRE.MatchString(name) {
			return invalid("config.allowed_hosts", "%q is not a host name or *.suffix (labels of letters, digits, - and _, no trailing dot, no other wildcards)", h)
		}
	}
	if c.CORS != nil {
		if err := c.CORS.validate(); err != nil {
			return err
		}
	}
	if len(c.Triggers) > maxTriggers {
		return invalid("config.triggers", "at most %d triggers", maxTriggers)
	}
	for i, t := range c.Triggers {
		if t.Type == "http" {
			continue
		}
		v, ok := validators[t.Type]
		if !ok {
			return invalid(fmt.Sprintf("config.triggers[%d].type", i), "%q is not a supported trigger type", t.Type)
		}
		if err := v(t, i); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				return err
			}
			return invalid(fmt.Sprintf("config.triggers[%d]", i), "%v", err)
		}
	}
	return nil
}

// TimeoutDuration is the effective timeout.
func (c Config) TimeoutDuration() time.Duration {
	if c.Timeout == 0 {
		return DefaultTimeout
	}
	return time.Duration(c.Timeout) * time.Second
}

// MemoryBytes is the effective memory cap.
func (c Config) MemoryBytes() int64 {
	if c.MaxMemory == 0 {
		return DefaultMemory
	}
	return c.MaxMemory
}

// RequiresJWT reports whether HTTP calls must carry a token.
func (c Config) RequiresJWT() bool { return c.VerifyJWT == nil || *c.VerifyJWT }

// AllowsMethod reports whether HTTP method m may invoke the function.
func (c Config) AllowsMethod(m string) bool {
	if len(c.Methods) == 0 {
		return true
	}
	for _, x := range c.Methods {
		if x == m {
			return true
		}
	}
	return false
}

// TriggersOf returns the triggers of one type.
func (c Config) TriggersOf(typ string) []Trigger {
	var out []Trigger
	for _, t := range c.Triggers {
		if t.Type == typ {
			out = append(out, t)
		}
	}
	return out
}

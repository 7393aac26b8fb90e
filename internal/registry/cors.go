package registry

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// headerNameRE is an HTTP field name (RFC 9110 token).
var headerNameRE = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")

// Limits of a function's cors block.
const (
	maxCORSOrigins = 100
	maxCORSHeaders = 50
	MaxCORSMaxAge  = 86400 // seconds; browsers cap lower anyway (Chromium: 2 h)
)

// CORS is a function's cross-origin policy. It replaces the server's
// (AEROFN_CORS_ORIGINS) for calls to this function; a field left out keeps
// the server's behaviour.
type CORS struct {
	// Origins that may call the function from a browser: "*" (any),
	// "https://app.example.com", or one wildcard in the host,
	// "https://*.example.com". Nil keeps the server's list; an empty list
	// allows no other origin.
	Origins []string `json:"origins"`
	// ExposeHeaders are response headers, besides X-Request-Id, Retry-After
	// and x-relay-error, that browser code may read.
	ExposeHeaders []string `json:"expose_headers,omitempty"`
	// MaxAge is how long (seconds) a browser may cache a preflight answer.
	MaxAge *int `json:"max_age,omitempty"`
	// Credentials lets browsers send cookies; it needs explicit origins.
	Credentials bool `json:"credentials,omitempty"`
}

// ValidateOrigin checks one entry of an origin list: "*", or
// scheme://host[:port] with at most one "*" in the host and nothing after.
func ValidateOrigin(o string) error {
	if o == "*" {
		return nil
	}
	if strings.Count(o, "*") > 1 {
		return fmt.Errorf("%q has more than one *", o)
	}
	u, err := url.Parse(strings.Replace(o, "*", "wildcard", 1))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(o, "/") {
		return fmt.Errorf("%q is not an origin such as https://app.example.com", o)
	}
	if o != strings.ToLower(o) {
		return fmt.Errorf("%q must be lower case, as browsers send it", o)
	}
	return nil
}

func (c *CORS) validate() error {
	if len(c.Origins) > maxCORSOrigins {
		return invalid("config.cors.origins", "at most %d origins", maxCORSOrigins)
	}
	for _, o := range c.Origins {
		if err := ValidateOrigin(o); err != nil {
			return invalid("config.cors.origins", "%v", err)
		}
		if o == "*" && c.Credentials {
			return invalid("config.cors.credentials", "credentials need explicit origins, not *")
		}
	}
	if c.Credentials && c.Origins == nil {
		return invalid("config.cors.credentials", "credentials need explicit origins in config.cors.origins")
	}
	if len(c.ExposeHeaders) > maxCORSHeaders {
		return invalid("config.cors.expose_headers", "at most %d headers", maxCORSHeaders)
	}
	for _, h := range c.ExposeHeaders {
		if !headerNameRE.MatchString(h) {
			return invalid("config.cors.expose_headers", "%q is not a header name", h)
		}
	}
	if c.MaxAge != nil && (*c.MaxAge < 0 || *c.MaxAge > MaxCORSMaxAge) {
		return invalid("config.cors.max_age", "%d s is outside 0-%d s", *c.MaxAge, MaxCORSMaxAge)
	}
	return nil
}

// ParseOrigins reads a server's origin list (AEROFN_CORS_ORIGINS): origins
// separated by commas, "*" for any, or "none" (or empty) for none.
func ParseOrigins(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return []string{}, nil
	}
	var out []string
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		if err := ValidateOrigin(o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/rs/cors"

	"github.com/aerodb/aerofn/internal/registry"
)

// corsExposed are the response headers browser code may always read: the
// request id, when to retry, and whether an error came from aerofn (what
// functions-js checks to tell a relay error from the function's own).
var corsExposed = []string{"X-Request-Id", "Retry-After", relayErrorHeader, "X-Aerofn-Invocation-Id"}

// corsMethods: a preflight admits every method; the function's methods rule
// then answers the real request with a 405 the browser can read.
var corsMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions}

// maxCORSPolicies bounds the cache of per-function policies (past it the
// cache starts over).
const maxCORSPolicies = 1000

// corsPolicies answers preflights and adds CORS headers to every response:
// the server's policy (AEROFN_CORS_ORIGINS), or a function's own (its config's
// cors block) for a request under /functions/v1/{name}.
type corsPolicies struct {
	origins []string
	server  *cors.Cors
	mu      sync.Mutex
	byCfg   map[string]*cors.Cors // keyed by the cors block as JSON
}

func newCORSPolicies(origins []string) *corsPolicies {
	return &corsPolicies{origins: origins, server: newCORS(origins, 0, false, nil), byCfg: map[string]*cors.Cors{}}
}

// newCORS builds one policy. No origins means no cross-origin access (rs/cors
// would read an empty list as "any").
func newCORS(origins []string, maxAge int, credentials bool, expose []string) *cors.Cors {
	o := cors.Options{
		AllowedOrigins:   origins,
		AllowedMethods:   corsMethods,
		AllowedHeaders:   []string{"*"},
		ExposedHeaders:   append(append([]string{}, corsExposed...), expose...),
		MaxAge:           maxAge,
		AllowCredentials: credentials,
	}
	if len(origins) == 0 {
		o.AllowOriginFunc = func(string) bool { return false }
	}
	return cors.New(o)
}

// forFunction is the policy of a function's cors block.
func (p *corsPolicies) forFunction(c *registry.CORS) *cors.Cors {
	if c == nil {
		return p.server
	}
	key, _ := json.Marshal(c)
	p.mu.Lock()
	defer p.mu.Unlock()
	if pol, ok := p.byCfg[string(key)]; ok {
		return pol
	}
	origins := c.Origins
	if origins == nil {
		origins = p.origins
	}
	maxAge := 0
	if c.MaxAge != nil {
		maxAge = *c.MaxAge
		if maxAge == 0 {
			maxAge = -1 // rs/cors: send Access-Control-Max-Age: 0
		}
	}
	pol := newCORS(origins, maxAge, c.Credentials, c.ExposeHeaders)
	if len(p.byCfg) >= maxCORSPolicies {
		clear(p.byCfg)
	}
	p.byCfg[string(key)] = pol
	return pol
}

// corsPolicy picks the policy of a request: a function's own when the path
// invokes a function that has one, else the server's. A request without an
// Origin that is no preflight gets Vary: Origin and nothing else from every
// policy, so the function is not looked up for it (most calls: servers,
// scripts, load generators).
func (a *API) corsPolicy(r *http.Request) *cors.Cors {
	if r.Header.Get("Origin") == "" && (r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "") {
		return a.cors.server
	}
	name := invokedName(r.URL.Path)
	if name == "" || a.cfg.Invoker == nil {
		return a.cors.server
	}
	fn, err := a.cfg.Invoker.Lookup(r.Context(), name)
	if err != nil {
		return a.cors.server
	}
	return a.cors.forFunction(fn.Config.CORS)
}

// invokedName is the function a path under /functions/v1 invokes, or "".
func invokedName(path string) string {
	if !strings.HasPrefix(path, "/functions/v1/") {
		return ""
	}
	parts := splitPath(path, "/functions/v1")
	if len(parts) == 0 || (parts[0] == "deploy" && len(parts) == 1) {
		return ""
	}
	if parts[0] == "invoke" {
		if len(parts) < 2 {
			return ""
		}
		return parts[1]
	}
	return parts[0]
}

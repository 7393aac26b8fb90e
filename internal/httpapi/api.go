// Package httpapi serves aerofn's REST API: deploy and manage functions,
// invoke them over HTTP, read their records. Handlers return errors; one
// Error type maps every failure to {"error", "code", "message"}.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/invoker"
	"github.com/aerodb/aerofn/internal/propagation"
	"github.com/aerodb/aerofn/internal/records"
	"github.com/aerodb/aerofn/internal/registry"
	"github.com/aerodb/aerofn/internal/secrets"
	"github.com/aerodb/aerofn/internal/webhook"
)

// Limits of request sizes.
const (
	MaxInvokeBody = 6 << 20
	// MaxEvent bounds the event a guest gets (docs/ABI.md): the body as
	// encoded in it (text escaped, binary in base64) plus the rest.
	MaxEvent      = 6 << 20
	maxDeployBody = registry.MaxModuleSize + 1<<20 // the module plus form fields
	maxJSONBody   = 1 << 20
)

// route is a route under /admin/v1/functions/{name}/... that a trigger's
// endpoints add (events.go, schedules.go): the function is looked up first.
type route struct {
	method  string
	suffix  string // after the name, e.g. "events" or "events/*/replay"
	handler func(w http.ResponseWriter, r *http.Request, fn registry.Function, parts []string) error
}

// Config wires the API.
type Config struct {
	Registry *registry.Store
	// Propagation makes deploy, rollback and patch answer once every live
	// node serves the change (or at its timeout), saying how many do.
	Propagation *propagation.Tracker
	Engine      *engine.Engine
	Invoker     *invoker.Invoker
	Records     *records.Reader
	Follower    *records.Follower // live logs; nil: not served
	Secrets     *secrets.Store
	Deliveries  *webhook.Deliveries
	Verifier    *auth.Verifier
	Gatherer    prometheus.Gatherer
	Logger      *slog.Logger
	Ready       func(ctx context.Context) error // for /healthz
	// ReadyChecks are what GET /readyz checks, in order.
	ReadyChecks []ReadyCheck
	// CORSOrigins may call any endpoint from a browser ("*": any; empty:
	// none); a function's cors block replaces it for that function.
	CORSOrigins []string
}

// describer adds a field to a function's description (e.g. next run times).
type describer func(ctx context.Context, fn registry.Function) (key string, value any, err error)

// API is the HTTP handler.
type API struct {
	cfg        Config
	log        *slog.Logger
	mux        *http.ServeMux
	cors       *corsPolicies
	routes     []route     // the triggers' endpoints (AddEvents, AddSchedules)
	describers []describer // extra fields shown by GET /admin/v1/functions/{name}
	// heartbeat is the live logs' idle interval, in nanoseconds.
	heartbeat atomic.Int64
}

// New builds the API.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), cors: newCORSPolicies(cfg.CORSOrigins)}
	a.mux.HandleFunc("/functions/v1", a.wrap(a.routeFunctions))
	a.mux.HandleFunc("/functions/v1/", a.wrap(a.routeFunctions))
	a.mux.HandleFunc("/admin/v1/", a.wrap(a.routeAdmin))
	// Fixed routes take their method through onlyMethod rather than a mux
	// pattern, so a wrong method gets aerofn's JSON error, not the mux's
	// plain-text 405.
	a.mux.HandleFunc("/healthz", a.wrap(onlyMethod(http.MethodGet, a.healthz)))
	a.mux.HandleFunc("/readyz", a.wrap(onlyMethod(http.MethodGet, a.readyz)))
	a.mux.HandleFunc("/webhooks/v1/{name}", a.wrap(onlyMethod(http.MethodPost, a.webhook)))
	if cfg.Gatherer != nil {
		metrics := promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})
		a.mux.HandleFunc("/metrics", a.wrap(onlyMethod(http.MethodGet, func(w http.ResponseWriter, r *http.Request) error {
			metrics.ServeHTTP(w, r)
			return nil
		})))
	}
	a.mux.HandleFunc("/", a.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return notFound("no route for %s %s", r.Method, r.URL.Path)
	}))
	return a
}

// ServeHTTP applies CORS first: a preflight (OPTIONS with Origin and
// Access-Control-Request-Method) is answered here, before authentication and
// the function's methods rule, and never reaches a function; every other
// response, errors included, carries the CORS headers of an allowed origin.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.corsPolicy(r).ServeHTTP(w, r, a.mux.ServeHTTP)
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) error {
	if a.cfg.Ready != nil {
		if err := a.cfg.Ready(r.Context()); err != nil {
			return apiError(http.StatusServiceUnavailable, "unavailable", "not ready: %v", err)
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// routeFunctions dispatches /functions/v1/...: invocation owns this prefix.
// Every method on /functions/v1/{name}[/sub/path] invokes the function, as
// Supabase routes it; management lives under /admin/v1 (routeAdmin). Two
// literals stay for the clients that use them: GET /functions/v1 (the AeroDB
// JS SDK's list()) and POST /functions/v1/deploy (the seed's curl), plus the
// older /functions/v1/invoke/{name}[/path]. Those literals are reserved
// function names (registry.ValidateName), so no function can be shadowed.
func (a *API) routeFunctions(w http.ResponseWriter, r *http.Request) error {
	parts := splitPath(r.URL.Path, "/functions/v1")
	m := r.Method
	switch {
	case len(parts) == 0:
		if m != http.MethodGet {
			return methodNotAllowed(m, "GET")
		}
		return a.admin(w, r, a.list)
	case parts[0] == "deploy" && len(parts) == 1:
		if m != http.MethodPost {
			return methodNotAllowed(m, "POST")
		}
		return a.admin(w, r, a.deploy)
	case parts[0] == "invoke":
		if len(parts) < 2 {
			return notFound("no function named in %s", r.URL.Path)
		}
		return a.invoke(w, r, parts[1], subPath(parts[2:]))
	}
	return a.invoke(w, r, parts[0], subPath(parts[1:]))
}

// routeAdmin dispatches /admin/v1/...: deploy and manage functions, secrets.
// Every route needs the service role.
func (a *API) routeAdmin(w http.ResponseWriter, r *http.Request) error {
	parts := splitPath(r.URL.Path, "/admin/v1")
	m := r.Method
	if len(parts) == 0 {
		return notFound("no route for %s %s", m, r.URL.Path)
	}
	switch parts[0] {
	case "secrets":
		return a.admin(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.valueRoutes(w, r, secretKind, parts[1:]) })
	case "env":
		return a.admin(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.valueRoutes(w, r, envKind, parts[1:]) })
	case "logs":
		if len(parts) > 1 {
			return notFound("no route for %s %s", m, r.URL.Path)
		}
		if m != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			return methodNotAllowed(m, "GET")
		}
		return a.admin(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.logs(w, r, "") })
	case "functions":
	default:
		return notFound("no route for %s %s", m, r.URL.Path)
	}
	parts = parts[1:]
	if len(parts) == 0 {
		switch m {
		case http.MethodGet:
			return a.admin(w, r, a.list)
		case http.MethodPost:
			return a.admin(w, r, a.deploy)
		default:
			return methodNotAllowed(m, "GET, POST")
		}
	}
	name := parts[0]
	if len(parts) == 1 {
		switch m {
		case http.MethodGet:
			return a.admin(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.get(w, r, name) })
		case http.MethodPatch:
			return a.admin(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.patch(w, r, name) })
		case http.MethodDelete:
			return a.admin(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.remove(w, r, name) })
		default:
			return methodNotAllowed(m, "GET, PATCH, DELETE")
		}
	}
	sub := strings.Join(parts[1:], "/")
	switch {
	case sub == "versions" && m == http.MethodGet:
		return a.admin(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.versions(w, r, name) })
	case sub == "rollback" && m == http.MethodPost:
		return a.admin(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.rollback(w, r, name) })
	case sub == "logs" && m == http.MethodGet:
		return a.admin(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.logs(w, r, name) })
	case sub == "stats" && m == http.MethodGet:
		return a.admin(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.stats(w, r, name) })
	case sub == "invoke" && m == http.MethodPost:
		return a.admin(w, r, func(w http.ResponseWriter, r *http.Request) error { return a.adminInvoke(w, r, name) })
	}
	for _, rt := range a.routes {
		if rt.method == m && matchSuffix(rt.suffix, parts[1:]) {
			return a.admin(w, r, func(w http.ResponseWriter, r *http.Request) error {
				fn, err := a.cfg.Registry.Get(r.Context(), name)
				if errors.Is(err, registry.ErrNotFound) {
					return notFound("function %q does not exist", name)
				}
				if err != nil {
					return err
				}
				return rt.handler(w, r, fn, parts[1:])
			})
		}
	}
	return notFound("no route for %s %s", m, r.URL.Path)
}

// splitPath is the path's segments after prefix, without empty ones.
func splitPath(path, prefix string) []string {
	rest := strings.Trim(strings.TrimPrefix(path, prefix), "/")
	if rest == "" {
		return nil
	}
	return strings.Split(rest, "/")
}

// subPath is what a function sees as its path: "/" plus the segments after
// its name.
func subPath(parts []string) string { return "/" + strings.Join(parts, "/") }

func matchSuffix(pattern string, parts []string) bool {
	p := strings.Split(pattern, "/")
	if len(p) != len(parts) {
		return false
	}
	for i := range p {
		if p[i] != "*" && p[i] != parts[i] {
			return false
		}
	}
	return true
}

// onlyMethod admits one method (and HEAD with GET, as the mux's GET
// patterns do) and answers any other with 405 and an Allow header.
func onlyMethod(method string, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			return methodNotAllowed(r.Method, method)
		}
		return h(w, r)
	}
}

func methodNotAllowed(got, want string) error {
	return apiError(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed here; use %s", got, want)
}

type principalKey struct{}

// principal verifies the request's token. A token that is present and
// invalid is always an error; a missing one is reported as ErrMissingToken.
func (a *API) principal(r *http.Request) (auth.Principal, error) {
	tok, err := auth.FromHeader(r.Header.Get("Authorization"))
	if err != nil {
		if errors.Is(err, auth.ErrMissingToken) {
			if k := r.Header.Get("apikey"); k != "" {
				tok = k
			} else {
				return auth.Principal{}, err
			}
		} else {
			return auth.Principal{}, apiError(http.StatusUnauthorized, "invalid_token", "%v", err)
		}
	}
	p, err := a.cfg.Verifier.Verify(tok)
	if err != nil {
		return auth.Principal{}, apiError(http.StatusUnauthorized, "invalid_token", "%v", err)
	}
	return p, nil
}

// admin runs h only for a service-role caller.
func (a *API) admin(w http.ResponseWriter, r *http.Request, h handlerFunc) error {
	p, err := a.principal(r)
	if errors.Is(err, auth.ErrMissingToken) {
		return apiError(http.StatusUnauthorized, "missing_token", "this endpoint needs a service_role bearer token")
	}
	if err != nil {
		return err
	}
	if p.Role != auth.RoleService {
		return apiError(http.StatusForbidden, "forbidden", "this endpoint needs the service_role; the token's role is %s", p.Role)
	}
	return h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
}

// Package invoker is the one path every trigger takes to run a function: look
// up the current version, admit the call (concurrency), pick the principal,
// load the compiled module, run it in a fresh sandbox with the function's
// limits, scrub secrets from what comes out, and record the invocation. A
// trigger only builds an event and a principal; it never runs a module itself.
package invoker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/hostfn"
	"github.com/aerodb/aerofn/internal/records"
	"github.com/aerodb/aerofn/internal/registry"
	"github.com/aerodb/aerofn/internal/sqlexec"
)

var (
	// ErrNotFound: no such function, or it is disabled.
	ErrNotFound = errors.New("function not found")
	// ErrBusy: the node is running as many calls as it admits.
	ErrBusy = errors.New("too many concurrent invocations")
)

// Config wires an Invoker.
type Config struct {
	Registry *registry.Store
	Engine   *engine.Engine
	Records  *records.Writer
	Secrets  hostfn.Secrets
	DB       hostfn.DB
	Fetcher  *hostfn.Fetcher
	// Artifacts shares compiled modules between nodes (modules.go). nil:
	// no sharing, and a call whose module is not compiled compiles it.
	Artifacts      *registry.Artifacts
	MaxConcurrency int           // calls running at once on this node; default 1000
	CacheTTL       time.Duration // how long a looked-up function is trusted without a change notice; default 2 s
	Logger         *slog.Logger
}

// Invoker runs functions.
type Invoker struct {
	cfg Config
	sem chan struct{}

	// halt ends with cause engine.ErrInterrupted when the node stops
	// waiting for calls: every call running then, or started after, is
	// interrupted and recorded as such.
	halt      context.Context
	interrupt context.CancelCauseFunc

	// Calls between admission and their record; Stop waits for none.
	runMu   sync.Mutex
	running int
	idle    chan struct{} // closed and replaced each time running drops to 0

	mu    sync.Mutex
	cache map[string]cachedFunction

	bg *modules // background loads and compiles (modules.go)
}

type cachedFunction struct {
	fn registry.Function
	at time.Time
}

// maxCachedFunctions bounds the lookup cache; past it the cache starts over
// (deployed functions only, so this is far more than a node serves).
const maxCachedFunctions = 10000

// New returns an Invoker.
func New(cfg Config) *Invoker {
	if cfg.MaxConcurrency <= 0 {
		cfg.MaxConcurrency = 1000
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	inv := &Invoker{cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrency), cache: map[string]cachedFunction{}, idle: make(chan struct{}), bg: newModules()}
	inv.halt, inv.interrupt = context.WithCancelCause(context.Background())
	return inv
}

// Interrupt cuts short every call running now or started later: the engine
// stops each within an epoch tick (or as soon as its host call returns, which
// honours the same context), and it is recorded with status interrupted.
func (inv *Invoker) Interrupt() { inv.interrupt(engine.ErrInterrupted) }

// Stop waits until no call is running, each recorded, then ends the
// background compiles (modules.go). When ctx ends first, the calls still
// running are interrupted and Stop returns an error without waiting for
// them (the server gives it a context that ends a grace period after its
// own deadline, when it has interrupted them already). Safe to call more
// than once; calls made after it are interrupted at once if it interrupted.
func (inv *Invoker) Stop(ctx context.Context) error {
	defer inv.stopBackground()
	inv.runMu.Lock()
	n, idle := inv.running, inv.idle
	inv.runMu.Unlock()
	if n == 0 {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		inv.Interrupt()
		inv.runMu.Lock()
		n = inv.running
		inv.runMu.Unlock()
		return fmt.Errorf("stopping invoker: %d calls still running: %w", n, ctx.Err())
	}
}

// begin counts a call in; the func it returns counts it out.
func (inv *Invoker) begin() func() {
	inv.runMu.Lock()
	inv.running++
	inv.runMu.Unlock()
	return func() {
		inv.runMu.Lock()
		inv.running--
		if inv.running == 0 {
			close(inv.idle)
			inv.idle = make(chan struct{})
		}
		inv.runMu.Unlock()
	}
}

// Lookup returns the current, enabled version of a function. Results are
// cached briefly; Invalidate drops an entry when the registry announces a
// change, so a disable or delete takes effect at once on every node.
func (inv *Invoker) Lookup(ctx context.Context, name string) (registry.Function, error) {
	inv.mu.Lock()
	c, ok := inv.cache[name]
	inv.mu.Unlock()
	if !ok || time.Since(c.at) > inv.cfg.CacheTTL {
		fn, err := inv.cfg.Registry.Get(ctx, name)
		if errors.Is(err, registry.ErrNotFound) {
			// Not cached: anyone may ask for any name, and remembering
			// every miss would let them grow the cache without bound.
			return registry.Function{}, ErrNotFound
		}
		if err != nil {
			return registry.Function{}, err
		}
		c = cachedFunction{fn: fn, at: time.Now()}
		inv.mu.Lock()
		if len(inv.cache) >= maxCachedFunctions {
			clear(inv.cache)
		}
		inv.cache[name] = c
		inv.mu.Unlock()
	}
	if !c.fn.Enabled {
		return registry.Function{}, ErrNotFound
	}
	return c.fn, nil
}

// Invalidate forgets a cached function ("" forgets all).
func (inv *Invoker) Invalidate(name string) {
	inv.mu.Lock()
	if name == "" {
		clear(inv.cache)
	} else {
		delete(inv.cache, name)
	}
	inv.mu.Unlock()
}

// Call is one invocation request, built by a trigger.
type Call struct {
	Trigger   string // http, database, schedule, webhook
	Event     []byte // the JSON handed to handler
	Principal auth.Principal
	RequestID string
	// CheckOutput, when set, decides whether a successful call's output is
	// an answer its trigger can deliver (an HTTP call's statusCode must be
	// 200-599). An error fails the call with that message, in its Outcome
	// and in its record alike.
	CheckOutput func(output []byte) error
	// HTTPStatus, for HTTP calls, maps the outcome to the status the caller
	// gets; it is recorded with the invocation.
	HTTPStatus func(Outcome) int
}

// Outcome is what a call produced, secrets already scrubbed.
type Outcome struct {
	ID         string
	Status     engine.Status
	Output     []byte
	Error      string
	Principal  auth.Principal
	Version    int
	Duration   time.Duration
	MemoryPeak int64
	Logs       []engine.LogLine
	// LogsDropped counts the log lines past the per-call cap.
	LogsDropped int
}

// EffectivePrincipal applies the function's run_as to the trigger's principal.
func EffectivePrincipal(fn registry.Function, p auth.Principal) auth.Principal {
	switch fn.Config.RunAs {
	case "service_role":
		return auth.Service()
	case "anon":
		return auth.Anon()
	}
	if !p.Role.Valid() {
		return auth.Anon()
	}
	return p
}

// Invoke runs fn once. The returned error is only for a call that could not
// be admitted (ErrBusy: over MaxConcurrency, or no free instance slot in the
// engine's pool) or whose module is not compiled on this node yet
// (ErrNotReady); every call that was run is recorded and its failure,
// whatever it was, is in the Outcome.
func (inv *Invoker) Invoke(ctx context.Context, fn registry.Function, c Call) (Outcome, error) {
	adm, err := inv.Admit()
	if err != nil {
		return Outcome{}, err
	}
	return adm.Invoke(ctx, fn, c)
}

// Admission is one of the node's MaxConcurrency slots. A trigger that has
// work to do before it can call (read a request body, build the event)
// takes its slot first, so a call the node is going to refuse costs it
// nothing.
type Admission struct {
	inv  *Invoker
	once sync.Once
}

// Admit takes a slot, or answers ErrBusy at once when there is none. The
// slot is given back by Admission.Invoke or Admission.Release.
func (inv *Invoker) Admit() (*Admission, error) {
	select {
	case inv.sem <- struct{}{}:
		return &Admission{inv: inv}, nil
	default:
		return nil, ErrBusy
	}
}

// Release gives the slot back without a call. It may be called any number
// of times, and after Invoke.
func (a *Admission) Release() {
	a.once.Do(func() { <-a.inv.sem })
}

// Invoke runs fn once in the admitted slot, then releases it; see
// Invoker.Invoke (ErrBusy here: the engine had no instance slot).
func (a *Admission) Invoke(ctx context.Context, fn registry.Function, c Call) (Outcome, error) {
	defer a.Release()
	return a.inv.run(ctx, fn, c)
}

func (inv *Invoker) run(ctx context.Context, fn registry.Function, c Call) (Outcome, error) {
	defer inv.begin()()
	// A caller that goes away does not cut a call short: its database writes
	// would be left half done. The function's own timeout bounds it, and a
	// stopping node interrupts it (Interrupt).
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	defer context.AfterFunc(inv.halt, func() { cancel(context.Cause(inv.halt)) })()
	// db_query bounds what one function holds of its role's pool.
	ctx = sqlexec.WithFunction(ctx, fn.Name)
	start := time.Now()
	out := Outcome{ID: uuid.NewString(), Principal: EffectivePrincipal(fn, c.Principal), Version: fn.Version}
	if c.RequestID == "" {
		c.RequestID = out.ID
	}
	host := &hostfn.Call{Ctx: ctx, Principal: out.Principal, EnvKeys: fn.Config.Env, Secrets: inv.cfg.Secrets,
		DB: inv.cfg.DB, Fetcher: inv.cfg.Fetcher, Allowed: fn.Config.AllowedHosts}

	mod, err := inv.module(ctx, fn.WasmHash)
	if errors.Is(err, ErrNotReady) {
		return Outcome{}, fmt.Errorf("function %s: %w", fn.Name, ErrNotReady)
	}
	if err != nil {
		out.Status = engine.StatusError
		if errors.Is(context.Cause(ctx), engine.ErrInterrupted) {
			out.Status = engine.StatusInterrupted
		}
		out.Error = fmt.Sprintf("loading module %s: %v", fn.WasmHash, err)
		inv.cfg.Logger.Error("loading module", "function", fn.Name, "hash", fn.WasmHash, "error", err)
	} else {
		res := inv.cfg.Engine.Run(ctx, mod, c.Event, engine.Limits{
			Timeout:     fn.Config.TimeoutDuration(),
			MemoryBytes: fn.Config.MemoryBytes(),
		}, host)
		if errors.Is(res.Err, engine.ErrPoolExhausted) {
			// The engine had no instance slot: the call never started, so
			// it is refused like one over MaxConcurrency, not recorded.
			return Outcome{}, ErrBusy
		}
		out.Status, out.Output, out.Logs, out.MemoryPeak, out.LogsDropped = res.Status, res.Output, res.Logs, res.MemoryPeak, res.LogsDropped
		switch {
		case res.Status == engine.StatusError && len(res.Output) > 0:
			// The guest said why it failed; that beats "handler returned 1".
			out.Error = string(res.Output)
		case res.Err != nil:
			out.Error = res.Err.Error()
		}
		if res.LogsDropped > 0 {
			out.Logs = append(out.Logs, engine.LogLine{Time: time.Now(), Level: "warn",
				Message: fmt.Sprintf("%d log lines dropped over the per-call cap", res.LogsDropped)})
		}
		if out.Status == engine.StatusSuccess && c.CheckOutput != nil {
			if err := c.CheckOutput(out.Output); err != nil {
				out.Status, out.Error = engine.StatusError, err.Error()
			}
		}
	}
	out.Duration = time.Since(start)
	scrub(&out, host.SecretsRead())

	httpStatus := 0
	if c.HTTPStatus != nil {
		httpStatus = c.HTTPStatus(out)
	}
	inv.cfg.Records.Add(records.Record{
		HTTPStatus: httpStatus, ID: out.ID, FunctionID: fn.ID, Function: fn.Name, Version: fn.Version, Trigger: c.Trigger, Status: string(out.Status),
		DurationMS: float64(out.Duration.Microseconds()) / 1000, MemoryPeakMB: float64(out.MemoryPeak) / (1 << 20),
		Role: string(out.Principal.Role), UserID: out.Principal.UserID, RequestID: c.RequestID, Error: out.Error,
		Logs: out.Logs, LogsDropped: out.LogsDropped, Timestamp: start.UTC(),
	})
	return out, nil
}

// minSecretLen: shorter values would scrub ordinary text; aerofn refuses to
// store secrets shorter than this anyway.
const minSecretLen = 4

const redacted = "[REDACTED]"

// scrub removes every secret value the guest read from what leaves the call.
func scrub(o *Outcome, values []string) {
	var forms []string
	for _, v := range values {
		if len(v) < minSecretLen {
			continue
		}
		forms = append(forms, v)
		// Inside a JSON string the value may appear escaped (quotes,
		// backslashes, control characters, and <, >, & as encoding/json
		// writes them); scrub that form too.
		if b, err := json.Marshal(v); err == nil {
			if esc := string(b[1 : len(b)-1]); esc != v {
				forms = append(forms, esc)
			}
		}
	}
	if len(forms) == 0 {
		return
	}
	// strings.Replacer prefers the earlier of two patterns matching at the
	// same place; longest first, so a secret that starts with another
	// secret's value is replaced whole instead of leaking its tail.
	sort.SliceStable(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	r := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		r = append(r, f, redacted)
	}
	rep := strings.NewReplacer(r...)
	o.Output = []byte(rep.Replace(string(o.Output)))
	o.Error = rep.Replace(o.Error)
	for i := range o.Logs {
		o.Logs[i].Message = rep.Replace(o.Logs[i].Message)
	}
}

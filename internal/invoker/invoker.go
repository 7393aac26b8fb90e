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

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/hostfn"
	"github.com/aerodb/aerofn/internal/records"
	"github.com/aerodb/aerofn/internal/registry"
)

// Why Invoke did not run a call. Each is returned as Invoke's error and
// nothing is recorded; callers test them with errors.Is. (ErrNotReady, in
// modules.go, is one more.)
var (
	// ErrNotFound: no function of that name, or not the one the trigger
	// named (Call.FunctionID: deleted and deployed again under the name).
	ErrNotFound = errors.New("function not found")
	// ErrDisabled: the function exists and is disabled.
	ErrDisabled = errors.New("function is disabled")
	// ErrBusy: the node is running as many calls as it admits, or its
	// engine has no free instance slot.
	ErrBusy = errors.New("too many concurrent invocations")
)

// Why a call that ran failed: Outcome.Err wraps one of these (and the call
// is recorded with the matching status).
var (
	// ErrLoad: the function's module can never be loaded (not valid
	// WebAssembly, its stored bytes do not match their hash, or gone). A
	// load that failed for a passing reason (the database blinked) is a
	// failure without this cause.
	ErrLoad = errors.New("the function's module cannot be loaded")
	// ErrTimeout: the call ran past the function's timeout.
	ErrTimeout = errors.New("function timed out")
	// ErrMemory: the call grew past the function's memory limit.
	ErrMemory = errors.New("function exceeded its memory limit")
	// ErrInterrupted: the node stopped under the call (Interrupt).
	ErrInterrupted = errors.New("call interrupted by the node stopping")
	// ErrFunction: the function failed (returned an error, trapped, or
	// answered what its trigger cannot deliver).
	ErrFunction = errors.New("function failed")
)

// Retryable reports whether err (from Invoke) means the call was refused
// for now and the same call succeeds later: this node was busy, or has not
// compiled the module yet. Background triggers hand such work back.
func Retryable(err error) bool { return errors.Is(err, ErrBusy) || errors.Is(err, ErrNotReady) }

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
	// gen counts invalidations: a lookup remembers what it read only if no
	// change notice came while it read, so a read made just before a
	// change commits cannot put the old version back after the notice.
	gen uint64

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

// begin counts a call in; end counts it out.
func (inv *Invoker) begin() {
	inv.runMu.Lock()
	inv.running++
	inv.runMu.Unlock()
}

func (inv *Invoker) end() {
	inv.runMu.Lock()
	inv.running--
	if inv.running == 0 {
		close(inv.idle)
		inv.idle = make(chan struct{})
	}
	inv.runMu.Unlock()
}

// Lookup returns the current, enabled version of a function: ErrNotFound
// when there is none, ErrDisabled when it is disabled. Results are cached
// briefly; Invalidate drops an entry when the registry announces a change,
// so a disable or delete takes effect at once on every node.
func (inv *Invoker) Lookup(ctx context.Context, name string) (registry.Function, error) {
	inv.mu.Lock()
	c, ok := inv.cache[name]
	gen := inv.gen
	inv.mu.Unlock()
	if !ok || time.Since(c.at) > inv.cfg.CacheTTL {
		fn, err := inv.cfg.Registry.Get(ctx, name)
		if errors.Is(err, registry.ErrNotFound) {
			// Not cached: anyone may ask for any name, and remembering
			// every miss would let them grow the cache without bound.
			return registry.Function{}, ErrNotFound
		}
		if err != nil {
			return registry.Function{}, fmt.Errorf("looking up function %s: %w", name, err)
		}
		c = inv.remember(fn, gen)
	}
	if !c.fn.Enabled {
		return registry.Function{}, ErrDisabled
	}
	return c.fn, nil
}

// generation is the invalidation count to give remember: read it before
// reading the registry.
func (inv *Invoker) generation() uint64 {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.gen
}

// remember caches a function just read from the registry, unless a change
// notice arrived since gen was read (the read may predate the change).
func (inv *Invoker) remember(fn registry.Function, gen uint64) cachedFunction {
	c := cachedFunction{fn: fn, at: time.Now()}
	inv.mu.Lock()
	if inv.gen != gen {
		inv.mu.Unlock()
		return c
	}
	if len(inv.cache) >= maxCachedFunctions {
		clear(inv.cache)
	}
	inv.cache[fn.Name] = c
	inv.mu.Unlock()
	return c
}

// Invalidate forgets a cached function ("" forgets all).
func (inv *Invoker) Invalidate(name string) {
	inv.mu.Lock()
	inv.gen++
	if name == "" {
		clear(inv.cache)
	} else {
		delete(inv.cache, name)
	}
	inv.mu.Unlock()
}

// Call is one invocation request, built by a trigger.
type Call struct {
	Trigger string // http, database, schedule, webhook
	// FunctionID, when set, is the function the trigger's work was made
	// for: a function found under the name with another id (the first was
	// deleted and the name deployed again) is ErrNotFound.
	FunctionID string
	// Fresh looks the function up in the registry rather than the cache,
	// so that a disable committed before the call is seen (the scheduler,
	// which has claimed a run, must not start it after a disable).
	Fresh bool
	// Check, when set, may refuse the call once the function is known and
	// before it is admitted (an HTTP call's token and method rules); its
	// error is Invoke's, and nothing runs.
	Check func(fn registry.Function) error
	// Event is the JSON handed to handler. When Event is nil, BuildEvent
	// makes it once the call is admitted, from the function and the
	// principal the call acts for (an HTTP call reads its body only then,
	// so a call the node refuses costs it nothing); its error is Invoke's.
	// A requestID it returns replaces RequestID (a webhook's delivery id is
	// known once its signature is checked).
	Event      []byte
	BuildEvent func(fn registry.Function, p auth.Principal) (event []byte, requestID string, err error)
	// Principal is who the trigger acts for; the function's run_as may
	// replace it (Outcome.Principal is the one the call ran as).
	Principal auth.Principal
	RequestID string
	// WaitForCompile lets background work wait for the module to compile
	// on this node, where an HTTP call is refused with ErrNotReady.
	WaitForCompile bool
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
	ID     string
	Status engine.Status
	// Err is nil when the call succeeded; else it wraps why: ErrLoad,
	// ErrTimeout, ErrMemory, ErrInterrupted or ErrFunction.
	Err    error
	Output []byte
	// Error is the failure's text as recorded (the guest's own words when
	// it gave some).
	Error      string
	Function   registry.Function // the version that ran
	Principal  auth.Principal
	Version    int
	Duration   time.Duration
	MemoryPeak int64
	Logs       []engine.LogLine
	// LogsDropped counts the log lines past the per-call cap.
	LogsDropped int
}

// principalFor applies the function's run_as to the trigger's principal:
// the one place the rule lives.
func principalFor(fn registry.Function, p auth.Principal) auth.Principal {
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

// Invoke runs the function called name once: it looks the function up,
// lets c.Check refuse it, admits the call (at most MaxConcurrency at once),
// applies run_as to c.Principal, builds the event, runs it and records it.
//
// The error is for a call that was not run, and is not recorded:
// ErrNotFound, ErrDisabled, ErrBusy (over MaxConcurrency, or no free
// instance slot in the engine's pool), ErrNotReady (the module is not
// compiled on this node yet), an error of c.Check or c.BuildEvent, or a
// failed lookup. Every call that ran is recorded, and how it failed is in
// Outcome.Err.
func (inv *Invoker) Invoke(ctx context.Context, name string, c Call) (Outcome, error) {
	if c.Fresh {
		inv.Invalidate(name)
	}
	fn, err := inv.Lookup(ctx, name)
	if c.FunctionID != "" && !c.Fresh && (errors.Is(err, ErrDisabled) || err == nil && fn.ID != c.FunctionID) {
		// Work stored for a function is not given up on the cache's word
		// (it may predate an enable or a redeploy): ask the registry.
		inv.Invalidate(name)
		fn, err = inv.Lookup(ctx, name)
	}
	if err == nil && c.FunctionID != "" && fn.ID != c.FunctionID {
		err = ErrNotFound
	}
	if err != nil {
		return Outcome{}, err
	}
	if c.Check != nil {
		if err := c.Check(fn); err != nil {
			return Outcome{}, err
		}
	}
	select {
	case inv.sem <- struct{}{}:
	default:
		return Outcome{}, ErrBusy
	}
	defer func() { <-inv.sem }()
	p := principalFor(fn, c.Principal)
	if c.Event == nil && c.BuildEvent != nil {
		ev, id, err := c.BuildEvent(fn, p)
		if err != nil {
			return Outcome{}, err
		}
		c.Event = ev
		if id != "" {
			c.RequestID = id
		}
	}
	return inv.run(ctx, fn, p, c)
}

func (inv *Invoker) run(ctx context.Context, fn registry.Function, p auth.Principal, c Call) (Outcome, error) {
	inv.begin()
	defer inv.end()
	// A caller that goes away does not cut a call short: its database writes
	// would be left half done. The function's own timeout bounds it, and a
	// stopping node interrupts it (Interrupt). db_query bounds what one
	// function holds of its role's pool by the name the context carries.
	ctx = newCallContext(inv.halt, ctx, fn.Name)
	start := time.Now()
	out := Outcome{ID: records.NewID(), Function: fn, Principal: p, Version: fn.Version}
	if c.RequestID == "" {
		c.RequestID = out.ID
	}
	host := &hostfn.Call{Principal: out.Principal, EnvKeys: fn.Config.Env, Secrets: inv.cfg.Secrets,
		DB: inv.cfg.DB, Fetcher: inv.cfg.Fetcher, Allowed: fn.Config.AllowedHosts}

	var mod *engine.Module
	var err error
	if c.WaitForCompile {
		mod, err = inv.Load(ctx, fn.WasmHash)
	} else {
		mod, err = inv.module(ctx, fn.WasmHash)
	}
	if errors.Is(err, ErrNotReady) {
		return Outcome{}, fmt.Errorf("function %s: %w", fn.Name, ErrNotReady)
	}
	if err != nil {
		out.Status = engine.StatusError
		out.Err = fmt.Errorf("loading module %s: %w", fn.WasmHash, err)
		switch {
		case errors.Is(context.Cause(ctx), engine.ErrInterrupted):
			out.Status, out.Err = engine.StatusInterrupted, fmt.Errorf("%w: %w", ErrInterrupted, err)
		case permanent(err):
			out.Err = fmt.Errorf("%w: %w", ErrLoad, out.Err)
		}
		out.Error = fmt.Sprintf("loading module %s: %v", fn.WasmHash, err)
		inv.cfg.Logger.Error("loading module", "function", fn.Name, "hash", fn.WasmHash, "error", err)
	} else {
		res := inv.cfg.Engine.Run(ctx, mod, c.Event, engine.Limits{
			Timeout:     fn.Config.TimeoutDuration(),
			MemoryBytes: fn.Config.MemoryBytes(),
			Owner:       fn.ID,
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
	if out.Err == nil {
		out.Err = causeOf(out)
	}

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

// causeOf is the typed cause of a call that ran, from its status; nil for
// a success.
func causeOf(out Outcome) error {
	var cause error
	switch out.Status {
	case engine.StatusSuccess:
		return nil
	case engine.StatusTimeout:
		cause = ErrTimeout
	case engine.StatusMemoryExceeded:
		cause = ErrMemory
	case engine.StatusInterrupted:
		cause = ErrInterrupted
	default:
		cause = ErrFunction
	}
	if out.Error == "" {
		return cause
	}
	return fmt.Errorf("%w: %s", cause, out.Error)
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

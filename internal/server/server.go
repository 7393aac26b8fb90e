// Package server wires aerofn's parts together and owns their start order
// and graceful stop:
//
//	Open:  database pool → migrations → function roles (sqlexec.Setup) →
//	       engine → records writer → invoker → triggers → HTTP API
//	Start: records writer, registry listener, triggers, then HTTP (listening
//	       before Start returns, so Addr is valid)
//	Stop:  live log streams end; at once, HTTP stops accepting and the
//	       triggers stop claiming; each
//	       waits for its running calls → invoker waits for the last calls →
//	       records writer drains (last of all that can produce a record) →
//	       engine stopped → pools closed
//
// Stop's context bounds the waiting (the CLI gives it
// AEROFN_SHUTDOWN_TIMEOUT). When it ends, every call still running is
// interrupted through its context, answered 503 and recorded with status
// interrupted; the steps above then only wait for the calls to unwind, at
// most StopGrace more. The records writer stops after every call has been
// recorded, so no record is lost; see docs/RATIONALE.md, "Stopping a node".
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/cluster"
	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/db"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/hostfn"
	"github.com/aerodb/aerofn/internal/httpapi"
	"github.com/aerodb/aerofn/internal/invoker"
	"github.com/aerodb/aerofn/internal/propagation"
	"github.com/aerodb/aerofn/internal/records"
	"github.com/aerodb/aerofn/internal/registry"
	"github.com/aerodb/aerofn/internal/secrets"
	"github.com/aerodb/aerofn/internal/sqlexec"
	"github.com/aerodb/aerofn/internal/webhook"
)

// Service is a background part with the start/stop contract: Start returns
// at once; Stop stops taking work and waits for what runs to end, at most
// until ctx ends (then it returns an error); both are safe to call more
// than once, and Stop without Start.
type Service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// StopGrace is how long Stop waits, after its context has ended and the
// calls still running were interrupted, for them to unwind and be recorded
// (in practice milliseconds: an epoch tick, a cancelled query, one write).
const StopGrace = 3 * time.Second

// Server is one aerofn node.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	Pool     *pgxpool.Pool
	Engine   *engine.Engine
	Registry *registry.Store
	Records  *records.Writer
	Follower *records.Follower
	Pruner   *records.Pruner
	Invoker  *invoker.Invoker
	Secrets  *secrets.Store
	API      *httpapi.API
	SQL      *sqlexec.Executor
	// Cluster is this node among the nodes sharing the database: its one
	// name (schedule runs, River's client id, sessions), its session and
	// its leaderships.
	Cluster *cluster.Node
	// Propagation makes this node's changes to functions wait until every
	// live node serves them.
	Propagation *propagation.Tracker

	services []Service
	queues   []queueSource // the triggers' backlog collectors (metrics.go)
	http     *http.Server
	ln       net.Listener
	pprof    *http.Server // Go's profiler, when cfg.PprofListen is set
	pprofLn  net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	state    atomic.Int32 // stateStarting, stateServing, stateStopping: for /readyz
	js       jsWarm       // the JavaScript runtime's warm-up (jsruntime.go)
}

const (
	stateStarting int32 = iota
	stateServing
	stateStopping
)

// Options are what a caller may add beyond Config.
type Options struct {
	Stdout io.Writer // invocation lines; nil: none
	Logger *slog.Logger
	// FetchTransport, when set, carries every http_fetch request instead of
	// the dialing transport (tests only; see hostfn.FetcherConfig.Transport).
	FetchTransport http.RoundTripper
}

// Open connects, migrates and builds every part; nothing runs yet.
func Open(ctx context.Context, cfg config.Config, opt Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	s := &Server{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			_ = s.closeParts(context.WithoutCancel(ctx))
		}
	}()
	var err error
	s.Pool, err = db.Open(ctx, cfg.DatabaseURL, 20)
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx, s.Pool); err != nil {
		return nil, err
	}
	sqlCfg := SQLConfig(cfg)
	if err := sqlexec.Setup(ctx, s.Pool, sqlCfg); err != nil {
		return nil, fmt.Errorf("setting up function roles: %w", err)
	}
	s.SQL, err = sqlexec.New(ctx, sqlCfg)
	if err != nil {
		return nil, fmt.Errorf("opening function role pools: %w", err)
	}
	// One instance slot per call the node admits, so admission, not the
	// pool, is what turns callers away. The node's one engine can afford
	// memories that reserve 4 GiB each (address space, not memory), so
	// compiled code has no bounds checks: cheaper deploys, faster calls.
	s.Engine, err = engine.New(engine.Config{CacheDir: cfg.DataDir + "/modules", PoolSlots: cfg.MaxConcurrency,
		ElideBoundsChecks: true, JSRuntimePath: jsRuntimePath(cfg), JSRuntimeCacheDir: cfg.JSRuntimeCache})
	if err != nil {
		return nil, fmt.Errorf("starting engine: %w", err)
	}
	reg := prometheus.NewRegistry()
	// The scheduler's and the collector's latency histograms
	// (go_sched_latencies_seconds, go_gc_pauses_seconds...) beside the
	// classic Go metrics: with aerofn_run_gate_wait_seconds they say where a
	// loaded node's calls wait (RATIONALE "Benchmarks: the server under load").
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler, collectors.MetricsGC)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.Records = records.NewWriter(records.WriterConfig{Pool: s.Pool, Stdout: opt.Stdout, Logger: log, Registry: reg})
	sec, err := secrets.New(s.Pool, cfg.SecretsKey)
	if err != nil {
		return nil, err
	}
	s.Secrets = sec
	verifier, err := auth.NewVerifier(cfg.JWTSecret)
	if err != nil {
		return nil, err
	}
	s.Registry = registry.New(s.Pool)
	s.Registry.AddTriggerType("webhook", webhook.Validate)
	s.Invoker = invoker.New(invoker.Config{
		Registry: s.Registry, Engine: s.Engine, Records: s.Records, Secrets: sec, DB: s.SQL,
		Fetcher:        hostfn.NewFetcher(hostfn.FetcherConfig{AllowPrivate: cfg.FetchAllowPrivate, Transport: opt.FetchTransport}),
		Artifacts:      registry.NewArtifacts(s.Pool, cfg.SecretsKey),
		MaxConcurrency: cfg.MaxConcurrency, Logger: log,
	})
	s.Engine.SetJSRuntimeLoader(s.loadJSRuntime)
	s.Follower = records.NewFollower(s.Pool, log, reg)
	s.Pruner = records.NewPruner(s.Pool, records.RetentionConfig{MaxAge: cfg.RecordsMaxAge, MaxPerFunction: cfg.RecordsMaxPerFunction}, log, reg)
	s.Cluster = cluster.New(cluster.Config{Pool: s.Pool, Logger: log})
	s.Propagation = propagation.New(propagation.Config{Node: s.Cluster, Pool: s.Pool, Timeout: cfg.DeployPropagationTimeout, Logger: log})
	s.API = httpapi.New(httpapi.Config{
		Registry: s.Registry, Propagation: s.Propagation, Engine: s.Engine, Invoker: s.Invoker, Records: records.NewReader(s.Pool), Follower: s.Follower, Secrets: sec,
		Verifier: verifier, Gatherer: reg, Logger: log, Deliveries: webhook.NewDeliveries(s.Pool), CORSOrigins: cfg.Origins(),
		Ready: func(ctx context.Context) error { return s.Pool.Ping(ctx) },
		ReadyChecks: []httpapi.ReadyCheck{
			{Name: "database", Check: func(ctx context.Context) error { return s.Pool.Ping(ctx) }},
			{Name: "migrations", Check: func(ctx context.Context) error {
				p, err := db.Pending(ctx, s.Pool)
				if err != nil {
					return err
				}
				if len(p) > 0 {
					return fmt.Errorf("not applied: %s", strings.Join(p, ", "))
				}
				return nil
			}},
			{Name: "engine", Check: func(context.Context) error {
				switch {
				case s.Engine.Closed() || s.state.Load() == stateStopping:
					return errors.New("stopping")
				case s.state.Load() != stateServing:
					return errors.New("starting: warming modules")
				}
				return nil
			}},
		},
	})
	// The cluster node starts before the services that use it and stops
	// after them (services stop in reverse order).
	s.services = append(s.services, s.Cluster, s.Propagation,
		&registryListener{pool: s.Pool, inv: s.Invoker, log: log, node: s.Cluster, forget: s.Records.ForgetFunction}, s.Pruner)
	if err := s.openDBTriggers(ctx); err != nil {
		return nil, err
	}
	if err := s.openSchedules(ctx); err != nil {
		return nil, err
	}
	reg.MustRegister(&queueCollector{sources: s.queues}, newDBQueryCollector(s.SQL), newLoadCollector(s))
	ok = true
	return s, nil
}

// SQLConfig derives the executor's settings from the server's.
func SQLConfig(cfg config.Config) sqlexec.Config {
	return sqlexec.Config{AdminURL: cfg.DatabaseURL, PoolSize: int32(cfg.RolePoolSize), RolePasswordSecret: cfg.SecretsKey}
}

// AddService adds a background part started after the core and stopped
// before it; call before Start.
func (s *Server) AddService(svc Service) { s.services = append(s.services, svc) }

// Start warms the modules of every enabled function (from the cache
// directory or the database's artifacts; those with neither are compiled
// in the background), then listens and begins serving; it returns once the
// port is open.
func (s *Server) Start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.startJS(ctx)
	if st, err := s.Invoker.WarmAll(ctx, s.Engine.MaxModules()); err != nil {
		s.log.Warn("warming modules", "error", err)
	} else {
		s.log.Info("modules warmed", "functions", st.Functions, "ready", st.Ready, "compiling", st.Compiling,
			"failed", st.Failed, "took", st.Took.String())
	}
	if err := s.Records.Start(ctx); err != nil {
		return err
	}
	if err := s.Follower.Start(ctx); err != nil {
		return err
	}
	for _, svc := range s.services {
		if err := svc.Start(ctx); err != nil {
			return err
		}
	}
	if err := s.startPprof(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		s.stopPprof()
		return fmt.Errorf("listening on %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	s.http = &http.Server{Handler: s.API, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serving http", "error", err)
		}
	}()
	s.state.CompareAndSwap(stateStarting, stateServing)
	s.log.Info("aerofn listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Stop stops gracefully: no new requests or trigger work; running calls
// finish until ctx ends and are interrupted then; every call is recorded
// before the records writer stops. It takes at most until ctx ends plus
// StopGrace. Safe to call more than once (later calls return nil).
func (s *Server) Stop(ctx context.Context) error {
	var errs []error
	s.stopOnce.Do(func() {
		s.state.Store(stateStopping)
		s.stopJS()
		// The one place calls are cut short, whoever started them.
		defer context.AfterFunc(ctx, func() {
			s.log.Warn("shutdown timeout reached; interrupting the calls still running")
			s.Invoker.Interrupt()
		})()
		drain, cancel := graceContext(ctx, StopGrace)
		defer cancel()
		// Intake stops everywhere at once, so that no trigger starts work
		// while HTTP drains; the services stop in reverse order of start.
		// Live log streams end first: HTTP's graceful stop waits for them.
		if err := s.Follower.Stop(drain); err != nil {
			errs = append(errs, err)
		}
		var httpErr error
		httpDone := make(chan struct{})
		go func() {
			defer close(httpDone)
			s.stopPprof()
			if s.http != nil {
				if err := s.http.Shutdown(drain); err != nil {
					httpErr = fmt.Errorf("stopping http: %w", err)
					_ = s.http.Close()
				}
			}
			s.wg.Wait()
		}()
		for i := len(s.services) - 1; i >= 0; i-- {
			if err := s.services[i].Stop(drain); err != nil {
				errs = append(errs, err)
			}
		}
		<-httpDone
		errs = append(errs, httpErr)
		// HTTP handlers and triggers are done; a call still counted here
		// is one whose caller gave up waiting above.
		if err := s.Invoker.Stop(drain); err != nil {
			errs = append(errs, err)
		}
		if s.cancel != nil {
			s.cancel()
		}
		errs = append(errs, s.waitJS(drain))
		errs = append(errs, s.closeParts(drain))
	})
	return errors.Join(errs...)
}

// graceContext is ctx's bound stretched by grace: it ends grace after ctx
// does, whatever ended ctx.
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	drain, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var t *time.Timer
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		t = time.AfterFunc(grace, cancel)
		mu.Unlock()
	})
	return drain, func() {
		stop()
		mu.Lock()
		if t != nil {
			t.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// closeParts stops what every call path uses, the records writer first so
// that it drains while the pool is still open. Each step is bounded by ctx.
func (s *Server) closeParts(ctx context.Context) error {
	var errs []error
	if s.Records != nil {
		errs = append(errs, s.Records.Stop(ctx))
	}
	if s.Engine != nil {
		errs = append(errs, s.Engine.Stop(ctx))
	}
	if s.Secrets != nil {
		// A reload of env() values stalled on the database would hold a
		// pool connection, and so the pool's Close, for up to 30 s.
		s.Secrets.Close()
	}
	if s.SQL != nil {
		s.SQL.Close()
	}
	if s.Pool != nil {
		s.Pool.Close()
	}
	return errors.Join(errs...)
}

// registryListener drops cached functions when any node changes them, and
// loads the module of the function's new current version ahead of its
// calls (from the artifact the changing node stored), then acknowledges
// the change to the node that made it (propagation.Ack). A stored artifact
// is announced on the same channel before the deploy commits; the listener
// fetches it then (Invoker.Prefetch).
type registryListener struct {
	pool *pgxpool.Pool
	inv  *invoker.Invoker
	log  *slog.Logger
	node *cluster.Node // whose liveness key the acknowledgements carry
	// forget drops a deleted function's metric series.
	forget func(name string)

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup // warming goroutines
}

// warmQueue bounds the functions waiting to be warmed; a notice that finds
// it full is dropped (the first call then fetches the artifact itself).
const warmQueue = 256

// listenWait bounds how long Start waits for the listener's LISTEN.
const listenWait = 5 * time.Second

// Start returns once the listener listens (or after listenWait, logged):
// the node is live to the others (its liveness lock) before this starts,
// so a change committed while it was not yet listening would never be
// acknowledged, and its deploy would wait the whole propagation timeout
// for this node.
func (l *registryListener) Start(ctx context.Context) error {
	ctx, l.cancel = context.WithCancel(ctx)
	l.done = make(chan struct{})
	warm := make(chan string, warmQueue)
	listening := make(chan struct{})
	var listened sync.Once
	onListen := func() { listened.Do(func() { close(listening) }) }
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case name := <-warm:
				if hash, ok := registry.ArtifactNotice(name); ok {
					if err := l.inv.Prefetch(ctx, hash); err != nil && ctx.Err() == nil {
						l.log.Warn("fetching announced artifact", "hash", hash, "error", err)
					}
					continue
				}
				fn, err := l.inv.WarmFunction(ctx, name)
				switch {
				case errors.Is(err, registry.ErrNotFound):
					l.forget(name)
				case err == nil:
					// The node that made the change may be waiting for this one.
					if err := propagation.Ack(ctx, l.pool, l.node.Key(), name, fn.UpdatedAt); err != nil && ctx.Err() == nil {
						l.log.Warn("acknowledging changed function", "function", name, "error", err)
					}
				case ctx.Err() == nil && !errors.Is(err, invoker.ErrNotReady):
					l.log.Warn("warming changed function", "function", name, "error", err)
				}
			}
		}
	}()
	go func() {
		defer close(l.done)
		defer l.wg.Wait()
		first := true
		for ctx.Err() == nil {
			if err := l.listen(ctx, warm, first, onListen); err != nil && ctx.Err() == nil {
				l.log.Warn("registry change listener", "error", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			first = false
		}
	}()
	select {
	case <-listening:
	case <-time.After(listenWait):
		l.log.Warn("the registry change listener does not listen yet", "waited", listenWait.String())
	case <-ctx.Done():
	}
	return nil
}

// listen listens for registry changes until ctx ends or the connection
// fails; onListen is called once it listens.
func (l *registryListener) listen(ctx context.Context, warm chan<- string, first bool, onListen func()) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{registry.ChangeChannel}.Sanitize()); err != nil {
		return err
	}
	onListen()
	defer conn.Exec(context.WithoutCancel(ctx), "UNLISTEN *") //nolint:errcheck // connection is reset on release anyway
	// Anything may have changed while we were not listening.
	l.inv.Invalidate("")
	if !first {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if _, err := l.inv.WarmAll(ctx, 0); err != nil && ctx.Err() == nil {
				l.log.Warn("warming modules after reconnecting", "error", err)
			}
		}()
	}
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if _, ok := registry.ArtifactNotice(n.Payload); !ok {
			l.inv.Invalidate(n.Payload)
		}
		select {
		case warm <- n.Payload:
		default:
		}
	}
}

func (l *registryListener) Stop(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		if l.cancel != nil {
			l.cancel()
			select {
			case <-l.done:
			case <-ctx.Done():
				err = fmt.Errorf("stopping registry listener: %w", ctx.Err())
			}
		}
	})
	return err
}

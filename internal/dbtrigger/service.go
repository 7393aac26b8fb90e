package dbtrigger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/aerodb/aerofn/internal/cluster"
	"github.com/aerodb/aerofn/internal/invoker"
	"github.com/aerodb/aerofn/internal/registry"
)

// Schema is where River's tables live, beside aerofn's own.
const Schema = "aerofn"

// Config wires a Service. Zero durations and sizes take their defaults.
type Config struct {
	Pool    *pgxpool.Pool // the admin pool (River, dispatcher, reaper)
	Invoker *invoker.Invoker
	Logger  *slog.Logger
	// Cluster is this node among the others: its name is the River client
	// id (river_job.attempted_by) and its row in aerofn.event_nodes; its
	// session is the node's liveness and holds the dispatch leadership.
	// Started and stopped by the caller (Start after it, Stop before it).
	Cluster *cluster.Node

	// Workers is how many deliveries run at once on this node (default 100).
	// A delivery mostly waits on Postgres (fetch, record, complete), so this
	// is far above the core count.
	Workers int
	// BatchSize is how many captured changes one dispatch pass moves into
	// River (default 1000).
	BatchSize int
	// PollInterval is how often the leader looks for work without being
	// notified (captured changes, held deliveries, ordered heads, dead
	// nodes); default 1 s.
	PollInterval time.Duration
	// DeadAfter is how long a node's connection must be gone before the jobs
	// it was running are handed to others (default 2 s).
	DeadAfter time.Duration
	// RetryBase is the first retry's delay; each later one is 4x the one
	// before, at most RetryMax, with ±25% jitter (defaults 1 s and 1 h).
	RetryBase, RetryMax time.Duration
	// FetchCooldown and FetchPollInterval tune River's producer (defaults
	// 2 ms and 100 ms): the cooldown bounds fetches per second, the poll
	// interval bounds how late a job is seen whose insert notification was
	// coalesced away.
	FetchCooldown, FetchPollInterval time.Duration
	// StopTimeout bounds how long Stop waits for running deliveries before
	// cancelling them (default 30 s).
	StopTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Workers <= 0 {
		c.Workers = 100
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	def(&c.PollInterval, time.Second)
	def(&c.DeadAfter, 2*time.Second)
	def(&c.RetryBase, time.Second)
	def(&c.RetryMax, time.Hour)
	def(&c.FetchCooldown, 2*time.Millisecond)
	def(&c.FetchPollInterval, 100*time.Millisecond)
	def(&c.StopTimeout, 30*time.Second)
	return c
}

// Service delivers captured changes on one node: every node runs River
// workers; one node at a time (the leader) also dispatches, releases held
// deliveries, feeds ordered functions and rescues dead nodes' jobs.
type Service struct {
	cfg      Config
	log      *slog.Logger
	client   *river.Client[pgx.Tx]
	clientID string
	leader   *cluster.Leadership

	mu        sync.Mutex
	stopped   bool // no registration of the node any more
	cancel    context.CancelFunc
	done      chan struct{}
	stopOnce  sync.Once
	startOnce sync.Once
}

// Open migrates River's tables (schema aerofn) and builds the service's
// River client, and has the cluster node register each of its sessions
// (call it before the node starts); nothing else runs until Start.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	if cfg.Pool == nil || cfg.Invoker == nil || cfg.Cluster == nil {
		return nil, errors.New("opening database triggers: Pool, Invoker and Cluster are required")
	}
	if err := MigrateRiver(ctx, cfg.Pool); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, clientID: cfg.Cluster.Name()}
	cfg.Cluster.OnConnect(s.registerNode)
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &worker{svc: s}); err != nil {
		return nil, fmt.Errorf("registering delivery worker: %w", err)
	}
	const maxFunctionTimeout = registry.MaxTimeout
	client, err := river.NewClient(riverpgxv5.New(cfg.Pool), &river.Config{
		ID:                  s.clientID,
		Schema:              Schema,
		Queues:              map[string]river.QueueConfig{QueueName: {MaxWorkers: cfg.Workers}},
		Workers:             workers,
		FetchOnlyKnownKinds: true,
		FetchCooldown:       cfg.FetchCooldown,
		FetchPollInterval:   cfg.FetchPollInterval,
		MaxAttempts:         DefaultMaxAttempts,
		// The invoker bounds a call by the function's own timeout (at most
		// 300 s); River's timeout only has to stay out of its way.
		JobTimeout: maxFunctionTimeout + time.Minute,
		// Dead nodes' jobs are rescued by the leader within seconds (see
		// reap); River's own rescuer stays as the last resort.
		RescueStuckJobsAfter:        maxFunctionTimeout + time.Hour,
		CancelledJobRetentionPeriod: 30 * 24 * time.Hour, // dead letters
		DiscardedJobRetentionPeriod: 30 * 24 * time.Hour, // dead letters
		CompletedJobRetentionPeriod: 24 * time.Hour,
		SoftStopTimeout:             cfg.StopTimeout,
		Logger:                      cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("creating river client: %w", err)
	}
	s.client = client
	return s, nil
}

// MigrateRiver brings River's tables in schema aerofn up to date, each
// migration in its own transaction (one adds an enum value the next uses),
// under a session advisory lock so that nodes starting together take turns.
func MigrateRiver(ctx context.Context, pool *pgxpool.Pool) error {
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: Schema})
	if err != nil {
		return fmt.Errorf("preparing river migrations: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring connection for river migrations: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, cluster.RiverMigrate); err != nil {
		return fmt.Errorf("taking river migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, cluster.RiverMigrate) //nolint:errcheck // the session ends anyway
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("applying river migrations: %w", err)
	}
	return nil
}

// Start starts the node's River workers and competes for the dispatch
// leadership. The cluster node must have started (its session registered
// this node). It returns at once.
func (s *Service) Start(ctx context.Context) error {
	var err error
	s.startOnce.Do(func() {
		if !s.cfg.Cluster.Up() {
			err = errors.New("starting database triggers: the cluster node has no session")
			return
		}
		ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
		if err = s.client.Start(ctx); err != nil {
			err = fmt.Errorf("starting river client: %w", err)
			return
		}
		s.leader = s.cfg.Cluster.Leadership(cluster.EventDispatcher)
		s.done = make(chan struct{})
		go func() {
			defer close(s.done)
			s.runLeader(ctx)
		}()
	})
	return err
}

// Stop lets running deliveries finish (River cancels their job contexts
// after StopTimeout; the server interrupts their calls when its own stop
// deadline passes), hands the dispatch leadership over and unregisters
// the node. If ctx ends
// while deliveries still run, Stop returns its error after unregistering.
// Safe to call more than once, and without Start.
func (s *Service) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		if s.cancel == nil {
			return
		}
		if err = s.client.Stop(ctx); err != nil {
			err = fmt.Errorf("stopping river client: %w", err)
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = s.client.StopAndCancel(hctx)
			cancel()
		}
		s.cancel()
		if s.done != nil {
			<-s.done
		}
		if s.leader != nil {
			if rerr := s.leader.Resign(ctx); rerr != nil {
				s.log.Warn("handing over dispatch", "error", rerr)
			}
		}
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := s.cfg.Pool.Exec(uctx, `DELETE FROM aerofn.event_nodes WHERE client_id = $1`, s.clientID); uerr != nil {
			s.log.Warn("unregistering node", "error", uerr)
		}
	})
	return err
}

// backoff is the delay before retry n (n = 1 after the first failure):
// RetryBase·4^(n-1), at most RetryMax, ±25% jitter so that the retries of a
// burst that failed together do not come back together.
func backoff(base, maxDelay time.Duration, n int) time.Duration {
	d := float64(base) * math.Pow(4, float64(max(n, 1)-1))
	d = min(d, float64(maxDelay))
	d *= 0.75 + 0.5*mrand.Float64()
	return time.Duration(d)
}

package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/cluster"
	"github.com/aerodb/aerofn/internal/invoker"
	"github.com/aerodb/aerofn/internal/scheduler/cronspec"
)

// Defaults of Config.
const (
	DefaultLockRetry = 250 * time.Millisecond
	DefaultGrace     = 10 * time.Second
	DefaultKeepRuns  = 1000
	DefaultMaxQueued = 100
)

// The scheduler's locks are the cluster node's: the ticker is the
// leadership cluster.Ticker (lock (cluster.NodeSpace, 0)), and a run's
// node_key is its node's liveness lock (cluster.NodeSpace, Node.Key()).
// The ticker is the node whose session is
//
//	SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
//	WHERE l.locktype = 'advisory' AND l.classid = 1634038627 AND l.objid = 0 AND l.objsubid = 2
//	  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())

// How often the ticker looks for runs of dead nodes, and prunes history.
const (
	sweepEvery = time.Second
	pruneEvery = time.Minute
	// maxWait bounds the ticker's sleep so that sweeps happen and a lost
	// notification costs at most this much.
	maxWait = time.Second
	// stepTimeout bounds one pass of the control loop.
	stepTimeout = 15 * time.Second
)

// Config wires a Scheduler.
type Config struct {
	Pool    *pgxpool.Pool
	Invoker *invoker.Invoker
	Logger  *slog.Logger
	// Cluster is this node among the others: its name is recorded in the
	// runs it claims, its liveness lock says whether they are still going,
	// and the ticker is one of its leaderships. Started and stopped by the
	// caller (Start after it, Stop before it).
	Cluster *cluster.Node
	// LockRetry is how often a node polls for runs it was not told about
	// (default 250 ms); the node competes for the ticker at its own pace
	// (cluster.Config.Retry).
	LockRetry time.Duration
	// Grace: a tick first seen later than this was missed (no node was up)
	// and falls under the trigger's catch_up policy; a later one is only
	// late, and runs (default 10 s).
	Grace time.Duration
	// KeepRuns is how many finished runs are kept per schedule trigger
	// (default 1000).
	KeepRuns int
	// MaxQueued bounds the runs an overlap "queue" trigger keeps waiting;
	// further ticks are recorded as skipped_overlap (default 100).
	MaxQueued int
}

// Scheduler runs the schedule triggers of every function: one node at a
// time (the ticker) turns due ticks into runs; every node claims and runs
// them. See doc.go.
type Scheduler struct {
	cfg  Config
	log  *slog.Logger
	inv  *invoker.Invoker
	node string
	// busyUntil (unix nanoseconds): this node was at its concurrency limit
	// and leaves runs to other nodes until then.
	busyUntil atomic.Int64

	wakeCh    chan struct{}
	ticker    *cluster.Leadership
	wakes     *cluster.Subscription
	cancel    context.CancelFunc
	loopDone  chan struct{}
	inflight  sync.WaitGroup
	startOnce sync.Once
	stopOnce  sync.Once

	// Owned by the control loop.
	// work is the pool connection the control loop ticks and claims on,
	// held from pass to pass: its prepared statements stay warm, so that a
	// backlog of runs drains at a query round trip per run.
	work      *pgxpool.Conn
	leading   bool          // as of the last pass, for the logs
	nextDue   time.Time     // by our clock: when the ticker has work next
	claimOnly bool          // the next pass was asked for to claim runs only
	offset    time.Duration // database clock minus ours
	lastSweep time.Time
	lastPrune time.Time
	failures  int // passes failed in a row
	specs     map[string]*cronspec.Spec
}

// New returns a Scheduler on the cluster node cfg.Cluster; nothing runs
// until Start.
func New(cfg Config) *Scheduler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LockRetry <= 0 {
		cfg.LockRetry = DefaultLockRetry
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.KeepRuns <= 0 {
		cfg.KeepRuns = DefaultKeepRuns
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	var node string
	if cfg.Cluster != nil {
		node = cfg.Cluster.Name()
	}
	return &Scheduler{cfg: cfg, log: cfg.Logger.With("component", "scheduler", "node", node), inv: cfg.Invoker,
		node: node, wakeCh: make(chan struct{}, 1), specs: map[string]*cronspec.Spec{}}
}

// Node is this node's name, as recorded in the runs it claims.
func (s *Scheduler) Node() string { return s.node }

// Start competes for the ticker and begins claiming; it returns at once.
func (s *Scheduler) Start(ctx context.Context) error {
	var err error
	s.startOnce.Do(func() {
		if s.cfg.Cluster == nil || s.cfg.Pool == nil {
			err = errors.New("starting scheduler: Pool and Cluster are required")
			return
		}
		ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
		s.loopDone = make(chan struct{})
		s.wakes = s.cfg.Cluster.Listen(WakeChannel)
		s.ticker = s.cfg.Cluster.Leadership(cluster.Ticker)
		go s.loop(ctx)
	})
	return err
}

// Stop stops ticking and claiming, hands the ticker to another node, and
// waits for the runs in progress here to end and be recorded. The node's
// session, whose liveness lock tells other nodes that this node's
// unfinished runs are interrupted, closes when the cluster node stops,
// after this. If ctx ends before the runs do, Stop returns ctx's error (the
// server interrupts calls at that point, so the runs end moments later).
// Safe to call more than once, and without Start.
func (s *Scheduler) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		s.startOnce.Do(func() {}) // a later Start does nothing
		if s.cancel == nil {
			return
		}
		s.cancel()
		<-s.loopDone
		s.wakes.Close()
		if rerr := s.ticker.Resign(ctx); rerr != nil {
			s.log.Warn("handing over the ticker", "error", rerr)
		} else if s.leading {
			s.log.Info("this node stopped ticking")
		}
		ran := make(chan struct{})
		go func() { s.inflight.Wait(); close(ran) }()
		select {
		case <-ran:
		case <-ctx.Done():
			err = fmt.Errorf("stopping scheduler: runs still in progress: %w", ctx.Err())
		}
	})
	return err
}

// wake asks the control loop for a pass now.
func (s *Scheduler) wake() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

func (s *Scheduler) loop(ctx context.Context) {
	defer close(s.loopDone)
	defer func() {
		if s.work != nil {
			s.work.Release()
			s.work = nil
		}
	}()
	for {
		// A pass is not cut short by Stop: it is bounded by stepTimeout, and
		// a tick or claim half done is rolled back anyway.
		wait := s.step()
		if ctx.Err() != nil {
			return
		}
		var acquired <-chan struct{}
		if !s.leading {
			acquired = s.ticker.Acquired()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wakeCh:
			t.Stop()
		case n := <-s.wakes.C():
			t.Stop()
			// A run inserted, ended or handed back only frees a run to
			// claim; anything else (a schedule changed, a resync after the
			// node's session was re-made) may have changed what is due.
			s.claimOnly = !n.Resync && claimOnlyPayloads[n.Payload]
		case <-acquired:
			t.Stop()
		case <-t.C:
		}
	}
}

// claimOnlyPayloads are the notifications on WakeChannel that only free
// runs to claim: the ticker need not look at the schedules before its
// next tick is due.
var claimOnlyPayloads = map[string]bool{"tick": true, "done": true, "released": true, "interrupted": true}

// step is one pass of the control loop: tick and sweep if this node holds
// the ticker (unless the pass is only to claim and no tick is due yet),
// then claim. It returns how long to sleep unless woken.
//
// Ticks go through a pool connection, not the session that holds the ticker lock:
// a ticker that lost its lock a moment ago may finish one tick beside its
// successor, which is harmless (due schedules are row-locked and their
// runs keyed by tick; see doc.go).
func (s *Scheduler) step() time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	if s.work == nil {
		c, err := s.cfg.Pool.Acquire(ctx)
		if err != nil {
			return s.fail("acquiring a connection", err)
		}
		s.work = c
	}
	wait := s.cfg.LockRetry
	leading := s.ticker.IsLeader()
	if leading != s.leading {
		if leading {
			s.log.Info("this node is now the ticker")
		} else {
			s.log.Warn("this node is no longer the ticker")
		}
		s.leading = leading
	}
	claimOnly := s.claimOnly
	s.claimOnly = false
	if leading && claimOnly && time.Now().Before(s.nextDue) {
		wait = time.Until(s.nextDue)
	} else if leading {
		w, err := s.tick(ctx)
		if err != nil {
			return s.fail("ticking", err)
		}
		wait = w
		s.nextDue = time.Now().Add(w)
		if time.Since(s.lastSweep) >= sweepEvery {
			if err := s.sweep(ctx); err != nil {
				return s.fail("sweeping runs of stopped nodes", err)
			}
			s.lastSweep = time.Now()
		}
		if time.Since(s.lastPrune) >= pruneEvery {
			if err := s.prune(ctx); err != nil {
				return s.fail("pruning run history", err)
			}
			s.lastPrune = time.Now()
		}
	}
	if !s.cfg.Cluster.Up() {
		// No liveness lock to claim runs under: the node is reconnecting.
		return wait
	}
	if until := s.busyUntil.Load(); until == 0 || time.Now().UnixNano() >= until {
		if err := s.claimAll(ctx); err != nil {
			return s.fail("claiming runs", err)
		}
	}
	s.failures = 0
	return wait
}

// fail logs a failed pass and returns how long to wait before the next:
// briefly at first (a ticker that waits a second is a second late), then
// backing off.
func (s *Scheduler) fail(doing string, err error) time.Duration {
	s.log.Warn(doing, "error", err)
	s.failures++
	if s.work != nil {
		// The pool destroys it if it broke or was left mid-query.
		s.work.Release()
		s.work = nil
	}
	return min(50*time.Millisecond<<min(s.failures, 5), time.Second)
}

// spec parses (and caches) a stored schedule.
func (s *Scheduler) spec(cron, tz string) (*cronspec.Spec, error) {
	k := cron + "\x00" + tz
	if sp, ok := s.specs[k]; ok {
		return sp, nil
	}
	sp, err := cronspec.Parse(cron, tz)
	if err != nil {
		return nil, err
	}
	if len(s.specs) > 10_000 {
		clear(s.specs)
	}
	s.specs[k] = sp
	return sp, nil
}

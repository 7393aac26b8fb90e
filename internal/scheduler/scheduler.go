package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/cluster"
	"github.com/aerodb/aerofn/internal/invoker"
	"github.com/aerodb/aerofn/internal/scheduler/cronspec"
)

// Defaults of Config.
const (
	DefaultPoll      = 250 * time.Millisecond
	DefaultGrace     = 10 * time.Second
	DefaultKeepRuns  = 1000
	DefaultMaxQueued = 100
)

// The ticker is the node holding the leadership cluster.Ticker; its lock,
// (cluster.NodeSpace, 0), is held by the session of
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
	// stepTimeout bounds one pass of the control loop, so that a hung
	// connection is dropped and re-made rather than waited on for ever.
	stepTimeout = 15 * time.Second
)

// Config wires a Scheduler.
type Config struct {
	Pool    *pgxpool.Pool
	Invoker *invoker.Invoker
	// Cluster is this node: its name and liveness key are recorded in the
	// runs it claims, its session runs the ticks and claims, and the ticker
	// is its leadership cluster.Ticker. Required.
	Cluster *cluster.Node
	Logger  *slog.Logger
	// Poll is how often a node polls for runs it was not told about
	// (default 250 ms).
	Poll time.Duration
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
	node *cluster.Node
	// busyUntil (unix nanoseconds): this node was at its concurrency limit
	// and leaves runs to other nodes until then.
	busyUntil atomic.Int64

	wakeCh   chan struct{}
	cancel   context.CancelFunc
	loopDone chan struct{}
	lsnDone  chan struct{}
	inflight sync.WaitGroup
	stopOnce sync.Once
	ticker   *cluster.Leadership

	// Owned by the control loop (the functions it hands to the node's
	// session run while it waits for them).
	leading   bool          // the ticker at the last pass
	offset    time.Duration // database clock minus ours
	lastSweep time.Time
	lastPrune time.Time
	failures  int // passes failed in a row
	specs     map[string]*cronspec.Spec
}

// New returns a Scheduler; nothing runs until Start.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Pool == nil || cfg.Invoker == nil || cfg.Cluster == nil {
		return nil, errors.New("creating the scheduler: Pool, Invoker and Cluster are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
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
	return &Scheduler{cfg: cfg, log: cfg.Logger.With("component", "scheduler", "node", cfg.Cluster.Name()), inv: cfg.Invoker,
		node: cfg.Cluster, wakeCh: make(chan struct{}, 1), specs: map[string]*cronspec.Spec{}}, nil
}

// Start competes for the ticker leadership and begins claiming; it returns
// at once. The cluster node runs the scheduler's work on its session, so
// it starts first and stops after the scheduler.
func (s *Scheduler) Start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.loopDone = make(chan struct{})
	s.lsnDone = make(chan struct{})
	s.ticker = s.node.Leadership(cluster.Ticker)
	sub := s.node.Listen(WakeChannel)
	go s.listen(ctx, sub)
	go s.loop(ctx)
	return nil
}

// Stop stops ticking and claiming, hands the ticker leadership to another
// node and waits for the runs in progress here to end and be recorded. The
// node's session, whose liveness lock tells other nodes that this node's
// unfinished runs are interrupted, closes when the cluster node stops,
// after this. If ctx ends before the runs do, Stop returns ctx's error
// (the server interrupts calls at that point, so the runs end moments
// later). Safe to call more than once, and without Start.
func (s *Scheduler) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		if s.cancel == nil {
			return
		}
		s.cancel()
		<-s.loopDone
		<-s.lsnDone
		if rerr := s.ticker.Resign(ctx); rerr != nil {
			s.log.Warn("handing the ticker over", "error", rerr)
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
	for {
		// A pass is not cut short by Stop: a query cancelled half way would
		// cost the node its session, and with it the liveness lock of runs
		// in progress.
		wait := s.step()
		if ctx.Err() != nil {
			return
		}
		// A node that is not the ticker passes at once when it becomes it.
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
		case <-acquired:
			t.Stop()
		case <-t.C:
		}
	}
}

// step is one pass of the control loop, on the node's session: tick and
// sweep if this node is the ticker, then claim. It returns how long to
// sleep unless woken.
func (s *Scheduler) step() time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	wait := s.cfg.Poll
	var doing string
	err := s.node.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		// The ticker's lock is on this session, and does not change hands
		// while this function runs: a tick commits only while this node
		// holds it (cluster.Node.Do).
		leading := s.ticker.IsLeader()
		if leading != s.leading {
			s.leading = leading
			s.lastSweep, s.lastPrune = time.Time{}, time.Time{}
		}
		if leading {
			// Sweep first: a new ticker that took over from a dead or frozen
			// one finds its runs still running, and would otherwise skip
			// the late ticks as overlapping them.
			if time.Since(s.lastSweep) >= sweepEvery {
				doing = "sweeping runs of stopped nodes"
				if err := s.sweep(ctx, conn); err != nil {
					return err
				}
				s.lastSweep = time.Now()
			}
			doing = "ticking"
			w, err := s.tick(ctx, conn)
			if err != nil {
				return err
			}
			wait = w
		}
		if until := s.busyUntil.Load(); until == 0 || time.Now().UnixNano() >= until {
			doing = "claiming runs"
			if err := s.claimAll(ctx, conn); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && s.leading && time.Since(s.lastPrune) >= pruneEvery {
		doing = "pruning run history"
		if err = s.prune(ctx); err == nil {
			s.lastPrune = time.Now()
		}
	}
	if err != nil {
		if doing == "" {
			doing = "waiting for the node session"
		}
		return s.fail(doing, err)
	}
	s.failures = 0
	return wait
}

// fail logs a failed pass and returns how long to wait before the next:
// briefly at first (a ticker that waits a second is a second late), then
// backing off. A session left broken is made again by the cluster node.
func (s *Scheduler) fail(doing string, err error) time.Duration {
	if !errors.Is(err, cluster.ErrNoSession) { // the node logs its session's troubles
		s.log.Warn(doing, "error", err)
	}
	s.failures++
	return min(50*time.Millisecond<<min(s.failures, 5), time.Second)
}

// listen turns notifications on WakeChannel into passes of the loop; a
// Resync (the session listens anew and may have missed some) is one too.
func (s *Scheduler) listen(ctx context.Context, sub *cluster.Subscription) {
	defer close(s.lsnDone)
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.C():
			s.wake()
		}
	}
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

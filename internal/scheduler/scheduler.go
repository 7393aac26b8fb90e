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
	DefaultLockRetry = 250 * time.Millisecond
	DefaultGrace     = 10 * time.Second
	DefaultKeepRuns  = 1000
	DefaultMaxQueued = 100
)

// The scheduler's locks are cluster.NodeSpace with 0 (the ticker) and
// with a node's key (its liveness). The ticker is the session of
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
	// tickerStaleAfter: a ticker whose session has run no statement for
	// this long (it runs one at least every maxWait) is frozen or cut off,
	// and another node ends its session to take over.
	tickerStaleAfter = 5 * time.Second
)

// Config wires a Scheduler.
type Config struct {
	Pool    *pgxpool.Pool
	Invoker *invoker.Invoker
	Logger  *slog.Logger
	// Node names this node in runs and in its scheduler session's
	// application_name; default cluster.NewNodeName().
	Node string
	// LockRetry is how often a node that is not the ticker tries to become
	// it, and polls for runs it was not told about (default 250 ms).
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
	cfg     Config
	log     *slog.Logger
	inv     *invoker.Invoker
	nodeKey atomic.Int32
	// busyUntil (unix nanoseconds): this node was at its concurrency limit
	// and leaves runs to other nodes until then.
	busyUntil atomic.Int64

	wakeCh   chan struct{}
	cancel   context.CancelFunc
	loopDone chan struct{}
	lsnDone  chan struct{}
	inflight sync.WaitGroup
	stopOnce sync.Once

	// Owned by the control loop (and by Stop once the loop has ended).
	conn      *pgx.Conn
	leader    bool
	offset    time.Duration // database clock minus ours
	lastSweep time.Time
	lastPrune time.Time
	lastEvict time.Time // last look for a frozen ticker
	failures  int       // passes failed in a row
	specs     map[string]*cronspec.Spec
}

// New returns a Scheduler; nothing runs until Start.
func New(cfg Config) *Scheduler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Node == "" {
		cfg.Node = cluster.NewNodeName()
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
	s := &Scheduler{cfg: cfg, log: cfg.Logger.With("component", "scheduler", "node", cfg.Node), inv: cfg.Invoker,
		wakeCh: make(chan struct{}, 1), specs: map[string]*cronspec.Spec{}}
	s.nodeKey.Store(cluster.NewNodeKey())
	return s
}

// Node is this node's name, as recorded in the runs it claims.
func (s *Scheduler) Node() string { return s.cfg.Node }

// Start begins ticking (if this node wins the lock) and claiming; it
// returns at once.
func (s *Scheduler) Start(ctx context.Context) error {
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.loopDone = make(chan struct{})
	s.lsnDone = make(chan struct{})
	go s.listen(ctx)
	go s.loop(ctx)
	return nil
}

// Stop stops ticking and claiming, hands the ticker lock to another node,
// waits for the runs in progress here to end and be recorded, and only then
// closes the scheduler session, whose liveness lock tells other nodes that
// this node's unfinished runs are interrupted. If ctx ends before the runs
// do, the session is closed anyway and Stop returns ctx's error (the server
// interrupts calls at that point, so the runs end moments later). Safe to
// call more than once, and without Start.
func (s *Scheduler) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		if s.cancel == nil {
			return
		}
		s.cancel()
		<-s.loopDone
		<-s.lsnDone
		ran := make(chan struct{})
		go func() { s.inflight.Wait(); close(ran) }()
		select {
		case <-ran:
		case <-ctx.Done():
			err = fmt.Errorf("stopping scheduler: runs still in progress: %w", ctx.Err())
		}
		if s.conn != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = s.conn.Close(cctx)
			cancel()
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
	defer s.resign()
	for {
		// A pass is not cut short by Stop: a query cancelled half way could
		// cost the session, and with it the liveness lock of runs in progress.
		wait := s.step()
		if ctx.Err() != nil {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wakeCh:
			t.Stop()
		case <-t.C:
		}
	}
}

// step is one pass of the control loop: (re)connect, try to become the
// ticker, tick, sweep, claim. It returns how long to sleep unless woken.
func (s *Scheduler) step() time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	if s.conn == nil || s.conn.IsClosed() {
		s.leader = false
		if err := s.connect(ctx); err != nil {
			s.log.Warn("connecting the scheduler session", "error", err)
			return time.Second
		}
	}
	wait := s.cfg.LockRetry
	if !s.leader {
		var ok bool
		if err := s.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, cluster.NodeSpace, cluster.TickerObject).Scan(&ok); err != nil {
			return s.fail(ctx, "trying the ticker lock", err)
		}
		if ok {
			s.leader = true
			s.log.Info("this node is now the ticker")
		} else if time.Since(s.lastEvict) >= time.Second {
			if err := s.evictStaleTicker(ctx); err != nil {
				return s.fail(ctx, "checking on the ticker", err)
			}
			s.lastEvict = time.Now()
		}
	}
	if s.leader {
		w, err := s.tick(ctx)
		if err != nil {
			return s.fail(ctx, "ticking", err)
		}
		wait = w
		if time.Since(s.lastSweep) >= sweepEvery {
			if err := s.sweep(ctx); err != nil {
				return s.fail(ctx, "sweeping runs of stopped nodes", err)
			}
			s.lastSweep = time.Now()
		}
		if time.Since(s.lastPrune) >= pruneEvery {
			if err := s.prune(ctx); err != nil {
				return s.fail(ctx, "pruning run history", err)
			}
			s.lastPrune = time.Now()
		}
	}
	if until := s.busyUntil.Load(); until == 0 || time.Now().UnixNano() >= until {
		if err := s.claimAll(ctx); err != nil {
			return s.fail(ctx, "claiming runs", err)
		}
	}
	s.failures = 0
	return wait
}

// fail logs a failed pass and returns how long to wait before the next:
// briefly at first (a ticker that waits a second is a second late), then
// backing off. A broken session is dropped (and with it the ticker lock:
// another node takes over); the next pass reconnects.
func (s *Scheduler) fail(ctx context.Context, doing string, err error) time.Duration {
	s.log.Warn(doing, "error", err)
	s.failures++
	if s.conn != nil && !s.conn.IsClosed() && ctx.Err() != nil {
		// A pass that ran out of time may have left the session mid-query.
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.conn.Close(cctx)
		cancel()
	}
	if s.conn == nil || s.conn.IsClosed() {
		if s.leader {
			s.log.Warn("this node is no longer the ticker")
		}
		s.leader = false
	}
	return min(50*time.Millisecond<<min(s.failures, 5), time.Second)
}

// connect opens the scheduler session and takes this node's liveness lock.
func (s *Scheduler) connect(ctx context.Context) error {
	cc := s.cfg.Pool.Config().ConnConfig.Copy()
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["application_name"] = cluster.ApplicationNamePrefix + s.cfg.Node
	// The server drops this session (and its locks) within seconds of losing
	// sight of the node, rather than after the default two hours of TCP
	// keepalive; idle_in_transaction bounds a node that hangs mid-tick.
	cc.RuntimeParams["tcp_keepalives_idle"] = "5"
	cc.RuntimeParams["tcp_keepalives_interval"] = "2"
	cc.RuntimeParams["tcp_keepalives_count"] = "3"
	cc.RuntimeParams["tcp_user_timeout"] = "10000"
	cc.RuntimeParams["idle_in_transaction_session_timeout"] = "30000"
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	// The key is random; on the rare clash with a live node, pick another.
	for range 8 {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, cluster.NodeSpace, s.nodeKey.Load()).Scan(&ok); err != nil {
			_ = conn.Close(ctx)
			return fmt.Errorf("taking the node lock: %w", err)
		}
		if ok {
			s.conn = conn
			return nil
		}
		s.nodeKey.Store(cluster.NewNodeKey())
	}
	_ = conn.Close(ctx)
	return errors.New("taking the node lock: every key tried is held")
}

// evictStaleTicker ends the session of a ticker that has stopped working
// while keeping its lock: a process that is frozen (SIGSTOP, a hung
// machine) or cut off behind a network that still answers TCP keepalives.
// Its locks free with its session; the next pass takes the ticker lock.
func (s *Scheduler) evictStaleTicker(ctx context.Context) error {
	var node string
	// MATERIALIZED: the stale test must be done before, never after, the
	// planner decides to call pg_terminate_backend.
	err := s.conn.QueryRow(ctx, `WITH stale AS MATERIALIZED (
			SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory' AND l.granted AND l.classid::int8 = $1 AND l.objid = 0 AND l.objsubid = 2
				AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
				AND a.state <> 'active' AND a.state_change < clock_timestamp() - $2::interval)
		SELECT application_name FROM stale WHERE pg_terminate_backend(pid)`, int64(cluster.NodeSpace), tickerStaleAfter).Scan(&node)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	s.log.Warn("ended the session of a ticker that stopped responding", "ticker", node, "silent_for_more_than", tickerStaleAfter.String())
	return nil
}

// resign releases the ticker lock so that another node takes over at once;
// the session itself stays open until the runs in progress end.
func (s *Scheduler) resign() {
	if !s.leader || s.conn == nil || s.conn.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, cluster.NodeSpace, cluster.TickerObject); err != nil {
		s.log.Warn("releasing the ticker lock", "error", err)
		_ = s.conn.Close(ctx)
	}
	s.leader = false
	s.log.Info("this node stopped ticking")
}

// listen turns notifications on WakeChannel into passes of the loop.
func (s *Scheduler) listen(ctx context.Context) {
	defer close(s.lsnDone)
	for ctx.Err() == nil {
		if err := s.listenOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("listening for schedule changes", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (s *Scheduler) listenOnce(ctx context.Context) error {
	conn, err := s.cfg.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring a connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{WakeChannel}.Sanitize()); err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "UNLISTEN *") //nolint:errcheck // the connection is reset on release anyway
	s.wake()                                                  // anything may have happened while not listening
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return fmt.Errorf("waiting for notifications: %w", err)
		}
		s.wake()
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

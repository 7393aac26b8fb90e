package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults of Config.
const (
	DefaultRetry      = 250 * time.Millisecond
	DefaultStaleAfter = 5 * time.Second
)

const (
	// heartbeat bounds how long the session goes without a statement, so
	// that other nodes can tell a frozen node (silent for StaleAfter) from
	// a live one.
	heartbeat = time.Second
	// statementTimeout bounds one pass of the session loop, so that a hung
	// connection is dropped and re-made rather than waited on for ever.
	statementTimeout = 15 * time.Second
	// evictEvery is how often a node that competes for a leadership looks
	// for a holder gone silent.
	evictEvery = time.Second
)

// Config wires a Node. Zero values take their defaults.
type Config struct {
	// Pool gives the connection settings of the node's session (copied;
	// the session is a connection of its own, outside the pool).
	Pool   *pgxpool.Pool
	Name   string // default NewNodeName()
	Logger *slog.Logger
	// Retry is how often a node competes for the leaderships it wants and
	// does not hold (default 250 ms): a leader that dies is replaced within
	// about this much.
	Retry time.Duration
	// StaleAfter: a leader whose session has run no statement for this long
	// (it runs one at least every second) is frozen or cut off, and a node
	// that wants its leadership ends that session (default 5 s).
	StaleAfter time.Duration
}

// Node is this process among the nodes sharing a database: its name, and
// its session, one dedicated connection kept up for as long as the node
// runs, on which it holds its liveness lock and its leaderships and
// listens for notifications. One goroutine owns the session; services
// reach it through Leadership, Listen, OnConnect and Do. See locks.go.
type Node struct {
	cfg Config
	log *slog.Logger

	key   atomic.Int32 // second key of the liveness lock of the current session
	up    atomic.Bool  // a session is open and its liveness lock held
	poke  chan struct{}
	work  chan work // Do to the session's goroutine
	mu    sync.Mutex
	hooks []func(ctx context.Context, conn *pgx.Conn) error
	roles map[Role]*Leadership
	subs  map[string]map[*Subscription]struct{}

	startOnce sync.Once
	stopOnce  sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
}

// New returns a Node; nothing connects until Start.
func New(cfg Config) *Node {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if cfg.Name == "" {
		cfg.Name = NewNodeName()
	}
	if cfg.Retry <= 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("component", "cluster", "node", cfg.Name), poke: make(chan struct{}, 1),
		work: make(chan work), roles: map[Role]*Leadership{}, subs: map[string]map[*Subscription]struct{}{}}
	n.key.Store(NewNodeKey())
	return n
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Key is the second key of the node's liveness lock (NodeSpace, Key()),
// held by its session: a record that names this key belongs to a live node
// while the lock is held.
func (n *Node) Key() int32 { return n.key.Load() }

// Up tells whether the node's session is open and holds its liveness lock.
func (n *Node) Up() bool { return n.up.Load() }

// OnConnect adds fn, run on every new session of the node (the first, and
// each after a reconnect) before it competes for leaderships or listens.
// An error drops the session, which is made again. Call before Start.
func (n *Node) OnConnect(fn func(ctx context.Context, conn *pgx.Conn) error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hooks = append(n.hooks, fn)
}

// NewNodeKey is a random positive int32: the second key of a node's
// liveness lock in NodeSpace.
func NewNodeKey() int32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	k := int32(binary.BigEndian.Uint32(b[:]) & 0x7fffffff)
	if k == 0 {
		k = 1
	}
	return k
}

// Start opens the node's session (its first attempt must succeed) and
// keeps it up until Stop. It returns once the session is open.
func (n *Node) Start(ctx context.Context) error {
	var err error
	n.startOnce.Do(func() {
		if n.cfg.Pool == nil {
			err = errors.New("starting cluster node: Pool is required")
			return
		}
		var conn *pgx.Conn
		if conn, err = n.connect(ctx); err != nil {
			return
		}
		lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		n.mu.Lock()
		n.cancel, n.done = cancel, done
		n.mu.Unlock()
		go func() {
			defer close(done)
			n.run(lctx, conn)
		}()
	})
	return err
}

// Stop closes the session, which releases every lock the node holds: its
// leaderships end (Lost is closed) and other nodes take them over at once.
// Stop it after the services that use it. Safe to call more than once,
// and without Start.
func (n *Node) Stop(ctx context.Context) error {
	var err error
	n.stopOnce.Do(func() {
		n.startOnce.Do(func() {}) // a later Start does nothing
		n.mu.Lock()
		cancel, done := n.cancel, n.done
		n.mu.Unlock()
		if cancel == nil {
			return
		}
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("stopping cluster node: %w", ctx.Err())
		}
	})
	return err
}

func (n *Node) wake() {
	select {
	case n.poke <- struct{}{}:
	default:
	}
}

// connect opens a session, takes the liveness lock and runs the hooks.
func (n *Node) connect(ctx context.Context) (*pgx.Conn, error) {
	cc := n.cfg.Pool.Config().ConnConfig.Copy()
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["application_name"] = ApplicationNamePrefix + n.cfg.Name
	// The server drops this session (and its locks) within seconds of losing
	// sight of the node, rather than after the default two hours of TCP
	// keepalive.
	cc.RuntimeParams["tcp_keepalives_idle"] = "5"
	cc.RuntimeParams["tcp_keepalives_interval"] = "2"
	cc.RuntimeParams["tcp_keepalives_count"] = "3"
	cc.RuntimeParams["tcp_user_timeout"] = "10000"
	cc.RuntimeParams["idle_in_transaction_session_timeout"] = "30000"
	// No statement on the session waits long for a lock (one held by a
	// frozen process's transaction, say): the work it was doing fails and
	// is tried again, rather than the session, with its leaderships and
	// notifications, standing still behind it.
	cc.RuntimeParams["lock_timeout"] = "5000"
	ctx, cancel := context.WithTimeout(ctx, statementTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("opening the node session: %w", err)
	}
	fail := func(err error) (*pgx.Conn, error) {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
		return nil, err
	}
	// The key is random; on the rare clash with a live node, pick another.
	locked := false
	for range 8 {
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, NodeSpace, n.key.Load()).Scan(&locked); err != nil {
			return fail(fmt.Errorf("taking the liveness lock: %w", err))
		}
		if locked {
			break
		}
		n.key.Store(NewNodeKey())
	}
	if !locked {
		return fail(errors.New("taking the liveness lock: every key tried is held"))
	}
	n.mu.Lock()
	hooks := append([]func(context.Context, *pgx.Conn) error(nil), n.hooks...)
	n.mu.Unlock()
	for _, h := range hooks {
		if err := h(ctx, conn); err != nil {
			return fail(fmt.Errorf("setting up the node session: %w", err))
		}
	}
	n.up.Store(true)
	return conn, nil
}

// run keeps the session up until ctx ends: each pass syncs the channels it
// listens on, releases resigned leaderships, competes for the others; in
// between, it waits for notifications and runs the functions handed to Do.
func (n *Node) run(ctx context.Context, conn *pgx.Conn) {
	s := &session{conn: conn, listening: map[string]bool{}}
	defer func() { n.release(s); n.drop(s, nil) }()
	failures := 0
	var next time.Time // when the next pass is due
	for ctx.Err() == nil {
		if s.conn == nil {
			conn, err := n.connect(ctx)
			if err != nil {
				if ctx.Err() == nil {
					n.log.Warn("node session", "error", err)
				}
				failures++
				sleep(ctx, min(100*time.Millisecond<<min(failures, 4), time.Second))
				continue
			}
			s = &session{conn: conn, listening: map[string]bool{}}
			next = time.Time{}
		}
		failures = 0
		var err error
		if !time.Now().Before(next) {
			var wait time.Duration
			wait, err = n.pass(ctx, s)
			next = time.Now().Add(wait)
		}
		if err == nil {
			var w work
			var poked bool
			w, poked, err = n.wait(ctx, s, time.Until(next))
			if poked {
				next = time.Time{}
			}
			switch {
			case w.fn == nil:
			case err != nil:
				if ctx.Err() == nil {
					n.lose(s, err) // before Do returns, as in serve
				}
				w.done <- fmt.Errorf("%w: %w", ErrNoSession, err)
			default:
				n.serve(s, w)
			}
		}
		if err != nil && ctx.Err() == nil {
			n.lose(s, err)
		}
	}
}

// lose drops a session that failed and leaves s without a connection:
// the loop makes another.
func (n *Node) lose(s *session, err error) {
	if s.conn == nil {
		return
	}
	n.log.Warn("node session lost; reconnecting", "error", err)
	n.drop(s, err)
	s.conn = nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// session is one connection of the node and what it holds.
type session struct {
	conn      *pgx.Conn
	listening map[string]bool
	lastEvict time.Time
}

// release frees the session's locks on Stop, so that they are gone from
// pg_locks when Stop returns: a closed connection's backend exits, and
// frees them, only some time after the close.
func (n *Node) release(s *session) {
	if s.conn == nil || s.conn.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := s.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`); err != nil {
		n.log.Warn("releasing the node's locks", "error", err)
	}
}

// drop closes the session: every leadership held on it is lost.
func (n *Node) drop(s *session, _ error) {
	if s.conn == nil {
		return
	}
	n.up.Store(false)
	cctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = s.conn.Close(cctx)
	cancel()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.roles {
		if l.held {
			n.log.Warn("leadership lost with the node session", "role", l.role.Name)
			l.lose()
		}
	}
	for _, subs := range n.subs {
		for sub := range subs {
			sub.ready = false
		}
	}
}

// pass runs the session's statements of one round, and returns how long
// to wait before the next.
func (n *Node) pass(ctx context.Context, s *session) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, statementTimeout)
	defer cancel()
	ran := false
	if err := n.syncListens(ctx, s, &ran); err != nil {
		return 0, err
	}
	n.mu.Lock()
	roles := make([]*Leadership, 0, len(n.roles))
	for _, l := range n.roles {
		roles = append(roles, l)
	}
	n.mu.Unlock()
	wait := heartbeat
	evict := time.Since(s.lastEvict) >= evictEvery
	for _, l := range roles {
		n.mu.Lock()
		wanted, held := l.wanted, l.held
		n.mu.Unlock()
		switch {
		case held && !wanted:
			ran = true
			if err := n.unlock(ctx, s, l); err != nil {
				return 0, err
			}
			n.mu.Lock()
			l.lose()
			n.mu.Unlock()
			n.log.Info("leadership released", "role", l.role.Name)
		case !held && wanted:
			wait = n.cfg.Retry
			var got bool
			ran = true
			if err := s.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+l.role.lock.params()+`)`, l.role.lock.args()...).Scan(&got); err != nil {
				return 0, fmt.Errorf("competing for %s: %w", l.role.Name, err)
			}
			if got {
				n.mu.Lock()
				wanted = l.wanted
				if wanted {
					l.acquire()
				}
				n.mu.Unlock()
				if !wanted { // resigned meanwhile
					if err := n.unlock(ctx, s, l); err != nil {
						return 0, err
					}
					continue
				}
				n.log.Info("leadership taken", "role", l.role.Name)
				continue
			}
			if evict {
				s.lastEvict = time.Now()
				if err := n.evictStale(ctx, s, l.role); err != nil {
					return 0, fmt.Errorf("checking on the holder of %s: %w", l.role.Name, err)
				}
			}
		}
	}
	if !ran {
		if _, err := s.conn.Exec(ctx, `SELECT 1`); err != nil {
			return 0, fmt.Errorf("heartbeat: %w", err)
		}
	}
	return wait, nil
}

func (n *Node) unlock(ctx context.Context, s *session, l *Leadership) error {
	var ok bool
	if err := s.conn.QueryRow(ctx, `SELECT pg_advisory_unlock(`+l.role.lock.params()+`)`, l.role.lock.args()...).Scan(&ok); err != nil {
		return fmt.Errorf("releasing %s: %w", l.role.Name, err)
	}
	return nil
}

// evictStale ends the session of the node that holds role's lock if that
// session has run no statement for StaleAfter: a process that is frozen
// (SIGSTOP, a hung machine) or cut off behind a network that still answers
// TCP keepalives. Its locks free with its session; the next pass takes the
// leadership.
func (n *Node) evictStale(ctx context.Context, s *session, role Role) error {
	var node string
	// MATERIALIZED: the stale test must be done before, never after, the
	// planner decides to call pg_terminate_backend.
	err := s.conn.QueryRow(ctx, `WITH stale AS MATERIALIZED (
			SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory' AND l.granted AND l.classid::int8 = $1 AND l.objid::int8 = $2 AND l.objsubid = $3
				AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
				AND a.application_name LIKE $4 AND a.pid <> pg_backend_pid()
				AND a.state <> 'active' AND a.state_change < clock_timestamp() - $5::interval)
		SELECT application_name FROM stale WHERE pg_terminate_backend(pid)`,
		role.lock.classID, role.lock.objID, role.lock.objSubID, ApplicationNamePrefix+"%", n.cfg.StaleAfter).Scan(&node)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	n.log.Warn("ended the session of a leader that stopped responding", "role", role.Name, "leader", node,
		"silent_for_more_than", n.cfg.StaleAfter.String())
	return nil
}

// wait waits for notifications (handing each to its subscribers) until d
// has passed, the node is poked (a pass is wanted at once) or a function
// is handed to Do (returned, for the loop to run).
func (n *Node) wait(ctx context.Context, s *session, d time.Duration) (work, bool, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var w work
	poked := false
	stop := make(chan struct{})
	woken := make(chan struct{})
	go func() {
		defer close(woken)
		select {
		case <-n.poke:
			poked = true
			cancel()
		case w = <-n.work:
			cancel()
		case <-stop:
		}
	}()
	var err error
	for {
		nt, werr := s.conn.WaitForNotification(wctx)
		if werr != nil {
			if wctx.Err() == nil || s.conn.IsClosed() {
				err = werr
			}
			break
		}
		n.deliver(Notification{Channel: nt.Channel, Payload: nt.Payload})
	}
	close(stop)
	<-woken
	return w, poked, err
}

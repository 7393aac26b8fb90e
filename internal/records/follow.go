package records

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Channel is where the insert trigger of aerofn.invocations announces the
// ids of new records, from whichever node wrote them (migration 011).
const Channel = "aerofn_invocations"

// followBuffer is how many records a follower may fall behind before the
// newest are dropped for it (and counted in Subscription.Dropped): a slow
// reader never holds up the others or the listener.
const followBuffer = 512

// ErrStopped is returned by Subscribe once the Follower has stopped.
var ErrStopped = errors.New("live logs are stopping with the server")

// Filter selects the records a subscription receives; empty fields match
// anything.
type Filter struct {
	Function string
	Status   string
	Trigger  string
}

func (f Filter) match(r Record) bool {
	return (f.Function == "" || f.Function == r.Function) && (f.Status == "" || f.Status == r.Status) &&
		(f.Trigger == "" || f.Trigger == r.Trigger)
}

// Follower streams the records every node writes to the subscribers of
// this node: it LISTENs on Channel on one connection and, while anyone is
// subscribed, reads the announced records by id. Records written while the
// connection is re-established are not streamed (they stay readable by
// GET .../logs).
type Follower struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	stopped bool

	ready     chan struct{} // closed once the first LISTEN is in place
	readyOnce sync.Once
	startOnce sync.Once
	stopOnce  sync.Once
	cancel    context.CancelFunc
	done      chan struct{}

	followers prometheus.GaugeFunc
}

// NewFollower returns a Follower; call Start. reg (may be nil) gets the
// gauge aerofn_log_followers.
func NewFollower(pool *pgxpool.Pool, log *slog.Logger, reg prometheus.Registerer) *Follower {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Follower{pool: pool, log: log, subs: map[*Subscription]struct{}{}, ready: make(chan struct{}), done: make(chan struct{})}
	f.followers = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "aerofn_log_followers", Help: "Live log streams open on this node."},
		func() float64 { return float64(f.Subscribers()) })
	if reg != nil {
		reg.MustRegister(f.followers)
	}
	return f
}

// Subscription is one live stream. Records arrives oldest first and is
// closed when the Follower stops; Close it when the reader leaves.
type Subscription struct {
	Records <-chan Record
	c       chan Record
	filter  Filter
	dropped atomic.Int64
	f       *Follower
}

// Dropped returns and resets how many records were dropped because the
// reader fell behind.
func (s *Subscription) Dropped() int64 { return s.dropped.Swap(0) }

// Close ends the subscription; safe more than once.
func (s *Subscription) Close() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if _, ok := s.f.subs[s]; ok {
		delete(s.f.subs, s)
		close(s.c)
	}
}

// Subscribers is the number of open subscriptions.
func (f *Follower) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// Subscribe returns a subscription to the records that match filter and
// are written from now on. It waits (at most until ctx ends) for the
// listener to be in place, so a call made after it returns is streamed.
func (f *Follower) Subscribe(ctx context.Context, filter Filter) (*Subscription, error) {
	select {
	case <-f.ready:
	case <-f.done:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the live logs listener: %w", ctx.Err())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return nil, ErrStopped
	}
	c := make(chan Record, followBuffer)
	s := &Subscription{Records: c, c: c, filter: filter, f: f}
	f.subs[s] = struct{}{}
	return s, nil
}

// Start begins listening in the background; it returns at once.
func (f *Follower) Start(ctx context.Context) error {
	f.startOnce.Do(func() {
		ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
		go f.run(ctx)
	})
	return nil
}

// Stop ends every subscription (their streams end) and the listener.
func (f *Follower) Stop(ctx context.Context) error {
	f.stopOnce.Do(func() {
		f.mu.Lock()
		f.stopped = true
		for s := range f.subs {
			delete(f.subs, s)
			close(s.c)
		}
		f.mu.Unlock()
	})
	f.startOnce.Do(func() { close(f.done) }) // never started: nothing runs
	if f.cancel != nil {
		f.cancel()
	}
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping live logs listener: %w", ctx.Err())
	}
}

func (f *Follower) run(ctx context.Context) {
	defer close(f.done)
	for ctx.Err() == nil {
		err := f.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		f.log.Warn("live logs listener; reconnecting", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (f *Follower) listen(ctx context.Context) error {
	conn, err := f.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "UNLISTEN *") //nolint:errcheck // the connection is reset on release anyway
	f.readyOnce.Do(func() { close(f.ready) })
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return err
		}
		functions, some := f.wanted()
		if !some {
			continue
		}
		// The connection is free between notices (they queue in its
		// buffer meanwhile), so the rows are read on it.
		recs, err := byIDs(ctx, conn, strings.Split(n.Payload, ","), functions)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			f.log.Warn("reading announced records", "error", err)
			continue
		}
		f.deliver(recs)
	}
}

// wanted is the functions some subscriber follows: nil when one follows
// every function; some is false when nobody is subscribed.
func (f *Follower) wanted() (functions []string, some bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[string]bool{}
	for s := range f.subs {
		if s.filter.Function == "" {
			return nil, true
		}
		if !seen[s.filter.Function] {
			seen[s.filter.Function] = true
			functions = append(functions, s.filter.Function)
		}
	}
	return functions, len(f.subs) > 0
}

func (f *Follower) deliver(recs []Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range recs {
		for s := range f.subs {
			if !s.filter.match(r) {
				continue
			}
			select {
			case s.c <- r:
			default:
				s.dropped.Add(1)
			}
		}
	}
}

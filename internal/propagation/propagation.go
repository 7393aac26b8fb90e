// Package propagation lets a change to a function (deploy, rollback,
// patch, enable) return once every live node serves it:
//
//	changing node                          every other node
//	Expect(name) ─ commit ─ NOTIFY aerofn_registry ─► drop the cached function,
//	     │                                            read it again, load and
//	     │                                            prime its module
//	     │         ◄── NOTIFY aerofn_applied ──────── Ack(key, name, updated_at)
//	Wait(updated_at): until every node in LiveNodes
//	  has acked (or died), or Timeout
//
// The live nodes are those whose session holds its liveness lock
// (cluster.LiveNodes), read when the wait starts and again every
// pollEvery: a node that dies during the wait is dropped from it, one
// that started after the commit read the change when it started and is
// not waited for. A frozen node keeps its lock, and the wait ends at the
// timeout with that node pending. The change itself is committed either
// way: the wait only reports. See docs/RATIONALE.md, "A deploy returns
// once every node serves it".
package propagation

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/cluster"
)

// Channel is the NOTIFY channel of the acknowledgements.
const Channel = "aerofn_applied"

// pollEvery is how often a wait reads the live nodes again, so that a node
// that died stops being waited for.
const pollEvery = 250 * time.Millisecond

// Execer runs a statement: a pool, a connection or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Ack tells the changing node that the node whose liveness key is key now
// serves the function name as changed at updatedAt (its updated_at): its
// cached copy is that one, and its module, if enabled, is loaded.
func Ack(ctx context.Context, q Execer, key int32, name string, updatedAt time.Time) error {
	if _, err := q.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, ackPayload(key, name, updatedAt)); err != nil {
		return fmt.Errorf("acknowledging the change of %s: %w", name, err)
	}
	return nil
}

// ackPayload is "<updated_at in µs since the epoch> <key> <name>".
func ackPayload(key int32, name string, updatedAt time.Time) string {
	return strconv.FormatInt(updatedAt.UnixMicro(), 10) + " " + strconv.FormatInt(int64(key), 10) + " " + name
}

type ack struct {
	at   int64 // µs
	key  int32
	name string
}

func parseAck(payload string) (ack, bool) {
	f := strings.SplitN(payload, " ", 3)
	if len(f) != 3 || f[2] == "" {
		return ack{}, false
	}
	at, err1 := strconv.ParseInt(f[0], 10, 64)
	key, err2 := strconv.ParseInt(f[1], 10, 32)
	return ack{at: at, key: int32(key), name: f[2]}, err1 == nil && err2 == nil
}

// Result is how far a change had reached when the wait ended.
type Result struct {
	// Nodes is how many nodes were live: the changing node and every node
	// still live at the end of the wait.
	Nodes int `json:"nodes"`
	// Ready is how many of them serve the change: the changing node and
	// those that acknowledged it.
	Ready int `json:"ready"`
	// Pending names the live nodes that had not acknowledged it when the
	// timeout came (as their sessions show their names).
	Pending []string `json:"pending,omitempty"`
}

// Config wires a Tracker.
type Config struct {
	Node *cluster.Node // this node: its session listens for the acks
	Pool *pgxpool.Pool // reads the live nodes
	// Timeout bounds a wait; 0 does not wait (the result counts the acks
	// already in).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Tracker collects the acknowledgements for the changes this node makes.
// It is a service (Start, Stop) over the node's session.
type Tracker struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	waits map[*Wait]struct{}

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// New returns a Tracker; it listens once started.
func New(cfg Config) *Tracker {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	return &Tracker{cfg: cfg, log: cfg.Logger.With("component", "propagation"), waits: map[*Wait]struct{}{}}
}

// listenWait bounds how long Start waits for the node's session to listen.
const listenWait = 5 * time.Second

// Start subscribes to the acknowledgements on the node's session (started
// before), and returns once the session listens, so that a change made as
// soon as the node serves is acknowledged to it; a session that does not
// listen within listenWait is logged, and changes meanwhile report their
// nodes pending.
func (t *Tracker) Start(ctx context.Context) error {
	ctx, t.cancel = context.WithCancel(ctx)
	t.done = make(chan struct{})
	sub := t.cfg.Node.Listen(Channel)
	select {
	case <-sub.C(): // the first notification is the Resync
	case <-time.After(listenWait):
		t.log.Warn("the node session does not listen for acknowledgements yet", "waited", listenWait.String())
	case <-ctx.Done():
	}
	go func() {
		defer close(t.done)
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case nt := <-sub.C():
				if nt.Resync {
					continue // acks missed meanwhile leave their nodes pending until the timeout
				}
				if a, ok := parseAck(nt.Payload); ok {
					t.deliver(a)
				}
			}
		}
	}()
	return nil
}

// Stop stops listening.
func (t *Tracker) Stop(ctx context.Context) error {
	var err error
	t.once.Do(func() {
		if t.cancel == nil {
			return
		}
		t.cancel()
		select {
		case <-t.done:
		case <-ctx.Done():
			err = fmt.Errorf("stopping the propagation tracker: %w", ctx.Err())
		}
	})
	return err
}

func (t *Tracker) deliver(a ack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for w := range t.waits {
		if w.name != a.name {
			continue
		}
		if a.at > w.acked[a.key] {
			w.acked[a.key] = a.at
		}
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
}

// Wait is one change's wait for its acknowledgements.
type Wait struct {
	t       *Tracker
	name    string
	acked   map[int32]int64 // key → newest updated_at acked (µs); guarded by t.mu
	changed chan struct{}
}

// Expect starts collecting the acknowledgements of a change to the
// function name: call it before the change commits (a node may ack before
// the changing node reads its commit's result), then Wait, then Close. A
// nil Tracker (an API without a cluster, in tests) expects nothing: its
// Wait reports this node alone.
func (t *Tracker) Expect(name string) *Wait {
	if t == nil {
		return nil
	}
	w := &Wait{t: t, name: name, acked: map[int32]int64{}, changed: make(chan struct{}, 1)}
	t.mu.Lock()
	t.waits[w] = struct{}{}
	t.mu.Unlock()
	return w
}

// Close stops collecting.
func (w *Wait) Close() {
	if w == nil {
		return
	}
	w.t.mu.Lock()
	delete(w.t.waits, w)
	w.t.mu.Unlock()
}

// Wait returns once every other live node has acknowledged the change
// committed at updatedAt (or a later one), or at the tracker's timeout, or
// when ctx ends. A node counts as ready when any of its liveness keys
// acked.
func (w *Wait) Wait(ctx context.Context, updatedAt time.Time) Result {
	if w == nil {
		return Result{Nodes: 1, Ready: 1}
	}
	t := w.t
	at := updatedAt.UnixMicro()
	self := t.cfg.Node.Key()
	deadline := time.NewTimer(t.cfg.Timeout)
	defer deadline.Stop()
	poll := time.NewTicker(pollEvery)
	defer poll.Stop()
	var live []cluster.LiveNode
	first := true
	readLive := func() {
		nodes, err := cluster.LiveNodes(ctx, t.cfg.Pool)
		if err != nil {
			if ctx.Err() == nil {
				t.log.Warn("reading the live nodes", "function", w.name, "error", err)
			}
			return // keep the last list
		}
		if first {
			live, first = nodes, false
			return
		}
		// Only nodes live from the start are waited for: one that started
		// since read the change when it did.
		live = slices.DeleteFunc(live, func(n cluster.LiveNode) bool {
			return !slices.ContainsFunc(nodes, func(m cluster.LiveNode) bool { return m.Name == n.Name })
		})
	}
	result := func() (Result, bool) {
		r := Result{Nodes: 1, Ready: 1} // this node: it prepared the module and dropped its cached copy
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, n := range live {
			if slices.Contains(n.Keys, self) {
				continue
			}
			r.Nodes++
			if slices.ContainsFunc(n.Keys, func(k int32) bool { return w.acked[k] >= at }) {
				r.Ready++
			} else {
				r.Pending = append(r.Pending, n.Name)
			}
		}
		// Until the live nodes have been read, nothing is known.
		return r, !first && len(r.Pending) == 0
	}
	readLive()
	for {
		r, ok := result()
		if ok {
			return r
		}
		select {
		case <-w.changed:
		case <-poll.C:
			readLive()
		case <-deadline.C:
			return r
		case <-ctx.Done():
			return r
		}
	}
}

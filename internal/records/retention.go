package records

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aerodb/aerofn/internal/cluster"
)

// pruneLock is the session advisory lock a node holds while it prunes, so
// that one node at a time does (the others skip that round).
const pruneLock = cluster.RecordsPrune

// Retention defaults.
const (
	DefaultMaxAge         = 7 * 24 * time.Hour
	DefaultMaxPerFunction = 100000
	defaultPruneInterval  = time.Minute
	defaultPruneBatch     = 1000
	defaultPrunePause     = 100 * time.Millisecond
)

// RetentionConfig says which records are kept.
type RetentionConfig struct {
	// MaxAge: records older are pruned, and the per-minute counts with
	// them. 0 keeps them forever.
	MaxAge time.Duration
	// MaxPerFunction: a function's records beyond its newest this many are
	// pruned (its per-minute counts are kept). 0: no cap.
	MaxPerFunction int
	// Interval between rounds; default one minute (with up to 10% jitter).
	Interval time.Duration
	// BatchSize rows deleted per statement, each its own short transaction;
	// default 1000.
	BatchSize int
	// Pause between two batches, so pruning never hogs the database;
	// default 100 ms.
	Pause time.Duration
}

func (c RetentionConfig) withDefaults() RetentionConfig {
	if c.Interval <= 0 {
		c.Interval = defaultPruneInterval
	}
	if c.BatchSize <= 0 {
		c.BatchSize = defaultPruneBatch
	}
	if c.Pause < 0 {
		c.Pause = 0
	} else if c.Pause == 0 {
		c.Pause = defaultPrunePause
	}
	return c
}

// Pruned counts what one round deleted.
type Pruned struct {
	ByAge   int64 // records older than MaxAge
	ByCount int64 // records beyond MaxPerFunction
	Minutes int64 // per-minute count rows older than MaxAge
	Batches int   // DELETE statements run
	Skipped bool  // another node held the lock
}

// Pruner deletes old records in the background, in small batches.
type Pruner struct {
	pool   *pgxpool.Pool
	cfg    RetentionConfig
	log    *slog.Logger
	pruned *prometheus.CounterVec

	startOnce sync.Once
	stopOnce  sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
}

// NewPruner returns a Pruner; call Start. reg (may be nil) gets
// aerofn_invocation_records_pruned_total{reason}.
func NewPruner(pool *pgxpool.Pool, cfg RetentionConfig, log *slog.Logger, reg prometheus.Registerer) *Pruner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pruner{pool: pool, cfg: cfg.withDefaults(), log: log, done: make(chan struct{}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aerofn_invocation_records_pruned_total",
			Help: "Invocation records deleted by retention, by reason (age, count)."}, []string{"reason"})}
	if reg != nil {
		reg.MustRegister(p.pruned)
	}
	return p
}

// Start prunes every Interval in the background; it returns at once.
func (p *Pruner) Start(ctx context.Context) error {
	p.startOnce.Do(func() {
		ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
		go p.loop(ctx)
	})
	return nil
}

// Stop ends the pruning; a batch under way is cancelled (its transaction
// rolls back, nothing half-done stays).
func (p *Pruner) Stop(ctx context.Context) error {
	p.stopOnce.Do(func() {
		p.startOnce.Do(func() { close(p.done) })
		if p.cancel != nil {
			p.cancel()
		}
	})
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping records pruner: %w", ctx.Err())
	}
}

func (p *Pruner) loop(ctx context.Context) {
	defer close(p.done)
	if p.cfg.MaxAge <= 0 && p.cfg.MaxPerFunction <= 0 {
		return
	}
	for {
		// Jitter spreads the nodes' attempts; the lock decides anyway.
		wait := p.cfg.Interval + rand.N(p.cfg.Interval/10+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		res, err := p.PruneOnce(ctx)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Warn("pruning invocation records", "error", err)
			}
			continue
		}
		if res.ByAge+res.ByCount > 0 {
			p.log.Info("pruned invocation records", "by_age", res.ByAge, "by_count", res.ByCount, "batches", res.Batches)
		}
	}
}

// PruneOnce runs one round now, unless another node is pruning.
func (p *Pruner) PruneOnce(ctx context.Context) (Pruned, error) {
	var res Pruned
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("acquiring connection: %w", err)
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(pruneLock)).Scan(&got); err != nil {
		return res, fmt.Errorf("taking the prune lock: %w", err)
	}
	if !got {
		res.Skipped = true
		return res, nil
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(pruneLock)) //nolint:errcheck // the session ends with the connection otherwise

	if p.cfg.MaxAge > 0 {
		cutoff := time.Now().Add(-p.cfg.MaxAge)
		n, err := p.batches(ctx, conn.Conn(), &res, `DELETE FROM aerofn.invocations WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM aerofn.invocations WHERE created_at < $1 LIMIT $2))`, cutoff)
		res.ByAge += n
		p.pruned.WithLabelValues("age").Add(float64(n))
		if err != nil {
			return res, fmt.Errorf("pruning by age: %w", err)
		}
		if res.Minutes, err = p.batches(ctx, conn.Conn(), &res, `DELETE FROM aerofn.invocation_minutes WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM aerofn.invocation_minutes WHERE minute < $1 LIMIT $2))`, cutoff.Truncate(time.Minute)); err != nil {
			return res, fmt.Errorf("pruning per-minute counts: %w", err)
		}
	}
	if p.cfg.MaxPerFunction > 0 {
		// Every function with records, deleted ones included: a skip scan
		// of the (function_name, created_at) index, one probe per name.
		rows, err := conn.Query(ctx, `WITH RECURSIVE f AS (
			(SELECT function_name FROM aerofn.invocations ORDER BY function_name LIMIT 1)
			UNION ALL
			SELECT (SELECT i.function_name FROM aerofn.invocations i WHERE i.function_name > f.function_name ORDER BY i.function_name LIMIT 1)
			FROM f WHERE f.function_name IS NOT NULL)
			SELECT function_name FROM f WHERE function_name IS NOT NULL`)
		if err != nil {
			return res, fmt.Errorf("listing functions: %w", err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return res, fmt.Errorf("listing functions: %w", err)
		}
		for _, name := range names {
			// The newest record past the cap; it and every older one go.
			var cutoff time.Time
			err := conn.QueryRow(ctx, `SELECT created_at FROM aerofn.invocations WHERE function_name = $1
				ORDER BY created_at DESC OFFSET $2 LIMIT 1`, name, p.cfg.MaxPerFunction).Scan(&cutoff)
			if err == pgx.ErrNoRows {
				continue
			}
			if err != nil {
				return res, fmt.Errorf("finding the cap of %s: %w", name, err)
			}
			n, err := p.batches(ctx, conn.Conn(), &res, `DELETE FROM aerofn.invocations WHERE ctid = ANY(ARRAY(
				SELECT ctid FROM aerofn.invocations WHERE function_name = $3 AND created_at <= $1 LIMIT $2))`, cutoff, name)
			res.ByCount += n
			p.pruned.WithLabelValues("count").Add(float64(n))
			if err != nil {
				return res, fmt.Errorf("pruning %s by count: %w", name, err)
			}
		}
	}
	return res, nil
}

// batches runs a DELETE of at most BatchSize rows ($2; $1 and further
// arguments are the caller's) until one deletes fewer, pausing between
// them; it returns the rows deleted.
func (p *Pruner) batches(ctx context.Context, conn *pgx.Conn, res *Pruned, sql string, cutoff time.Time, more ...any) (int64, error) {
	var total int64
	args := append([]any{cutoff, p.cfg.BatchSize}, more...)
	for {
		tag, err := conn.Exec(ctx, sql, args...)
		if err != nil {
			return total, err
		}
		res.Batches++
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(p.cfg.BatchSize) {
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(p.cfg.Pause):
		}
	}
}

package server

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aerodb/aerofn/internal/dbtrigger"
	"github.com/aerodb/aerofn/internal/sqlexec"
)

// queueCollector reports the durable work waiting in Postgres at scrape
// time: what an operator needs to see a backlog or dead letters build up.
// The figures are the database's, so every node reports the same numbers.
type queueCollector struct {
	pool      *pgxpool.Pool
	captured  *prometheus.Desc
	held      *prometheus.Desc
	delivery  *prometheus.Desc
	schedules *prometheus.Desc
	up        *prometheus.Desc
}

func newQueueCollector(pool *pgxpool.Pool) *queueCollector {
	return &queueCollector{
		pool:      pool,
		captured:  prometheus.NewDesc("aerofn_db_events_captured", "Row changes captured and not yet queued for delivery.", nil, nil),
		held:      prometheus.NewDesc("aerofn_db_events_held", "Deliveries held for disabled or ordered functions.", nil, nil),
		delivery:  prometheus.NewDesc("aerofn_db_deliveries", "Database-trigger deliveries in the queue by state (discarded and cancelled are dead letters); completed ones are not counted.", []string{"state"}, nil),
		schedules: prometheus.NewDesc("aerofn_schedule_runs", "Schedule runs waiting or running.", []string{"state"}, nil),
		up:        prometheus.NewDesc("aerofn_queue_metrics_up", "1 if the queue figures could be read at this scrape.", nil, nil),
	}
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.captured, c.held, c.delivery, c.schedules, c.up} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	up := 1.0
	var captured, held int64
	if err := c.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM aerofn.events), (SELECT count(*) FROM aerofn.event_backlog)`).Scan(&captured, &held); err != nil {
		up = 0
	} else {
		ch <- prometheus.MustNewConstMetric(c.captured, prometheus.GaugeValue, float64(captured))
		ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(held))
	}
	byState := func(desc *prometheus.Desc, sql string, args ...any) {
		rows, err := c.pool.Query(ctx, sql, args...)
		if err != nil {
			up = 0
			return
		}
		defer rows.Close()
		for rows.Next() {
			var state string
			var n int64
			if rows.Scan(&state, &n) == nil {
				ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), state)
			}
		}
		if rows.Err() != nil {
			up = 0
		}
	}
	byState(c.delivery, `SELECT state::text, count(*) FROM aerofn.river_job WHERE queue = $1 AND state <> 'completed' GROUP BY state`, dbtrigger.QueueName)
	byState(c.schedules, `SELECT state, count(*) FROM aerofn.schedule_runs WHERE state IN ('pending', 'running') GROUP BY state`)
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
}

// dbQueryCollector reports how db_query calls ran: the fast path (one round
// trip for a read, two for a write), the slow path (three), and how many
// slow ones tried the fast path first. A fallback count that keeps rising
// means the clock readings or the cached descriptions keep failing. A call
// run again after its connection was lost counts once more, and in
// reconnects.
type dbQueryCollector struct {
	exec      *sqlexec.Executor
	calls     *prometheus.Desc
	fall      *prometheus.Desc
	reconnect *prometheus.Desc
}

func newDBQueryCollector(e *sqlexec.Executor) *dbQueryCollector {
	return &dbQueryCollector{
		exec:      e,
		calls:     prometheus.NewDesc("aerofn_db_query_calls_total", "db_query calls by the path they took (fast or slow).", []string{"path"}, nil),
		fall:      prometheus.NewDesc("aerofn_db_query_fallbacks_total", "db_query calls that tried the fast path and ran on the slow path.", nil, nil),
		reconnect: prometheus.NewDesc("aerofn_db_query_reconnects_total", "db_query calls run again on another connection because theirs was lost before COMMIT.", nil, nil),
	}
}

func (c *dbQueryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.calls
	ch <- c.fall
	ch <- c.reconnect
}

func (c *dbQueryCollector) Collect(ch chan<- prometheus.Metric) {
	p := c.exec.Paths()
	ch <- prometheus.MustNewConstMetric(c.calls, prometheus.CounterValue, float64(p.Fast.Load()), "fast")
	ch <- prometheus.MustNewConstMetric(c.calls, prometheus.CounterValue, float64(p.Slow.Load()), "slow")
	ch <- prometheus.MustNewConstMetric(c.fall, prometheus.CounterValue, float64(p.Fallback.Load()))
	ch <- prometheus.MustNewConstMetric(c.reconnect, prometheus.CounterValue, float64(p.Reconnect.Load()))
}

package dbtrigger

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector reports the database-trigger backlog at scrape time: changes
// captured and not yet dispatched, deliveries held, and the delivery queue
// by state, so an operator sees a backlog or dead letters build up. The
// figures are the database's, so every node reports the same numbers.
type Collector struct {
	pool     *pgxpool.Pool
	captured *prometheus.Desc
	held     *prometheus.Desc
	delivery *prometheus.Desc
}

// NewCollector returns the collector of the deliveries stored in pool's database.
func NewCollector(pool *pgxpool.Pool) *Collector {
	return &Collector{
		pool:     pool,
		captured: prometheus.NewDesc("aerofn_db_events_captured", "Row changes captured and not yet queued for delivery.", nil, nil),
		held:     prometheus.NewDesc("aerofn_db_events_held", "Deliveries held for disabled or ordered functions.", nil, nil),
		delivery: prometheus.NewDesc("aerofn_db_deliveries", "Database-trigger deliveries in the queue by state (discarded and cancelled are dead letters); completed ones are not counted.", []string{"state"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.captured
	ch <- c.held
	ch <- c.delivery
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.CollectContext(ctx, ch)
}

// CollectContext collects within ctx; an error means some figures could
// not be read (those that were are sent).
func (c *Collector) CollectContext(ctx context.Context, ch chan<- prometheus.Metric) error {
	var captured, held int64
	if err := c.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM aerofn.events), (SELECT count(*) FROM aerofn.event_backlog)`).Scan(&captured, &held); err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(c.captured, prometheus.GaugeValue, float64(captured))
	ch <- prometheus.MustNewConstMetric(c.held, prometheus.GaugeValue, float64(held))
	rows, err := c.pool.Query(ctx, `SELECT state::text, count(*) FROM aerofn.river_job WHERE queue = $1 AND state <> 'completed' GROUP BY state`, QueueName)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return err
		}
		ch <- prometheus.MustNewConstMetric(c.delivery, prometheus.GaugeValue, float64(n), state)
	}
	return rows.Err()
}

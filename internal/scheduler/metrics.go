package scheduler

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector reports the schedule runs waiting or running at scrape time.
// The figures are the database's, so every node reports the same numbers.
type Collector struct {
	pool *pgxpool.Pool
	runs *prometheus.Desc
}

// NewCollector returns the collector of the runs stored in pool's database.
func NewCollector(pool *pgxpool.Pool) *Collector {
	return &Collector{pool: pool,
		runs: prometheus.NewDesc("aerofn_schedule_runs", "Schedule runs waiting or running.", []string{"state"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.runs }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = c.CollectContext(ctx, ch)
}

// CollectContext collects within ctx; an error means the figures could not
// be read.
func (c *Collector) CollectContext(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.pool.Query(ctx, `SELECT state, count(*) FROM aerofn.schedule_runs WHERE state IN ('pending', 'running') GROUP BY state`)
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
		ch <- prometheus.MustNewConstMetric(c.runs, prometheus.GaugeValue, float64(n), state)
	}
	return rows.Err()
}

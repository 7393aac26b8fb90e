package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/sqlexec"
)

// queueSource is a trigger package's backlog collector (dbtrigger's,
// scheduler's): each queries its own tables.
type queueSource interface {
	Describe(ch chan<- *prometheus.Desc)
	CollectContext(ctx context.Context, ch chan<- prometheus.Metric) error
}

// queueCollector gathers the triggers' backlogs at scrape time, under one
// deadline, and says whether every figure could be read.
type queueCollector struct {
	sources []queueSource
}

var queueUp = prometheus.NewDesc("aerofn_queue_metrics_up", "1 if the queue figures could be read at this scrape.", nil, nil)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range c.sources {
		s.Describe(ch)
	}
	ch <- queueUp
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	up := 1.0
	for _, s := range c.sources {
		if err := s.CollectContext(ctx, ch); err != nil {
			up = 0
		}
	}
	ch <- prometheus.MustNewConstMetric(queueUp, prometheus.GaugeValue, up)
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

// loadCollector reports the node's module loading work in progress, so
// that an operator (or the benchmark, before it measures) can tell a node
// that is compiling in the background from an idle one.
type loadCollector struct {
	s                                  *Server
	compiling, pending, jsBusy, jsWarm *prometheus.Desc
	jsCompiles, jsSourceRuns           *prometheus.Desc
	gateWait                           *prometheus.Desc
	cheap, upgrades                    *prometheus.Desc
}

func newLoadCollector(s *Server) *loadCollector {
	return &loadCollector{
		s:         s,
		compiling: prometheus.NewDesc("aerofn_modules_compiling", "Module loads compiling right now (deploys, background compiles, the JavaScript runtime).", nil, nil),
		pending:   prometheus.NewDesc("aerofn_modules_background_pending", "Modules queued or compiling in the background.", nil, nil),
		jsBusy:    prometheus.NewDesc("aerofn_js_runtime_warming", "1 while the JavaScript runtime is being loaded in the background.", nil, nil),
		jsWarm:    prometheus.NewDesc("aerofn_js_runtime_warmups_total", "Loads of the JavaScript runtime this node began (0 on a node that never needed it).", nil, nil),
		jsCompiles: prometheus.NewDesc("aerofn_js_bytecode_compiles_total",
			"JavaScript function versions compiled to bytecode on this node (once per version and runtime).", nil, nil),
		cheap: prometheus.NewDesc("aerofn_modules_cheap",
			"Modules in memory compiled cheaply at deploy whose optimised compile has not replaced them yet.", nil, nil),
		upgrades: prometheus.NewDesc("aerofn_modules_tier_upgrades_total",
			"Cheap modules replaced in memory by their optimised compile (compiled here or loaded from another node).", nil, nil),
		jsSourceRuns: prometheus.NewDesc("aerofn_js_source_runs_total",
			"JavaScript calls run from the source because their bytecode was not made yet (after a runtime change, until its background compile ends).", nil, nil),
		gateWait: prometheus.NewDesc("aerofn_run_gate_wait_seconds",
			"How long calls waited for one of the engine's run tokens (twice GOMAXPROCS calls run guest code at once) before running or giving up; 0 when one was free.", nil, nil),
	}
}

func (c *loadCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.compiling
	ch <- c.pending
	ch <- c.jsBusy
	ch <- c.jsWarm
	ch <- c.jsCompiles
	ch <- c.jsSourceRuns
	ch <- c.gateWait
	ch <- c.cheap
	ch <- c.upgrades
}

func (c *loadCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.compiling, prometheus.GaugeValue, float64(c.s.Engine.Compiling()))
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(c.s.Invoker.BackgroundPending()))
	ch <- prometheus.MustNewConstMetric(c.jsBusy, prometheus.GaugeValue, float64(c.s.js.busy.Load()))
	ch <- prometheus.MustNewConstMetric(c.jsWarm, prometheus.CounterValue, float64(c.s.js.begun.Load()))
	st := c.s.Engine.Stats()
	ch <- prometheus.MustNewConstMetric(c.jsCompiles, prometheus.CounterValue, float64(st.ScriptCompiles))
	ch <- prometheus.MustNewConstMetric(c.jsSourceRuns, prometheus.CounterValue, float64(st.ScriptSourceRuns))
	ch <- gateHistogram(c.gateWait, c.s.Engine.GateWaits())
	ch <- prometheus.MustNewConstMetric(c.cheap, prometheus.GaugeValue, float64(st.CheapModules))
	ch <- prometheus.MustNewConstMetric(c.upgrades, prometheus.CounterValue, float64(st.TierUpgrades))
}

// gateHistogram is the run gate's waits as a Prometheus histogram
// (cumulative buckets, in seconds).
func gateHistogram(d *prometheus.Desc, w engine.GateWaits) prometheus.Metric {
	buckets := make(map[float64]uint64, len(w.Bounds))
	var n uint64
	for i, b := range w.Bounds {
		n += w.Counts[i]
		buckets[b.Seconds()] = n
	}
	n += w.Counts[len(w.Bounds)]
	return prometheus.MustNewConstHistogram(d, n, w.Sum.Seconds(), buckets)
}

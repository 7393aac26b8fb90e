package records

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aerodb/aerofn/internal/engine"
)

// DefaultMaxFunctionLabels caps the distinct function names a node puts in
// metric labels. Past it, calls of further functions are counted under
// OtherFunctions, so that functions created and deleted over months (or
// by a script) cannot grow the series without bound.
const DefaultMaxFunctionLabels = 500

// OtherFunctions is the label of the functions past the cap. Function names
// start with a letter, so no function can be called that.
const OtherFunctions = "_other"

// Error types of functions_errors_total: one per failed status, a closed set.
const (
	ErrorTypeError          = "error" // the function returned an error, trapped, or its module could not load
	ErrorTypeTimeout        = "timeout"
	ErrorTypeMemoryExceeded = "memory_exceeded"
	ErrorTypeInterrupted    = "interrupted" // the node stopped before the call ended
)

// errorType maps a record's status to its error_type, "" for a success.
func errorType(status string) string {
	switch engine.Status(status) {
	case engine.StatusSuccess:
		return ""
	case engine.StatusTimeout:
		return ErrorTypeTimeout
	case engine.StatusMemoryExceeded:
		return ErrorTypeMemoryExceeded
	case engine.StatusInterrupted:
		return ErrorTypeInterrupted
	}
	return ErrorTypeError
}

// knownTriggers bounds the trigger label the same way.
func triggerLabel(t string) string {
	switch t {
	case "http", "database", "schedule", "webhook":
		return t
	}
	return "other"
}

// nameLabels hands out function-name label values: a name seen before, or
// a new one while fewer than max are in use, is itself; any other is
// OtherFunctions. Forget frees a deleted function's place.
type nameLabels struct {
	mu   sync.Mutex
	max  int
	seen map[string]struct{}
}

func (l *nameLabels) label(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[name]; ok {
		return name
	}
	if len(l.seen) >= l.max {
		return OtherFunctions
	}
	l.seen[name] = struct{}{}
	return name
}

func (l *nameLabels) forget(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.seen[name]
	delete(l.seen, name)
	return ok
}

// phase12 are the series AeroDB's Phase 12 documents name, beside aerofn's
// own aerofn_* series.
type phase12 struct {
	invocations    *prometheus.CounterVec   // name, trigger, status
	duration       *prometheus.HistogramVec // name
	memory         *prometheus.HistogramVec // name
	timeouts       *prometheus.CounterVec   // name
	memoryExceeded *prometheus.CounterVec   // name
	errors         *prometheus.CounterVec   // name, error_type
}

func newPhase12() *phase12 {
	return &phase12{
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "functions_invocations_total",
			Help: "Function invocations by function, trigger (http, database, schedule, webhook) and status (success, error, timeout, memory_exceeded, interrupted)."},
			[]string{"name", "trigger", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "functions_duration_seconds", Help: "Function invocation wall time.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}, []string{"name"}),
		memory: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "functions_memory_bytes", Help: "Peak guest linear memory of an invocation.",
			Buckets: prometheus.ExponentialBuckets(1<<20, 2, 10)}, []string{"name"}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "functions_timeout_total",
			Help: "Invocations stopped at their timeout."}, []string{"name"}),
		memoryExceeded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "functions_memory_exceeded_total",
			Help: "Invocations stopped at their memory limit."}, []string{"name"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "functions_errors_total",
			Help: "Failed invocations by error_type: error (returned an error, trapped, module not loadable), timeout, memory_exceeded, interrupted."},
			[]string{"name", "error_type"}),
	}
}

func (p *phase12) collectors() []prometheus.Collector {
	return []prometheus.Collector{p.invocations, p.duration, p.memory, p.timeouts, p.memoryExceeded, p.errors}
}

func (p *phase12) observe(name string, r Record) {
	p.invocations.WithLabelValues(name, triggerLabel(r.Trigger), r.Status).Inc()
	p.duration.WithLabelValues(name).Observe(r.DurationMS / 1000)
	p.memory.WithLabelValues(name).Observe(r.MemoryPeakMB * (1 << 20))
	switch et := errorType(r.Status); et {
	case "":
	case ErrorTypeTimeout:
		p.timeouts.WithLabelValues(name).Inc()
		p.errors.WithLabelValues(name, et).Inc()
	case ErrorTypeMemoryExceeded:
		p.memoryExceeded.WithLabelValues(name).Inc()
		p.errors.WithLabelValues(name, et).Inc()
	default:
		p.errors.WithLabelValues(name, et).Inc()
	}
}

func (p *phase12) forget(name string) {
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{p.invocations, p.duration, p.memory, p.timeouts, p.memoryExceeded, p.errors} {
		v.DeletePartialMatch(prometheus.Labels{"name": name})
	}
}

// ForgetFunction deletes a deleted function's series (Phase 12 and aerofn_*
// alike) and frees its place under the label cap. The server calls it on
// every node when a function is deleted.
func (w *Writer) ForgetFunction(name string) {
	if !w.names.forget(name) {
		return
	}
	m := w.metrics
	m.phase12.forget(name)
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.Invocations, m.HTTPResponses, m.Duration, m.MemoryPeak} {
		v.DeletePartialMatch(prometheus.Labels{"function": name})
	}
}

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
//
// It also keeps, for each combination of a call's labels seen, the series
// that call counts in (seriesOf): looking them up by their label values
// (hashing them, a lock per vector) on every call was a fifth of recording
// a call, and those lookups allocated.
type nameLabels struct {
	mu     sync.Mutex
	max    int
	seen   map[string]struct{}
	series map[seriesKey]*callSeries
}

// seriesKey is what picks a call's series: its function's name as given
// (the label is that or OtherFunctions), trigger, status and HTTP class
// (0: no HTTP status).
type seriesKey struct {
	function, trigger, status string
	class                     int
}

// callSeries are the series one kind of call counts in.
type callSeries struct {
	invocations, httpResponses            prometheus.Counter // httpResponses nil: no HTTP status
	duration, memoryPeak                  prometheus.Observer
	p12Invocations                        prometheus.Counter
	p12Duration, p12Memory                prometheus.Observer
	p12Timeouts, p12MemExceeded, p12Error prometheus.Counter // nil when the status is not one
	// other: counted under OtherFunctions, for want of a place under the
	// cap; resolved again once a place is freed.
	other bool
}

// maxSeriesKeys bounds the cache of series; past it the cache starts over
// (the label cap bounds the names, and a function's triggers, statuses and
// classes are few, so only an unbounded trigger string could get there).
const maxSeriesKeys = 1 << 14

func (l *nameLabels) labelLocked(name string) string {
	if _, ok := l.seen[name]; ok {
		return name
	}
	if len(l.seen) >= l.max {
		return OtherFunctions
	}
	l.seen[name] = struct{}{}
	return name
}

// seriesOf returns the series r counts in, resolving them on the first
// call of its kind.
func (l *nameLabels) seriesOf(m *Metrics, r *Record) *callSeries {
	class := 0
	if r.HTTPStatus >= 100 && r.HTTPStatus <= 599 {
		class = r.HTTPStatus / 100
	}
	k := seriesKey{function: r.Function, trigger: r.Trigger, status: r.Status, class: class}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.series[k]; ok {
		return s
	}
	name := l.labelLocked(r.Function)
	s := &callSeries{
		invocations:    m.Invocations.WithLabelValues(name, r.Trigger, r.Status),
		duration:       m.Duration.WithLabelValues(name, r.Trigger),
		memoryPeak:     m.MemoryPeak.WithLabelValues(name),
		p12Invocations: m.phase12.invocations.WithLabelValues(name, triggerLabel(r.Trigger), r.Status),
		p12Duration:    m.phase12.duration.WithLabelValues(name),
		p12Memory:      m.phase12.memory.WithLabelValues(name),
		other:          name == OtherFunctions,
	}
	if class > 0 {
		s.httpResponses = m.HTTPResponses.WithLabelValues(name, httpClasses[class])
	}
	switch et := errorType(r.Status); et {
	case "":
	case ErrorTypeTimeout:
		s.p12Timeouts = m.phase12.timeouts.WithLabelValues(name)
		s.p12Error = m.phase12.errors.WithLabelValues(name, et)
	case ErrorTypeMemoryExceeded:
		s.p12MemExceeded = m.phase12.memoryExceeded.WithLabelValues(name)
		s.p12Error = m.phase12.errors.WithLabelValues(name, et)
	default:
		s.p12Error = m.phase12.errors.WithLabelValues(name, et)
	}
	if l.series == nil || len(l.series) >= maxSeriesKeys {
		l.series = map[seriesKey]*callSeries{}
	}
	l.series[k] = s
	return s
}

// httpClasses are the class labels by first digit.
var httpClasses = [6]string{"", "1xx", "2xx", "3xx", "4xx", "5xx"}

// observe counts a call in its series.
func (s *callSeries) observe(r *Record) {
	s.invocations.Inc()
	if s.httpResponses != nil {
		s.httpResponses.Inc()
	}
	s.duration.Observe(r.DurationMS / 1000)
	s.memoryPeak.Observe(r.MemoryPeakMB * (1 << 20))
	s.p12Invocations.Inc()
	s.p12Duration.Observe(r.DurationMS / 1000)
	s.p12Memory.Observe(r.MemoryPeakMB * (1 << 20))
	if s.p12Timeouts != nil {
		s.p12Timeouts.Inc()
	}
	if s.p12MemExceeded != nil {
		s.p12MemExceeded.Inc()
	}
	if s.p12Error != nil {
		s.p12Error.Inc()
	}
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

func (p *phase12) forget(name string) {
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{p.invocations, p.duration, p.memory, p.timeouts, p.memoryExceeded, p.errors} {
		v.DeletePartialMatch(prometheus.Labels{"name": name})
	}
}

// ForgetFunction deletes a deleted function's series (Phase 12 and aerofn_*
// alike) and frees its place under the label cap. The server calls it on
// every node when a function is deleted. It holds the labels' lock
// throughout, so a call recorded meanwhile resolves its series after the
// deletion, never keeps one the deletion orphaned.
func (w *Writer) ForgetFunction(name string) {
	l := w.names
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[name]; !ok {
		return
	}
	delete(l.seen, name)
	for k, s := range l.series {
		if k.function == name || s.other {
			delete(l.series, k)
		}
	}
	m := w.metrics
	m.phase12.forget(name)
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.Invocations, m.HTTPResponses, m.Duration, m.MemoryPeak} {
		v.DeletePartialMatch(prometheus.Labels{"function": name})
	}
}

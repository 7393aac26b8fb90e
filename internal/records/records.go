// Package records keeps one record per invocation: written to Postgres in the
// background (never on the caller's path), printed as one JSON line, counted
// in Prometheus metrics, and summarised as per-function statistics.
package records

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aerodb/aerofn/internal/db"
	"github.com/aerodb/aerofn/internal/engine"
)

// Record is one invocation.
type Record struct {
	ID           string           `json:"id"`
	FunctionID   string           `json:"function_id"`
	Function     string           `json:"function"`
	Version      int              `json:"version"`
	Trigger      string           `json:"trigger"`
	Status       string           `json:"status"`
	HTTPStatus   int              `json:"http_status,omitempty"`
	DurationMS   float64          `json:"duration_ms"`
	MemoryPeakMB float64          `json:"memory_peak_mb"`
	Role         string           `json:"role"`
	UserID       string           `json:"user_id,omitempty"`
	RequestID    string           `json:"request_id,omitempty"`
	Error        string           `json:"error,omitempty"`
	Logs         []engine.LogLine `json:"logs,omitempty"`
	LogsDropped  int              `json:"logs_dropped,omitempty"`
	Timestamp    time.Time        `json:"timestamp"`
}

// line is the seed's one-line shape, printed for every call.
type line struct {
	Function     string  `json:"function"`
	Trigger      string  `json:"trigger"`
	DurationMS   float64 `json:"duration_ms"`
	MemoryPeakMB float64 `json:"memory_peak_mb"`
	Status       string  `json:"status"`
	UserID       *string `json:"user_id"`
	Role         string  `json:"role"`
	Version      int     `json:"version"`
	RequestID    string  `json:"request_id,omitempty"`
	HTTPStatus   int     `json:"http_status,omitempty"`
	Timestamp    string  `json:"timestamp"`
	// Logs are the function's own lines, at most stdoutLogLines of at most
	// stdoutLogBytes each (the record keeps them all); LogsTruncated says
	// some were cut or left out.
	Logs          []engine.LogLine `json:"logs,omitempty"`
	LogsTruncated bool             `json:"logs_truncated,omitempty"`
}

// The bounds of the log lines in the stdout line: it stays one line of a
// few tens of KiB whatever the function logs.
const (
	stdoutLogLines = 20
	stdoutLogBytes = 1024
)

// stdoutLogs bounds a call's log lines for its stdout line.
func stdoutLogs(logs []engine.LogLine, dropped int) ([]engine.LogLine, bool) {
	truncated := dropped > 0 || len(logs) > stdoutLogLines
	if len(logs) > stdoutLogLines {
		logs = logs[:stdoutLogLines]
	}
	out := make([]engine.LogLine, len(logs))
	for i, l := range logs {
		if len(l.Message) > stdoutLogBytes {
			l.Message = strings.ToValidUTF8(l.Message[:stdoutLogBytes], "") + "…"
			truncated = true
		}
		out[i] = l
	}
	return out, truncated
}

// Metrics are the Prometheus series for invocations.
type Metrics struct {
	Invocations *prometheus.CounterVec
	// HTTPResponses counts the answers of HTTP and webhook calls by status
	// class (2xx, 4xx, 5xx...): a function's own 4xx is a success of the
	// call in Invocations and a 4xx here.
	HTTPResponses *prometheus.CounterVec
	Duration      *prometheus.HistogramVec
	MemoryPeak    *prometheus.HistogramVec
	Dropped       prometheus.Counter
	Pending       prometheus.GaugeFunc

	phase12 *phase12
}

// Writer records invocations asynchronously in batches.
type Writer struct {
	pool    *pgxpool.Pool
	out     io.Writer
	outMu   sync.Mutex
	log     *slog.Logger
	ch      chan Record
	metrics *Metrics
	names   *nameLabels
	flushed chan chan struct{}

	// stopMu orders Add against Stop: Add sends under the read lock, Stop
	// sets stopped under the write lock, so no send follows the last drain.
	stopMu    sync.RWMutex
	stopped   bool
	quit      chan struct{} // closed by Stop: drain what is queued and end
	startOnce sync.Once
	stopOnce  sync.Once
	started   bool
	done      chan struct{}
}

// WriterConfig configures a Writer.
type WriterConfig struct {
	Pool     *pgxpool.Pool
	Stdout   io.Writer // where the one-line JSON per call goes, a batch per write; nil: none
	Logger   *slog.Logger
	Registry prometheus.Registerer // nil: no metrics
	Buffer   int                   // queued records before Add blocks; default 10000
	// MaxFunctionLabels caps the function names in metric labels
	// (DefaultMaxFunctionLabels when 0); the rest are OtherFunctions.
	MaxFunctionLabels int
}

// NewWriter returns a Writer; call Start.
func NewWriter(cfg WriterConfig) *Writer {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.MaxFunctionLabels <= 0 {
		cfg.MaxFunctionLabels = DefaultMaxFunctionLabels
	}
	w := &Writer{names: &nameLabels{max: cfg.MaxFunctionLabels, seen: map[string]struct{}{}}, pool: cfg.Pool, out: cfg.Stdout, log: cfg.Logger, ch: make(chan Record, cfg.Buffer),
		flushed: make(chan chan struct{}), done: make(chan struct{}), quit: make(chan struct{})}
	m := &Metrics{
		Invocations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aerofn_invocations_total", Help: "Function invocations by outcome."},
			[]string{"function", "trigger", "status"}),
		HTTPResponses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "aerofn_http_responses_total", Help: "Answers to HTTP and webhook calls by status class (2xx, 3xx, 4xx, 5xx)."},
			[]string{"function", "class"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "aerofn_invocation_duration_seconds", Help: "Function invocation wall time.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}, []string{"function", "trigger"}),
		MemoryPeak: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "aerofn_invocation_memory_peak_bytes", Help: "Guest linear memory high-water mark.",
			Buckets: prometheus.ExponentialBuckets(64<<10, 2, 14)}, []string{"function"}),
		Dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "aerofn_invocation_records_failed_total", Help: "Invocation records that could not be written to Postgres."}),
		phase12: newPhase12(),
	}
	m.Pending = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "aerofn_invocation_records_pending", Help: "Invocation records waiting to be written."},
		func() float64 { return float64(len(w.ch)) })
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(m.Invocations, m.HTTPResponses, m.Duration, m.MemoryPeak, m.Dropped, m.Pending)
		cfg.Registry.MustRegister(m.phase12.collectors()...)
	}
	w.metrics = m
	return w
}

// Add queues a record. It blocks only when the buffer is full, which is
// backpressure from a database that cannot keep up; a record is never
// silently dropped. After Stop it is refused, logged and counted in
// aerofn_invocation_records_failed_total (the server stops the writer only
// once no call is running, so this is a last resort, never a panic).
func (w *Writer) Add(r Record) {
	w.names.seriesOf(w.metrics, &r).observe(&r)
	w.stopMu.RLock()
	defer w.stopMu.RUnlock()
	if w.stopped {
		w.printLines([]Record{r})
		w.metrics.Dropped.Inc()
		w.log.Error("invocation record after the records writer stopped; not written", "id", r.ID, "function", r.Function, "status", r.Status)
		return
	}
	w.ch <- r
}

// printLines writes the one-line JSON of each record to Stdout, all in one
// write: the loop prints a batch's lines before storing it (at most 50 ms
// after the call), so a busy node makes one write per batch, not one
// system call per call on the request's path.
func (w *Writer) printLines(batch []Record) {
	if w.out == nil || len(batch) == 0 {
		return
	}
	var buf bytes.Buffer
	// One encoder for the batch, writing into buf (json.Marshal would copy
	// each line out of its own buffer); Encode ends each line with '\n'.
	enc := json.NewEncoder(&buf)
	for _, r := range batch {
		l := line{Function: r.Function, Trigger: r.Trigger, DurationMS: r.DurationMS, MemoryPeakMB: r.MemoryPeakMB,
			Status: r.Status, Role: r.Role, Version: r.Version, RequestID: r.RequestID, HTTPStatus: r.HTTPStatus, Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano)}
		if r.UserID != "" {
			l.UserID = &r.UserID
		}
		l.Logs, l.LogsTruncated = stdoutLogs(r.Logs, r.LogsDropped)
		if err := enc.Encode(l); err != nil {
			w.log.Error("encoding an invocation line", "id", r.ID, "error", err)
		}
	}
	w.outMu.Lock()
	_, _ = w.out.Write(buf.Bytes())
	w.outMu.Unlock()
}

// Start begins writing in the background; it returns at once.
func (w *Writer) Start(ctx context.Context) error {
	w.startOnce.Do(func() {
		w.started = true
		go w.loop(context.WithoutCancel(ctx))
	})
	return nil
}

// Stop refuses further records, writes what is queued and returns; if ctx
// ends first it returns its error while the writing carries on. Safe to call
// more than once, and without Start (then nothing is written).
func (w *Writer) Stop(ctx context.Context) error {
	w.stopOnce.Do(func() {
		// The write lock waits for Adds in progress; a full buffer still
		// drains because the loop runs until quit.
		w.stopMu.Lock()
		w.stopped = true
		w.stopMu.Unlock()
		close(w.quit)
	})
	w.startOnce.Do(func() {}) // a Start after Stop does nothing
	if !w.started {
		return nil
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping records writer: %d records not yet written: %w", len(w.ch), ctx.Err())
	}
}

// Flush waits until every record added before the call is written.
func (w *Writer) Flush() {
	c := make(chan struct{})
	select {
	case w.flushed <- c:
		<-c
	case <-w.done:
	}
}

func (w *Writer) loop(ctx context.Context) {
	defer close(w.done)
	const maxBatch = 500
	batch := make([]Record, 0, maxBatch)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var waiters []chan struct{}
	flush := func() {
		if len(batch) > 0 {
			w.write(ctx, batch)
			batch = batch[:0]
		}
		for _, c := range waiters {
			close(c)
		}
		waiters = nil
	}
	for {
		select {
		case <-w.quit:
			// Stop has refused further records: what is queued is all.
			for n := len(w.ch); n > 0; n-- {
				batch = append(batch, <-w.ch)
				if len(batch) >= maxBatch {
					w.write(ctx, batch)
					batch = batch[:0]
				}
			}
			flush()
			return
		case r := <-w.ch:
			batch = append(batch, r)
			if len(batch) >= maxBatch {
				flush()
			}
		case c := <-w.flushed:
			// Drain what is already queued, then answer.
			for n := len(w.ch); n > 0; n-- {
				batch = append(batch, <-w.ch)
				if len(batch) >= maxBatch {
					w.write(ctx, batch)
					batch = batch[:0]
				}
			}
			waiters = append(waiters, c)
			flush()
		case <-tick.C:
			flush()
		}
	}
}

var invocationColumns = []string{"id", "function_id", "function_name", "version", "trigger", "status", "http_status", "duration_ms",
	"memory_peak_mb", "role", "user_id", "request_id", "error", "logs", "logs_dropped", "created_at"}

// write stores a batch with one COPY. Every text field goes through db.Text
// first, so what a caller or a guest chose cannot make the COPY fail; should
// the database refuse the batch anyway, it is written again one row at a
// time, so a row it cannot store costs no other call its record.
func (w *Writer) write(ctx context.Context, batch []Record) {
	w.printLines(batch)
	rows := make([][]any, len(batch))
	for i, r := range batch {
		rows[i] = row(r)
	}
	err := w.copy(ctx, rows, 3)
	if err == nil {
		return
	}
	if len(rows) > 1 {
		w.log.Warn("writing invocation records; writing them one at a time", "count", len(rows), "error", err)
	}
	failed := 0
	for i := range rows {
		if err := w.copy(ctx, rows[i:i+1], 1); err != nil {
			failed++
			w.log.Error("writing an invocation record", "id", batch[i].ID, "function", batch[i].Function, "error", err)
		}
	}
	w.metrics.Dropped.Add(float64(failed))
}

// copy runs one COPY of rows, tried up to attempts times while the failure
// is not the server refusing the data (a connection lost, a timeout): a
// refusal would only repeat.
func (w *Writer) copy(ctx context.Context, rows [][]any, attempts int) error {
	for attempt := 1; ; attempt++ {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := w.pool.CopyFrom(wctx, pgx.Identifier{"aerofn", "invocations"}, invocationColumns, pgx.CopyFromRows(rows))
		cancel()
		var pgErr *pgconn.PgError
		if err == nil || attempt >= attempts || errors.As(err, &pgErr) {
			return err
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}

// NewID is a new invocation record's id: a UUIDv7, whose first 48 bits are
// the time in milliseconds, so the records' primary key grows at its right
// edge as they are written instead of each record touching a random page
// of the index (see docs/RATIONALE.md, "Records: live logs, retention, fast
// stats").
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// row is a record as the COPY's values, every text field valid text.
func row(r Record) []any {
	logs := "[]"
	if len(r.Logs) > 0 {
		clean := make([]engine.LogLine, len(r.Logs))
		for i, l := range r.Logs {
			l.Level, l.Message = db.Text(l.Level), db.Text(l.Message)
			clean[i] = l
		}
		b, _ := json.Marshal(clean)
		logs = string(b)
	}
	httpStatus := pgtype.Int4{Int32: int32(r.HTTPStatus), Valid: r.HTTPStatus != 0}
	return []any{uuidValue(r.ID), uuidValue(r.FunctionID), db.Text(r.Function), r.Version, db.Text(r.Trigger), db.Text(r.Status), httpStatus, r.DurationMS,
		r.MemoryPeakMB, db.Text(r.Role), nullable(db.Text(r.UserID)), nullable(db.Text(r.RequestID)), nullable(db.Text(r.Error)),
		logs, r.LogsDropped, r.Timestamp}
}

// uuidValue is a uuid column's value as pgx encodes it directly. Given the
// text, pgx's binary COPY first fails to encode it (building an error),
// then parses it: about a tenth of the allocations of a call served over
// HTTP. Text that is no UUID is passed on as it is, for the COPY to refuse.
func uuidValue(s string) any {
	u, err := uuid.Parse(s)
	if err != nil {
		return s
	}
	return pgtype.UUID{Bytes: u, Valid: true}
}

// nullable is s, NULL when empty. A pgtype value, not a *string: pgx
// dereferences a pointer through reflection, an allocation per field.
func nullable(s string) pgtype.Text {
	return pgtype.Text{String: s, Valid: s != ""}
}

// Stats summarises one function's invocations.
type Stats struct {
	Function string           `json:"function"`
	Since    time.Time        `json:"since"`
	Count    int64            `json:"count"`
	ByStatus map[string]int64 `json:"by_status"`
	// ByHTTPStatus counts the answers of HTTP and webhook calls by class
	// ("2xx", "4xx", "5xx"...): a function returning 404 ran successfully
	// (by_status "success") and answered "4xx".
	ByHTTPStatus map[string]int64 `json:"by_http_status"`
	SuccessRate  float64          `json:"success_rate"`
	// DurationMS and MemoryMB: Max is over every call since Since; the
	// percentiles over the newest PercentileSample calls among the stored
	// records (at most SampleSize).
	DurationMS       Percentiles `json:"duration_ms"`
	MemoryMB         Percentiles `json:"memory_peak_mb"`
	PercentileSample int64       `json:"percentile_sample"`
}

// SampleSize bounds the calls the percentiles of Stats are computed over:
// the newest of the window. Sorting more costs seconds on a busy function
// and moves p50-p99 little.
const SampleSize = 10000

// Percentiles of a distribution.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Reader queries stored records.
type Reader struct{ pool *pgxpool.Pool }

// NewReader returns a Reader.
func NewReader(pool *pgxpool.Pool) *Reader { return &Reader{pool: pool} }

// Stats computes a function's statistics since a time. Counts and maxima
// come from the per-minute table the insert trigger keeps (whole minutes
// from the first one at or after since) plus the records of the part
// minute before it, so they stay exact and fast over millions of calls.
func (r *Reader) Stats(ctx context.Context, function string, since time.Time) (Stats, error) {
	s := Stats{Function: function, Since: since, ByStatus: map[string]int64{}, ByHTTPStatus: map[string]int64{}}
	whole := since.Truncate(time.Minute)
	if whole.Before(since) {
		whole = whole.Add(time.Minute)
	}
	rows, err := r.pool.Query(ctx, `SELECT status, http_class, sum(count)::bigint, max(duration_max), max(memory_max) FROM (
		SELECT status, http_class, count, duration_max, memory_max FROM aerofn.invocation_minutes
		WHERE function_name = $1 AND minute >= $3
		UNION ALL
		SELECT status, CASE WHEN http_status BETWEEN 100 AND 599 THEN http_status / 100 ELSE 0 END, 1, duration_ms, memory_peak_mb
		FROM aerofn.invocations WHERE function_name = $1 AND created_at >= $2 AND created_at < $3
	) c GROUP BY 1, 2`, function, since, whole)
	if err != nil {
		return s, fmt.Errorf("counting invocations: %w", err)
	}
	for rows.Next() {
		var st string
		var class int
		var n int64
		var durMax, memMax float64
		if err := rows.Scan(&st, &class, &n, &durMax, &memMax); err != nil {
			rows.Close()
			return s, fmt.Errorf("counting invocations: %w", err)
		}
		s.ByStatus[st] += n
		if class > 0 {
			s.ByHTTPStatus[fmt.Sprintf("%dxx", class)] += n
		}
		s.Count += n
		s.DurationMS.Max = max(s.DurationMS.Max, durMax)
		s.MemoryMB.Max = max(s.MemoryMB.Max, memMax)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s, fmt.Errorf("counting invocations: %w", err)
	}
	if s.Count == 0 {
		return s, nil
	}
	s.SuccessRate = float64(s.ByStatus["success"]) / float64(s.Count)
	var p50, p95, p99, m50, m95, m99 *float64
	err = r.pool.QueryRow(ctx, `SELECT count(*),
		percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms),
		percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms),
		percentile_cont(0.5) WITHIN GROUP (ORDER BY memory_peak_mb), percentile_cont(0.95) WITHIN GROUP (ORDER BY memory_peak_mb),
		percentile_cont(0.99) WITHIN GROUP (ORDER BY memory_peak_mb)
		FROM (SELECT duration_ms, memory_peak_mb FROM aerofn.invocations WHERE function_name = $1 AND created_at >= $2
			ORDER BY created_at DESC LIMIT $3) s`, function, since, SampleSize).Scan(
		&s.PercentileSample, &p50, &p95, &p99, &m50, &m95, &m99)
	if err != nil {
		return s, fmt.Errorf("computing percentiles: %w", err)
	}
	for _, p := range []struct {
		dst *float64
		v   *float64
	}{{&s.DurationMS.P50, p50}, {&s.DurationMS.P95, p95}, {&s.DurationMS.P99, p99}, {&s.MemoryMB.P50, m50}, {&s.MemoryMB.P95, m95}, {&s.MemoryMB.P99, m99}} {
		if p.v != nil {
			*p.dst = *p.v
		}
	}
	return s, nil
}

// Query selects records for Recent.
type Query struct {
	Function string // "": every function
	Status   string
	Trigger  string
	Since    time.Time
	Limit    int
}

// recordColumns are read by scanRecords, in its order.
const recordColumns = `id, function_id, function_name, version, trigger, status, coalesce(http_status, 0), duration_ms, memory_peak_mb,
	role, coalesce(user_id, ''), coalesce(request_id, ''), coalesce(error, ''), logs, logs_dropped, created_at`

// Recent returns a function's (or every function's) newest records first.
func (r *Reader) Recent(ctx context.Context, q Query) ([]Record, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	// Two statements rather than ($1 = '' OR function_name = $1), so each
	// keeps its own index.
	where := `function_name = $1`
	if q.Function == "" {
		where = `$1 = ''`
	}
	rows, err := r.pool.Query(ctx, `SELECT `+recordColumns+` FROM aerofn.invocations
		WHERE `+where+` AND ($2 = '' OR status = $2) AND ($3 = '' OR trigger = $3) AND created_at >= $4
		ORDER BY created_at DESC LIMIT $5`, q.Function, q.Status, q.Trigger, q.Since, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("reading invocations: %w", err)
	}
	return scanRecords(rows)
}

// byIDs reads the records with the given ids among the named functions
// (nil: any), oldest first.
func byIDs(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, ids []string, functions []string) ([]Record, error) {
	rows, err := q.Query(ctx, `SELECT `+recordColumns+` FROM aerofn.invocations
		WHERE id = ANY($1::uuid[]) AND ($2::text[] IS NULL OR function_name = ANY($2))
		ORDER BY created_at`, ids, functions)
	if err != nil {
		return nil, fmt.Errorf("reading invocations: %w", err)
	}
	return scanRecords(rows)
}

func scanRecords(rows pgx.Rows) ([]Record, error) {
	defer rows.Close()
	out := []Record{}
	for rows.Next() {
		var rec Record
		var logs []byte
		if err := rows.Scan(&rec.ID, &rec.FunctionID, &rec.Function, &rec.Version, &rec.Trigger, &rec.Status, &rec.HTTPStatus, &rec.DurationMS,
			&rec.MemoryPeakMB, &rec.Role, &rec.UserID, &rec.RequestID, &rec.Error, &logs, &rec.LogsDropped, &rec.Timestamp); err != nil {
			return nil, fmt.Errorf("reading invocations: %w", err)
		}
		if err := json.Unmarshal(logs, &rec.Logs); err != nil {
			return nil, fmt.Errorf("decoding logs: %w", err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading invocations: %w", err)
	}
	return out, nil
}

package records

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/engine"
)

func startWriter(t *testing.T) (*Writer, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, _ := dbtest.Migrated(t, 4)
	w := NewWriter(WriterConfig{Pool: pool, Registry: prometheus.NewRegistry()})
	w.Start(ctx)
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w, pool
}

func record(fn string) Record {
	return Record{ID: uuid.NewString(), FunctionID: uuid.NewString(), Function: fn, Version: 1, Trigger: "http",
		Status: "success", Role: "anon", Timestamp: time.Now()}
}

func count(t *testing.T, pool *pgxpool.Pool, fn string) int {
	t.Helper()
	var n int
	dbtest.Must(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM aerofn.invocations WHERE function_name = $1`, fn).Scan(&n), "counting")
	return n
}

// TestHostileTextNeverCostsABatch: NUL and invalid UTF-8 in every text field
// a caller or a guest chooses (request id, user id, error, log lines) are
// stored as U+FFFD, and the records batched with them are stored too.
func TestHostileTextNeverCostsABatch(t *testing.T) {
	w, pool := startWriter(t)
	for range 20 {
		w.Add(record("bystander"))
	}
	bad := record("hostile")
	bad.Status = "error"
	bad.RequestID = "\xff\xfe"
	bad.UserID = "user\x00\xc3"
	bad.Error = "failed\x00here"
	bad.Logs = []engine.LogLine{{Time: time.Now(), Level: "info", Message: "nul\x00 and \xff"}}
	w.Add(bad)
	for range 20 {
		w.Add(record("bystander"))
	}
	w.Flush()
	if n := count(t, pool, "bystander"); n != 40 {
		t.Errorf("%d bystander records stored, want 40", n)
	}
	if d := testutil.ToFloat64(w.metrics.Dropped); d != 0 {
		t.Errorf("records_failed_total = %v, want 0", d)
	}
	var reqID, userID, errText, logs string
	if err := pool.QueryRow(context.Background(), `SELECT request_id, user_id, error, logs::text FROM aerofn.invocations WHERE id = $1`,
		bad.ID).Scan(&reqID, &userID, &errText, &logs); err != nil {
		t.Fatalf("reading the hostile record: %v", err)
	}
	if reqID != "\uFFFD" || userID != "user\uFFFD\uFFFD" || errText != "failed\uFFFDhere" || !strings.Contains(logs, "nul\uFFFD and \uFFFD") {
		t.Errorf("stored request_id %q user_id %q error %q logs %s; want NUL and invalid bytes as U+FFFD", reqID, userID, errText, logs)
	}
}

// TestUnstorableRowCostsOnlyItself: a row the database refuses whatever its
// text (here a function id that is not a uuid) is counted as failed alone;
// the rest of its batch is stored, one row at a time.
func TestUnstorableRowCostsOnlyItself(t *testing.T) {
	w, pool := startWriter(t)
	for i := range 30 {
		if i == 10 {
			r := record("broken")
			r.FunctionID = "not-a-uuid"
			w.Add(r)
		}
		w.Add(record("bystander"))
	}
	w.Flush()
	if n := count(t, pool, "bystander"); n != 30 {
		t.Errorf("%d bystander records stored, want 30", n)
	}
	if d := testutil.ToFloat64(w.metrics.Dropped); d != 1 {
		t.Errorf("records_failed_total = %v, want 1", d)
	}
}

// writeCounter counts Write calls and keeps what was written.
type writeCounter struct {
	mu     sync.Mutex
	writes int
	buf    strings.Builder
}

func (c *writeCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}

// TestStdoutLinesBatched: every call gets its one JSON line on Stdout, and a
// burst of calls costs one write per batch, not one per call (a system call
// on each request's path before). Lines come out by Flush, and by Stop for
// what is still queued.
func TestStdoutLinesBatched(t *testing.T) {
	ctx := context.Background()
	pool, _ := dbtest.Migrated(t, 4)
	out := &writeCounter{}
	w := NewWriter(WriterConfig{Pool: pool, Stdout: out})
	w.Start(ctx)
	const n = 200
	for i := range n {
		r := record("lines")
		r.UserID = fmt.Sprintf("user-%d", i)
		w.Add(r)
	}
	w.Flush()
	out.mu.Lock()
	writes, text := out.writes, out.buf.String()
	out.mu.Unlock()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines after Flush, want %d", len(lines), n)
	}
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["function"] != "lines" || m["user_id"] != fmt.Sprintf("user-%d", i) || m["status"] != "success" {
			t.Fatalf("line %d: %q (%v)", i, l, err)
		}
	}
	if writes > n/10 {
		t.Errorf("%d writes for %d lines: not batched", writes, n)
	}
	w.Add(record("last"))
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.buf.String(), `"function":"last"`) {
		t.Error("the line of a record queued at Stop was not written")
	}
}

// TestStdoutLineCarriesBoundedLogs: the one stdout line per call carries
// the function's own log lines, at most stdoutLogLines of at most
// stdoutLogBytes each, and says when it cut them.
func TestStdoutLineCarriesBoundedLogs(t *testing.T) {
	ctx := context.Background()
	_, pool := startWriter(t)
	out := &writeCounter{}
	w := NewWriter(WriterConfig{Pool: pool, Stdout: out})
	w.Start(ctx)
	t.Cleanup(func() { _ = w.Stop(ctx) })
	r := record("chatty")
	for i := range 25 {
		r.Logs = append(r.Logs, engine.LogLine{Level: "info", Message: strings.Repeat("x", i*100)})
	}
	w.Add(r)
	small := record("quiet")
	small.Logs = []engine.LogLine{{Level: "warn", Message: "one line"}}
	w.Add(small)
	w.Flush()
	lines := strings.Split(strings.TrimSpace(out.buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d stdout lines, want 2: %q", len(lines), out.buf.String())
	}
	var chatty, quiet struct {
		Logs          []engine.LogLine `json:"logs"`
		LogsTruncated bool             `json:"logs_truncated"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &chatty); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &quiet); err != nil {
		t.Fatal(err)
	}
	if len(chatty.Logs) != stdoutLogLines || !chatty.LogsTruncated || len(chatty.Logs[19].Message) > stdoutLogBytes+len("…") {
		t.Errorf("chatty line: %d logs, truncated %v, last %d bytes", len(chatty.Logs), chatty.LogsTruncated, len(chatty.Logs[19].Message))
	}
	if len(quiet.Logs) != 1 || quiet.Logs[0].Message != "one line" || quiet.LogsTruncated {
		t.Errorf("quiet line: %+v", quiet)
	}
}

package records

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aerodb/aerofn/internal/db/dbtest"
)

func recordWith(fn, status string) Record {
	r := record(fn)
	r.Status = status
	return r
}

// Stop writes every record added before it, even a buffer's worth queued
// behind a full channel; an Add after Stop is refused and counted, never a
// panic; Stop is safe twice.
func TestStopDrainsThenRefuses(t *testing.T) {
	ctx := context.Background()
	pool, _ := dbtest.Migrated(t, 4)

	w := NewWriter(WriterConfig{Pool: pool, Buffer: 8})
	dbtest.Must(t, w.Start(ctx), "starting")
	const n = 100 // many times the buffer: Add blocks while the loop writes
	for i := 0; i < n; i++ {
		w.Add(recordWith("f", "interrupted"))
	}
	dbtest.Must(t, w.Stop(ctx), "stopping")
	dbtest.Must(t, w.Stop(ctx), "stopping again")
	w.Add(record("late"))
	if got := testutil.ToFloat64(w.metrics.Dropped); got != 1 {
		t.Fatalf("records refused after stop: %v, want 1", got)
	}
	var written int
	dbtest.Must(t, pool.QueryRow(ctx, `SELECT count(*) FROM aerofn.invocations WHERE function_name = 'f' AND status = 'interrupted'`).Scan(&written), "counting")
	if written != n {
		t.Fatalf("%d of %d records written", written, n)
	}
}

// A writer never started can be stopped, and refuses records after.
func TestStopWithoutStart(t *testing.T) {
	w := NewWriter(WriterConfig{})
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Add(record("f"))
	if got := testutil.ToFloat64(w.metrics.Dropped); got != 1 {
		t.Fatalf("refused: %v, want 1", got)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

package records

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/db/dbtest"
)

// seed inserts n records of fn, the newest at newest and each one a
// second older than the one before.
func seed(t *testing.T, pool *pgxpool.Pool, fn string, n int, newest time.Time) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `INSERT INTO aerofn.invocations
		(id, function_id, function_name, version, trigger, status, http_status, duration_ms, memory_peak_mb, role, created_at)
		SELECT gen_random_uuid(), gen_random_uuid(), $1, 1, 'http', 'success', 200, i, 1, 'anon', $3::timestamptz - i * interval '1 second'
		FROM generate_series(0, $2 - 1) i`, fn, n, newest)
	dbtest.Must(t, err, "seeding records")
}

// TestPruneByAgeAndCountInBatches: records past the age go, a function's
// records past the cap go oldest first, in batches of BatchSize; the rest,
// and other functions' records, stay; the per-minute counts keep counting
// the calls pruned by count.
func TestPruneByAgeAndCountInBatches(t *testing.T) {
	_, pool := startWriter(t)
	ctx := context.Background()
	now := time.Now()
	seed(t, pool, "aged", 50, now.Add(-8*24*time.Hour))
	seed(t, pool, "aged", 30, now)
	seed(t, pool, "capped", 250, now)
	seed(t, pool, "other", 20, now)

	p := NewPruner(pool, RetentionConfig{MaxAge: 7 * 24 * time.Hour, MaxPerFunction: 100, BatchSize: 20, Pause: -1}, nil, nil)
	res, err := p.PruneOnce(ctx)
	dbtest.Must(t, err, "pruning")
	if res.ByAge != 50 || res.ByCount != 150 || res.Skipped {
		t.Fatalf("pruned %+v, want 50 by age and 150 by count", res)
	}
	// 50 by age in batches of 20: 3; 150 by count: 8 (the last one short);
	// plus at least one for the old per-minute rows.
	if res.Batches < 12 {
		t.Fatalf("%d batches, want small batches (>= 12)", res.Batches)
	}
	for fn, want := range map[string]int{"aged": 30, "capped": 100, "other": 20} {
		if n := count(t, pool, fn); n != want {
			t.Errorf("%s has %d records, want %d", fn, n, want)
		}
	}
	var oldest time.Time
	dbtest.Must(t, pool.QueryRow(ctx, `SELECT min(created_at) FROM aerofn.invocations WHERE function_name = 'capped'`).Scan(&oldest), "oldest")
	if want := now.Add(-99 * time.Second); oldest.Before(want.Add(-time.Millisecond)) {
		t.Errorf("capped keeps a record from %v, older than its newest 100 (%v)", oldest, want)
	}
	st, err := NewReader(pool).Stats(ctx, "capped", now.Add(-time.Hour))
	dbtest.Must(t, err, "stats")
	if st.Count != 250 || st.PercentileSample != 100 {
		t.Errorf("stats count %d over sample %d, want every call (250) with percentiles over the 100 kept", st.Count, st.PercentileSample)
	}
	var oldMinutes int
	dbtest.Must(t, pool.QueryRow(ctx, `SELECT count(*) FROM aerofn.invocation_minutes WHERE minute < now() - interval '7 days'`).Scan(&oldMinutes), "minutes")
	if oldMinutes != 0 {
		t.Errorf("%d per-minute rows older than the max age remain", oldMinutes)
	}

	again, err := p.PruneOnce(ctx)
	dbtest.Must(t, err, "pruning again")
	if again.ByAge+again.ByCount != 0 {
		t.Errorf("second round pruned %+v, want nothing", again)
	}
}

// TestPruneOneNodeAtATime: while another session holds the prune lock, a
// round is skipped and deletes nothing.
func TestPruneOneNodeAtATime(t *testing.T) {
	_, pool := startWriter(t)
	ctx := context.Background()
	seed(t, pool, "aged", 10, time.Now().Add(-30*24*time.Hour))
	conn, err := pool.Acquire(ctx)
	dbtest.Must(t, err, "acquiring")
	defer conn.Release()
	_, err = conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(pruneLock))
	dbtest.Must(t, err, "locking")
	p := NewPruner(pool, RetentionConfig{MaxAge: time.Hour, MaxPerFunction: 1}, nil, nil)
	res, err := p.PruneOnce(ctx)
	dbtest.Must(t, err, "pruning")
	if !res.Skipped || count(t, pool, "aged") != 10 {
		t.Fatalf("pruned %+v while another node held the lock", res)
	}
	_, err = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(pruneLock))
	dbtest.Must(t, err, "unlocking")
	if res, err = p.PruneOnce(ctx); err != nil || res.ByAge != 10 {
		t.Fatalf("after the lock was released: %+v %v", res, err)
	}
}

// TestStatsCountExactlySince: counts cover exactly the calls at or after
// since, whether they fall in whole minutes or the part minute before.
func TestStatsCountExactlySince(t *testing.T) {
	w, pool := startWriter(t)
	now := time.Now()
	for i, ago := range []time.Duration{150 * time.Second, 61 * time.Second, 59 * time.Second, 30 * time.Second, time.Second} {
		r := record("timed")
		r.Timestamp = now.Add(-ago)
		r.DurationMS = float64(10 * (i + 1))
		r.HTTPStatus = 200
		if i == 3 {
			r.Status, r.HTTPStatus = "error", 500
		}
		w.Add(r)
	}
	w.Flush()
	st, err := NewReader(pool).Stats(context.Background(), "timed", now.Add(-60*time.Second))
	dbtest.Must(t, err, "stats")
	if st.Count != 3 || st.ByStatus["success"] != 2 || st.ByStatus["error"] != 1 || st.ByHTTPStatus["5xx"] != 1 || st.ByHTTPStatus["2xx"] != 2 {
		t.Fatalf("stats %+v, want the 3 calls of the last minute", st)
	}
	if st.DurationMS.Max != 50 || st.DurationMS.P50 != 40 || st.PercentileSample != 3 {
		t.Fatalf("durations %+v over %d", st.DurationMS, st.PercentileSample)
	}
}

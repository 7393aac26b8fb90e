package records

import (
	"context"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/engine"
)

// TestRecentFilters: what the writer stores, Recent reads back field for
// field, newest first, filtered by function, status, trigger and time, and
// bounded by the limit (an out-of-range limit falls back to 100).
func TestRecentFilters(t *testing.T) {
	ctx := context.Background()
	w, pool := startWriter(t)
	base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	var want Record
	for i := range 5 {
		r := record("alpha")
		r.Timestamp = base.Add(time.Duration(i) * time.Second)
		if i%2 == 1 {
			r.Status, r.Error, r.Trigger = "error", "boom", "schedule"
		}
		if i == 4 {
			r.HTTPStatus, r.DurationMS, r.UserID, r.RequestID = 201, 12.5, "user-1", "req-1"
			r.Logs = []engine.LogLine{{Level: "info", Message: "hello"}}
			want = r
		}
		w.Add(r)
	}
	w.Add(record("beta"))
	w.Flush()

	rd := NewReader(pool)
	got, err := rd.Recent(ctx, Query{Function: "alpha"})
	dbtest.Must(t, err, "reading")
	if len(got) != 5 {
		t.Fatalf("Recent(alpha) = %d records, want 5", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Timestamp.After(got[i-1].Timestamp) {
			t.Fatalf("not newest first: %v before %v", got[i-1].Timestamp, got[i].Timestamp)
		}
	}
	g := got[0]
	if g.ID != want.ID || g.Function != "alpha" || g.Status != want.Status || g.HTTPStatus != 201 || g.DurationMS != 12.5 ||
		g.UserID != "user-1" || g.RequestID != "req-1" || len(g.Logs) != 1 || g.Logs[0].Message != "hello" || !g.Timestamp.Equal(want.Timestamp) {
		t.Fatalf("newest record = %+v, want %+v", g, want)
	}
	for _, tc := range []struct {
		q    Query
		want int
	}{
		{Query{Function: "alpha", Status: "error"}, 2},
		{Query{Function: "alpha", Trigger: "schedule"}, 2},
		{Query{Function: "alpha", Since: base.Add(2500 * time.Millisecond)}, 2},
		{Query{Function: "alpha", Limit: 3}, 3},
		{Query{Function: "alpha", Limit: 100000}, 5},
		{Query{}, 6},
		{Query{Function: "nobody"}, 0},
	} {
		rs, err := rd.Recent(ctx, tc.q)
		dbtest.Must(t, err, "reading")
		if len(rs) != tc.want {
			t.Errorf("Recent(%+v) = %d records, want %d", tc.q, len(rs), tc.want)
		}
	}
}

package sqlexec_test

import (
	"context"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/sqlexec"
	"github.com/aerodb/aerofn/internal/sqlexec/attacks"
)

// benchSQL is a typical function query: the owner's rows of an RLS table.
const benchSQL = "SELECT id, title, done FROM todos WHERE done = $1"

func benchEnv(b *testing.B) *env {
	v := newEnv(b, sqlexec.Config{PoolSize: 2})
	if _, err := attacks.Setup(context.Background(), v.admin); err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkQuery is the whole db_query path: acquire, BEGIN, identity and
// timeout, the statement under RLS, COMMIT, DISCARD ALL.
func BenchmarkQuery(b *testing.B) {
	v := benchEnv(b)
	ctx, p := context.Background(), attacks.Victim()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.exec.Query(ctx, p, benchSQL, []any{false}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBarePGX is the same statement by plain pgx on the admin pool.
func BenchmarkBarePGX(b *testing.B) {
	v := benchEnv(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		rows, err := v.admin.Query(ctx, benchSQL, false)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
		}
		rows.Close()
		if rows.Err() != nil {
			b.Fatal(rows.Err())
		}
	}
}

// TestBenchCompare runs BenchCompare briefly so that it cannot rot, and
// logs the distributions.
func TestBenchCompare(t *testing.T) {
	v := newEnv(t, sqlexec.Config{PoolSize: 2})
	ctx := context.Background()
	if _, err := attacks.Setup(ctx, v.admin); err != nil {
		t.Fatal(err)
	}
	n := 300
	if testing.Short() {
		n = 20
	}
	r, err := sqlexec.BenchCompare(ctx, v.exec, v.admin, attacks.Victim(), benchSQL, []any{false}, n)
	if err != nil {
		t.Fatal(err)
	}
	if r.Executor.N != n || r.Bare.N != n || r.Executor.P50 <= 0 || r.Bare.P50 <= 0 {
		t.Fatalf("result %+v", r)
	}
	t.Logf("db_query p50 %v p95 %v p99 %v | bare pgx p50 %v p95 %v p99 %v",
		r.Executor.P50.Round(time.Microsecond), r.Executor.P95.Round(time.Microsecond), r.Executor.P99.Round(time.Microsecond),
		r.Bare.P50.Round(time.Microsecond), r.Bare.P95.Round(time.Microsecond), r.Bare.P99.Round(time.Microsecond))
}

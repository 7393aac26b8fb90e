package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/bench"
	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/hostfn"
	"github.com/aerodb/aerofn/internal/latency"
	"github.com/aerodb/aerofn/internal/registry"
	"github.com/aerodb/aerofn/internal/server"
)

// dbQuery compares one RLS-scoped lookup made from inside a real Go-SDK
// function (examples/sql-proxy, timed at the host boundary: guard, role
// pool, BEGIN, identity, statement, COMMIT, DISCARD ALL) with the same
// statement sent by bare pgx on the admin pool, interleaved.
func dbQuery(ctx context.Context, srv *server.Server, dbURL string, n int) (bench.Section, error) {
	const user = "6f1f2b4e-8c1e-4a44-9a37-0d6a8c6b1a11"
	if _, err := srv.Pool.Exec(ctx, `
		CREATE TABLE bench_items (id bigint PRIMARY KEY, owner uuid NOT NULL, title text NOT NULL);
		ALTER TABLE bench_items ENABLE ROW LEVEL SECURITY;
		ALTER TABLE bench_items FORCE ROW LEVEL SECURITY;
		CREATE POLICY own ON bench_items FOR SELECT USING (owner = (SELECT auth.uid()));
		GRANT SELECT ON bench_items TO authenticated;
		INSERT INTO bench_items SELECT g, CASE WHEN g % 2 = 0 THEN '`+user+`'::uuid ELSE gen_random_uuid() END, 'item ' || g FROM generate_series(1, 10000) g;
		ANALYZE bench_items;`); err != nil {
		return bench.Section{}, fmt.Errorf("creating bench table: %w", err)
	}
	proxy, err := example("sql-proxy")
	if err != nil {
		return bench.Section{}, err
	}
	mod, err := srv.Engine.Load(registry.Hash(proxy), func() ([]byte, error) { return proxy, nil })
	if err != nil {
		return bench.Section{}, err
	}
	const sql = "SELECT id, title FROM bench_items WHERE id = $1"
	p := auth.Principal{Role: auth.RoleAuthenticated, UserID: user}
	timed := &timedDB{inner: srv.SQL}
	lim := engine.Limits{Timeout: 10 * time.Second, MemoryBytes: 128 << 20}
	var bare, whole []time.Duration
	paths := srv.SQL.Paths()

	var fast0, slow0 int64
	for i := 0; i < n+100; i++ {
		if i == 100 {
			fast0, slow0 = paths.Fast.Load(), paths.Slow.Load()
		}
		id := 2 * (i%5000 + 1) // rows the user owns
		ev := fmt.Sprintf(`{"trigger":"http","body":{"sql":%q,"params":[%d]}}`, sql, id)
		host := &hostfn.Call{Principal: p, DB: timed}
		t0 := time.Now()
		res := srv.Engine.Run(ctx, mod, []byte(ev), lim, host)
		d := time.Since(t0)
		if res.Status != engine.StatusSuccess || len(res.Output) < 10 || res.Output[2] != 'r' {
			return bench.Section{}, fmt.Errorf("sql-proxy: %s %v %s", res.Status, res.Err, res.Output)
		}
		t0 = time.Now()
		rows, err := srv.Pool.Query(ctx, sql, id)
		if err != nil {
			return bench.Section{}, err
		}
		for rows.Next() {
		}
		rows.Close()
		b := time.Since(t0)
		if i >= 100 {
			whole = append(whole, d)
			bare = append(bare, b)
		}
	}
	timed.samples = timed.samples[100:]
	fast, slow := paths.Fast.Load()-fast0, paths.Slow.Load()-slow0
	rows := []bench.Row{
		{Name: "bare pgx, admin pool, same statement", Dist: latency.Summarize(bare)},
		{Name: "db_query from a Go-SDK function, at the host boundary", Dist: latency.Summarize(timed.samples)},
		{Name: "the whole function call (cold start + db_query + JSON)", Dist: latency.Summarize(whole)},
	}
	bench.Check(&rows[1], 600*time.Microsecond)
	return bench.Section{
		Title: "db_query round trip under row-level security",
		About: "A primary-key lookup on a 10,000-row table with an owner-only policy, as an authenticated user. The function is `examples/sql-proxy` run by the engine with the real executor; each `db_query` is timed where the guest's call enters and leaves the host. Bare pgx runs the same statement on the admin pool, interleaved call by call.",
		Rows:  rows,
		Ratio: fmt.Sprintf("db_query / bare pgx: %.1fx at p50, %.1fx at p95. %d of the %d measured calls took the fast path: a read is one round trip (BEGIN, the identity token for this backend and a window of transaction start, statement_timeout, the statement and a check that it wrote nothing, together; COMMIT and the session reset follow after the call returns); %d the slow path (three round trips). The policy is written as docs/RLS.md advises, owner = (SELECT auth.uid()).", ratio(rows[1].Dist.P50, rows[0].Dist.P50), ratio(rows[1].Dist.P95, rows[0].Dist.P95), fast, fast+slow, slow),
	}, nil
}

package sqlexec_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/sqlexec"
	"github.com/aerodb/aerofn/internal/sqlexec/token"
)

const fastUser = "5b0c7a52-2f0e-4a8e-9c61-0d9a1c2b3e4f"

// fastEnv is a table of the user's rows under an owner-only policy.
func fastEnv(t *testing.T, cfg sqlexec.Config) *env {
	t.Helper()
	v := newEnv(t, cfg)
	v.execAdmin(t, `CREATE TABLE notes (id int PRIMARY KEY, owner uuid NOT NULL, body text NOT NULL, k int NOT NULL DEFAULT 0);
		ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
		ALTER TABLE notes FORCE ROW LEVEL SECURITY;
		CREATE POLICY own ON notes USING (owner = (SELECT auth.uid())) WITH CHECK (owner = (SELECT auth.uid()));
		GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO authenticated;
		INSERT INTO notes SELECT g, CASE WHEN g % 2 = 0 THEN '`+fastUser+`'::uuid ELSE gen_random_uuid() END, 'note ' || g, g FROM generate_series(1, 20) g;
		CREATE FUNCTION add_note(n int) RETURNS int LANGUAGE sql VOLATILE
			BEGIN ATOMIC INSERT INTO notes (id, owner, body) VALUES (n, auth.uid(), 'from a function') RETURNING id; END;
		GRANT EXECUTE ON FUNCTION add_note(int) TO authenticated;`)
	return v
}

func counts(e *sqlexec.Executor) (fast, slow, fallback int64) {
	p := e.Paths()
	return p.Fast.Load(), p.Slow.Load(), p.Fallback.Load()
}

// The second call of a statement takes the fast path, and answers as the
// first did.
func TestFastPathTaken(t *testing.T) {
	v := fastEnv(t, sqlexec.Config{PoolSize: 1})
	p := user(fastUser)
	const q = "SELECT id, body, owner = auth.uid() AS mine FROM notes WHERE id <= $1 ORDER BY id"
	first := mustQuery(t, v.exec, p, q, 6)
	f0, s0, _ := counts(v.exec)
	if f0 != 0 || s0 != 1 {
		t.Fatalf("first call: fast %d slow %d; want the slow path", f0, s0)
	}
	for range 5 {
		again := mustQuery(t, v.exec, p, q, 6)
		if fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("fast path answered %v, slow path %v", again, first)
		}
	}
	// A call may fall back now and then on a loaded machine (a token that
	// missed its window); most must not.
	if f, s, fb := counts(v.exec); f < 4 || f+s != 6 || fb > 1 {
		t.Fatalf("after five more calls: fast %d slow %d fallback %d; want the fast path for (nearly) all", f, s, fb)
	}
	if len(first) != 3 || first[0]["mine"] != true {
		t.Fatalf("rows %v", first)
	}
	// Another user's identity on the same connection, same statement.
	other := mustQuery(t, v.exec, user("00000000-0000-4000-8000-000000000000"), q, 6)
	if len(other) != 0 {
		t.Fatalf("another user sees %v", other)
	}
}

// A token is refused outside its window, on another backend or database role,
// or forged;
// inside its window on its own backend it is the caller's identity.
func TestWindowTokenVerified(t *testing.T) {
	v := fastEnv(t, sqlexec.Config{PoolSize: 1})
	ctx := context.Background()
	p := user(fastUser)
	res, err := v.exec.QueryUnguarded(ctx, p, "SELECT pg_backend_pid() AS pid", nil)
	if err != nil {
		t.Fatal(err)
	}
	var pid int64
	fmt.Sscan(strings.Trim(strings.Split(string(res.Rows[0]), ":")[1], "}"), &pid)
	if pid == 0 {
		t.Fatalf("no pid in %s", res.Rows[0])
	}
	now := time.Now().UnixMicro()
	signAs := func(key []byte, dbRole string, pid, from, to int64) string {
		return token.Sign(key, token.Identity{Sub: "a1a1a1a1-0000-4000-8000-000000000001", Role: "authenticated", DBRole: dbRole, PID: pid,
			NotBefore: from, NotAfter: to, Expires: time.Now().Add(time.Minute)})
	}
	sign := func(key []byte, pid, from, to int64) string { return signAs(key, "authenticated", pid, from, to) }
	cases := []struct {
		name, tok, want string
	}{
		{"inside its window", sign(v.exec.Key(), pid, now-int64(time.Minute/time.Microsecond), now+int64(time.Minute/time.Microsecond)), "uid=a1a1a1a1-0000-4000-8000-000000000001"},
		{"window passed", sign(v.exec.Key(), pid, now-20_000_000, now-10_000_000), "outside its window"},
		{"window to come", sign(v.exec.Key(), pid, now+10_000_000, now+20_000_000), "outside its window"},
		{"another backend", sign(v.exec.Key(), pid+1, now-60_000_000, now+60_000_000), "another connection"},
		{"another database role", signAs(v.exec.Key(), "service_role", pid, now-60_000_000, now+60_000_000), "not for this session's role"},
		{"forged", sign([]byte("not the key, but 32 bytes long!!"), pid, now-60_000_000, now+60_000_000), "does not verify"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sql := `DO $$BEGIN EXECUTE 'SET LOCAL aerofn.token = ''` + c.tok + `'''; RAISE EXCEPTION 'uid=%', auth.uid(); END$$`
			_, err := v.exec.QueryUnguarded(ctx, p, sql, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want an error saying %q", err, c.want)
			}
			// The call after runs on the same (one) connection, as itself.
			rows := mustQuery(t, v.exec, p, "SELECT auth.uid()::text AS uid")
			if rows[0]["uid"] != fastUser {
				t.Fatalf("next call sees %v", rows)
			}
		})
	}
}

// A wrong clock reading makes the fast path's token miss its window: the
// database refuses it, the call falls back to the slow path and succeeds,
// and the slow path reads the clock again.
func TestFastPathFallsBackOnBadClock(t *testing.T) {
	v := fastEnv(t, sqlexec.Config{PoolSize: 1})
	ctx := context.Background()
	p := user(fastUser)
	const q = "SELECT count(*) AS n FROM notes"
	for range 3 {
		mustQuery(t, v.exec, p, q)
	}
	for _, skew := range []time.Duration{-10 * time.Second, 10 * time.Second} {
		skewed := 0
		for deadline := time.Now().Add(5 * time.Second); skewed == 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond) // until the background reset has released the connection
			skewed = v.exec.SkewClocks(ctx, skew)
		}
		if skewed == 0 {
			t.Fatal("no connection had a clock reading")
		}
		_, _, fb0 := counts(v.exec)
		if rows := mustQuery(t, v.exec, p, q); fmt.Sprint(rows[0]["n"]) != "10" {
			t.Fatalf("skew %v: rows %v", skew, rows)
		}
		if _, _, fb := counts(v.exec); fb != fb0+1 {
			t.Fatalf("skew %v: fallbacks %d -> %d; want one", skew, fb0, fb)
		}
	}
	// A reading older than the fast path trusts is not used: the call runs
	// on the slow path without trying its luck with a token.
	aged := 0
	for deadline := time.Now().Add(5 * time.Second); aged == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		aged = v.exec.AgeClocks(ctx, sqlexec.MaxClockAge+time.Second)
	}
	if aged == 0 {
		t.Fatal("no connection had a clock reading to age")
	}
	f1, s1, fb1 := counts(v.exec)
	mustQuery(t, v.exec, p, q)
	if f, s, fb := counts(v.exec); f != f1 || s != s1+1 || fb != fb1+1 {
		t.Fatalf("with a stale reading: fast %d, slow %d, fallbacks %d; want the slow path", f-f1, s-s1, fb-fb1)
	}
	// The slow path read the clock again: calls go fast again.
	f0, _, _ := counts(v.exec)
	for range 6 {
		mustQuery(t, v.exec, p, q)
	}
	if f, _, _ := counts(v.exec); f-f0 < 4 {
		t.Fatalf("after the fallback: %d fast calls of 6", f-f0)
	}
}

// A description cached before a schema change: a parameter it can no longer
// bind, and a result column of a type the executor has not seen.
func TestFastPathStaleDescription(t *testing.T) {
	v := fastEnv(t, sqlexec.Config{PoolSize: 1})
	p := user(fastUser)
	const q = "SELECT id, k FROM notes WHERE k = $1"
	for range 2 {
		if rows := mustQuery(t, v.exec, p, q, 4); len(rows) != 1 || fmt.Sprint(rows[0]["k"]) != "4" {
			t.Fatalf("rows %v", rows)
		}
	}
	v.execAdmin(t, "ALTER TABLE notes ALTER COLUMN k TYPE text USING 'k' || k")
	if rows := mustQuery(t, v.exec, p, q, "k4"); len(rows) != 1 || rows[0]["k"] != "k4" {
		t.Fatalf("after k became text: rows %v", rows)
	}
	// Cache the description while k is text, then make it a type the
	// executor has never seen.
	const byID = "SELECT id, k FROM notes WHERE id = $1"
	for range 2 {
		mustQuery(t, v.exec, p, byID, 4)
	}
	// (A domain would not do: the protocol describes a domain column by
	// its base type.)
	v.execAdmin(t, `CREATE TYPE boxed AS (v text); ALTER TABLE notes ALTER COLUMN k DROP DEFAULT, ALTER COLUMN k TYPE boxed USING ROW(k)::boxed`)
	f0, s0, fb0 := counts(v.exec)
	rows := mustQuery(t, v.exec, p, byID, 4)
	if f, s, fb := counts(v.exec); fb != fb0+1 {
		t.Fatalf("fallbacks %d -> %d; want the fast path to give up once (fast %d->%d slow %d->%d) %v", fb0, fb, f0, f, s0, s, rows)
	}
	if rows[0]["k"] != "(k4)" {
		t.Fatalf("a column of a new composite type came back as %#v", rows[0]["k"])
	}
}

// Writes on the fast path commit before the call returns: a plain INSERT,
// and a SELECT whose function writes. A write whose result breaks a limit
// commits nothing.
func TestFastPathWrites(t *testing.T) {
	v := fastEnv(t, sqlexec.Config{PoolSize: 1, MaxRows: 5})
	ctx := context.Background()
	p := user(fastUser)
	visible := func(id int) bool {
		var n int
		if err := v.admin.QueryRow(ctx, "SELECT count(*) FROM notes WHERE id = $1", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	for id := 100; id < 104; id++ {
		mustQuery(t, v.exec, p, "INSERT INTO notes (id, owner, body) VALUES ($1, auth.uid(), 'x')", id)
		if !visible(id) {
			t.Fatalf("INSERT %d returned before it committed", id)
		}
	}
	for id := 200; id < 204; id++ {
		mustQuery(t, v.exec, p, "SELECT add_note($1) AS id", id)
		if !visible(id) {
			t.Fatalf("SELECT add_note(%d) returned before its write committed", id)
		}
	}
	if f, _, _ := counts(v.exec); f < 4 { // of 6; a fallback now and then is allowed
		t.Fatalf("only %d calls took the fast path", f)
	}
	// A write that fails only at COMMIT (a deferred foreign key) reports
	// the failure, on the fast path as on the slow.
	v.execAdmin(t, "ALTER TABLE notes ADD COLUMN parent int REFERENCES notes (id) DEFERRABLE INITIALLY DEFERRED")
	fastFK := 0
	for i := range 4 {
		f0, _, _ := counts(v.exec)
		_, err := v.exec.Query(ctx, p, "INSERT INTO notes (id, owner, body, parent) VALUES ($1, auth.uid(), 'orphan', 9999)", []any{500 + i})
		if errCode(err) != "23503" {
			t.Fatalf("call %d: an INSERT failing at COMMIT answered %v", i, err)
		}
		if f, _, _ := counts(v.exec); f == f0+1 {
			fastFK++
		}
	}
	if fastFK < 2 {
		t.Fatalf("%d of the failing INSERTs took the fast path", fastFK)
	}
	const bulk = "INSERT INTO notes (id, owner, body) SELECT g, auth.uid(), 'bulk' FROM generate_series($1::int, $1::int + $2::int - 1) g RETURNING id"
	mustQuery(t, v.exec, p, bulk, 300, 2)
	tookFast := false
	for try := 0; try < 3 && !tookFast; try++ {
		first := 400 + 10*try
		f0, _, _ := counts(v.exec)
		_, err := v.exec.Query(ctx, p, bulk, []any{first, 6})
		if errCode(err) != sqlexec.CodeTooManyRows {
			t.Fatalf("6 rows returned with MaxRows 5: %v", err)
		}
		if visible(first) {
			t.Fatal("an INSERT whose result broke MaxRows committed")
		}
		f, _, _ := counts(v.exec)
		tookFast = f == f0+1
	}
	if !tookFast {
		t.Fatal("the over-limit INSERT never took the fast path")
	}
}

// The host's statements stay prepared on the connection across calls (their
// plans with them), one per statement text; one deallocated behind the
// host's back is prepared again.
func TestFastPathKeepsStatements(t *testing.T) {
	v := fastEnv(t, sqlexec.Config{PoolSize: 1})
	ctx := context.Background()
	p := user(fastUser)
	const q = "SELECT id FROM notes WHERE id = $1"
	kept := func() string {
		res, err := v.exec.QueryUnguarded(ctx, p, `SELECT (SELECT prepare_time::text FROM pg_prepared_statements WHERE statement = $1 AND NOT from_sql) AS q_prepared,
			(SELECT count(*) FROM pg_prepared_statements WHERE from_sql) AS sql`, []any{q})
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Rows[0])
	}
	for i := range 5 {
		mustQuery(t, v.exec, p, q, 2*i+2)
	}
	kept() // prepares itself on this connection
	before := kept()
	for i := range 5 {
		mustQuery(t, v.exec, p, q, 2*i+2)
	}
	if after := kept(); after != before || !strings.Contains(after, `"sql":0`) || strings.Contains(after, `"q_prepared":null`) {
		t.Fatalf("prepared statements went from %s to %s; want the statement kept (prepared once), none made with SQL", before, after)
	}
	// Deallocated behind the host's back (only an unguarded statement can).
	if _, err := v.exec.QueryUnguarded(ctx, p, "DEALLOCATE ALL", nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if rows := mustQuery(t, v.exec, p, q, 2); len(rows) != 1 {
			t.Fatalf("call %d after DEALLOCATE ALL: rows %v", i, rows)
		}
	}
	f0, _, fb0 := counts(v.exec)
	for range 3 {
		mustQuery(t, v.exec, p, q, 2)
	}
	if f, _, fb := counts(v.exec); f < f0+2 || fb > fb0+1 {
		t.Fatalf("after recovering: fast %d of 3, fallbacks %d", f-f0, fb-fb0)
	}
}

// The caches' limits, crossed: more distinct statements than a connection
// keeps, a statement text too long to keep, and more descriptions than the
// executor keeps. Every call still answers right; nothing grows past its
// bound.
func TestFastPathCacheLimits(t *testing.T) {
	v := fastEnv(t, sqlexec.Config{PoolSize: 1})
	ctx := context.Background()
	p := user(fastUser)
	kept := func() (host, long int) {
		t.Helper()
		res, err := v.exec.QueryUnguarded(ctx, p, `SELECT count(*) FILTER (WHERE NOT from_sql) AS host,
			count(*) FILTER (WHERE length(statement) > $1) AS long FROM pg_prepared_statements`, []any{sqlexec.MaxDescSQL})
		if err != nil {
			t.Fatal(err)
		}
		rows := decodeRows(t, res)
		fmt.Sscan(fmt.Sprint(rows[0]["host"]), &host)
		fmt.Sscan(fmt.Sprint(rows[0]["long"]), &long)
		return host, long
	}

	// More distinct statements than one connection keeps: the reset after
	// the one that passes the bound deallocates them all.
	most := 0
	for i := range sqlexec.MaxConnStmts + 10 {
		q := fmt.Sprintf("SELECT $1::int + %d AS n", i)
		for range 2 {
			rows := mustQuery(t, v.exec, p, q, 1)
			if fmt.Sprint(rows[0]["n"]) != fmt.Sprint(1+i) {
				t.Fatalf("statement %d answered %v", i, rows)
			}
		}
		if host, _ := kept(); host > most {
			most = host
		}
	}
	if most > sqlexec.MaxConnStmts+4 { // the bound, plus this check's own, BEGIN and the write check
		t.Fatalf("the connection held %d prepared statements; the bound is %d", most, sqlexec.MaxConnStmts)
	}
	if host, _ := kept(); host >= most {
		t.Fatalf("%d statements held after passing the bound (at most %d before): they were not deallocated", host, most)
	}

	// A statement text too long to keep runs every time on the slow path,
	// under one scratch name, and answers right.
	long := "SELECT $1::int AS n /* " + strings.Repeat("x", sqlexec.MaxDescSQL) + " */"
	f0, s0, _ := counts(v.exec)
	for i := range 3 {
		if rows := mustQuery(t, v.exec, p, long, i); fmt.Sprint(rows[0]["n"]) != fmt.Sprint(i) {
			t.Fatalf("long statement answered %v", rows)
		}
	}
	if f, s, _ := counts(v.exec); f != f0 || s != s0+3 {
		t.Fatalf("long statement: %d fast, %d slow calls of 3; want all slow", f-f0, s-s0)
	}
	if _, n := kept(); n > 1 {
		t.Fatalf("%d long statement texts held on the connection; want at most the one scratch statement", n)
	}

	// More descriptions than the executor keeps.
	v.exec.FillDescCache(sqlexec.MaxDescs + 100)
	if n := v.exec.DescCacheLen(); n > sqlexec.MaxDescs {
		t.Fatalf("%d descriptions cached; the bound is %d", n, sqlexec.MaxDescs)
	}
	mustQuery(t, v.exec, p, "SELECT 1 AS one")
	mustQuery(t, v.exec, p, "SELECT 1 AS one")
	if n := v.exec.DescCacheLen(); n > sqlexec.MaxDescs {
		t.Fatalf("%d descriptions cached after more statements; the bound is %d", n, sqlexec.MaxDescs)
	}
}

// terminateRole ends every backend of role in v's database, as a server
// restart or an operator would, and waits until they are gone.
func terminateRole(t *testing.T, v *env, role string) {
	t.Helper()
	ctx := context.Background()
	if !v.exec.Settle(5 * time.Second) {
		t.Fatal("role connections still in use")
	}
	v.execAdmin(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND usename = $1", role)
	for range 200 {
		var n int
		if err := v.admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename = $1", role).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("backends of %s still there", role)
}

// Pooled connections are not pinged when acquired; a call whose connection
// turns out to be dead (here: every backend terminated, as a restart would)
// runs once more on a live one, read or write, and a write lands once.
func TestLostConnectionRunsAgain(t *testing.T) {
	v := fastEnv(t, sqlexec.Config{PoolSize: 2})
	ctx := context.Background()
	p := user(fastUser)
	const read = "SELECT id FROM notes WHERE id <= $1 ORDER BY id"
	const write = "UPDATE notes SET k = k + 1 WHERE id = $1 RETURNING k"
	for range 3 {
		mustQuery(t, v.exec, p, read, 4)
		mustQuery(t, v.exec, p, write, 2)
	}
	var k0 int
	if err := v.admin.QueryRow(ctx, "SELECT k FROM notes WHERE id = 2").Scan(&k0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, sql string
		param     int
	}{{"read", read, 4}, {"write", write, 2}} {
		// Two idle connections, both of which will be dead.
		mustQuery(t, v.exec, p, tc.sql, tc.param)
		mustQuery(t, v.exec, p, tc.sql, tc.param)
		terminateRole(t, v, "authenticated")
		r0 := v.exec.Paths().Reconnect.Load()
		rows := mustQuery(t, v.exec, p, tc.sql, tc.param)
		if len(rows) == 0 {
			t.Fatalf("%s after the backends were terminated: no rows", tc.name)
		}
		if r := v.exec.Paths().Reconnect.Load() - r0; r != 1 {
			t.Fatalf("%s after the backends were terminated: %d reconnects; want 1", tc.name, r)
		}
	}
	var k int
	if err := v.admin.QueryRow(ctx, "SELECT k FROM notes WHERE id = 2").Scan(&k); err != nil {
		t.Fatal(err)
	}
	if k != k0+3 {
		t.Fatalf("k went from %d to %d after three writes; the one run again must land once", k0, k)
	}
}

// A call is run again only when nothing of it can have been committed: a
// backend that dies during COMMIT (a deferred trigger terminates it) leaves
// the outcome unknown, and the call fails without a second run; one that
// dies before COMMIT runs once more, and only once.
func TestLostConnectionRetryLimits(t *testing.T) {
	v := fastEnv(t, sqlexec.Config{PoolSize: 2})
	ctx := context.Background()
	v.execAdmin(t, `CREATE SEQUENCE attempts;
		CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
		BEGIN PERFORM nextval('public.attempts'); PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(1); RETURN NULL; END $$;
		CREATE CONSTRAINT TRIGGER die_at_commit AFTER INSERT ON notes DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.body = 'die at commit') EXECUTE FUNCTION die();
		CREATE TRIGGER die_now AFTER INSERT ON notes FOR EACH ROW WHEN (NEW.body = 'die now') EXECUTE FUNCTION die();`)
	p := user(fastUser)
	const ins = "INSERT INTO notes (id, owner, body) VALUES ($1, auth.uid(), $2) RETURNING id"
	mustQuery(t, v.exec, p, ins, 100, "warm")
	mustQuery(t, v.exec, p, ins, 101, "warm")
	attempts := func() int64 {
		var n int64
		if err := v.admin.QueryRow(ctx, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM attempts").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		body string
		id   int
		runs int64
	}{{"die at commit", 102, 1}, {"die now", 103, 2}} {
		a0, r0 := attempts(), v.exec.Paths().Reconnect.Load()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := v.exec.Query(cctx, p, ins, []any{tc.id, tc.body})
		cancel()
		if err == nil {
			t.Fatalf("%q: the call succeeded", tc.body)
		}
		if got := attempts() - a0; got != tc.runs {
			t.Fatalf("%q: ran %d times (%v); want %d", tc.body, got, err, tc.runs)
		}
		if got := v.exec.Paths().Reconnect.Load() - r0; got != tc.runs-1 {
			t.Fatalf("%q: %d reconnects; want %d", tc.body, got, tc.runs-1)
		}
		var n int
		if err := v.admin.QueryRow(ctx, "SELECT count(*) FROM notes WHERE id = $1", tc.id).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%q: %d rows landed (%v)", tc.body, n, err)
		}
	}
	// The executor carries on.
	mustQuery(t, v.exec, p, ins, 104, "after")
}

package sqlexec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/sqlexec"
	"github.com/aerodb/aerofn/internal/sqlexec/attacks"
)

// The docs/RLS.md example, as the attack fixture makes it: todos owned by
// one user, posts readable by everyone when published.
func TestPolicies(t *testing.T) {
	v := newEnv(t, sqlexec.Config{PoolSize: 2})
	ctx := context.Background()
	if _, err := attacks.Setup(ctx, v.admin); err != nil {
		t.Fatal(err)
	}
	victim, attacker := attacks.Victim(), attacks.Attacker()

	t.Run("owner sees only own rows", func(t *testing.T) {
		for _, p := range []auth.Principal{victim, attacker} {
			rows := mustQuery(t, v.exec, p, "SELECT owner::text AS owner FROM todos")
			if len(rows) != 2 {
				t.Fatalf("%s sees %d todos, want 2", p.UserID, len(rows))
			}
			for _, r := range rows {
				if r["owner"] != p.UserID {
					t.Errorf("%s sees a todo of %v", p.UserID, r["owner"])
				}
			}
		}
	})
	t.Run("owner changes only own rows", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		res, err := v.exec.Query(ctx, attacker, "UPDATE todos SET done = true", nil)
		if err != nil || res.RowCount != 2 || res.Command != "UPDATE" {
			t.Fatalf("update own: %+v %v", res, err)
		}
		res, err = v.exec.Query(ctx, attacker, "UPDATE todos SET done = true WHERE id = $1", []any{attacks.VictimTodoID})
		if err != nil || res.RowCount != 0 {
			t.Fatalf("update victim's: %+v %v", res, err)
		}
		var done bool
		if err := v.admin.QueryRow(ctx, "SELECT done FROM todos WHERE id = $1", attacks.VictimTodoID).Scan(&done); err != nil || done {
			t.Fatalf("victim's todo changed: done=%v %v", done, err)
		}
		res, err = v.exec.Query(ctx, attacker, "INSERT INTO todos (owner, title) VALUES (auth.uid(), $1) RETURNING title", []any{"mine"})
		if err != nil || res.RowCount != 1 || res.Command != "INSERT" || len(res.Rows) != 1 {
			t.Fatalf("insert own: %+v %v", res, err)
		}
	})
	t.Run("a write the policy check refuses is a 42501 error", func(t *testing.T) {
		reply := v.exec.Handle(ctx, attacker, []byte(`{"sql": "INSERT INTO todos (owner, title) VALUES ($1, 'x')", "params": ["`+attacks.VictimID+`"]}`))
		var r struct{ Error sqlexec.Error }
		if err := json.Unmarshal(reply, &r); err != nil || r.Error.Code != "42501" || !strings.Contains(r.Error.Message, "row-level security") {
			t.Fatalf("reply %s", reply)
		}
	})
	t.Run("anon sees only public rows", func(t *testing.T) {
		rows := mustQuery(t, v.exec, auth.Anon(), "SELECT body, published FROM posts ORDER BY body")
		if len(rows) != 2 {
			t.Fatalf("anon sees %v", rows)
		}
		for _, r := range rows {
			if r["published"] != true {
				t.Errorf("anon sees unpublished %v", r)
			}
		}
		rows = mustQuery(t, v.exec, victim, "SELECT body FROM posts")
		if len(rows) != 3 {
			t.Errorf("the victim sees %d posts, want 3 (2 public + own draft)", len(rows))
		}
	})
	t.Run("service role sees all", func(t *testing.T) {
		if n := len(mustQuery(t, v.exec, auth.Service(), "SELECT id FROM todos")); n < 4 {
			t.Errorf("service role sees %d todos", n)
		}
		if n := len(mustQuery(t, v.exec, auth.Service(), "SELECT id FROM posts")); n != 3 {
			t.Errorf("service role sees %d posts", n)
		}
	})
	t.Run("helpers", func(t *testing.T) {
		p := attacker
		p.Claims = map[string]any{"sub": attacks.AttackerID, "role": "authenticated", "email": "a@example.com", "app_metadata": map[string]any{"plan": "pro"}}
		r := mustQuery(t, v.exec, p, "SELECT auth.uid() AS uid, auth.sub() AS sub, auth.role() AS role, auth.jwt() ->> 'email' AS email, auth.jwt() -> 'app_metadata' ->> 'plan' AS plan")[0]
		if r["uid"] != attacks.AttackerID || r["sub"] != attacks.AttackerID || r["role"] != "authenticated" || r["email"] != "a@example.com" || r["plan"] != "pro" {
			t.Errorf("helpers say %v", r)
		}
		r = mustQuery(t, v.exec, auth.Anon(), "SELECT auth.uid() AS uid, auth.role() AS role, auth.jwt() AS jwt")[0]
		if r["uid"] != nil || r["role"] != "anon" {
			t.Errorf("anon helpers say %v", r)
		}
		// A sub that is not a uuid: uid() is NULL (fails closed), sub() has it.
		r = mustQuery(t, v.exec, user("github|42"), "SELECT auth.uid() AS uid, auth.sub() AS sub")[0]
		if r["uid"] != nil || r["sub"] != "github|42" {
			t.Errorf("non-uuid sub: %v", r)
		}
		// Outside a function (the admin) there is no identity.
		var uid, role *string
		if err := v.admin.QueryRow(ctx, "SELECT auth.uid()::text, auth.role()").Scan(&uid, &role); err != nil || uid != nil || role != nil {
			t.Errorf("admin session: uid=%v role=%v err=%v", uid, role, err)
		}
	})
	t.Run("principal checks", func(t *testing.T) {
		_, err := v.exec.Query(ctx, auth.Principal{Role: auth.RoleAuthenticated}, "SELECT 1", nil)
		if errCode(err) != sqlexec.CodeInvalidPrincipal {
			t.Errorf("authenticated without sub: %v", err)
		}
		_, err = v.exec.Query(ctx, auth.Principal{Role: "postgres"}, "SELECT 1", nil)
		if errCode(err) != sqlexec.CodeInvalidPrincipal {
			t.Errorf("unknown role: %v", err)
		}
	})
}

// A capture trigger owned by the admin records who wrote: it reads the same
// verified identity as the policies.
func TestCaptureTriggerSeesWriter(t *testing.T) {
	v := newEnv(t, sqlexec.Config{PoolSize: 1})
	ctx := context.Background()
	if _, err := attacks.Setup(ctx, v.admin); err != nil {
		t.Fatal(err)
	}
	v.execAdmin(t, `CREATE TABLE public.changes (op text, uid uuid, role text, claims jsonb);
		CREATE FUNCTION public.capture() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
		BEGIN
			INSERT INTO public.changes VALUES (TG_OP, auth.uid(), auth.role(), auth.jwt());
			RETURN NULL;
		END $$;
		CREATE TRIGGER capture AFTER INSERT OR UPDATE OR DELETE ON public.todos FOR EACH ROW EXECUTE FUNCTION public.capture()`)
	mustQuery(t, v.exec, attacks.Attacker(), "INSERT INTO todos (owner, title) VALUES (auth.uid(), 'captured')")
	v.execAdmin(t, "INSERT INTO todos (owner, title) VALUES ($1, 'by admin')", attacks.VictimID)
	rows, err := v.admin.Query(ctx, "SELECT op, coalesce(uid::text, ''), coalesce(role, ''), coalesce(claims ->> 'sub', '') FROM changes ORDER BY ctid")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var op, uid, role, sub string
		if err := rows.Scan(&op, &uid, &role, &sub); err != nil {
			t.Fatal(err)
		}
		got = append(got, op+"|"+uid+"|"+role+"|"+sub)
	}
	want := []string{"INSERT|" + attacks.AttackerID + "|authenticated|" + attacks.AttackerID, "INSERT|||"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("captured\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLimits(t *testing.T) {
	v := newEnv(t, sqlexec.Config{PoolSize: 1, MaxRows: 5, MaxBytes: 2048})
	ctx := context.Background()
	v.execAdmin(t, `CREATE TABLE public.items (n int); GRANT SELECT, INSERT ON public.items TO service_role`)
	svc := auth.Service()
	if rows := mustQuery(t, v.exec, svc, "SELECT g FROM generate_series(1, 5) g"); len(rows) != 5 {
		t.Fatalf("5 rows: %v", rows)
	}
	_, err := v.exec.Query(ctx, svc, "SELECT g FROM generate_series(1, 6) g", nil)
	if errCode(err) != sqlexec.CodeTooManyRows {
		t.Errorf("6 rows: %v", err)
	}
	_, err = v.exec.Query(ctx, svc, "SELECT repeat('x', 3000) AS x", nil)
	if errCode(err) != sqlexec.CodeResultTooLarge {
		t.Errorf("3000 bytes: %v", err)
	}
	// A write whose result crosses the limit is not committed.
	_, err = v.exec.Query(ctx, svc, "INSERT INTO items SELECT g FROM generate_series(1, 10) g RETURNING n", nil)
	if errCode(err) != sqlexec.CodeTooManyRows {
		t.Errorf("insert returning 10: %v", err)
	}
	var n int
	if err := v.admin.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 0 {
		t.Errorf("the over-limit insert left %d rows (%v)", n, err)
	}
	// Without RETURNING the count is not a result: it commits.
	res, err := v.exec.Query(ctx, svc, "INSERT INTO items SELECT g FROM generate_series(1, 10) g", nil)
	if err != nil || res.RowCount != 10 {
		t.Errorf("insert 10: %+v %v", res, err)
	}
	mustQuery(t, v.exec, svc, "SELECT 1 AS still_works")
}

func backendPID(t *testing.T, e *sqlexec.Executor) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := e.QueryUnguarded(ctx, auth.Anon(), "SELECT pg_backend_pid() AS pid", nil)
	if err != nil {
		t.Fatal(err)
	}
	return decodeRows(t, res)[0]["pid"].(float64)
}

func TestTimeout(t *testing.T) {
	v := newEnv(t, sqlexec.Config{PoolSize: 1})
	pid := backendPID(t, v.exec)
	if again := backendPID(t, v.exec); again != pid {
		t.Fatalf("a clean call did not reuse its connection: %v then %v", pid, again)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := v.exec.Query(ctx, auth.Anon(), "SELECT pg_sleep(5)", nil)
	if errCode(err) != sqlexec.CodeTimeout {
		t.Fatalf("pg_sleep(5) in 300ms: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v to time out", d)
	}
	if after := backendPID(t, v.exec); after == pid {
		t.Errorf("the connection that timed out was reused (pid %v)", pid)
	}
	var n int
	if err := v.admin.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", int(pid)).Scan(&n); err != nil || n != 0 {
		t.Errorf("the timed-out backend is still there: %d %v", n, err)
	}

	// A deadline too close to start is refused without touching the database.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel2()
	if _, err := v.exec.Query(ctx2, auth.Anon(), "SELECT 1", nil); errCode(err) != sqlexec.CodeTimeout {
		t.Errorf("5ms deadline: %v", err)
	}
}

func TestPoolWaitRespectsDeadline(t *testing.T) {
	v := newEnv(t, sqlexec.Config{PoolSize: 1})
	bg := context.Background()
	// The holder takes anon's only connection and keeps it until the test
	// cancels it.
	holderCtx, stopHolder := context.WithTimeout(bg, 30*time.Second)
	defer stopHolder()
	held := make(chan error, 1)
	go func() {
		_, err := v.exec.Query(holderCtx, auth.Anon(), "SELECT pg_sleep(20) AS holder", nil)
		held <- err
	}()
	// Its backend is running the statement: it has the connection.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var running int
		if err := v.admin.QueryRow(bg, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE $1`, "%pg_sleep(20) AS holder%").Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the holder never took the connection")
		}
		runtime.Gosched()
	}
	ctx, cancel := context.WithTimeout(bg, 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := v.exec.Query(ctx, auth.Anon(), "SELECT 1", nil)
	if errCode(err) != sqlexec.CodeTimeout || !strings.Contains(err.Error(), "waiting for a database connection") {
		t.Errorf("waiting: %v", err)
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("waited %v past a 150ms deadline", d)
	}
	// Other roles have their own pools and are not held up.
	mustQuery(t, v.exec, auth.Service(), "SELECT 1 AS other_pool")
	stopHolder()
	if err := <-held; err == nil {
		t.Fatal("the holder's 20 s sleep ended without being cancelled")
	}
	mustQuery(t, v.exec, auth.Anon(), "SELECT 1 AS after")
}

func TestHandle(t *testing.T) {
	v := newEnv(t, sqlexec.Config{PoolSize: 1})
	ctx := context.Background()
	cases := []struct{ req, want string }{
		{`{"sql": "SELECT $1::int + 1 AS n", "params": [41]}`, `{"rows":[{"n":42}],"rowCount":1,"command":"SELECT"}`},
		{`{"sql": "SELECT 1 AS a WHERE false"}`, `{"rows":[],"rowCount":0,"command":"SELECT"}`},
		{`{"sql": "SET ROLE postgres"}`, `{"error":{"code":"statement_rejected","message":"only a single SELECT, INSERT, UPDATE or DELETE is allowed, not SET"}}`},
		{`{"sql": "SELECT $1::int AS n", "params": []}`, `{"error":{"code":"invalid_params","message":"the statement takes 1 parameters, the request gives 0"}}`},
		{`{"sql": "SELECT $1::int AS n", "params": ["x"]}`, `{"error":{"code":"22P02","message":"invalid input syntax for type integer: \"x\""}}`},
		{`{"params": []}`, `{"error":{"code":"invalid_request","message":"the request has no \"sql\""}}`},
		{`{"sql": 1}`, ``},
		{`not json`, ``},
		{``, ``},
		{`{"sql": "SELECT nosuchcolumn"}`, `{"error":{"code":"42703","message":"column \"nosuchcolumn\" does not exist"}}`},
	}
	for _, c := range cases {
		got := v.exec.Handle(ctx, auth.Anon(), []byte(c.req))
		if !json.Valid(got) {
			t.Errorf("%s: reply is not JSON: %s", c.req, got)
			continue
		}
		if c.want == "" {
			if !bytes.Contains(got, []byte(`"invalid_request"`)) {
				t.Errorf("%s: %s, want invalid_request", c.req, got)
			}
			continue
		}
		if string(got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.req, got, c.want)
		}
	}
	// After every kind of failure the connection is still good.
	mustQuery(t, v.exec, auth.Anon(), "SELECT 1 AS ok")
}

// The contract with change capture (migration 004): a write made through
// db_query is recorded with the writer's verified identity.
func TestCaptureMigrationSeesWriter(t *testing.T) {
	v := newEnv(t, sqlexec.Config{PoolSize: 1})
	ctx := context.Background()
	var present bool
	if err := v.admin.QueryRow(ctx, "SELECT to_regprocedure('aerofn.capture_inserted()') IS NOT NULL AND to_regclass('aerofn.events') IS NOT NULL").Scan(&present); err != nil || !present {
		t.Fatalf("the capture migration (004) is missing: %v", err)
	}
	if _, err := attacks.Setup(ctx, v.admin); err != nil {
		t.Fatal(err)
	}
	v.execAdmin(t, `CREATE TRIGGER capture_ins AFTER INSERT ON public.todos REFERENCING NEW TABLE AS aerofn_new
		FOR EACH STATEMENT EXECUTE FUNCTION aerofn.capture_inserted()`)
	p := attacks.Attacker()
	p.Claims["email"] = "a@example.com"
	mustQuery(t, v.exec, p, "INSERT INTO todos (owner, title) VALUES (auth.uid(), 'captured')")
	var sub, role, email, source string
	err := v.admin.QueryRow(ctx, `SELECT writer ->> 'sub', writer ->> 'role', writer -> 'claims' ->> 'email', writer ->> 'source'
		FROM aerofn.events WHERE new ->> 'title' = 'captured'`).Scan(&sub, &role, &email, &source)
	if err != nil {
		t.Fatalf("reading the captured event: %v", err)
	}
	if sub != attacks.AttackerID || role != "authenticated" || email != "a@example.com" || source != "db_query" {
		t.Errorf("writer recorded as sub=%q role=%q email=%q source=%q", sub, role, email, source)
	}
}

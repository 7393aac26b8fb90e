package sqlexec_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/sqlexec"
	"github.com/aerodb/aerofn/internal/sqlexec/attacks"
)

// connStateSQL describes everything a call could leave behind on its
// connection for the next caller. Run unguarded (it reads catalogs). The
// statements the host itself prepared with the protocol (kept across calls,
// see connStmts) are not counted: only those made with SQL PREPARE, which is
// all a function could make; the portal running this is (one cursor).
const connStateSQL = `SELECT current_user::text AS cu, session_user::text AS su,
	(SELECT count(*) FROM pg_prepared_statements WHERE from_sql) AS prepared,
	(SELECT count(*) FROM pg_cursors) AS cursors,
	(SELECT count(*) FROM pg_listening_channels()) AS listening,
	(SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory') AS advisory,
	pg_my_temp_schema()::int AS temp_schema,
	(SELECT string_agg(name || '=' || setting, ',' ORDER BY name) FROM pg_settings
		WHERE source NOT IN ('default', 'override') AND name NOT IN ('statement_timeout', 'aerofn.token', 'transaction_isolation')) AS settings,
	current_setting('transaction_isolation') AS isolation,
	current_setting('transaction_read_only') AS ro`

func connState(t *testing.T, e *sqlexec.Executor, p auth.Principal) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := e.QueryUnguarded(ctx, p, connStateSQL, nil)
	if err != nil {
		t.Fatalf("reading connection state: %v", err)
	}
	return string(res.Rows[0])
}

// attackCounts reports the suite's size, for the record.
func TestAttackListShape(t *testing.T) {
	byCat := map[attacks.Category]int{}
	names := map[string]bool{}
	guardOnly := 0
	for _, a := range attacks.All {
		if names[a.Name] {
			t.Errorf("attack name %q is used twice", a.Name)
		}
		names[a.Name] = true
		byCat[a.Category]++
		if a.Database == attacks.GuardOnly {
			guardOnly++
			if !a.Guard {
				t.Errorf("%s: a GuardOnly attack must be one the guard refuses", a.Name)
			}
		}
		if a.Database == "" || a.Why == "" {
			t.Errorf("%s: Database and Why are required", a.Name)
		}
		// The guard's verdict is part of the list's contract.
		err := sqlexec.CheckStatement(a.SQL)
		if got := err != nil; got != a.Guard {
			t.Errorf("%s: guard refuses = %v, list says %v (%v)", a.Name, got, a.Guard, err)
		}
	}
	if len(attacks.All) < 80 || len(byCat) < 13 {
		t.Errorf("%d attacks in %d categories; want at least 80 in 13", len(attacks.All), len(byCat))
	}
	var cats []string
	for c, n := range byCat {
		cats = append(cats, fmt.Sprintf("%s: %d", c, n))
	}
	sort.Strings(cats)
	t.Logf("%d attacks, %d guard-only:\n%s", len(attacks.All), guardOnly, strings.Join(cats, "\n"))
}

func TestAttacks(t *testing.T) {
	// One connection per role, so that "the next call" is on the very
	// connection the attack used, unless the host destroyed it.
	v := newEnv(t, sqlexec.Config{PoolSize: 1})
	ctx := context.Background()
	fx, err := attacks.Setup(ctx, v.admin)
	if err != nil {
		t.Fatal(err)
	}
	baseline := map[auth.Role]string{
		auth.RoleAuthenticated: connState(t, v.exec, attacks.Attacker()),
		auth.RoleAnon:          connState(t, v.exec, auth.Anon()),
	}
	victimTodos := len(mustQuery(t, v.exec, attacks.Victim(), "SELECT id FROM todos"))
	if victimTodos != 2 {
		t.Fatalf("victim sees %d todos before the attacks; want 2", victimTodos)
	}

	run := func(t *testing.T, a attacks.Attack, guarded bool) (string, error) {
		sql, params := fx.Expand(a)
		timeout := 10 * time.Second
		if a.Slow {
			timeout = time.Second
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var res *sqlexec.Result
		if guarded {
			res, err = v.exec.Query(cctx, a.Principal(), sql, params)
		} else {
			res, err = v.exec.QueryUnguarded(cctx, a.Principal(), sql, params)
		}
		var reply []byte
		if err != nil {
			reply, _ = json.Marshal(sqlexec.AsError(err))
		} else {
			reply, _ = res.MarshalJSON()
		}
		if strings.Contains(string(reply), attacks.Secret) {
			t.Errorf("reply holds the victim's data: %.300s", reply)
		}
		return string(reply), err
	}
	checkDB := func(t *testing.T, a attacks.Attack, reply string, err error) {
		switch a.Database {
		case attacks.Refused:
			if err == nil {
				t.Errorf("the database let it run: %.300s", reply)
			} else if a.Code != "" && errCode(err) != a.Code {
				t.Errorf("code %s, want %s: %v", errCode(err), a.Code, err)
			}
		case attacks.Harmless:
			if err != nil {
				t.Errorf("want it to run and reach nothing, got %v", err)
			}
		case attacks.Contained:
			// Either outcome is fine; what matters is checked in after.
		}
	}
	after := func(t *testing.T, a attacks.Attack) {
		t.Helper()
		waitNoActiveBackends(t, v, fx)
		if err := fx.Verify(ctx, v.admin); err != nil {
			t.Errorf("after %s: %v", a.Name, err)
		}
		for role, want := range baseline {
			p := auth.Anon()
			if role == auth.RoleAuthenticated {
				p = attacks.Attacker()
			}
			if got := connState(t, v.exec, p); got != want {
				t.Errorf("after %s the %s connection is not clean:\n got %s\nwant %s", a.Name, role, got, want)
			}
		}
		rows := mustQuery(t, v.exec, attacks.Victim(), "SELECT owner::text AS owner, auth.uid()::text AS uid FROM todos")
		if len(rows) != victimTodos {
			t.Errorf("after %s the victim sees %d todos, want %d", a.Name, len(rows), victimTodos)
		}
		for _, r := range rows {
			if r["owner"] != attacks.VictimID || r["uid"] != attacks.VictimID {
				t.Errorf("after %s the victim's call sees %v", a.Name, r)
			}
		}
	}

	paths := v.exec.Paths()
	fast0 := paths.Fast.Load()
	ran := 0
	defer func() {
		fast := paths.Fast.Load() - fast0
		t.Logf("calls by path: fast %d, slow %d (fallbacks %d)", fast, paths.Slow.Load(), paths.Fallback.Load())
		if fast < int64(ran) {
			t.Errorf("only %d calls took the fast path; the suite did not exercise it", fast)
		}
	}()
	for _, a := range attacks.All {
		t.Run(a.Name, func(t *testing.T) {
			ran++
			reply, err := run(t, a, true)
			if a.Guard {
				if errCode(err) != sqlexec.CodeStatementRejected {
					t.Errorf("guard did not refuse it: %.300s", reply)
				}
			} else {
				checkDB(t, a, reply, err)
			}
			t.Logf("guarded: %.200s", reply)
			after(t, a)
			if !a.Guard {
				// Again: the statement's description is cached now, so the
				// second attempt takes the fast path (token signed for a
				// window, one round trip), which must hold just the same.
				reply, err = run(t, a, true)
				t.Logf("guarded, again: %.200s", reply)
				checkDB(t, a, reply, err)
				after(t, a)
			}
			if !a.Guard || a.Database == attacks.GuardOnly {
				return
			}
			for range 2 { // the second on the fast path, as above
				reply, err = run(t, a, false)
				t.Logf("database alone: %.200s", reply)
				checkDB(t, a, reply, err)
			}
			if a.Persists {
				// The role default it set applies to new connections: make
				// one, and the executor must have put the defaults back.
				v.exec.ResetPools()
				mustQuery(t, v.exec, attacks.Attacker(), "SELECT 1 AS one")
				mustQuery(t, v.exec, auth.Anon(), "SELECT 1 AS one")
				var n int
				if err := v.admin.QueryRow(ctx, `SELECT count(*) FROM pg_db_role_setting s JOIN aerofn.rls_roles r ON r.rolname = s.setrole::regrole::name
					WHERE s.setdatabase = 0`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Errorf("a function role still has %d global settings of its own", n)
				}
			}
			after(t, a)
		})
	}
}

// waitNoActiveBackends waits until no function-role backend is running a
// statement: a denial-of-service attack must not outlive its call.
func waitNoActiveBackends(t *testing.T, v *env, fx *attacks.Fixture) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		var n int
		var what string
		err := v.admin.QueryRow(context.Background(), `SELECT count(*), coalesce(string_agg(left(query, 60), '; '), '') FROM pg_stat_activity
			WHERE datname = current_database() AND usename IN (SELECT rolname FROM aerofn.rls_roles) AND state <> 'idle'`).Scan(&n, &what)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d function backends still active: %s", n, what)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package dbtrigger_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
)

// TestWriterIdentityIsThePrincipal: a change made through a function's
// db_query as user X is delivered as user X (and recorded so); claims an
// application session carried are used likewise; an unknown writer is
// anon; run_as service_role overrides all three.
func TestWriterIdentityIsThePrincipal(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	handledTable(t, e)
	sqlExec(t, e, `CREATE TABLE notes (id bigserial PRIMARY KEY, body text);
		GRANT INSERT, SELECT ON notes TO authenticated; GRANT USAGE ON SEQUENCE notes_id_seq TO authenticated`)
	deployOn(t, e, "sql-proxy", testenv.Example(t, "sql-proxy"), nil)
	deployOn(t, e, "as-writer", recorder(t), map[string]any{"triggers": []any{dbTrigger("notes", "INSERT")}})
	deployOn(t, e, "as-service", recorder(t), map[string]any{"run_as": "service_role", "triggers": []any{dbTrigger("notes", "INSERT")}})

	// 1: through db_query as user-x.
	r := e.Invoke("sql-proxy", testenv.UserKey("user-x"), map[string]any{"sql": "INSERT INTO notes (body) VALUES ($1)", "params": []any{"via db_query"}})
	if r.Status != http.StatusOK || !contains(string(r.Body), `"rowCount":1`) {
		t.Fatalf("insert through sql-proxy: %d %s", r.Status, r.Body)
	}
	// 2: an application session that carries claims (PostgREST style).
	ctx := context.Background()
	tx, err := e.Admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('request.jwt.claims', '{"role":"authenticated","sub":"user-y"}', true)`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO notes (body) VALUES ('session claims')`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// 3: nobody in particular; 4: claims that are not JSON must not fail the write.
	sqlExec(t, e, `INSERT INTO notes (body) VALUES ('admin')`)
	tx, _ = e.Admin.Begin(ctx)
	_, _ = tx.Exec(ctx, `SELECT set_config('request.jwt.claims', 'not json', true)`)
	if _, err := tx.Exec(ctx, `INSERT INTO notes (body) VALUES ('bad claims')`); err != nil {
		t.Fatalf("a write with unreadable claims failed: %v", err)
	}
	_ = tx.Commit(ctx)

	want := map[string][]string{ // function -> "role user" of each record, in insert order
		"as-writer":  {"authenticated user-x", "authenticated user-y", "anon ", "anon "},
		"as-service": {"service_role ", "service_role ", "service_role ", "service_role "},
	}
	for fn, w := range want {
		eventually(t, 10*time.Second, fn+"'s principals", func() (bool, string) {
			e.Flush()
			rows, err := e.Admin.Query(ctx, `SELECT role || ' ' || coalesce(user_id, '') FROM aerofn.invocations
				WHERE function_name = $1 AND trigger = 'database' AND status = 'success' ORDER BY request_id::bigint`, fn)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for rows.Next() {
				var s string
				_ = rows.Scan(&s)
				got = append(got, s)
			}
			rows.Close()
			return fmt.Sprint(got) == fmt.Sprint(w), fmt.Sprintf("%q", got)
		})
	}
	// The event tells the function who wrote, whatever it runs as.
	if n := queryInt(t, e, `SELECT count(*) FROM handled WHERE user_id = 'user-x' AND role = 'authenticated'`); n != 2 {
		t.Fatalf("%d of 2 deliveries carried the writer user-x", n)
	}
}

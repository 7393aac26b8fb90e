package dbtrigger_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/aerodb/aerofn/internal/testenv"
)

// captureTriggers lists the aerofn capture triggers on a table.
func captureTriggers(t testing.TB, e *testenv.Env, table string) []string {
	t.Helper()
	rows, err := e.Admin.Query(context.Background(), `SELECT tgname::text FROM pg_trigger
		WHERE tgrelid = $1::regclass AND tgname::text LIKE 'aerofn_capture_%' ORDER BY 1`, table)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestDeployValidatesAndInstalls covers configuration: what deploy refuses
// (400 naming the problem, nothing stored or installed), what it installs,
// how a change of events changes the triggers, and that deleting the last
// function on a table removes them while another function keeps them.
func TestDeployValidatesAndInstalls(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	ok := wat(t, watOK)
	sqlExec(t, e, `CREATE TABLE orders (id bigserial PRIMARY KEY, n int); CREATE VIEW orders_v AS SELECT * FROM orders;
		CREATE TABLE auth.users (id uuid PRIMARY KEY)`)

	for _, c := range []struct {
		name string
		trig map[string]any
		want []string
	}{
		{"missing table", dbTrigger("public.nope", "INSERT"), []string{`config.triggers[0].table`, `"public.nope" does not exist`}},
		{"bad event", dbTrigger("public.orders", "INSERT", "TRUNCATE"), []string{`config.triggers[0].events`, `"TRUNCATE"`}},
		{"view", dbTrigger("public.orders_v"), []string{`"public.orders_v" is not a table`}},
		{"no table", map[string]any{"type": "database"}, []string{"needs a table"}},
		{"cron", map[string]any{"type": "database", "table": "orders", "cron": "* * * * *"}, []string{"schedule triggers"}},
		{"attempts", map[string]any{"type": "database", "table": "orders", "max_attempts": 1000}, []string{"max_attempts"}},
		// aerofn's own tables: a capture on aerofn.events recurses until
		// every captured write fails; on aerofn.invocations a function's
		// own record would invoke it forever.
		{"aerofn.events", dbTrigger("aerofn.events"), []string{`config.triggers[0].table`, `schema "aerofn"`}},
		{"aerofn.invocations", dbTrigger("aerofn.invocations"), []string{`config.triggers[0].table`, `schema "aerofn"`}},
		{"river", dbTrigger("aerofn.river_job"), []string{`config.triggers[0].table`, `schema "aerofn"`}},
		{"auth", dbTrigger("auth.users"), []string{`config.triggers[0].table`, `schema "auth"`}},
		{"pg_catalog", dbTrigger("pg_catalog.pg_class"), []string{`config.triggers[0].table`, `schema "pg_catalog"`}},
		{"unqualified catalog", dbTrigger("pg_proc"), []string{`config.triggers[0].table`, `schema "pg_catalog"`}},
		{"information_schema", dbTrigger("information_schema.sql_features"), []string{`config.triggers[0].table`, `schema "information_schema"`}},
		{"injection", dbTrigger("public.x; drop table y"), []string{`config.triggers[0].table`, `"public.x; drop table y" is not a valid table name`}},
		{"too many dots", dbTrigger("a.b.c.d"), []string{`config.triggers[0].table`, `"a.b.c.d" is not a valid table name`}},
		{"unknown schema", dbTrigger("nope.orders"), []string{`config.triggers[0].table`, `does not exist`}},
	} {
		r := e.Deploy("bad", ok, map[string]any{"triggers": []any{c.trig}})
		if r.Status != http.StatusBadRequest || !contains(r.JSON(t)["message"].(string), c.want...) {
			t.Errorf("%s: %d %s, want 400 naming %q", c.name, r.Status, r.Body, c.want)
		}
	}
	if r := e.JSONRequest("GET", "/admin/v1/functions/bad", e.ServiceKey, nil); r.Status != http.StatusNotFound {
		t.Fatalf("a refused deploy stored the function: %d %s", r.Status, r.Body)
	}
	if got := captureTriggers(t, e, "orders"); len(got) != 0 {
		t.Fatalf("a refused deploy installed %v", got)
	}

	// Lower case events are accepted; only what is asked for is installed.
	deployOn(t, e, "a", ok, map[string]any{"triggers": []any{dbTrigger("orders", "insert")}})
	if got := captureTriggers(t, e, "orders"); !slices.Equal(got, []string{"aerofn_capture_insert"}) {
		t.Fatalf("after deploying a: %v", got)
	}
	// No events means all three.
	deployOn(t, e, "b", ok, map[string]any{"triggers": []any{map[string]any{"type": "database", "table": "public.orders"}}})
	if got := captureTriggers(t, e, "orders"); len(got) != 3 {
		t.Fatalf("after deploying b: %v", got)
	}
	// A patch with a bad config is refused too, and changes nothing.
	r := e.JSONRequest("PATCH", "/admin/v1/functions/b", e.ServiceKey, map[string]any{"config": map[string]any{
		"triggers": []any{dbTrigger("public.gone", "DELETE")}}})
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "public.gone") {
		t.Fatalf("bad patch: %d %s", r.Status, r.Body)
	}
	// b narrows to DELETE: UPDATE's trigger goes, a's INSERT stays.
	r = e.JSONRequest("PATCH", "/admin/v1/functions/b", e.ServiceKey, map[string]any{"config": map[string]any{
		"triggers": []any{dbTrigger("public.orders", "DELETE")}}})
	if r.Status != http.StatusOK {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	if got := captureTriggers(t, e, "orders"); !slices.Equal(got, []string{"aerofn_capture_delete", "aerofn_capture_insert"}) {
		t.Fatalf("after narrowing b: %v", got)
	}
	// Disabling keeps capturing (events accumulate).
	if r := e.JSONRequest("PATCH", "/admin/v1/functions/a", e.ServiceKey, map[string]any{"enabled": false}); r.Status != http.StatusOK {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	if got := captureTriggers(t, e, "orders"); len(got) != 2 {
		t.Fatalf("after disabling a: %v", got)
	}
	// Deleting a leaves b's trigger; deleting b leaves none.
	if r := e.JSONRequest("DELETE", "/admin/v1/functions/a", e.ServiceKey, nil); r.Status != http.StatusOK && r.Status != http.StatusNoContent {
		t.Fatalf("delete a: %d %s", r.Status, r.Body)
	}
	if got := captureTriggers(t, e, "orders"); !slices.Equal(got, []string{"aerofn_capture_delete"}) {
		t.Fatalf("after deleting a: %v", got)
	}
	if r := e.JSONRequest("DELETE", "/admin/v1/functions/b", e.ServiceKey, nil); r.Status != http.StatusOK && r.Status != http.StatusNoContent {
		t.Fatalf("delete b: %d %s", r.Status, r.Body)
	}
	if got := captureTriggers(t, e, "orders"); len(got) != 0 {
		t.Fatalf("after deleting b: %v", got)
	}
	if n := queryInt(t, e, `SELECT count(*) FROM aerofn.event_subscriptions`); n != 0 {
		t.Fatalf("%d subscriptions left", n)
	}
}

// TestDroppedTable: a function whose table was dropped can still be
// disabled and redeployed; its subscription goes, and a new config naming
// the table is refused.
func TestDroppedTable(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	sqlExec(t, e, `CREATE TABLE temp_t (id int PRIMARY KEY)`)
	deployOn(t, e, "f", wat(t, watOK), map[string]any{"triggers": []any{dbTrigger("temp_t", "INSERT")}})
	sqlExec(t, e, `DROP TABLE temp_t`)
	if r := e.JSONRequest("PATCH", "/admin/v1/functions/f", e.ServiceKey, map[string]any{"enabled": false}); r.Status != http.StatusOK {
		t.Fatalf("disabling: %d %s", r.Status, r.Body)
	}
	if n := queryInt(t, e, `SELECT count(*) FROM aerofn.event_subscriptions`); n != 0 {
		t.Fatalf("%d subscriptions to a dropped table", n)
	}
	if r := e.Deploy("f", wat(t, watOK), nil); r.Status != http.StatusCreated {
		t.Fatalf("redeploy without config: %d %s", r.Status, r.Body)
	}
	if r := e.Deploy("f", wat(t, watOK), map[string]any{"triggers": []any{dbTrigger("temp_t", "INSERT")}}); r.Status != http.StatusBadRequest {
		t.Fatalf("redeploy naming the dropped table: %d %s", r.Status, r.Body)
	}
}

package sqlexec_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/sqlexec"
)

// env is one migrated and set-up test database with an executor on it.
type env struct {
	url   string
	admin *pgxpool.Pool
	exec  *sqlexec.Executor
}

func newEnv(t testing.TB, cfg sqlexec.Config) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, url := dbtest.Migrated(t, 4)
	cfg.AdminURL = url
	dbtest.Must(t, sqlexec.Setup(ctx, admin, cfg), "setting up rls")
	e, err := sqlexec.New(ctx, cfg)
	dbtest.Must(t, err, "creating executor")
	t.Cleanup(e.Close)
	return &env{url: url, admin: admin, exec: e}
}

func (v *env) execAdmin(t testing.TB, sql string, args ...any) {
	t.Helper()
	if _, err := v.admin.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("admin exec %q: %v", sql, err)
	}
}

func user(id string) auth.Principal {
	return auth.Principal{Role: auth.RoleAuthenticated, UserID: id, Claims: map[string]any{"sub": id, "role": "authenticated"}}
}

// mustQuery runs sql for p and decodes the rows.
func mustQuery(t testing.TB, e *sqlexec.Executor, p auth.Principal, sql string, params ...any) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := e.Query(ctx, p, sql, params)
	if err != nil {
		t.Fatalf("query %q as %s: %v", sql, p.Role, err)
	}
	return decodeRows(t, res)
}

func decodeRows(t testing.TB, res *sqlexec.Result) []map[string]any {
	t.Helper()
	out := make([]map[string]any, 0, len(res.Rows))
	for _, r := range res.Rows {
		var m map[string]any
		if err := json.Unmarshal(r, &m); err != nil {
			t.Fatalf("row %s is not JSON: %v", r, err)
		}
		out = append(out, m)
	}
	return out
}

func errCode(err error) string {
	if err == nil {
		return ""
	}
	return sqlexec.AsError(err).Code
}

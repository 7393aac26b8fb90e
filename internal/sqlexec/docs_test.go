package sqlexec_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/sqlexec"
)

// TestRLSDocExample runs the SQL of docs/RLS.md's worked example as it is
// written, then does what the page says it allows and refuses.
func TestRLSDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/RLS.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start, end := strings.Index(text, "## Writing policies"), strings.Index(text, "### From a function")
	if start < 0 || end < start {
		t.Fatal("docs/RLS.md lost its worked example")
	}
	var blocks []string
	for _, part := range strings.Split(text[start:end], "```sql\n")[1:] {
		blocks = append(blocks, part[:strings.Index(part, "```")])
	}
	if len(blocks) != 3 {
		t.Fatalf("found %d sql blocks in the example, want 3", len(blocks))
	}
	v := newEnv(t, sqlexec.Config{PoolSize: 1})
	for _, b := range blocks {
		v.execAdmin(t, b)
	}
	a, b := user("aaaaaaaa-0000-4000-8000-000000000001"), user("bbbbbbbb-0000-4000-8000-000000000002")
	mustQuery(t, v.exec, a, "INSERT INTO todos (title) VALUES ($1)", "a's todo")
	mustQuery(t, v.exec, b, "INSERT INTO todos (title) VALUES ($1)", "b's todo")
	rows := mustQuery(t, v.exec, a, "SELECT owner::text AS owner, title FROM todos")
	if len(rows) != 1 || rows[0]["owner"] != a.UserID || rows[0]["title"] != "a's todo" {
		t.Errorf("a sees %v", rows)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res, err := v.exec.Query(ctx, a, "UPDATE todos SET done = true", nil); err != nil || res.RowCount != 1 {
		t.Errorf("a updates all: %+v %v", res, err)
	}
	if _, err := v.exec.Query(ctx, a, "UPDATE todos SET owner = $1", []any{b.UserID}); errCode(err) != "42501" {
		t.Errorf("a gives a row away: %v", err)
	}

	// Posts: the insert check wants a verified e-mail in the claims.
	if _, err := v.exec.Query(ctx, a, "INSERT INTO posts (body, published) VALUES ('hello', true)", nil); errCode(err) != "42501" {
		t.Errorf("post without email_verified: %v", err)
	}
	verified := a
	verified.Claims = map[string]any{"sub": a.UserID, "role": "authenticated", "email_verified": true}
	mustQuery(t, v.exec, verified, "INSERT INTO posts (body, published) VALUES ('hello', true)")
	mustQuery(t, v.exec, verified, "INSERT INTO posts (body) VALUES ('draft')")
	if rows := mustQuery(t, v.exec, auth.Anon(), "SELECT body FROM posts"); len(rows) != 1 || rows[0]["body"] != "hello" {
		t.Errorf("anon sees %v", rows)
	}
	if rows := mustQuery(t, v.exec, a, "SELECT body FROM posts ORDER BY body"); len(rows) != 2 {
		t.Errorf("the author sees %v", rows)
	}
	if rows := mustQuery(t, v.exec, auth.Service(), "SELECT title FROM todos"); len(rows) != 2 {
		t.Errorf("service role sees %v", rows)
	}
}

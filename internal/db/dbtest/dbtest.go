// Package dbtest gives each test its own PostgreSQL database on the server
// named by AEROFN_TEST_DATABASE_URL (default: postgres on 127.0.0.1:5432), and
// drops it when the test ends. Postgres is never mocked.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/db"
)

// AdminURL is the maintenance connection used to create and drop databases.
func AdminURL() string {
	if u := os.Getenv("AEROFN_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// NewDatabase creates an empty database and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := AdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to test postgres (%s): %v", admin, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "aerofn_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("dropping test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dropping test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parsing admin url: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Migrated creates a database as NewDatabase does, migrates it, and returns
// a pool of at most maxConns connections on it, closed when the test ends
// (before the database is dropped), with the database's URL.
func Migrated(t testing.TB, maxConns int32) (*pgxpool.Pool, string) {
	t.Helper()
	ctx := context.Background()
	url := NewDatabase(t)
	pool, err := db.Open(ctx, url, maxConns)
	Must(t, err, "opening pool")
	t.Cleanup(pool.Close)
	_, err = db.Migrate(ctx, pool)
	Must(t, err, "migrating")
	return pool, url
}

// Must fails the test on err.
func Must(t testing.TB, err error, doing string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", doing, err)
	}
}

package secrets

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/db/dbtest"
)

const testKey = "secrets-test-key-0123456789abcdef0123456789"

// newStore opens a fresh, migrated database and a Store on it.
func newStore(t *testing.T, key string) (*Store, *pgxpool.Pool) {
	t.Helper()
	pool, _ := dbtest.Migrated(t, 4)
	s, err := New(pool, key)
	dbtest.Must(t, err, "creating store")
	return s, pool
}

func lookup(t *testing.T, s *Store, name string) (string, bool, bool) {
	t.Helper()
	v, secret, ok, err := s.Lookup(context.Background(), name)
	dbtest.Must(t, err, "looking up "+name)
	return v, secret, ok
}

// TestSecretEncryptedAtRest: a secret reads back through Lookup and Get,
// List names it without its value, and the database holds no plaintext.
func TestSecretEncryptedAtRest(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, testKey)
	const plain = "sk_live_plaintext-must-not-be-stored"
	dbtest.Must(t, s.Set(ctx, map[string]string{"API_KEY": plain, "OTHER": "x1234"}), "setting")
	if v, secret, ok := lookup(t, s, "API_KEY"); !ok || !secret || v != plain {
		t.Fatalf("Lookup(API_KEY) = %q secret=%v ok=%v", v, secret, ok)
	}
	if v, ok, err := s.Get(ctx, "API_KEY"); err != nil || !ok || v != plain {
		t.Fatalf("Get(API_KEY) = %q %v %v", v, ok, err)
	}
	var nonce, ct []byte
	dbtest.Must(t, pool.QueryRow(ctx, `SELECT nonce, ciphertext FROM aerofn.secrets WHERE name = 'API_KEY'`).Scan(&nonce, &ct), "reading row")
	if bytes.Contains(ct, []byte(plain)) || bytes.Contains(ct, []byte("plaintext")) || len(nonce) != 12 {
		t.Fatalf("stored row is not sealed: nonce %d bytes, ciphertext %q", len(nonce), ct)
	}
	infos, err := s.List(ctx)
	dbtest.Must(t, err, "listing")
	if len(infos) != 2 || infos[0].Name != "API_KEY" || infos[1].Name != "OTHER" || infos[0].UpdatedAt.IsZero() {
		t.Fatalf("List = %+v, want API_KEY and OTHER in order with times", infos)
	}
	// Setting again replaces, with a fresh nonce.
	dbtest.Must(t, s.Set(ctx, map[string]string{"API_KEY": "second"}), "replacing")
	if v, _, _ := lookup(t, s, "API_KEY"); v != "second" {
		t.Fatalf("after replace Lookup = %q, want second (the cache must be invalidated)", v)
	}
	var nonce2 []byte
	dbtest.Must(t, pool.QueryRow(ctx, `SELECT nonce FROM aerofn.secrets WHERE name = 'API_KEY'`).Scan(&nonce2), "reading nonce")
	if bytes.Equal(nonce, nonce2) {
		t.Fatal("a replaced secret reused its nonce")
	}
}

// TestCiphertextBoundToName: a ciphertext copied onto another name does not
// decrypt (the name is the associated data), and the read says so rather
// than handing out another secret's value.
func TestCiphertextBoundToName(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, testKey)
	dbtest.Must(t, s.Set(ctx, map[string]string{"ADMIN_TOKEN": "admin-value", "PUBLIC_TOKEN": "public-value"}), "setting")
	_, err := pool.Exec(ctx, `UPDATE aerofn.secrets SET (nonce, ciphertext) = (SELECT nonce, ciphertext FROM aerofn.secrets WHERE name = 'ADMIN_TOKEN')
		WHERE name = 'PUBLIC_TOKEN'`)
	dbtest.Must(t, err, "moving ciphertext")
	s.invalidate()
	v, _, _, err := s.Lookup(ctx, "PUBLIC_TOKEN")
	if err == nil || !strings.Contains(err.Error(), "PUBLIC_TOKEN") {
		t.Fatalf("Lookup of a moved ciphertext = %q, %v; want a decryption error naming the secret", v, err)
	}
}

// TestWrongKeyRefused: a node with another AEROFN_SECRETS_KEY cannot read
// the secrets and is told why; an empty key is refused up front.
func TestWrongKeyRefused(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, testKey)
	dbtest.Must(t, s.Set(ctx, map[string]string{"K": "value"}), "setting")
	other, err := New(pool, testKey+"-other")
	dbtest.Must(t, err, "second store")
	if _, _, _, err := other.Lookup(ctx, "K"); err == nil || !strings.Contains(err.Error(), "AEROFN_SECRETS_KEY") {
		t.Fatalf("Lookup under another key: %v, want an error that names AEROFN_SECRETS_KEY", err)
	}
	if _, err := New(pool, ""); err == nil {
		t.Fatal("New with an empty key succeeded")
	}
}

// TestNameIsOneKind: a name is a secret or a plain value, never both; the
// refused write stores nothing, and Get never returns a plain value.
func TestNameIsOneKind(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, testKey)
	dbtest.Must(t, s.Set(ctx, map[string]string{"TOKEN": "secret-value"}), "setting secret")
	dbtest.Must(t, s.SetValues(ctx, map[string]string{"DEBUG": "1"}), "setting value")

	if err := s.SetValues(ctx, map[string]string{"TOKEN": "plain", "NEW": "n"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("SetValues over a secret: %v, want ErrConflict", err)
	}
	if err := s.Set(ctx, map[string]string{"DEBUG": "secret", "NEW2": "n"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("Set over a plain value: %v, want ErrConflict", err)
	}
	if v, secret, _ := lookup(t, s, "TOKEN"); v != "secret-value" || !secret {
		t.Fatalf("TOKEN = %q secret=%v after the refused write", v, secret)
	}
	if v, secret, _ := lookup(t, s, "DEBUG"); v != "1" || secret {
		t.Fatalf("DEBUG = %q secret=%v after the refused write", v, secret)
	}
	for _, name := range []string{"NEW", "NEW2"} {
		if _, _, ok := lookup(t, s, name); ok {
			t.Fatalf("%s was stored by a refused write", name)
		}
	}
	if _, ok, err := s.Get(ctx, "DEBUG"); ok || err != nil {
		t.Fatalf("Get(DEBUG) = ok %v, %v; a plain value is not a secret", ok, err)
	}
	vals, err := s.Values(ctx)
	dbtest.Must(t, err, "listing values")
	if len(vals) != 1 || vals[0].Name != "DEBUG" || vals[0].Value != "1" {
		t.Fatalf("Values = %+v", vals)
	}
}

// TestDelete: deleting takes effect at once for Lookup, and deleting what is
// not there is ErrNotFound, for both kinds.
func TestDelete(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, testKey)
	dbtest.Must(t, s.Set(ctx, map[string]string{"GONE": "value"}), "setting")
	dbtest.Must(t, s.SetValues(ctx, map[string]string{"LEVEL": "debug"}), "setting value")
	lookup(t, s, "GONE") // fill the cache
	dbtest.Must(t, s.Delete(ctx, "GONE"), "deleting")
	dbtest.Must(t, s.DeleteValue(ctx, "LEVEL"), "deleting value")
	for _, name := range []string{"GONE", "LEVEL"} {
		if _, _, ok := lookup(t, s, name); ok {
			t.Fatalf("%s still readable after delete", name)
		}
	}
	if err := s.Delete(ctx, "GONE"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	if err := s.DeleteValue(ctx, "LEVEL"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteValue: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "LEVEL_NEVER"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete of an unknown name: %v, want ErrNotFound", err)
	}
}

// TestLookupStalledReload: while another session locks the secrets table, a
// lookup that needs a reload gives up when its own context ends (not before,
// not long after), a shorter deadline is not held up by a longer one's wait,
// they all share one reload query, a write's invalidation does not wait for
// it, and once the lock goes lookups read the table again.
func TestLookupStalledReload(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, testKey)
	const value = "stalled-secret-value-0123456789"
	dbtest.Must(t, s.Set(ctx, map[string]string{"API_KEY": value}), "setting") // and drops the cache
	tx, err := pool.Begin(ctx)
	dbtest.Must(t, err, "beginning")
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `LOCK TABLE aerofn.secrets IN ACCESS EXCLUSIVE MODE`)
	dbtest.Must(t, err, "locking")

	const margin = 300 * time.Millisecond
	var wg sync.WaitGroup
	// The longest first: its wait must not hold up the shorter ones.
	for i, d := range []time.Duration{800 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond} {
		if i == 1 {
			// The longest lookup's reload is blocked on the lock before the
			// others start.
			waitForLockWaiter(t, pool)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			start := time.Now()
			v, _, ok, err := s.Lookup(lctx, "API_KEY")
			took := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) || ok || v != "" || took < d || took > d+margin {
				t.Errorf("Lookup with a %s deadline: %q %v %v after %s", d, v, ok, err, took)
			}
			if err != nil && strings.Contains(err.Error(), value) {
				t.Errorf("the error shows the secret: %v", err)
			}
		}()
	}
	wg.Wait()

	var waiting int
	dbtest.Must(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'SELECT name, nonce, ciphertext FROM aerofn.secrets%' AND wait_event_type = 'Lock'`).Scan(&waiting), "counting reloads")
	if waiting != 1 {
		t.Errorf("%d reload queries waiting on the lock, want 1 shared by every lookup", waiting)
	}
	start := time.Now()
	s.invalidate()
	if took := time.Since(start); took > margin {
		t.Errorf("invalidate waited %s for the stalled reload", took)
	}

	dbtest.Must(t, tx.Rollback(ctx), "unlocking")
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if v, secret, ok, err := s.Lookup(lctx, "API_KEY"); err != nil || !ok || !secret || v != value {
		t.Fatalf("Lookup after the lock: ok %v secret %v err %v", ok, secret, err)
	}
}

// Close ends a reload stalled on a lock and waits for it, so the node's
// pool closes at once instead of after the reload's 30 s bound; lookups
// that would reload then fail with ErrClosed.
func TestCloseEndsStalledReload(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t, testKey)
	dbtest.Must(t, s.Set(ctx, map[string]string{"API_KEY": "close-test-value"}), "setting")
	locker, err := pgx.Connect(ctx, pool.Config().ConnConfig.ConnString())
	dbtest.Must(t, err, "connecting")
	defer locker.Close(ctx)
	tx, err := locker.Begin(ctx)
	dbtest.Must(t, err, "beginning")
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `LOCK TABLE aerofn.secrets IN ACCESS EXCLUSIVE MODE`)
	dbtest.Must(t, err, "locking")

	lctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, _, _, err := s.Lookup(lctx, "API_KEY"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lookup during the lock: %v", err)
	}
	waitForLockWaiter(t, locker)

	start := time.Now()
	s.Close()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %s", took)
	}
	start = time.Now()
	pool.Close()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the pool took %s to close", took)
	}
	if _, _, _, err := s.Lookup(ctx, "API_KEY"); !errors.Is(err, ErrClosed) {
		t.Errorf("Lookup after Close: %v, want ErrClosed", err)
	}
}

// waitForLockWaiter waits until a query waits on a lock on aerofn.secrets
// (a reload blocked by the test's LOCK TABLE).
func waitForLockWaiter(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting int
		dbtest.Must(t, q.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'aerofn.secrets'::regclass`).Scan(&waiting), "reading locks")
		if waiting > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the reload never waited on the lock")
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

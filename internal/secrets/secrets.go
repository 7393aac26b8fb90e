// Package secrets stores the values functions read with env(): secrets,
// encrypted at rest with AES-256-GCM under a key held only by the aerofn
// process and never shown again, and plain configuration values (DEBUG=1),
// stored as they are and shown by the API. A name is one or the other.
package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/db"
)

var (
	// ErrNotFound: no secret (or plain value) of that name.
	ErrNotFound = db.ErrNotFound
	// ErrConflict: the name is already taken by the other kind (a secret
	// when setting a plain value, or the reverse).
	ErrConflict = errors.New("name taken by the other kind")
)

// envLockKey serialises writers of both kinds, so that a name cannot become
// a secret and a plain value at once.
const envLockKey = 0x6165726f656e76 // "aeroenv"

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// MaxValueSize bounds one secret's value.
const MaxValueSize = 64 << 10

// Store reads and writes secrets. Values are cached for a short time so that
// env() on the hot path rarely touches the database.
//
// The cache is reloaded by one query at a time, shared by every lookup that
// needs it, and run apart from them: a lookup waits for it only as long as
// its own context lasts, and mu is never held across the database, so a
// reload that stalls (a lock on the secrets table, a slow database) costs
// each env() its caller's deadline and nothing more.
type Store struct {
	pool *pgxpool.Pool
	aead cipher.AEAD

	mu       sync.Mutex
	cache    map[string]entry
	loadedAt time.Time
	ttl      time.Duration
	// loading is the reload under way, if any; gen counts invalidations,
	// so that a reload begun before a write does not refill the cache.
	loading *reload
	gen     uint64

	// stop ends the reloads under way when the node stops (Close), which
	// waits for them on reloads: a stalled one would otherwise hold a pool
	// connection, and so the pool's Close, for up to reloadTimeout.
	stop    context.Context
	stopNow context.CancelFunc
	reloads sync.WaitGroup
	closed  bool
}

// reload is one run of loadAll; m and err are set before done is closed.
type reload struct {
	done chan struct{}
	m    map[string]entry
	err  error
}

// reloadTimeout bounds one reload: past it the query is abandoned and the
// next lookup starts another.
const reloadTimeout = 30 * time.Second

// New returns a Store whose key is derived from key (any length, not empty).
func New(pool *pgxpool.Pool, key string) (*Store, error) {
	if key == "" {
		return nil, errors.New("secrets key is empty")
	}
	k := sha256.Sum256([]byte("aerofn secrets v1\x00" + key))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("creating cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("creating cipher: %w", err)
	}
	stop, stopNow := context.WithCancel(context.Background())
	return &Store{pool: pool, aead: aead, ttl: time.Second, stop: stop, stopNow: stopNow}, nil
}

// ErrClosed: the store was closed (the node is stopping).
var ErrClosed = errors.New("secrets store closed")

// Close ends the reload under way, if any, and waits for it; lookups that
// need a reload fail with ErrClosed from then on. The writes and listings
// run under their callers' contexts and are not affected. Call it before
// closing the pool.
func (s *Store) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stopNow()
	s.reloads.Wait()
}

// ValidName reports whether name is a valid secret name.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// entry is a cached env() value.
type entry struct {
	value  string
	secret bool
}

// lockAndCheck takes the writers' lock and fails with ErrConflict when one
// of names is in the other kind's table.
func lockAndCheck(ctx context.Context, tx pgx.Tx, names []string, otherTable, otherKind string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, envLockKey); err != nil {
		return fmt.Errorf("locking env names: %w", err)
	}
	var taken []string
	if err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(name ORDER BY name), '{}') FROM `+otherTable+` WHERE name = ANY($1)`, names).Scan(&taken); err != nil {
		return fmt.Errorf("checking env names: %w", err)
	}
	if len(taken) > 0 {
		return fmt.Errorf("%w: %v already a %s", ErrConflict, taken, otherKind)
	}
	return nil
}

func names(values map[string]string) []string {
	out := make([]string, 0, len(values))
	for k := range values {
		out = append(out, k)
	}
	return out
}

// Set stores or replaces secrets. A name that is a plain value is refused
// with ErrConflict and nothing is stored.
func (s *Store) Set(ctx context.Context, values map[string]string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockAndCheck(ctx, tx, names(values), "aerofn.env_values", "plain value"); err != nil {
			return err
		}
		for name, v := range values {
			nonce := make([]byte, s.aead.NonceSize())
			if _, err := rand.Read(nonce); err != nil {
				return fmt.Errorf("making nonce: %w", err)
			}
			ct := s.aead.Seal(nil, nonce, []byte(v), []byte(name))
			if _, err := tx.Exec(ctx, `INSERT INTO aerofn.secrets (name, nonce, ciphertext) VALUES ($1, $2, $3)
				ON CONFLICT (name) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = now()`, name, nonce, ct); err != nil {
				return fmt.Errorf("storing secret %s: %w", name, err)
			}
		}
		return nil
	})
	s.invalidate()
	return err
}

// Delete removes a secret.
func (s *Store) Delete(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM aerofn.secrets WHERE name = $1`, name)
	s.invalidate()
	if err != nil {
		return fmt.Errorf("deleting secret: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// Info describes a secret without its value.
type Info struct {
	Name      string    `json:"name"`
	UpdatedAt time.Time `json:"updated_at"`
}

// List returns the names of all secrets (never values).
func (s *Store) List(ctx context.Context) ([]Info, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, updated_at FROM aerofn.secrets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing secrets: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Info])
	if err != nil {
		return nil, fmt.Errorf("listing secrets: %w", err)
	}
	if out == nil {
		out = []Info{}
	}
	return out, nil
}

// Value is a plain configuration value, shown as it is.
type Value struct {
	Name      string    `json:"name"`
	Value     string    `json:"value"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SetValues stores or replaces plain values (any length up to
// MaxValueSize, empty included). A name that is a secret is refused with
// ErrConflict and nothing is stored.
func (s *Store) SetValues(ctx context.Context, values map[string]string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockAndCheck(ctx, tx, names(values), "aerofn.secrets", "secret"); err != nil {
			return err
		}
		for name, v := range values {
			if _, err := tx.Exec(ctx, `INSERT INTO aerofn.env_values (name, value) VALUES ($1, $2)
				ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = now()`, name, v); err != nil {
				return fmt.Errorf("storing value %s: %w", name, err)
			}
		}
		return nil
	})
	s.invalidate()
	return err
}

// Values returns every plain value, by name.
func (s *Store) Values(ctx context.Context) ([]Value, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, value, updated_at FROM aerofn.env_values ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing values: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Value])
	if err != nil {
		return nil, fmt.Errorf("listing values: %w", err)
	}
	if out == nil {
		out = []Value{}
	}
	return out, nil
}

// DeleteValue removes a plain value.
func (s *Store) DeleteValue(ctx context.Context, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM aerofn.env_values WHERE name = $1`, name)
	s.invalidate()
	if err != nil {
		return fmt.Errorf("deleting value: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// invalidate drops the cache after a write. A reload under way may have
// read the table before the write: its waiters still get what it read, but
// it is not cached, and the next lookup starts a new one.
func (s *Store) invalidate() {
	s.mu.Lock()
	s.cache = nil
	s.loading = nil
	s.gen++
	s.mu.Unlock()
}

// Get returns a secret's value (never a plain value: a webhook's signing
// secret must be a secret).
func (s *Store) Get(ctx context.Context, name string) (string, bool, error) {
	v, secret, ok, err := s.Lookup(ctx, name)
	if err != nil || !ok || !secret {
		return "", false, err
	}
	return v, true, nil
}

// Lookup returns what env(name) reads: a secret (secret true: to be
// scrubbed from what leaves the call) or a plain value. When the cache is
// stale it waits for the reload until ctx ends, and then fails with ctx's
// error (the reload carries on for the lookups after it).
func (s *Store) Lookup(ctx context.Context, name string) (value string, secret, ok bool, err error) {
	s.mu.Lock()
	if s.cache != nil && time.Since(s.loadedAt) <= s.ttl {
		e, ok := s.cache[name]
		s.mu.Unlock()
		return e.value, e.secret, ok, nil
	}
	r := s.loading
	if r == nil {
		if s.closed {
			s.mu.Unlock()
			return "", false, false, fmt.Errorf("reading env values: %w", ErrClosed)
		}
		r = &reload{done: make(chan struct{})}
		s.loading = r
		s.reloads.Add(1)
		go s.reload(r, s.gen)
	}
	s.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		return "", false, false, fmt.Errorf("reading env values: %w", context.Cause(ctx))
	}
	if r.err != nil {
		return "", false, false, r.err
	}
	e, ok := r.m[name]
	return e.value, e.secret, ok, nil
}

// reload runs loadAll for r, under no caller's context, and caches what it
// read unless the store was written meanwhile (gen moved on).
func (s *Store) reload(r *reload, gen uint64) {
	defer s.reloads.Done()
	ctx, cancel := context.WithTimeout(s.stop, reloadTimeout)
	m, err := s.loadAll(ctx)
	cancel()
	s.mu.Lock()
	r.m, r.err = m, err
	if s.loading == r {
		s.loading = nil
	}
	if err == nil && s.gen == gen {
		s.cache, s.loadedAt = m, time.Now()
	}
	s.mu.Unlock()
	close(r.done)
}

func (s *Store) loadAll(ctx context.Context) (map[string]entry, error) {
	m := map[string]entry{}
	rows, err := s.pool.Query(ctx, `SELECT name, value FROM aerofn.env_values`)
	if err != nil {
		return nil, fmt.Errorf("reading values: %w", err)
	}
	for rows.Next() {
		var name, v string
		if err := rows.Scan(&name, &v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading values: %w", err)
		}
		m[name] = entry{value: v}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading values: %w", err)
	}
	if err := s.loadSecrets(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}

func (s *Store) loadSecrets(ctx context.Context, m map[string]entry) error {
	rows, err := s.pool.Query(ctx, `SELECT name, nonce, ciphertext FROM aerofn.secrets`)
	if err != nil {
		return fmt.Errorf("reading secrets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var nonce, ct []byte
		if err := rows.Scan(&name, &nonce, &ct); err != nil {
			return fmt.Errorf("reading secrets: %w", err)
		}
		pt, err := s.aead.Open(nil, nonce, ct, []byte(name))
		if err != nil {
			return fmt.Errorf("decrypting secret %s (was AEROFN_SECRETS_KEY changed?): %w", name, err)
		}
		// A secret wins if a name were ever both: it is then scrubbed.
		m[name] = entry{value: string(pt), secret: true}
	}
	return rows.Err()
}

// Package secrets stores the values functions read with env(), encrypted at
// rest with AES-256-GCM under a key held only by the aerofn process.
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

// ErrNotFound: no secret of that name.
var ErrNotFound = db.ErrNotFound

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// MaxValueSize bounds one secret's value.
const MaxValueSize = 64 << 10

// Store reads and writes secrets. Values are cached for a short time so that
// env() on the hot path rarely touches the database.
type Store struct {
	pool *pgxpool.Pool
	aead cipher.AEAD

	mu       sync.Mutex
	cache    map[string]string
	loadedAt time.Time
	ttl      time.Duration
}

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
	return &Store{pool: pool, aead: aead, ttl: time.Second}, nil
}

// ValidName reports whether name is a valid secret name.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Set stores or replaces secrets.
func (s *Store) Set(ctx context.Context, values map[string]string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
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

func (s *Store) invalidate() {
	s.mu.Lock()
	s.cache = nil
	s.mu.Unlock()
}

// Get returns a secret's value.
func (s *Store) Get(ctx context.Context, name string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil || time.Since(s.loadedAt) > s.ttl {
		m, err := s.loadAll(ctx)
		if err != nil {
			return "", false, err
		}
		s.cache, s.loadedAt = m, time.Now()
	}
	v, ok := s.cache[name]
	return v, ok, nil
}

func (s *Store) loadAll(ctx context.Context) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, nonce, ciphertext FROM aerofn.secrets`)
	if err != nil {
		return nil, fmt.Errorf("reading secrets: %w", err)
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var name string
		var nonce, ct []byte
		if err := rows.Scan(&name, &nonce, &ct); err != nil {
			return nil, fmt.Errorf("reading secrets: %w", err)
		}
		pt, err := s.aead.Open(nil, nonce, ct, []byte(name))
		if err != nil {
			return nil, fmt.Errorf("decrypting secret %s (was AEROFN_SECRETS_KEY changed?): %w", name, err)
		}
		m[name] = string(pt)
	}
	return m, rows.Err()
}

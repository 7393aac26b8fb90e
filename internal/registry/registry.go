// Package registry stores functions, their versions and their module bytes
// (content-addressed by SHA-256) in Postgres.
package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/db"
)

var (
	// ErrNotFound: no such function or version.
	ErrNotFound = db.ErrNotFound
	// ErrConflict: a concurrent change won (for example two deploys racing
	// for the same new version number).
	ErrConflict = errors.New("conflict")
	// ErrCorruptModule: stored bytes do not hash to their key.
	ErrCorruptModule = errors.New("stored module does not match its hash")
)

// Function is a function with its current version.
type Function struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Enabled     bool      `json:"enabled"`
	Config      Config    `json:"config"`
	Version     int       `json:"version"`
	WasmHash    string    `json:"wasm_hash"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Version is one deployed module of a function.
type Version struct {
	Version     int       `json:"version"`
	WasmHash    string    `json:"wasm_hash"`
	Size        int       `json:"size"`
	Description string    `json:"description"`
	Config      Config    `json:"config"`
	CreatedAt   time.Time `json:"created_at"`
	Current     bool      `json:"current"`
}

// Store is the registry over a pool.
type Store struct {
	pool       *pgxpool.Pool
	hooks      []Hook
	validators map[string]TriggerValidator
	// early bounds the deploys whose module is stored while it compiles
	// (StartDeploy): each holds a connection for the whole compile, and a
	// compile needs connections of its own (the artifact store), so
	// without a bound enough concurrent deploys would hold the whole pool
	// and wait on it forever. A deploy that finds no room stores its
	// module at Commit, as before.
	early chan struct{}
}

// New returns a Store.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, early: make(chan struct{}, max(1, int(pool.Config().MaxConns)/4))}
}

// Hash is the hex SHA-256 of module bytes.
func Hash(wasm []byte) string {
	h := sha256.Sum256(wasm)
	return hex.EncodeToString(h[:])
}

// DeployInput is a new version. Config is the whole config of the version;
// nil keeps the current config of an existing function (the defaults for a
// new one), except that Triggers, when not nil, replaces its triggers.
type DeployInput struct {
	Name        string
	Wasm        []byte
	Description *string
	Config      *Config
	Triggers    *[]Trigger // with Config nil: the new triggers, the rest kept
}

// Deployed is what a deploy returns.
type Deployed struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	WasmHash  string    `json:"wasm_hash"`
	CreatedAt time.Time `json:"created_at"`
	Created   bool      `json:"-"` // the function did not exist before
	Function  Function  `json:"-"`
}

// Deploy stores the module and adds a version, which becomes current.
func (s *Store) Deploy(ctx context.Context, in DeployInput) (Deployed, error) {
	var out Deployed
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = s.DeployTx(ctx, tx, in)
		return err
	})
	return out, err
}

// DeployTx is Deploy inside the caller's transaction, so that work tied to
// the deploy (installing a capture trigger, a schedule) commits or rolls back
// with it.
func (s *Store) DeployTx(ctx context.Context, tx pgx.Tx, in DeployInput) (Deployed, error) {
	hash := Hash(in.Wasm)
	if err := storeModule(ctx, tx, hash, in.Wasm); err != nil {
		return Deployed{}, err
	}
	return s.addVersion(ctx, tx, in, hash)
}

func storeModule(ctx context.Context, tx pgx.Tx, hash string, wasm []byte) error {
	if _, err := tx.Exec(ctx, `INSERT INTO aerofn.modules (hash, bytes, size) VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING`,
		hash, wasm, len(wasm)); err != nil {
		return fmt.Errorf("storing module: %w", err)
	}
	return nil
}

// PendingDeploy is a deploy whose module is being stored while the caller
// prepares it (StartDeploy).
type PendingDeploy struct {
	s     *Store
	in    DeployInput
	hash  string
	early bool          // the module is stored in tx ahead of Commit
	done  chan struct{} // closed once tx and err are set
	tx    pgx.Tx
	err   error
	over  bool // Commit or Abort was called
	end   sync.Once
}

// StartDeploy begins the deploy of in: it stores the module's bytes in a
// transaction of its own, in the background, while the caller prepares the
// module (validates and compiles it, which takes seconds for a Go guest).
// Writing a Go guest's 3-4 MB into aerofn.modules (compressed by
// PostgreSQL, TOASTed, logged) took 0.15-2 s, which a deploy paid after
// its compile when Deploy wrote them; see docs/RATIONALE.md, "Storing
// the module while it compiles". Commit then adds the version in the same
// transaction and commits; Abort rolls it back, so a deploy that fails
// leaves no module behind. One of them must be called (Abort after Commit
// does nothing, so it can be deferred). When a quarter of the pool's
// connections are already held by such deploys, this one stores its module
// at Commit instead (Store.early).
func (s *Store) StartDeploy(ctx context.Context, in DeployInput) *PendingDeploy {
	p := &PendingDeploy{s: s, in: in, hash: Hash(in.Wasm), done: make(chan struct{})}
	select {
	case s.early <- struct{}{}:
		p.early = true
	default:
		close(p.done)
		return p
	}
	go func() {
		defer close(p.done)
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			p.err = fmt.Errorf("storing module: %w", err)
			return
		}
		p.tx = tx
		// The transaction waits idle for the compile: a server-wide
		// idle_in_transaction_session_timeout must not end it.
		if _, err := tx.Exec(ctx, `SET LOCAL idle_in_transaction_session_timeout = 0`); err != nil {
			p.err = fmt.Errorf("storing module: %w", err)
			return
		}
		p.err = storeModule(ctx, tx, p.hash, in.Wasm)
	}()
	return p
}

// Commit waits for the module to be stored, adds the version (as Deploy
// does) and commits.
func (p *PendingDeploy) Commit(ctx context.Context) (Deployed, error) {
	<-p.done
	if p.over {
		return Deployed{}, errors.New("deploy already committed or aborted")
	}
	p.over = true
	if !p.early {
		return p.s.Deploy(ctx, p.in)
	}
	defer p.finish()
	if p.err != nil {
		return Deployed{}, p.err
	}
	out, err := p.s.addVersion(ctx, p.tx, p.in, p.hash)
	if err != nil {
		return Deployed{}, err
	}
	if err := p.tx.Commit(ctx); err != nil {
		return Deployed{}, fmt.Errorf("committing deploy of %s: %w", p.in.Name, err)
	}
	return out, nil
}

// Abort rolls the deploy back, once its module's insert has ended; after
// Commit it does nothing.
func (p *PendingDeploy) Abort() {
	<-p.done
	p.over = true
	p.finish()
}

// finish ends the early transaction (a rollback after a commit does
// nothing; after a panic in Commit it gives the connection back) and the
// deploy's place in Store.early, once.
func (p *PendingDeploy) finish() {
	if !p.early {
		return
	}
	p.end.Do(func() {
		if p.tx != nil {
			p.tx.Rollback(context.Background()) //nolint:errcheck // committed, or nothing to keep
		}
		<-p.s.early
	})
}

// addVersion is DeployTx once the module is stored.
func (s *Store) addVersion(ctx context.Context, tx pgx.Tx, in DeployInput, hash string) (Deployed, error) {
	// Lock the function row (if any) so concurrent deploys number versions in turn.
	var (
		id      string
		cfgRaw  []byte
		desc    string
		created bool
	)
	err := tx.QueryRow(ctx, `SELECT id, config, description FROM aerofn.functions WHERE name = $1 FOR UPDATE`, in.Name).Scan(&id, &cfgRaw, &desc)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		created = true
		cfgRaw = []byte("{}")
		if err := tx.QueryRow(ctx, `INSERT INTO aerofn.functions (name, current_version) VALUES ($1, 0)
			ON CONFLICT (name) DO NOTHING RETURNING id`, in.Name).Scan(&id); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return Deployed{}, fmt.Errorf("%w: function %q was created concurrently", ErrConflict, in.Name)
			}
			return Deployed{}, fmt.Errorf("creating function: %w", err)
		}
	case err != nil:
		return Deployed{}, fmt.Errorf("locking function: %w", err)
	}
	if in.Config == nil && in.Triggers != nil {
		var cur Config
		if err := json.Unmarshal(cfgRaw, &cur); err != nil {
			return Deployed{}, fmt.Errorf("decoding stored config of %s: %w", in.Name, err)
		}
		cur.Triggers = *in.Triggers
		if err := cur.Validate(s.TriggerTypes()); err != nil {
			return Deployed{}, err
		}
		in.Config = &cur
	}
	if in.Config != nil {
		if err := s.validateTriggers(ctx, tx, *in.Config); err != nil {
			return Deployed{}, err
		}
		b, err := json.Marshal(in.Config)
		if err != nil {
			return Deployed{}, fmt.Errorf("encoding config: %w", err)
		}
		cfgRaw = b
	}
	if in.Description != nil {
		desc = *in.Description
	}
	var version int
	var createdAt time.Time
	if err := tx.QueryRow(ctx, `INSERT INTO aerofn.versions (function_id, version, wasm_hash, config, description)
		SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4 FROM aerofn.versions WHERE function_id = $1
		RETURNING version, created_at`, id, hash, cfgRaw, desc).Scan(&version, &createdAt); err != nil {
		return Deployed{}, fmt.Errorf("adding version: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE aerofn.functions SET current_version = $2, config = $3, description = $4, updated_at = now() WHERE id = $1`,
		id, version, cfgRaw, desc); err != nil {
		return Deployed{}, fmt.Errorf("making version current: %w", err)
	}
	if err := notify(ctx, tx, in.Name); err != nil {
		return Deployed{}, err
	}
	fn, err := getFunction(ctx, tx, in.Name)
	if err != nil {
		return Deployed{}, err
	}
	if err := s.syncHooks(ctx, tx, fn); err != nil {
		return Deployed{}, err
	}
	return Deployed{ID: id, Name: in.Name, Version: version, WasmHash: hash, CreatedAt: createdAt, Created: created, Function: fn}, nil
}

// ChangeChannel is the NOTIFY channel on which every registry change is
// announced (payload: the function name), so other nodes drop cached copies.
const ChangeChannel = "aerofn_registry"

func notify(ctx context.Context, tx pgx.Tx, name string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ChangeChannel, name); err != nil {
		return fmt.Errorf("announcing change: %w", err)
	}
	return nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

const functionColumns = `f.id, f.name, f.description, f.enabled, f.config, f.current_version, v.wasm_hash, f.created_at, f.updated_at`

func scanFunction(row pgx.Row) (Function, error) {
	var f Function
	var cfg []byte
	if err := row.Scan(&f.ID, &f.Name, &f.Description, &f.Enabled, &cfg, &f.Version, &f.WasmHash, &f.CreatedAt, &f.UpdatedAt); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return f, ErrNotFound
		}
		return f, err
	}
	if err := json.Unmarshal(cfg, &f.Config); err != nil {
		return f, fmt.Errorf("decoding stored config of %s: %w", f.Name, err)
	}
	return f, nil
}

func getFunction(ctx context.Context, q querier, name string) (Function, error) {
	f, err := scanFunction(q.QueryRow(ctx, `SELECT `+functionColumns+` FROM aerofn.functions f
		JOIN aerofn.versions v ON v.function_id = f.id AND v.version = f.current_version WHERE f.name = $1`, name))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return f, fmt.Errorf("reading function %s: %w", name, err)
	}
	return f, err
}

// Get returns a function by name (enabled or not).
func (s *Store) Get(ctx context.Context, name string) (Function, error) {
	return getFunction(ctx, s.pool, name)
}

// List returns every function, by name.
func (s *Store) List(ctx context.Context) ([]Function, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+functionColumns+` FROM aerofn.functions f
		JOIN aerofn.versions v ON v.function_id = f.id AND v.version = f.current_version ORDER BY f.name`)
	if err != nil {
		return nil, fmt.Errorf("listing functions: %w", err)
	}
	defer rows.Close()
	out := []Function{}
	for rows.Next() {
		f, err := scanFunction(rows)
		if err != nil {
			return nil, fmt.Errorf("listing functions: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// AnyEnabledWithPrefix reports whether the current version of an enabled
// function has stored bytes starting with prefix (the server asks it with
// engine.ScriptMagic: is there a JavaScript function to warm the runtime
// for).
func (s *Store) AnyEnabledWithPrefix(ctx context.Context, prefix []byte) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM aerofn.functions f
		JOIN aerofn.versions v ON v.function_id = f.id AND v.version = f.current_version
		JOIN aerofn.modules m ON m.hash = v.wasm_hash
		WHERE f.enabled AND substring(m.bytes FROM 1 FOR $2) = $1)`, prefix, len(prefix)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("looking for enabled functions: %w", err)
	}
	return ok, nil
}

// Versions lists a function's versions, newest first.
func (s *Store) Versions(ctx context.Context, name string) ([]Version, error) {
	rows, err := s.pool.Query(ctx, `SELECT v.version, v.wasm_hash, m.size, v.description, v.config, v.created_at, v.version = f.current_version
		FROM aerofn.functions f JOIN aerofn.versions v ON v.function_id = f.id JOIN aerofn.modules m ON m.hash = v.wasm_hash
		WHERE f.name = $1 ORDER BY v.version DESC`, name)
	if err != nil {
		return nil, fmt.Errorf("listing versions: %w", err)
	}
	defer rows.Close()
	out := []Version{}
	for rows.Next() {
		var v Version
		var cfg []byte
		if err := rows.Scan(&v.Version, &v.WasmHash, &v.Size, &v.Description, &cfg, &v.CreatedAt, &v.Current); err != nil {
			return nil, fmt.Errorf("listing versions: %w", err)
		}
		if err := json.Unmarshal(cfg, &v.Config); err != nil {
			return nil, fmt.Errorf("decoding version config: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing versions: %w", err)
	}
	if len(out) == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

// PatchInput changes what is set; nil fields are left alone.
type PatchInput struct {
	Description *string
	Enabled     *bool
	// ConfigPatch is a JSON merge patch (RFC 7396) applied to the stored
	// config: the fields it names change, null resets a field to its
	// default, a list (triggers, env...) is replaced whole.
	ConfigPatch json.RawMessage
}

// Patch updates a function in place (no new version) and returns it.
func (s *Store) Patch(ctx context.Context, name string, in PatchInput) (Function, error) {
	var f Function
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		f, err = s.PatchTx(ctx, tx, name, in)
		return err
	})
	return f, err
}

// PatchTx is Patch inside the caller's transaction.
func (s *Store) PatchTx(ctx context.Context, tx pgx.Tx, name string, in PatchInput) (Function, error) {
	var cfg []byte
	if len(in.ConfigPatch) > 0 {
		// The row lock orders concurrent patches: each merges into what
		// the previous one stored.
		var cur []byte
		err := tx.QueryRow(ctx, `SELECT config FROM aerofn.functions WHERE name = $1 FOR UPDATE`, name).Scan(&cur)
		if errors.Is(err, pgx.ErrNoRows) {
			return Function{}, ErrNotFound
		}
		if err != nil {
			return Function{}, fmt.Errorf("locking function: %w", err)
		}
		c, err := MergeConfig(cur, in.ConfigPatch)
		if err != nil {
			return Function{}, err
		}
		if err := c.Validate(s.TriggerTypes()); err != nil {
			return Function{}, err
		}
		if err := s.validateTriggers(ctx, tx, c); err != nil {
			return Function{}, err
		}
		b, err := json.Marshal(c)
		if err != nil {
			return Function{}, fmt.Errorf("encoding config: %w", err)
		}
		cfg = b
	}
	tag, err := tx.Exec(ctx, `UPDATE aerofn.functions SET
		description = coalesce($2, description), enabled = coalesce($3, enabled), config = coalesce($4, config), updated_at = now()
		WHERE name = $1`, name, in.Description, in.Enabled, cfg)
	if err != nil {
		return Function{}, fmt.Errorf("updating function: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return Function{}, ErrNotFound
	}
	if err := notify(ctx, tx, name); err != nil {
		return Function{}, err
	}
	fn, err := getFunction(ctx, tx, name)
	if err != nil {
		return Function{}, err
	}
	if err := s.syncHooks(ctx, tx, fn); err != nil {
		return Function{}, err
	}
	return fn, nil
}

// Delete removes a function and its versions. Module bytes stay (another
// function may share them; they are small and content-addressed).
func (s *Store) Delete(ctx context.Context, name string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.DeleteTx(ctx, tx, name) })
}

// DeleteTx is Delete inside the caller's transaction.
func (s *Store) DeleteTx(ctx context.Context, tx pgx.Tx, name string) error {
	fn, err := getFunction(ctx, tx, name)
	if err != nil {
		return err
	}
	if err := s.removeHooks(ctx, tx, fn); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `DELETE FROM aerofn.functions WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("deleting function: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return notify(ctx, tx, name)
}

// Rollback makes an earlier version current again: by number when version
// > 0, else by module hash (the newest version with that hash).
func (s *Store) Rollback(ctx context.Context, name string, version int, hash string) (Function, error) {
	var f Function
	if version > math.MaxInt32 {
		return f, ErrNotFound // versions are int4: no version can have that number
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var target int
		err := tx.QueryRow(ctx, `SELECT v.version FROM aerofn.functions f JOIN aerofn.versions v ON v.function_id = f.id
			WHERE f.name = $1 AND (($2 > 0 AND v.version = $2) OR ($2 = 0 AND v.wasm_hash = $3))
			ORDER BY v.version DESC LIMIT 1`, name, version, hash).Scan(&target)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("finding version: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE aerofn.functions SET current_version = $2, updated_at = now() WHERE name = $1`, name, target); err != nil {
			return fmt.Errorf("making version current: %w", err)
		}
		if err := notify(ctx, tx, name); err != nil {
			return err
		}
		f, err = getFunction(ctx, tx, name)
		return err
	})
	return f, err
}

// ModuleBytes returns a module's bytes, verified against their hash.
func (s *Store) ModuleBytes(ctx context.Context, hash string) ([]byte, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT bytes FROM aerofn.modules WHERE hash = $1`, hash).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading module %s: %w", hash, err)
	}
	if Hash(b) != hash {
		return nil, fmt.Errorf("%w: %s", ErrCorruptModule, hash)
	}
	return b, nil
}

package dbtrigger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aerodb/aerofn/internal/cluster"
	"github.com/aerodb/aerofn/internal/registry"
)

// TriggerType is config.triggers[].type for database triggers.
const TriggerType = "database"

// DefaultMaxAttempts is how many times a delivery is tried when the trigger
// does not say (max_attempts); MaxMaxAttempts bounds what it may say.
const (
	DefaultMaxAttempts = 5
	MaxMaxAttempts     = 100
)

// Ops are the operations a trigger can name, in capture-trigger order.
var Ops = []string{"INSERT", "UPDATE", "DELETE"}

// notifyChannel wakes the dispatcher: the capture functions notify it on
// every captured statement, Sync on every subscription change.
const notifyChannel = "aerofn_events"

// Hook keeps subscriptions and capture triggers in step with the registry,
// inside the registry's transaction: a deploy whose trigger cannot be
// installed stores nothing, and a rolled-back deploy installs nothing.
type Hook struct{}

var _ registry.Hook = Hook{}

// TriggerType implements registry.Hook.
func (Hook) TriggerType() string { return TriggerType }

func invalid(index int, field, format string, args ...any) error {
	name := fmt.Sprintf("config.triggers[%d]", index)
	if field != "" {
		name += "." + field
	}
	return &registry.ValidationError{Field: name, Message: fmt.Sprintf(format, args...)}
}

// Validate implements registry.Hook: the table must exist (an ordinary or
// partitioned table) outside aerofn's and PostgreSQL's schemas, the events must be INSERT, UPDATE or DELETE, and the
// fields of other trigger types must be absent.
func (Hook) Validate(ctx context.Context, tx pgx.Tx, t registry.Trigger, index int) error {
	_, err := normalize(ctx, tx, t, index)
	return err
}

// subscription is one function's interest in one table.
type subscription struct {
	TableOID    uint32
	TableName   string
	Ops         []string
	Ordered     bool
	MaxAttempts int
}

// normalize validates t and resolves its table.
func normalize(ctx context.Context, tx pgx.Tx, t registry.Trigger, index int) (subscription, error) {
	var s subscription
	var d registry.DatabaseTrigger
	if t.Database != nil {
		d = *t.Database
	}
	if strings.TrimSpace(d.Table) == "" {
		return s, invalid(index, "table", "a database trigger needs a table, e.g. \"public.orders\"")
	}
	if d.MaxAttempts < 0 || d.MaxAttempts > MaxMaxAttempts {
		return s, invalid(index, "max_attempts", "%d is outside 1-%d", d.MaxAttempts, MaxMaxAttempts)
	}
	s.MaxAttempts = d.MaxAttempts
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	s.Ordered = d.Ordered
	ops := d.Events
	if len(ops) == 0 {
		ops = Ops
	}
	for _, op := range ops {
		up := strings.ToUpper(strings.TrimSpace(op))
		if !slices.Contains(Ops, up) {
			return s, invalid(index, "events", "%q is not one of INSERT, UPDATE, DELETE", op)
		}
		if !slices.Contains(s.Ops, up) {
			s.Ops = append(s.Ops, up)
		}
	}
	slices.SortFunc(s.Ops, func(a, b string) int { return slices.Index(Ops, a) - slices.Index(Ops, b) })

	var oid *uint32
	var kind, schema string
	// to_regclass resolves the name as the admin's search_path does and
	// returns NULL (not an error) for a table that does not exist, but
	// raises on a name that does not parse ("public.x; drop table y",
	// "a.b.c.d"): a savepoint keeps the deploy's transaction usable and the
	// refusal a 400.
	sp, err := tx.Begin(ctx)
	if err != nil {
		return s, fmt.Errorf("looking up table %q: %w", d.Table, err)
	}
	err = sp.QueryRow(ctx, `SELECT c.oid, c.relkind::text, n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass($1)`, d.Table).Scan(&oid, &kind, &schema)
	if rerr := sp.Rollback(ctx); rerr != nil && err == nil {
		err = rerr
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return s, invalid(index, "table", "%q is not a valid table name (schema.table, quoted as SQL quotes identifiers): %s", d.Table, pgErr.Message)
	}
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && oid == nil) {
		return s, invalid(index, "table", "table %q does not exist", d.Table)
	}
	if err != nil {
		return s, fmt.Errorf("looking up table %q: %w", d.Table, err)
	}
	if reservedSchema(schema) {
		return s, invalid(index, "table", "%q is in schema %q, which belongs to aerofn or to PostgreSQL; capture triggers go on the application's own tables", d.Table, schema)
	}
	if kind != "r" && kind != "p" {
		return s, invalid(index, "table", "%q is not a table (views, foreign tables and others cannot carry capture triggers)", d.Table)
	}
	s.TableOID, s.TableName = *oid, d.Table
	return s, nil
}

// reservedSchema reports whether a schema's tables must never be captured:
// aerofn's own (its registry, records, the events queue and River's tables
// live in aerofn; auth holds its RLS helpers), where a capture would recurse
// (a write to aerofn.events captured into aerofn.events until the stack
// overflows) or feed on itself (a function's record in aerofn.invocations
// invoking it again), and PostgreSQL's catalogs, temporary and TOAST schemas,
// which cannot carry user triggers or vanish with a session.
func reservedSchema(schema string) bool {
	switch schema {
	case Schema, "auth", "information_schema":
		return true
	}
	return strings.HasPrefix(schema, "pg_")
}

// desired merges fn's database triggers by table: two triggers on one
// table make one subscription with the union of their events. A trigger
// that no longer validates (its table was dropped) is skipped: a new config
// was validated before Sync, and an old one must not stop a function from
// being disabled or redeployed.
func desired(ctx context.Context, tx pgx.Tx, fn registry.Function) (map[uint32]subscription, error) {
	out := map[uint32]subscription{}
	for i, t := range fn.Config.Triggers {
		if t.Type != TriggerType {
			continue
		}
		s, err := normalize(ctx, tx, t, i)
		var ve *registry.ValidationError
		if errors.As(err, &ve) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if prev, ok := out[s.TableOID]; ok {
			for _, op := range prev.Ops {
				if !slices.Contains(s.Ops, op) {
					s.Ops = append(s.Ops, op)
				}
			}
			s.Ordered = s.Ordered || prev.Ordered
			s.MaxAttempts = max(s.MaxAttempts, prev.MaxAttempts)
		}
		out[s.TableOID] = s
	}
	return out, nil
}

// Sync implements registry.Hook: fn's subscriptions become exactly its
// database triggers, and every table they touch (before or after) gets the
// capture triggers its subscriptions need. Enabling or disabling changes
// no trigger (a disabled function's changes keep being captured and are
// held); the dispatcher is told, so it releases what was held.
func (Hook) Sync(ctx context.Context, tx pgx.Tx, fn registry.Function) error {
	want, err := desired(ctx, tx, fn)
	if err != nil {
		return err
	}
	have, err := subscribedTables(ctx, tx, fn.ID)
	if err != nil {
		return err
	}
	tables := map[uint32]bool{}
	for oid := range want {
		tables[oid] = true
	}
	for _, oid := range have {
		tables[oid] = true
	}
	if err := lockTables(ctx, tx, tables); err != nil {
		return err
	}
	for _, oid := range have {
		if _, ok := want[oid]; !ok {
			if _, err := tx.Exec(ctx, `DELETE FROM aerofn.event_subscriptions WHERE function_id = $1 AND table_oid = $2`, fn.ID, oid); err != nil {
				return fmt.Errorf("removing subscription: %w", err)
			}
		}
	}
	for _, s := range want {
		if _, err := tx.Exec(ctx, `INSERT INTO aerofn.event_subscriptions (function_id, table_oid, table_name, ops, ordered, max_attempts)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (function_id, table_oid) DO UPDATE SET table_name = excluded.table_name, ops = excluded.ops,
				ordered = excluded.ordered, max_attempts = excluded.max_attempts`,
			fn.ID, s.TableOID, s.TableName, s.Ops, s.Ordered, s.MaxAttempts); err != nil {
			return fmt.Errorf("storing subscription to %s: %w", s.TableName, err)
		}
	}
	for oid := range tables {
		if err := installCapture(ctx, tx, oid); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, 'sync')`, notifyChannel); err != nil {
		return fmt.Errorf("waking the dispatcher: %w", err)
	}
	return nil
}

// Remove implements registry.Hook: fn's subscriptions and held deliveries
// go, and so do the capture triggers nothing else needs. Jobs of fn already
// in River are cancelled by the worker when it finds fn gone.
func (Hook) Remove(ctx context.Context, tx pgx.Tx, fn registry.Function) error {
	have, err := subscribedTables(ctx, tx, fn.ID)
	if err != nil {
		return err
	}
	tables := map[uint32]bool{}
	for _, oid := range have {
		tables[oid] = true
	}
	if err := lockTables(ctx, tx, tables); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM aerofn.event_subscriptions WHERE function_id = $1`, fn.ID); err != nil {
		return fmt.Errorf("removing subscriptions: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM aerofn.event_backlog WHERE function_id = $1`, fn.ID); err != nil {
		return fmt.Errorf("removing held deliveries: %w", err)
	}
	for oid := range tables {
		if err := installCapture(ctx, tx, oid); err != nil {
			return err
		}
	}
	return nil
}

func subscribedTables(ctx context.Context, tx pgx.Tx, functionID string) ([]uint32, error) {
	rows, err := tx.Query(ctx, `SELECT table_oid FROM aerofn.event_subscriptions WHERE function_id = $1`, functionID)
	if err != nil {
		return nil, fmt.Errorf("reading subscriptions: %w", err)
	}
	oids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return nil, fmt.Errorf("reading subscriptions: %w", err)
	}
	return oids, nil
}

// lockTables serialises every subscription change on these tables until
// the transaction ends, in oid order (no deadlock between two deploys).
// Without it, a deploy that drops a table's last-but-one trigger could race
// one that relies on it: each reads the other's subscriptions as absent.
// Reads after the lock see what committed before it (READ COMMITTED).
func lockTables(ctx context.Context, tx pgx.Tx, tables map[uint32]bool) error {
	oids := make([]uint32, 0, len(tables))
	for oid := range tables {
		oids = append(oids, oid)
	}
	slices.Sort(oids)
	for _, oid := range oids {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, cluster.CaptureKey(oid)); err != nil {
			return fmt.Errorf("locking subscriptions of table %d: %w", oid, err)
		}
	}
	return nil
}

// captureTriggers maps an operation to its trigger's name and definition
// (%s is the table).
var captureTriggers = map[string][2]string{
	"INSERT": {"aerofn_capture_insert", `CREATE OR REPLACE TRIGGER aerofn_capture_insert AFTER INSERT ON %s
		REFERENCING NEW TABLE AS aerofn_new FOR EACH STATEMENT EXECUTE FUNCTION aerofn.capture_inserted()`},
	"UPDATE": {"aerofn_capture_update", `CREATE OR REPLACE TRIGGER aerofn_capture_update AFTER UPDATE ON %s
		FOR EACH ROW EXECUTE FUNCTION aerofn.capture_updated()`},
	"DELETE": {"aerofn_capture_delete", `CREATE OR REPLACE TRIGGER aerofn_capture_delete AFTER DELETE ON %s
		REFERENCING OLD TABLE AS aerofn_old FOR EACH STATEMENT EXECUTE FUNCTION aerofn.capture_deleted()`},
}

// installCapture makes the capture triggers on a table exactly those its
// subscriptions need (none when it has none). DDL runs only for a change,
// since CREATE/DROP TRIGGER take a lock that makes the table's writers wait.
func installCapture(ctx context.Context, tx pgx.Tx, oid uint32) error {
	var name *string
	if err := tx.QueryRow(ctx, `SELECT $1::oid::regclass::text FROM pg_class WHERE oid = $1`, oid).Scan(&name); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // the table was dropped, and its triggers with it
		}
		return fmt.Errorf("naming table %d: %w", oid, err)
	}
	var need []string
	if err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(DISTINCT op), '{}') FROM aerofn.event_subscriptions, unnest(ops) op WHERE table_oid = $1`,
		oid).Scan(&need); err != nil {
		return fmt.Errorf("reading subscriptions of %s: %w", *name, err)
	}
	rows, err := tx.Query(ctx, `SELECT tgname::text FROM pg_trigger WHERE tgrelid = $1 AND tgname::text LIKE 'aerofn\_capture\_%' AND NOT tgisinternal`, oid)
	if err != nil {
		return fmt.Errorf("reading triggers of %s: %w", *name, err)
	}
	installed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("reading triggers of %s: %w", *name, err)
	}
	for _, op := range Ops {
		tg := captureTriggers[op]
		has, wants := slices.Contains(installed, tg[0]), slices.Contains(need, op)
		switch {
		case wants && !has:
			if _, err := tx.Exec(ctx, fmt.Sprintf(tg[1], *name)); err != nil {
				return fmt.Errorf("installing %s capture trigger on %s: %w", op, *name, err)
			}
		case !wants && has:
			if _, err := tx.Exec(ctx, fmt.Sprintf("DROP TRIGGER %s ON %s", tg[0], *name)); err != nil {
				return fmt.Errorf("dropping %s capture trigger on %s: %w", op, *name, err)
			}
		}
	}
	return nil
}

package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/db/dbtest"
)

func newStore(t *testing.T) (*Store, *pgxpool.Pool) {
	t.Helper()
	pool, _ := dbtest.Migrated(t, 4)
	return New(pool), pool
}

func deploy(t *testing.T, s *Store, in DeployInput) Deployed {
	t.Helper()
	d, err := s.Deploy(context.Background(), in)
	dbtest.Must(t, err, "deploying "+in.Name)
	return d
}

// TestDeployVersionsRollback: each deploy adds a version that becomes
// current; rollback by number or by hash makes an earlier one current; the
// module bytes are kept by hash and verified on read.
func TestDeployVersionsRollback(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	a, b := []byte("module a"), []byte("module b")
	d1 := deploy(t, s, DeployInput{Name: "fn", Wasm: a})
	d2 := deploy(t, s, DeployInput{Name: "fn", Wasm: b})
	if !d1.Created || d2.Created || d1.Version != 1 || d2.Version != 2 || d1.ID != d2.ID || d2.WasmHash != Hash(b) {
		t.Fatalf("deploys = %+v, %+v", d1, d2)
	}
	vs, err := s.Versions(ctx, "fn")
	dbtest.Must(t, err, "versions")
	if len(vs) != 2 || !slices.ContainsFunc(vs, func(v Version) bool { return v.Version == 2 && v.Current && v.Size == len(b) }) {
		t.Fatalf("versions = %+v, want 2 with version 2 current", vs)
	}
	f, err := s.Rollback(ctx, "fn", 1, "")
	dbtest.Must(t, err, "rollback to 1")
	if f.Version != 1 || f.WasmHash != Hash(a) {
		t.Fatalf("after rollback to 1: %+v", f)
	}
	if f, err = s.Rollback(ctx, "fn", 0, Hash(b)); err != nil || f.Version != 2 {
		t.Fatalf("rollback by hash: %+v, %v", f, err)
	}
	for _, tc := range []struct {
		name    string
		version int
		hash    string
	}{{"fn", 3, ""}, {"fn", 0, Hash([]byte("never"))}, {"fn", 1 << 40, ""}, {"nope", 1, ""}} {
		if _, err := s.Rollback(ctx, tc.name, tc.version, tc.hash); !errors.Is(err, ErrNotFound) {
			t.Errorf("Rollback(%q, %d, %q) = %v, want ErrNotFound", tc.name, tc.version, tc.hash, err)
		}
	}
	got, err := s.ModuleBytes(ctx, Hash(a))
	if err != nil || string(got) != string(a) {
		t.Fatalf("ModuleBytes = %q, %v", got, err)
	}
	if _, err := s.ModuleBytes(ctx, Hash([]byte("never"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ModuleBytes of an unknown hash: %v", err)
	}
	_, err = pool.Exec(ctx, `UPDATE aerofn.modules SET bytes = 'tampered' WHERE hash = $1`, Hash(a))
	dbtest.Must(t, err, "tampering")
	if _, err := s.ModuleBytes(ctx, Hash(a)); !errors.Is(err, ErrCorruptModule) {
		t.Fatalf("ModuleBytes of tampered bytes: %v, want ErrCorruptModule", err)
	}
	fns, err := s.List(ctx)
	dbtest.Must(t, err, "listing")
	if len(fns) != 1 || fns[0].Name != "fn" || fns[0].Version != 2 {
		t.Fatalf("List = %+v", fns)
	}
}

// TestDeployKeepsOrReplacesConfig: a deploy without a config keeps the
// current one; one with only triggers replaces the triggers and keeps the
// rest; a whole config replaces everything.
func TestDeployKeepsOrReplacesConfig(t *testing.T) {
	s, _ := newStore(t)
	s.AddTriggerType("webhook", func(tr Trigger, i int) error { return nil })
	desc := "first"
	deploy(t, s, DeployInput{Name: "fn", Wasm: []byte("a"), Description: &desc,
		Config: &Config{Timeout: 20, Env: []string{"TOKEN"}, Triggers: []Trigger{{Type: "webhook", Webhook: &WebhookTrigger{Secret: "S1"}}}}})
	d := deploy(t, s, DeployInput{Name: "fn", Wasm: []byte("b")})
	if c := d.Function.Config; c.Timeout != 20 || !slices.Equal(c.Env, []string{"TOKEN"}) || len(c.Triggers) != 1 || d.Function.Description != "first" {
		t.Fatalf("deploy without config changed it: %+v %q", c, d.Function.Description)
	}
	trs := []Trigger{{Type: "webhook", Webhook: &WebhookTrigger{Secret: "S2"}}, {Type: "webhook", Webhook: &WebhookTrigger{Secret: "S3"}}}
	d = deploy(t, s, DeployInput{Name: "fn", Wasm: []byte("c"), Triggers: &trs})
	if c := d.Function.Config; c.Timeout != 20 || len(c.Triggers) != 2 || c.Triggers[1].Webhook.Secret != "S3" {
		t.Fatalf("deploy with triggers only: %+v", c)
	}
	bad := []Trigger{{Type: "carrier-pigeon"}}
	if _, err := s.Deploy(context.Background(), DeployInput{Name: "fn", Wasm: []byte("d"), Triggers: &bad}); !isValidation(err) {
		t.Fatalf("deploy with an unknown trigger type: %v, want a ValidationError", err)
	}
	d = deploy(t, s, DeployInput{Name: "fn", Wasm: []byte("e"), Config: &Config{}})
	if c := d.Function.Config; c.Timeout != 0 || len(c.Env) != 0 || len(c.Triggers) != 0 || d.Version != 4 {
		t.Fatalf("deploy with a whole config: %+v (version %d; the refused deploy must not use a number)", c, d.Version)
	}
}

func isValidation(err error) bool {
	var ve *ValidationError
	return errors.As(err, &ve)
}

// TestPatchMergesConfig: a patch merges into the stored config, null resets
// a field, an invalid result or an unknown field is refused and changes
// nothing, and patching what does not exist is ErrNotFound.
func TestPatchMergesConfig(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	deploy(t, s, DeployInput{Name: "fn", Wasm: []byte("a"), Config: &Config{Timeout: 20, Env: []string{"A"}}})
	f, err := s.Patch(ctx, "fn", PatchInput{ConfigPatch: []byte(`{"timeout": 30}`)})
	dbtest.Must(t, err, "patching")
	if f.Config.Timeout != 30 || !slices.Equal(f.Config.Env, []string{"A"}) || f.Version != 1 {
		t.Fatalf("after patch: %+v", f)
	}
	off := false
	if f, err = s.Patch(ctx, "fn", PatchInput{ConfigPatch: []byte(`{"env": null}`), Enabled: &off}); err != nil || len(f.Config.Env) != 0 || f.Enabled {
		t.Fatalf("patch env null, disabled: %+v, %v", f, err)
	}
	for _, p := range []string{`{"timeout": 301}`, `{"timout": 5}`, `[]`, `{"run_as": "postgres"}`} {
		if _, err := s.Patch(ctx, "fn", PatchInput{ConfigPatch: []byte(p)}); !isValidation(err) {
			t.Errorf("patch %s: %v, want a ValidationError", p, err)
		}
	}
	if f, err = s.Get(ctx, "fn"); err != nil || f.Config.Timeout != 30 {
		t.Fatalf("refused patches changed the function: %+v, %v", f, err)
	}
	if _, err := s.Patch(ctx, "nope", PatchInput{ConfigPatch: []byte(`{"timeout": 5}`)}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("patch of a missing function: %v", err)
	}
	if _, err := s.Patch(ctx, "nope", PatchInput{Enabled: &off}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("enable of a missing function: %v", err)
	}
}

// refusingHook owns type "database": it refuses a trigger on table "missing"
// and records what it was asked to sync and remove.
type refusingHook struct{ synced, removed []string }

func (h *refusingHook) TriggerType() string { return TriggerDatabase }
func (h *refusingHook) Validate(_ context.Context, _ pgx.Tx, tr Trigger, i int) error {
	if tr.Database.Table == "missing" {
		return &ValidationError{Field: "config.triggers[0].table", Message: "no such table"}
	}
	return nil
}
func (h *refusingHook) Sync(_ context.Context, _ pgx.Tx, fn Function) error {
	h.synced = append(h.synced, fn.Name)
	return nil
}
func (h *refusingHook) Remove(_ context.Context, _ pgx.Tx, fn Function) error {
	h.removed = append(h.removed, fn.Name)
	return nil
}

// TestHooksShareTheTransaction: a trigger its hook refuses stores nothing
// (not the function, not the module's version); hooks sync on deploy and
// remove on delete; every change is announced on ChangeChannel.
func TestHooksShareTheTransaction(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	h := &refusingHook{}
	s.AddHook(h)

	listen, err := pool.Acquire(ctx)
	dbtest.Must(t, err, "acquiring")
	defer listen.Release()
	_, err = listen.Exec(ctx, "LISTEN "+ChangeChannel)
	dbtest.Must(t, err, "listening")

	_, err = s.Deploy(ctx, DeployInput{Name: "bad", Wasm: []byte("a"), Config: &Config{Triggers: []Trigger{{Type: TriggerDatabase, Database: &DatabaseTrigger{Table: "missing"}}}}})
	if !isValidation(err) {
		t.Fatalf("deploy with a refused trigger: %v", err)
	}
	if _, err := s.Get(ctx, "bad"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused deploy stored the function: %v", err)
	}
	deploy(t, s, DeployInput{Name: "good", Wasm: []byte("a"), Config: &Config{Triggers: []Trigger{{Type: TriggerDatabase, Database: &DatabaseTrigger{Table: "t"}}}}})
	dbtest.Must(t, s.Delete(ctx, "good"), "deleting")
	if !slices.Equal(h.synced, []string{"good"}) || !slices.Equal(h.removed, []string{"good"}) {
		t.Fatalf("hook saw sync %v, remove %v", h.synced, h.removed)
	}
	if err := s.Delete(ctx, "good"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	for _, want := range []string{"good", "good"} { // the deploy, the delete
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := listen.Conn().WaitForNotification(wctx)
		cancel()
		if err != nil || n.Payload != want {
			t.Fatalf("notification: %+v, %v; want %q (a refused deploy announces nothing)", n, err, want)
		}
	}
}

// TestStartDeployStoresTheModuleBeforeCommit: StartDeploy writes the
// module's bytes at once, in a transaction of its own, while the caller
// prepares the module; nothing is visible until Commit, which adds the
// version in that transaction. Before StartDeploy, the bytes were written
// only once the compile had ended.
func TestStartDeployStoresTheModuleBeforeCommit(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	wasm := []byte("module started early")
	p := s.StartDeploy(ctx, DeployInput{Name: "early", Wasm: wasm})
	defer p.Abort()
	// The insert has run and its transaction waits for Commit.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		dbtest.Must(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND state = 'idle in transaction' AND query LIKE 'INSERT INTO aerofn.modules%'`).Scan(&n), "reading pg_stat_activity")
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no transaction holds the module's insert before Commit")
		}
		time.Sleep(5 * time.Millisecond) // polling an observable state, not ordering events
	}
	if _, err := s.ModuleBytes(ctx, Hash(wasm)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("module visible before Commit: %v", err)
	}
	if _, err := s.Get(ctx, "early"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("function visible before Commit: %v", err)
	}
	d, err := p.Commit(ctx)
	dbtest.Must(t, err, "committing")
	if d.Version != 1 || !d.Created || d.WasmHash != Hash(wasm) || d.Function.WasmHash != Hash(wasm) {
		t.Fatalf("Commit = %+v", d)
	}
	b, err := s.ModuleBytes(ctx, Hash(wasm))
	dbtest.Must(t, err, "reading module")
	if string(b) != string(wasm) {
		t.Fatalf("module bytes = %q", b)
	}
	if _, err := p.Commit(ctx); err == nil {
		t.Fatal("a second Commit succeeded")
	}
	p.Abort() // after Commit: nothing
	if f, err := s.Get(ctx, "early"); err != nil || f.Version != 1 {
		t.Fatalf("after Abort following Commit: %+v, %v", f, err)
	}
}

// TestStartDeployAbortLeavesNothing: a deploy aborted (its module failed
// to prepare) stores neither the module nor a version, and frees its
// connection.
func TestStartDeployAbortLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	wasm := []byte("module aborted")
	p := s.StartDeploy(ctx, DeployInput{Name: "aborted", Wasm: wasm})
	p.Abort()
	p.Abort()
	if _, err := s.ModuleBytes(ctx, Hash(wasm)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("module of an aborted deploy: %v", err)
	}
	if _, err := s.Get(ctx, "aborted"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("function of an aborted deploy: %v", err)
	}
	if _, err := p.Commit(ctx); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	// Every connection went back to the pool (the pool holds 4).
	wantPoolFree(t, pool, 4)
	// A deploy of the same module afterwards stores it.
	deploy(t, s, DeployInput{Name: "aborted", Wasm: wasm})
}

// wantPoolFree fails unless n connections of pool can be acquired at once
// within 10 s: every connection went back to the pool.
func wantPoolFree(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var conns []*pgxpool.Conn
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := pool.Acquire(ctx)
		dbtest.Must(t, err, "acquiring")
		conns = append(conns, c)
	}
}

// TestStartDeployLeavesThePoolToOthers: deploys whose modules are stored
// while they compile each hold a connection until Commit, and a compile
// needs connections of its own; more of them than the pool holds must not
// take every connection (the pool here holds 4), and every one of them
// still commits.
func TestStartDeployLeavesThePoolToOthers(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	sctx, stop := context.WithCancel(ctx)
	var ps []*PendingDeploy
	for i := range 6 {
		p := s.StartDeploy(sctx, DeployInput{Name: fmt.Sprintf("crowd-%d", i), Wasm: fmt.Appendf(nil, "module %d", i)})
		defer p.Abort()
		ps = append(ps, p)
	}
	defer stop() // before the Aborts: a deploy still waiting for a connection gives up
	// What a compile and the rest of the node need meanwhile.
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var conns []*pgxpool.Conn
	for range 3 {
		c, err := pool.Acquire(actx)
		if err != nil {
			t.Fatalf("the pending deploys hold the pool: %v", err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	for i, p := range ps {
		d, err := p.Commit(ctx)
		dbtest.Must(t, err, "committing")
		if d.Version != 1 || d.Name != fmt.Sprintf("crowd-%d", i) {
			t.Fatalf("Commit %d = %+v", i, d)
		}
		b, err := s.ModuleBytes(ctx, d.WasmHash)
		dbtest.Must(t, err, "reading module")
		if string(b) != fmt.Sprintf("module %d", i) {
			t.Fatalf("module %d bytes = %q", i, b)
		}
	}
}

// TestStartDeployAbortAfterPanicInCommit: Abort, deferred as the handler
// does, gives the connection back even when Commit did not return.
func TestStartDeployAbortAfterPanicInCommit(t *testing.T) {
	ctx := context.Background()
	s, pool := newStore(t)
	p := s.StartDeploy(ctx, DeployInput{Name: "panics", Wasm: []byte("module panics")})
	func() {
		defer func() { _ = recover() }()
		defer p.Abort()
		<-p.done
		p.over = true
		panic("in Commit")
	}()
	wantPoolFree(t, pool, 4)
}

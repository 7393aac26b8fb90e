package sqlexec_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/db"
	"github.com/aerodb/aerofn/internal/db/dbtest"
	"github.com/aerodb/aerofn/internal/sqlexec"
)

func TestSetupIdempotentAndConcurrent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Two databases on the same cluster, one of which already has an
	// application table, each set up by several Setups at once: the roles
	// are shared and must survive the races.
	var urls []string
	for i := 0; i < 2; i++ {
		urls = append(urls, dbtest.NewDatabase(t))
	}
	pre, err := pgx.Connect(ctx, urls[1])
	dbtest.Must(t, err, "connecting")
	_, err = pre.Exec(ctx, "CREATE TABLE public.existing (id int PRIMARY KEY, note text); INSERT INTO public.existing VALUES (1, 'kept')")
	dbtest.Must(t, err, "creating an application table")
	pre.Close(ctx)

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for _, url := range urls {
		admin, err := db.Open(ctx, url, 8)
		dbtest.Must(t, err, "opening admin pool")
		t.Cleanup(admin.Close)
		_, err = db.Migrate(ctx, admin)
		dbtest.Must(t, err, "migrating")
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- sqlexec.Setup(ctx, admin, sqlexec.Config{AdminURL: url})
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Setup: %v", err)
		}
	}
	var keys [][]byte
	for i, url := range urls {
		admin, err := db.Open(ctx, url, 2)
		dbtest.Must(t, err, "opening admin pool")
		if i == 0 {
			// Privileges granted back by hand are taken away by the next migrate.
			_, err = admin.Exec(ctx, `GRANT EXECUTE ON FUNCTION set_config(text, text, boolean) TO authenticated;
				GRANT EXECUTE ON FUNCTION pg_notify(text, text) TO PUBLIC;
				GRANT CREATE ON SCHEMA public TO anon;
				DO $$BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO PUBLIC', current_database()); END$$`)
			dbtest.Must(t, err, "granting privileges back by hand")
		}
		dbtest.Must(t, sqlexec.Setup(ctx, admin, sqlexec.Config{AdminURL: url}), "Setup again")
		// Migrate again too: `aerofn migrate` is idempotent as a whole.
		_, err = db.Migrate(ctx, admin)
		dbtest.Must(t, err, "migrating again")
		var key []byte
		dbtest.Must(t, admin.QueryRow(ctx, "SELECT key FROM aerofn.rls_signing_key").Scan(&key), "reading key")
		keys = append(keys, key)
		e, err := sqlexec.New(ctx, sqlexec.Config{AdminURL: url, PoolSize: 1})
		dbtest.Must(t, err, "New")
		mustQuery(t, e, auth.Anon(), "SELECT auth.role() AS r")
		e.Close()
		admin.Close()
	}
	if bytes.Equal(keys[0], keys[1]) || len(keys[0]) != 32 {
		t.Errorf("signing keys are not one per database: %x %x", keys[0], keys[1])
	}
	// The application's table is untouched and still the admin's.
	c, err := pgx.Connect(ctx, urls[1])
	dbtest.Must(t, err, "connecting")
	defer c.Close(ctx)
	var note string
	dbtest.Must(t, c.QueryRow(ctx, "SELECT note FROM public.existing").Scan(&note), "reading the application table")
	if note != "kept" {
		t.Errorf("application row is %q", note)
	}
	// Hardening as Setup promises it.
	var temp, setConfig, notify, activity, lo bool
	dbtest.Must(t, c.QueryRow(ctx, `SELECT has_database_privilege('authenticated', current_database(), 'TEMPORARY'),
		has_function_privilege('authenticated', 'set_config(text,text,boolean)', 'EXECUTE'),
		has_function_privilege('anon', 'pg_notify(text,text)', 'EXECUTE'),
		has_table_privilege('service_role', 'pg_stat_activity', 'SELECT'),
		has_function_privilege('anon', 'lo_create(oid)', 'EXECUTE')`).Scan(&temp, &setConfig, &notify, &activity, &lo), "reading privileges")
	if temp || setConfig || notify || activity || lo {
		t.Errorf("function roles still have: temp=%v set_config=%v pg_notify=%v pg_stat_activity=%v lo_create=%v", temp, setConfig, notify, activity, lo)
	}
	var member, bypassAnon, bypassSvc bool
	dbtest.Must(t, c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname IN ('anon', 'authenticated', 'service_role')),
		(SELECT rolbypassrls FROM pg_roles WHERE rolname = 'anon'), (SELECT rolbypassrls FROM pg_roles WHERE rolname = 'service_role')`).Scan(&member, &bypassAnon, &bypassSvc), "reading roles")
	if member || bypassAnon || !bypassSvc {
		t.Errorf("roles: member of something=%v anon bypassrls=%v service bypassrls=%v", member, bypassAnon, bypassSvc)
	}
}

// Custom role names, and a role that is a member of another is refused.
func TestSetupCustomRolesAndMembership(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	roles := sqlexec.RoleNames{Anon: "t_anon_" + suffix, Authenticated: "t_user_" + suffix, Service: "t_svc_" + suffix}
	// Registered before the database so that it runs after the database is
	// dropped: a role with privileges in a database cannot be dropped.
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dbtest.AdminURL())
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		for _, r := range []string{roles.Anon, roles.Authenticated, roles.Service} {
			_, _ = c.Exec(context.Background(), "DROP ROLE IF EXISTS "+r)
		}
	})
	admin, url := dbtest.Migrated(t, 2)
	cfg := sqlexec.Config{AdminURL: url, Roles: roles, PoolSize: 1}
	dbtest.Must(t, sqlexec.Setup(ctx, admin, cfg), "Setup with custom roles")
	e, err := sqlexec.New(ctx, cfg)
	dbtest.Must(t, err, "New")
	r := mustQuery(t, e, user("11111111-2222-3333-4444-555555555555"), "SELECT current_user AS cu, auth.role() AS role")[0]
	if r["cu"] != roles.Authenticated || r["role"] != "authenticated" {
		t.Errorf("custom roles: %v", r)
	}
	e.Close()
	// An executor configured with other names than Setup used refuses to start.
	if _, err := sqlexec.New(ctx, sqlexec.Config{AdminURL: url, PoolSize: 1}); err == nil || !strings.Contains(err.Error(), "run aerofn migrate") {
		t.Errorf("New with roles Setup did not make: %v", err)
	}
	_, err = admin.Exec(ctx, "GRANT pg_read_all_data TO "+roles.Anon)
	dbtest.Must(t, err, "granting a membership")
	err = sqlexec.Setup(ctx, admin, cfg)
	if err == nil || !strings.Contains(err.Error(), "member of pg_read_all_data") {
		t.Errorf("Setup accepted a function role that is a member of pg_read_all_data: %v", err)
	}
	if _, err := sqlexec.New(ctx, cfg); err == nil {
		t.Errorf("New accepted a function role that is a member of another role")
	}
}

func TestSetupNeedsMigration(t *testing.T) {
	ctx := context.Background()
	url := dbtest.NewDatabase(t)
	admin, err := db.Open(ctx, url, 1)
	dbtest.Must(t, err, "opening admin pool")
	defer admin.Close()
	if err := sqlexec.Setup(ctx, admin, sqlexec.Config{AdminURL: url}); err == nil || !strings.Contains(err.Error(), "002_rls") {
		t.Errorf("Setup without migration: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []sqlexec.Config{
		{},
		{AdminURL: "x", Roles: sqlexec.RoleNames{Anon: "Robert'); DROP"}},
		{AdminURL: "x", Roles: sqlexec.RoleNames{Anon: "same", Authenticated: "same"}},
		{AdminURL: "x", Roles: sqlexec.RoleNames{Service: "postgres"}},
		{AdminURL: "x", Roles: sqlexec.RoleNames{Service: "pg_monitor"}},
		{AdminURL: "x", TempFileLimit: "1GB; DROP"},
	}
	for _, c := range bad {
		if err := c.WithDefaults().Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
	if err := (sqlexec.Config{AdminURL: "x"}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

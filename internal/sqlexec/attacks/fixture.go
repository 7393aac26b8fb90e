// Package attacks is the hostile SQL that aerofn's row-level security must
// withstand, and the fixture it is aimed at: a victim and an attacker with
// rows in the same tables. The executor's tests replay every attack through
// the guard and, for what the guard refuses, straight against the role
// connection; the end-to-end test replays the same list through a deployed
// WebAssembly function over HTTP. Each replay ends with Verify.
package attacks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/sqlexec/token"
)

// The fixture's fixed identities and rows, so that attacks can name them.
const (
	VictimID       = "aaaaaaaa-0000-4000-8000-00000000000a"
	AttackerID     = "bbbbbbbb-0000-4000-8000-00000000000b"
	VictimTodoID   = "aaaaaaaa-1111-4000-8000-000000000001"
	VictimPostID   = "aaaaaaaa-2222-4000-8000-000000000002"
	AttackerTodoID = "bbbbbbbb-1111-4000-8000-000000000001"

	// Secret is in every row that only the victim may see; no attack's
	// reply may contain it.
	Secret = "VICTIM-SECRET"
)

// Admin is what Setup and Verify need of an admin connection; *pgx.Conn and
// *pgxpool.Pool both have it.
type Admin interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Victim is the principal whose rows are attacked.
func Victim() auth.Principal {
	return auth.Principal{Role: auth.RoleAuthenticated, UserID: VictimID, Claims: map[string]any{"sub": VictimID, "role": "authenticated"}}
}

// Attacker is the principal that most attacks run as: a signed-in user of
// the same application.
func Attacker() auth.Principal {
	return auth.Principal{Role: auth.RoleAuthenticated, UserID: AttackerID, Claims: map[string]any{"sub": AttackerID, "role": "authenticated"}}
}

// Fixture is the state Setup made and Verify compares against.
type Fixture struct {
	Roles    map[string]string // principal role → database role
	Database string

	// StolenToken is a correctly signed identity token for the victim that
	// belongs to another backend and transaction: what an attacker would
	// have after reading it from another session's query text or from a
	// function that leaked its own.
	StolenToken string
	// StolenWindowToken is the same victim in the fast path's format (v2),
	// its window covering the whole test.
	StolenWindowToken string
	// ForgedToken claims the victim with a signature made with the wrong key.
	ForgedToken string

	snapshot string
}

// fixtureSQL makes the tables and policies; %[1]s anon, %[2]s authenticated,
// %[3]s service role. It is docs/RLS.md's example, which is the point: the
// attacks are aimed at policies written the way the documentation says.
const fixtureSQL = `
CREATE TABLE public.todos (
	id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	owner uuid NOT NULL,
	title text NOT NULL,
	done  boolean NOT NULL DEFAULT false
);
ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.todos FORCE ROW LEVEL SECURITY;
CREATE POLICY todos_select ON public.todos FOR SELECT TO %[2]s USING (owner = (SELECT auth.uid()));
CREATE POLICY todos_insert ON public.todos FOR INSERT TO %[2]s WITH CHECK (owner = (SELECT auth.uid()));
CREATE POLICY todos_update ON public.todos FOR UPDATE TO %[2]s USING (owner = (SELECT auth.uid())) WITH CHECK (owner = (SELECT auth.uid()));
CREATE POLICY todos_delete ON public.todos FOR DELETE TO %[2]s USING (owner = (SELECT auth.uid()));
GRANT SELECT, INSERT, UPDATE, DELETE ON public.todos TO %[2]s, %[3]s;

CREATE TABLE public.posts (
	id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	owner     uuid NOT NULL,
	body      text NOT NULL,
	published boolean NOT NULL DEFAULT false
);
ALTER TABLE public.posts ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.posts FORCE ROW LEVEL SECURITY;
CREATE POLICY posts_read ON public.posts FOR SELECT TO %[1]s, %[2]s USING (published OR owner = (SELECT auth.uid()));
CREATE POLICY posts_insert ON public.posts FOR INSERT TO %[2]s WITH CHECK (owner = (SELECT auth.uid()));
GRANT SELECT ON public.posts TO %[1]s;
GRANT SELECT, INSERT ON public.posts TO %[2]s;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.posts TO %[3]s;

INSERT INTO public.todos (id, owner, title) VALUES
	('` + VictimTodoID + `', '` + VictimID + `', '` + Secret + ` todo 1'),
	(gen_random_uuid(), '` + VictimID + `', '` + Secret + ` todo 2'),
	('` + AttackerTodoID + `', '` + AttackerID + `', 'attacker todo 1'),
	(gen_random_uuid(), '` + AttackerID + `', 'attacker todo 2');
INSERT INTO public.posts (id, owner, body, published) VALUES
	('` + VictimPostID + `', '` + VictimID + `', '` + Secret + ` draft', false),
	(gen_random_uuid(), '` + VictimID + `', 'victim public post', true),
	(gen_random_uuid(), '` + AttackerID + `', 'attacker public post', true);
`

// Setup creates the fixture in a database where db.Migrate and
// sqlexec.Setup have run, and records its state for Verify.
func Setup(ctx context.Context, admin Admin) (*Fixture, error) {
	f := &Fixture{Roles: map[string]string{}}
	var anon, authd, service string
	err := admin.QueryRow(ctx, `SELECT
		(SELECT rolname::text FROM aerofn.rls_roles WHERE principal = 'anon'),
		(SELECT rolname::text FROM aerofn.rls_roles WHERE principal = 'authenticated'),
		(SELECT rolname::text FROM aerofn.rls_roles WHERE principal = 'service_role'),
		current_database()`).Scan(&anon, &authd, &service, &f.Database)
	if err != nil {
		return nil, fmt.Errorf("reading function roles (has sqlexec.Setup run?): %w", err)
	}
	f.Roles = map[string]string{"anon": anon, "authenticated": authd, "service_role": service}
	q := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	if _, err := admin.Exec(ctx, fmt.Sprintf(fixtureSQL, q(anon), q(authd), q(service))); err != nil {
		return nil, fmt.Errorf("creating attack fixture: %w", err)
	}
	var key []byte
	var pid int64
	if err := admin.QueryRow(ctx, "SELECT key, pg_backend_pid() FROM aerofn.rls_signing_key WHERE id = 1").Scan(&key, &pid); err != nil {
		return nil, fmt.Errorf("reading signing key: %w", err)
	}
	now := time.Now().UnixMicro()
	victim := token.Identity{Sub: VictimID, Role: "authenticated", DBRole: authd, PID: pid, NotBefore: now, NotAfter: now,
		Expires: time.Now().Add(time.Hour), Claims: []byte(`{"sub":"` + VictimID + `","role":"authenticated"}`)}
	// The format aerofn signed before migration 007 (the database still
	// takes it), for one exact transaction start.
	f.StolenToken = token.SignLegacy(key, victim, now)
	f.ForgedToken = token.Sign([]byte("not the key, but 32 bytes long!!"), victim)
	// The current format, its window wide open around now.
	windowed := victim
	windowed.NotBefore, windowed.NotAfter = time.Now().Add(-time.Hour).UnixMicro(), time.Now().Add(time.Hour).UnixMicro()
	f.StolenWindowToken = token.Sign(key, windowed)
	if f.snapshot, err = snapshot(ctx, admin); err != nil {
		return nil, err
	}
	return f, nil
}

// Expand fills an attack's placeholders: {{victim}}, {{attacker}},
// {{victim_todo}}, {{victim_post}}, {{stolen_token}}, {{stolen_window_token}}, {{forged_token}},
// {{anon}}, {{authenticated}}, {{service_role}} (database role names) and
// {{database}}.
func (f *Fixture) Expand(a Attack) (string, []any) {
	r := strings.NewReplacer(
		"{{victim}}", VictimID, "{{attacker}}", AttackerID,
		"{{victim_todo}}", VictimTodoID, "{{victim_post}}", VictimPostID,
		"{{stolen_token}}", f.StolenToken, "{{forged_token}}", f.ForgedToken, "{{stolen_window_token}}", f.StolenWindowToken,
		"{{anon}}", f.Roles["anon"], "{{authenticated}}", f.Roles["authenticated"],
		"{{service_role}}", f.Roles["service_role"], "{{database}}", f.Database,
	)
	params := make([]any, len(a.Params))
	for i, p := range a.Params {
		if s, ok := p.(string); ok {
			p = r.Replace(s)
		}
		params[i] = p
	}
	return r.Replace(a.SQL), params
}

// Principal is who a runs as.
func (a Attack) Principal() auth.Principal {
	if a.AsAnon {
		return auth.Anon()
	}
	return Attacker()
}

// snapshot digests everything an attack must not change: the victim's rows,
// the policies and RLS flags, the grants on the fixture tables, the function
// roles' attributes and memberships, and the objects that exist in public.
const snapshotSQL = `SELECT concat_ws(E'\n',
	(SELECT string_agg(concat_ws('|', id, owner, title, done), ',' ORDER BY id) FROM public.todos WHERE owner = '` + VictimID + `' OR title LIKE '` + Secret + `%'),
	(SELECT string_agg(concat_ws('|', id, owner, body, published), ',' ORDER BY id) FROM public.posts WHERE owner = '` + VictimID + `'),
	(SELECT count(*) FROM public.todos WHERE owner = '` + VictimID + `'),
	(SELECT string_agg(concat_ws('|', tablename, policyname, cmd, roles::text, qual, with_check), ',' ORDER BY tablename, policyname) FROM pg_policies WHERE schemaname = 'public'),
	(SELECT string_agg(concat_ws('|', relname, relrowsecurity, relforcerowsecurity, relacl::text, relowner::regrole::text), ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace),
	(SELECT string_agg(concat_ws('|', proname, proacl::text, prosecdef), ',' ORDER BY proname) FROM pg_proc WHERE pronamespace IN ('public'::regnamespace, 'auth'::regnamespace)),
	(SELECT string_agg(concat_ws('|', r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
		(SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)), ',' ORDER BY r.rolname)
		FROM pg_roles r JOIN aerofn.rls_roles f ON f.rolname = r.rolname),
	(SELECT count(*) FROM pg_largeobject_metadata),
	(SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname NOT LIKE 'pg_temp%' AND nspname NOT LIKE 'pg_toast_temp%'),
	(SELECT key::text FROM aerofn.rls_signing_key))`

func snapshot(ctx context.Context, admin Admin) (string, error) {
	var s string
	if err := admin.QueryRow(ctx, snapshotSQL).Scan(&s); err != nil {
		return "", fmt.Errorf("reading fixture state: %w", err)
	}
	return s, nil
}

// Verify reports an error if anything Setup recorded has changed.
func (f *Fixture) Verify(ctx context.Context, admin Admin) error {
	now, err := snapshot(ctx, admin)
	if err != nil {
		return err
	}
	if now != f.snapshot {
		return errors.New("fixture changed:\n" + diffLines(f.snapshot, now))
	}
	return nil
}

// Digest is a short name for the recorded state, for logs.
func (f *Fixture) Digest() string {
	h := sha256.Sum256([]byte(f.snapshot))
	return hex.EncodeToString(h[:6])
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			fmt.Fprintf(&out, "line %d was: %s\n        now: %s\n", i+1, x, y)
		}
	}
	return out.String()
}

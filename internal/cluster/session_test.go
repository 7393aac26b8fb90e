package cluster

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
)

func must(t testing.TB, err error, doing string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", doing, err)
	}
}

// testDB is a fresh, empty database (dropped when the test ends) and a
// pool on it, on the server named by AEROFN_TEST_DATABASE_URL (as package
// dbtest does; it imports db, which imports cluster).
func testDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	admin := os.Getenv("AEROFN_TEST_DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	must(t, err, "connecting to test postgres")
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "aerofn_test_cluster_" + hex.EncodeToString(b)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	must(t, err, "creating test database")
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("dropping %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dropping %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	must(t, err, "parsing the admin url")
	u.Path = "/" + name
	pool, err := pgxpool.New(ctx, u.String())
	must(t, err, "opening pool")
	t.Cleanup(pool.Close)
	return pool
}

func startNode(t *testing.T, pool *pgxpool.Pool, name string) *Node {
	t.Helper()
	return startNodeStale(t, pool, name, 2*time.Second)
}

// startNodeStale is startNode with the given StaleAfter.
func startNodeStale(t *testing.T, pool *pgxpool.Pool, name string, staleAfter time.Duration) *Node {
	t.Helper()
	n := New(Config{Pool: pool, Name: name, Retry: 50 * time.Millisecond, StaleAfter: staleAfter})
	must(t, n.Start(context.Background()), "starting node "+name)
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	return n
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("no %s within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// holders is the application_name of each session holding role's lock.
func holders(t *testing.T, pool *pgxpool.Pool, role Role) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.classid::int8 = $1 AND l.objid::int8 = $2 AND l.objsubid = $3
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		role.lock.classID, role.lock.objID, role.lock.objSubID)
	must(t, err, "reading pg_locks")
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	must(t, err, "reading pg_locks")
	return names
}

func sessionPID(t *testing.T, pool *pgxpool.Pool, n *Node) int32 {
	t.Helper()
	var pid int32
	must(t, pool.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
		ApplicationNamePrefix+n.Name()).Scan(&pid), "finding the session of "+n.Name())
	return pid
}

// leaderOf returns which of nodes holds role (failing if more than one
// does), or nil.
func leaderOf(t *testing.T, role Role, nodes ...*Node) *Node {
	t.Helper()
	var leader *Node
	for _, n := range nodes {
		if n.Leadership(role).IsLeader() {
			if leader != nil {
				t.Fatalf("%s and %s both lead %s", leader.Name(), n.Name(), role.Name)
			}
			leader = n
		}
	}
	return leader
}

// TestOneLeaderPerRole: two nodes compete for two roles; each role has
// exactly one leader, and the lock is held by that leader's session.
func TestOneLeaderPerRole(t *testing.T) {
	pool := testDB(t)
	a, b := startNode(t, pool, "a"), startNode(t, pool, "b")
	for _, role := range []Role{Ticker, EventDispatcher} {
		waitFor(t, 5*time.Second, "leader of "+role.Name, func() bool { return leaderOf(t, role, a, b) != nil })
	}
	// Several competing passes later, still one each.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		for _, role := range []Role{Ticker, EventDispatcher} {
			l := leaderOf(t, role, a, b)
			if l == nil {
				t.Fatalf("%s lost its leader", role.Name)
			}
			if h := holders(t, pool, role); len(h) != 1 || h[0] != ApplicationNamePrefix+l.Name() {
				t.Fatalf("%s: %s leads, the lock is held by %q", role.Name, l.Name(), h)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLeaderSessionKilled: the leader's session is ended by the server
// (pg_terminate_backend): its term ends, the other node takes over within
// a bound, and the old leader reconnects and competes again.
func TestLeaderSessionKilled(t *testing.T) {
	pool := testDB(t)
	// A stale holder is not evicted within the test (StaleAfter a minute),
	// so the other node can only lead because the killed session's lock
	// was freed with it. The waits are generous: a takeover normally takes
	// about 10 ms (the Retry of 50 ms), but a loaded machine has taken over
	// 2 s to end a terminated backend.
	a, b := startNodeStale(t, pool, "a", time.Minute), startNodeStale(t, pool, "b", time.Minute)
	waitFor(t, 5*time.Second, "a leader", func() bool { return leaderOf(t, Ticker, a, b) != nil })
	leader := leaderOf(t, Ticker, a, b)
	other := a
	if leader == a {
		other = b
	}
	lost := leader.Leadership(Ticker).Lost()
	oldPID := sessionPID(t, pool, leader)
	if _, err := pool.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, oldPID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the killed leader's term did not end")
	}
	took := waitFor(t, 30*time.Second, "a new leader", func() bool { return other.Leadership(Ticker).IsLeader() })
	t.Logf("the other node led %s after the kill", took)
	waitFor(t, 5*time.Second, "the killed node's new session", func() bool {
		return leader.Up() && len(holders(t, pool, Ticker)) == 1
	})
	if pid := sessionPID(t, pool, leader); pid == oldPID {
		t.Fatal("same session")
	}
	// The reconnected node competes again: it takes over when the other stops.
	must(t, other.Stop(context.Background()), "stopping the other node")
	waitFor(t, 30*time.Second, "the reconnected node to lead", func() bool { return leader.Leadership(Ticker).IsLeader() })
}

// TestReacquireOnReconnect: a node alone loses its leadership with its
// session and takes it again on the next session.
func TestReacquireOnReconnect(t *testing.T) {
	pool := testDB(t)
	a := startNode(t, pool, "a")
	l := a.Leadership(EventDispatcher)
	<-l.Acquired()
	lost := l.Lost()
	if _, err := pool.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, sessionPID(t, pool, a)); err != nil {
		t.Fatal(err)
	}
	<-lost
	select {
	case <-l.Acquired():
	case <-time.After(5 * time.Second):
		t.Fatal("not re-acquired after reconnecting")
	}
	if h := holders(t, pool, EventDispatcher); len(h) != 1 {
		t.Fatalf("holders %q", h)
	}
}

// TestStopReleases: Stop releases the node's leaderships at once (the lock
// is gone from pg_locks when Stop returns); Stop twice, Stop before Start
// and Start after Stop are harmless.
func TestStopReleases(t *testing.T) {
	pool := testDB(t)
	a := startNode(t, pool, "a")
	l := a.Leadership(Ticker)
	<-l.Acquired()
	must(t, a.Stop(context.Background()), "stopping")
	if h := holders(t, pool, Ticker); len(h) != 0 {
		t.Fatalf("held after Stop by %q", h)
	}
	select {
	case <-l.Lost():
	default:
		t.Fatal("term not ended by Stop")
	}
	must(t, a.Stop(context.Background()), "stopping twice")
	must(t, a.Start(context.Background()), "starting after Stop")
	if a.Up() {
		t.Fatal("a stopped node started again")
	}
	never := New(Config{Pool: pool})
	must(t, never.Stop(context.Background()), "stopping a node never started")
	if err := never.Leadership(Ticker).Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestResignHandsOver: Resign releases the lock so that another node takes
// over, and the resigned node no longer competes.
func TestResignHandsOver(t *testing.T) {
	pool := testDB(t)
	a := startNode(t, pool, "a")
	<-a.Leadership(Ticker).Acquired()
	b := startNode(t, pool, "b")
	bl := b.Leadership(Ticker)
	must(t, a.Leadership(Ticker).Resign(context.Background()), "resigning")
	if a.Leadership(Ticker).Resign(context.Background()) != nil {
		t.Fatal("second resign")
	}
	waitFor(t, 2*time.Second, "b to lead", bl.IsLeader)
	must(t, bl.Resign(context.Background()), "b resigning")
	if h := holders(t, pool, Ticker); len(h) != 0 {
		t.Fatalf("held after both resigned: %q", h)
	}
}

// TestStaleLeaderEvicted: a session holding a role's lock that runs no
// statement for StaleAfter (a frozen node) is ended by a node that wants
// the role, which then leads.
func TestStaleLeaderEvicted(t *testing.T) {
	pool := testDB(t)
	cc := pool.Config().ConnConfig.Copy()
	cc.RuntimeParams["application_name"] = ApplicationNamePrefix + "frozen"
	frozen, err := pgx.ConnectConfig(context.Background(), cc)
	must(t, err, "connecting")
	t.Cleanup(func() { _ = frozen.Close(context.Background()) })
	if _, err := frozen.Exec(context.Background(), `SELECT pg_advisory_lock($1::int8)`, int64(EventLeader)); err != nil {
		t.Fatal(err)
	}
	silent := time.Now()
	a := startNode(t, pool, "a")
	waitFor(t, 10*time.Second, "the frozen leader evicted", a.Leadership(EventDispatcher).IsLeader)
	took := time.Since(silent)
	t.Logf("led %s after the holder went silent", took)
	if took < 2*time.Second {
		t.Fatalf("evicted after %s, before it was silent for StaleAfter", took)
	}
	if err := frozen.Ping(context.Background()); err == nil {
		t.Fatal("the frozen session is still up")
	}
}

// TestListen: a subscription is told Resync once the session listens,
// then receives notifications; after the session drops it is told Resync
// again on the new one.
func TestListen(t *testing.T) {
	pool := testDB(t)
	a := startNode(t, pool, "a")
	sub := a.Listen("test_wake")
	defer sub.Close()
	next := func() Notification {
		t.Helper()
		select {
		case nt := <-sub.C():
			return nt
		case <-time.After(5 * time.Second):
			t.Fatal("no notification")
		}
		return Notification{}
	}
	if nt := next(); !nt.Resync {
		t.Fatalf("first %+v", nt)
	}
	if _, err := pool.Exec(context.Background(), `SELECT pg_notify('test_wake', 'hello')`); err != nil {
		t.Fatal(err)
	}
	if nt := next(); nt.Resync || nt.Payload != "hello" || nt.Channel != "test_wake" {
		t.Fatalf("got %+v", nt)
	}
	if _, err := pool.Exec(context.Background(), `SELECT pg_terminate_backend($1)`, sessionPID(t, pool, a)); err != nil {
		t.Fatal(err)
	}
	if nt := next(); !nt.Resync {
		t.Fatalf("after reconnect %+v", nt)
	}
}

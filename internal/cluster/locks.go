// Package cluster holds what makes one aerofn process a node among others
// sharing a database: the node's name, its session, the leaderships it
// holds on that session, and the one table of the advisory locks that
// nodes take to take turns.
//
// # The node's session
//
// A Node keeps one dedicated connection (outside the pool, application_name
// "aerofn node <name>") for as long as it runs, owned by one goroutine:
//
//	connect ──► liveness lock (NodeSpace, Key()) ──► OnConnect hooks
//	   ▲            │
//	   │            ▼
//	   │        pass: LISTEN/UNLISTEN the subscribed channels (Resync to
//	   │              new subscribers); release resigned leaderships;
//	   │              pg_try_advisory_lock each wanted one not held (a
//	   │              holder silent for StaleAfter is ended); else SELECT 1
//	   │            │
//	   │            ▼
//	   │        wait: notifications to subscribers, until Retry (a
//	   │              leadership is wanted and not held) or 1 s, or a poke
//	   │            │ (Leadership, Resign, Listen, Close: pass at once),
//	   │            │ or work handed to Do: run it, wait on
//	   └── error: every leadership lost (Lost closed), reconnect with backoff
//
// Services take what they need from it. The database triggers: the
// leadership EventDispatcher, a LISTEN on aerofn_events while leading and a
// row per session in aerofn.event_nodes (an OnConnect hook); their work goes
// through the pool. The scheduler: the leadership Ticker, a LISTEN on
// aerofn_schedules, and its ticks, sweeps and claims, which run on the
// session itself through Do, so that they are fenced by its locks: Do runs
// a function from the goroutine that owns the session, between its own
// statements, so no leadership changes hands while it runs; a transaction
// it opens commits only while the leader's lock is held by the same
// backend, and ending a frozen leader's session ends its half-done
// transactions, row locks and all, with its leadership. Work on the session
// is kept short (it delays the node's competing and notifications while it
// runs), never waits more than lock_timeout (5 s) for a lock, and is not
// cancelled half way (pgx closes a connection whose query is interrupted).
//
//	failure                          what follows
//	process killed                   its session ends with its TCP connection:
//	                                 locks free at once, another node leads
//	                                 within Retry (250 ms)
//	session ended (terminated,       the node's leaderships are lost (Lost),
//	network blip)                    it reconnects (100 ms, doubling to 1 s),
//	                                 re-runs the hooks, listens again (Resync)
//	                                 and competes again
//	process frozen, or cut off       its session runs no statement; after
//	behind a network that still      StaleAfter (5 s) a node that wants one of
//	answers keepalives               its leaderships ends it, and with it any
//	                                 transaction the node had open on it; a
//	                                 vanished machine is dropped by TCP
//	                                 keepalives and tcp_user_timeout within
//	                                 about 10 s
//	Stop                             every lock is released
//	                                 (pg_advisory_unlock_all, gone from
//	                                 pg_locks when Stop returns), then the
//	                                 session closes
//
// Every advisory lock aerofn takes is named here, so that two parts can
// never pick the same key by accident and an operator reading pg_locks can
// tell what a lock is. Function roles cannot take advisory locks at all
// (sqlexec revokes them), so no function can squat one of these keys.
//
// Two key forms exist in PostgreSQL and never collide with each other
// (pg_locks tells them apart by objsubid: 1 for one bigint key, 2 for two
// int4 keys):
//
//	one bigint key                                   objsubid 1
//	  Migrate        0x6165726f666e      "aerofn"     session lock while migrating aerofn's schema
//	  RiverMigrate   0x6165726f666e72    "aerofn"+r   session lock while migrating River's tables
//	  EventLeader    0x6165726f666e6c    "aerofn"+l   session lock of the database-trigger leader
//	  EventDispatch  0x6165726f666e64    "aerofn"+d   transaction lock of one dispatch pass
//	  RecordsPrune   0x6165726f666e70    "aerofn"+p   session lock of the node pruning invocation records
//	  CaptureKey(t)  0x61657674<<32|oid  "aevt",oid   transaction lock on table t's capture triggers
//	  OrderedKey(f)  hashtextextended('aerofn.ordered:'||f, 0)
//	                                                   transaction lock on function f's ordered backlog
//	two int4 keys                                    objsubid 2
//	  (NodeSpace, 0)             "aesc",0    session lock of the schedule ticker
//	  (NodeSpace, key)           "aesc",key  a node's liveness lock: held while the node lives
//	                                         (Node.Key(), on the node's session)
//
// The session locks of leaderships are held on the node's session (Node);
// each is a Role below, named in the logs.
//
// A new lock gets its name and key here (a bigint key in the "aerofn"+byte
// series for a singleton, a space of its own for a family) and a line in
// TestLockKeysDistinct.
package cluster

// Key is an advisory lock key of the one-bigint form.
type Key int64

// The singleton locks (one bigint key each).
const (
	// Migrate serialises aerofn's schema migrations across nodes starting
	// at once (db.Migrate).
	Migrate Key = 0x6165726f666e // "aerofn"
	// RiverMigrate serialises River's migrations (dbtrigger.MigrateRiver).
	RiverMigrate Key = 0x6165726f666e72 // "aerofn" + 'r'
	// EventLeader is held, on its node connection, by the node that leads
	// database-trigger dispatch.
	EventLeader Key = 0x6165726f666e6c // "aerofn" + 'l'
	// EventDispatch keeps dispatch passes one after another, even when a
	// leader that lost its connection is still finishing one.
	EventDispatch Key = 0x6165726f666e64 // "aerofn" + 'd'
	// RecordsPrune is held by the one node pruning invocation records;
	// the others skip that round.
	RecordsPrune Key = 0x6165726f666e70 // "aerofn" + 'p'
)

// CaptureSpace is the high half of CaptureKey.
const CaptureSpace = 0x61657674 // "aevt"

// CaptureKey serialises subscription changes on one table (by oid).
func CaptureKey(tableOID uint32) Key { return Key(int64(CaptureSpace)<<32 | int64(tableOID)) }

// OrderedPrefix starts the text whose hashtextextended(…, 0) is the key of
// an ordered function's backlog lock; the function's id follows.
const OrderedPrefix = "aerofn.ordered:"

// OrderedKeySQL is the SQL expression of that key, with the function id as $1.
const OrderedKeySQL = `hashtextextended('` + OrderedPrefix + `' || $1, 0)`

// NodeSpace is the first int4 of the two-key locks: with 0 the ticker
// lock, with a node's key that node's liveness lock (the scheduler was
// their first user, hence "aesc").
const NodeSpace int32 = 0x61657363 // "aesc"

// TickerObject is the second key of the ticker lock.
const TickerObject int32 = 0

// A Role is a named leadership: one session lock that at most one node
// holds at a time (Node.Leadership).
type Role struct {
	Name string
	lock lock
}

// The leaderships.
var (
	// EventDispatcher dispatches captured changes into deliveries, releases
	// held deliveries, feeds ordered functions and rescues dead nodes'
	// deliveries (dbtrigger).
	EventDispatcher = Role{Name: "database-trigger dispatch", lock: bigintLock(EventLeader)}
	// Ticker turns due schedule ticks into runs, sweeps runs of dead nodes
	// and prunes run history (scheduler).
	Ticker = Role{Name: "schedule ticker", lock: pairLock(NodeSpace, TickerObject)}
)

// lock is an advisory lock as SQL arguments, and as pg_locks shows it.
type lock struct {
	bigint         int64
	space, object  int32
	pair           bool
	classID, objID int64
	objSubID       int
}

func bigintLock(k Key) lock {
	return lock{bigint: int64(k), classID: int64(uint64(k) >> 32), objID: int64(uint64(k) & 0xffffffff), objSubID: 1}
}

func pairLock(space, object int32) lock {
	return lock{space: space, object: object, pair: true,
		classID: int64(uint32(space)), objID: int64(uint32(object)), objSubID: 2}
}

// params is the argument list of pg_try_advisory_lock and friends.
func (l lock) params() string {
	if l.pair {
		return "$1::int4, $2::int4"
	}
	return "$1::int8"
}

func (l lock) args() []any {
	if l.pair {
		return []any{l.space, l.object}
	}
	return []any{l.bigint}
}

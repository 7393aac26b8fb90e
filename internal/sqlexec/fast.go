package sqlexec

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aerodb/aerofn/internal/jsonenc"
	"github.com/aerodb/aerofn/internal/sqlexec/token"
)

// The fast path runs a read in one round trip and a write in two, where the
// slow path takes three:
//
//	round trip 1   BEGIN
//	               SET LOCAL aerofn.token = '<token: this backend, a window of transaction start>'
//	               SET LOCAL statement_timeout = <deadline − reserve>
//	               the statement, prepared on this connection (connStmts): Bind + Describe + Execute
//	               did the transaction write anything? (wroteNothingSQL)
//	round trip 2   only if it wrote: COMMIT
//	background     (COMMIT, if it wrote nothing, and) the reset, as on the slow path
//
// It needs two things the slow path learns: the statement's description
// (parameter types, to bind the JSON values as the slow path would), kept
// per role and statement text in descCache; and the server's clock, read on
// every slow-path BEGIN and every reset and kept per connection, so that the
// host can sign a token for the transaction it is about to begin. Anything
// that does not fit (no description, no fresh clock reading, a parameter the
// old description cannot bind, a result type not yet known, a description
// gone stale, a token that missed its window) falls back to the slow path,
// which is always right; nothing is sent twice unless the first attempt
// failed as a whole and was rolled back.

// Fast-path limits.
const (
	// maxDescs bounds the description cache; a full cache forgets an
	// arbitrary entry. maxDescSQL keeps a statement text longer than this
	// out of it, so that hostile statement churn costs memory in proportion
	// to nothing.
	maxDescs   = 4096
	maxDescSQL = 16 << 10

	// A clock reading is trusted for maxClockAge, when it was taken within
	// maxClockError of the truth (half the round trip it was read in); the
	// window widens by the error, so a loaded machine still gets one.
	maxClockAge   = 60 * time.Second
	maxClockError = 10 * time.Millisecond

	// windowAfter is how long after the host signs a fast-path token the server
	// may begin its transaction (time in the socket and in the server's
	// queue). A token that misses it is refused and the call falls back.
	windowAfter = 100 * time.Millisecond
	// windowBefore covers the clock reading's own uncertainty.
	windowBefore = time.Millisecond
)

// PathCounts counts calls by the path they took: Fast (one round trip, two
// for a write), Slow (three) and, of the slow ones, Fallback: those that
// tried the fast path first and could not use it. Reconnect counts calls run
// again because their connection was lost before COMMIT.
type PathCounts struct {
	Fast, Slow, Fallback, Reconnect atomic.Int64
}

// Paths returns the executor's path counters.
func (e *Executor) Paths() *PathCounts { return &e.paths }

// wroteNothingSQL, run after the statement in its transaction, says whether
// the transaction has written nothing: no transaction id is assigned before
// the first write of any kind (a row, a row lock, a catalog change, in a
// subtransaction or not), and once assigned it stays. Such a transaction has
// nothing that COMMIT could make durable or that could fail at COMMIT
// (deferred constraints fire only on writes), so the caller need not wait for
// it.
const wroteNothingSQL = "SELECT (pg_catalog.pg_current_xact_id_if_assigned() IS NULL)::int"

// clockSQL reads the server's clock in microseconds since the Unix epoch.
const clockSQL = "SELECT (extract(epoch FROM pg_catalog.clock_timestamp()) * 1000000)::bigint"

// descKey names one statement as one role sees it.
type descKey struct {
	role, sql string
}

// stmtDesc is what the fast path needs of a statement's description.
type stmtDesc struct {
	params []uint32 // parameter type OIDs, all in the type cache
}

// descCache remembers statement descriptions across calls and connections.
// A description may go stale when the schema changes; the fast path then
// fails in a way it recognises and the slow path describes again.
type descCache struct {
	mu sync.Mutex
	m  map[descKey]*stmtDesc
}

func (c *descCache) get(role, sql string) *stmtDesc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[descKey{role, sql}]
}

func (c *descCache) put(role, sql string, sd *pgconn.StatementDescription) {
	if len(sql) > maxDescSQL {
		return
	}
	d := &stmtDesc{params: slices.Clone(sd.ParamOIDs)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[descKey]*stmtDesc{}
	}
	if _, ok := c.m[descKey{role, sql}]; !ok && len(c.m) >= maxDescs {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[descKey{role, sql}] = d
}

func (c *descCache) forget(role, sql string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, descKey{role, sql})
}

// connStmts is one connection's prepared statements, by statement text: the
// host's own, made with the protocol's Parse and kept across calls (the reset
// keeps them and destroys a connection that has any other), so that the
// server keeps their plans and each call binds and executes only. A plan
// holds nothing of a caller: the identity is read at execution. The server
// replans when the schema changes; a statement whose result type changed
// fails with 0A000 and the call falls back to the slow path, which prepares
// it again.
type connStmts struct {
	names  map[string]string   // statement text → name
	params map[string][]uint32 // statement text → parameter types, when prepared
	next   int
}

const (
	stmtsKey = "aerofn.sqlexec.stmts"
	// maxConnStmts bounds the statements kept on one connection (each holds
	// a plan in the backend's memory); past it the next reset deallocates
	// them all and the count starts again. Statement texts longer than
	// maxDescSQL are not kept at all (see scratchStmt).
	maxConnStmts = 64
	// scratchStmt is the name the slow path prepares a statement too long
	// to keep under; it is prepared again on every use.
	scratchStmt = "aerofn_scratch"
)

func stmtsOf(pc *pgconn.PgConn) *connStmts {
	st, _ := pc.CustomData()[stmtsKey].(*connStmts)
	if st == nil {
		st = &connStmts{names: map[string]string{}, params: map[string][]uint32{}}
		pc.CustomData()[stmtsKey] = st
	}
	return st
}

// name returns the name sql has, or will have, on this connection.
func (s *connStmts) name(sql string) string {
	if len(sql) > maxDescSQL {
		return scratchStmt
	}
	if n, ok := s.names[sql]; ok {
		return n
	}
	s.next++
	n := "aerofn_" + strconv.Itoa(s.next)
	s.names[sql] = n
	return n
}

// ready reports whether sql is prepared with exactly these parameter types.
func (s *connStmts) ready(sql string, params []uint32) bool {
	p, ok := s.params[sql]
	return ok && slices.Equal(p, params)
}

func (s *connStmts) prepared(sql string, params []uint32) {
	if len(sql) <= maxDescSQL {
		s.params[sql] = slices.Clone(params)
	}
}
func (s *connStmts) forget(sql string) { delete(s.params, sql) }
func (s *connStmts) full() bool        { return len(s.names) > maxConnStmts }
func (s *connStmts) clear() {
	s.names, s.params = map[string]string{}, map[string][]uint32{}
}

// clock is one connection's reading of its server's clock.
type clock struct {
	server int64     // server time, microseconds since the Unix epoch...
	at     time.Time // ...at this host instant (monotonic)
	err    time.Duration
	// pidOK: the slow path saw pg_backend_pid() equal the pid of the
	// connection's BackendKeyData (false behind a pooler that hides it).
	pidChecked, pidOK bool
}

const clockKey = "aerofn.sqlexec.clock"

// calibrate records a server clock reading taken between sent and received.
func calibrate(pc *pgconn.PgConn, server int64, sent, received time.Time) {
	rtt := received.Sub(sent)
	if rtt > 2*maxClockError || rtt < 0 {
		return // too uncertain; keep what there was
	}
	cl := clockOf(pc)
	cl.server, cl.at, cl.err = server, sent.Add(rtt/2), rtt/2
}

// checkedPID records whether pg_backend_pid() matched the connection's pid.
func checkedPID(pc *pgconn.PgConn, ok bool) {
	cl := clockOf(pc)
	cl.pidChecked, cl.pidOK = true, ok
}

func clockOf(pc *pgconn.PgConn) *clock {
	cl, _ := pc.CustomData()[clockKey].(*clock)
	if cl == nil {
		cl = &clock{}
		pc.CustomData()[clockKey] = cl
	}
	return cl
}

// window returns the token window for a transaction about to begin on pc,
// or ok false when pc has no clock reading fresh and sure enough.
func window(pc *pgconn.PgConn, now time.Time) (notBefore, notAfter int64, ok bool) {
	cl, _ := pc.CustomData()[clockKey].(*clock)
	if cl == nil || !cl.pidChecked || !cl.pidOK || cl.at.IsZero() {
		return 0, 0, false
	}
	age := now.Sub(cl.at)
	if age < 0 || age > maxClockAge || cl.err > maxClockError {
		return 0, 0, false
	}
	est := cl.server + age.Microseconds()
	// Clocks drift apart: allow 1,000 ppm of the reading's age either way.
	slack := cl.err + age/1000
	return est - (windowBefore + slack).Microseconds(), est + (windowAfter + slack).Microseconds(), true
}

// errStaleTypes ends a fast call whose result has a column type the type
// cache does not know yet (the schema changed since the description).
var errStaleTypes = errors.New("result column type not yet known")

// fast tries the call in one round trip (a read) or two (a write). decided
// false means the slow path must run the call: nothing was sent, or what was
// sent was rolled back. If c.conn is nil then, the connection was given up
// and the caller needs another.
func (c *call) fast(ctx context.Context, deadline time.Time, id token.Identity, sql string, params []any, d *stmtDesc) (res *Result, decided bool, err error) {
	if len(params) != len(d.params) {
		return nil, false, nil
	}
	values := make([][]byte, len(params))
	for i, p := range params {
		t, ok := c.e.types.get(d.params[i])
		if !ok {
			return nil, false, nil
		}
		v, err := encodeParam(t, p)
		if err != nil {
			return nil, false, nil // the slow path says why, with a fresh description
		}
		values[i] = v
	}
	budget, err := c.e.statementBudget(deadline)
	if err != nil {
		c.release()
		return nil, true, err
	}
	nb, na, ok := window(c.pc, time.Now())
	if !ok {
		return nil, false, nil
	}
	id.PID, id.NotBefore, id.NotAfter = int64(c.pc.PID()), nb, na
	tok := c.e.signer.Sign(id)
	if !token.SafeLiteral(tok) {
		return nil, false, nil
	}

	// What each result of the pipeline is.
	const (
		skip = iota
		prepBegin
		prepStmt
		stmt
		prepCheck
		check
	)
	var kinds []int
	st := stmtsOf(c.pc)
	name, checkName, beginName := st.name(sql), st.name(wroteNothingSQL), st.name("BEGIN")
	pl := c.pc.StartPipeline(ctx)
	if !st.ready("BEGIN", nil) {
		pl.SendPrepare(beginName, "BEGIN", nil)
		kinds = append(kinds, prepBegin)
	}
	pl.SendQueryPrepared(beginName, nil, nil, nil)
	pl.SendQueryParams("SET LOCAL aerofn.token = '"+tok+"'", nil, nil, nil, nil)
	pl.SendQueryParams("SET LOCAL statement_timeout = "+strconv.FormatInt(max(budget.Milliseconds(), 1), 10), nil, nil, nil, nil)
	kinds = append(kinds, skip, skip, skip)
	if !st.ready(sql, d.params) {
		st.forget(sql)
		pl.SendDeallocate(name)
		pl.SendPrepare(name, sql, d.params)
		kinds = append(kinds, skip, prepStmt)
	}
	pl.SendQueryPrepared(name, values, nil, nil)
	kinds = append(kinds, stmt)
	if !st.ready(wroteNothingSQL, nil) {
		pl.SendPrepare(checkName, wroteNothingSQL, nil)
		kinds = append(kinds, prepCheck)
	}
	pl.SendQueryPrepared(checkName, nil, nil, nil)
	kinds = append(kinds, check)
	if err := pl.Sync(); err != nil {
		return nil, true, c.fail(ctx, err)
	}
	res = &Result{}
	wroteNothing := false
	serverErr, fatal := segment(pl, func(i int, r any) error {
		if i >= len(kinds) {
			return errors.New("unexpected pipeline result")
		}
		switch kinds[i] {
		case prepStmt:
			if _, ok := r.(*pgconn.StatementDescription); ok {
				st.prepared(sql, d.params)
			}
			return nil
		case prepCheck:
			if _, ok := r.(*pgconn.StatementDescription); ok {
				st.prepared(wroteNothingSQL, nil)
			}
			return nil
		case prepBegin:
			if _, ok := r.(*pgconn.StatementDescription); ok {
				st.prepared("BEGIN", nil)
			}
			return nil
		case skip:
			return closeReader(r)
		case check:
			wroteNothing = readInt(r) == 1
			return nil
		}
		rr, ok := r.(*pgconn.ResultReader)
		if !ok {
			return errors.New("unexpected pipeline result")
		}
		fds := rr.FieldDescriptions()
		names := make([][]byte, len(fds))
		types := make([]*typeInfo, len(fds))
		res.Columns = make([]string, len(fds))
		for j, f := range fds {
			t, ok := c.e.types.get(f.DataTypeOID)
			if !ok {
				return errStaleTypes
			}
			types[j] = t
			res.Columns[j] = f.Name
			names[j] = jsonenc.AppendString(nil, f.Name)
		}
		return c.readRows(rr, res, names, types)
	})
	if errors.Is(fatal, errStaleTypes) {
		// Mid-result: the connection cannot be rolled back in order. The
		// transaction never commits (no COMMIT was sent); dropping the
		// connection ends it.
		c.e.descs.forget(c.role, sql)
		c.destroy(true)
		c.conn = nil
		return nil, false, nil
	}
	if fatal == nil {
		if err := pl.Close(); err != nil && serverErr == nil {
			fatal = err
		}
	}
	if fatal != nil {
		return nil, true, c.fail(ctx, fatal)
	}
	if serverErr != nil {
		if retry := c.fastRetryable(serverErr, sql); retry && time.Until(deadline) > 2*minStatementBudget {
			// The statement failed as a whole; roll it back and let the
			// slow path run it once more.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := c.rollback(cctx); err != nil {
				c.destroy(true)
				c.conn = nil
			}
			return nil, false, nil
		}
		return nil, true, c.fail(ctx, serverErr)
	}
	if st := c.pc.TxStatus(); st != 'T' {
		c.destroy(false)
		return nil, true, &Error{Code: CodeTransactionState, Message: "the statement left the transaction in state " + strconv.QuoteRune(rune(st)) + "; the connection was discarded"}
	}
	if wroteNothing {
		// Nothing to commit: the result is the whole outcome. COMMIT and the
		// reset follow off the caller's path.
		c.resetInBackground(true)
		return res, true, nil
	}
	if err := c.commit(ctx); err != nil {
		return nil, true, err
	}
	return res, true, nil
}

// fastRetryable says whether a server error on the fast path may be the fast
// path's own doing, so that the slow path should run the call again: a token
// refused for its connection or window (the clock reading was off, or the
// server was slow to begin), or an error that a stale description or plan
// can cause. The statement failed as a whole, so running it again is safe.
func (c *call) fastRetryable(err error, sql string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch {
	case pe.Code == "28000" && (strings.Contains(pe.Message, "another transaction") || strings.Contains(pe.Message, "another connection")):
		if cl, _ := c.pc.CustomData()[clockKey].(*clock); cl != nil {
			cl.at = time.Time{} // read the clock again before trusting it
		}
		return true
	case strings.HasPrefix(pe.Code, "42"), pe.Code == "22P02", pe.Code == "22003":
		// Analysis errors, and a value that does not convert to the
		// parameter's type: the types the parameters were prepared with may
		// be stale. The slow path describes the statement again (and if the
		// error is the function's own, answers with it).
		c.e.descs.forget(c.role, sql)
		stmtsOf(c.pc).forget(sql)
		return true
	case pe.Code == "0A000" && strings.Contains(pe.Message, "cached plan"):
		// "cached plan must not change result type": the schema changed
		// under this connection's prepared statement.
		stmtsOf(c.pc).forget(sql)
		return true
	case pe.Code == "26000":
		// A prepared statement is gone: only a statement the guard refuses
		// (DEALLOCATE) can do that, and it may have taken them all.
		stmtsOf(c.pc).clear()
		return true
	}
	return false
}

package sqlexec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aerodb/aerofn/internal/jsonenc"
	"github.com/aerodb/aerofn/internal/sqlexec/token"
)

// call is one db_query on one connection; see doc.go for its states.
type call struct {
	e    *Executor
	conn *pgxpool.Conn
	pc   *pgconn.PgConn
	role string
	stmt string // the slow path's prepared statement
	// lost: the connection failed under the call (not the server reporting
	// an error, not a deadline). committing: COMMIT was sent, so the outcome
	// of a lost call is unknown and it must not run again.
	lost, committing bool
}

// release hands a clean connection back to the pool.
func (c *call) release() { c.conn.Release() }

// destroy closes the connection so that the pool never hands it out again;
// abandoned says its statement may still be running.
func (c *call) destroy(abandoned bool) {
	pid := c.pc.PID()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = c.pc.Close(ctx)
	cancel()
	c.conn.Release()
	if abandoned {
		c.e.reap(pid, c.role)
	}
}

// limitError is a result over MaxRows or MaxBytes, noticed mid-stream.
type limitError struct{ e *Error }

func (l *limitError) Error() string { return l.e.Error() }

// fail ends a call that went wrong and says why, in the function's terms.
// A connection is reused only when the server itself reported an ordinary
// error and a ROLLBACK and DISCARD ALL then succeeded; after a timeout, a
// limit, a lost or confused connection it is destroyed.
func (c *call) fail(ctx context.Context, err error) error {
	var le *limitError
	var pe *pgconn.PgError
	var fe *Error
	switch {
	case errors.As(err, &le):
		c.destroy(true)
		return le.e
	case errors.As(err, &pe) && pe.Code == "57014":
		// The statement ended by statement_timeout or by the cancel request
		// sent when ctx ended; the spec'd behaviour is not to reuse it.
		c.destroy(c.pc.IsBusy())
		return &Error{Code: CodeTimeout, Message: pe.Message, err: err}
	case errors.As(err, &pe) && !c.pc.IsClosed() && pe.Severity != "FATAL" && pe.Severity != "PANIC":
		c.rollbackOrDestroy(ctx)
		return AsError(err)
	case errors.As(err, &fe):
		c.rollbackOrDestroy(ctx)
		return fe
	}
	c.destroy(true)
	if ctx.Err() != nil || pgconn.Timeout(err) {
		return &Error{Code: CodeTimeout, Message: "the deadline passed during the query", err: err}
	}
	c.lost = pe == nil || connectionGone(pe.Code)
	if pe != nil {
		return AsError(err)
	}
	return &Error{Code: CodeUnavailable, Message: "the database connection failed: " + err.Error(), err: err}
}

// connectionGone says whether a fatal server error means the backend went
// away for a reason of the server's (a shutdown, a restart, an operator's
// pg_terminate_backend), not because of the statement: class 08 (connection
// exception) and 57P01-57P03 (admin shutdown, crash shutdown, cannot connect
// now).
func connectionGone(code string) bool {
	return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03"
}

// rollbackOrDestroy cleans up after an ordinary error. The cleanup is the
// host's, not the function's, so it is not bound by the call's deadline
// (an error that arrives just before it would otherwise cost a healthy
// connection), only by a short one of its own.
func (c *call) rollbackOrDestroy(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := c.rollback(cctx); err != nil {
		c.destroy(true)
		return
	}
	c.release()
}

// run is the state machine of doc.go.
func (c *call) run(ctx context.Context, deadline time.Time, id token.Identity, sql string, params []any) (*Result, error) {
	// Round trip 1: BEGIN, learn the backend and transaction the token
	// binds to, and parse and describe the statement (not run it).
	sent := time.Now()
	sd, err := c.begin(ctx, sql, &id)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	// transaction_timestamp() was taken between sending and receiving:
	// that is a reading of the server's clock for the fast path.
	calibrate(c.pc, id.NotBefore, sent, time.Now())
	checkedPID(c.pc, id.PID == int64(c.pc.PID()))
	fields, err := c.fieldTypes(ctx, sd)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	c.e.descs.put(c.role, sql, sd)
	values, err := c.bindParams(ctx, sd, params)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	budget, err := c.e.statementBudget(deadline)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	tok := c.e.signer.Sign(id)
	if !token.SafeLiteral(tok) {
		return nil, c.fail(ctx, &Error{Code: CodeInternal, Message: "identity token is not a safe literal"})
	}
	// Round trip 2: identity, timeout, the statement.
	res, err := c.execute(ctx, tok, budget, values, sd, fields)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	if st := c.pc.TxStatus(); st != 'T' {
		// The statement ended the host's transaction (only possible with the
		// guard bypassed: COMMIT, ROLLBACK). What it did is done; the
		// connection is not trusted again.
		c.destroy(false)
		return nil, &Error{Code: CodeTransactionState, Message: fmt.Sprintf("the statement left the transaction in state %q; the connection was discarded", st)}
	}
	// Round trip 3: COMMIT, then DISCARD ALL.
	if err := c.commit(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

// begin is round trip 1.
func (c *call) begin(ctx context.Context, sql string, id *token.Identity) (*pgconn.StatementDescription, error) {
	pl := c.pc.StartPipeline(ctx)
	pl.SendQueryParams("BEGIN", nil, nil, nil, nil)
	pl.SendQueryParams("SELECT pg_catalog.pg_backend_pid(), (extract(epoch FROM pg_catalog.transaction_timestamp()) * 1000000)::bigint", nil, nil, nil, nil)
	st := stmtsOf(c.pc)
	c.stmt = st.name(sql)
	st.forget(sql) // prepared again below, whatever was there
	pl.SendDeallocate(c.stmt)
	pl.SendPrepare(c.stmt, sql, nil)
	if err := pl.Sync(); err != nil {
		return nil, err
	}
	var sd *pgconn.StatementDescription
	var where error
	if err := lastSegment(pl, func(i int, r any) error {
		switch i {
		case 1:
			rr, ok := r.(*pgconn.ResultReader)
			if !ok {
				return errors.New("reading backend pid: unexpected result")
			}
			for rr.NextRow() {
				v := rr.Values()
				pid, err1 := strconv.ParseInt(string(v[0]), 10, 64)
				xact, err2 := strconv.ParseInt(string(v[1]), 10, 64)
				if err1 != nil || err2 != nil {
					where = fmt.Errorf("reading backend pid and transaction start %q %q", v[0], v[1])
				}
				// The slow path's token names this exact instant.
				id.PID, id.NotBefore, id.NotAfter = pid, xact, xact
			}
			_, err := rr.Close()
			return err
		case 3:
			if sd, _ = r.(*pgconn.StatementDescription); sd != nil {
				st.prepared(sql, sd.ParamOIDs)
			}
			return nil
		}
		return closeReader(r)
	}); err != nil {
		return nil, err
	}
	if where != nil {
		return nil, where
	}
	if sd == nil || id.PID == 0 {
		return nil, errors.New("round trip 1 returned no statement description")
	}
	return sd, nil
}

// resolveTypes makes sure every OID in oids is in the type cache, asking
// pg_type (readable by every role) about the ones that are not builtins.
func (c *call) resolveTypes(ctx context.Context, oids []uint32) error {
	var missing []uint32
	for _, o := range oids {
		if _, ok := c.e.types.get(o); !ok {
			missing = append(missing, o)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	rows := map[uint32]pgTypeRow{}
	for round := 0; round < 4 && len(missing) > 0; round++ {
		arg := make([]byte, 0, 16*len(missing))
		arg = append(arg, '{')
		for i, o := range missing {
			if i > 0 {
				arg = append(arg, ',')
			}
			arg = strconv.AppendUint(arg, uint64(o), 10)
		}
		arg = append(arg, '}')
		rr := c.pc.ExecParams(ctx, "SELECT oid::int8, typtype, typcategory, typelem::int8, typbasetype::int8, typdelim FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])",
			[][]byte{arg}, nil, nil, nil)
		var next []uint32
		for rr.NextRow() {
			v := rr.Values()
			oid, _ := strconv.ParseUint(string(v[0]), 10, 32)
			elem, _ := strconv.ParseUint(string(v[3]), 10, 32)
			base, _ := strconv.ParseUint(string(v[4]), 10, 32)
			r := pgTypeRow{typtype: first(v[1]), typcategory: first(v[2]), elem: uint32(elem), base: uint32(base), delim: first(v[5])}
			rows[uint32(oid)] = r
			for _, dep := range []uint32{r.elem, r.base} {
				if _, known := c.e.types.get(dep); dep != 0 && !known {
					if _, seen := rows[dep]; !seen {
						next = append(next, dep)
					}
				}
			}
		}
		if _, err := rr.Close(); err != nil {
			return err
		}
		missing = next
	}
	for _, o := range oids {
		if _, ok := c.e.types.get(o); !ok {
			c.e.types.put(o, resolveType(o, rows, &c.e.types, 0))
		}
	}
	return nil
}

func first(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func (c *call) fieldTypes(ctx context.Context, sd *pgconn.StatementDescription) ([]*typeInfo, error) {
	oids := make([]uint32, 0, len(sd.Fields)+len(sd.ParamOIDs))
	for _, f := range sd.Fields {
		oids = append(oids, f.DataTypeOID)
	}
	oids = append(oids, sd.ParamOIDs...)
	if err := c.resolveTypes(ctx, oids); err != nil {
		return nil, err
	}
	out := make([]*typeInfo, len(sd.Fields))
	for i, f := range sd.Fields {
		out[i], _ = c.e.types.get(f.DataTypeOID)
	}
	return out, nil
}

func (c *call) bindParams(ctx context.Context, sd *pgconn.StatementDescription, params []any) ([][]byte, error) {
	if len(params) != len(sd.ParamOIDs) {
		return nil, &Error{Code: CodeInvalidParams, Message: fmt.Sprintf("the statement takes %d parameters, the request gives %d", len(sd.ParamOIDs), len(params))}
	}
	values := make([][]byte, len(params))
	for i, p := range params {
		t, _ := c.e.types.get(sd.ParamOIDs[i])
		if t == nil {
			t = tText
		}
		v, err := encodeParam(t, p)
		if err != nil {
			return nil, &Error{Code: CodeInvalidParams, Message: fmt.Sprintf("parameter $%d: %v", i+1, err)}
		}
		values[i] = v
	}
	return values, nil
}

// execute is round trip 2: SET LOCAL the identity and the timeout, then run
// the prepared statement, streaming its rows into JSON under the limits.
func (c *call) execute(ctx context.Context, tok string, budget time.Duration, values [][]byte, sd *pgconn.StatementDescription, types []*typeInfo) (*Result, error) {
	names := make([][]byte, len(sd.Fields))
	cols := make([]string, len(sd.Fields))
	for i, f := range sd.Fields {
		cols[i] = f.Name
		names[i] = jsonenc.AppendString(nil, f.Name)
	}
	pl := c.pc.StartPipeline(ctx)
	pl.SendQueryParams("SET LOCAL aerofn.token = '"+tok+"'", nil, nil, nil, nil)
	pl.SendQueryParams("SET LOCAL statement_timeout = "+strconv.FormatInt(max(budget.Milliseconds(), 1), 10), nil, nil, nil, nil)
	pl.SendQueryPrepared(c.stmt, values, nil, nil)
	if err := pl.Sync(); err != nil {
		return nil, err
	}
	res := &Result{Columns: cols}
	if err := lastSegment(pl, func(i int, r any) error {
		rr, ok := r.(*pgconn.ResultReader)
		if !ok {
			return errors.New("unexpected pipeline result")
		}
		if i < 2 {
			_, err := rr.Close()
			return err
		}
		return c.readRows(rr, res, names, types)
	}); err != nil {
		return nil, err
	}
	return res, nil
}

// readRows streams one statement's rows into res as JSON objects, under
// MaxRows and MaxBytes, and reads its command tag. names are the columns as
// JSON strings; types say how to write each column.
func (c *call) readRows(rr *pgconn.ResultReader, res *Result, names [][]byte, types []*typeInfo) error {
	maxRows, maxBytes := c.e.cfg.MaxRows, c.e.cfg.MaxBytes
	var buf []byte
	for rr.NextRow() {
		if len(res.Rows) >= maxRows {
			return &limitError{&Error{Code: CodeTooManyRows, Message: fmt.Sprintf("the result has more than %d rows; add a LIMIT or page through it", maxRows)}}
		}
		buf = buf[:0]
		buf = append(buf, '{')
		for j, v := range rr.Values() {
			if j > 0 {
				buf = append(buf, ',')
			}
			if j < len(names) {
				buf = append(buf, names[j]...)
				buf = append(buf, ':')
				buf = appendValue(buf, types[j], v)
			}
		}
		buf = append(buf, '}')
		res.bytes += len(buf) + 1
		if res.bytes > maxBytes {
			return &limitError{&Error{Code: CodeResultTooLarge, Message: fmt.Sprintf("the result is larger than %d bytes; select fewer rows or columns", maxBytes)}}
		}
		res.Rows = append(res.Rows, json.RawMessage(bytes.Clone(buf)))
	}
	tag, err := rr.Close()
	if err != nil {
		return err
	}
	res.Command = commandOf(tag.String())
	res.RowCount = tag.RowsAffected()
	return nil
}

// commit is round trip 3: COMMIT, and then, in its own implicit
// transaction, the session reset (resetSession). On any doubt the
// connection is destroyed.
func (c *call) commit(ctx context.Context) error {
	c.committing = true
	pl := c.pc.StartPipeline(ctx)
	pl.SendQueryParams("COMMIT", nil, nil, nil, nil)
	if err := pl.Sync(); err != nil {
		return c.fail(ctx, err)
	}
	var tag string
	commitErr, fatal := segment(pl, func(i int, r any) error {
		rr, ok := r.(*pgconn.ResultReader)
		if !ok {
			return errors.New("unexpected pipeline result")
		}
		t, err := rr.Close()
		tag = t.String()
		return err
	})
	if fatal == nil {
		fatal = pl.Close()
	}
	if fatal != nil {
		return c.fail(ctx, fatal)
	}
	// The commit's outcome is known. The reset only decides whether the
	// connection can be reused, so it runs off the caller's path, under its
	// own deadline (the call's context ends with the call); the connection
	// goes back to the pool, or is destroyed, only after it, so no one ever
	// gets it unreset.
	c.resetInBackground(false)
	if commitErr != nil {
		return AsError(commitErr)
	}
	if tag != "COMMIT" {
		return &Error{Code: CodeTransactionState, Message: "the transaction did not commit (" + tag + ")"}
	}
	return nil
}

// resetInBackground resets the session (resetSession) on its own goroutine,
// under its own deadline (the call's context ends with the call), reads the
// server's clock on the way, and then releases the connection, or destroys it
// if anything was amiss; no one ever gets it unreset. commitFirst ends the
// call's transaction first: the fast path does that for a transaction that
// wrote nothing, whose outcome the caller does not need to wait for.
func (c *call) resetInBackground(commitFirst bool) {
	c.e.background(func() {
		rctx, cancel := context.WithTimeout(context.Background(), resetTimeout)
		defer cancel()
		// One simple-protocol message: the server parses it once and runs
		// the statements in order, stopping at the first error.
		sql := resetScript
		if st := stmtsOf(c.pc); st.full() {
			sql = "DEALLOCATE ALL;" + sql
			st.clear()
		}
		if commitFirst {
			sql = "COMMIT;" + sql
		}
		sent := time.Now()
		results, err := c.pc.Exec(rctx, sql).ReadAll()
		received := time.Now()
		n := len(results)
		clean := err == nil && n >= len(resetSession)+1
		if clean && commitFirst && results[0].CommandTag.String() != "COMMIT" {
			clean = false
		}
		if clean {
			if sqlPrepared := results[n-2]; len(sqlPrepared.Rows) != 1 || string(sqlPrepared.Rows[0][0]) != "0" {
				clean = false
			}
		}
		if clean {
			last := results[n-1]
			if len(last.Rows) == 1 && len(last.Rows[0]) == 1 {
				if server, err := strconv.ParseInt(string(last.Rows[0][0]), 10, 64); err == nil {
					calibrate(c.pc, server, sent, received)
				}
			}
		}
		if clean && c.pc.TxStatus() == 'I' {
			c.release()
		} else {
			c.destroy(false)
		}
	})
}

// rollback ends a transaction that an ordinary server error aborted, and
// resets the session, so that the connection can be reused.
func (c *call) rollback(ctx context.Context) error {
	if c.pc.IsClosed() || c.pc.IsBusy() {
		return errors.New("connection not idle")
	}
	pl := c.pc.StartPipeline(ctx)
	pl.SendQueryParams("ROLLBACK", nil, nil, nil, nil)
	pl.SendPipelineSync()
	sendReset(pl)
	if err := pl.Sync(); err != nil {
		return err
	}
	rbErr, fatal := segment(pl, func(i int, r any) error { return closeReader(r) })
	if fatal != nil {
		return fatal
	}
	clean, resetErr, fatal := readReset(pl)
	if fatal != nil {
		return fatal
	}
	if err := pl.Close(); err != nil {
		return err
	}
	switch {
	case rbErr != nil:
		return rbErr
	case resetErr != nil:
		return resetErr
	case !clean:
		return errors.New("the session reset failed")
	case c.pc.TxStatus() != 'I':
		return errors.New("still in a transaction after ROLLBACK")
	}
	return nil
}

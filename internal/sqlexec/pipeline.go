package sqlexec

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// resetSession undoes, after COMMIT or ROLLBACK, any session state a
// statement can leave for the next caller of the connection. It is DISCARD
// ALL without DISCARD PLANS (and without SET SESSION AUTHORIZATION DEFAULT,
// which only a superuser session can need). Keeping plans matters: DISCARD
// PLANS throws away the verifier's cached plans and costs every call a
// re-plan (measured here: the RLS benchmark query went from about 0.65 to
// 1.1 ms at the median), and cached plans carry nothing of the previous
// caller, since policies are evaluated at run time, per statement.
// pg_advisory_unlock_all() stays executable by the function roles (Setup
// revokes every other advisory-lock function) because it can only release
// the caller's own locks.
var resetSession = []string{
	"CLOSE ALL",
	"RESET ALL",
	"RESET ROLE",
	"UNLISTEN *",
	"DISCARD SEQUENCES",
	"DISCARD TEMP",
	"SELECT pg_catalog.pg_advisory_unlock_all()",
	sqlPreparedSQL,
}

// sqlPreparedSQL, the last statement of the reset, counts the prepared
// statements made with SQL PREPARE (which only a statement the guard refuses
// can make). The host's own statements, made with the protocol's Parse, are
// kept across calls so that their plans are (see connStmts); any other makes
// the connection unfit for reuse, and it is destroyed.
const sqlPreparedSQL = "SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql"

// sendReset queues resetSession; readReset reads its results and reports
// whether the connection may be reused.
func sendReset(pl *pgconn.Pipeline) {
	for _, q := range resetSession {
		pl.SendQueryParams(q, nil, nil, nil, nil)
	}
}

func readReset(pl *pgconn.Pipeline) (clean bool, serverErr, fatal error) {
	none := false
	serverErr, fatal = segment(pl, func(i int, r any) error {
		if i == len(resetSession)-1 {
			none = readInt(r) == 0
			return nil
		}
		return closeReader(r)
	})
	return none && serverErr == nil && fatal == nil, serverErr, fatal
}

// readInt reads the single integer a one-row, one-column result holds, or -1.
func readInt(r any) int64 {
	rr, ok := r.(*pgconn.ResultReader)
	if !ok {
		return -1
	}
	v := int64(-1)
	for rr.NextRow() {
		if vals := rr.Values(); len(vals) == 1 {
			if n, err := strconv.ParseInt(string(vals[0]), 10, 64); err == nil {
				v = n
			}
		}
	}
	if _, err := rr.Close(); err != nil {
		return -1
	}
	return v
}

// segment reads pipeline results up to the next sync, handing each to each
// in order. It returns the first error the server reported in the segment
// (the server skips the rest of a segment after an error) and, separately, an
// error that leaves the connection unusable.
func segment(pl *pgconn.Pipeline, each func(i int, r any) error) (serverErr, fatal error) {
	for i := 0; ; {
		r, err := pl.GetResults()
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) {
				if serverErr == nil {
					serverErr = err
				}
				continue
			}
			return serverErr, err
		}
		switch r := r.(type) {
		case nil:
			return serverErr, errors.New("pipeline ended before its sync")
		case *pgconn.PipelineSync:
			return serverErr, nil
		default:
			if err := each(i, r); err != nil {
				var pe *pgconn.PgError
				if errors.As(err, &pe) {
					if serverErr == nil {
						serverErr = err
					}
				} else {
					return serverErr, err
				}
			}
			i++
		}
	}
}

// lastSegment reads the pipeline's last segment as segment does and closes
// the pipeline. Its error is the first of: one that leaves the connection
// unusable (the pipeline is then not closed), the server's, closing's.
func lastSegment(pl *pgconn.Pipeline, each func(i int, r any) error) error {
	serverErr, fatal := segment(pl, each)
	if fatal != nil {
		return fatal
	}
	if err := pl.Close(); serverErr == nil {
		return err
	}
	return serverErr
}

func closeReader(r any) error {
	if rr, ok := r.(*pgconn.ResultReader); ok {
		_, err := rr.Close()
		return err
	}
	return nil
}

// resetScript is resetSession and a reading of the server's clock, as one
// simple-protocol query.
var resetScript = strings.Join(resetSession, ";") + ";" + clockSQL

// resetTimeout bounds the background reset of a connection after a commit.
const resetTimeout = 5 * time.Second

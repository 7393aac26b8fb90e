package sqlexec

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aerodb/aerofn/internal/abi"
	"github.com/aerodb/aerofn/internal/jsonenc"
)

// Codes of the errors that are aerofn's own; a database error carries its
// SQLSTATE instead (docs/ABI.md).
const (
	CodeStatementRejected = "statement_rejected"        // the guard refused the statement
	CodeTooManyRows       = "too_many_rows"             // more rows than Config.MaxRows
	CodeResultTooLarge    = "result_too_large"          // more reply bytes than Config.MaxBytes
	CodeTimeout           = "timeout"                   // the call's deadline, or statement_timeout, passed
	CodeInvalidRequest    = "invalid_request"           // the request JSON is not {"sql": ..., "params": [...]}
	CodeInvalidParams     = "invalid_params"            // wrong number of parameters, or one that cannot be bound
	CodeInvalidPrincipal  = "invalid_principal"         // the invocation's principal cannot query (unknown role, authenticated without sub)
	CodeUnavailable       = "unavailable"               // no connection to the database, or it was lost
	CodeShareExceeded     = "connection_share_exceeded" // the function or user already holds its share of the role's pool
	CodeTransactionState  = "transaction_state"         // the statement ended the host's transaction; nothing after it ran
	CodeInternal          = "internal"
)

// Error is what a failed call returns to the function: never a trap.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	err     error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }
func (e *Error) Unwrap() error { return e.err }

// AsError turns any error from Query into the *Error a function sees.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if pe.Code == "57014" {
			return &Error{Code: CodeTimeout, Message: pe.Message, err: err}
		}
		return &Error{Code: pe.Code, Message: pe.Message, err: err}
	}
	return &Error{Code: CodeInternal, Message: err.Error(), err: err}
}

// Result is one statement's outcome.
type Result struct {
	Columns  []string          // in select-list order; names may repeat
	Rows     []json.RawMessage // each a JSON object {column: value}
	RowCount int64             // rows returned or affected (the command tag's count)
	Command  string            // SELECT, INSERT, UPDATE or DELETE
	bytes    int
}

// MarshalJSON writes the db_query reply: {"rows": [...], "rowCount": n, "command": "..."}.
func (r *Result) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, r.bytes+len(r.Rows)+64)
	b = append(b, `{"rows":[`...)
	for i, row := range r.Rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, row...)
	}
	b = append(b, `],"rowCount":`...)
	b = strconv.AppendInt(b, r.RowCount, 10)
	b = append(b, `,"command":`...)
	b = jsonenc.AppendString(b, r.Command)
	return append(b, '}'), nil
}

// errorReply is e as the ABI's error reply.
func errorReply(e *Error) []byte { return abi.ErrorReply(e.Code, e.Message) }

// commandOf turns a command tag ("INSERT 0 3", "SELECT 2", "CREATE TABLE")
// into its verb.
func commandOf(tag string) string {
	f := strings.Fields(tag)
	for len(f) > 1 {
		if _, err := strconv.ParseInt(f[len(f)-1], 10, 64); err != nil {
			break
		}
		f = f[:len(f)-1]
	}
	return strings.Join(f, " ")
}

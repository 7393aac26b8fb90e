package aerofn

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Error codes the host puts in a [DBError] besides SQLSTATEs.
const (
	CodeStatementRejected = "statement_rejected" // not a single SELECT, INSERT, UPDATE or DELETE
	CodeTooManyRows       = "too_many_rows"
	CodeResultTooLarge    = "result_too_large"
	CodeTimeout           = "timeout"
	// CodeUnavailable is the SDK's own: the program is not running under
	// aerofn (a build for another GOOS), so there is no database to ask.
	CodeUnavailable = "unavailable"
)

// DBError is a query the host or the database refused. Code is the
// SQLSTATE for database errors ("42501" for permission denied, "23505" for
// a unique violation) or one of the Code constants.
type DBError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *DBError) Error() string {
	return "db_query " + e.Code + ": " + e.Message
}

// Result is a query's outcome. Rows holds each row as encoding/json decodes
// an object, so numbers are float64; use [Result.Decode] into typed structs
// when a bigint id must keep every digit.
type Result struct {
	Rows     []map[string]any `json:"rows"`
	RowCount int64            `json:"rowCount"` // rows returned or affected
	Command  string           `json:"command"`  // SELECT, INSERT, UPDATE or DELETE

	rawRows json.RawMessage
}

// Decode decodes the rows into dst, a pointer to a slice of structs (with
// json tags naming the columns), maps or anything json.Unmarshal accepts.
func (r *Result) Decode(dst any) error {
	raw := r.rawRows
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("[]")
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("decoding rows: %w", err)
	}
	return nil
}

// Query runs one SQL statement with $1, $2... placeholders bound to params,
// under the row-level security of the principal the call acts for. Each call
// is its own transaction. Params cross as JSON, encoded by encoding/json
// (a time.Time as RFC 3339 text, a []byte as base64). A refused query
// returns a *DBError.
func Query(sql string, params ...any) (*Result, error) {
	if params == nil {
		params = []any{}
	}
	req, err := json.Marshal(struct {
		SQL    string `json:"sql"`
		Params []any  `json:"params"`
	}{sql, params})
	if err != nil {
		return nil, fmt.Errorf("encoding query params: %w", err)
	}
	return parseQueryReply(host.dbQuery(req))
}

// queryReply is db_query's reply: a result, or an error object instead.
type queryReply struct {
	Rows     json.RawMessage `json:"rows"`
	RowCount int64           `json:"rowCount"`
	Command  string          `json:"command"`
	Error    *DBError        `json:"error"`
}

func parseQueryReply(reply []byte) (*Result, error) {
	if len(reply) == 0 {
		return nil, errors.New("decoding db_query reply: empty reply")
	}
	var w queryReply
	if err := json.Unmarshal(reply, &w); err != nil {
		return nil, fmt.Errorf("decoding db_query reply: %w", err)
	}
	if w.Error != nil {
		return nil, w.Error
	}
	res := &Result{RowCount: w.RowCount, Command: w.Command, rawRows: w.Rows}
	if len(w.Rows) > 0 {
		if err := json.Unmarshal(w.Rows, &res.Rows); err != nil {
			return nil, fmt.Errorf("decoding db_query rows: %w", err)
		}
	}
	return res, nil
}

// QueryRaw runs a db_query request built by the caller and returns the
// host's reply as it is, error replies included. Most functions want
// [Query]; this is for relaying requests, as examples/sql-proxy does.
func QueryRaw(request json.RawMessage) json.RawMessage {
	return host.dbQuery(request)
}

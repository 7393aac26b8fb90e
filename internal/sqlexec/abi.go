package sqlexec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/aerodb/aerofn/internal/auth"
)

// Handle is db_query as the ABI defines it: request {"sql", "params"} in,
// the reply JSON out ({"rows", "rowCount", "command"} or {"error": {"code",
// "message"}}). It never panics and never returns nil.
func (e *Executor) Handle(ctx context.Context, p auth.Principal, request []byte) (reply []byte) {
	defer func() {
		if r := recover(); r != nil {
			reply = errorReply(&Error{Code: CodeInternal, Message: fmt.Sprintf("db_query: %v", r)})
		}
	}()
	var req struct {
		SQL    *string `json:"sql"`
		Params []any   `json:"params"`
	}
	dec := json.NewDecoder(bytes.NewReader(request))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return errorReply(&Error{Code: CodeInvalidRequest, Message: "the request is not {\"sql\": string, \"params\": array}: " + err.Error()})
	}
	if req.SQL == nil {
		return errorReply(&Error{Code: CodeInvalidRequest, Message: "the request has no \"sql\""})
	}
	res, err := e.Query(ctx, p, *req.SQL, req.Params)
	if err != nil {
		return errorReply(AsError(err))
	}
	out, _ := res.MarshalJSON()
	return out
}

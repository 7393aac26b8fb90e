// Command recorder is the database-trigger tests' function: every attempt
// it sees is written to the table handled (event_id, attempt, op, tbl,
// row_id, role, user_id, ok) through db_query, so a test can count what was
// handled even when the node that ran it is killed before its invocation
// record is written. It fails, after recording, when the changed row has
// "fail": true or "fail_until" greater than the attempt.
package main

import (
	"encoding/json"
	"errors"
	"fmt"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

func init() {
	aerofn.Handle(func(ev aerofn.Event) (any, error) {
		var extra struct {
			Attempt int    `json:"attempt"`
			Role    string `json:"role"`
			UserID  string `json:"user_id"`
		}
		if err := ev.Decode(&extra); err != nil {
			return nil, err
		}
		var row struct {
			ID        json.RawMessage `json:"id"`
			Fail      bool            `json:"fail"`
			FailUntil int             `json:"fail_until"`
		}
		var err error
		if ev.Operation == aerofn.Delete {
			err = ev.DecodeOld(&row)
		} else {
			err = ev.DecodeNew(&row)
		}
		if err != nil {
			return nil, err
		}
		fail := row.Fail || extra.Attempt < row.FailUntil
		if _, err := aerofn.Query(`INSERT INTO handled (event_id, attempt, op, tbl, row_id, role, user_id, ok)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			ev.EventID, extra.Attempt, string(ev.Operation), ev.Table, string(row.ID), extra.Role, extra.UserID, !fail); err != nil {
			return nil, fmt.Errorf("recording event %s: %w", ev.EventID, err)
		}
		if fail {
			return nil, errors.New("failing on purpose")
		}
		return map[string]any{"event_id": ev.EventID, "attempt": extra.Attempt}, nil
	})
}

func main() {}

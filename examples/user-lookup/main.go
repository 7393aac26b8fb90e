// Command user-lookup returns the caller's own row of the users table (the
// seed's first use case). The query runs under the caller's row-level
// security, so a policy such as USING (id = auth.uid()) is what keeps one user
// from reading another's row; the function only asks.
//
// 200 with the row; 401 when the call carries no user; 404 when there is no
// row the caller may see.
package main

import (
	"encoding/json"
	"fmt"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

func init() {
	aerofn.Handle(lookup)
}

func lookup(ev aerofn.Event) (any, error) {
	if ev.UserID == "" {
		return aerofn.Response{StatusCode: 401, Body: map[string]string{"error": "sign in to look up your user"}}, nil
	}
	res, err := aerofn.Query("SELECT * FROM users WHERE id = $1", ev.UserID)
	if err != nil {
		return nil, fmt.Errorf("looking up user %s: %w", ev.UserID, err)
	}
	// Decoding into raw rows returns the row exactly as the host sent it;
	// Rows would turn a bigint column into a float64.
	var rows []json.RawMessage
	if err := res.Decode(&rows); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return aerofn.Response{StatusCode: 404, Body: map[string]string{"error": "user not found"}}, nil
	}
	return rows[0], nil
}

func main() {}

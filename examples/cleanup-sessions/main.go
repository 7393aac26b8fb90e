// Command cleanup-sessions deletes expired sessions (the seed's third use
// case). Deploy it on a schedule such as "0 2 * * *" (daily at 2 AM).
// Schedules run as service_role unless configured otherwise, which is what
// lets it see every user's sessions.
package main

import (
	"fmt"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

func init() {
	aerofn.Handle(cleanup)
}

func cleanup(ev aerofn.Event) (any, error) {
	res, err := aerofn.Query("DELETE FROM sessions WHERE expires_at < NOW()")
	if err != nil {
		return nil, fmt.Errorf("deleting expired sessions: %w", err)
	}
	aerofn.Logf(aerofn.LevelInfo, "deleted %d expired sessions", res.RowCount)
	return map[string]any{"deleted": res.RowCount}, nil
}

func main() {}

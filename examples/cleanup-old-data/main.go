// Command cleanup-old-data deletes log entries older than 30 days (the
// seed's Example 3, "Scheduled Cleanup"). Deploy it on a schedule such as
// "0 3 * * *" (daily at 3 AM). Schedules run as service_role unless
// configured otherwise, which is what lets it see every row.
//
// The age may be changed with the plain value RETENTION_DAYS (POST
// /admin/v1/env, listed in config.env); it defaults to 30.
package main

import (
	"fmt"
	"strconv"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

func init() {
	aerofn.Handle(cleanupOldData)
}

func cleanupOldData(ev aerofn.Event) (any, error) {
	days := 30
	if v, ok := aerofn.Env("RETENTION_DAYS"); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("RETENTION_DAYS %q is not a positive number of days", v)
		}
		days = n
	}
	res, err := aerofn.Query("DELETE FROM logs WHERE created_at < NOW() - make_interval(days => $1)", days)
	if err != nil {
		return nil, fmt.Errorf("deleting old log entries: %w", err)
	}
	aerofn.Logf(aerofn.LevelInfo, "Deleted %d old log entries", res.RowCount)
	return map[string]any{"deleted": res.RowCount, "older_than_days": days}, nil
}

func main() {}

// Command on-user-created gives every new user a profile (the seed's
// Example 2). Deploy it with a database trigger on INSERT into users. The
// display name is the part of the email before the "@". Events are
// delivered at least once, so the insert is ON CONFLICT DO NOTHING: a
// redelivered event finds the profile already there and changes nothing
// (profiles.user_id needs a unique constraint for that).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

func init() {
	aerofn.Handle(onUserCreated)
}

func onUserCreated(ev aerofn.Event) (any, error) {
	if ev.Trigger != aerofn.TriggerDatabase || ev.Table != "users" || ev.Operation != aerofn.Insert {
		aerofn.Logf(aerofn.LevelWarn, "ignoring %s event on %q (%s): want INSERT on users", ev.Trigger, ev.Table, ev.Operation)
		return nil, nil
	}
	var user struct {
		// The id goes back to Postgres as the JSON it came in, so a
		// uuid and a bigint key work alike.
		ID    json.RawMessage `json:"id"`
		Email string          `json:"email"`
	}
	if err := ev.DecodeNew(&user); err != nil {
		return nil, err
	}
	if len(user.ID) == 0 || string(user.ID) == "null" {
		return nil, errors.New("new users row has no id")
	}
	var displayName any // NULL when there is no email
	if user.Email != "" {
		name, _, _ := strings.Cut(user.Email, "@")
		displayName = name
	}
	res, err := aerofn.Query(
		"INSERT INTO profiles (user_id, display_name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
		user.ID, displayName)
	if err != nil {
		return nil, fmt.Errorf("creating profile for user %s: %w", user.ID, err)
	}
	return map[string]any{"user_id": user.ID, "profile_created": res.RowCount == 1}, nil
}

func main() {}

// Command send-welcome-email sends a welcome email to every new user (the
// seed's use case 1). Deploy it with a database trigger on INSERT into
// users; it reads the user back with db_query (so it sees the row as
// committed, whatever the trigger's payload carried) and sends the email
// through an HTTP email API (Resend's shape: POST {from, to, subject, text}
// with "Authorization: Bearer <key>") with http_fetch.
//
// Configuration, read with env() (list the names in config.env):
//
//	EMAIL_API_KEY  secret (POST /admin/v1/secrets): the API key; scrubbed from every output
//	EMAIL_API_URL  plain value (POST /admin/v1/env): e.g. https://api.resend.com/emails
//	EMAIL_FROM     plain value, optional: the sender (default "AeroDB <welcome@example.com>")
//
// and allow the API's host in config.allowed_hosts. Events are delivered at
// least once, so the request carries an Idempotency-Key made of the event
// id: an API that honours it (Resend does) sends one email per user even
// when a delivery is retried.
package main

import (
	"encoding/json"
	"errors"
	"fmt"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

func init() {
	aerofn.Handle(sendWelcome)
}

type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

func sendWelcome(ev aerofn.Event) (any, error) {
	if ev.Trigger != aerofn.TriggerDatabase || ev.Table != "users" || ev.Operation != aerofn.Insert {
		aerofn.Logf(aerofn.LevelWarn, "ignoring %s event on %q (%s): want INSERT on users", ev.Trigger, ev.Table, ev.Operation)
		return nil, nil
	}
	var created struct {
		ID json.RawMessage `json:"id"`
	}
	if err := ev.DecodeNew(&created); err != nil {
		return nil, err
	}
	if len(created.ID) == 0 || string(created.ID) == "null" {
		return nil, errors.New("new users row has no id")
	}
	res, err := aerofn.Query("SELECT id::text AS id, email, coalesce(name, '') AS name FROM users WHERE id = $1", created.ID)
	if err != nil {
		return nil, fmt.Errorf("reading user %s: %w", created.ID, err)
	}
	var users []user
	if err := res.Decode(&users); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		// Deleted since, or not visible to the role the call acts as.
		aerofn.Logf(aerofn.LevelWarn, "user %s not found; no email sent", created.ID)
		return map[string]any{"sent": false, "reason": "user not found"}, nil
	}
	u := users[0]
	if u.Email == "" {
		return map[string]any{"sent": false, "reason": "no email address"}, nil
	}

	key, ok := aerofn.Env("EMAIL_API_KEY")
	if !ok || key == "" {
		return nil, errors.New("EMAIL_API_KEY is not set or not in config.env")
	}
	url, ok := aerofn.Env("EMAIL_API_URL")
	if !ok || url == "" {
		return nil, errors.New("EMAIL_API_URL is not set or not in config.env")
	}
	from, ok := aerofn.Env("EMAIL_FROM")
	if !ok || from == "" {
		from = "AeroDB <welcome@example.com>"
	}
	greeting := "Hello"
	if u.Name != "" {
		greeting += " " + u.Name
	}
	body, err := json.Marshal(map[string]any{
		"from":    from,
		"to":      []string{u.Email},
		"subject": "Welcome to AeroDB!",
		"text":    greeting + ",\n\nwelcome to AeroDB! Your account is ready.\n",
	})
	if err != nil {
		return nil, err
	}
	resp, err := aerofn.Fetch(aerofn.FetchRequest{
		URL: url, Method: "POST", Body: string(body),
		Headers: map[string]string{
			"authorization":   "Bearer " + key,
			"content-type":    "application/json",
			"idempotency-key": "welcome-" + ev.EventID,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("calling the email API: %w", err)
	}
	if resp.Status < 200 || resp.Status > 299 {
		// An error makes the delivery retry with backoff.
		return nil, fmt.Errorf("the email API answered %d: %.200s", resp.Status, resp.Body)
	}
	var sent struct {
		ID string `json:"id"`
	}
	_ = resp.DecodeJSON(&sent)
	aerofn.Logf(aerofn.LevelInfo, "sent welcome email to user %s (email id %q)", u.ID, sent.ID)
	return map[string]any{"sent": true, "user_id": u.ID, "email_id": sent.ID}, nil
}

func main() {}

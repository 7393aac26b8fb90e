package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/registry"
)

type invokeFlags struct {
	method, path, data, dataFile, as, event string
	headers, query                          []string
	include                                 bool
}

const invokeLong = `Call a function and print its response body.

Without --event the call goes over HTTP, exactly as a client's would:
--method (default POST), --path (after the function's name), --query,
--header and a body from --data or --data-file (- for stdin). It acts as
--as:

  anon        the anon key (the default, as a browser client calls):
              AEROFN_ANON_KEY, anon_key in the profile, or one signed with
              AEROFN_JWT_SECRET
  user:UUID   an authenticated user, with a token signed with the server's
              JWT secret (AEROFN_JWT_SECRET or jwt_secret in the profile)
  service     the service key, which bypasses row-level security

With --event database|schedule|webhook the function runs as that trigger would
run it (POST /admin/v1/functions/NAME/invoke, recorded with that trigger),
whether or not it has such a trigger. The event is generated in the shape the
trigger sends (from the function's own trigger config when it has one: table,
operation, cron); --data's JSON object replaces fields of it, so a whole
payload can be given too. --as user:UUID sets a database event's writer.
The function's result is printed; -o json prints the whole outcome with its
log lines.

Exit status: 0 for a 2xx answer (or a successful event call), 2 otherwise.`

func newInvoke(stdout io.Writer) *cobra.Command {
	var f clientFlags
	var o outputFlag
	var fl invokeFlags
	cmd := &cobra.Command{
		Use:   "invoke NAME",
		Short: "Call a function over HTTP (as anon by default), or run it with a database, schedule or webhook event",
		Long:  invokeLong,
		Example: `  aerofn invoke hello --data '{"name": "Ada"}'
  aerofn invoke hello --as user:6f1c2a3e-0000-4000-8000-000000000001
  aerofn invoke api --method GET --path /users/7 --query fields=name --header 'Accept: application/json'
  aerofn invoke upload --data-file photo.jpg --header 'Content-Type: image/jpeg'
  aerofn invoke on-user-created --event database --data '{"new": {"id": 7, "email": "a@example.com"}}'
  aerofn invoke nightly --event schedule -o json
  aerofn invoke stripe --event webhook --data-file event.json`,
		Args: exactArgs(1, "give the function's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			body, hasBody, err := fl.body()
			if err != nil {
				return err
			}
			if fl.event != "" {
				return invokeEvent(c, &o, stdout, args[0], fl, body, hasBody)
			}
			return invokeHTTP(c, stdout, args[0], fl, body, hasBody)
		},
	}
	f.bind(cmd)
	o.bind(cmd)
	fs := cmd.Flags()
	fs.StringVarP(&fl.method, "method", "X", "POST", "HTTP method")
	fs.StringVar(&fl.path, "path", "", "path after the function's name, e.g. /users/7")
	fs.StringArrayVarP(&fl.headers, "header", "H", nil, "request header 'Name: value' (repeatable)")
	fs.StringArrayVarP(&fl.query, "query", "q", nil, "query parameter name=value (repeatable)")
	fs.StringVarP(&fl.data, "data", "d", "", "request body (HTTP), or JSON fields of the event (--event)")
	fs.StringVar(&fl.dataFile, "data-file", "", "read the body from a file (- for stdin)")
	fs.StringVar(&fl.as, "as", "anon", "act as anon, user:UUID or service")
	fs.StringVar(&fl.event, "event", "", "run as a database, schedule or webhook trigger with a generated or given event")
	fs.BoolVarP(&fl.include, "include", "i", false, "print the HTTP status line and headers before the body")
	return cmd
}

func (fl invokeFlags) body() ([]byte, bool, error) {
	switch {
	case fl.data != "" && fl.dataFile != "":
		return nil, false, errors.New("give --data or --data-file, not both")
	case fl.dataFile == "-":
		b, err := io.ReadAll(os.Stdin)
		return b, true, err
	case fl.dataFile != "":
		b, err := os.ReadFile(fl.dataFile)
		return b, true, err
	}
	return []byte(fl.data), fl.data != "", nil
}

// token is the bearer token --as asks for.
func (c *client) tokenAs(as string) (string, error) {
	switch {
	case as == "service" || as == "service_role":
		return c.token, nil
	case as == "anon":
		if c.anonKey != "" {
			return c.anonKey, nil
		}
		if c.jwtSecret == "" {
			return "", errors.New("--as anon sends the anon key, which is not known here: set AEROFN_ANON_KEY " +
				"(aerofn keys prints it where AEROFN_JWT_SECRET is set), set AEROFN_JWT_SECRET, add anon_key to your profile, or use --as service")
		}
		return auth.Sign(c.jwtSecret, auth.RoleAnon, "", time.Hour)
	case strings.HasPrefix(as, "user:"):
		sub := strings.TrimPrefix(as, "user:")
		if sub == "" {
			return "", errors.New("--as user:UUID needs the user's id after user:")
		}
		if c.jwtSecret == "" {
			return "", errors.New("--as user:UUID signs a user token with the server's JWT secret: set AEROFN_JWT_SECRET " +
				"or jwt_secret in your profile (or call with a token of your own: --header 'Authorization: Bearer ...')")
		}
		return auth.Sign(c.jwtSecret, auth.RoleAuthenticated, sub, time.Hour)
	}
	return "", fmt.Errorf("--as %q: use anon, user:UUID or service", as)
}

func splitHeader(h string) (string, string, error) {
	k, v, ok := strings.Cut(h, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return "", "", fmt.Errorf("--header %q is not 'Name: value'", h)
	}
	return strings.TrimSpace(k), strings.TrimSpace(v), nil
}

func invokeHTTP(c *client, stdout io.Writer, name string, fl invokeFlags, body []byte, hasBody bool) error {
	tok, err := c.tokenAs(fl.as)
	if err != nil {
		return err
	}
	u := c.url + "/functions/v1/" + url.PathEscape(name)
	if fl.path != "" {
		u += "/" + strings.TrimPrefix(fl.path, "/")
	}
	if len(fl.query) > 0 {
		q := url.Values{}
		for _, kv := range fl.query {
			k, v, _ := strings.Cut(kv, "=")
			q.Add(k, v)
		}
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if hasBody {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(strings.ToUpper(fl.method), u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if hasBody {
		if json.Valid(body) {
			req.Header.Set("Content-Type", "application/json")
		} else {
			req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	for _, h := range fl.headers {
		k, v, err := splitHeader(h)
		if err != nil {
			return err
		}
		req.Header.Add(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the aerofn server at %s (%v): is `aerofn serve` running there? Set --url or AEROFN_URL", c.url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if fl.include {
		fmt.Fprintf(stdout, "%s %s\n", resp.Proto, resp.Status)
		keys := make([]string, 0, len(resp.Header))
		for k := range resp.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, v := range resp.Header[k] {
				fmt.Fprintf(stdout, "%s: %s\n", k, v)
			}
		}
		fmt.Fprintln(stdout)
	}
	_, _ = stdout.Write(b)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		fmt.Fprintln(stdout)
	}
	if resp.StatusCode >= 300 {
		hint := ""
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			hint = " (the call acted as " + fl.as + "; try another --as, or check the function's verify_jwt)"
		case http.StatusNotFound:
			hint = " (aerofn ls lists the functions; a disabled one answers 404 too)"
		}
		return &exitError{code: 2, err: fmt.Errorf("HTTP %d%s", resp.StatusCode, hint)}
	}
	return nil
}

// generatedEvent is the event a trigger would send, from the function's
// trigger config where it has one.
func generatedEvent(trigger string, fn registry.Function, fl invokeFlags) (map[string]any, error) {
	now := time.Now().UTC()
	var trig *registry.Trigger
	for i := range fn.Config.Triggers {
		if fn.Config.Triggers[i].Type == trigger {
			trig = &fn.Config.Triggers[i]
			break
		}
	}
	switch trigger {
	case "database":
		schema, table, op := "public", "example", "INSERT"
		if trig != nil && trig.Database != nil {
			d := trig.Database
			if s, t, ok := strings.Cut(d.Table, "."); ok {
				schema, table = s, t
			} else if d.Table != "" {
				table = d.Table
			}
			if len(d.Events) > 0 {
				op = strings.ToUpper(d.Events[0])
			}
		}
		row := map[string]any{"id": 1}
		ev := map[string]any{"schema": schema, "table": table, "operation": op, "old": nil, "new": row,
			"event_id": strconv.FormatInt(now.UnixMicro(), 10), "timestamp": now.Format(time.RFC3339Nano), "attempt": 1, "txid": "0"}
		switch op {
		case "UPDATE":
			ev["old"] = row
		case "DELETE":
			ev["old"], ev["new"] = row, nil
		}
		if strings.HasPrefix(fl.as, "user:") {
			ev["user_id"], ev["role"] = strings.TrimPrefix(fl.as, "user:"), string(auth.RoleAuthenticated)
		} else if fl.as == "service" {
			ev["role"] = string(auth.RoleService)
		}
		return ev, nil
	case "schedule":
		cron, tz := "@every 1m", ""
		if trig != nil && trig.Schedule != nil {
			cron, tz = trig.Schedule.Cron, trig.Schedule.Timezone
		}
		ev := map[string]any{"cron": cron, "scheduled_time": now.Truncate(time.Second).Format(time.RFC3339Nano),
			"actual_time": now.Format(time.RFC3339Nano)}
		if tz != "" {
			ev["timezone"] = tz
		}
		return ev, nil
	case "webhook":
		headers := map[string]string{"content-type": "application/json"}
		for _, h := range fl.headers {
			k, v, err := splitHeader(h)
			if err != nil {
				return nil, err
			}
			headers[strings.ToLower(k)] = v
		}
		return map[string]any{"headers": headers, "body": map[string]any{}, "timestamp": now.Format(time.RFC3339Nano),
			"delivery_id": "cli-" + uuid.NewString()}, nil
	}
	return nil, fmt.Errorf("--event %q: use database, schedule or webhook", trigger)
}

// eventResult is POST /admin/v1/functions/{name}/invoke's answer.
type eventResult struct {
	InvocationID string          `json:"invocation_id"`
	Status       string          `json:"status"`
	Result       json.RawMessage `json:"result"`
	Error        string          `json:"error"`
}

func invokeEvent(c *client, o *outputFlag, stdout io.Writer, name string, fl invokeFlags, body []byte, hasBody bool) error {
	var fn registry.Function
	if err := c.getJSON(fnPath(name), &fn); err != nil {
		return err
	}
	ev, err := generatedEvent(fl.event, fn, fl)
	if err != nil {
		return err
	}
	if hasBody {
		var given map[string]json.RawMessage
		if err := json.Unmarshal(body, &given); err != nil {
			return fmt.Errorf("with --event, --data is a JSON object of event fields (e.g. '{\"new\": {\"id\": 7}}'): %v", err)
		}
		for k, v := range given {
			ev[k] = v
		}
	}
	b, err := c.json("POST", fnPath(name, "invoke"), map[string]any{"trigger": fl.event, "event": ev})
	if err != nil {
		return err
	}
	var res eventResult
	if err := json.Unmarshal(b, &res); err != nil {
		return err
	}
	asJSON, err := o.json(stdout)
	if err != nil {
		return err
	}
	if asJSON && o.format == "json" {
		printJSON(stdout, b)
	} else {
		printJSON(stdout, res.Result)
	}
	if res.Status != "success" {
		return &exitError{code: 2, err: fmt.Errorf("the %s call ended %s: %s (aerofn logs %s shows its log lines)", fl.event, res.Status, res.Error, name)}
	}
	return nil
}

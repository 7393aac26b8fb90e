package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/aerodb/aerofn/internal/records"
)

func newLogs(stdout io.Writer) *cobra.Command {
	var f clientFlags
	var o outputFlag
	var status, since string
	var limit int
	var stats, follow bool
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Show a function's invocations with their log lines; -f follows new ones live",
		Long: `Show a function's recent invocations, newest first, each with its log lines.

-f (--follow) streams every invocation as it finishes, from every node, until
interrupted (GET /admin/v1/functions/NAME/logs?follow=true, Server-Sent Events).
It starts with those of the last 10 seconds (--since sets another start), so a
call made while it connects is not missed.
With -o json each invocation is one JSON object (one per line with -f).
--stats shows counts, success rate and duration percentiles instead.`,
		Example: `  aerofn logs hello
  aerofn logs hello -f
  aerofn logs hello --status error --since 1h
  aerofn logs hello --since 2026-01-02T15:04:05Z -o json
  aerofn logs hello --stats`,
		Args: exactArgs(1, "give the function's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if since != "" {
				q.Set("since", since)
			}
			if stats {
				return show(c, &o, stdout, fnPath(args[0], "stats")+"?"+q.Encode(), func(t *tabwriter.Writer, m map[string]any) error {
					for _, k := range slices.Sorted(maps.Keys(m)) {
						v, _ := json.Marshal(m[k])
						row(t, k, string(v))
					}
					return nil
				})
			}
			if status != "" {
				q.Set("status", status)
			}
			if follow {
				q.Set("follow", "true")
				if since == "" {
					// What finished a moment before the stream began, in
					// the server's clock: a call made as the follower
					// starts (in the background, say) is not missed.
					q.Set("since", followBacklog.String())
				}
				asJSON, err := o.json(stdout)
				if err != nil {
					return err
				}
				return followLogs(cmd.Context(), c, fnPath(args[0], "logs")+"?"+q.Encode(), stdout, asJSON)
			}
			q.Set("limit", strconv.Itoa(limit))
			return show(c, &o, stdout, fnPath(args[0], "logs")+"?"+q.Encode(), func(t *tabwriter.Writer, recs []records.Record) error {
				if len(recs) == 0 {
					fmt.Fprintf(t, "(no invocations of %s in this window: aerofn invoke %s calls it, --since widens the window)\n", args[0], args[0])
				}
				for _, r := range recs {
					printRecord(t, r)
				}
				return nil
			})
		},
	}
	f.bind(cmd)
	o.bind(cmd)
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream invocations as they finish, until interrupted")
	cmd.Flags().StringVar(&status, "status", "", "only success, error, timeout, memory_exceeded or interrupted")
	cmd.Flags().StringVar(&since, "since", "", "a duration (10m, 1h) or an RFC 3339 time")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many invocations (1-1000)")
	cmd.Flags().BoolVar(&stats, "stats", false, "show counts, success rate and percentiles instead")
	return cmd
}

// printRecord writes one invocation and its log lines.
func printRecord(w io.Writer, r records.Record) {
	user := r.UserID
	if user == "" {
		user = "-"
	}
	line := fmt.Sprintf("%s  %-8s %-16s v%d  %7.1fms  %s/%s", r.Timestamp.Local().Format("2006-01-02 15:04:05.000"),
		r.Trigger, r.Status, r.Version, r.DurationMS, r.Role, user)
	if r.HTTPStatus != 0 {
		line += fmt.Sprintf("  http %d", r.HTTPStatus)
	}
	if r.RequestID != "" {
		line += "  " + r.RequestID
	}
	fmt.Fprintln(w, line)
	for _, l := range r.Logs {
		fmt.Fprintf(w, "    %-5s %s\n", l.Level, l.Message)
	}
	if r.LogsDropped > 0 {
		fmt.Fprintf(w, "    (%d more log lines dropped)\n", r.LogsDropped)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "    error: %s\n", r.Error)
	}
}

// followBacklog is how far back logs -f starts when --since is not given.
const followBacklog = 10 * time.Second

// followLogs reads the Server-Sent Events of a follow request and prints
// each invocation as it comes, until ctx ends or the server closes.
func followLogs(ctx context.Context, c *client, path string, w io.Writer, asJSON bool) error {
	req, err := http.NewRequestWithContext(ctx, "GET", c.url+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	hc := *c.http
	hc.Timeout = 0 // a follow lasts until interrupted
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot reach the aerofn server at %s (%v): is `aerofn serve` running there? Set --url or AEROFN_URL", c.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		e := &apiError{Status: resp.StatusCode, Method: "GET", Path: strings.SplitN(path, "?", 2)[0]}
		var body struct{ Code, Message string }
		if json.Unmarshal(b, &body) == nil {
			e.Code, e.Message = body.Code, body.Message
		}
		return e
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("the server answered %s, not a stream: it is older than this aerofn and cannot follow logs; drop -f", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var event string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			switch {
			case event == "invocation" || (event == "" && data.Len() > 0):
				if err := printFollowed(w, []byte(data.String()), asJSON); err != nil {
					return err
				}
			case event == "dropped":
				var d struct {
					Dropped int `json:"dropped"`
				}
				_ = json.Unmarshal([]byte(data.String()), &d)
				if asJSON {
					fmt.Fprintln(w, data.String())
				} else {
					fmt.Fprintf(w, "(%d invocations skipped: they came faster than this follower read them; aerofn logs lists them)\n", d.Dropped)
				}
			}
			event = ""
			data.Reset()
		case strings.HasPrefix(line, ":"): // a comment: keep-alive
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("following logs: %w", err)
	}
	return nil
}

func printFollowed(w io.Writer, data []byte, asJSON bool) error {
	if asJSON {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("decoding a followed invocation: %w", err)
		}
		b, _ := json.Marshal(v)
		_, err := fmt.Fprintln(w, string(b))
		return err
	}
	var r records.Record
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("decoding a followed invocation: %w", err)
	}
	if r.Timestamp.IsZero() {
		r.Timestamp = time.Now()
	}
	printRecord(w, r)
	return nil
}

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/config"
	"github.com/aerodb/aerofn/internal/testenv"
)

// sseEvent is one Server-Sent Event, or a comment (event "comment").
type sseEvent struct {
	Event string
	Data  string
}

type sseStream struct {
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

// follow opens a live log stream and waits for its ": following" comment
// (after which every call is streamed).
func follow(t *testing.T, e *testenv.Env, path string, header http.Header) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.ServiceKey)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{resp: resp, events: make(chan sseEvent, 100), cancel: cancel}
	t.Cleanup(s.close)
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				s.events <- sseEvent{Event: "comment", Data: strings.TrimSpace(line[1:])}
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.Data += line[len("data: "):]
			}
		}
	}()
	if ev := s.next(t, 10*time.Second); ev.Event != "comment" || ev.Data != "following" {
		t.Fatalf("first event %+v, want the following comment", ev)
	}
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next event; a closed stream gives Event "eof".
func (s *sseStream) next(t *testing.T, d time.Duration) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			return sseEvent{Event: "eof"}
		}
		return ev
	case <-time.After(d):
		t.Fatalf("no event within %v", d)
		return sseEvent{}
	}
}

// invocation returns the next invocation event's record, skipping pings.
func (s *sseStream) invocation(t *testing.T) map[string]any {
	t.Helper()
	for {
		ev := s.next(t, 10*time.Second)
		switch ev.Event {
		case "comment":
			continue
		case "invocation":
			var m map[string]any
			if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
				t.Fatalf("decoding %q: %v", ev.Data, err)
			}
			return m
		default:
			t.Fatalf("event %+v, want an invocation", ev)
		}
	}
}

// TestLiveLogsFollowCallsOfEveryNode: a stream opened on one node receives
// the calls made on another node sharing the database, with the function's
// own log lines (secrets redacted), filtered by function and status; with
// since, the stored records come first.
func TestLiveLogsFollowCallsOfEveryNode(t *testing.T) {
	a := testenv.Start(t)
	b := testenv.StartOn(t, a.DatabaseURL)
	const secret = "sk_live_follow_secret_4242"
	if r := a.JSONRequest("POST", "/admin/v1/secrets", a.ServiceKey, map[string]string{"API_KEY": secret}); r.Status != 200 {
		t.Fatalf("set secret: %d %s", r.Status, r.Body)
	}
	mod := compile(t, watEnv)
	a.MustDeploy("allowed", mod, map[string]any{"env": []string{"API_KEY"}})
	a.MustDeploy("denied", mod, nil)

	one := follow(t, a, "/admin/v1/functions/allowed/logs?follow=true", nil)
	errs := follow(t, a, "/admin/v1/logs?status=error", http.Header{"Accept": {"text/event-stream"}})

	if r := b.Invoke("allowed", b.AnonKey, nil); r.Status != 200 {
		t.Fatalf("invoking on b: %d %s", r.Status, r.Body)
	}
	rec := one.invocation(t)
	logs, _ := json.Marshal(rec["logs"])
	if rec["function"] != "allowed" || rec["status"] != "success" || !strings.Contains(string(logs), "[REDACTED]") || strings.Contains(string(logs), secret) {
		t.Fatalf("streamed record %v", rec)
	}
	if r := b.Invoke("denied", b.AnonKey, nil); r.Status != 500 {
		t.Fatalf("invoking denied: %d %s", r.Status, r.Body)
	}
	if r := a.Invoke("allowed", a.AnonKey, nil); r.Status != 200 {
		t.Fatalf("invoking on a: %d %s", r.Status, r.Body)
	}
	// The global error stream gets denied's failure, not allowed's calls;
	// the function's stream gets its next call, not denied's.
	if rec := errs.invocation(t); rec["function"] != "denied" || rec["status"] != "error" || !strings.Contains(rec["error"].(string), "API_KEY") {
		t.Fatalf("error stream: %v", rec)
	}
	if rec := one.invocation(t); rec["function"] != "allowed" {
		t.Fatalf("function stream: %v", rec)
	}

	// since: the stored records first (oldest first), then what comes.
	back := follow(t, b, "/admin/v1/functions/allowed/logs?follow=true&since=1h", nil)
	first, second := back.invocation(t), back.invocation(t)
	if first["id"] == second["id"] || first["timestamp"].(string) > second["timestamp"].(string) {
		t.Fatalf("backlog out of order: %v then %v", first, second)
	}
	if r := b.Invoke("allowed", b.AnonKey, nil); r.Status != 200 {
		t.Fatalf("invoking: %d %s", r.Status, r.Body)
	}
	if rec := back.invocation(t); rec["id"] == first["id"] || rec["id"] == second["id"] {
		t.Fatalf("live record repeats the backlog: %v", rec)
	}
}

// TestLiveLogsBadFiltersAndHeartbeat: bad parameters are refused as JSON;
// an idle stream sends pings.
func TestLiveLogsBadFiltersAndHeartbeat(t *testing.T) {
	e := testenv.Start(t)
	for path, code := range map[string]string{
		"/admin/v1/functions/x/logs?follow=maybe":            "invalid_follow",
		"/admin/v1/functions/x/logs?follow=true&status=nope": "invalid_status",
		"/admin/v1/logs?follow=true&since=yesterday":         "invalid_since",
	} {
		if r := e.Do("GET", path, e.ServiceKey, "", nil); r.Status != 400 || r.Code() != code {
			t.Errorf("GET %s: %d %s, want 400 %s", path, r.Status, r.Body, code)
		}
	}
	if r := e.Do("GET", "/admin/v1/logs?follow=true", e.AnonKey, "", nil); r.Status != 403 {
		t.Errorf("anon follow: %d %s", r.Status, r.Body)
	}
	e.Server.API.SetHeartbeat(50 * time.Millisecond)
	s := follow(t, e, "/admin/v1/logs?follow=true", nil)
	if ev := s.next(t, 5*time.Second); ev.Event != "comment" || ev.Data != "ping" {
		t.Fatalf("idle stream sent %+v, want a ping", ev)
	}
}

// TestLiveLogsClientLeavingAndStop: a client that leaves frees its
// subscription; Stop ends open streams at once instead of waiting for them.
func TestLiveLogsClientLeavingAndStop(t *testing.T) {
	e := testenv.Start(t)
	s1 := follow(t, e, "/admin/v1/logs?follow=true", nil)
	follow(t, e, "/admin/v1/logs?follow=true", nil)
	if n := e.Server.Follower.Subscribers(); n != 2 {
		t.Fatalf("%d subscribers, want 2", n)
	}
	s1.close()
	deadline := time.Now().Add(5 * time.Second)
	for e.Server.Follower.Subscribers() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers after a client left, want 1", e.Server.Follower.Subscribers())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s2 := follow(t, e, "/admin/v1/functions/any/logs?follow=true", nil)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Server.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("stop took %v with streams open", took)
	}
	for {
		if ev := s2.next(t, 5*time.Second); ev.Event == "eof" {
			break
		}
	}
}

// TestRetentionKeepsTheNewestPerFunction: a node configured with
// AEROFN_RECORDS_MAX_PER_FUNCTION prunes a function's older records; the
// list keeps the newest, stats still count every call.
func TestRetentionKeepsTheNewestPerFunction(t *testing.T) {
	e := testenv.Start(t, testenv.Options{Config: func(c *config.Config) { c.RecordsMaxPerFunction = 2 }})
	e.MustDeploy("echo", compile(t, watEcho), nil)
	e.MustDeploy("other", compile(t, watEcho), nil)
	for range 5 {
		if r := e.Invoke("echo", e.AnonKey, map[string]int{"a": 1}); r.Status != 200 {
			t.Fatalf("invoking: %d %s", r.Status, r.Body)
		}
		time.Sleep(2 * time.Millisecond) // distinct start times
	}
	if r := e.Invoke("other", e.AnonKey, map[string]int{"a": 1}); r.Status != 200 {
		t.Fatalf("invoking other: %d %s", r.Status, r.Body)
	}
	e.Flush()
	before := e.Do("GET", "/admin/v1/functions/echo/logs", e.ServiceKey, "", nil)
	res, err := e.Server.Pruner.PruneOnce(context.Background())
	if err != nil || res.ByCount != 3 {
		t.Fatalf("pruned %+v, %v; want 3 by count", res, err)
	}
	var all, kept []map[string]any
	_ = json.Unmarshal(before.Body, &all)
	_ = json.Unmarshal(e.Do("GET", "/admin/v1/functions/echo/logs", e.ServiceKey, "", nil).Body, &kept)
	if len(all) != 5 || len(kept) != 2 || kept[0]["id"] != all[0]["id"] || kept[1]["id"] != all[1]["id"] {
		t.Fatalf("kept %v of %v, want the newest 2", kept, all)
	}
	var other []map[string]any
	_ = json.Unmarshal(e.Do("GET", "/admin/v1/functions/other/logs", e.ServiceKey, "", nil).Body, &other)
	if len(other) != 1 {
		t.Fatalf("other function has %d records, want 1", len(other))
	}
	if st := e.Do("GET", "/admin/v1/functions/echo/stats", e.ServiceKey, "", nil).JSON(t); st["count"] != 5.0 {
		t.Fatalf("stats after pruning: %v, want count 5", st)
	}
}

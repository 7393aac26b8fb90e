package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/records"
)

// DefaultHeartbeat is how often a live log stream with nothing to send
// writes an SSE comment, so that proxies and load balancers keep it open.
const DefaultHeartbeat = 15 * time.Second

// SetHeartbeat changes the live log streams' heartbeat (tests shorten it).
func (a *API) SetHeartbeat(d time.Duration) { a.heartbeat.Store(int64(d)) }

// logsQuery reads the filters shared by the logs list and its live stream:
// status, trigger, since (a duration back from now such as 10m, or an
// RFC 3339 time) and limit.
func logsQuery(r *http.Request, function string) (records.Query, error) {
	since, err := sinceParam(r, 7*24*time.Hour)
	if err != nil {
		return records.Query{}, err
	}
	q := records.Query{Function: function, Status: r.URL.Query().Get("status"), Trigger: r.URL.Query().Get("trigger"), Since: since}
	if q.Limit, err = limitParam(r, 0); err != nil {
		return q, err
	}
	if q.Status != "" {
		switch engine.Status(q.Status) {
		case engine.StatusSuccess, engine.StatusError, engine.StatusTimeout, engine.StatusMemoryExceeded, engine.StatusInterrupted:
		default:
			return q, badRequest("invalid_status", "status %q is not success, error, timeout, memory_exceeded or interrupted", q.Status)
		}
	}
	return q, nil
}

// wantsFollow: ?follow=true, or no follow parameter and an Accept header
// naming text/event-stream.
func wantsFollow(r *http.Request) (bool, error) {
	if v := r.URL.Query().Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, badRequest("invalid_follow", "follow %q is not true or false", v)
		}
		return b, nil
	}
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream"), nil
}

// logs serves GET /admin/v1/functions/{name}/logs and, for every function,
// GET /admin/v1/logs (name ""): the newest records as a JSON array, or a
// live stream of them (see follow).
func (a *API) logs(w http.ResponseWriter, r *http.Request, name string) error {
	q, err := logsQuery(r, name)
	if err != nil {
		return err
	}
	follow, err := wantsFollow(r)
	if err != nil {
		return err
	}
	if follow {
		return a.follow(w, r, q)
	}
	recs, err := a.cfg.Records.Recent(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, recs)
	return nil
}

// follow streams records as Server-Sent Events until the client leaves or
// the server stops:
//
//	: following            (once subscribed: calls made from now on are sent)
//	event: invocation      (one per record, the JSON of a logs entry)
//	data: {...}
//	event: dropped         (records skipped because the client read too slowly)
//	data: {"dropped":N}
//	: ping                 (every heartbeat while idle)
//
// Records come from every node sharing the database. With since given, the
// stored records since then (newest limit, oldest first) come first.
func (a *API) follow(w http.ResponseWriter, r *http.Request, q records.Query) error {
	if a.cfg.Follower == nil {
		return apiError(http.StatusNotImplemented, "not_supported", "live logs are not available on this server")
	}
	ctx := r.Context()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	sub, err := a.cfg.Follower.Subscribe(sctx, records.Filter{Function: q.Function, Status: q.Status, Trigger: q.Trigger})
	cancel()
	if err != nil {
		e := apiError(http.StatusServiceUnavailable, "unavailable", "live logs: %v", err)
		if !errors.Is(err, records.ErrStopped) {
			e.RetryAfter = 1
		}
		return e
	}
	defer sub.Close()
	var backlog []records.Record
	if r.URL.Query().Get("since") != "" {
		if backlog, err = a.cfg.Records.Recent(ctx, q); err != nil {
			return err
		}
		slices.Reverse(backlog)
	}
	seen := make(map[string]bool, len(backlog))
	for _, rec := range backlog {
		seen[rec.ID] = true
	}

	rc := http.NewResponseController(w)
	// The server's read timeout would otherwise end the stream: after the
	// request is read, the connection is only watched for the client leaving.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, ": following\n\n"); err != nil {
		return nil
	}
	for _, rec := range backlog {
		if err := writeEvent(w, "invocation", rec); err != nil {
			return nil
		}
	}
	if err := rc.Flush(); err != nil {
		return nil
	}
	beat := time.Duration(a.heartbeat.Load())
	if beat <= 0 {
		beat = DefaultHeartbeat
	}
	tick := time.NewTicker(beat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case rec, ok := <-sub.Records:
			if !ok {
				return nil // the server is stopping
			}
			if seen[rec.ID] || rec.Timestamp.Before(q.Since) {
				continue
			}
			if n := sub.Dropped(); n > 0 {
				if err := writeEvent(w, "dropped", map[string]int64{"dropped": n}); err != nil {
					return nil
				}
			}
			if err := writeEvent(w, "invocation", rec); err != nil {
				return nil
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return nil
			}
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

// writeEvent writes one SSE event whose data is v as one line of JSON
// (encoding/json escapes newlines inside strings).
func writeEvent(w http.ResponseWriter, event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
	return err
}

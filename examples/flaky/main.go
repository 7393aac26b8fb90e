// Command flaky fails on demand, for tests of retries, dead letters and
// failure records. The row (a database event's new row, or old for DELETE)
// or the HTTP body decides:
//
//   - "fail": true fails every attempt, so the event ends dead-lettered;
//   - "fail_until": N fails while the delivery attempt is below N, so the
//     event succeeds on attempt N (an HTTP call is attempt 0 and fails
//     whenever N > 0);
//   - anything else succeeds with {"ok": true, "event_id": ..., "attempt": ...}.
//
// A failure returns 1 with the output "failing on purpose: ...". A function
// keeps no state between calls, so the event alone decides.
package main

import (
	"fmt"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

func init() {
	aerofn.Handle(flaky)
}

func flaky(ev aerofn.Event) (any, error) {
	var in struct {
		Fail      bool `json:"fail"`
		FailUntil int  `json:"fail_until"`
	}
	var err error
	switch {
	case ev.Trigger != aerofn.TriggerDatabase:
		err = ev.DecodeBody(&in)
	case ev.Operation == aerofn.Delete:
		err = ev.DecodeOld(&in)
	default:
		err = ev.DecodeNew(&in)
	}
	if err != nil {
		// Not an object with these fields: nothing asked to fail.
		aerofn.Logf(aerofn.LevelDebug, "flaky: %v", err)
	}
	if in.Fail {
		return nil, fmt.Errorf("failing on purpose: fail is true (attempt %d)", ev.Attempt)
	}
	if ev.Attempt < in.FailUntil {
		return nil, fmt.Errorf("failing on purpose: attempt %d is below fail_until %d", ev.Attempt, in.FailUntil)
	}
	return map[string]any{"ok": true, "event_id": ev.EventID, "attempt": ev.Attempt}, nil
}

func main() {}

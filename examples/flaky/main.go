// Command flaky fails on demand, for tests of retries, dead letters and
// failure records. It fails (handler returns 1, output "failing on purpose:
// ...") when
//
//   - a database event's new row has "fail": true, or
//   - an HTTP or webhook body is a JSON object with "fail": true;
//
// and otherwise succeeds with {"ok": true, "event_id": ...}. A function keeps
// no state between calls, so the event alone decides: a failing event fails
// on every redelivery until it is dead-lettered, which is what a retry test
// wants to count.
package main

import (
	"errors"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

func init() {
	aerofn.Handle(flaky)
}

func flaky(ev aerofn.Event) (any, error) {
	var in struct {
		Fail bool `json:"fail"`
	}
	var err error
	if ev.Trigger == aerofn.TriggerDatabase {
		err = ev.DecodeNew(&in)
	} else {
		err = ev.DecodeBody(&in)
	}
	if err != nil {
		// Not an object with a boolean fail: nothing asked to fail.
		in.Fail = false
	}
	if in.Fail {
		return nil, errors.New("failing on purpose: the event has fail=true")
	}
	return map[string]any{"ok": true, "event_id": ev.EventID}, nil
}

func main() {}

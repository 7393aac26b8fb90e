package engine

import (
	"context"
	"testing"
	"time"
)

// stallingEnvHost's env() waits until its context ends, as a secrets
// reload stalled on the database does.
type stallingEnvHost struct {
	fakeHost
	deadline chan bool // whether the context had a deadline, once per call
}

func (h *stallingEnvHost) Env(ctx context.Context, key string) (string, bool) {
	_, ok := ctx.Deadline()
	h.deadline <- ok
	<-ctx.Done()
	return "", false
}

// TestEnvBlockedPastDeadline: an env() lookup is handed the call's deadline
// and a call blocked in it is stopped as timed out at that deadline; while
// it waits it does not hold the engine's only run slot.
func TestEnvBlockedPastDeadline(t *testing.T) {
	e := newEngine(t, Config{MaxRunning: 1})
	m := load(t, e, "env")
	hello := load(t, e, "hello")
	host := &stallingEnvHost{deadline: make(chan bool, 3)}
	other := make(chan Result, 1)
	res := promptly(t, 300*time.Millisecond, func() Result {
		go func() {
			if <-host.deadline {
				other <- run(t, e, hello, "", Limits{}, nil)
			} else {
				t.Error("env() context has no deadline")
				other <- Result{}
			}
		}()
		res := run(t, e, m, "API_KEY", Limits{Timeout: 200 * time.Millisecond}, host)
		if o := <-other; o.Status != StatusSuccess || o.Duration > 150*time.Millisecond {
			t.Errorf("a call beside the stalled env(): %s after %v", o.Status, o.Duration)
		}
		return res
	})
	wantStatus(t, res, StatusTimeout)
}

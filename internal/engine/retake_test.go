package engine

import (
	"context"
	"sync"
	"testing"
	"time"
)

// slowEnvHost answers env() after a pause, as a secrets read that waits on
// the database does; entered is closed when the first lookup begins.
type slowEnvHost struct {
	fakeHost
	entered chan struct{}
	once    sync.Once
}

func (h *slowEnvHost) Env(ctx context.Context, key string) (string, bool) {
	h.once.Do(func() { close(h.entered) })
	time.Sleep(100 * time.Millisecond) // the lookup's own duration, not an ordering
	return "v", true
}

// A call that lent its run token during env() and finds every token taken
// when the host answers waits for one no longer than its own deadline: with
// one token and a loop holding it for 2 s, a call with a 300 ms timeout
// ends as a timeout near 300 ms, not when the loop ends. And the token it
// never got back is not given back either: the loop's next call still
// runs alone.
func TestRetakeTokenBoundedByDeadline(t *testing.T) {
	e := newEngine(t, Config{MaxRunning: 1})
	m, loop := load(t, e, "env"), load(t, e, "loop")
	host := &slowEnvHost{entered: make(chan struct{})}
	done := make(chan Result)
	go func() {
		<-host.entered // the env() call has lent its token
		done <- run(t, e, loop, "", Limits{Timeout: 2 * time.Second}, nil)
	}()
	res := run(t, e, m, "API_KEY", Limits{Timeout: 300 * time.Millisecond}, host)
	if res.Status != StatusTimeout || res.Duration > 800*time.Millisecond {
		t.Fatalf("ended after %v as %s (%v), want a timeout near 300 ms", res.Duration, res.Status, res.Err)
	}
	wantStatus(t, <-done, StatusTimeout)
	if n := len(e.running); n != 0 {
		t.Fatalf("%d run tokens held with no call running", n)
	}
	// The gate still admits one call at a time, no more.
	res = run(t, e, load(t, e, "hello"), "", Limits{}, nil)
	wantStatus(t, res, StatusSuccess)
	if n := len(e.running); n != 0 {
		t.Fatalf("%d run tokens held after a call", n)
	}
}

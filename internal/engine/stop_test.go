package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A call whose context is cancelled with ErrInterrupted (a stopping node)
// ends with StatusInterrupted, whether the guest is in wasm, blocked in a
// host call, or not started yet.
func TestInterruptedByStoppingNode(t *testing.T) {
	e := newEngine(t, Config{})
	blocked := func(ctx context.Context, req []byte) []byte {
		<-ctx.Done()
		return []byte(`{"error":{"code":"timeout","message":"cancelled"}}`)
	}
	for _, c := range []struct {
		name, fixture string
		host          Host
	}{
		{"in wasm", "loop", nil},
		{"in a host call", "hostcalls", &fakeHost{db: blocked}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := load(t, e, c.fixture)
			res := promptly(t, 500*time.Millisecond, func() Result {
				ctx, cancel := context.WithCancelCause(context.Background())
				time.AfterFunc(50*time.Millisecond, func() { cancel(ErrInterrupted) })
				return e.Run(ctx, m, []byte("{}"), Limits{Timeout: 10 * time.Second}, c.host)
			})
			wantStatus(t, res, StatusInterrupted)
			if !errors.Is(res.Err, ErrInterrupted) {
				t.Fatalf("err %v, want ErrInterrupted", res.Err)
			}
		})
	}
	t.Run("before start", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(ErrInterrupted)
		res := e.Run(ctx, load(t, e, "hello"), nil, Limits{}, nil)
		wantStatus(t, res, StatusInterrupted)
	})
}

// Stop is bounded by its context: with a call still running it returns the
// context's error and keeps the epoch ticking, so that the call still ends
// at its deadline and a later Stop succeeds.
func TestStopBoundedByContext(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "loop")
	done := make(chan Result)
	go func() { done <- e.Run(context.Background(), m, nil, Limits{Timeout: time.Second}, nil) }()
	for started := false; !started; time.Sleep(time.Millisecond) {
		e.runMu.Lock()
		started = e.active > 0
		e.runMu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("stop with a call running: %v", err)
	}
	if res := e.Run(context.Background(), m, nil, Limits{}, nil); !errors.Is(res.Err, ErrClosed) {
		t.Fatalf("run after stop: %s %v", res.Status, res.Err)
	}
	select {
	case res := <-done:
		wantStatus(t, res, StatusTimeout)
	case <-time.After(10 * time.Second):
		t.Fatal("the running call never ended: the epoch stopped under it")
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatalf("second stop: %v", err)
	}
}

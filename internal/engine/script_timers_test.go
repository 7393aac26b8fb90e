package engine

import (
	"context"
	"testing"
	"time"
)

// A JavaScript call waiting on a timer sleeps in the host and lends its run
// token: with one token, another call runs to the end while the first one
// sleeps, and the sleeper still ends when its caller goes away.
func TestScriptTimerLendsTheRunGate(t *testing.T) {
	e := newJSEngine(t, Config{MaxRunning: 1})
	sleeper := loadScript(t, e, "timer-sleeper", `var __aerofn_exports = { handler: async function () {
		await db_query("SELECT 1");
		await new Promise(function (r) { setTimeout(r, 60000); });
		return "woke";
	} };`)
	entered := make(chan struct{})
	host := &fakeHost{db: func(context.Context, []byte) []byte {
		close(entered)
		return []byte(`{"rows":[]}`)
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Result, 1)
	go func() { done <- e.Run(ctx, sleeper, []byte(`{}`), Limits{Timeout: 50 * time.Second}, host) }()
	<-entered

	hello := loadScript(t, e, "timer-hello", `var __aerofn_exports = { handler: function () { return "hi"; } };`)
	res := run(t, e, hello, `{}`, Limits{Timeout: 20 * time.Second}, &fakeHost{})
	wantStatus(t, res, StatusSuccess)
	select {
	case r := <-done:
		t.Fatalf("the sleeper ended before it was cancelled: %s %s", r.Status, r.Output)
	default:
	}
	cancel()
	if r := <-done; r.Status == StatusSuccess {
		t.Fatalf("the cancelled sleeper succeeded: %s", r.Output)
	}
}

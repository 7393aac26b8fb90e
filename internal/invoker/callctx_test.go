package invoker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/engine"
	"github.com/aerodb/aerofn/internal/sqlexec"
)

type testKey struct{}

// TestCallContextAsBefore holds the call's context to what
// WithCancelCause(WithoutCancel(caller)) cancelled by an AfterFunc on halt
// gave: the caller's values, not its end or deadline; halt's end and cause.
func TestCallContextAsBefore(t *testing.T) {
	halt, interrupt := context.WithCancelCause(context.Background())
	caller, cancelCaller := context.WithTimeout(context.WithValue(context.Background(), testKey{}, "v"), time.Hour)
	ctx := newCallContext(halt, caller, "fn")

	if ctx.Value(testKey{}) != "v" {
		t.Fatalf("the caller's value: %v", ctx.Value(testKey{}))
	}
	if _, ok := ctx.Deadline(); ok {
		t.Fatal("the caller's deadline reached the call")
	}
	cancelCaller()
	if ctx.Err() != nil || context.Cause(ctx) != nil {
		t.Fatalf("the caller's end reached the call: %v, %v", ctx.Err(), context.Cause(ctx))
	}
	select {
	case <-ctx.Done():
		t.Fatal("done before halt")
	default:
	}

	// What the engine does with it: a watcher that runs when it ends.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { close(fired) })
	defer stop()
	interrupt(engine.ErrInterrupted)
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("a watcher of the call's context did not run when the node halted")
	}
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.Canceled) || !errors.Is(context.Cause(ctx), engine.ErrInterrupted) {
		t.Fatalf("after halt: %v, cause %v", ctx.Err(), context.Cause(ctx))
	}
	// A context derived from it (the engine's host context) ends with it
	// and carries its cause.
	sub, cancel := context.WithDeadline(ctx, time.Now().Add(time.Hour))
	defer cancel()
	if !errors.Is(context.Cause(sub), engine.ErrInterrupted) {
		t.Fatalf("derived context's cause: %v", context.Cause(sub))
	}
}

// TestCallContextNamesFunction: sqlexec reads the function's name from it.
func TestCallContextNamesFunction(t *testing.T) {
	halt, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	ctx := newCallContext(halt, context.Background(), "orders")
	if got := sqlexecFunctionOf(ctx); got != "orders" {
		t.Fatalf("function %q", got)
	}
}

// TestCallContextAllocs: the call's context is one allocation, and a
// watcher of it registers with halt without a channel or map of its own.
func TestCallContextAllocs(t *testing.T) {
	halt, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	caller := context.Background()
	n := testing.AllocsPerRun(100, func() {
		ctx := newCallContext(halt, caller, "fn")
		_ = ctx.Done()
	})
	if n > 1 {
		t.Fatalf("%v allocations for a call's context, want 1", n)
	}
}

func sqlexecFunctionOf(ctx context.Context) string {
	return sqlexec.FunctionOf(ctx)
}

package invoker

import (
	"context"
	"time"

	"github.com/aerodb/aerofn/internal/sqlexec"
)

// callContext is the context a call runs under. It carries the caller's
// values but neither its deadline nor its cancellation (a caller that goes
// away does not cut a call short: its database writes would be left half
// done), ends when the node halts (Invoker.halt) with halt's cause, and
// names the function for sqlexec. It is what
//
//	ctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
//	defer context.AfterFunc(inv.halt, func() { cancel(context.Cause(inv.halt)) })()
//	ctx = sqlexec.WithFunction(ctx, fn.Name)
//
// gave each call, in one allocation instead of about a dozen: Done, Err and
// Deadline are halt's own (so the engine's watcher of the call's context
// registers with halt, and no channel is made per call), and context.Cause
// finds halt through Value. Unlike the per-call context it does not end
// when the call returns; what a call starts that must end with it uses a
// context of its own (the engine's host functions run under one bounded by
// the call's deadline and cancelled when Run returns).
type callContext struct {
	halt   context.Context // a context.WithCancelCause of context.Background
	values context.Context // the caller's
	fn     string
}

func newCallContext(halt, caller context.Context, fn string) *callContext {
	return &callContext{halt: halt, values: caller, fn: fn}
}

func (c *callContext) Deadline() (time.Time, bool) { return c.halt.Deadline() }
func (c *callContext) Done() <-chan struct{}       { return c.halt.Done() }
func (c *callContext) Err() error                  { return c.halt.Err() }

// Value answers halt's own key first: halt, made from Background, has no
// value but the one context.Cause (and context's own bookkeeping) asks for,
// which must be halt's and not that of a canceller among the caller's.
func (c *callContext) Value(key any) any {
	if v := c.halt.Value(key); v != nil {
		return v
	}
	if sqlexec.IsFunctionKey(key) {
		return c.fn
	}
	return c.values.Value(key)
}

func (c *callContext) String() string { return "invoker.callContext(" + c.fn + ")" }

package engine

import (
	"context"
	"reflect"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// BenchmarkEchoPerCall is one call of the echo fixture as the server makes
// it: a request-sized event and a caller context that can be cancelled. It
// reports the process's CPU per call (user and system), which, unlike wall
// time, a busy machine does not inflate much.
func BenchmarkEchoPerCall(b *testing.B) {
	e := newEngine(b, Config{})
	m := load(b, e, "echo")
	in := make([]byte, 400)
	for i := range in {
		in[i] = 'a'
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var r0, r1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	n := 0
	for b.Loop() {
		if res := e.Run(ctx, m, in, Limits{}, nil); res.Status != StatusSuccess {
			b.Fatal(res.Err)
		}
		n++
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	b.ReportMetric(float64(tv(r1.Utime)-tv(r0.Utime))/float64(n), "user-ns/op")
	b.ReportMetric(float64(tv(r1.Stime)-tv(r0.Stime))/float64(n), "sys-ns/op")
}

// TestFastPathInUse fails when a wasmtime-go upgrade changed a layout
// fastcall.go relies on, so calls went back to the slower wasmtime-go path.
func TestFastPathInUse(t *testing.T) {
	if !fastOK {
		t.Fatal("fastcall.go's layouts no longer match wasmtime-go's types; calls take the plain path")
	}
}

// TestExternSizeChecked: a wasmtime-go whose extern differs in size from
// fastcall.go's turns the fast path off instead of letting C write past it.
func TestExternSizeChecked(t *testing.T) {
	type same struct{ _ptr *[32]byte }
	type grown struct{ _ptr *[40]byte }
	type notPtr struct{ _ptr [32]byte }
	if !externSizeOK(reflect.TypeOf(same{})) {
		t.Fatal("an extern of 32 bytes refused")
	}
	if externSizeOK(reflect.TypeOf(grown{})) || externSizeOK(reflect.TypeOf(notPtr{})) {
		t.Fatal("a grown or unexpected extern accepted")
	}
}

// TestEchoCgoCalls bounds the crossings into C of one call of the echo
// fixture (instance, three host calls, close): 66 through wasmtime-go's
// methods, 32 through fastcall.go with Go host functions, 8 with the ABI's
// input and output in C. The engine's epoch ticker also calls
// into C, so the least of several calls counts.
func TestEchoCgoCalls(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "echo")
	in := make([]byte, 400)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	least := int64(1 << 30)
	for range 20 {
		n0 := runtime.NumCgoCall()
		if res := e.Run(ctx, m, in, Limits{}, nil); res.Status != StatusSuccess {
			t.Fatal(res.Err)
		}
		least = min(least, runtime.NumCgoCall()-n0)
	}
	t.Logf("cgo calls per call: %d", least)
	if least > echoCgoCallsMax {
		t.Fatalf("%d cgo calls per call of the echo, want at most %d", least, echoCgoCallsMax)
	}
}

const echoCgoCallsMax = 12

// TestEchoAllocs bounds the Go allocations of one call of the echo fixture
// under a cancellable context, as the server makes it: the interrupter
// lives in the call's state and watches the context without a channel of
// its own, the instance's exports share one allocation, and a host
// function's result is returned in the call's own slice (30 before, 23
// after), and the ABI's input and output are C functions that need no
// wasmtime-go trampoline (14).
func TestEchoAllocs(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "echo")
	in := make([]byte, 400)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := testing.AllocsPerRun(200, func() {
		if res := e.Run(ctx, m, in, Limits{}, nil); res.Status != StatusSuccess {
			t.Fatal(res.Err)
		}
	})
	t.Logf("allocations per call: %.1f", n)
	if n > echoAllocsMax {
		t.Fatalf("%.1f allocations per call of the echo, want at most %d", n, echoAllocsMax)
	}
}

const echoAllocsMax = 18

// TestInterrupterWatcherRacesRelease: the context's watcher may run while
// or after the call releases its interrupter; it must neither write the
// freed flag nor block release (run with -race).
func TestInterrupterWatcherRacesRelease(t *testing.T) {
	e := newEngine(t, Config{})
	m := load(t, e, "echo")
	in := make([]byte, 100)
	for i := range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			if i%2 == 0 {
				runtime.Gosched()
			}
			cancel()
			close(done)
		}()
		res := e.Run(ctx, m, in, Limits{}, nil)
		if res.Status != StatusSuccess && ctx.Err() == nil {
			t.Fatalf("call %d: %v %v", i, res.Status, res.Err)
		}
		<-done
	}
}

package records

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestFunctionLabelsCapped: past MaxFunctionLabels names, calls are counted
// under OtherFunctions, so the series stay bounded however many functions
// come and go; forgetting a deleted function frees its place and its series.
func TestFunctionLabelsCapped(t *testing.T) {
	reg := prometheus.NewRegistry()
	w := NewWriter(WriterConfig{Registry: reg, MaxFunctionLabels: 3, Buffer: 1000})
	for i := range 50 {
		w.Add(Record{Function: fmt.Sprintf("fn-%d", i), Trigger: "http", Status: "success"})
		w.Add(Record{Function: fmt.Sprintf("fn-%d", i), Trigger: "not-a-trigger", Status: "timeout"})
	}
	inv := w.metrics.phase12.invocations
	if n := testutil.CollectAndCount(inv); n != 8 { // 3 names + other, 2 triggers each
		t.Fatalf("%d invocation series, want 8", n)
	}
	if v := testutil.ToFloat64(inv.WithLabelValues(OtherFunctions, "http", "success")); v != 47 {
		t.Fatalf("other: %v, want 47", v)
	}
	if v := testutil.ToFloat64(inv.WithLabelValues("fn-2", "other", "timeout")); v != 1 {
		t.Fatalf("unknown trigger label: %v", v)
	}
	if n := testutil.CollectAndCount(w.metrics.Invocations); n != 8 {
		t.Fatalf("%d aerofn_invocations_total series, want 8", n)
	}
	if v := testutil.ToFloat64(w.metrics.phase12.errors.WithLabelValues("fn-0", ErrorTypeTimeout)); v != 1 {
		t.Fatalf("errors{timeout}: %v", v)
	}

	w.ForgetFunction("fn-1")
	if n := testutil.CollectAndCount(inv); n != 6 {
		t.Fatalf("%d series after forgetting fn-1, want 6", n)
	}
	w.Add(Record{Function: "fn-new", Trigger: "http", Status: "error"})
	if v := testutil.ToFloat64(inv.WithLabelValues("fn-new", "http", "error")); v != 1 {
		t.Fatalf("a freed place is not reused: %v", v)
	}
	if v := testutil.ToFloat64(w.metrics.phase12.errors.WithLabelValues("fn-new", ErrorTypeError)); v != 1 {
		t.Fatalf("errors{error}: %v", v)
	}
	w.Add(Record{Function: "fn-newer", Trigger: "http", Status: "success"})
	if v := testutil.ToFloat64(inv.WithLabelValues(OtherFunctions, "http", "success")); v != 48 {
		t.Fatalf("past the cap again: other %v, want 48", v)
	}
}

// TestSeriesCacheFollowsForget: the series a call counts in are resolved
// once per kind of call and kept; forgetting a function drops its kept
// series (a call after it counts in new ones, which the deletion did not
// orphan), and a function counted under OtherFunctions gets a freed place.
func TestSeriesCacheFollowsForget(t *testing.T) {
	reg := prometheus.NewRegistry()
	w := NewWriter(WriterConfig{Registry: reg, MaxFunctionLabels: 1, Buffer: 1000})
	inv := w.metrics.phase12.invocations
	w.Add(Record{Function: "a", Trigger: "http", Status: "success", HTTPStatus: 201})
	w.Add(Record{Function: "b", Trigger: "http", Status: "success", HTTPStatus: 201})
	w.Add(Record{Function: "a", Trigger: "http", Status: "success", HTTPStatus: 404})
	if v := testutil.ToFloat64(inv.WithLabelValues("a", "http", "success")); v != 2 {
		t.Fatalf("a: %v, want 2", v)
	}
	if v := testutil.ToFloat64(w.metrics.HTTPResponses.WithLabelValues("a", "4xx")); v != 1 {
		t.Fatalf("a 4xx: %v, want 1", v)
	}
	if v := testutil.ToFloat64(inv.WithLabelValues(OtherFunctions, "http", "success")); v != 1 {
		t.Fatalf("other: %v, want 1", v)
	}
	w.ForgetFunction("a")
	w.Add(Record{Function: "b", Trigger: "http", Status: "success", HTTPStatus: 201})
	if v := testutil.ToFloat64(inv.WithLabelValues("b", "http", "success")); v != 1 {
		t.Fatalf("b after a freed its place: %v, want 1", v)
	}
	w.ForgetFunction("b")
	w.Add(Record{Function: "b", Trigger: "http", Status: "timeout"})
	w.Add(Record{Function: "b", Trigger: "http", Status: "timeout"})
	if n := testutil.CollectAndCount(w.metrics.phase12.timeouts); n != 1 {
		t.Fatalf("%d timeout series, want 1", n)
	}
	if v := testutil.ToFloat64(w.metrics.phase12.timeouts.WithLabelValues("b")); v != 2 {
		t.Fatalf("b timeouts after b was forgotten and called again: %v, want 2", v)
	}
	if v := testutil.ToFloat64(w.metrics.Invocations.WithLabelValues("b", "http", "timeout")); v != 2 {
		t.Fatalf("aerofn_invocations_total of b: %v, want 2", v)
	}
}

package main

import "testing"

// A partial run prints its report and leaves BENCHMARKS.md alone unless
// told where to write; a full run writes BENCHMARKS.md.
func TestReportPath(t *testing.T) {
	for _, c := range []struct {
		out, only string
		coldOnly  bool
		want      string
	}{
		{"", "", false, "BENCHMARKS.md"},
		{"", "js", false, "-"},
		{"", "", true, "-"},
		{"x.md", "js", false, "x.md"},
		{"x.md", "", false, "x.md"},
	} {
		if got := reportPath(c.out, c.only, c.coldOnly); got != c.want {
			t.Errorf("reportPath(%q, %q, %v) = %q, want %q", c.out, c.only, c.coldOnly, got, c.want)
		}
	}
}

package main

import (
	"strings"
	"testing"
)

// TestEngineVerdict: the TypeScript engine-time row says why when it misses
// its target.
func TestEngineVerdict(t *testing.T) {
	if got := engineVerdict(1.9, 1.3); got != "met" {
		t.Fatalf("1.9x: %q", got)
	}
	got := engineVerdict(2.2, 0.8)
	if !strings.HasPrefix(got, "NOT met: 2.2x; QuickJS") || !strings.Contains(got, "TS / Go 0.8x") {
		t.Fatalf("2.2x: %q", got)
	}
}

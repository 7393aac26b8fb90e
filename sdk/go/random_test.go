package aerofn

import "testing"

func TestRandDiffersBetweenCalls(t *testing.T) {
	a, b := Rand().Uint64(), Rand().Uint64()
	if a == b {
		t.Fatalf("two generators gave the same first value %d", a)
	}
}

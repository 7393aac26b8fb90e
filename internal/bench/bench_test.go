package bench

import (
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	if m := Median([]float64{3, 1, 2}); m != 2 {
		t.Fatal(m)
	}
	if m := Median([]time.Duration{4, 1, 3, 2}); m != 2 {
		t.Fatal(m) // (2+3)/2 in integer nanoseconds
	}
	if m := Median([]int64(nil)); m != 0 {
		t.Fatal(m)
	}
}

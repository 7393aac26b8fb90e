package records

import (
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestNewIDTimeOrdered: record ids are UUIDv7, so ids made later sort after
// earlier ones and the primary key grows at its right edge.
func TestNewIDTimeOrdered(t *testing.T) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = NewID()
		if i%100 == 0 {
			// Into the next millisecond, so the ids span several.
			for ms := time.Now().UnixMilli(); time.Now().UnixMilli() == ms; {
			}
		}
	}
	for _, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 {
			t.Fatalf("id %s: version %d, %v; want a UUIDv7", id, u.Version(), err)
		}
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids made one after another do not sort in the order they were made")
	}
}

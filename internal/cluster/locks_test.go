package cluster

import (
	"strings"
	"testing"
)

func TestLockKeysDistinct(t *testing.T) {
	keys := map[Key]string{}
	for name, k := range map[string]Key{"Migrate": Migrate, "RiverMigrate": RiverMigrate, "EventLeader": EventLeader, "EventDispatch": EventDispatch, "RecordsPrune": RecordsPrune} {
		if other, dup := keys[k]; dup {
			t.Fatalf("%s and %s share key %#x", name, other, int64(k))
		}
		keys[k] = name
		// The singletons sit below the capture space, so no table's key is one of them.
		if k >= CaptureKey(0) {
			t.Fatalf("%s (%#x) falls in the capture space", name, int64(k))
		}
	}
	if CaptureKey(0xffffffff) < CaptureKey(0) {
		t.Fatal("capture keys wrap")
	}
	if NodeSpace <= 0 {
		t.Fatal("the scheduler space must be a positive int4 (pg_locks shows classid unsigned)")
	}
}

func TestNodeName(t *testing.T) {
	a, b := NewNodeName(), NewNodeName()
	if a == b {
		t.Fatalf("two names alike: %s", a)
	}
	if len(a) > maxNameLen || strings.Count(a, ":") < 2 {
		t.Fatalf("name %q", a)
	}
}

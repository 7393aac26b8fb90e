package invoker

import (
	"context"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/registry"
)

// TestChangeNoticeWinsOverLookupInFlight: a lookup that read the registry
// just before a change committed, and finishes after the change notice
// dropped the cache entry, must not put the old version back (the node
// would serve it for the cache's TTL after acknowledging the change).
func TestChangeNoticeWinsOverLookupInFlight(t *testing.T) {
	inv := &Invoker{cache: map[string]cachedFunction{}, cfg: Config{CacheTTL: time.Hour}}
	old := registry.Function{Name: "hello", Version: 1, Enabled: true}
	current := registry.Function{Name: "hello", Version: 2, Enabled: true}

	gen := inv.generation() // a lookup starts and reads version 1
	inv.Invalidate("hello") // version 2 commits; its notice arrives
	inv.remember(old, gen)  // the lookup's read lands
	if c, ok := inv.cache["hello"]; ok {
		t.Fatalf("the read made before the change was cached: version %d", c.fn.Version)
	}

	gen = inv.generation() // a lookup that starts after the notice
	inv.remember(current, gen)
	fn, err := inv.Lookup(context.Background(), "hello")
	if err != nil || fn.Version != 2 {
		t.Fatalf("Lookup = version %d, %v; want the cached version 2", fn.Version, err)
	}

	inv.Invalidate("") // forgetting everything counts as a change too
	inv.remember(old, gen)
	if _, ok := inv.cache["hello"]; ok {
		t.Fatal("a read from before Invalidate(\"\") was cached")
	}
}

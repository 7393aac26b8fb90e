package cluster

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestLiveNodes: a node is listed, with its key, while its session holds
// its liveness lock; once however many sessions of it hold one (each key
// listed); not for the ticker lock; and no longer once its sessions end.
func TestLiveNodes(t *testing.T) {
	pool := testDB(t)
	ctx := context.Background()
	a, b := startNode(t, pool, "a"), startNode(t, pool, "b")
	<-a.Leadership(Ticker).Acquired() // the pair lock with object 0 is no liveness lock
	// A second session of node a with a liveness key of its own.
	cc := pool.Config().ConnConfig.Copy()
	cc.RuntimeParams["application_name"] = ApplicationNamePrefix + "a"
	second, err := pgx.ConnectConfig(ctx, cc)
	must(t, err, "connecting")
	t.Cleanup(func() { _ = second.Close(ctx) })
	secondKey := NewNodeKey()
	_, err = second.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, NodeSpace, secondKey)
	must(t, err, "taking a second liveness lock")

	live, err := LiveNodes(ctx, pool)
	must(t, err, "listing")
	aKeys := []int32{a.Key(), secondKey}
	slices.Sort(aKeys)
	if want := []LiveNode{{Name: "a", Keys: aKeys}, {Name: "b", Keys: []int32{b.Key()}}}; !reflect.DeepEqual(live, want) {
		t.Fatalf("live nodes %+v, want %+v", live, want)
	}

	must(t, b.Stop(ctx), "stopping b")
	must(t, a.Stop(ctx), "stopping a")
	if live, err = LiveNodes(ctx, pool); err != nil || !reflect.DeepEqual(live, []LiveNode{{Name: "a", Keys: []int32{secondKey}}}) {
		t.Fatalf("live nodes with a's second session up: %+v %v", live, err)
	}
	// A session ended from outside (a killed process) takes its node off
	// the list once PostgreSQL has seen it end.
	_, err = pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, ApplicationNamePrefix+"a")
	must(t, err, "ending the second session")
	waitFor(t, 5*time.Second, "node a off the list", func() bool {
		live, err := LiveNodes(ctx, pool)
		must(t, err, "listing")
		return len(live) == 0
	})
}

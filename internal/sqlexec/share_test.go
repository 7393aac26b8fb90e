package sqlexec_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/auth"
	"github.com/aerodb/aerofn/internal/sqlexec"
)

// sleepers starts n calls of SELECT pg_sleep(secs) for p in function fn and
// waits until want of them are running on the server.
func sleepers(t *testing.T, v *env, fn string, p auth.Principal, n, want int, secs string) (wait func() []error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(sqlexec.WithFunction(context.Background(), fn), 10*time.Second)
			defer cancel()
			_, errs[i] = v.exec.Query(ctx, p, "SELECT pg_sleep("+secs+")", nil)
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var running int
		if err := v.admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(`+secs+`)%'`).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sleepers running, want %d", running, n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() []error { wg.Wait(); return errs }
}

// quick runs SELECT 1 for p in fn and reports how long it took.
func quick(t *testing.T, v *env, fn string, p auth.Principal) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(sqlexec.WithFunction(context.Background(), fn), 10*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := v.exec.Query(ctx, p, "SELECT 1", nil); err != nil {
		t.Fatalf("victim's SELECT 1: %v", err)
	}
	return time.Since(start)
}

// One user holding connections (pg_sleep in as many concurrent calls as
// the pool has connections) no longer starves another user of the same role:
// a principal holds at most its share of the role's pool, and its calls over
// the share wait a bounded time and fail with connection_share_exceeded.
func TestOnePrincipalCannotStarveTheRole(t *testing.T) {
	t.Parallel()
	v := newEnv(t, sqlexec.Config{PoolSize: 4, ShareWait: 500 * time.Millisecond})
	wait := sleepers(t, v, "attack", user("mallory"), 4, 1, "2.5")
	if d := quick(t, v, "victim", user("alice")); d > time.Second {
		t.Fatalf("alice waited %v behind mallory's sleeps", d)
	}
	// mallory's share of a pool of 4 is 1: one sleep ran, the three others
	// waited ShareWait and were refused with a clear error.
	var ran, refused int
	for _, err := range wait() {
		switch {
		case err == nil:
			ran++
		case errCode(err) == sqlexec.CodeShareExceeded && strings.Contains(err.Error(), "share"):
			refused++
		default:
			t.Errorf("sleeper: %v", err)
		}
	}
	if ran != 1 || refused != 3 {
		t.Fatalf("%d sleeps ran and %d were refused, want 1 and 3", ran, refused)
	}
}

// Callers without a user id (anon, service_role) are bounded per function:
// one function's sleeping calls leave the others connections. By default a
// call over its share waits in line until its deadline: the function's
// calls all run, two at a time, and one whose deadline comes first fails
// with connection_share_exceeded.
func TestOneFunctionCannotStarveTheRole(t *testing.T) {
	t.Parallel()
	v := newEnv(t, sqlexec.Config{PoolSize: 4})
	wait := sleepers(t, v, "attack", auth.Anon(), 4, 2, "1.5")
	if d := quick(t, v, "victim", auth.Anon()); d > time.Second {
		t.Fatalf("another function waited %v behind one function's sleeps", d)
	}
	ctx, cancel := context.WithTimeout(sqlexec.WithFunction(context.Background(), "attack"), 300*time.Millisecond)
	defer cancel()
	_, err := v.exec.Query(ctx, auth.Anon(), "SELECT 1", nil)
	if errCode(err) != sqlexec.CodeShareExceeded || !strings.Contains(err.Error(), "function attack holds 2 of role anon's 4 connections") {
		t.Fatalf("a call over the share at its deadline: %v", err)
	}
	for _, err := range wait() {
		if err != nil {
			t.Errorf("sleeper: %v", err)
		}
	}
}

// Within its share a function's calls queue for the pool as before (no
// refusal when the pool is merely busy), and a share frees as soon as a call
// ends: a burst larger than the share completes when each call is short.
func TestShareQueuesShortCalls(t *testing.T) {
	t.Parallel()
	v := newEnv(t, sqlexec.Config{PoolSize: 4})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(sqlexec.WithFunction(context.Background(), "burst"), 10*time.Second)
			defer cancel()
			if _, err := v.exec.Query(ctx, user("bob"), "SELECT pg_sleep(0.01)", nil); err != nil {
				t.Errorf("burst: %v", err)
			}
		}()
	}
	wg.Wait()
}

// The victim's wait side by side, with the shares and with shares as large
// as the pool (today's behaviour without them), in one run. Reported with -v.
func TestShareVictimWaitMeasured(t *testing.T) {
	for _, c := range []struct {
		name  string
		share int32
	}{{"pool-sized shares (unbounded)", 4}, {"default shares", 0}} {
		v := newEnv(t, sqlexec.Config{PoolSize: 4, FunctionShare: c.share, PrincipalShare: c.share, ShareWait: 300 * time.Millisecond})
		quick(t, v, "warm", user("alice")) // connect once, outside the measurement
		wait := sleepers(t, v, "attack", user("mallory"), 4, 1, "1.5")
		d := quick(t, v, "victim", user("alice"))
		wait()
		t.Logf("%s: alice's SELECT 1 took %v while mallory slept in 4 calls", c.name, d.Round(time.Millisecond))
		if c.share == 0 && d > 500*time.Millisecond {
			t.Errorf("with the default shares alice waited %v", d)
		}
	}
}

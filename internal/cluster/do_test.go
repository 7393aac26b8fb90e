package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// backendPID is the backend of conn.
func backendPID(ctx context.Context, conn *pgx.Conn) (int32, error) {
	var pid int32
	err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid)
	return pid, err
}

// TestDoRunsOnTheSession: work handed to Do runs on the node's session,
// one function at a time; with no session Do refuses at once.
func TestDoRunsOnTheSession(t *testing.T) {
	pool := testDB(t)
	ctx := context.Background()
	never := New(Config{Pool: pool})
	if err := never.Do(ctx, func(context.Context, *pgx.Conn) error { return nil }); !errors.Is(err, ErrNoSession) {
		t.Fatalf("Do before Start: %v", err)
	}
	a := startNode(t, pool, "a")
	want := sessionPID(t, pool, a)
	var mu sync.Mutex
	running, overlapped := 0, false
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := a.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
				mu.Lock()
				running++
				overlapped = overlapped || running > 1
				mu.Unlock()
				defer func() { mu.Lock(); running--; mu.Unlock() }()
				pid, err := backendPID(ctx, conn)
				if err == nil && pid != want {
					t.Errorf("ran on backend %d, the session is %d", pid, want)
				}
				time.Sleep(5 * time.Millisecond)
				return err
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if overlapped {
		t.Fatal("two functions ran on the session at once")
	}
	boom := errors.New("boom")
	if err := a.Do(ctx, func(context.Context, *pgx.Conn) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Do returned %v, not fn's error", err)
	}
	must(t, a.Stop(ctx), "stopping")
	if err := a.Do(ctx, func(context.Context, *pgx.Conn) error { return nil }); !errors.Is(err, ErrNoSession) {
		t.Fatalf("Do after Stop: %v", err)
	}
}

// TestDoHoldsLeadership: a leadership held when a function handed to Do
// starts is held, by the backend the function runs on, until it returns,
// even if the node resigns meanwhile.
func TestDoHoldsLeadership(t *testing.T) {
	pool := testDB(t)
	ctx := context.Background()
	a := startNode(t, pool, "a")
	l := a.Leadership(Ticker)
	<-l.Acquired()
	resigned := make(chan error, 1)
	must(t, a.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		if !l.IsLeader() {
			return errors.New("not leading")
		}
		go func() { resigned <- l.Resign(context.Background()) }()
		time.Sleep(300 * time.Millisecond)
		var held bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
				AND pid = pg_backend_pid() AND classid::int8 = $1 AND objid::int8 = $2 AND objsubid = $3)`,
			Ticker.lock.classID, Ticker.lock.objID, Ticker.lock.objSubID).Scan(&held); err != nil {
			return err
		}
		if !held || !l.IsLeader() {
			t.Errorf("the lock was released under the function (held %v, IsLeader %v)", held, l.IsLeader())
		}
		select {
		case <-resigned:
			t.Error("Resign returned while the function ran")
		default:
		}
		return nil
	}), "doing")
	must(t, <-resigned, "resigning")
	if h := holders(t, pool, Ticker); len(h) != 0 {
		t.Fatalf("held after Resign by %q", h)
	}
}

// TestDoFencedByEviction: a leader that freezes half way through a
// transaction on its session (here: a function handed to Do that stops
// before committing) is evicted by a node that wants its role; its
// transaction ends with its session, so the row it locked is free at once
// for the new leader, and its write never commits.
func TestDoFencedByEviction(t *testing.T) {
	pool := testDB(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `CREATE TABLE fenced (id int PRIMARY KEY, v int NOT NULL); INSERT INTO fenced VALUES (1, 0)`)
	must(t, err, "creating the table")
	a := startNode(t, pool, "a")
	l := a.Leadership(Ticker)
	<-l.Acquired()
	inTx, thaw := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
			return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if !l.IsLeader() {
					return errors.New("not leading")
				}
				if _, err := tx.Exec(ctx, `UPDATE fenced SET v = v + 1 WHERE id = 1`); err != nil {
					return err
				}
				close(inTx)
				<-thaw // frozen: the session runs nothing
				return nil
			})
		})
	}()
	<-inTx
	b := startNode(t, pool, "b")
	waitFor(t, 10*time.Second, "b to lead after evicting a", b.Leadership(Ticker).IsLeader)
	// The frozen leader's row lock went with its session.
	uctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var v int
	must(t, pool.QueryRow(uctx, `UPDATE fenced SET v = v + 10 WHERE id = 1 RETURNING v`).Scan(&v), "writing the row the frozen leader locked")
	if v != 10 {
		t.Fatalf("v = %d: the evicted leader's write committed", v)
	}
	close(thaw)
	if err := <-done; err == nil {
		t.Fatal("the evicted leader's transaction committed")
	}
	if l.IsLeader() {
		t.Fatal("a still thinks it leads")
	}
	waitFor(t, 5*time.Second, "a's new session", a.Up)
}

// TestDoLeavingATransactionDropsTheSession: a function that leaves a
// transaction open costs the session, which the node makes again, rather
// than the next user finding it mid-transaction.
func TestDoLeavingATransactionDropsTheSession(t *testing.T) {
	pool := testDB(t)
	ctx := context.Background()
	a := startNode(t, pool, "a")
	old := sessionPID(t, pool, a)
	must(t, a.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `BEGIN`)
		return err
	}), "leaving a transaction open")
	waitFor(t, 5*time.Second, "a new session", func() bool {
		if !a.Up() {
			return false
		}
		var pid int32
		err := pool.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
			ApplicationNamePrefix+a.Name()).Scan(&pid)
		return err == nil && pid != old
	})
	must(t, a.Do(ctx, func(ctx context.Context, conn *pgx.Conn) error {
		var status string
		if err := conn.QueryRow(ctx, `SELECT 'ok'`).Scan(&status); err != nil {
			return err
		}
		if tx := conn.PgConn().TxStatus(); tx != 'I' {
			t.Errorf("transaction status %c on the new session", tx)
		}
		return nil
	}), "doing on the new session")
}

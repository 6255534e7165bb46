package cluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/testutil/pgtest"
)

// These tests run on a real PostgreSQL server (Debian's, started here on
// loopback); under CI=true its absence fails them.
var pg *pgtest.Server

func TestMain(m *testing.M) {
	if _, err := os.Stat("/usr/lib/postgresql"); err == nil {
		var err error
		pg, err = pgtest.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting PostgreSQL for the cluster tests:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if pg != nil {
		pg.Stop()
	}
	os.Exit(code)
}

// database returns a migrated state database's URL.
func database(t *testing.T) string {
	t.Helper()
	pgtest.Require(t)
	if pg == nil {
		t.Fatal("PostgreSQL did not start")
	}
	dsn := pg.Database(t)
	st, err := state.Open(t.Context(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dsn
}

func newCluster(t *testing.T, dsn string) *Cluster {
	t.Helper()
	c, err := New(Config{DSN: dsn, LeaseRetry: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestEvents: an event one hub publishes reaches the others within
// moments, and not the publisher itself.
func TestEvents(t *testing.T) {
	dsn := database(t)
	a, b := newCluster(t, dsn), newCluster(t, dsn)
	got := make(chan Event, 10)
	own := make(chan Event, 10)
	b.Subscribe(func(_ context.Context, ev Event) { got <- ev })
	a.Subscribe(func(_ context.Context, ev Event) { own <- ev })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { a.Listen(ctx) })
	wg.Go(func() { b.Listen(ctx) })
	defer func() { cancel(); wg.Wait() }()

	// LISTEN is asynchronous: publish until b hears.
	want := Event{Kind: KindAsset, Container: 7, Asset: 42}
	sent := time.Now()
	for {
		a.Publish(ctx, want)
		select {
		case ev := <-got:
			want.Hub = a.ID()
			if ev != want {
				t.Fatalf("b got %+v, want %+v", ev, want)
			}
			if d := time.Since(sent); d > 5*time.Second {
				t.Errorf("the event took %v", d)
			}
			select {
			case ev := <-own:
				t.Errorf("a heard its own event %+v", ev)
			case <-time.After(200 * time.Millisecond):
			}
			return
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("b never heard a's event")
		}
	}
}

// TestLeaseTakeover: two hubs want the same work; one does it; when its
// session dies (as when its process is killed) the other takes over, and
// the first one's fence fails.
func TestLeaseTakeover(t *testing.T) {
	dsn := database(t)
	a, b := newCluster(t, dsn), newCluster(t, dsn)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	started := make(chan string, 4)
	fenceOf := map[string]context.Context{}
	var mu sync.Mutex
	work := func(who string) func(context.Context) {
		return func(ctx context.Context) {
			mu.Lock()
			fenceOf[who] = ctx
			mu.Unlock()
			started <- who
			<-ctx.Done()
		}
	}
	aCtx, stopA := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { a.Lead(aCtx, "test", work("a")) })
	if who := <-started; who != "a" {
		t.Fatalf("%s started first", who)
	}
	wg.Go(func() { b.Lead(ctx, "test", work("b")) })
	select {
	case who := <-started:
		t.Fatalf("%s started while a holds the lease", who)
	case <-time.After(time.Second):
	}
	if err := a.Fence(fenceOf["a"]); err != nil {
		t.Fatalf("a's fence while it holds the lease: %v", err)
	}

	// a's PostgreSQL session dies, as when its process is killed.
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	killed := time.Now()
	if _, err := db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, "sonde-hub "+a.ID()); err != nil {
		t.Fatal(err)
	}
	select {
	case who := <-started:
		if who != "b" {
			t.Fatalf("%s took over, want b", who)
		}
		t.Logf("b took over %v after a's session died", time.Since(killed))
	case <-ctx.Done():
		t.Fatal("b never took over")
	}
	mu.Lock()
	aFence := fenceOf["a"]
	mu.Unlock()
	if err := a.Fence(context.WithoutCancel(aFence)); !errors.Is(err, ErrFenced) {
		t.Errorf("a's fence after b took over: %v, want ErrFenced", err)
	}
	if err := b.Fence(fenceOf["b"]); err != nil {
		t.Errorf("b's fence: %v", err)
	}
	// a, still alive but cut off from its session, stops its work within
	// a few checks (its fence failed already, so it could not act).
	select {
	case <-aFence.Done():
	case <-time.After(5 * time.Second):
		t.Error("a still runs the work 5 s after losing its lease")
	}
	stopA()
	cancel()
	wg.Wait()
}

// TestSingleHub: without PostgreSQL, work runs at once and events stay
// local.
func TestSingleHub(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Shared() {
		t.Fatal("a cluster without a DSN says it is shared")
	}
	ran := false
	c.Lead(t.Context(), "x", func(ctx context.Context) {
		ran = true
		if err := c.Fence(ctx); err != nil {
			t.Errorf("Fence: %v", err)
		}
	})
	if !ran {
		t.Error("the work did not run")
	}
	c.Publish(t.Context(), Event{Kind: KindAsset}) // no-op, no panic
	c.Listen(t.Context())                          // returns at once
}

// TestPostgresRestart: PostgreSQL restarts (every session ends). The
// lease holder stops its work and takes the lease again with a new epoch,
// the listener reconnects and asks for a resync, events flow again, and
// the state store writes again.
func TestPostgresRestart(t *testing.T) {
	dsn := database(t)
	a, b := newCluster(t, dsn), newCluster(t, dsn)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	events := make(chan Event, 100)
	a.Subscribe(func(_ context.Context, ev Event) { events <- ev })
	epochs := make(chan int64, 10)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { a.Listen(ctx) })
	wg.Go(func() {
		a.Lead(ctx, "restart", func(ctx context.Context) {
			epochs <- ctx.Value(fenceKey{}).(fence).epoch
			<-ctx.Done()
		})
	})
	first := <-epochs
	st, err := state.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	pg.Restart(t)
	restarted := time.Now()
	select {
	case e := <-epochs:
		if e <= first {
			t.Errorf("the lease came back with epoch %d after %d", e, first)
		}
		t.Logf("the lease was held again %v after the restart", time.Since(restarted).Round(time.Millisecond))
	case <-ctx.Done():
		t.Fatal("the lease was not taken again after PostgreSQL restarted")
	}
	// The listener asks for a resync, then hears events again.
	waitEvent := func(want string) {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.Kind == want {
					return
				}
			case <-time.After(100 * time.Millisecond):
				if want == KindAsset {
					b.Publish(ctx, Event{Kind: KindAsset, Asset: 1})
				}
			case <-ctx.Done():
				t.Fatalf("no %s event after the restart", want)
			}
		}
	}
	waitEvent(KindResync)
	waitEvent(KindAsset)
	// The state store's pool drops the dead connections and writes again.
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, err := st.CreateContainer(ctx, 1, fmt.Sprintf("after-restart-%d", time.Now().UnixNano()))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the state store does not write 30 s after PostgreSQL restarted: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

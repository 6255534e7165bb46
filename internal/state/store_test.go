package state

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestTreeAndAssets(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	root, created, err := s.EnsureRoot(ctx, "root")
	if err != nil || !created {
		t.Fatalf("EnsureRoot: %v %v", created, err)
	}
	again, created, err := s.EnsureRoot(ctx, "root")
	if err != nil || created || again != root {
		t.Fatalf("second EnsureRoot: %d %v %v", again, created, err)
	}
	msp, _ := s.CreateContainer(ctx, root, "msp")
	custA, _ := s.CreateContainer(ctx, msp, "a")
	custB, _ := s.CreateContainer(ctx, msp, "b")
	envA, _ := s.CreateContainer(ctx, custA, "a-prod")
	for _, c := range []struct {
		id, root int64
		want     bool
	}{
		{envA, custA, true}, {envA, msp, true}, {envA, root, true}, {envA, envA, true},
		{envA, custB, false}, {custA, envA, false}, {msp, custA, false}, {custB, custA, false},
	} {
		got, err := s.Within(ctx, c.id, c.root)
		if err != nil || got != c.want {
			t.Errorf("Within(%d, %d) = %v, %v; want %v", c.id, c.root, got, err, c.want)
		}
	}
	sub, err := s.Subtree(ctx, custA)
	if err != nil || len(sub) != 2 || sub[0] != custA || sub[1] != envA {
		t.Fatalf("Subtree = %v, %v", sub, err)
	}
	a, err := s.CreateAsset(ctx, envA, "web1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetAssetKind(ctx, a, "Linux"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Asset(ctx, a)
	if err != nil || got.Kind != "Linux" || got.ContainerID != envA || got.Name != "web1" {
		t.Fatalf("Asset = %+v, %v", got, err)
	}
	if _, err := s.Asset(ctx, a+100); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing asset: %v", err)
	}
	created, err = s.AddCollector(ctx, a, "linux", nil, map[string]CheckConfig{"cpu": {Interval: 60}, "disk": {Interval: 300, Disabled: true}})
	if err != nil || !created {
		t.Fatalf("AddCollector: %v %v", created, err)
	}
	created, err = s.AddCollector(ctx, a, "linux", []byte(`{"x":1}`), map[string]CheckConfig{"cpu": {Interval: 30}})
	if err != nil || created {
		t.Fatalf("AddCollector again: %v %v", created, err)
	}
	cols, err := s.Collectors(ctx, a)
	if err != nil || len(cols) != 1 || string(cols[0].Config) != `{"x":1}` || cols[0].Checks["cpu"].Interval != 30 || !cols[0].Checks["disk"].Disabled {
		t.Fatalf("Collectors = %+v, %v", cols, err)
	}
	if err := s.DeleteAsset(ctx, a); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.HasCollector(ctx, a, "linux"); ok {
		t.Fatal("collector survived its asset")
	}
}

func TestResults(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	root, _, _ := s.EnsureRoot(ctx, "root")
	a, _ := s.CreateAsset(ctx, root, "h")
	if _, err := s.AddCollector(ctx, a, "linux", nil, nil); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	put := func(ts int64, data string, unchanged, noCount bool, recv time.Time) {
		t.Helper()
		r := Result{AssetID: a, Collector: "linux", Check: "cpu", Timestamp: ts, ReceivedAt: recv}
		if data != "" {
			r.Data = []byte(data)
		}
		if err := s.PutResult(ctx, r, unchanged, noCount); err != nil {
			t.Fatal(err)
		}
	}
	get := func() Result {
		t.Helper()
		r, err := s.LatestResult(ctx, a, "linux", "cpu")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	put(100, `{"a":[]}`, false, false, t0)
	put(200, `{"a":[]}`, false, false, t0.Add(time.Minute))
	if r := get(); r.Timestamp != 200 || !r.ChangedAt.Equal(t0) || !r.LastSeenAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("same data: %+v", r)
	}
	put(150, `{"old":[]}`, false, false, t0.Add(2*time.Minute)) // older: ignored
	if r := get(); r.Timestamp != 200 || string(r.Data) != `{"a":[]}` {
		t.Fatalf("older result replaced newer: %+v", r)
	}
	put(300, "", true, true, t0.Add(3*time.Minute)) // unchanged, no_count
	if r := get(); r.Timestamp != 300 || string(r.Data) != `{"a":[]}` || !r.LastSeenAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("unchanged/no_count: %+v", r)
	}
	put(400, `{"b":[]}`, false, false, t0.Add(4*time.Minute))
	if r := get(); !r.ChangedAt.Equal(t0.Add(4*time.Minute)) || string(r.Data) != `{"b":[]}` {
		t.Fatalf("changed: %+v", r)
	}
	// Concurrent writers leave one consistent latest result: the newest.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := Result{AssetID: a, Collector: "linux", Check: "cpu", Timestamp: int64(1000 + i), ReceivedAt: t0, Data: []byte(`{"i":[` + string(rune('a'+i)) + `]}`)}
			if err := s.PutResult(ctx, r, false, false); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if r := get(); r.Timestamp != 1019 || string(r.Data) != `{"i":[t]}` {
		t.Fatalf("concurrent: %+v %s", r, r.Data)
	}
}

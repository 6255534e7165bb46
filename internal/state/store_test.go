package state

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), location(t), nil)
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
	if cols, _ := s.Collectors(ctx, a); len(cols) != 0 {
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

func TestAuthTokenAndCheckTarget(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	root, _, _ := s.EnsureRoot(ctx, "root")
	a, _ := s.CreateContainer(ctx, root, "a")
	b, _ := s.CreateContainer(ctx, root, "b")
	now := time.Unix(1_700_000_000, 0)
	parent, _ := s.CreateToken(ctx, Token{ContainerID: a, Name: "p", Hash: "h1", Permissions: 3})
	child, _ := s.CreateToken(ctx, Token{ContainerID: a, Name: "c", Hash: "h2", Permissions: 1, CreatedBy: &parent})
	exp := now.Add(time.Hour)
	_, _ = s.CreateToken(ctx, Token{ContainerID: a, Name: "e", Hash: "h3", Permissions: 1, ExpiresAt: &exp})
	check := func(hash string, at time.Time, wantID int64, wantValid bool) {
		t.Helper()
		tok, valid, err := s.AuthToken(ctx, hash, at)
		if err != nil || tok.ID != wantID || valid != wantValid {
			t.Fatalf("AuthToken(%s) = %d %v %v; want %d %v", hash, tok.ID, valid, err, wantID, wantValid)
		}
	}
	check("h2", now, child, true)
	check("h3", now, 3, true)
	check("h3", exp, 3, false)
	if _, _, err := s.AuthToken(ctx, "nope", now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	if err := s.RevokeToken(ctx, parent, now); err != nil {
		t.Fatal(err)
	}
	check("h2", now, child, false) // its creator is revoked
	if chain, err := s.CreatorChain(ctx, child); err != nil || len(chain) != 1 || chain[0] != parent {
		t.Fatalf("CreatorChain = %v %v", chain, err)
	}

	asset, _ := s.CreateAsset(ctx, a, "web")
	if _, err := s.AddCollector(ctx, asset, "linux", nil, nil); err != nil {
		t.Fatal(err)
	}
	_ = s.PutResult(ctx, Result{AssetID: asset, Collector: "linux", Check: "cpu", Timestamp: 1, ReceivedAt: now}, false, false)
	for _, c := range []struct {
		scope               int64
		collector, check    string
		within, has, exists bool
		checks              int
	}{
		{a, "linux", "cpu", true, true, true, 1},
		{root, "linux", "mem", true, true, false, 1},
		{b, "linux", "cpu", false, true, true, 1},
		{a, "snmp", "x", true, false, false, 1},
	} {
		ct, err := s.CheckTargetOf(ctx, asset, c.scope, c.collector, c.check)
		if err != nil || ct.Within != c.within || ct.HasCollector != c.has || ct.Exists != c.exists || ct.Checks != c.checks ||
			ct.Asset.Name != "web" || ct.Asset.ContainerID != a {
			t.Errorf("CheckTargetOf(scope %d, %s/%s) = %+v, %v", c.scope, c.collector, c.check, ct, err)
		}
	}
	if _, err := s.CheckTargetOf(ctx, asset+1, a, "linux", "cpu"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing asset: %v", err)
	}
}

package state

import (
	"context"
	"testing"
	"time"
)

// TestApplianceAsset: an appliance's own asset is made once, bound to it,
// with the hardening check; its latest audit is summarised.
func TestApplianceAsset(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, location(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	root, _, err := s.EnsureRoot(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	app, err := s.CreateAppliance(ctx, Appliance{ContainerID: root, Name: "edge", Zone: 3})
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.EnsureApplianceAsset(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.EnsureApplianceAsset(ctx, app); err != nil || again != id {
		t.Fatalf("a second call made asset %d (%v), want %d", again, err, id)
	}
	pas, err := s.ProbeAssets(ctx, root, 0, []string{ApplianceCollector})
	if err != nil {
		t.Fatal(err)
	}
	if len(pas) != 1 || pas[0].ApplianceID != app || pas[0].Zone != 3 || pas[0].Name != "edge" ||
		len(pas[0].Collectors) != 1 || pas[0].Collectors[0].Checks[0].Key != HardeningCheck || pas[0].Collectors[0].Checks[0].Interval != HardeningInterval {
		t.Fatalf("probe assets: %+v", pas)
	}
	if h, err := s.ApplianceHardening(ctx, root); err != nil || len(h) != 0 {
		t.Fatalf("before an audit: %v %v", h, err)
	}
	now := time.Now()
	err = s.PutResult(ctx, Result{AssetID: id, Collector: ApplianceCollector, Check: HardeningCheck, Timestamp: now.Unix(), ReceivedAt: now,
		Data: []byte(`{"hardening":[{"name":"a","status":"pass"},{"name":"b","status":"fail"},{"name":"c","status":"unknown"},{"name":"d","status":"fail"}]}`)}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.ApplianceHardening(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if got := h[app]; got.AssetID != id || got.Total != 4 || got.Failed != 2 || got.Unknown != 1 {
		t.Errorf("summary %+v", got)
	}
}

// TestServiceCollectorsStayOnTheHub: a collector the hub runs is never
// handed to an appliance, and is listed for the hub across containers.
func TestServiceCollectorsStayOnTheHub(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, location(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	root, _, _ := s.EnsureRoot(ctx, "root")
	child, _ := s.CreateContainer(ctx, root, "customer")
	a1, _ := s.CreateAsset(ctx, root, "site")
	a2, _ := s.CreateAsset(ctx, child, "shop")
	hub := RunByHub
	checks := map[string]CheckConfig{"http": {Interval: 60}}
	if _, err := s.AddCollectorRunBy(ctx, a1, "http", []byte(`{"url":"https://example.com"}`), checks, &hub); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddCollector(ctx, a2, "http", []byte(`{"url":"https://shop.example.com"}`), checks); err != nil {
		t.Fatal(err)
	}
	// The agent's body-less call keeps who runs it.
	if _, err := s.AddCollector(ctx, a1, "http", nil, nil); err != nil {
		t.Fatal(err)
	}
	for c, want := range map[int64]int{root: 0, child: 1} {
		pas, err := s.ProbeAssets(ctx, c, 0, []string{"http"})
		if err != nil || len(pas) != want {
			t.Errorf("appliance checks of container %d: %+v %v", c, pas, err)
		}
	}
	if n, err := s.CountServiceChecks(ctx, root); err != nil || n != 1 {
		t.Errorf("service checks counted in root: %d %v", n, err)
	}
	if n, err := s.CountServiceChecks(ctx, child); err != nil || n != 0 {
		t.Errorf("service checks counted in the customer: %d %v", n, err)
	}
	svc, err := s.ServiceAssets(ctx, []string{"http"})
	if err != nil || len(svc) != 1 || svc[0].ID != a1 || svc[0].Collectors[0].Checks[0].ID == 0 {
		t.Errorf("service checks: %+v %v", svc, err)
	}
}

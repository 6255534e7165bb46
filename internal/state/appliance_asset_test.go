package state

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestApplianceAsset: an appliance's own asset is made once, bound to it,
// with the hardening check; its latest audit is summarised.
func TestApplianceAsset(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"), nil)
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

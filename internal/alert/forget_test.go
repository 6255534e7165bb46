package alert

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/ingest"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// recordingPeers records the changes the engine tells its peers of.
type recordingPeers struct{ kinds []string }

func (p *recordingPeers) Changed(kind string, _ int64) { p.kinds = append(p.kinds, kind) }

// TestAssetDeleted: the engine forgets a deleted asset's checks (their
// previous results and tick counts), keeps the others', and tells its
// peers.
func TestAssetDeleted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	root, _, err := st.EnsureRoot(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateCondition(ctx, state.Condition{ContainerID: root, Name: "load", Kind: "expression", Collector: "linux",
		Type: "load", Expression: "item.load1 > 10", Severity: int(model.SeverityHigh), Ticks: 3, ClearTicks: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	peers := &recordingPeers{}
	e := New(Config{State: st, Peers: peers})
	if err := e.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var assets []int64
	for _, name := range []string{"gone", "kept"} {
		id, err := st.CreateAsset(ctx, root, name)
		if err != nil {
			t.Fatal(err)
		}
		assets = append(assets, id)
		for _, check := range []string{"cpu", "disk"} {
			e.Observe(ctx, ingest.Target{ContainerID: root, AssetID: id, AssetName: name, Collector: "linux", Check: check},
				&model.CheckData{Timestamp: time.Now().Unix(), HasResult: true})
		}
	}
	count := func(asset int64) int {
		e.mu.Lock()
		defer e.mu.Unlock()
		n := 0
		for k := range e.checks {
			if k.asset == asset {
				n++
			}
		}
		return n
	}
	if count(assets[0]) != 2 || count(assets[1]) != 2 {
		t.Fatalf("the engine remembers %d and %d checks, want 2 and 2", count(assets[0]), count(assets[1]))
	}
	e.AssetDeleted(assets[0])
	if count(assets[0]) != 0 || count(assets[1]) != 2 {
		t.Errorf("after deleting the first asset: %d and %d checks remembered, want 0 and 2", count(assets[0]), count(assets[1]))
	}
	if len(peers.kinds) == 0 || peers.kinds[len(peers.kinds)-1] != ChangeAssetGone {
		t.Errorf("peers were told %v, want %s last", peers.kinds, ChangeAssetGone)
	}
}

package ingest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
	"github.com/sonde-monitoring/sonde/internal/tsstore/local"
)

// TestIngestBatch: a batch stores its good results together and refuses
// the bad ones alone, with the error each deserves.
func TestIngestBatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := state.Open(ctx, filepath.Join(dir, "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	series, err := local.Open(filepath.Join(dir, "tsdb"), local.Options{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer series.Close()
	root, _, err := st.EnsureRoot(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	var targets []Target
	for i := range 3 {
		id, err := st.CreateAsset(ctx, root, fmt.Sprint("a", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.AddCollector(ctx, id, "tcp", nil, nil); err != nil {
			t.Fatal(err)
		}
		targets = append(targets, Target{ContainerID: root, AssetID: id, AssetName: fmt.Sprint("a", i), Collector: "tcp", Check: "tcp"})
	}
	now := time.Now()
	in := New(st, series, nil, nil, nil, Options{})
	data := func(ts int64, v float64) *model.CheckData {
		return &model.CheckData{HasResult: true, Timestamp: ts, Types: []model.Type{{Name: "tcp", Items: []model.Item{
			{Name: "80", Metrics: []model.Metric{{Name: "connectTime", Value: model.FloatValue(v)}}}}}}}
	}
	ts := now.Unix() - 60
	errs := in.IngestBatch(ctx, []Item{
		{targets[0], data(ts, 1.5)},
		{targets[1], data(now.Unix()+3600, 2.5)}, // an hour ahead: invalid
		{targets[2], data(ts, 3.5)},
	})
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], model.ErrInvalid) {
		t.Fatalf("first batch: %v", errs)
	}
	// The same result again is no error (replays are idempotent); another
	// value at the same time is a conflict, and refuses only itself.
	errs = in.IngestBatch(ctx, []Item{
		{targets[0], data(ts, 1.5)},
		{targets[2], data(ts, 9.9)},
		{targets[1], data(ts, 2.5)},
	})
	if errs[0] != nil || !errors.Is(errs[1], tsstore.ErrConflict) || errs[2] != nil {
		t.Fatalf("second batch: %v", errs)
	}
	v, err := series.Query(ctx, tsstore.Scope{ContainerIDs: []string{fmt.Sprint(root)}}, "sonde_tcp_connectTime", now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range v.(promql.Vector) {
		got[s.Metric.Get("asset")] = s.F
	}
	if want := map[string]float64{"a0": 1.5, "a1": 2.5, "a2": 3.5}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored %v, want %v", got, want)
	}
	for i, tg := range targets {
		r, err := st.LatestResult(ctx, tg.AssetID, "tcp", "tcp")
		if err != nil || r.Timestamp != ts {
			t.Errorf("latest result of asset %d: %+v %v", i, r, err)
		}
	}
}

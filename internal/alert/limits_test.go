package alert

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/ingest"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// TestEvaluationBudget: a result with more items × conditions than the
// budget is evaluated only up to it, and says so in a notification that
// closes when a result fits.
func TestEvaluationBudget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	root, _, _ := st.EnsureRoot(ctx, "root")
	asset, _ := st.CreateAsset(ctx, root, "big")
	const conds = 10
	for i := range conds {
		c := state.Condition{ContainerID: root, Name: fmt.Sprint("c", i), Kind: KindExpression, Type: "t", Expression: "item.v > 1", Severity: int(Warning)}
		if err := Validate(&c); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateCondition(ctx, c, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	e := New(Config{State: st})
	if err := e.Load(ctx); err != nil {
		t.Fatal(err)
	}
	result := func(items int, ts int64) *model.CheckData {
		typ := model.Type{Name: "t"}
		for i := range items {
			typ.Items = append(typ.Items, model.Item{Name: fmt.Sprint(i), Metrics: []model.Metric{{Name: "v", Value: model.IntValue(0)}}})
		}
		return &model.CheckData{Types: []model.Type{typ}, HasResult: true, Timestamp: ts}
	}
	tgt := ingest.Target{ContainerID: root, AssetID: asset, AssetName: "big", Collector: "c", Check: "k"}
	start := time.Now()
	e.Observe(ctx, tgt, result(MaxEvaluationsPerResult/conds+1, 1_800_000_000))
	t.Logf("one result of %d items × %d conditions: %s", MaxEvaluationsPerResult/conds+1, conds, time.Since(start))
	open := func() []state.Notification {
		ns, err := st.Notifications(ctx, state.NotificationFilter{Status: "open"})
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	if ns := open(); len(ns) != 1 || ns[0].Kind != KindEvaluationLimit || ns[0].Severity != int(model.SeverityHigh) {
		t.Fatalf("open notifications: %+v", ns)
	}
	e.Observe(ctx, tgt, result(100, 1_800_000_060))
	if ns := open(); len(ns) != 0 {
		t.Fatalf("still open: %+v", ns)
	}
}

// TestItemsMissingBounded: an agent that renames its items on every
// result does not grow the engine's memory past MaxTrackedItems per
// condition, nor the alerts opened past MaxAlertChangesPerResult per
// result.
func TestItemsMissingBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	root, _, _ := st.EnsureRoot(ctx, "root")
	asset, _ := st.CreateAsset(ctx, root, "renamer")
	c := state.Condition{ContainerID: root, Name: "gone", Kind: KindItemsMissing, Type: "t", Severity: int(Warning)}
	if err := Validate(&c); err != nil {
		t.Fatal(err)
	}
	condID, err := st.CreateCondition(ctx, c, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := New(Config{State: st})
	if err := e.Load(ctx); err != nil {
		t.Fatal(err)
	}
	tgt := ingest.Target{ContainerID: root, AssetID: asset, AssetName: "renamer", Collector: "c", Check: "k"}
	for round := range 6 {
		typ := model.Type{Name: "t"}
		for i := range 5000 {
			typ.Items = append(typ.Items, model.Item{Name: fmt.Sprintf("r%d-%d", round, i), Metrics: []model.Metric{{Name: "v", Value: model.IntValue(1)}}})
		}
		e.Observe(ctx, tgt, &model.CheckData{Types: []model.Type{typ}, HasResult: true, Timestamp: 1_800_000_000 + int64(round)*60})
	}
	cs := e.checks[checkKey{asset, "c", "k"}]
	if n := len(cs.ticks[condID]); n > MaxTrackedItems {
		t.Errorf("the condition counts %d items, more than %d", n, MaxTrackedItems)
	}
	alerts, err := st.Alerts(ctx, state.AlertFilter{AssetID: asset, Status: "open"})
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) > 5*MaxAlertChangesPerResult {
		t.Errorf("%d alerts opened in 5 results", len(alerts))
	}
	ns, _ := st.Notifications(ctx, state.NotificationFilter{Status: "open"})
	if len(ns) != 1 || ns[0].Kind != KindEvaluationLimit {
		t.Errorf("notifications: %+v", ns)
	}
}

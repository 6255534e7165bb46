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

// BenchmarkObserve20x50 is the engine's cost per result: 20 expression
// conditions of the shapes users write, on a result of 50 items, none of
// them holding (alerts opening cost a transaction, which is rare).
func BenchmarkObserve20x50(b *testing.B) {
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(b.TempDir(), "state.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	root, _, err := st.EnsureRoot(ctx, "root")
	if err != nil {
		b.Fatal(err)
	}
	asset, err := st.CreateAsset(ctx, root, "bench")
	if err != nil {
		b.Fatal(err)
	}
	exprs := []string{
		"item.in_errors > 1000", "item.out_errors > 1000", "item.util > 99.5", "item.speed < 0",
		`item.oper == "down" and item.admin == "up"`, `match(item.name, "^(eth|en)[0-9]+$") and item.util > 99`,
		"rate(item.in_octets) * 8 > 2 * item.speed", "rate(item.out_octets) * 8 > 2 * item.speed",
		"item.in_errors - prev.in_errors > 1000", "item.mtu < 500",
		"exists(item.temp) and item.temp > 90", "item.in_octets < prev.in_octets and item.uptime > prev.uptime",
		`lower(item.duplex) == "half"`, "abs(item.util - prev.util) > 99", "item.queue > 10000",
		"item.drops / (item.in_pkts + 1) > 0.5", "not (item.util >= 0)", "len(item.alias) > 200",
		"max(item.util, item.peak) > 100", "item.crc > 1e6",
	}
	for i, e := range exprs {
		c := state.Condition{ContainerID: root, Name: fmt.Sprint("c", i), Kind: KindExpression, Type: "interface", Expression: e, Severity: int(Warning)}
		if err := Validate(&c); err != nil {
			b.Fatal(err)
		}
		if _, err := st.CreateCondition(ctx, c, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	e := New(Config{State: st})
	if err := e.Load(ctx); err != nil {
		b.Fatal(err)
	}
	t := ingest.Target{ContainerID: root, AssetID: asset, AssetName: "bench", Collector: "snmp", Check: "interfaces"}
	result := func(ts int64) *model.CheckData {
		typ := model.Type{Name: "interface"}
		for i := range 50 {
			typ.Items = append(typ.Items, model.Item{Name: fmt.Sprintf("eth%d", i), Metrics: []model.Metric{
				{Name: "in_octets", Value: model.IntValue(ts * 1000)}, {Name: "out_octets", Value: model.IntValue(ts * 900)},
				{Name: "in_pkts", Value: model.IntValue(ts)}, {Name: "in_errors", Value: model.IntValue(3)},
				{Name: "out_errors", Value: model.IntValue(1)}, {Name: "drops", Value: model.IntValue(2)},
				{Name: "util", Value: model.FloatValue(12.5)}, {Name: "peak", Value: model.FloatValue(40)},
				{Name: "speed", Value: model.IntValue(1_000_000_000)}, {Name: "mtu", Value: model.IntValue(1500)},
				{Name: "oper", Value: model.StringValue("up")}, {Name: "admin", Value: model.StringValue("up")},
				{Name: "duplex", Value: model.StringValue("full")}, {Name: "alias", Value: model.StringValue("uplink")},
				{Name: "queue", Value: model.IntValue(4)}, {Name: "crc", Value: model.IntValue(0)},
				{Name: "uptime", Value: model.IntValue(ts)},
			}})
		}
		return &model.CheckData{Types: []model.Type{typ}, HasResult: true, Timestamp: ts}
	}
	const n = 64
	results := make([]*model.CheckData, n)
	for i := range results {
		results[i] = result(1_800_000_000 + int64(i)*60)
	}
	// Prime the previous result.
	e.Observe(ctx, t, results[0])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Timestamps must rise: shift the prepared results' times.
		cd := results[1+i%(n-1)]
		cd.Timestamp = 1_800_000_000 + int64(i+1)*60
		e.Observe(ctx, t, cd)
	}
}

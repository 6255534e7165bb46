package expr

import (
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// BenchmarkEachCondition times each of benchConditions alone over 50 items.
func BenchmarkEachCondition(b *testing.B) {
	envs := make([]Env, 50)
	for i := range envs {
		envs[i] = Env{
			Item:     benchItem(i, []model.Value{model.StringValue("psu")}),
			Prev:     benchItem(i/2, nil),
			Now:      t0.Add(time.Minute),
			PrevTime: t0,
		}
	}
	for ci, src := range benchConditions {
		e, err := Parse(src)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(rune('a'+ci)), func(b *testing.B) {
			for b.Loop() {
				for i := range envs {
					_, _ = e.Eval(&envs[i])
				}
			}
		})
	}
}

// BenchmarkEval20x50Reused evaluates the 20 conditions over a 50-item result
// as the engine does: one Env per condition, reused across the items of the
// type, its Item, Prev, Now and PrevTime set for each item. One op is one
// whole result.
//
// "ptr" points Item and Prev at two ItemMetrics variables, as the Env doc
// suggests, and sets those for each item; "iface" stores each item's
// ItemMetrics in Item and Prev, which allocates two interface boxes an Eval.
func BenchmarkEval20x50Reused(b *testing.B) {
	exprs := make([]*Expr, len(benchConditions))
	for i, src := range benchConditions {
		e, err := Parse(src)
		if err != nil {
			b.Fatalf("%s: %v", src, err)
		}
		exprs[i] = e
	}
	items := make([]ItemMetrics, 50)
	prevs := make([]ItemMetrics, 50)
	for i := range items {
		items[i] = benchItem(i, []model.Value{model.StringValue("psu")})
		prevs[i] = benchItem(i/2, nil)
	}
	now, prevTime := t0.Add(time.Minute), t0
	for _, mode := range []string{"ptr", "iface"} {
		b.Run(mode, func(b *testing.B) {
			envs := make([]Env, len(exprs))
			curs := make([]ItemMetrics, len(exprs))
			olds := make([]ItemMetrics, len(exprs))
			run := func() (n int) {
				for ci, e := range exprs {
					env := &envs[ci]
					if mode == "ptr" {
						env.Item, env.Prev = &curs[ci], &olds[ci]
					}
					env.Now, env.PrevTime = now, prevTime
					for i := range items {
						if mode == "ptr" {
							curs[ci], olds[ci] = items[i], prevs[i]
						} else {
							env.Item, env.Prev = items[i], prevs[i]
						}
						r, err := e.Eval(env)
						if err != nil {
							b.Fatalf("%s: %v", e, err)
						}
						if r == True {
							n++
						}
					}
				}
				return n
			}
			b.Logf("true: %d", run())
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				run()
			}
		})
	}
}

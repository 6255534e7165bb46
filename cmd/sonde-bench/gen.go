package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// shape is the shape of the load: who posts what, when.
type shape struct {
	Agents   int           `json:"agents"`
	Checks   int           `json:"checks_per_agent"`
	Items    int           `json:"items_per_result"`
	Metrics  int           `json:"metrics_per_item"`
	Interval time.Duration `json:"-"`
	Decimals int           `json:"decimals"`
	Seed     uint64        `json:"seed"`
	// Start is the Unix second of the first round of every series.
	Start int64 `json:"start_unix"`
}

// Series is how many series the load writes: one per agent (asset),
// check, item and metric.
func (s shape) Series() int { return s.Agents * s.Checks * s.Items * s.Metrics }

// SamplesPerResult is how many samples one check result holds.
func (s shape) SamplesPerResult() int { return s.Items * s.Metrics }

func checkName(c int) string  { return fmt.Sprintf("check%03d", c) }
func itemName(i int) string   { return fmt.Sprintf("item%d", i) }
func metricName(m int) string { return fmt.Sprintf("gauge%02d", m) }
func assetName(a int) string  { return fmt.Sprintf("bench-%05d.example.net", a) }

// typeName is the one type of every result: its series are
// sonde_bench_<metric>.
const typeName = "bench"

// result is one check result to send.
type result struct {
	Check  int
	Round  int
	TS     int64     // Unix seconds
	Values []float64 // Items × Metrics, item-major; owned by the generator
}

// agentGen generates the results of one agent: round after round, one
// result per check, every series a random walk rounded to the decimals,
// every (asset, check) on strictly increasing timestamps Interval apart.
// The same shape and agent index always give the same results.
type agentGen struct {
	s       shape
	rng     *rand.Rand
	vals    [][]float64 // per check: Items × Metrics current values
	scale   [][]float64 // per check: step size of each series
	offsets []int64     // per check: seconds after the round's start
	round   int
	check   int
	pow     float64
	// unchanged and total count the samples generated and those equal
	// to their series' previous value, which compress best.
	unchanged, total int64
}

func newAgentGen(s shape, agent int) *agentGen {
	g := &agentGen{
		s:       s,
		rng:     rand.New(rand.NewPCG(s.Seed, uint64(agent)+1)), // #nosec G404 -- benchmark values, reproducible from --seed; nothing secret
		vals:    make([][]float64, s.Checks),
		scale:   make([][]float64, s.Checks),
		offsets: make([]int64, s.Checks),
		pow:     math.Pow(10, float64(s.Decimals)),
	}
	iv := int64(s.Interval / time.Second)
	for c := range s.Checks {
		// Checks run at fixed offsets within the interval, as an
		// agent's scheduler spreads them.
		if iv > 1 {
			g.offsets[c] = g.rng.Int64N(iv)
		}
		n := s.Items * s.Metrics
		g.vals[c] = make([]float64, n)
		g.scale[c] = make([]float64, n)
		for i := range n {
			// Magnitudes from 1 to 1,000,000, as gauges of percentages,
			// temperatures, queue lengths and byte counts have.
			base := math.Pow(10, float64(i%6)) * (1 + 9*g.rng.Float64())
			g.vals[c][i] = g.round2(base)
			g.scale[c][i] = base * 0.002
		}
	}
	return g
}

func (g *agentGen) round2(v float64) float64 { return math.Round(v*g.pow) / g.pow }

// next returns the agent's next result. The values slice is reused by the
// following call for the same check.
func (g *agentGen) next() result {
	c := g.check
	vals := g.vals[c]
	for i, v := range vals {
		v += g.rng.NormFloat64() * g.scale[c][i]
		if v < 0 {
			v = -v
		}
		v = g.round2(v)
		if v == vals[i] {
			g.unchanged++
		}
		vals[i] = v
	}
	g.total += int64(len(vals))
	r := result{
		Check:  c,
		Round:  g.round,
		TS:     g.s.Start + int64(g.round)*int64(g.s.Interval/time.Second) + g.offsets[c],
		Values: vals,
	}
	g.check++
	if g.check == g.s.Checks {
		g.check = 0
		g.round++
	}
	return r
}

// peekTS returns the timestamp of the result next would return.
func (g *agentGen) peekTS() int64 {
	return g.s.Start + int64(g.round)*int64(g.s.Interval/time.Second) + g.offsets[g.check]
}

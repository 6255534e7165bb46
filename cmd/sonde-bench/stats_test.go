package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		vals []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 75, 3 * time.Millisecond},
		{ms(1, 2, 3, 4), 76, 4 * time.Millisecond},
		{ms(1, 2, 3, 4), 100, 4 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.1, 1 * time.Millisecond},
	} {
		if got := percentile(tc.vals, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %g) = %v, want %v", tc.vals, tc.p, got, tc.want)
		}
	}
	// 1..1000 ms: the nearest rank of p is p×10.
	var d []time.Duration
	for i := 1000; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	l := summarize(d)
	if l.Count != 1000 || l.P50 != 500 || l.P90 != 900 || l.P99 != 990 || l.Max != 1000 || l.Mean != 500.5 {
		t.Errorf("summarize(1..1000ms) = %+v", l)
	}
	if l := summarize(nil); l != (Latency{}) {
		t.Errorf("summarize(nil) = %+v, want zero", l)
	}
}

func TestWorkerStatsMerge(t *testing.T) {
	a, b := newWorkerStats(), newWorkerStats()
	a.results, a.samples = 2, 40
	a.observe(time.Millisecond)
	a.fail("500", "first")
	a.fail("500", "second")
	b.results, b.samples = 1, 20
	b.observe(3 * time.Millisecond)
	b.fail("timeout", "deadline")
	m := merge([]*workerStats{a, b})
	if m.results != 3 || m.samples != 60 || len(m.latencies) != 2 || m.seen != 2 {
		t.Errorf("merge: %+v", m)
	}
	if m.errors["500"] != 2 || m.errors["timeout"] != 1 || m.firstErr["500"] != "first" {
		t.Errorf("merge errors: %v %v", m.errors, m.firstErr)
	}
}

func TestObserveBounded(t *testing.T) {
	s := newWorkerStats()
	for i := range maxLatencies + 1000 {
		s.observe(time.Duration(i))
	}
	if len(s.latencies) != maxLatencies || s.seen != maxLatencies+1000 {
		t.Errorf("kept %d of %d latencies, want %d kept", len(s.latencies), s.seen, maxLatencies)
	}
}

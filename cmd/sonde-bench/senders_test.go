package main

import "testing"

func TestSeriesLabelsSorted(t *testing.T) {
	ls := seriesLabels(1, 2, 3, 4, 5, 6)
	for i := 1; i < len(ls); i++ {
		if ls[i-1].Name >= ls[i].Name {
			t.Fatalf("labels not sorted: %v", ls)
		}
	}
	if ls[0].Value != "sonde_bench_gauge06" {
		t.Errorf("metric name %q", ls[0].Value)
	}
}

package ingest

import (
	"errors"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

func TestSeriesQuota(t *testing.T) {
	q := newSeriesQuota(3, time.Hour)
	now := time.Unix(1_700_000_000, 0)
	s := func(items ...string) []tsstore.Sample {
		var out []tsstore.Sample
		for _, it := range items {
			out = append(out, tsstore.Sample{Key: tsstore.SeriesKey{Metric: "sonde_t_m", ContainerID: "1", Item: it}})
		}
		return out
	}
	if err := q.admit(1, s("a", "b"), now); err != nil {
		t.Fatal(err)
	}
	if err := q.admit(1, s("a", "b", "c"), now); err != nil {
		t.Fatalf("one new series within the quota: %v", err)
	}
	if err := q.admit(1, s("a", "d"), now); !errors.Is(err, ErrQuota) {
		t.Fatalf("a fourth series: %v", err)
	}
	if err := q.admit(2, s("a", "b", "c"), now); err != nil {
		t.Fatalf("another container has its own quota: %v", err)
	}
	// Series that stop receiving samples leave the count after the window.
	now = now.Add(50 * time.Minute)
	if err := q.admit(1, s("a"), now); err != nil {
		t.Fatal(err)
	}
	now = now.Add(20 * time.Minute)
	if err := q.admit(1, s("a", "d", "e"), now); err != nil {
		t.Fatalf("b and c expired, a still active: %v", err)
	}
	var off *seriesQuota
	if err := off.admit(1, s("x"), now); err != nil {
		t.Fatal(err)
	}
}

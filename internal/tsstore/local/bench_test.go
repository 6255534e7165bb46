package local

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// resultKeys returns the series keys of n check results of 20 metrics each,
// spread over containers and assets like a hub's traffic.
func resultKeys(prefix string, n int) [][]tsstore.SeriesKey {
	keys := make([][]tsstore.SeriesKey, n)
	for r := range keys {
		keys[r] = make([]tsstore.SeriesKey, 20)
		for m := range keys[r] {
			keys[r][m] = tsstore.SeriesKey{
				Metric:      fmt.Sprintf("sonde_snmp_metric_%02d", m),
				ContainerID: fmt.Sprintf("%s-container-%d", prefix, r%50),
				AssetID:     fmt.Sprintf("%s-asset-%d", prefix, r),
				Asset:       fmt.Sprintf("host-%d.example.net", r),
				Collector:   "collector-1",
				Check:       "snmp-interfaces",
				Item:        fmt.Sprintf("eth%d", r%4),
			}
		}
	}
	return keys
}

// BenchmarkAppend20 appends check results of 20 samples each, one Append
// call per result, round-robin over 5,000 results (100,000 series), and
// reports the sustained rate and, after compacting, the on-disk size.
func BenchmarkAppend20(b *testing.B) {
	const results = 5000
	ctx := testCtx(b)
	s := openStore(b, b.TempDir(), Options{})
	keys := resultKeys("bench", results)
	batch := make([]tsstore.Sample, 20)
	// One round over all results per second of sample time, ending now.
	base := time.Now().Add(-time.Duration(b.N/results+1) * time.Second).UnixMilli()

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		r, round := i%results, i/results
		ts := base + int64(round)*1000
		for m := range batch {
			batch[m] = tsstore.Sample{Key: keys[r][m], T: ts, V: float64(i + m)}
		}
		if err := s.Append(ctx, batch); err != nil {
			b.Fatalf("Append: %v", err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(20*b.N)/elapsed.Seconds(), "samples/s")

	if err := s.CompactHead(ctx); err != nil {
		b.Fatalf("CompactHead: %v", err)
	}
	if n, err := s.DiskBytes(); err == nil {
		b.ReportMetric(float64(n)/float64(20*b.N), "disk-B/sample")
	}
}

// BenchmarkAppend20Parallel is BenchmarkAppend20 with concurrent callers,
// each posting its own results, as the hub's REST handlers do.
func BenchmarkAppend20Parallel(b *testing.B) {
	const results = 1000
	ctx := testCtx(b)
	s := openStore(b, b.TempDir(), Options{})
	base := time.Now().Add(-2 * time.Hour).UnixMilli()
	var workers atomic.Int64

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		keys := resultKeys(fmt.Sprintf("w%d", workers.Add(1)), results)
		batch := make([]tsstore.Sample, 20)
		for i := 0; pb.Next(); i++ {
			r, round := i%results, i/results
			ts := base + int64(round)*1000
			for m := range batch {
				batch[m] = tsstore.Sample{Key: keys[r][m], T: ts, V: float64(i + m)}
			}
			if err := s.Append(ctx, batch); err != nil {
				b.Errorf("Append: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(20*b.N)/time.Since(start).Seconds(), "samples/s")
}

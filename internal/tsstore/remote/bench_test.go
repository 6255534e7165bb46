package remote

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/testutil/tsdbtest"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// BenchmarkRemoteWrite measures the remote-write path end to end: results
// of 50 samples appended by parallel callers (as ingest does), queued on
// disk, sent and accepted by a real TSDB on loopback. The clock stops once
// the TSDB has accepted everything; samples/s is the figure to read.
//
//	go test -run '^$' -bench RemoteWrite -benchtime 200000x ./internal/tsstore/remote/
func BenchmarkRemoteWrite(b *testing.B) {
	for _, k := range tsdbtest.Kinds {
		b.Run(string(k), func(b *testing.B) {
			srv := tsdbtest.Start(b, k)
			s, err := Open(Options{WriteURL: srv.WriteURL, QueryURL: srv.QueryURL, QueueDir: b.TempDir()}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const perResult = 50
			base := time.Now().Add(-time.Hour).UnixMilli()
			var next atomic.Int64
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				batch := make([]tsstore.Sample, perResult)
				for pb.Next() {
					n := next.Add(1)
					asset := strconv.FormatInt(n%2000, 10)
					for j := range batch {
						batch[j] = tsstore.Sample{Key: tsstore.SeriesKey{Metric: "sonde_bench_m" + strconv.Itoa(j%10),
							ContainerID: strconv.FormatInt(n%20, 10), AssetID: asset, Asset: "asset " + asset,
							Collector: "linux", Check: "system", Item: "item" + strconv.Itoa(j/10)},
							T: base + n/2000*1000, V: float64(n)}
					}
					if err := s.Append(ctx, batch); err != nil {
						b.Error(err)
						return
					}
				}
			})
			fctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			if err := s.Flush(fctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N*perResult)/time.Since(start).Seconds(), "samples/s")
		})
	}
}

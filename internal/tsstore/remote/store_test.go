package remote

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/sonde-monitoring/sonde/internal/testutil/tsdbtest"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// These tests run the store against real TSDBs (Debian's prometheus and
// victoria-metrics, started on loopback by tsdbtest).

func openStore(t *testing.T, srv *tsdbtest.Server, dir string, opts Options) *Store {
	t.Helper()
	opts.WriteURL, opts.QueryURL, opts.QueueDir = srv.WriteURL, srv.QueryURL, dir
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 20 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 200 * time.Millisecond
	}
	s, err := Open(opts, nil, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func sampleKey(container, metric, item string) tsstore.SeriesKey {
	return tsstore.SeriesKey{Metric: metric, ContainerID: container, AssetID: "a-" + container,
		Asset: "host " + container, Collector: "linux", Check: "system", Item: item}
}

// flushed waits until the remote holds and shows everything appended.
func flushed(t *testing.T, s *Store, srv *tsdbtest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if err := srv.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// countSamples counts the samples of metric in the scope over the last
// hour before at.
func countSamples(t *testing.T, s *Store, scope tsstore.Scope, metric string, at time.Time) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	v, err := s.Query(ctx, scope, "sum(count_over_time("+metric+"[1h]))", at)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	vec, ok := v.(promql.Vector)
	if !ok {
		t.Fatalf("Query gave %T, want a vector", v)
	}
	if len(vec) == 0 {
		return 0
	}
	return int(vec[0].F)
}

func forEachTSDB(t *testing.T, f func(t *testing.T, srv *tsdbtest.Server)) {
	for _, k := range tsdbtest.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			f(t, tsdbtest.Start(t, k))
		})
	}
}

func TestRemoteRoundTripAndScope(t *testing.T) {
	forEachTSDB(t, func(t *testing.T, srv *tsdbtest.Server) {
		s := openStore(t, srv, t.TempDir(), Options{})
		now := time.Now().Truncate(time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		for i := range 3 {
			ts := now.Add(time.Duration(i-2) * time.Minute).UnixMilli()
			if err := s.Append(ctx, []tsstore.Sample{
				{Key: sampleKey("c1", "sonde_system_load", ""), T: ts, V: float64(i) + 0.25},
				{Key: sampleKey("c1", "sonde_if_octets", "eth0"), T: ts, V: 1e12},
				{Key: sampleKey("c2", "sonde_system_load", ""), T: ts, V: 1000},
				{Key: sampleKey("c2", "sonde_secret_only", "x"), T: ts, V: 7},
			}); err != nil {
				t.Fatalf("Append: %v", err)
			}
		}
		flushed(t, s, srv)
		c1 := tsstore.Scope{ContainerIDs: []string{"c1"}}

		v, err := s.Query(ctx, c1, `sonde_system_load`, now)
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		vec := v.(promql.Vector)
		if len(vec) != 1 || vec[0].F != 2.25 || vec[0].Metric.Get("container_id") != "c1" || vec[0].Metric.Get("asset") != "host c1" {
			t.Fatalf("Query = %v, want c1's load 2.25 only", vec)
		}
		// Whatever the PromQL says, c2 stays out of c1's reads.
		for _, q := range []string{`{container_id="c2"}`, `sonde_secret_only`, `{__name__=~".+"} * 0 + 1`,
			`label_replace(sonde_system_load, "container_id", "c2", "", "")`, `count_over_time({container_id=~".+"}[1h])`} {
			v, err := s.Query(ctx, c1, q, now)
			if err != nil {
				t.Fatalf("Query %s: %v", q, err)
			}
			for _, smp := range v.(promql.Vector) {
				if smp.F == 1000 || smp.F == 7 || smp.Metric.Get("__name__") == "sonde_secret_only" {
					t.Errorf("Query %s in c1's scope shows c2's series %v", q, smp)
				}
			}
		}
		m, err := s.QueryRange(ctx, c1, `sonde_system_load`, now.Add(-2*time.Minute), now, time.Minute)
		if err != nil {
			t.Fatalf("QueryRange: %v", err)
		}
		mat := m.(promql.Matrix)
		if len(mat) != 1 || len(mat[0].Floats) != 3 || mat[0].Floats[0].F != 0.25 || mat[0].Floats[0].T != now.Add(-2*time.Minute).UnixMilli() {
			t.Fatalf("QueryRange = %v, want c1's three points from 0.25", mat)
		}
		vals, err := s.LabelValues(ctx, c1, "container_id", nil, now.Add(-time.Hour), now)
		if err != nil {
			t.Fatalf("LabelValues: %v", err)
		}
		if !slices.Equal(vals, []string{"c1"}) {
			t.Errorf("LabelValues(container_id) = %v, want [c1]", vals)
		}
		names, err := s.LabelValues(ctx, c1, "__name__", nil, now.Add(-time.Hour), now)
		if err != nil {
			t.Fatalf("LabelValues: %v", err)
		}
		if !slices.Equal(names, []string{"sonde_if_octets", "sonde_system_load"}) {
			t.Errorf("metric names of c1 = %v", names)
		}
		ms := [][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchRegexp, "__name__", "sonde_.*")}}
		series, err := s.Series(ctx, c1, ms, now.Add(-time.Hour), now)
		if err != nil {
			t.Fatalf("Series: %v", err)
		}
		if len(series) != 2 {
			t.Errorf("Series = %v, want c1's two", series)
		}
		ln, err := s.LabelNames(ctx, c1, nil, now.Add(-time.Hour), now)
		if err != nil {
			t.Fatalf("LabelNames: %v", err)
		}
		if !slices.Contains(ln, "item") || !slices.Contains(ln, "container_id") {
			t.Errorf("LabelNames = %v", ln)
		}
		if _, err := s.Query(ctx, tsstore.Scope{}, `up`, now); !errors.Is(err, tsstore.ErrEmptyScope) {
			t.Errorf("a query without scope: %v, want ErrEmptyScope", err)
		}
	})
}

// TestRemoteOutage stops the TSDB, appends, restarts the hub's store and
// then the TSDB: every sample arrives.
func TestRemoteOutage(t *testing.T) {
	forEachTSDB(t, func(t *testing.T, srv *tsdbtest.Server) {
		dir := t.TempDir()
		srv.Stop()
		s, err := Open(Options{WriteURL: srv.WriteURL, QueryURL: srv.QueryURL, QueueDir: dir,
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().Truncate(time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		const n = 300
		for i := range n {
			ts := now.Add(-time.Duration(n-i) * time.Second).UnixMilli()
			if err := s.Append(ctx, []tsstore.Sample{{Key: sampleKey("c1", "sonde_outage", strconv.Itoa(i%3)), T: ts, V: float64(i)}}); err != nil {
				t.Fatalf("Append %d while the TSDB is down: %v", i, err)
			}
		}
		if st := s.QueueStats(); st.Records != n {
			t.Fatalf("queue holds %d records, want %d", st.Records, n)
		}
		// The hub restarts during the outage: the queue is on disk.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openStore(t, srv, dir, Options{})
		srv.Restart()
		flushed(t, s, srv)
		if got := countSamples(t, s, tsstore.Scope{ContainerIDs: []string{"c1"}}, "sonde_outage", now); got != n {
			t.Fatalf("after the outage the TSDB holds %d samples, want %d", got, n)
		}
		if st := s.QueueStats(); st.Records != 0 {
			t.Errorf("queue still holds %d records", st.Records)
		}
	})
}

// TestRemoteSlowNeverBlocksIngest freezes the TSDB (SIGSTOP: it takes
// connections and answers nothing): Append goes on into the queue, until
// the queue is full, which it says at once.
func TestRemoteSlowNeverBlocksIngest(t *testing.T) {
	forEachTSDB(t, func(t *testing.T, srv *tsdbtest.Server) {
		s := openStore(t, srv, t.TempDir(), Options{Queue: QueueOptions{MaxBytes: 256 << 10, SegmentBytes: 64 << 10},
			SendTimeout: 2 * time.Second})
		srv.Pause()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		now := time.Now().Truncate(time.Second)
		base := now.Add(-30 * time.Minute)
		batch := make([]tsstore.Sample, 50)
		accepted := 0
		var full error
		for i := 0; ctx.Err() == nil; i++ {
			for j := range batch {
				batch[j] = tsstore.Sample{Key: sampleKey("c1", "sonde_slow", strconv.Itoa(j)), T: base.Add(time.Duration(i) * 100 * time.Millisecond).UnixMilli(), V: float64(i)}
			}
			if err := s.Append(ctx, batch); err != nil {
				full = err
				break
			}
			accepted++
		}
		if !errors.Is(full, ErrQueueFull) {
			t.Fatalf("Append against a frozen TSDB: %v after %d results, want ErrQueueFull", full, accepted)
		}
		srv.Resume()
		flushed(t, s, srv)
		if err := s.Append(ctx, batch[:1]); err != nil {
			t.Fatalf("Append once the TSDB is back: %v", err)
		}
		flushed(t, s, srv)
		want := accepted * len(batch)
		if got := countSamples(t, s, tsstore.Scope{ContainerIDs: []string{"c1"}}, `sonde_slow{item!="0"}`, now) +
			countSamples(t, s, tsstore.Scope{ContainerIDs: []string{"c1"}}, `sonde_slow{item="0"}`, now); got < want {
			t.Fatalf("the TSDB holds %d samples, want at least the %d accepted", got, want)
		}
	})
}

func TestRemoteAppendRefusesBadSamples(t *testing.T) {
	srv := tsdbtest.Start(t, tsdbtest.Prometheus)
	s := openStore(t, srv, t.TempDir(), Options{})
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		smp  tsstore.Sample
		want error
	}{
		{"no metric", tsstore.Sample{Key: tsstore.SeriesKey{ContainerID: "c1"}, T: 1}, ErrInvalidSample},
		{"no container", tsstore.Sample{Key: tsstore.SeriesKey{Metric: "m"}, T: 1}, ErrInvalidSample},
		{"future", tsstore.Sample{Key: sampleKey("c1", "m", ""), T: time.Now().Add(2 * time.Hour).UnixMilli()}, tsstore.ErrOutOfRange},
	} {
		if err := s.Append(ctx, []tsstore.Sample{tc.smp}); !errors.Is(err, tc.want) {
			t.Errorf("%s: Append = %v, want %v", tc.name, err, tc.want)
		}
	}
	if st := s.QueueStats(); st.Records != 0 {
		t.Errorf("refused samples reached the queue: %d records", st.Records)
	}
}

func TestOpenNeedsBothURLs(t *testing.T) {
	if _, err := Open(Options{QueueDir: t.TempDir()}, nil, nil); err == nil {
		t.Fatal("Open without URLs succeeded")
	}
}

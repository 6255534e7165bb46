package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// crashDirEnv names the environment variable that turns the test binary
// into the crashing child of TestCrashDurability.
const crashDirEnv = "SONDE_TSSTORE_CRASH_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		os.Exit(crashChild(dir))
	}
	os.Exit(m.Run())
}

// crashChild appends crashSamples to a store in dir, reports it on stdout
// and waits to be killed, never closing the store.
func crashChild(dir string) int {
	s, err := Open(dir, Options{}, nil, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Append(ctx, crashSamples(crashBase(dir))); err != nil {
		fmt.Fprintln(os.Stderr, "append:", err)
		return 3
	}
	fmt.Println("appended")
	time.Sleep(time.Minute) // The parent kills us long before.
	return 4
}

// crashBase is the time of the crash test's samples, shared by parent and
// child through a file, since their clocks are read at different times.
func crashBase(dir string) int64 {
	b, err := os.ReadFile(dir + ".base")
	if err != nil {
		panic(err)
	}
	var t int64
	if _, err := fmt.Sscan(string(b), &t); err != nil {
		panic(err)
	}
	return t
}

func crashSamples(base int64) []tsstore.Sample {
	out := make([]tsstore.Sample, 0, 20)
	for i := range 20 {
		out = append(out, tsstore.Sample{Key: key("crash", fmt.Sprintf("sonde_crash_m%d", i), ""), T: base, V: float64(i) + 0.5})
	}
	return out
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts, nil, nil)
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

func key(container, metric, item string) tsstore.SeriesKey {
	return tsstore.SeriesKey{
		Metric:      metric,
		ContainerID: container,
		AssetID:     "asset-" + container,
		Asset:       "host-" + container,
		Collector:   "col-1",
		Check:       "check-1",
		Item:        item,
	}
}

// baseTime is a recent minute, so that samples fall well inside the
// future tolerance and the out-of-order window.
func baseTime() time.Time {
	return time.Now().Truncate(time.Minute).Add(-30 * time.Minute)
}

func vector(t *testing.T, v parser.Value) promql.Vector {
	t.Helper()
	vec, ok := v.(promql.Vector)
	if !ok {
		t.Fatalf("result is %T, want promql.Vector", v)
	}
	return vec
}

func matrix(t *testing.T, v parser.Value) promql.Matrix {
	t.Helper()
	m, ok := v.(promql.Matrix)
	if !ok {
		t.Fatalf("result is %T, want promql.Matrix", v)
	}
	return m
}

func TestAppendQueryRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, t.TempDir(), Options{})
	base := baseTime()
	scope := tsstore.Scope{ContainerIDs: []string{"c1"}}

	var samples []tsstore.Sample
	for i := range 5 {
		samples = append(samples,
			tsstore.Sample{Key: key("c1", "sonde_cpu_usage", ""), T: base.Add(time.Duration(i) * time.Minute).UnixMilli(), V: 42.5 + float64(i)},
			tsstore.Sample{Key: key("c1", "sonde_if_octets", "eth0"), T: base.Add(time.Duration(i) * time.Minute).UnixMilli(), V: float64(i)},
		)
	}
	if err := s.Append(ctx, samples); err != nil {
		t.Fatalf("Append: %v", err)
	}

	v, err := s.Query(ctx, scope, "sonde_cpu_usage", base)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	vec := vector(t, v)
	if len(vec) != 1 {
		t.Fatalf("got %d samples, want 1: %v", len(vec), vec)
	}
	if vec[0].F != 42.5 || vec[0].T != base.UnixMilli() {
		t.Errorf("got %v @ %d, want 42.5 @ %d", vec[0].F, vec[0].T, base.UnixMilli())
	}
	want := labels.FromStrings(
		"__name__", "sonde_cpu_usage",
		"asset", "host-c1",
		"asset_id", "asset-c1",
		"check", "check-1",
		"collector", "col-1",
		"container_id", "c1",
	)
	if !labels.Equal(vec[0].Metric, want) {
		t.Errorf("labels %v, want %v (empty item left out)", vec[0].Metric, want)
	}

	v, err = s.QueryRange(ctx, scope, `sonde_if_octets{item="eth0"}`, base, base.Add(4*time.Minute), time.Minute)
	if err != nil {
		t.Fatalf("QueryRange: %v", err)
	}
	m := matrix(t, v)
	if len(m) != 1 || len(m[0].Floats) != 5 {
		t.Fatalf("got %v, want one series of 5 points", m)
	}
	for i, p := range m[0].Floats {
		if p.F != float64(i) || p.T != base.Add(time.Duration(i)*time.Minute).UnixMilli() {
			t.Errorf("point %d = %v @ %d", i, p.F, p.T)
		}
	}
}

func TestAppendDuplicates(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, t.TempDir(), Options{})
	base := baseTime()
	scope := tsstore.Scope{ContainerIDs: []string{"c1"}}
	batch := func(off time.Duration, v float64) []tsstore.Sample {
		return []tsstore.Sample{
			{Key: key("c1", "sonde_a", ""), T: base.Add(off).UnixMilli(), V: v},
			{Key: key("c1", "sonde_b", ""), T: base.Add(off).UnixMilli(), V: v},
		}
	}
	if err := s.Append(ctx, batch(0, 1)); err != nil {
		t.Fatalf("first Append: %v", err)
	}
	if err := s.Append(ctx, batch(0, 1)); err != nil {
		t.Fatalf("retried Append of the newest samples: %v", err)
	}
	if err := s.Append(ctx, batch(time.Minute, 2)); err != nil {
		t.Fatalf("Append: %v", err)
	}
	// A retry arriving after newer samples goes the out-of-order way.
	if err := s.Append(ctx, batch(0, 1)); err != nil {
		t.Fatalf("retried Append of older samples: %v", err)
	}

	// A different value at the newest time is refused, and with it the
	// whole call: sonde_b gets no point at +2m.
	conflict := []tsstore.Sample{
		{Key: key("c1", "sonde_a", ""), T: base.Add(time.Minute).UnixMilli(), V: 99},
		{Key: key("c1", "sonde_b", ""), T: base.Add(2 * time.Minute).UnixMilli(), V: 3},
	}
	err := s.Append(ctx, conflict)
	var ae *AppendError
	if !errors.As(err, &ae) || ae.Rejected != 1 || ae.Total != 2 {
		t.Fatalf("conflicting Append: got %v, want an AppendError with 1 of 2 rejected", err)
	}
	if !errors.Is(err, storage.ErrDuplicateSampleForTimestamp) || !errors.Is(err, tsstore.ErrConflict) {
		t.Errorf("conflicting Append: %v does not match ErrDuplicateSampleForTimestamp and tsstore.ErrConflict", err)
	}

	v, err := s.QueryRange(ctx, scope, `{__name__=~"sonde_.+"}`, base, base.Add(2*time.Minute), time.Minute)
	if err != nil {
		t.Fatalf("QueryRange: %v", err)
	}
	got := map[string][]float64{}
	for _, series := range matrix(t, v) {
		for _, p := range series.Floats {
			got[series.Metric.Get("__name__")] = append(got[series.Metric.Get("__name__")], p.F)
		}
	}
	// Neither has a point of its own at +2m; the lookback repeats +1m.
	want := map[string][]float64{"sonde_a": {1, 2, 2}, "sonde_b": {1, 2, 2}}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("%s = %v, want %v", name, got[name], w)
		}
	}
}

func TestAppendRejections(t *testing.T) {
	ctx := testCtx(t)
	now := time.Now()
	good := tsstore.Sample{Key: key("c1", "sonde_good", ""), T: now.UnixMilli(), V: 1}

	cases := []struct {
		name   string
		opts   Options
		sample tsstore.Sample
		want   error
	}{
		{"older than the window", Options{}, tsstore.Sample{Key: key("c1", "sonde_old", ""), T: now.Add(-25 * time.Hour).UnixMilli(), V: 1}, storage.ErrTooOldSample},
		{"too far in the future", Options{}, tsstore.Sample{Key: key("c1", "sonde_future", ""), T: now.Add(2 * time.Hour).UnixMilli(), V: 1}, ErrTooFarInFuture},
		{"out of order, window disabled", Options{OutOfOrderWindow: -1}, tsstore.Sample{Key: key("c1", "sonde_good", ""), T: now.Add(-time.Second).UnixMilli(), V: 1}, storage.ErrOutOfOrderSample},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), tc.opts)
			if err := s.Append(ctx, []tsstore.Sample{good}); err != nil {
				t.Fatalf("Append: %v", err)
			}
			other := tsstore.Sample{Key: key("c1", "sonde_other", ""), T: now.UnixMilli(), V: 7}
			err := s.Append(ctx, []tsstore.Sample{tc.sample, other})
			var ae *AppendError
			if !errors.As(err, &ae) || ae.Rejected != 1 {
				t.Fatalf("got %v, want an AppendError with one rejection", err)
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, tsstore.ErrOutOfRange) {
				t.Errorf("got %v, want it to match %v and tsstore.ErrOutOfRange", err, tc.want)
			}
			v, err := s.Query(ctx, tsstore.Scope{ContainerIDs: []string{"c1"}}, "sonde_other", now)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			if vec := vector(t, v); len(vec) != 0 {
				t.Errorf("the call's valid sample was stored (%v): a refused call must store nothing", vec)
			}
		})
	}

	t.Run("invalid sample fails the whole call", func(t *testing.T) {
		s := openStore(t, t.TempDir(), Options{})
		bad := tsstore.Sample{Key: tsstore.SeriesKey{Metric: "sonde_x"}, T: now.UnixMilli(), V: 1}
		if err := s.Append(ctx, []tsstore.Sample{good, bad}); !errors.Is(err, ErrInvalidSample) {
			t.Fatalf("got %v, want ErrInvalidSample", err)
		}
		v, err := s.Query(ctx, tsstore.Scope{ContainerIDs: []string{"c1"}}, "sonde_good", now)
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		if vec := vector(t, v); len(vec) != 0 {
			t.Errorf("got %v, want nothing stored", vec)
		}
	})
}

func TestOutOfOrderWithinWindow(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, t.TempDir(), Options{})
	now := time.Now().Truncate(time.Minute)
	k := key("c1", "sonde_replayed", "")
	offsets := []time.Duration{0, -time.Hour, -23 * time.Hour, -2 * time.Hour}
	for _, off := range offsets {
		err := s.Append(ctx, []tsstore.Sample{{Key: k, T: now.Add(off).UnixMilli(), V: float64(-off / time.Hour)}})
		if err != nil {
			t.Fatalf("Append at %v: %v", off, err)
		}
	}
	v, err := s.Query(ctx, tsstore.Scope{ContainerIDs: []string{"c1"}}, "sonde_replayed[24h]", now)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	m := matrix(t, v)
	if len(m) != 1 {
		t.Fatalf("got %v", m)
	}
	var got []float64
	for _, p := range m[0].Floats {
		got = append(got, p.F)
	}
	if want := []float64{23, 2, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v in time order", got, want)
	}
}

func TestReopen(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	base := baseTime()
	scope := tsstore.Scope{ContainerIDs: []string{"c1"}}
	samples := []tsstore.Sample{
		{Key: key("c1", "sonde_a", ""), T: base.UnixMilli(), V: 42.5},
		{Key: key("c1", "sonde_a", ""), T: base.Add(time.Minute).UnixMilli(), V: 43.5},
	}

	s, err := Open(dir, Options{}, nil, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Append(ctx, samples); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Append(ctx, samples); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: got %v, want ErrClosed", err)
	}
	if _, err := s.Query(ctx, scope, "sonde_a", base); !errors.Is(err, ErrClosed) {
		t.Errorf("Query after Close: got %v, want ErrClosed", err)
	}

	check := func(s *Store) {
		t.Helper()
		v, err := s.QueryRange(ctx, scope, "sonde_a", base, base.Add(time.Minute), time.Minute)
		if err != nil {
			t.Fatalf("QueryRange: %v", err)
		}
		m := matrix(t, v)
		if len(m) != 1 || len(m[0].Floats) != 2 || m[0].Floats[0].F != 42.5 || m[0].Floats[1].F != 43.5 {
			t.Fatalf("got %v, want 42.5 and 43.5", m)
		}
	}

	s = openStore(t, dir, Options{})
	check(s)

	// And once more from a block rather than the write-ahead log.
	if err := s.CompactHead(ctx); err != nil {
		t.Fatalf("CompactHead: %v", err)
	}
	if n := len(s.db.Blocks()); n == 0 {
		t.Fatalf("no block after CompactHead")
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openStore(t, dir, Options{})
	check(s)
	if b, err := s.DiskBytes(); err != nil || b == 0 {
		t.Errorf("DiskBytes = %d, %v", b, err)
	}
}

// TestCrashDurability appends in a child process that is then killed with
// SIGKILL, without Close: what Append returned for must be replayed from
// the write-ahead log. (A power loss is another matter: like Prometheus,
// the TSDB fsyncs the log at segment boundaries and on Close only.)
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	ctx := testCtx(t)
	dir := t.TempDir() + "/db"
	base := baseTime().UnixMilli()
	if err := os.WriteFile(dir+".base", fmt.Appendf(nil, "%d", base), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the child: %v", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "appended\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child said %q (%v)", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("killing the child: %v", err)
	}
	_ = cmd.Wait() // "signal: killed"

	s := openStore(t, dir, Options{})
	v, err := s.Query(ctx, tsstore.Scope{ContainerIDs: []string{"crash"}}, `{__name__=~"sonde_crash_.+"}`, time.UnixMilli(base))
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	vec := vector(t, v)
	if len(vec) != 20 {
		t.Fatalf("replayed %d series, want 20", len(vec))
	}
	for _, smp := range vec {
		var i int
		if _, err := fmt.Sscanf(smp.Metric.Get("__name__"), "sonde_crash_m%d", &i); err != nil {
			t.Fatal(err)
		}
		if smp.F != float64(i)+0.5 {
			t.Errorf("%s = %v, want %v", smp.Metric, smp.F, float64(i)+0.5)
		}
	}
}

func TestQueryErrors(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, t.TempDir(), Options{MaxSamples: 1})
	base := baseTime()
	scope := tsstore.Scope{ContainerIDs: []string{"c1"}}
	if err := s.Append(ctx, []tsstore.Sample{
		{Key: key("c1", "sonde_a", "x"), T: base.UnixMilli(), V: 1},
		{Key: key("c1", "sonde_a", "y"), T: base.UnixMilli(), V: 2},
	}); err != nil {
		t.Fatalf("Append: %v", err)
	}

	_, err := s.Query(ctx, scope, "sum(", base)
	var qe *QueryError
	if !errors.As(err, &qe) {
		t.Errorf("parse error: got %T %v, want *QueryError", err, err)
	}
	if _, ok := errors.AsType[parser.ParseErrors](err); !ok {
		t.Errorf("parse error: %v does not wrap parser.ParseErrors", err)
	}
	if _, err := s.QueryRange(ctx, scope, "sonde_a[5m]", base, base, time.Minute); !errors.As(err, &qe) {
		t.Errorf("range query of a range vector: got %v, want *QueryError", err)
	}
	if _, err := s.QueryRange(ctx, scope, "sonde_a", base, base, 0); !errors.As(err, &qe) {
		t.Errorf("zero step: got %v, want *QueryError", err)
	}
	if _, err := s.QueryRange(ctx, scope, "sonde_a", base, base.Add(-time.Minute), time.Minute); !errors.As(err, &qe) {
		t.Errorf("end before start: got %v, want *QueryError", err)
	}
	if _, err := s.Query(ctx, scope, "sonde_a", base); !errors.As(err, new(promql.ErrTooManySamples)) {
		t.Errorf("over MaxSamples: got %v, want promql.ErrTooManySamples", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Query(canceled, scope, "sonde_a", base); !errors.As(err, new(promql.ErrQueryCanceled)) {
		t.Errorf("canceled context: got %v, want promql.ErrQueryCanceled", err)
	}
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	if _, err := s.Query(expired, scope, "sonde_a", base); !errors.As(err, new(promql.ErrQueryTimeout)) {
		t.Errorf("expired context: got %v, want promql.ErrQueryTimeout", err)
	}
}

func TestScopeMatcher(t *testing.T) {
	for _, tc := range []struct {
		ids     []string
		matches []string
		misses  []string
	}{
		{ids: []string{"a.1"}, matches: []string{"a.1"}, misses: []string{"aX1", "a.1x", ""}},
		{ids: []string{"a.1", "a+2", "a.1"}, matches: []string{"a.1", "a+2"}, misses: []string{"aX1", "aa2", "a.1|a+2", ""}},
		{ids: []string{"", "(x)"}, matches: []string{"(x)"}, misses: []string{"x", ""}},
	} {
		m, err := (tsstore.Scope{ContainerIDs: tc.ids}).Matcher()
		if err != nil {
			t.Fatalf("%q: %v", tc.ids, err)
		}
		if m.Name != tsstore.LabelContainerID {
			t.Errorf("%q: matcher on %q", tc.ids, m.Name)
		}
		for _, v := range tc.matches {
			if !m.Matches(v) {
				t.Errorf("%q: %v does not match %q", tc.ids, m, v)
			}
		}
		for _, v := range tc.misses {
			if m.Matches(v) {
				t.Errorf("%q: %v matches %q", tc.ids, m, v)
			}
		}
	}
	for _, ids := range [][]string{nil, {}, {""}} {
		if _, err := (tsstore.Scope{ContainerIDs: ids}).Matcher(); !errors.Is(err, tsstore.ErrEmptyScope) {
			t.Errorf("%q: got %v, want ErrEmptyScope", ids, err)
		}
	}
}

func TestSpecialValues(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, t.TempDir(), Options{})
	base := baseTime()
	scope := tsstore.Scope{ContainerIDs: []string{"c1"}}
	vals := []float64{0, 1, math.Inf(1), math.Inf(-1), math.NaN(), 1e-300, -0.125}
	var samples []tsstore.Sample
	for i, v := range vals {
		samples = append(samples, tsstore.Sample{Key: key("c1", "sonde_special", fmt.Sprint(i)), T: base.UnixMilli(), V: v})
	}
	if err := s.Append(ctx, samples); err != nil {
		t.Fatalf("Append: %v", err)
	}
	// Idempotent for NaN too: the same bits are the same value.
	if err := s.Append(ctx, samples); err != nil {
		t.Fatalf("re-Append: %v", err)
	}
	v, err := s.Query(ctx, scope, "sonde_special", base)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	for _, smp := range vector(t, v) {
		var i int
		fmt.Sscan(smp.Metric.Get("item"), &i)
		want := vals[i]
		if !(smp.F == want || math.IsNaN(smp.F) && math.IsNaN(want)) {
			t.Errorf("item %d: got %v, want %v", i, smp.F, want)
		}
	}
}

func TestQuerySlots(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, t.TempDir(), Options{MaxConcurrentQueries: 1})
	release, err := s.acquire(ctx, "test")
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	waiting, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = s.Query(waiting, tsstore.Scope{ContainerIDs: []string{"c1"}}, "vector(1)", time.Now())
	if !errors.As(err, new(promql.ErrQueryTimeout)) {
		t.Errorf("query without a free slot: got %v, want promql.ErrQueryTimeout", err)
	}
	release()
	if _, err := s.Query(ctx, tsstore.Scope{ContainerIDs: []string{"c1"}}, "vector(1)", time.Now()); err != nil {
		t.Errorf("query with a free slot: %v", err)
	}
}

// TestConcurrentUseAndClose appends and reads from several goroutines
// while the store closes: every call either works or returns ErrClosed.
func TestConcurrentUseAndClose(t *testing.T) {
	ctx := testCtx(t)
	s, err := Open(t.TempDir(), Options{}, nil, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	scope := tsstore.Scope{ContainerIDs: []string{"c1"}}
	base := baseTime()
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			for i := 0; ; i++ {
				var err error
				if w%2 == 0 {
					err = s.Append(ctx, []tsstore.Sample{{Key: key("c1", fmt.Sprintf("sonde_w%d", w), ""), T: base.Add(time.Duration(i) * time.Millisecond).UnixMilli(), V: float64(i)}})
				} else {
					_, err = s.Query(ctx, scope, `count({__name__=~"sonde_.+"})`, base.Add(time.Second))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range 8 {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("got %v, want ErrClosed", err)
			}
		case <-ctx.Done():
			t.Fatal("a goroutine did not stop")
		}
	}
}

func TestMetricsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := Open(t.TempDir(), Options{}, nil, reg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
	}
	for _, name := range []string{"prometheus_tsdb_head_series", "prometheus_engine_queries"} {
		if !found[name] {
			t.Errorf("metric %s not registered", name)
		}
	}
}

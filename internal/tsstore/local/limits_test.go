package local

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// TestQueryShapeLimits checks that queries whose shape alone is too costly
// are rejected as *QueryError before evaluation, and that their neighbours
// within the limits still run. The store's retention is one hour, so the
// evaluation window of one subquery may hold 60+11,000 points.
func TestQueryShapeLimits(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, t.TempDir(), Options{Retention: time.Hour, MaxSamples: 30_000})
	scope := tsstore.Scope{ContainerIDs: []string{"c1"}}
	base := baseTime()

	// Without the checks, the rejected queries of this list are cheap
	// but for the last two, which would take gigabytes: the test stops
	// at the first rejected query that is accepted, before those.
	instant := []struct {
		query string
		ok    bool
	}{
		{`max_over_time(vector(1)[1h:100ms])`, false}, // 36,000 points.
		{`max_over_time(vector(1)[1h:1s])`, true},     // 3,600 points.
		{`max_over_time(vector(1)[11000s:1s])`, true},
		{`max_over_time(vector(1)[11001s:1s])`, false},
		// Without a step, the 1-minute default.
		{`max_over_time(vector(1)[7d:])`, true}, // 10,080 points.
		{`max_over_time(vector(1)[8d:])`, false},
		// Nested: the inner subquery is evaluated over the outer's
		// whole range, (1h+1s)/200ms = 18,005 points.
		{`max_over_time(max_over_time(vector(1)[1s:200ms])[1h:10m])`, false},
		{`max_over_time(max_over_time(vector(1)[1s:1s])[1h:10m])`, true},
		// Together over MaxSamples (30,000): 11,000 points thrice.
		{`max_over_time(vector(1)[11000s:1s]) + max_over_time(vector(2)[11000s:1s])`, true},
		{`max_over_time(vector(1)[11000s:1s]) + max_over_time(vector(2)[11000s:1s]) + max_over_time(vector(3)[11000s:1s])`, false},
		// Range selectors up to the retention.
		{`max_over_time(sonde_a[1h])`, true},
		{`max_over_time(sonde_a[61m])`, false},
		{`max_over_time(max_over_time(sonde_a[2h])[1h:1m])`, false},
		// The reported attack (5 GB before it failed).
		{`max_over_time(vector(1)[13h:1ms])`, false},
		// Widths that would wrap around in nanoseconds.
		{`max_over_time(max_over_time(max_over_time(vector(1)[1s:1ms])[200y:1y])[200y:1y])`, false},
	}
	for _, tc := range instant {
		start := time.Now()
		_, err := s.Query(ctx, scope, tc.query, base)
		checkShapeErr(t, tc.query, err, tc.ok)
		if took := time.Since(start); !tc.ok && took > 5*time.Second {
			t.Errorf("%s: rejected after %v, not before evaluation", tc.query, took)
		}
	}

	ranges := []struct {
		query      string
		start, end time.Time
		step       time.Duration
		ok         bool
	}{
		{`vector(1)`, base, base.Add(11000 * time.Second), time.Second, true},
		{`vector(1)`, base, base.Add(11001 * time.Second), time.Second, false},
		// The subquery is evaluated over the query's range plus its own:
		// (1h+1m)/100ms = 36,600 points.
		{`max_over_time(vector(1)[1m:100ms])`, base, base.Add(time.Hour), 10 * time.Minute, false},
		{`max_over_time(vector(1)[1m:1s])`, base, base.Add(time.Hour), 10 * time.Minute, true},
		// With @, over its own range only.
		{`max_over_time(vector(1)[1m:100ms] @ end())`, base, base.Add(time.Hour), 10 * time.Minute, true},
		{`max_over_time(vector(1)[1m:1ms])`, base, base.Add(time.Hour), 10 * time.Minute, false},
	}
	for _, tc := range ranges {
		_, err := s.QueryRange(ctx, scope, tc.query, tc.start, tc.end, tc.step)
		checkShapeErr(t, fmt.Sprintf("range %s over %v at %v", tc.query, tc.end.Sub(tc.start), tc.step), err, tc.ok)
	}
}

func checkShapeErr(t *testing.T, what string, err error, ok bool) {
	t.Helper()
	if ok {
		if err != nil {
			t.Errorf("%s: %v, want it accepted", what, err)
		}
		return
	}
	var qe *QueryError
	if !errors.As(err, &qe) || !qe.BadData() {
		t.Fatalf("%s: got %v, want a *QueryError", what, err)
	}
}

func TestDefaultLimits(t *testing.T) {
	o := Options{}.withDefaults()
	if o.MaxSamples != 5_000_000 || o.QueryTimeout != 30*time.Second || o.MaxConcurrentQueriesPerScope != 4 {
		t.Errorf("defaults MaxSamples %d, QueryTimeout %v, MaxConcurrentQueriesPerScope %d; want 5,000,000, 30s and 4",
			o.MaxSamples, o.QueryTimeout, o.MaxConcurrentQueriesPerScope)
	}
}

// TestScopeSlots checks that a scope's reads wait for a slot of their own
// once it runs MaxConcurrentQueriesPerScope of them, while other scopes'
// reads still run, and that the per-scope table empties.
func TestScopeSlots(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, t.TempDir(), Options{MaxConcurrentQueriesPerScope: 1})
	base := baseTime()
	if err := s.Append(ctx, []tsstore.Sample{
		{Key: key("c1", "sonde_a", ""), T: base.UnixMilli(), V: 1},
		{Key: key("c3", "sonde_a", ""), T: base.UnixMilli(), V: 3},
	}); err != nil {
		t.Fatalf("Append: %v", err)
	}
	busy := tsstore.Scope{ContainerIDs: []string{"c1", "c2"}}
	// The same scope, written otherwise.
	busyAgain := tsstore.Scope{ContainerIDs: []string{"c2", "", "c1", "c2"}}
	other := tsstore.Scope{ContainerIDs: []string{"c3"}}
	start, end := base.Add(-time.Hour), base.Add(time.Hour)

	reads := map[string]func(context.Context, tsstore.Scope) error{
		"Query": func(ctx context.Context, sc tsstore.Scope) error {
			_, err := s.Query(ctx, sc, "sonde_a", base)
			return err
		},
		"QueryRange": func(ctx context.Context, sc tsstore.Scope) error {
			_, err := s.QueryRange(ctx, sc, "sonde_a", base, base, time.Minute)
			return err
		},
		"Series": func(ctx context.Context, sc tsstore.Scope) error {
			_, err := s.Series(ctx, sc, nil, start, end)
			return err
		},
		"LabelNames": func(ctx context.Context, sc tsstore.Scope) error {
			_, err := s.LabelNames(ctx, sc, nil, start, end)
			return err
		},
		"LabelValues": func(ctx context.Context, sc tsstore.Scope) error {
			_, err := s.LabelValues(ctx, sc, "item", nil, start, end)
			return err
		},
	}

	_, busyKey, err := busy.MatcherAndKey()
	if err != nil {
		t.Fatal(err)
	}
	release, err := s.acquire(ctx, busyKey)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	for name, read := range reads {
		waiting, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		if err := read(waiting, busyAgain); !errors.As(err, new(promql.ErrQueryTimeout)) {
			t.Errorf("%s of a scope without a free slot: got %v, want promql.ErrQueryTimeout", name, err)
		}
		cancel()
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if err := read(canceled, busy); !errors.As(err, new(promql.ErrQueryCanceled)) {
			t.Errorf("%s of a scope without a free slot, canceled: got %v, want promql.ErrQueryCanceled", name, err)
		}
		if err := read(ctx, other); err != nil {
			t.Errorf("%s of another scope: %v", name, err)
		}
	}
	if n := s.reads.Scopes(); n != 1 {
		t.Errorf("%d scopes in the table while one holds a slot, want 1", n)
	}
	release()
	for name, read := range reads {
		if err := read(ctx, busyAgain); err != nil {
			t.Errorf("%s of the scope once its slot is free: %v", name, err)
		}
	}
	if n := s.reads.Scopes(); n != 0 {
		t.Errorf("%d scopes left in the table, want 0", n)
	}
}

// TestScopeSlotsConcurrent hammers the per-scope limit from many
// goroutines and checks that no scope ever runs more than its share and
// that the table empties.
func TestScopeSlotsConcurrent(t *testing.T) {
	ctx := testCtx(t)
	const limit = 3
	s := openStore(t, t.TempDir(), Options{MaxConcurrentQueriesPerScope: limit, MaxConcurrentQueries: 100})
	var running [5]atomic.Int32
	var wg sync.WaitGroup
	for g := range 40 {
		wg.Go(func() {
			for i := range 50 {
				k := (g + i) % len(running)
				release, err := s.acquire(ctx, fmt.Sprint(k))
				if err != nil {
					t.Errorf("acquire: %v", err)
					return
				}
				if n := running[k].Add(1); n > limit {
					t.Errorf("scope %d runs %d reads, more than %d", k, n, limit)
				}
				time.Sleep(time.Duration(i%3) * 100 * time.Microsecond)
				running[k].Add(-1)
				release()
			}
		})
	}
	wg.Wait()
	if n := s.reads.Scopes(); n != 0 {
		t.Errorf("%d scopes left in the table, want 0", n)
	}
}

func TestScopeKey(t *testing.T) {
	keyOf := func(ids ...string) string {
		t.Helper()
		_, k, err := (tsstore.Scope{ContainerIDs: ids}).MatcherAndKey()
		if err != nil {
			t.Fatalf("%q: %v", ids, err)
		}
		return k
	}
	if a, b := keyOf("b", "a", "", "a"), keyOf("a", "b"); a != b {
		t.Errorf("keys of the same scope differ: %q, %q", a, b)
	}
	for _, pair := range [][2][]string{
		{{"a", "b"}, {"a", "b", "c"}},
		{{"a", "b"}, {"ab"}},
		{{"a:1", "b"}, {"a", "1:b"}},
	} {
		if keyOf(pair[0]...) == keyOf(pair[1]...) {
			t.Errorf("scopes %q and %q share a key", pair[0], pair[1])
		}
	}
}

// TestMetadataTimeout checks that Series, LabelNames and LabelValues stop
// at Options.QueryTimeout.
func TestMetadataTimeout(t *testing.T) {
	ctx := testCtx(t)
	s := openStore(t, t.TempDir(), Options{QueryTimeout: time.Nanosecond})
	base := baseTime()
	var samples []tsstore.Sample
	for i := range 1000 {
		samples = append(samples, tsstore.Sample{Key: key("c1", "sonde_a", fmt.Sprint(i)), T: base.UnixMilli(), V: 1})
	}
	if err := s.Append(ctx, samples); err != nil {
		t.Fatalf("Append: %v", err)
	}
	scope := tsstore.Scope{ContainerIDs: []string{"c1"}}
	ms := [][]*labels.Matcher{{labels.MustNewMatcher(labels.MatchRegexp, "item", ".*9.*")}}
	start, end := base.Add(-time.Hour), base.Add(time.Hour)
	checks := map[string]error{}
	_, checks["Series"] = s.Series(ctx, scope, ms, start, end)
	_, checks["LabelNames"] = s.LabelNames(ctx, scope, ms, start, end)
	_, checks["LabelValues"] = s.LabelValues(ctx, scope, "item", ms, start, end)
	for name, err := range checks {
		if !errors.As(err, new(promql.ErrQueryTimeout)) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: got %v, want promql.ErrQueryTimeout and context.DeadlineExceeded", name, err)
		}
	}
}

// recordingQuerier records the matchers of the calls it gets.
type recordingQuerier struct {
	calls [][]*labels.Matcher
}

func (q *recordingQuerier) Querier(int64, int64) (storage.Querier, error) { return q, nil }

func (q *recordingQuerier) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	q.calls = append(q.calls, ms)
	return storage.EmptySeriesSet()
}

func (q *recordingQuerier) LabelValues(_ context.Context, _ string, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	q.calls = append(q.calls, ms)
	return nil, nil, nil
}

func (q *recordingQuerier) LabelNames(_ context.Context, _ *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	q.calls = append(q.calls, ms)
	return nil, nil, nil
}

func (*recordingQuerier) Close() error { return nil }

// TestScopeMatcherFirst checks that the scope's matcher reaches the TSDB
// first, so that its PostingsForMatchers stops before running the caller's
// regular expressions over all tenants' label values when the scope has
// no series (it looks matchers up in order and stops at the first empty).
func TestScopeMatcherFirst(t *testing.T) {
	ctx := testCtx(t)
	scope, err := (tsstore.Scope{ContainerIDs: []string{"c1", "c2"}}).Matcher()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingQuerier{}
	q, err := scopedQueryable{inner: rec, scope: scope}.Querier(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	user := []*labels.Matcher{
		labels.MustNewMatcher(labels.MatchRegexp, "item", ".*9.*9.*N"),
		labels.MustNewMatcher(labels.MatchEqual, "__name__", "sonde_a"),
	}
	q.Select(ctx, false, nil, user...)
	if _, _, err := q.LabelValues(ctx, "item", nil, user...); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.LabelNames(ctx, nil, user...); err != nil {
		t.Fatal(err)
	}
	if len(rec.calls) != 3 {
		t.Fatalf("%d calls recorded, want 3", len(rec.calls))
	}
	for i, ms := range rec.calls {
		if len(ms) != 3 || ms[0] != scope || ms[1] != user[0] || ms[2] != user[1] {
			var b strings.Builder
			for _, m := range ms {
				b.WriteString(m.String() + " ")
			}
			t.Errorf("call %d got matchers %s, want the scope's first, then the caller's", i, b.String())
		}
	}
}

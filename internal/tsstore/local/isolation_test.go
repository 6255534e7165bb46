package local

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// Two tenants whose container IDs differ only where an unquoted regex
// would confuse them: "a.1" matches "aX1", "a+2" matches "aa2".
var (
	tenantA = tsstore.Scope{ContainerIDs: []string{"a.1", "a+2"}}
	tenantB = tsstore.Scope{ContainerIDs: []string{"aX1", "aa2"}}
)

// tenantSecrets are strings only tenant B's series carry; B's values are
// all >= 1000 while A's sum to less.
var tenantSecrets = []string{"aX1", "aa2", "secret-asset-b", "asset-id-b", "sonde_b_only", "b-item"}

const bValueFloor = 1000

func isolationStore(t *testing.T) (*Store, time.Time) {
	t.Helper()
	ctx := testCtx(t)
	s := openStore(t, t.TempDir(), Options{})
	base := baseTime()
	var samples []tsstore.Sample
	for i := range 10 {
		ts := base.Add(time.Duration(i-9) * time.Minute).UnixMilli()
		for _, c := range tenantA.ContainerIDs {
			k := tsstore.SeriesKey{Metric: "sonde_shared", ContainerID: c, AssetID: "asset-id-" + c, Asset: "host-" + c, Collector: "col", Check: "ping"}
			samples = append(samples, tsstore.Sample{Key: k, T: ts, V: float64(i)})
		}
		for _, c := range tenantB.ContainerIDs {
			k := tsstore.SeriesKey{Metric: "sonde_shared", ContainerID: c, AssetID: "asset-id-b", Asset: "secret-asset-b", Collector: "col", Check: "ping", Item: "b-item"}
			samples = append(samples,
				tsstore.Sample{Key: k, T: ts, V: bValueFloor + float64(i)},
				tsstore.Sample{Key: tsstore.SeriesKey{Metric: "sonde_b_only", ContainerID: c, Item: "b-item"}, T: ts, V: bValueFloor + float64(i)},
			)
		}
	}
	if err := s.Append(ctx, samples); err != nil {
		t.Fatalf("Append: %v", err)
	}
	return s, base
}

// checkNoLeak fails if the value holds one of tenant B's strings that the
// query text does not itself contain, or one of B's values.
func checkNoLeak(t *testing.T, query string, v parser.Value) {
	t.Helper()
	checkLabels := func(ls labels.Labels) {
		ls.Range(func(l labels.Label) {
			for _, secret := range tenantSecrets {
				if strings.Contains(l.Value, secret) && !strings.Contains(query, secret) {
					t.Errorf("%s: leaked %s=%q", query, l.Name, l.Value)
				}
				if strings.Contains(l.Name, secret) {
					t.Errorf("%s: leaked label name %q", query, l.Name)
				}
			}
		})
	}
	checkValue := func(f float64) {
		if f >= bValueFloor {
			t.Errorf("%s: leaked value %v", query, f)
		}
	}
	switch v := v.(type) {
	case promql.Vector:
		for _, s := range v {
			checkLabels(s.Metric)
			checkValue(s.F)
		}
	case promql.Matrix:
		for _, s := range v {
			checkLabels(s.Metric)
			for _, p := range s.Floats {
				checkValue(p.F)
			}
		}
	case promql.Scalar:
		checkValue(v.V)
	case promql.String:
	default:
		t.Fatalf("%s: unexpected result type %T", query, v)
	}
}

func seriesCount(v parser.Value) int {
	switch v := v.(type) {
	case promql.Vector:
		return len(v)
	case promql.Matrix:
		return len(v)
	}
	return 1
}

func firstValue(v parser.Value) float64 {
	switch v := v.(type) {
	case promql.Vector:
		if len(v) > 0 {
			return v[0].F
		}
	case promql.Scalar:
		return v.V
	}
	return -1
}

func TestTenantIsolationQueries(t *testing.T) {
	s, base := isolationStore(t)
	ctx := testCtx(t)

	cases := []struct {
		query  string
		series int     // expected number of result series; -1: don't check
		value  float64 // expected first value; -1: don't check
	}{
		{`{__name__=~".+"}`, 2, -1},
		{`{__name__=~".+", container_id=~".*"}`, 2, -1},
		{`{__name__=~".+", container_id!="a.1"}`, 1, -1},
		{`{__name__=~".+", container_id!~"a.1"}`, 1, -1},
		{`{__name__=~".+", container_id!~"a.+"}`, 0, -1},
		{`{container_id="aX1"}`, 0, -1},
		{`{container_id=~"aX1|aa2"}`, 0, -1},
		{`{container_id=~"a.1"}`, 1, -1}, // Only "a.1" itself, not "aX1".
		{`{container_id=~"a.*"}`, 2, -1},
		{`sonde_b_only`, 0, -1},
		{`{asset="secret-asset-b"}`, 0, -1},
		{`{item="b-item"}`, 0, -1},
		{`count({__name__=~".+"})`, 1, 2},
		{`count(sonde_shared)`, 1, 2},
		{`sum(sonde_shared)`, 1, 18},
		{`sum(sonde_shared) or vector(0)`, 1, 18},
		{`sum(sonde_b_only) or vector(0)`, 1, 0},
		{`max(max_over_time(sonde_shared[1h]))`, 1, 9},
		{`max(max_over_time({__name__=~".+"}[1h:1m]))`, 1, 9},
		{`max_over_time(sonde_shared[1h:])`, 2, -1},
		{`max(max_over_time(sonde_shared[1h] offset -1m))`, 1, 9},
		{`sonde_shared @ end()`, 2, -1},
		{`sonde_shared @ start()`, 2, -1},
		{`topk(100, {__name__=~"sonde_.+"})`, 2, -1},
		{`count_values("v", sonde_shared)`, 1, -1},
		{`count by (container_id) ({__name__=~".+"})`, 2, -1},
		{`group by (asset) ({__name__=~".+"})`, 2, -1},
		{`count(count by (container_id) ({container_id=~".+"}))`, 1, 2},
		{`label_replace({__name__=~".+"}, "leak", "$1", "container_id", "(.*)")`, 2, -1},
		{`label_replace(sonde_shared, "asset", "x", "asset", ".*")`, 2, -1},
		{`absent(sonde_b_only)`, 1, 1},
		{`absent(sonde_shared{container_id="aX1"})`, 1, 1},
		{`absent_over_time(sonde_b_only[1h])`, 1, 1},
		{`sonde_shared{container_id="aX1"} or sonde_shared{container_id="a.1"}`, 1, -1},
		{`sonde_shared + on(asset_id) group_left sonde_b_only`, 0, -1},
		{`sonde_shared and on() sonde_b_only`, 0, -1},
		{`count(last_over_time({container_id=~"aX1|a.1"}[1h]))`, 1, 1},
		{`timestamp(sonde_b_only)`, 0, -1},
		{`scalar(sum(sonde_b_only))`, 1, -1},
		{`sort_desc({__name__=~".+"})`, 2, -1},
		{`quantile(1, {__name__=~".+"})`, 1, 9},
		{`rate({__name__=~".+"}[1h])`, 2, -1},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			v, err := s.Query(ctx, tenantA, tc.query, base)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			checkNoLeak(t, tc.query, v)
			if tc.series >= 0 && seriesCount(v) != tc.series {
				t.Errorf("got %d series, want %d: %v", seriesCount(v), tc.series, v)
			}
			if tc.value >= 0 && firstValue(v) != tc.value {
				t.Errorf("got value %v, want %v: %v", firstValue(v), tc.value, v)
			}

			r, err := s.QueryRange(ctx, tenantA, tc.query, base.Add(-10*time.Minute), base, time.Minute)
			if err != nil {
				var qe *QueryError
				if errors.As(err, &qe) {
					return // Not a valid range query; the instant one ran.
				}
				t.Fatalf("QueryRange: %v", err)
			}
			checkNoLeak(t, tc.query, r)
		})
	}

	// Selectors that only match by exclusion do not parse at all.
	for _, q := range []string{`{container_id!="a.1"}`, `{container_id=~".*"}`} {
		var qe *QueryError
		if _, err := s.Query(ctx, tenantA, q, base); !errors.As(err, &qe) {
			t.Errorf("%s: got %v, want a *QueryError", q, err)
		}
	}

	// B sees its own data, so the checks above are not vacuous.
	v, err := s.Query(ctx, tenantB, `count({__name__=~".+"})`, base)
	if err != nil {
		t.Fatalf("Query as B: %v", err)
	}
	if got := firstValue(v); got != 4 {
		t.Errorf("B counts %v series, want 4", got)
	}
}

func TestTenantIsolationMetadata(t *testing.T) {
	s, base := isolationStore(t)
	ctx := testCtx(t)
	start, end := base.Add(-time.Hour), base.Add(time.Hour)
	sel := func(q string) []*labels.Matcher {
		ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return ms
	}

	seriesCases := []struct {
		name     string
		matchers [][]*labels.Matcher
		want     []string // container_id of each series
	}{
		{"none", nil, []string{"a+2", "a.1"}},
		{"all names", [][]*labels.Matcher{sel(`{__name__=~".+"}`)}, []string{"a+2", "a.1"}},
		{"other tenant", [][]*labels.Matcher{sel(`{container_id="aX1"}`)}, nil},
		{"b only metric", [][]*labels.Matcher{sel(`sonde_b_only`)}, nil},
		{"negative", [][]*labels.Matcher{sel(`{__name__=~".+", container_id!="a.1"}`)}, []string{"a+2"}},
		{"several sets", [][]*labels.Matcher{sel(`{container_id="aa2"}`), sel(`{container_id="a.1"}`), sel(`sonde_b_only`)}, []string{"a.1"}},
	}
	for _, tc := range seriesCases {
		t.Run("series/"+tc.name, func(t *testing.T) {
			got, err := s.Series(ctx, tenantA, tc.matchers, start, end)
			if err != nil {
				t.Fatalf("Series: %v", err)
			}
			var ids []string
			for _, ls := range got {
				checkNoLeak(t, "series", promql.Vector{{Metric: ls}})
				ids = append(ids, ls.Get(tsstore.LabelContainerID))
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("got %v, want %v", ids, tc.want)
			}
		})
	}

	namesCases := []struct {
		name     string
		matchers [][]*labels.Matcher
		want     []string
	}{
		// B's series have an item label, A's do not.
		{"none", nil, []string{"__name__", "asset", "asset_id", "check", "collector", "container_id"}},
		{"other tenant", [][]*labels.Matcher{sel(`{container_id="aX1"}`)}, nil},
		{"b only metric", [][]*labels.Matcher{sel(`sonde_b_only`), sel(`{item="b-item"}`)}, nil},
	}
	for _, tc := range namesCases {
		t.Run("labels/"+tc.name, func(t *testing.T) {
			got, err := s.LabelNames(ctx, tenantA, tc.matchers, start, end)
			if err != nil {
				t.Fatalf("LabelNames: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	valuesCases := []struct {
		label    string
		matchers [][]*labels.Matcher
		want     []string
	}{
		{"container_id", nil, []string{"a+2", "a.1"}},
		{"__name__", nil, []string{"sonde_shared"}},
		{"asset", nil, []string{"host-a+2", "host-a.1"}},
		{"asset_id", nil, []string{"asset-id-a+2", "asset-id-a.1"}},
		{"item", nil, nil},
		{"container_id", [][]*labels.Matcher{sel(`{container_id=~"a.*"}`)}, []string{"a+2", "a.1"}},
		{"container_id", [][]*labels.Matcher{sel(`sonde_b_only`), sel(`{asset="secret-asset-b"}`)}, nil},
	}
	for _, tc := range valuesCases {
		t.Run("values/"+tc.label, func(t *testing.T) {
			got, err := s.LabelValues(ctx, tenantA, tc.label, tc.matchers, start, end)
			if err != nil {
				t.Fatalf("LabelValues: %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTenantIsolationDelete(t *testing.T) {
	s, base := isolationStore(t)
	ctx := testCtx(t)
	start, end := base.Add(-time.Hour), base.Add(time.Hour)
	count := func(scope tsstore.Scope) float64 {
		t.Helper()
		v, err := s.Query(ctx, scope, `count({__name__=~".+"}) or vector(0)`, base)
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		return firstValue(v)
	}

	// A asking to delete B's series deletes nothing.
	m := labels.MustNewMatcher(labels.MatchRegexp, tsstore.LabelContainerID, ".+")
	if err := s.Delete(ctx, tenantA, start, end, labels.MustNewMatcher(labels.MatchEqual, tsstore.LabelContainerID, "aX1")); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := count(tenantB); got != 4 {
		t.Fatalf("after A deleted aX1, B has %v series, want 4", got)
	}
	// A deleting everything it can deletes only its own.
	if err := s.Delete(ctx, tenantA, start, end, m); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := count(tenantA); got != 0 {
		t.Errorf("A has %v series after deleting all, want 0", got)
	}
	if got := count(tenantB); got != 4 {
		t.Errorf("B has %v series after A deleted all, want 4", got)
	}
	if err := s.Delete(ctx, tsstore.Scope{}, start, end, m); !errors.Is(err, tsstore.ErrEmptyScope) {
		t.Errorf("Delete with empty scope: got %v, want ErrEmptyScope", err)
	}
}

func TestEmptyScope(t *testing.T) {
	s, base := isolationStore(t)
	ctx := testCtx(t)
	for _, scope := range []tsstore.Scope{{}, {ContainerIDs: []string{}}, {ContainerIDs: []string{""}}} {
		checks := map[string]error{}
		_, checks["Query"] = s.Query(ctx, scope, `vector(1)`, base)
		_, checks["QueryRange"] = s.QueryRange(ctx, scope, `vector(1)`, base, base, time.Minute)
		_, checks["Series"] = s.Series(ctx, scope, nil, base, base)
		_, checks["LabelNames"] = s.LabelNames(ctx, scope, nil, base, base)
		_, checks["LabelValues"] = s.LabelValues(ctx, scope, "container_id", nil, base, base)
		checks["Delete"] = s.Delete(ctx, scope, base, base)
		for name, err := range checks {
			if !errors.Is(err, tsstore.ErrEmptyScope) {
				t.Errorf("%s with scope %q: got %v, want ErrEmptyScope", name, scope.ContainerIDs, err)
			}
		}
	}
}

package remote

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// qTestScope is a scope of two containers, so that its matcher is a
// regular expression, the harder case to render.
var qTestScope = tsstore.Scope{ContainerIDs: []string{"c1", `c2"}|.*`}}

func qTestMatcher(t testing.TB) *labels.Matcher {
	t.Helper()
	m, err := qTestScope.Matcher()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// qCheckScoped parses rendered and fails unless every vector selector
// in it carries the scope matcher m.
func qCheckScoped(t testing.TB, rendered string, m *labels.Matcher) {
	t.Helper()
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(rendered)
	if err != nil {
		t.Fatalf("rendered query %q does not parse: %v", rendered, err)
	}
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		for _, lm := range vs.LabelMatchers {
			if lm.Name == m.Name && lm.Type == m.Type && lm.Value == m.Value {
				return nil
			}
		}
		t.Errorf("selector %s of rendered query %q lacks the scope matcher %s", vs, rendered, m)
		return nil
	})
}

// qAdversarialQueries each try to read outside the scope.
var qAdversarialQueries = []string{
	`up`,
	`{__name__=~".+"}`,
	`{container_id="other"}`,
	`up{container_id=~".*"}`,
	`up{container_id!="c1"}`,
	`up or on() vector(1)`,
	`rate(up[5m])`,
	`rate(up[5m] offset 1w)`,
	`up offset -1h`,
	`up @ 0`,
	`up @ start()`,
	`rate(up[5m] @ end())`,
	`max_over_time(up[1h:1m])`,
	`max_over_time(rate(up[5m])[1h:] @ 100 offset 5m)`,
	`max_over_time((max_over_time(up[10m:1m]))[1h:5m])`,
	`absent(nonexistent{job="x"})`,
	`absent_over_time(nonexistent[5m])`,
	`label_replace(up, "container_id", "other", "", "")`,
	`label_join(up, "container_id", ",", "job")`,
	`count_values("container_id", up)`,
	`count_values("x", {__name__="up", container_id="other"})`,
	`sum by (container_id) (up) / ignoring(container_id) group_left sum(up)`,
	`up unless on(job) down`,
	`topk(1, up) and bottomk(1, up)`,
	`quantile_over_time(0.5, up[5m])`,
	`histogram_quantile(0.9, rate(h_bucket[5m]))`,
	`scalar(up) * vector(time())`,
	`-up`,
	`(((up)))`,
	`"a string"`,
	`1 + 2`,
	`vector(1)`,
	`time()`,
	"up # a comment {container_id=~\".*\"}\n+ on() down",
	"sum(\n# comment\nup)",
	`{"up"}`,
	`{"container_id"="x"}`,
	`up{container_id="c1" , container_id="other"}`,
	`sort_desc(up)`,
	`timestamp(up)`,
	`changes(up[1h])`,
	`last_over_time({__name__=~"sonde_.*"}[1d])`,
	`sum(up) by (job) > bool 0`,
	`predict_linear(up[1h], 3600)`,
	`up == bool up`,
	"up{a=\"\\\"}\", container_id=~\".*\"}",
	`up{a="}, {container_id=~\".*\""}`,
	`up{a="` + strings.Repeat("x", 10000) + `"}`,
}

func TestScopeQuery(t *testing.T) {
	m := qTestMatcher(t)
	p := parser.NewParser(parser.Options{})
	for _, query := range qAdversarialQueries {
		t.Run(query[:min(len(query), 40)], func(t *testing.T) {
			expr, rendered, err := ScopeQuery(p, query, m)
			if err != nil {
				t.Fatalf("ScopeQuery(%q): %v", query, err)
			}
			if strings.Contains(rendered, "#") {
				t.Errorf("rendered query %q keeps a comment", rendered)
			}
			// The scope matcher is first in the AST.
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				if vs, ok := node.(*parser.VectorSelector); ok && vs.LabelMatchers[0] != m {
					t.Errorf("selector %s: scope matcher not first", vs)
				}
				return nil
			})
			qCheckScoped(t, rendered, m)
		})
	}
}

func TestScopeQueryRefuses(t *testing.T) {
	m := qTestMatcher(t)
	p := parser.NewParser(parser.Options{})
	for _, query := range []string{
		``,
		`sum(`,
		`label_set(up, "container_id", "c1")`, // MetricsQL only
		`with (x = up) x`,                     // MetricsQL only
		`up{container_id="c1" or container_id="c2"}`,
		`union(up, down)`,
		`up[5m]]`,
		`up offset`,
		`# only a comment`,
	} {
		_, _, err := ScopeQuery(p, query, m)
		if err == nil {
			t.Errorf("ScopeQuery(%q) succeeded", query)
			continue
		}
		if _, ok := errors.AsType[*QueryError](err); !ok {
			t.Errorf("ScopeQuery(%q) = %v, not a *QueryError", query, err)
		}
		if _, ok := errors.AsType[parser.ParseErrors](err); !ok {
			t.Errorf("ScopeQuery(%q) = %v, not a parser.ParseErrors", query, err)
		}
	}
}

func FuzzScopeQuery(f *testing.F) {
	for _, q := range qAdversarialQueries {
		f.Add(q)
	}
	m := qTestMatcher(f)
	p := parser.NewParser(parser.Options{})
	f.Fuzz(func(t *testing.T, query string) {
		_, rendered, err := ScopeQuery(p, query, m)
		if err != nil {
			return
		}
		qCheckScoped(t, rendered, m)
	})
}

func TestParseMillis(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1700000000.123", 1700000000123, true},
		{"1700000000", 1700000000000, true},
		{"1700000000.1", 1700000000100, true},
		{"1700000000.1235", 1700000000124, true},
		{"1700000000.1234", 1700000000123, true},
		{"0.001", 1, true},
		{"-1.5", -1500, true},
		{"1.7e9", 1700000000000, true},
		{"", 0, false},
		{"abc", 0, false},
		{"1.2x", 0, false},
		{".5", 0, false},
		{"99999999999999999", 0, false},
	} {
		got, err := qParseMillis(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("qParseMillis(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if got := qFormatTime(time.UnixMilli(1700000000123)); got != "1700000000.123" {
		t.Errorf("qFormatTime = %s", got)
	}
	if got := qFormatTime(time.UnixMilli(-1500)); got != "-1.500" {
		t.Errorf("qFormatTime = %s", got)
	}
}

// qFakeRemote is an httptest server standing in for the remote. It only
// checks how the client shapes requests and handles answers that real
// servers give (bodies captured from Prometheus 2.42 and VictoriaMetrics
// under testdata/query/), and malformed ones; the behaviour of the real
// servers is tested by the integration tests.
type qFakeRemote struct {
	*httptest.Server
	calls atomic.Int64

	mu   sync.Mutex
	last *http.Request
	form url.Values

	status int
	ctype  string
	body   string
	delay  time.Duration
}

func qNewFakeRemote(t *testing.T) *qFakeRemote {
	t.Helper()
	f := &qFakeRemote{status: http.StatusOK, ctype: "application/json"}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.last, f.form = r, r.Form
		status, ctype, body, delay := f.status, f.ctype, f.body, f.delay
		f.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *qFakeRemote) answer(status int, ctype, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.ctype, f.body = status, ctype, body
}

func (f *qFakeRemote) request() (*http.Request, url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.form
}

func qNewQuerier(t *testing.T, rawURL string, opts QuerierOptions) *Querier {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	opts.BaseURL = u
	q, err := NewQuerier(opts)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func qContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func qGolden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "query", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestQuerierDecodesGolden(t *testing.T) {
	f := qNewFakeRemote(t)
	q := qNewQuerier(t, f.URL+"/select/0/prometheus/", QuerierOptions{})
	ctx := qContext(t)
	ts := time.UnixMilli(1795684627123)

	for _, tc := range []struct {
		file  string
		rng   bool
		check func(t *testing.T, v parser.Value)
	}{
		{file: "prom_vector.json", check: func(t *testing.T, v parser.Value) {
			vec := v.(promql.Vector)
			if len(vec) != 3 || vec[0].T != 1795684627123 || vec[0].F != 1.5 ||
				!math.IsInf(vec[1].F, 1) || !math.IsNaN(vec[2].F) ||
				vec[2].Metric.Get("container_id") != "c2" {
				t.Errorf("got %v", vec)
			}
		}},
		{file: "vm_vector.json", check: func(t *testing.T, v parser.Value) {
			vec := v.(promql.Vector)
			if len(vec) != 2 || vec[0].T != 1795684627123 || vec[0].Metric.Get("item") != "x" {
				t.Errorf("got %v", vec)
			}
		}},
		{file: "prom_matrix.json", rng: true, check: func(t *testing.T, v parser.Value) {
			mat := v.(promql.Matrix)
			if len(mat) == 0 || len(mat[0].Floats) == 0 || mat[0].Floats[0].T != 1795684587500 {
				t.Errorf("got %v", mat)
			}
			for i := 1; i < len(mat); i++ {
				if labels.Compare(mat[i-1].Metric, mat[i].Metric) >= 0 {
					t.Errorf("matrix not sorted: %v", mat)
				}
			}
		}},
		{file: "vm_matrix.json", rng: true, check: func(t *testing.T, v parser.Value) {
			mat := v.(promql.Matrix)
			if len(mat) != 2 || mat[0].Floats[0].T != 1795684503500 || !math.IsInf(mat[1].Floats[0].F, 1) {
				t.Errorf("got %v", mat)
			}
		}},
		{file: "prom_scalar.json", check: func(t *testing.T, v parser.Value) {
			if s := v.(promql.Scalar); s.T != 1795684627123 || s.V != 2.5 {
				t.Errorf("got %v", s)
			}
		}},
		{file: "prom_string.json", check: func(t *testing.T, v parser.Value) {
			if s := v.(promql.String); s.T != 1795684627000 || s.V != "abc" {
				t.Errorf("got %v", s)
			}
		}},
		// VictoriaMetrics answers a scalar as a vector of one sample
		// without labels, and a string as an empty vector.
		{file: "vm_scalar.json", check: func(t *testing.T, v parser.Value) {
			if vec := v.(promql.Vector); len(vec) != 1 || vec[0].F != 2.5 || vec[0].Metric.Len() != 0 {
				t.Errorf("got %v", vec)
			}
		}},
		{file: "vm_string.json", check: func(t *testing.T, v parser.Value) {
			if vec := v.(promql.Vector); len(vec) != 0 {
				t.Errorf("got %v", vec)
			}
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f.answer(http.StatusOK, "application/json", qGolden(t, tc.file))
			var (
				v   parser.Value
				err error
			)
			if tc.rng {
				v, err = q.QueryRange(ctx, qTestScope, "sonde_gauge_value", ts.Add(-time.Minute), ts, 10*time.Second)
			} else {
				v, err = q.Query(ctx, qTestScope, "sonde_gauge_value", ts)
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, v)
		})
	}

	for _, prefix := range []string{"prom", "vm"} {
		f.answer(http.StatusOK, "application/json", qGolden(t, prefix+"_series.json"))
		series, err := q.Series(ctx, qTestScope, nil, time.Time{}, time.Now())
		if err != nil || len(series) < 3 || series[0].Get("__name__") != "sonde_gauge_neg" {
			t.Errorf("%s Series = %v, %v", prefix, series, err)
		}
		f.answer(http.StatusOK, "application/json", qGolden(t, prefix+"_labels.json"))
		names, err := q.LabelNames(ctx, qTestScope, nil, time.Time{}, time.Now())
		if err != nil || len(names) < 4 || names[0] != "__name__" {
			t.Errorf("%s LabelNames = %v, %v", prefix, names, err)
		}
		f.answer(http.StatusOK, "application/json", qGolden(t, prefix+"_label_values.json"))
		values, err := q.LabelValues(ctx, qTestScope, "item", nil, time.Time{}, time.Now())
		if err != nil || len(values) < 2 || values[0] != "x" {
			t.Errorf("%s LabelValues = %v, %v", prefix, values, err)
		}
	}
}

func TestQuerierRequests(t *testing.T) {
	f := qNewFakeRemote(t)
	q := qNewQuerier(t, f.URL+"/prefix", QuerierOptions{
		QueryTimeout: 5 * time.Second,
		Decorate:     func(r *http.Request) { r.Header.Set("X-Scope-OrgID", "tenant") },
	})
	ctx := qContext(t)
	m := qTestMatcher(t)
	ts := time.UnixMilli(1700000000123)
	jobX := labels.MustNewMatcher(labels.MatchEqual, "job", "x")
	scopeSel := (&parser.VectorSelector{LabelMatchers: []*labels.Matcher{m}}).String()
	jobSel := (&parser.VectorSelector{LabelMatchers: []*labels.Matcher{m, jobX}}).String()

	for _, tc := range []struct {
		name   string
		answer string
		call   func() error
		method string
		path   string
		want   map[string][]string
	}{
		{
			name:   "query",
			answer: `{"status":"success","data":{"resultType":"vector","result":[]}}`,
			call: func() error {
				_, err := q.Query(ctx, qTestScope, "rate(up[5m]) # hi", ts)
				return err
			},
			method: http.MethodPost, path: "/prefix/api/v1/query",
			want: map[string][]string{"time": {"1700000000.123"}},
		},
		{
			name:   "query_range",
			answer: `{"status":"success","data":{"resultType":"matrix","result":[]}}`,
			call: func() error {
				_, err := q.QueryRange(ctx, qTestScope, "up", ts, ts.Add(time.Hour), 1500*time.Millisecond)
				return err
			},
			method: http.MethodPost, path: "/prefix/api/v1/query_range",
			want: map[string][]string{"start": {"1700000000.123"}, "end": {"1700003600.123"}, "step": {"1.5"}},
		},
		{
			name:   "series",
			answer: `{"status":"success","data":[]}`,
			call: func() error {
				_, err := q.Series(ctx, qTestScope, [][]*labels.Matcher{{jobX}, nil}, time.Unix(-100, 0), ts)
				return err
			},
			method: http.MethodPost, path: "/prefix/api/v1/series",
			want: map[string][]string{"match[]": {jobSel, scopeSel}, "start": {"0.000"}, "end": {"1700000000.123"}},
		},
		{
			name:   "labels",
			answer: `{"status":"success","data":[]}`,
			call: func() error {
				_, err := q.LabelNames(ctx, qTestScope, nil, ts, ts)
				return err
			},
			method: http.MethodPost, path: "/prefix/api/v1/labels",
			want: map[string][]string{"match[]": {scopeSel}},
		},
		{
			name:   "label values",
			answer: `{"status":"success","data":[]}`,
			call: func() error {
				_, err := q.LabelValues(ctx, qTestScope, "job", [][]*labels.Matcher{{jobX}}, ts, ts)
				return err
			},
			method: http.MethodGet, path: "/prefix/api/v1/label/job/values",
			want: map[string][]string{"match[]": {jobSel}},
		},
		{
			name:   "label values, UTF-8 name",
			answer: `{"status":"success","data":[]}`,
			call: func() error {
				_, err := q.LabelValues(ctx, qTestScope, "a.b/c", nil, ts, ts)
				return err
			},
			method: http.MethodGet, path: "/prefix/api/v1/label/U__a_2e_b_2f_c/values",
		},
		{
			name: "delete",
			call: func() error {
				return q.Delete(ctx, qTestScope, ts, ts.Add(time.Hour), jobX)
			},
			method: http.MethodPost, path: "/prefix/api/v1/admin/tsdb/delete_series",
			want: map[string][]string{"match[]": {jobSel}, "start": {"1700000000.123"}, "end": {"1700003600.123"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status := http.StatusOK
			if tc.answer == "" {
				status = http.StatusNoContent
			}
			f.answer(status, "application/json", tc.answer)
			if err := tc.call(); err != nil {
				t.Fatal(err)
			}
			r, form := f.request()
			if r.Method != tc.method || r.URL.Path != tc.path {
				t.Errorf("request %s %s, want %s %s", r.Method, r.URL.Path, tc.method, tc.path)
			}
			if got := r.Header.Get("X-Scope-OrgID"); got != "tenant" {
				t.Errorf("X-Scope-OrgID = %q", got)
			}
			if tc.method == http.MethodPost && r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q", r.Header.Get("Content-Type"))
			}
			if d, err := time.ParseDuration(form.Get("timeout") + "s"); err != nil || d <= 0 || d > 5*time.Second {
				t.Errorf("timeout = %q", form.Get("timeout"))
			}
			for k, want := range tc.want {
				if got := form[k]; strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if qs := form["query"]; len(qs) > 0 {
				qCheckScoped(t, qs[0], m)
				if strings.Contains(qs[0], "#") {
					t.Errorf("query %q keeps the caller's comment", qs[0])
				}
			}
			for _, sel := range form["match[]"] {
				qCheckScoped(t, sel, m)
			}
		})
	}
}

func TestQuerierErrors(t *testing.T) {
	f := qNewFakeRemote(t)
	q := qNewQuerier(t, f.URL, QuerierOptions{MaxResponseBytes: 4096})
	ctx := qContext(t)
	ts := time.Now()

	isBadData := func(err error) bool {
		e, ok := errors.AsType[interface {
			error
			BadData() bool
		}](err)
		return ok && e.BadData()
	}
	isStorage := func(err error) bool {
		_, ok := errors.AsType[promql.ErrStorage](err)
		return ok && !isBadData(err)
	}
	isTimeout := func(err error) bool {
		_, ok := errors.AsType[promql.ErrQueryTimeout](err)
		return ok
	}
	isCanceled := func(err error) bool {
		_, ok := errors.AsType[promql.ErrQueryCanceled](err)
		return ok
	}
	isExecution := func(err error) bool {
		return err != nil && !isBadData(err) && !isStorage(err) && !isTimeout(err) && !isCanceled(err)
	}

	for _, tc := range []struct {
		name   string
		status int
		ctype  string
		body   string
		is     func(error) bool
		substr string
	}{
		{"prometheus bad_data", 400, "application/json", qGolden(t, "prom_parse_error.json"), isBadData, "unclosed left parenthesis"},
		{"prometheus range type", 400, "application/json", qGolden(t, "prom_range_type_error.json"), isBadData, "invalid expression type"},
		{"victoriametrics 422", 422, "application/json", qGolden(t, "vm_parse_error.json"), isExecution, "unexpected token"},
		{"victoriametrics too long", 422, "application/json", `{"status":"error","errorType":"422","error":"too long query; got 17013 bytes; mustn't exceed -search.maxQueryLen=16384 bytes"}`, isExecution, "maxQueryLen"},
		{"timeout", 503, "application/json", `{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`, isTimeout, "timed out"},
		{"canceled", 499, "application/json", `{"status":"error","errorType":"canceled","error":"query was canceled"}`, isCanceled, "canceled"},
		{"execution", 422, "application/json", `{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}`, isExecution, "many-to-many"},
		{"internal", 500, "application/json", `{"status":"error","errorType":"internal","error":"disk on fire"}`, isStorage, "disk on fire"},
		{"plain 502", 502, "text/html", "<html>Bad Gateway</html>", isStorage, "Bad Gateway"},
		{"victoriametrics plain 400", 400, "text/plain", `remoteAddr: "127.0.0.1:52050"; requestURI: /api/v1/nosuch; unsupported path requested: "/api/v1/nosuch"`, isStorage, "unsupported path"},
		{"plain 404", 404, "text/plain", "404 page not found\n", isStorage, "query URL"},
		{"unauthorized", 401, "text/plain", "", isStorage, "credentials"},
		{"truncated", 200, "application/json", `{"status":"success","data":{"resultType":"vector","result":[`, isStorage, "decoding"},
		{"bad value", 200, "application/json", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}`, isStorage, "sample value"},
		{"bad time", 200, "application/json", `{"status":"success","data":{"resultType":"scalar","result":["a","1"]}}`, isStorage, "decoding"},
		{"histogram", 200, "application/json", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{"count":"1"}]}]}}`, isStorage, "histograms"},
		{"unknown type", 200, "application/json", `{"status":"success","data":{"resultType":"streams","result":[]}}`, isStorage, "unknown result type"},
		{"too large", 200, "application/json", `{"status":"success","data":{"resultType":"vector","result":[` + strings.Repeat(`{"metric":{},"value":[1,"1"]},`, 200) + `{"metric":{},"value":[1,"1"]}]}}`, isExecution, "larger than 4096 bytes"},
		{"long plain text", 500, "text/plain", strings.Repeat("y", 10000), isStorage, strings.Repeat("y", 512)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.answer(tc.status, tc.ctype, tc.body)
			_, err := q.Query(ctx, qTestScope, "up", ts)
			if err == nil || !tc.is(err) || !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("Query: %v (%T); want an error of the right class containing %q", err, err, tc.substr)
			}
			if strings.Contains(err.Error(), strings.Repeat("y", 513)) {
				t.Errorf("the message holds more than 512 bytes of the body")
			}
			// Tenants read these messages: they say "the remote TSDB",
			// never its address inside the operator's network.
			host := strings.TrimPrefix(f.URL, "http://")
			if strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "the remote TSDB") {
				t.Errorf("error %q names the remote's address %s, or not the remote TSDB", err, host)
			}
		})
	}
}

func TestQuerierPreparationErrors(t *testing.T) {
	f := qNewFakeRemote(t)
	q := qNewQuerier(t, f.URL, QuerierOptions{})
	ctx := qContext(t)
	ts := time.Now()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"parse", func() error { _, err := q.Query(ctx, qTestScope, "sum(", ts); return err }},
		{"unknown function", func() error { _, err := q.Query(ctx, qTestScope, "label_set(up, \"a\", \"b\")", ts); return err }},
		{"range of a matrix", func() error {
			_, err := q.QueryRange(ctx, qTestScope, "up[5m]", ts, ts.Add(time.Hour), time.Minute)
			return err
		}},
		{"range of a string", func() error {
			_, err := q.QueryRange(ctx, qTestScope, `"a"`, ts, ts.Add(time.Hour), time.Minute)
			return err
		}},
		{"end before start", func() error {
			_, err := q.QueryRange(ctx, qTestScope, "up", ts, ts.Add(-time.Second), time.Minute)
			return err
		}},
		{"zero step", func() error { _, err := q.QueryRange(ctx, qTestScope, "up", ts, ts, 0); return err }},
		{"too many points", func() error {
			_, err := q.QueryRange(ctx, qTestScope, "up", ts, ts.Add(11001*time.Second), time.Second)
			return err
		}},
		{"label name", func() error {
			_, err := q.LabelValues(ctx, qTestScope, "\xff", nil, ts, ts)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if bd, ok := errors.AsType[interface {
				error
				BadData() bool
			}](err); !ok || !bd.BadData() {
				t.Errorf("got %v, want a BadData error", err)
			}
		})
	}
	if _, err := q.Query(ctx, tsstore.Scope{}, "up", ts); !errors.Is(err, tsstore.ErrEmptyScope) {
		t.Errorf("empty scope: %v", err)
	}
	if n := f.calls.Load(); n != 0 {
		t.Errorf("the remote was called %d times", n)
	}
}

func TestQuerierContext(t *testing.T) {
	f := qNewFakeRemote(t)
	f.delay = 5 * time.Second
	q := qNewQuerier(t, f.URL, QuerierOptions{})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := q.Query(ctx, qTestScope, "up", time.Now())
	if _, ok := errors.AsType[promql.ErrQueryTimeout](err); !ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}

	q = qNewQuerier(t, f.URL, QuerierOptions{QueryTimeout: 50 * time.Millisecond})
	_, err = q.Series(qContext(t), qTestScope, nil, time.Time{}, time.Now())
	if _, ok := errors.AsType[promql.ErrQueryTimeout](err); !ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("QueryTimeout: %v", err)
	}

	q = qNewQuerier(t, f.URL, QuerierOptions{})
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = q.LabelNames(ctx, qTestScope, nil, time.Time{}, time.Now())
	if _, ok := errors.AsType[promql.ErrQueryCanceled](err); !ok || !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v", err)
	}
}

func TestQuerierUnreachable(t *testing.T) {
	f := qNewFakeRemote(t)
	u := f.URL
	f.Close()
	q := qNewQuerier(t, "http://user:secret@"+strings.TrimPrefix(u, "http://"), QuerierOptions{
		Decorate: func(r *http.Request) { r.Header.Set("Authorization", "Bearer topsecret") },
	})
	_, err := q.LabelValues(qContext(t), qTestScope, "job", nil, time.Time{}, time.Now())
	if _, ok := errors.AsType[promql.ErrStorage](err); !ok {
		t.Fatalf("got %v, want a promql.ErrStorage", err)
	}
	for _, secret := range []string{"secret", "topsecret", "match", "container_id"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q holds %q", err, secret)
		}
	}
}

func TestQuerierRefusesRedirectToAnotherHost(t *testing.T) {
	other := qNewFakeRemote(t)
	other.answer(http.StatusOK, "application/json", `{"status":"success","data":[]}`)
	redirector := httptest.NewServer(http.RedirectHandler(other.URL+"/api/v1/labels", http.StatusTemporaryRedirect))
	t.Cleanup(redirector.Close)

	q := qNewQuerier(t, redirector.URL, QuerierOptions{})
	_, err := q.LabelNames(qContext(t), qTestScope, nil, time.Time{}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "redirect") {
		t.Errorf("got %v, want a refused redirect", err)
	}
	if n := other.calls.Load(); n != 0 {
		t.Errorf("the other host was called %d times", n)
	}
}

func TestQuerierDeleteNotServed(t *testing.T) {
	f := qNewFakeRemote(t)
	q := qNewQuerier(t, f.URL, QuerierOptions{})
	for _, tc := range []struct {
		status int
		body   string
	}{
		{503, `{"status":"error","errorType":"unavailable","error":"admin APIs disabled"}`},
		{404, "404 page not found"},
		{405, ""},
	} {
		f.answer(tc.status, "application/json", tc.body)
		err := q.Delete(qContext(t), qTestScope, time.Unix(0, 0), time.Now())
		if err == nil || !strings.Contains(err.Error(), "--web.enable-admin-api") {
			t.Errorf("%d %s: got %v", tc.status, tc.body, err)
		}
	}
}

func TestQuerierLimitsConcurrencyPerScope(t *testing.T) {
	var running, peak atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		fmt.Fprint(w, `{"status":"success","data":[]}`)
	}))
	t.Cleanup(srv.Close)
	q := qNewQuerier(t, srv.URL, QuerierOptions{MaxConcurrent: 5, MaxConcurrentPerScope: 2})

	ctx := qContext(t)
	var wg sync.WaitGroup
	for i := range 6 {
		scope := tsstore.Scope{ContainerIDs: []string{fmt.Sprint("c", i%2)}}
		wg.Go(func() {
			if _, err := q.LabelNames(ctx, scope, nil, time.Time{}, time.Now()); err != nil {
				t.Error(err)
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for running.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if got := running.Load(); got != 4 {
		t.Errorf("%d reads running, want 4 (2 per scope)", got)
	}
	close(release)
	wg.Wait()
	if p := peak.Load(); p > 4 {
		t.Errorf("peak %d", p)
	}
}

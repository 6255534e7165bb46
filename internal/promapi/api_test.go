package promapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/testutil/tsdbtest"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
	"github.com/sonde-monitoring/sonde/internal/tsstore/local"
	"github.com/sonde-monitoring/sonde/internal/tsstore/remote"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// t0 is the time of the newest test sample: 2023-11-14T22:13:20.123Z.
const t0 = int64(1700000000123)

const prefix = "/prometheus/api/v1"

// tenantHeader carries the test tenant; the scope function maps it to
// containers as the hub's would map an authenticated user.
const tenantHeader = "X-Test-Tenant"

func testScope(r *http.Request) (tsstore.Scope, error) {
	switch r.Header.Get(tenantHeader) {
	case "a":
		return tsstore.Scope{ContainerIDs: []string{"c1"}}, nil
	case "b":
		return tsstore.Scope{ContainerIDs: []string{"c2"}}, nil
	case "none":
		return tsstore.Scope{}, nil
	}
	return tsstore.Scope{}, errors.New("user may not read metrics")
}

func key(container, metric, item string) tsstore.SeriesKey {
	asset := "host-" + container
	if container == "c2" {
		asset = "secret-b"
	}
	return tsstore.SeriesKey{
		Metric:      metric,
		ContainerID: container,
		AssetID:     "asset-" + container,
		Asset:       asset,
		Collector:   "col-1",
		Check:       "check-1",
		Item:        item,
	}
}

// newServer serves the API, mounted as the hub mounts it, over the
// embedded store holding two tenants' samples.
func newServer(t *testing.T) *httptest.Server {
	return newServerOn(t, "")
}

// Backends the API's tests run against: the embedded store, and real
// remote TSDBs (Debian's prometheus and victoria-metrics, started by
// tsdbtest) through the remote store.
const (
	backendLocal      = ""
	backendPrometheus = string(tsdbtest.Prometheus)
	backendVM         = string(tsdbtest.VictoriaMetrics)
)

// newServerOn is newServer over the given backend.
func newServerOn(t *testing.T, backend string) *httptest.Server {
	t.Helper()
	var (
		store tsstore.Store
		srv   *tsdbtest.Server
		err   error
	)
	if backend == backendLocal {
		store, err = local.Open(t.TempDir(), local.Options{}, nil, nil)
	} else {
		srv = tsdbtest.Start(t, tsdbtest.Kind(backend))
		store, err = remote.Open(remote.Options{WriteURL: srv.WriteURL, QueryURL: srv.QueryURL, QueueDir: t.TempDir(),
			FutureTolerance: -1, MaxSampleAge: -1}, nil, nil)
	}
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	samples := []tsstore.Sample{
		{Key: key("c1", "sonde_cpu_usage", ""), T: t0 - 120_000, V: 41},
		{Key: key("c1", "sonde_cpu_usage", ""), T: t0 - 60_000, V: 42},
		{Key: key("c1", "sonde_cpu_usage", ""), T: t0, V: 42.5},
		{Key: key("c1", "sonde_if_octets", "eth0"), T: t0, V: 1e21},
		{Key: key("c1", "sonde_if_octets", "eth1"), T: t0, V: math.NaN()},
		{Key: key("c1", "sonde_if_octets", "eth2"), T: t0, V: math.Inf(1)},
		{Key: key("c1", "sonde_if_octets", "eth3"), T: t0, V: 1e-7},
		{Key: key("c1", "sonde_if_octets", "eth4"), T: t0, V: -0.5},
		{Key: key("c2", "sonde_cpu_usage", ""), T: t0, V: 1000},
		{Key: key("c2", "sonde_b_only", "secret-item"), T: t0, V: 1001},
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := store.Append(ctx, samples); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if rs, ok := store.(*remote.Store); ok {
		if err := rs.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := srv.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}

	mux := http.NewServeMux()
	mux.Handle(prefix+"/", http.StripPrefix(prefix, New(store, testScope, nil)))
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs
}

type request struct {
	method string // GET if empty
	path   string // relative to the prefix, with the query string
	form   url.Values
	tenant string
}

func do(t *testing.T, srv *httptest.Server, req request) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	method := req.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if req.form != nil {
		body = strings.NewReader(req.form.Encode())
	}
	r, err := http.NewRequestWithContext(ctx, method, srv.URL+prefix+req.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if req.form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if req.tenant != "" {
		r.Header.Set(tenantHeader, req.tenant)
	}
	resp, err := srv.Client().Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", req.path, ct)
	}
	return resp.StatusCode, string(b)
}

// TestGolden compares the API's answers with golden files, on the
// embedded store and on Prometheus through the remote store: the same
// bytes. (VictoriaMetrics answers differently by design — NaN samples
// dropped, scalars as vectors — and is checked by the tests below.)
func TestGolden(t *testing.T) {
	for _, b := range []string{backendLocal, backendPrometheus} {
		t.Run(cmp.Or(b, "embedded"), func(t *testing.T) {
			t.Parallel()
			testGolden(t, b)
		})
	}
}

func testGolden(t *testing.T, backend string) {
	srv := newServerOn(t, backend)
	rangeForm := url.Values{"query": {"sonde_cpu_usage"}, "start": {"1699999880.123"}, "end": {"1700000000.123"}, "step": {"60"}}
	cases := []struct {
		name   string
		golden string
		req    request
	}{
		{"vector", "query_vector", request{path: "/query?query=sonde_cpu_usage&time=1700000000.123"}},
		{"vector POST", "query_vector", request{method: "POST", path: "/query", form: url.Values{"query": {"sonde_cpu_usage"}, "time": {"1700000000.123"}}}},
		{"vector RFC 3339", "query_vector", request{path: "/query?query=sonde_cpu_usage&time=2023-11-14T22:13:20.123Z"}},
		{"special values", "query_special_values", request{path: "/query?query=sonde_if_octets&time=1700000000.123"}},
		{"matrix", "query_range_matrix", request{path: "/query_range?" + rangeForm.Encode()}},
		{"matrix POST", "query_range_matrix", request{method: "POST", path: "/query_range", form: rangeForm}},
		{"matrix RFC 3339 and duration", "query_range_matrix", request{path: "/query_range?query=sonde_cpu_usage&start=2023-11-14T22:11:20.123Z&end=2023-11-14T22:13:20.123Z&step=1m"}},
		{"range vector", "query_range_vector", request{path: "/query?query=sonde_cpu_usage%5B5m%5D&time=1700000000.123"}},
		{"scalar", "query_scalar", request{path: "/query?query=1.5*2&time=1700000000.123"}},
		{"string", "query_string", request{path: "/query?query=%22hello%22&time=1700000000"}},
		{"empty vector", "query_empty", request{path: "/query?query=sonde_nothing&time=1700000000.123"}},
		{"series", "series", request{path: "/series?match[]=sonde_cpu_usage&start=1699999000&end=1700001000"}},
		{"series POST", "series", request{method: "POST", path: "/series", form: url.Values{"match[]": {"sonde_cpu_usage"}}}},
		{"series several", "series_several", request{path: "/series?match[]=sonde_cpu_usage&match[]=%7Bitem%3D%22eth0%22%7D"}},
		{"labels", "labels", request{path: "/labels"}},
		{"labels matched", "labels_matched", request{path: "/labels?match[]=sonde_cpu_usage"}},
		{"label values", "label_values_container_id", request{path: "/label/container_id/values"}},
		{"metric names", "label_values_name", request{path: "/label/__name__/values?start=1699999000&end=1700001000"}},
		{"item values", "label_values_item", request{path: "/label/item/values?match[]=sonde_if_octets&limit=3"}},
		{"metadata", "metadata", request{path: "/metadata"}},
		{"format query", "format_query", request{path: "/format_query?query=sum(rate(foo%5B5m%5D))by(bar)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.tenant = "a"
			status, body := do(t, srv, tc.req)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s", status, body)
			}
			path := filepath.Join("testdata", tc.golden+".json")
			if *update {
				if err := os.WriteFile(path, []byte(body+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading the golden file (run with -update to create it): %v", err)
			}
			if body != strings.TrimSuffix(string(want), "\n") {
				t.Errorf("response differs from %s:\n got %s\nwant %s", path, body, want)
			}
			if !json.Valid([]byte(body)) {
				t.Errorf("invalid JSON: %s", body)
			}
		})
	}
}

func TestValueReadsBackExactly(t *testing.T) {
	forEachBackend(t, testValueReadsBackExactly)
}

// forEachBackend runs f on each backend, in parallel.
func forEachBackend(t *testing.T, f func(t *testing.T, backend string)) {
	for _, b := range []string{backendLocal, backendPrometheus, backendVM} {
		t.Run(cmp.Or(b, "embedded"), func(t *testing.T) {
			t.Parallel()
			f(t, b)
		})
	}
}

func testValueReadsBackExactly(t *testing.T, backend string) {
	srv := newServerOn(t, backend)
	status, body := do(t, srv, request{path: "/query?query=sonde_cpu_usage&time=1700000000.123", tenant: "a"})
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var resp struct {
		Status string
		Data   struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Status != "success" || resp.Data.ResultType != "vector" || len(resp.Data.Result) != 1 {
		t.Fatalf("unexpected response %s", body)
	}
	r := resp.Data.Result[0]
	if r.Value[0] != 1700000000.123 || r.Value[1] != "42.5" {
		t.Errorf("value %v, want [1700000000.123 \"42.5\"]", r.Value)
	}
	if r.Metric["__name__"] != "sonde_cpu_usage" || r.Metric["container_id"] != "c1" {
		t.Errorf("metric %v", r.Metric)
	}
}

func TestBuildInfo(t *testing.T) {
	srv := newServer(t)
	status, body := do(t, srv, request{path: "/status/buildinfo"})
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var resp struct {
		Status string
		Data   map[string]string
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "revision", "branch", "buildUser", "buildDate", "goVersion"} {
		if _, ok := resp.Data[k]; !ok {
			t.Errorf("no %q in %s", k, body)
		}
	}
	if resp.Data["version"] != BuildVersion {
		t.Errorf("version %q", resp.Data["version"])
	}
}

func TestTenantIsolationHTTP(t *testing.T) {
	forEachBackend(t, testTenantIsolationHTTP)
}

func testTenantIsolationHTTP(t *testing.T, backend string) {
	srv := newServerOn(t, backend)
	secrets := []string{"c2", "secret-b", "sonde_b_only", "secret-item", "1000", "1001"}
	reqs := []request{
		{path: "/query?query=%7B__name__%3D~%22.%2B%22%7D&time=1700000000.123"},
		{path: "/query?query=%7Bcontainer_id%3D%22c2%22%7D&time=1700000000.123"},
		{path: "/query?query=sum(sonde_cpu_usage)&time=1700000000.123"},
		{path: "/query?query=label_replace(%7B__name__%3D~%22.%2B%22%7D%2C%22x%22%2C%22%241%22%2C%22asset%22%2C%22(.*)%22)&time=1700000000.123"},
		{method: "POST", path: "/query", form: url.Values{"query": {`max_over_time({__name__=~"sonde_.+"}[1h:1m])`}, "time": {"1700000000.123"}}},
		{path: "/query_range?query=count(%7B__name__%3D~%22.%2B%22%7D)&start=1699999000&end=1700001000&step=60"},
		{path: "/series?match[]=%7B__name__%3D~%22.%2B%22%7D"},
		{path: "/series?match[]=%7Bcontainer_id%3D~%22c.*%22%7D"},
		{path: "/labels"},
		{path: "/labels?match[]=%7Bcontainer_id%3D~%22.%2B%22%7D"},
		{path: "/label/container_id/values"},
		{path: "/label/asset/values"},
		{path: "/label/__name__/values"},
		{path: "/label/item/values"},
		{path: "/label/container_id/values?match[]=sonde_b_only"},
	}
	for _, req := range reqs {
		req.tenant = "a"
		status, body := do(t, srv, req)
		if status != http.StatusOK {
			t.Errorf("%s: status %d: %s", req.path, status, body)
			continue
		}
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("%s %v: tenant a sees %q: %s", req.path, req.form, s, body)
			}
		}
	}

	// Tenant b does see its data, so the checks above are not vacuous.
	status, body := do(t, srv, request{path: "/label/asset/values", tenant: "b"})
	if status != http.StatusOK || body != `{"status":"success","data":["secret-b"]}` {
		t.Errorf("tenant b: status %d: %s", status, body)
	}
}

func TestErrors(t *testing.T) {
	srv := newServer(t)
	cases := []struct {
		name   string
		req    request
		status int
		typ    string
	}{
		{"parse error", request{path: "/query?query=sum(", tenant: "a"}, 400, "bad_data"},
		{"parse error POST", request{method: "POST", path: "/query", form: url.Values{"query": {"foo{"}}, tenant: "a"}, 400, "bad_data"},
		{"empty query", request{path: "/query", tenant: "a"}, 400, "bad_data"},
		{"selector matching everything", request{path: "/query?query=%7Bcontainer_id!%3D%221%22%7D", tenant: "a"}, 400, "bad_data"},
		{"bad time", request{path: "/query?query=1&time=yesterday", tenant: "a"}, 400, "bad_data"},
		{"bad timeout", request{path: "/query?query=1&timeout=soon", tenant: "a"}, 400, "bad_data"},
		{"missing start", request{path: "/query_range?query=1&end=100&step=10", tenant: "a"}, 400, "bad_data"},
		{"bad end", request{path: "/query_range?query=1&start=1&end=x&step=10", tenant: "a"}, 400, "bad_data"},
		{"end before start", request{path: "/query_range?query=1&start=100&end=1&step=10", tenant: "a"}, 400, "bad_data"},
		{"bad step", request{path: "/query_range?query=1&start=1&end=100&step=often", tenant: "a"}, 400, "bad_data"},
		{"zero step", request{path: "/query_range?query=1&start=1&end=100&step=0", tenant: "a"}, 400, "bad_data"},
		{"too many points", request{path: "/query_range?query=1&start=0&end=11001&step=1", tenant: "a"}, 400, "bad_data"},
		{"subquery too fine", request{path: "/query?query=max_over_time(vector(1)%5B1h%3A100ms%5D)&time=1700000000.123", tenant: "a"}, 400, "bad_data"},
		{"range query of a range vector", request{path: "/query_range?query=sonde_cpu_usage%5B5m%5D&start=1699999000&end=1700001000&step=60", tenant: "a"}, 400, "bad_data"},
		{"series without match", request{path: "/series", tenant: "a"}, 400, "bad_data"},
		{"series with an empty matcher", request{path: "/series?match[]=%7Bfoo%3D%22%22%7D", tenant: "a"}, 400, "bad_data"},
		{"bad limit", request{path: "/labels?limit=-1", tenant: "a"}, 400, "bad_data"},
		{"invalid label name", request{path: "/label/%FF/values", tenant: "a"}, 400, "bad_data"},
		{"execution error", request{path: "/query?query=sonde_if_octets%2Bon()sonde_if_octets&time=1700000000.123", tenant: "a"}, 422, "execution"},
		{"timeout", request{path: "/query?query=sonde_cpu_usage&timeout=0.000000001", tenant: "a"}, 503, "timeout"},
		{"no scope", request{path: "/query?query=1"}, 403, "forbidden"},
		{"no scope for series", request{path: "/series?match[]=up"}, 403, "forbidden"},
		{"empty scope", request{path: "/query?query=1", tenant: "none"}, 403, "forbidden"},
		{"unknown endpoint", request{path: "/rules", tenant: "a"}, 404, "not_found"},
		{"body too large", request{method: "POST", path: "/query", form: url.Values{"query": {strings.Repeat("x", MaxBodyBytes)}}, tenant: "a"}, 413, "bad_data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, srv, tc.req)
			if status != tc.status {
				t.Errorf("status %d, want %d: %s", status, tc.status, body)
			}
			var resp map[string]any
			if err := json.Unmarshal([]byte(body), &resp); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if len(resp) != 3 || resp["status"] != "error" || resp["errorType"] != tc.typ || resp["error"] == "" {
				t.Errorf("body %s, want status error, errorType %s and an error", body, tc.typ)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]int64{
		"1700000000.123":                   1700000000123,
		"1700000000":                       1700000000000,
		"1700000000.1239":                  1700000000124,
		"2023-11-14T22:13:20.123Z":         1700000000123,
		"2023-11-14T23:13:20+01:00":        1700000000000,
		minTime().Format(time.RFC3339Nano): minTime().UnixMilli(),
		maxTime().Format(time.RFC3339Nano): maxTime().UnixMilli(),
	} {
		got, err := parseTime(in)
		if err != nil || got.UnixMilli() != want {
			t.Errorf("parseTime(%q) = %v (%d), %v; want %d", in, got, got.UnixMilli(), err, want)
		}
	}
	for _, in := range []string{"", "now", "NaN", "Inf", "1e300"} {
		if _, err := parseTime(in); err == nil {
			t.Errorf("parseTime(%q) succeeded", in)
		}
	}
	for in, want := range map[string]time.Duration{"15": 15 * time.Second, "0.5": 500 * time.Millisecond, "5m": 5 * time.Minute, "1h30m": 90 * time.Minute} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "1e300", "NaN"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) succeeded", in)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "ctl\x00\x01\x1f\n\r\t", "<a>&b", "é漢字🙂", "bad\xffutf8\xc3", "line\u2028sep\u2029", "\x7f"} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestAppendTimestampAndFloat(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 1700000000123: "1700000000.123", 1700000000005: "1700000000.005", 1700000000050: "1700000000.050", 1700000000000: "1700000000", -1500: "-1.500"} {
		if got := string(appendTimestamp(nil, in)); got != want {
			t.Errorf("appendTimestamp(%d) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[float64]string{42.5: `"42.5"`, 0: `"0"`, 1e21: `"1e+21"`, 1e20: `"100000000000000000000"`, 1e-7: `"1e-07"`, 0.000001: `"0.000001"`, math.Inf(1): `"+Inf"`, math.Inf(-1): `"-Inf"`, -3: `"-3"`} {
		if got := string(appendFloat(nil, in)); got != want {
			t.Errorf("appendFloat(%v) = %s, want %s", in, got, want)
		}
	}
	if got := string(appendFloat(nil, math.NaN())); got != `"NaN"` {
		t.Errorf("appendFloat(NaN) = %s", got)
	}
}

// TestTooManyMatchers checks that series, labels and label values refuse
// more than MaxMatchSelectors match[] parameters: each is looked up on its
// own in the store's whole index.
func TestTooManyMatchers(t *testing.T) {
	srv := newServer(t)
	query := func(n int) (url.Values, string) {
		form := url.Values{}
		for i := range n {
			form.Add("match[]", fmt.Sprintf(`{item=~".*9.*9.*%d"}`, i))
		}
		return form, form.Encode()
	}
	for _, n := range []int{MaxMatchSelectors, MaxMatchSelectors + 1, 2000} {
		form, qs := query(n)
		for _, req := range []request{
			{path: "/series?" + qs},
			{method: "POST", path: "/series", form: form},
			{path: "/labels?" + qs},
			{method: "POST", path: "/labels", form: form},
			{path: "/label/item/values?" + qs},
		} {
			req.tenant = "a"
			status, body := do(t, srv, req)
			if n <= MaxMatchSelectors {
				if status != http.StatusOK {
					t.Errorf("%s %s with %d match[]: status %d: %s", req.method, strings.SplitN(req.path, "?", 2)[0], n, status, body)
				}
				continue
			}
			var resp map[string]any
			if err := json.Unmarshal([]byte(body), &resp); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			msg, _ := resp["error"].(string)
			if status != http.StatusBadRequest || resp["errorType"] != "bad_data" || !strings.Contains(msg, "too many match[] parameters") {
				t.Errorf("%s %s with %d match[]: status %d: %s; want 400 bad_data, too many match[] parameters", req.method, strings.SplitN(req.path, "?", 2)[0], n, status, body)
			}
		}
	}
}

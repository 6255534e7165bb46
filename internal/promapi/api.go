// Package promapi serves the read endpoints of the Prometheus HTTP API v1
// on top of a tsstore.Store, so that Grafana (or any Prometheus client)
// with a Prometheus data source at https://<hub>/prometheus can query the
// hub. Every read is confined to the containers of the caller's scope.
//
// The hub mounts the handler, behind its authentication middleware, with
//
//	mux.Handle("/prometheus/api/v1/", http.StripPrefix("/prometheus/api/v1", promapi.New(store, scope, logger)))
//
// so that the handler sees paths such as /query and /label/{name}/values.
//
// Served: query, query_range, series, labels, label/{name}/values (GET,
// and POST with a form for all but label values), status/buildinfo,
// metadata (always empty), query_exemplars (always empty) and
// format_query. Responses, error types and status codes are Prometheus'
// (bad_data 400, execution 422, timeout 503, internal 500, not_found 404),
// except that a canceled query is 503 rather than Prometheus' 499, a body
// over MaxBodyBytes is 413 bad_data, more than MaxMatchSelectors match[]
// parameters are 400 bad_data, and a caller without a scope (or with an
// empty one) is 403 with errorType "forbidden".
package promapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// MaxBodyBytes bounds the body of a request (POSTed forms).
const MaxBodyBytes = 1 << 20

// MaxMatchSelectors is the most match[] parameters a series, labels or
// label values request may have: each one is looked up on its own in the
// store's whole index, so their number multiplies the cost of a request.
const MaxMatchSelectors = 20

// maxPointsPerSeries is the most points a range query may ask for per
// series, as in Prometheus.
const maxPointsPerSeries = 11000

// BuildVersion is the Prometheus version the API claims in
// status/buildinfo, so that Grafana enables the features that version has.
const BuildVersion = "2.42.0"

// Error types of the responses, as Prometheus names them, and Sonde's
// "forbidden".
const (
	errorTimeout   = "timeout"
	errorCanceled  = "canceled"
	errorExec      = "execution"
	errorBadData   = "bad_data"
	errorInternal  = "internal"
	errorNotFound  = "not_found"
	errorForbidden = "forbidden"
)

type apiError struct {
	typ    string
	status int
	err    error
}

func badData(err error) *apiError {
	return &apiError{typ: errorBadData, status: http.StatusBadRequest, err: err}
}

func invalidParam(name string, err error) *apiError {
	return badData(fmt.Errorf("invalid parameter %q: %w", name, err))
}

// handlerFunc serves one endpoint: it returns the JSON of the response's
// data, or the error to answer with.
type handlerFunc func(r *http.Request, scope tsstore.Scope) ([]byte, *apiError)

type api struct {
	store  tsstore.Store
	scope  func(*http.Request) (tsstore.Scope, error)
	logger *slog.Logger
	parser parser.Parser
	now    func() time.Time
}

// New returns the handler of the Prometheus API's read endpoints over
// store. scope tells which containers the (already authenticated) caller
// may read; when it fails, the request is answered 403 with errorType
// "forbidden" (a nil scope forbids every read). logger may be nil. See the package documentation for how
// to mount it.
func New(store tsstore.Store, scope func(*http.Request) (tsstore.Scope, error), logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if scope == nil {
		scope = func(*http.Request) (tsstore.Scope, error) {
			return tsstore.Scope{}, errors.New("no scope function configured")
		}
	}
	a := &api{
		store:  store,
		scope:  scope,
		logger: logger,
		parser: parser.NewParser(parser.Options{}),
		now:    time.Now,
	}
	mux := http.NewServeMux()
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		mux.Handle(method+" /query", a.handle(a.query, true))
		mux.Handle(method+" /query_range", a.handle(a.queryRange, true))
		mux.Handle(method+" /series", a.handle(a.series, true))
		mux.Handle(method+" /labels", a.handle(a.labelNames, true))
		mux.Handle(method+" /query_exemplars", a.handle(a.exemplars, true))
		mux.Handle(method+" /format_query", a.handle(a.formatQuery, false))
	}
	mux.Handle("GET /label/{name}/values", a.handle(a.labelValues, true))
	mux.Handle("GET /status/buildinfo", a.handle(buildInfo, false))
	mux.Handle("GET /metadata", a.handle(metadata, false))
	mux.Handle("/", a.handle(notFound, false))
	return mux
}

// handle bounds the body, parses the form, resolves the scope if needed,
// runs h and writes its response.
func (a *api) handle(h handlerFunc, scoped bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		if err := r.ParseForm(); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				a.writeError(w, r, &apiError{typ: errorBadData, status: http.StatusRequestEntityTooLarge,
					err: fmt.Errorf("request body larger than %d bytes", MaxBodyBytes)})
				return
			}
			a.writeError(w, r, badData(fmt.Errorf("error parsing form values: %w", err)))
			return
		}
		var scope tsstore.Scope
		if scoped {
			var err error
			if scope, err = a.scope(r); err != nil {
				a.writeError(w, r, &apiError{typ: errorForbidden, status: http.StatusForbidden, err: err})
				return
			}
		}
		data, apiErr := h(r, scope)
		if apiErr != nil {
			a.writeError(w, r, apiErr)
			return
		}
		b := make([]byte, 0, len(data)+32)
		b = append(b, `{"status":"success","data":`...)
		b = append(b, data...)
		b = append(b, '}')
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write(b); err != nil {
			a.logger.Debug("writing a Prometheus API response", "path", r.URL.Path, "err", err)
		}
	})
}

func (a *api) writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	level := slog.LevelDebug
	if e.status >= 500 {
		level = slog.LevelWarn
	}
	a.logger.Log(r.Context(), level, "Prometheus API request failed",
		"path", r.URL.Path, "status", e.status, "errorType", e.typ, "err", e.err)

	b := append([]byte(nil), `{"status":"error","errorType":`...)
	b = appendString(b, e.typ)
	b = append(b, `,"error":`...)
	b = appendString(b, e.err.Error())
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	if _, err := w.Write(b); err != nil {
		a.logger.Debug("writing a Prometheus API error", "path", r.URL.Path, "err", err)
	}
}

// badDataError is an error a store marks as the caller's mistake (a query
// that does not parse, an invalid range…), such as local.QueryError.
type badDataError interface {
	error
	BadData() bool
}

// storeError classifies an error of the store as Prometheus' API does.
// param names the request parameter a bad-data error is blamed on.
func storeError(err error, param string) *apiError {
	if errors.Is(err, tsstore.ErrEmptyScope) {
		return &apiError{typ: errorForbidden, status: http.StatusForbidden, err: err}
	}
	if bd, ok := errors.AsType[badDataError](err); ok && bd.BadData() {
		return invalidParam(param, err)
	}
	if _, ok := errors.AsType[parser.ParseErrors](err); ok {
		return invalidParam(param, err)
	}
	if _, ok := errors.AsType[*parser.ParseErr](err); ok {
		return invalidParam(param, err)
	}
	if _, ok := errors.AsType[promql.ErrQueryCanceled](err); ok {
		return &apiError{typ: errorCanceled, status: http.StatusServiceUnavailable, err: err}
	}
	if _, ok := errors.AsType[promql.ErrQueryTimeout](err); ok {
		return &apiError{typ: errorTimeout, status: http.StatusServiceUnavailable, err: err}
	}
	if _, ok := errors.AsType[promql.ErrStorage](err); ok {
		return &apiError{typ: errorInternal, status: http.StatusInternalServerError, err: err}
	}
	if errors.Is(err, context.Canceled) {
		return &apiError{typ: errorCanceled, status: http.StatusServiceUnavailable, err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &apiError{typ: errorTimeout, status: http.StatusServiceUnavailable, err: err}
	}
	return &apiError{typ: errorExec, status: http.StatusUnprocessableEntity, err: err}
}

// withTimeout applies the request's timeout parameter, if any, to its context.
func withTimeout(r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	v := r.FormValue("timeout")
	if v == "" {
		ctx, cancel := context.WithCancel(r.Context())
		return ctx, cancel, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return nil, nil, invalidParam("timeout", err)
	}
	if d <= 0 {
		return nil, nil, invalidParam("timeout", fmt.Errorf("timeout must be positive, got %s", d))
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, nil
}

func (a *api) query(r *http.Request, scope tsstore.Scope) ([]byte, *apiError) {
	ts, err := parseTimeParam(r, "time", a.now())
	if err != nil {
		return nil, invalidParam("time", err)
	}
	ctx, cancel, apiErr := withTimeout(r)
	if apiErr != nil {
		return nil, apiErr
	}
	defer cancel()

	q := r.FormValue("query")
	if err := tsstore.CheckQueryLimits(q); err != nil {
		return nil, invalidParam("query", err)
	}
	v, err := a.store.Query(ctx, scope, q, ts)
	if err != nil {
		return nil, storeError(err, "query")
	}
	return encodeQueryData(v)
}

func (a *api) queryRange(r *http.Request, scope tsstore.Scope) ([]byte, *apiError) {
	start, err := parseTime(r.FormValue("start"))
	if err != nil {
		return nil, invalidParam("start", err)
	}
	end, err := parseTime(r.FormValue("end"))
	if err != nil {
		return nil, invalidParam("end", err)
	}
	if end.Before(start) {
		return nil, invalidParam("end", errors.New("end timestamp must not be before start time"))
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil {
		return nil, invalidParam("step", err)
	}
	if step <= 0 {
		return nil, invalidParam("step", errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer"))
	}
	// As Prometheus: enough for 60s resolution over a week.
	if end.Sub(start)/step > maxPointsPerSeries {
		return nil, badData(errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"))
	}
	ctx, cancel, apiErr := withTimeout(r)
	if apiErr != nil {
		return nil, apiErr
	}
	defer cancel()

	q := r.FormValue("query")
	if err := tsstore.CheckQueryLimits(q); err != nil {
		return nil, invalidParam("query", err)
	}
	v, err := a.store.QueryRange(ctx, scope, q, start, end, step)
	if err != nil {
		return nil, storeError(err, "query")
	}
	return encodeQueryData(v)
}

func encodeQueryData(v parser.Value) ([]byte, *apiError) {
	b, err := appendQueryData(nil, v)
	if err != nil {
		return nil, &apiError{typ: errorInternal, status: http.StatusInternalServerError, err: err}
	}
	return b, nil
}

// rangeParams parses the optional start, end, match[] and limit
// parameters of the metadata endpoints.
type rangeParams struct {
	start, end time.Time
	matchers   [][]*labels.Matcher
	limit      int
}

func (a *api) parseRangeParams(r *http.Request) (rangeParams, *apiError) {
	var p rangeParams
	var err error
	if p.limit, err = parseLimit(r.FormValue("limit")); err != nil {
		return p, invalidParam("limit", err)
	}
	if p.start, err = parseTimeParam(r, "start", minTime()); err != nil {
		return p, invalidParam("start", err)
	}
	if p.end, err = parseTimeParam(r, "end", maxTime()); err != nil {
		return p, invalidParam("end", err)
	}
	if n := len(r.Form["match[]"]); n > MaxMatchSelectors {
		return p, invalidParam("match[]", fmt.Errorf("too many match[] parameters: %d, at most %d are allowed", n, MaxMatchSelectors))
	}
	if p.matchers, err = a.parseMatchers(r.Form["match[]"]); err != nil {
		return p, invalidParam("match[]", err)
	}
	return p, nil
}

func (a *api) series(r *http.Request, scope tsstore.Scope) ([]byte, *apiError) {
	if len(r.Form["match[]"]) == 0 {
		return nil, badData(errors.New("no match[] parameter provided"))
	}
	p, apiErr := a.parseRangeParams(r)
	if apiErr != nil {
		return nil, apiErr
	}
	sets, err := a.store.Series(r.Context(), scope, p.matchers, p.start, p.end)
	if err != nil {
		return nil, storeError(err, "match[]")
	}
	if p.limit > 0 && len(sets) > p.limit {
		sets = sets[:p.limit]
	}
	b := []byte{'['}
	for i, ls := range sets {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendLabels(b, ls)
	}
	return append(b, ']'), nil
}

func (a *api) labelNames(r *http.Request, scope tsstore.Scope) ([]byte, *apiError) {
	p, apiErr := a.parseRangeParams(r)
	if apiErr != nil {
		return nil, apiErr
	}
	names, err := a.store.LabelNames(r.Context(), scope, p.matchers, p.start, p.end)
	if err != nil {
		return nil, storeError(err, "match[]")
	}
	if p.limit > 0 && len(names) > p.limit {
		names = names[:p.limit]
	}
	return appendStrings(nil, names), nil
}

func (a *api) labelValues(r *http.Request, scope tsstore.Scope) ([]byte, *apiError) {
	name := r.PathValue("name")
	if strings.HasPrefix(name, "U__") {
		name = model.UnescapeName(name, model.ValueEncodingEscaping)
	}
	if !model.UTF8Validation.IsValidLabelName(name) {
		return nil, badData(fmt.Errorf("invalid label name: %q", name))
	}
	p, apiErr := a.parseRangeParams(r)
	if apiErr != nil {
		return nil, apiErr
	}
	values, err := a.store.LabelValues(r.Context(), scope, name, p.matchers, p.start, p.end)
	if err != nil {
		return nil, storeError(err, "match[]")
	}
	slices.Sort(values)
	if p.limit > 0 && len(values) > p.limit {
		values = values[:p.limit]
	}
	return appendStrings(nil, values), nil
}

// exemplars answers that there are none: the store keeps no exemplars.
func (*api) exemplars(*http.Request, tsstore.Scope) ([]byte, *apiError) {
	return []byte("[]"), nil
}

func (a *api) formatQuery(r *http.Request, _ tsstore.Scope) ([]byte, *apiError) {
	if err := tsstore.CheckQueryLimits(r.FormValue("query")); err != nil {
		return nil, invalidParam("query", err)
	}
	expr, err := a.parser.ParseExpr(r.FormValue("query"))
	if err != nil {
		return nil, invalidParam("query", err)
	}
	return appendString(nil, expr.Pretty(0)), nil
}

// buildInfo answers status/buildinfo with a Prometheus version, which
// Grafana reads to tell which API features it may use.
func buildInfo(*http.Request, tsstore.Scope) ([]byte, *apiError) {
	b := []byte(`{"version":`)
	b = appendString(b, BuildVersion)
	b = append(b, `,"revision":"sonde","branch":"","buildUser":"","buildDate":"","goVersion":`...)
	b = appendString(b, runtime.Version())
	return append(b, '}'), nil
}

// metadata answers that no metric has metadata.
func metadata(*http.Request, tsstore.Scope) ([]byte, *apiError) {
	return []byte("{}"), nil
}

func notFound(r *http.Request, _ tsstore.Scope) ([]byte, *apiError) {
	return nil, &apiError{typ: errorNotFound, status: http.StatusNotFound,
		err: fmt.Errorf("no such endpoint: %s", r.URL.Path)}
}

// parseMatchers parses match[] selectors; each must have a matcher that
// does not match the empty string, as Prometheus requires.
func (a *api) parseMatchers(selectors []string) ([][]*labels.Matcher, error) {
	for _, sel := range selectors {
		if err := tsstore.CheckQueryLimits(sel); err != nil {
			return nil, err
		}
	}
	sets, err := a.parser.ParseMetricSelectors(selectors)
	if err != nil {
		return nil, err
	}
outer:
	for _, ms := range sets {
		for _, m := range ms {
			if m != nil && !m.Matches("") {
				continue outer
			}
		}
		return nil, errors.New("match[] must contain at least one non-empty matcher")
	}
	return sets, nil
}

// minTime and maxTime are the defaults of optional time ranges, the same
// instants as Prometheus' (clients send them back formatted).
func minTime() time.Time {
	return time.Unix(math.MinInt64/1000+62135596801, 0).UTC()
}

func maxTime() time.Time {
	return time.Unix(math.MaxInt64/1000-62135596801, 999999999).UTC()
}

func parseTimeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.FormValue(name)
	if v == "" {
		return def, nil
	}
	t, err := parseTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time value for '%s': %w", name, err)
	}
	return t, nil
}

// parseTime parses Unix seconds (with up to millisecond decimals) or
// RFC 3339, as Prometheus does.
func parseTime(s string) (time.Time, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f >= math.MaxInt64/1000 || f <= math.MinInt64/1000 {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		sec, frac := math.Modf(f)
		frac = math.Round(frac*1000) / 1000
		return time.Unix(int64(sec), int64(frac*float64(time.Second))).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	// time.Parse handles four-digit years only; accept our own bounds.
	switch s {
	case minTime().Format(time.RFC3339Nano):
		return minTime(), nil
	case maxTime().Format(time.RFC3339Nano):
		return maxTime(), nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

// parseDuration parses seconds (possibly fractional) or a Prometheus
// duration such as 5m or 1h30m.
func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		ns := f * float64(time.Second)
		if math.IsNaN(ns) || ns >= float64(math.MaxInt64) || ns < float64(math.MinInt64) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration. It overflows int64", s)
		}
		return time.Duration(ns), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

func parseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, errors.New("limit must be non-negative")
	}
	return n, nil
}

package remote

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
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

// Defaults of QuerierOptions, the embedded store's.
const (
	qDefaultTimeout          = 30 * time.Second
	qDefaultMaxConcurrent    = 20
	qDefaultMaxPerScope      = 4
	qDefaultMaxResponseBytes = 64 << 20
)

// qMaxPointsPerSeries is the most steps a range query may have: the limit
// of Prometheus' HTTP API, and of the embedded store.
const qMaxPointsPerSeries = 11_000

// qMaxErrorText bounds how much of an answer that is not the API's JSON
// goes into an error message.
const qMaxErrorText = 512

// qFutureSlack is how far past the present the end of a metadata read is
// clamped: VictoriaMetrics answers nothing at all for series, label and
// delete requests whose end lies a day or so in the future, which is
// what the HTTP API's default end (the largest time) always does.
const qFutureSlack = 2 * time.Hour

// QuerierOptions configures a Querier.
type QuerierOptions struct {
	// BaseURL is the base of the remote's Prometheus HTTP API: the API's
	// paths (/api/v1/query…) are appended to it. For example
	// http://127.0.0.1:9090 (Prometheus, Thanos Query),
	// https://vm.example/select/0/prometheus (VictoriaMetrics cluster)
	// or https://mimir.example/prometheus (Mimir).
	BaseURL *url.URL
	// Client sends the requests; its TLS configuration is the caller's.
	// The Querier uses a copy that does not follow a redirect to another
	// host or scheme. Default: a client with the system's roots.
	Client *http.Client
	// Decorate, if set, adds the authentication headers (bearer token,
	// X-Scope-OrgID) to every request.
	Decorate func(*http.Request)
	// QueryTimeout bounds every read once it has its slots; it is also
	// sent as the timeout parameter. Default 30s.
	QueryTimeout time.Duration
	// MaxConcurrent is how many reads run at once; further reads wait
	// until their context ends. Default 20.
	MaxConcurrent int
	// MaxConcurrentPerScope is how many of them may be of one scope, so
	// that one tenant cannot take every slot. Default 4.
	MaxConcurrentPerScope int
	// MaxResponseBytes bounds the body of an answer; a larger one is an
	// error. Default 64 MiB.
	MaxResponseBytes int64
}

// Querier is the read half of the remote store: it confines every read to
// a scope by adding the scope's matcher to every selector, and sends it to
// the remote's Prometheus HTTP API. Its methods are safe for concurrent
// use.
type Querier struct {
	base     *url.URL
	client   *http.Client
	decorate func(*http.Request)
	timeout  time.Duration
	maxBytes int64
	reads    *tsstore.ReadSlots
	parser   parser.Parser
	now      func() time.Time
}

// NewQuerier returns a Querier of the remote at opts.BaseURL.
func NewQuerier(opts QuerierOptions) (*Querier, error) {
	if opts.BaseURL == nil {
		return nil, errors.New("remote query URL: not set")
	}
	if opts.BaseURL.Scheme != "http" && opts.BaseURL.Scheme != "https" {
		return nil, fmt.Errorf("remote query URL: scheme must be http or https, not %q", opts.BaseURL.Scheme)
	}
	if opts.BaseURL.Host == "" {
		return nil, errors.New("remote query URL: no host")
	}
	if opts.BaseURL.RawQuery != "" || opts.BaseURL.Fragment != "" {
		return nil, errors.New("remote query URL: must not have a query or a fragment; give the base of the API, such as https://vm.example/select/0/prometheus")
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = qDefaultTimeout
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = qDefaultMaxConcurrent
	}
	if opts.MaxConcurrentPerScope <= 0 {
		opts.MaxConcurrentPerScope = qDefaultMaxPerScope
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = qDefaultMaxResponseBytes
	}
	base := *opts.BaseURL
	base.Path = strings.TrimSuffix(base.Path, "/")
	base.RawPath = strings.TrimSuffix(base.RawPath, "/")

	client := &http.Client{}
	if opts.Client != nil {
		c := *opts.Client
		client = &c
	}
	// A redirect to another host would take the headers Decorate adds
	// (the tenant's X-Scope-OrgID, custom auth headers) and the query
	// there: Go's client drops only Authorization and cookies.
	next := client.CheckRedirect
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
			return fmt.Errorf("refusing to follow a redirect from %s://%s to %s://%s", first.Scheme, first.Host, req.URL.Scheme, req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}

	return &Querier{
		base:     &base,
		client:   client,
		decorate: opts.Decorate,
		timeout:  opts.QueryTimeout,
		maxBytes: opts.MaxResponseBytes,
		reads:    tsstore.NewReadSlots(opts.MaxConcurrent, opts.MaxConcurrentPerScope),
		parser:   parser.NewParser(parser.Options{}),
		now:      time.Now,
	}, nil
}

// QueryError is returned when a query cannot be prepared (it does not
// parse, it is of the wrong type for a range query, its range or step is
// invalid) or when the remote refuses it as bad_data. It is the caller's
// mistake; its BadData method lets an HTTP layer answer 400 bad_data.
type QueryError struct {
	Err error
}

// Error returns the message of the underlying error.
func (e *QueryError) Error() string {
	return e.Err.Error()
}

// Unwrap returns the underlying error, e.g. a parser.ParseErrors.
func (e *QueryError) Unwrap() error {
	return e.Err
}

// BadData reports that the error is the caller's mistake.
func (e *QueryError) BadData() bool {
	return true
}

// ScopeQuery parses query and returns it rendered again with the scope
// matcher m added, first, to every vector selector: those of range
// selectors and subqueries included, whatever their @ modifier or offset.
// The caller's own matchers stay: they can only narrow the selection.
// What is sent is always the rendering of the parsed expression, never
// the caller's text, so a comment or a construct the Go parser does not
// know cannot carry anything past it. A query that does not parse is a
// *QueryError wrapping the parser's error.
func ScopeQuery(p parser.Parser, query string, m *labels.Matcher) (parser.Expr, string, error) {
	if err := tsstore.CheckQueryLimits(query); err != nil {
		return nil, "", &QueryError{Err: err}
	}
	expr, err := p.ParseExpr(query)
	if err != nil {
		return nil, "", &QueryError{Err: err}
	}
	qScopeExpr(expr, m)
	rendered := expr.String()
	if len(rendered) > MaxScopedQueryBytes {
		// The scope is in every selector: a wide scope (a user who sees
		// many containers) times many selectors.
		return nil, "", &QueryError{Err: fmt.Errorf("the query, confined to the %d bytes of the caller's container matcher in each of its selectors, is %d bytes long, more than the %d a remote TSDB is sent: use fewer selectors, or narrow the query with container_id",
			len(m.String()), len(rendered), MaxScopedQueryBytes)}
	}
	return expr, rendered, nil
}

// MaxScopedQueryBytes bounds the query sent to the remote TSDB, once the
// scope is in every selector.
const MaxScopedQueryBytes = 1 << 20

// qScopeExpr adds m first to the matchers of every vector selector of
// expr.
func qScopeExpr(expr parser.Node, m *labels.Matcher) {
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			vs.LabelMatchers = qWithScope(m, vs.LabelMatchers)
		}
		return nil
	})
}

// qWithScope returns a new slice: m, then ms.
func qWithScope(m *labels.Matcher, ms []*labels.Matcher) []*labels.Matcher {
	out := make([]*labels.Matcher, 0, len(ms)+1)
	out = append(out, m)
	return append(out, ms...)
}

// Query evaluates an instant PromQL query at ts on the remote, confined
// to the scope's series. Preparation errors are *QueryError.
func (q *Querier) Query(ctx context.Context, scope tsstore.Scope, query string, ts time.Time) (parser.Value, error) {
	m, key, err := scope.MatcherAndKey()
	if err != nil {
		return nil, err
	}
	_, rendered, err := ScopeQuery(q.parser, query, m)
	if err != nil {
		return nil, err
	}
	form := url.Values{"query": {rendered}, "time": {qFormatTime(ts)}}
	var data qQueryData
	if err := q.call(ctx, key, "evaluating the query", http.MethodPost, "query", form, &data); err != nil {
		return nil, err
	}
	return q.value(&data)
}

// QueryRange evaluates a range PromQL query on the remote, confined to the
// scope's series. Preparation errors are *QueryError, among them a range
// of more than 11,000 steps.
func (q *Querier) QueryRange(ctx context.Context, scope tsstore.Scope, query string, start, end time.Time, step time.Duration) (parser.Value, error) {
	if step <= 0 {
		return nil, &QueryError{Err: errors.New("zero or negative query resolution step widths are not accepted. Try a positive integer")}
	}
	if end.Before(start) {
		return nil, &QueryError{Err: errors.New("end timestamp must not be before start time")}
	}
	if end.Sub(start)/step > qMaxPointsPerSeries {
		return nil, &QueryError{Err: errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")}
	}
	m, key, err := scope.MatcherAndKey()
	if err != nil {
		return nil, err
	}
	expr, rendered, err := ScopeQuery(q.parser, query, m)
	if err != nil {
		return nil, err
	}
	if t := expr.Type(); t != parser.ValueTypeVector && t != parser.ValueTypeScalar {
		return nil, &QueryError{Err: fmt.Errorf("invalid expression type %q for range query, must be Scalar or instant Vector", parser.DocumentedType(t))}
	}
	form := url.Values{
		"query": {rendered},
		"start": {qFormatTime(start)},
		"end":   {qFormatTime(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	var data qQueryData
	if err := q.call(ctx, key, "evaluating the range query", http.MethodPost, "query_range", form, &data); err != nil {
		return nil, err
	}
	return q.value(&data)
}

// Series returns the label sets, sorted, of the scope's series that match
// any of the matcher sets between start and end; with no matcher set, all
// the scope's series.
func (q *Querier) Series(ctx context.Context, scope tsstore.Scope, matchers [][]*labels.Matcher, start, end time.Time) ([]labels.Labels, error) {
	m, key, err := scope.MatcherAndKey()
	if err != nil {
		return nil, err
	}
	form := q.metadataForm(m, matchers, start, end)
	var data []map[string]string
	if err := q.call(ctx, key, "listing series", http.MethodPost, "series", form, &data); err != nil {
		return nil, err
	}
	out := make([]labels.Labels, 0, len(data))
	for _, ls := range data {
		out = append(out, labels.FromMap(ls))
	}
	slices.SortFunc(out, labels.Compare)
	return slices.CompactFunc(out, labels.Equal), nil
}

// LabelNames returns the sorted label names of the scope's series that
// match any of the matcher sets (all the scope's series with none).
func (q *Querier) LabelNames(ctx context.Context, scope tsstore.Scope, matchers [][]*labels.Matcher, start, end time.Time) ([]string, error) {
	m, key, err := scope.MatcherAndKey()
	if err != nil {
		return nil, err
	}
	form := q.metadataForm(m, matchers, start, end)
	var data []string
	if err := q.call(ctx, key, "listing label names", http.MethodPost, "labels", form, &data); err != nil {
		return nil, err
	}
	slices.Sort(data)
	return slices.Compact(data), nil
}

// LabelValues returns the sorted values of label name in the scope's
// series that match any of the matcher sets (all the scope's series with
// none). A name that is not valid UTF-8 is a *QueryError; one outside the
// legacy character set is sent escaped as Prometheus 3 expects
// (U__…), which older remotes do not know: they answer no value.
func (q *Querier) LabelValues(ctx context.Context, scope tsstore.Scope, name string, matchers [][]*labels.Matcher, start, end time.Time) ([]string, error) {
	if !model.UTF8Validation.IsValidLabelName(name) {
		return nil, &QueryError{Err: fmt.Errorf("invalid label name: %q", name)}
	}
	m, key, err := scope.MatcherAndKey()
	if err != nil {
		return nil, err
	}
	seg := name
	if !model.LegacyValidation.IsValidLabelName(name) {
		seg = model.EscapeName(name, model.ValueEncodingEscaping)
	}
	form := q.metadataForm(m, matchers, start, end)
	var data []string
	what := fmt.Sprintf("listing values of label %q", name)
	path := "label/" + url.PathEscape(seg) + "/values"
	if err := q.call(ctx, key, what, http.MethodGet, path, form, &data); err != nil {
		return nil, err
	}
	slices.Sort(data)
	return slices.Compact(data), nil
}

// Delete removes the samples between start and end of the scope's series
// that match all the matchers (with none, of all the scope's series)
// through the remote's admin API, POST /api/v1/admin/tsdb/delete_series.
// Prometheus needs --web.enable-admin-api, and frees the space only when it
// next compacts. VictoriaMetrics ignores start and end: it deletes the
// matching series whole, every sample of them. Mimir and Thanos Query have
// no such endpoint: Delete fails there, saying so.
func (q *Querier) Delete(ctx context.Context, scope tsstore.Scope, start, end time.Time, matchers ...*labels.Matcher) error {
	m, key, err := scope.MatcherAndKey()
	if err != nil {
		return err
	}
	var sets [][]*labels.Matcher
	if len(matchers) > 0 {
		sets = [][]*labels.Matcher{matchers}
	}
	form := q.metadataForm(m, sets, start, end)
	err = q.call(ctx, key, "deleting series", http.MethodPost, "admin/tsdb/delete_series", form, nil)
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*qStatusError](err); ok && se.notServed {
		return fmt.Errorf("%w (deleting needs the remote's admin API: start Prometheus with --web.enable-admin-api; VictoriaMetrics serves it on vmselect or the single node; Mimir and Thanos Query have none)", err)
	}
	return err
}

// metadataForm returns the parameters of a series, labels, label values
// or delete request: one match[] selector per matcher set with the scope
// matcher added (the scope's selector alone with none), and the range
// clamped to what every remote answers for (see qFutureSlack; nothing is
// stored before 1970).
func (q *Querier) metadataForm(m *labels.Matcher, matchers [][]*labels.Matcher, start, end time.Time) url.Values {
	form := url.Values{}
	if len(matchers) == 0 {
		matchers = [][]*labels.Matcher{nil}
	}
	for _, ms := range matchers {
		vs := &parser.VectorSelector{LabelMatchers: qWithScope(m, ms)}
		form.Add("match[]", vs.String())
	}
	if epoch := time.Unix(0, 0); start.Before(epoch) {
		start = epoch
	}
	if limit := q.now().Add(qFutureSlack); end.After(limit) {
		end = limit
	}
	if end.Before(start) {
		end = start
	}
	form.Set("start", qFormatTime(start))
	form.Set("end", qFormatTime(end))
	return form
}

// qFormatTime formats t as the API's float seconds, to the millisecond,
// without going through a float64.
func qFormatTime(t time.Time) string {
	ms := t.UnixMilli()
	sign := ""
	if ms < 0 {
		sign = "-"
		if ms == math.MinInt64 {
			ms++
		}
		ms = -ms
	}
	return fmt.Sprintf("%s%d.%03d", sign, ms/1000, ms%1000)
}

// qSeconds formats d in seconds for the timeout parameter.
func qSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

// call takes the read slots of the scope whose key is key, sends one
// request to the remote's API path (under /api/v1/) and decodes the data
// of its answer into out (nil for none). what says what the read does,
// for messages.
func (q *Querier) call(ctx context.Context, key, what, method, path string, form url.Values, out any) error {
	release, err := q.reads.Acquire(ctx, key)
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return q.contextError(what, context.Cause(ctx))
		}
		form.Set("timeout", qSeconds(left))
	}

	u := q.base.JoinPath("api", "v1", path) // #nosec G125 -- path is a fixed API path; a label name in it is validated and path-escaped
	var body io.Reader
	if method == http.MethodGet {
		u.RawQuery = form.Encode()
	} else {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return qStorage(fmt.Errorf("the remote TSDB: %s: building the request to /api/v1/%s failed", what, path))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	if q.decorate != nil {
		q.decorate(req)
	}
	resp, err := q.client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return q.contextError(what, context.Cause(ctx))
		}
		// The url.Error's message holds the URL: its query string
		// (label values' match[]) is left out.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return qStorage(fmt.Errorf("the remote TSDB: %s: %s /api/v1/%s: %w", what, method, path, err))
	}
	defer func() {
		// Drained a little so that the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, 4096)
		resp.Body.Close()
	}()
	err = q.decode(resp, what, out)
	if err != nil && ctx.Err() != nil {
		return q.contextError(what, context.Cause(ctx))
	}
	return err
}

// contextError is the error of a read whose context ended, typed as the
// engine's (promql.ErrQueryTimeout or promql.ErrQueryCanceled) with the
// context's error kept in the chain.
func (q *Querier) contextError(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: the remote TSDB: %s: %w", promql.ErrQueryTimeout(what), what, err)
	}
	return fmt.Errorf("%w: the remote TSDB: %s: %w", promql.ErrQueryCanceled(what), what, err)
}

// qEnvelope is the JSON of every answer of the API.
type qEnvelope struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      any    `json:"data"`
}

// qStatusError is the error of an answer whose HTTP status says the
// remote did not serve the path (404, 405) or refused the credentials
// (401, 403), or of Prometheus' "admin APIs disabled".
type qStatusError struct {
	msg string
	// notServed is set when the remote does not serve the path.
	notServed bool
}

func (e *qStatusError) Error() string { return e.msg }

// decode reads the answer, at most maxBytes of it, and decodes its data
// into out or returns the error it carries.
func (q *Querier) decode(resp *http.Response, what string, out any) error {
	counted := &qCountingReader{r: io.LimitReader(resp.Body, q.maxBytes+1)}
	br := bufio.NewReaderSize(counted, 4096)
	head, _ := br.Peek(qMaxErrorText)
	tooLarge := func() error {
		return fmt.Errorf("the remote TSDB: %s: the answer is larger than %d bytes. Narrow the query (fewer series, a shorter range or a larger step)", what, q.maxBytes)
	}

	if resp.StatusCode == http.StatusNoContent || (out == nil && resp.StatusCode/100 == 2 && len(bytes.TrimSpace(head)) == 0) {
		return nil
	}
	if trimmed := bytes.TrimSpace(head); len(trimmed) == 0 || trimmed[0] != '{' {
		return q.statusError(what, resp.StatusCode, "", qErrorText(head))
	}

	env := qEnvelope{Data: out}
	err := json.NewDecoder(br).Decode(&env)
	if counted.n > q.maxBytes {
		return tooLarge()
	}
	if err != nil {
		if resp.StatusCode/100 != 2 {
			return q.statusError(what, resp.StatusCode, "", qErrorText(head))
		}
		return qStorage(fmt.Errorf("the remote TSDB: %s: decoding the answer: %w", what, err))
	}
	switch {
	case env.Status == "success" && resp.StatusCode/100 == 2:
		return nil
	case env.Status == "error":
		return q.statusError(what, resp.StatusCode, env.ErrorType, env.Error)
	}
	return q.statusError(what, resp.StatusCode, "", qErrorText(head))
}

// statusError classifies an error answer as Prometheus' API does, from
// its errorType (Prometheus' names, or VictoriaMetrics' status codes) or
// else its HTTP status.
func (q *Querier) statusError(what string, status int, errorType, msg string) error {
	if msg == "" {
		msg = http.StatusText(status)
	}
	text := fmt.Sprintf("the remote TSDB: %s: %s", what, msg)
	typ := errorType
	if typ == "" {
		typ = strconv.Itoa(status)
	}
	switch {
	case typ == "bad_data" || (typ == "400" && errorType != ""):
		return &QueryError{Err: errors.New(text)}
	case typ == "timeout":
		return fmt.Errorf("%w: %s", promql.ErrQueryTimeout(what), text)
	case typ == "canceled":
		return fmt.Errorf("%w: %s", promql.ErrQueryCanceled(what), text)
	case typ == "execution" || typ == "422":
		return errors.New(text)
	case strings.Contains(msg, "admin APIs disabled"),
		typ == "not_found", status == http.StatusNotFound, status == http.StatusMethodNotAllowed:
		return qStorage(&qStatusError{msg: fmt.Sprintf("%s (HTTP %d: is the remote's query URL right?)", text, status), notServed: true})
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return qStorage(&qStatusError{msg: fmt.Sprintf("%s (HTTP %d: check the remote's credentials)", text, status)})
	}
	return qStorage(fmt.Errorf("%s (HTTP %d)", text, status))
}

// qStorageError is a failure of the remote or of reaching it. It is a
// promql.ErrStorage for errors.As (promapi answers 500) and keeps its
// cause in the chain, which promql.ErrStorage, having no Unwrap, does not.
type qStorageError struct{ err error }

func qStorage(err error) error { return &qStorageError{err: err} }

func (e *qStorageError) Error() string { return e.err.Error() }

func (e *qStorageError) Unwrap() []error { return []error{promql.ErrStorage{Err: e.err}, e.err} }

// qErrorText returns b as text fit for a message: valid UTF-8, no control
// characters, at most qMaxErrorText bytes.
func qErrorText(b []byte) string {
	if len(b) > qMaxErrorText {
		b = b[:qMaxErrorText]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// qCountingReader counts the bytes read through it.
type qCountingReader struct {
	r io.Reader
	n int64
}

func (c *qCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// qQueryData is the data of a query or query_range answer.
type qQueryData struct {
	ResultType string  `json:"resultType"`
	Result     qResult `json:"result"`
}

// qResult is a query's result: a list of series (vector, matrix) or one
// point (scalar, string).
type qResult struct {
	series []qSeries
	point  *qPoint
}

func (r *qResult) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '[' {
		return errors.New("result is not an array")
	}
	inner := bytes.TrimSpace(b[1:])
	if len(inner) > 0 && (inner[0] == '{' || inner[0] == ']') {
		return json.Unmarshal(b, &r.series)
	}
	r.point = new(qPoint)
	return json.Unmarshal(b, r.point)
}

// qSeries is one series of a vector or a matrix.
type qSeries struct {
	Metric     map[string]string `json:"metric"`
	Value      *qPoint           `json:"value"`
	Values     []qPoint          `json:"values"`
	Histogram  json.RawMessage   `json:"histogram"`
	Histograms json.RawMessage   `json:"histograms"`
}

// qPoint is a [<seconds>, "<value>"] pair.
type qPoint struct {
	T int64
	S string
}

func (p *qPoint) UnmarshalJSON(b []byte) error {
	var pair [2]json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return fmt.Errorf("decoding a point: %w", err)
	}
	if pair[0] == nil || pair[1] == nil {
		return errors.New("decoding a point: not a [time, value] pair")
	}
	t, err := qParseMillis(string(pair[0]))
	if err != nil {
		return err
	}
	p.T = t
	if err := json.Unmarshal(pair[1], &p.S); err != nil {
		return fmt.Errorf("decoding a point's value: %w", err)
	}
	return nil
}

// float returns the point's value.
func (p *qPoint) float() (float64, error) {
	f, err := strconv.ParseFloat(p.S, 64)
	if err != nil {
		return 0, fmt.Errorf("decoding a sample value %q: %w", qErrorText([]byte(p.S)), err)
	}
	return f, nil
}

// qParseMillis parses a JSON number of seconds, such as 1700000000.123,
// into milliseconds exactly: from its decimal digits, not through a
// float64, which would turn .123 into .12299999.
func qParseMillis(s string) (int64, error) {
	bad := func() (int64, error) {
		return 0, fmt.Errorf("decoding a timestamp: %q is not a number of seconds", qErrorText([]byte(s)))
	}
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.Abs(f) > math.MaxInt64/1000 {
			return bad()
		}
		return int64(math.Round(f * 1000)), nil
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(whole) > 15 {
		return bad()
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return bad()
	}
	var ms int64
	for i := range 4 {
		d := 0
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return bad()
			}
			d = int(c - '0')
		}
		if i < 3 {
			ms = ms*10 + int64(d)
		} else if d >= 5 {
			ms++ // Rounded to the nearest millisecond.
		}
	}
	for i := 4; i < len(frac); i++ {
		if frac[i] < '0' || frac[i] > '9' {
			return bad()
		}
	}
	t := sec*1000 + ms
	if neg {
		t = -t
	}
	return t, nil
}

// value converts a query's data into the engine's types. Series of a
// matrix are sorted by labels, as the engine returns them; a vector keeps
// the remote's order.
func (q *Querier) value(d *qQueryData) (parser.Value, error) {
	fail := func(err error) (parser.Value, error) {
		return nil, qStorage(fmt.Errorf("the remote TSDB: decoding the %s result: %w", d.ResultType, err))
	}
	for _, s := range d.Result.series {
		if s.Histogram != nil || s.Histograms != nil {
			return fail(errors.New("the result holds native histograms, which Sonde does not store: check the query"))
		}
	}
	switch d.ResultType {
	case "vector":
		if d.Result.point != nil {
			return fail(errors.New("expected a list of series"))
		}
		vec := make(promql.Vector, 0, len(d.Result.series))
		for _, s := range d.Result.series {
			if s.Value == nil {
				return fail(errors.New("a sample has no value"))
			}
			f, err := s.Value.float()
			if err != nil {
				return fail(err)
			}
			vec = append(vec, promql.Sample{Metric: labels.FromMap(s.Metric), T: s.Value.T, F: f})
		}
		return vec, nil
	case "matrix":
		if d.Result.point != nil {
			return fail(errors.New("expected a list of series"))
		}
		mat := make(promql.Matrix, 0, len(d.Result.series))
		for _, s := range d.Result.series {
			pts := make([]promql.FPoint, 0, len(s.Values))
			for _, p := range s.Values {
				f, err := p.float()
				if err != nil {
					return fail(err)
				}
				pts = append(pts, promql.FPoint{T: p.T, F: f})
			}
			mat = append(mat, promql.Series{Metric: labels.FromMap(s.Metric), Floats: pts})
		}
		slices.SortFunc(mat, func(a, b promql.Series) int { return labels.Compare(a.Metric, b.Metric) })
		return mat, nil
	case "scalar":
		if d.Result.point == nil {
			return fail(errors.New("expected a [time, value] pair"))
		}
		f, err := d.Result.point.float()
		if err != nil {
			return fail(err)
		}
		return promql.Scalar{T: d.Result.point.T, V: f}, nil
	case "string":
		if d.Result.point == nil {
			return fail(errors.New("expected a [time, value] pair"))
		}
		return promql.String{T: d.Result.point.T, V: d.Result.point.S}, nil
	}
	return fail(fmt.Errorf("unknown result type %q", qErrorText([]byte(d.ResultType))))
}

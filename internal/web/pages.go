package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql"

	"github.com/sonde-monitoring/sonde/internal/alert"
	"github.com/sonde-monitoring/sonde/internal/audit"
	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/ingest"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
	"github.com/sonde-monitoring/sonde/internal/web/chart"
)

// access returns the user's permissions on a container; ok is false (and
// a 404 page is written) when the user may not read it.
func (s *Server) access(w http.ResponseWriter, r *http.Request, si sessionInfo, container int64) (auth.Permission, bool) {
	_, perms, err := s.visible(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return 0, false
	}
	p, ok := perms[container]
	if !ok || !p.Has(auth.Read) {
		s.notFound(w, r, si)
		return 0, false
	}
	return p, true
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	s.render(w, r, http.StatusNotFound, "notfound", page{Title: "Not found", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user)})
}

func pathID(r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id, err == nil && id > 0
}

// scoped reads the object the path's {id} names with get, and checks that
// the user reads the container it is in (container); otherwise it writes
// the 404 page (or the error page when the store fails) and ok is false.
// It returns the user's permissions there.
func scoped[T any](s *Server, w http.ResponseWriter, r *http.Request, si sessionInfo,
	get func(context.Context, int64) (T, error), container func(T) int64) (T, auth.Permission, bool) {
	var zero T
	id, ok := pathID(r)
	if !ok {
		s.notFound(w, r, si)
		return zero, 0, false
	}
	v, err := get(r.Context(), id)
	if errors.Is(err, state.ErrNotFound) {
		s.notFound(w, r, si)
		return zero, 0, false
	}
	if err != nil {
		s.serverError(w, r, err)
		return zero, 0, false
	}
	perm, ok := s.access(w, r, si, container(v))
	return v, perm, ok
}

// containerData is the container page.
type containerData struct {
	Container state.Container
	Assets    []state.AssetSummary
	Total     int
	Filter    assetFilter
	Kinds     []string
	Labels    []string
}

// assetFilter is the container page's filter, from the query string so a
// filtered list can be bookmarked and shared.
type assetFilter struct {
	Q, Kind, Label, State string
}

// GET /container/{id}: its assets with their state, searchable.
func (s *Server) containerPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	id, ok := pathID(r)
	if !ok {
		s.notFound(w, r, si)
		return
	}
	if _, ok := s.access(w, r, si, id); !ok {
		return
	}
	c, err := s.st.Container(r.Context(), id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	all, err := s.st.AssetSummaries(r.Context(), id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	q := r.URL.Query()
	f := assetFilter{Q: q.Get("q"), Kind: q.Get("kind"), Label: q.Get("label"), State: q.Get("state")}
	d := containerData{Container: c, Total: len(all), Filter: f}
	kinds, labels := map[string]bool{}, map[string]bool{}
	for _, a := range all {
		if a.Kind != "" {
			kinds[a.Kind] = true
		}
		for _, l := range a.Labels {
			labels[l] = true
		}
		if f.matches(a) {
			d.Assets = append(d.Assets, a)
		}
	}
	for k := range kinds {
		d.Kinds = append(d.Kinds, k)
	}
	for l := range labels {
		d.Labels = append(d.Labels, l)
	}
	slices.Sort(d.Kinds)
	slices.Sort(d.Labels)
	s.render(w, r, http.StatusOK, "container", page{Title: c.Name, User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user), Data: d})
}

func (f assetFilter) matches(a state.AssetSummary) bool {
	if f.Q != "" && !strings.Contains(strings.ToLower(a.Name), strings.ToLower(f.Q)) {
		return false
	}
	if f.Kind != "" && a.Kind != f.Kind {
		return false
	}
	if f.Label != "" && !slices.Contains(a.Labels, f.Label) {
		return false
	}
	switch f.State {
	case "alerting":
		return a.OpenAlerts > 0
	case "error":
		return a.Errors > 0
	case "ok":
		return a.OpenAlerts == 0 && a.Errors == 0
	}
	return true
}

// checkView is one check's latest result on the asset page.
type checkView struct {
	Collector, Check string
	Time             time.Time
	Error            string
	ErrorSeverity    string
	Tables           []template.HTML
}

// maxRowsShown bounds the items shown per type on the asset page.
const maxRowsShown = 500

// GET /asset/{id}: every check's latest result, as tables per type.
func (s *Server) assetPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	a, _, ok := scoped(s, w, r, si, s.st.Asset, func(a state.Asset) int64 { return a.ContainerID })
	if !ok {
		return
	}
	id := a.ID
	results, err := s.st.LatestResults(r.Context(), id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	alerts, err := s.st.Alerts(r.Context(), state.AlertFilter{AssetID: id, Status: "open"})
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	checks := make([]checkView, 0, len(results))
	size := 0
	for _, res := range results {
		cv := checkView{Collector: res.Collector, Check: res.Check, Time: time.Unix(res.Timestamp, 0).UTC(), Error: res.ErrorMessage}
		if res.ErrorSeverity != nil {
			cv.ErrorSeverity = model.Severity(*res.ErrorSeverity).String()
		}
		if len(res.Data) > 0 {
			tables, err := parseResult(res.Data, maxRowsShown)
			if err != nil {
				cv.Error = "the stored result could not be read: " + err.Error()
			}
			for _, t := range tables {
				size += t.size()
				cv.Tables = append(cv.Tables, t.html(func(metric string) string {
					return chartLink(a.ID, res.Collector, res.Check, t.name, metric)
				}))
			}
		}
		checks = append(checks, cv)
	}
	s.renderSized(w, r, http.StatusOK, "asset", page{Title: a.Name, User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user), Data: struct {
		Asset  state.Asset
		Checks []checkView
		Alerts []alertRow
	}{a, checks, alertRows(alerts, nil)}}, size)
}

// unitOf guesses a metric's unit from its name, for display.
func unitOf(metric string) chart.Unit {
	m := strings.ToLower(metric)
	switch {
	case strings.Contains(m, "percent") || strings.HasSuffix(m, "pct") || strings.HasSuffix(m, "usage") || strings.HasSuffix(m, "utilization"):
		return chart.Percent
	case strings.HasSuffix(m, "bytespersecond") || strings.HasSuffix(m, "bytes_per_second"):
		return chart.BytesPerSecond
	case strings.Contains(m, "bytes") || m == "size" || m == "used" || m == "free" || m == "total" || m == "available":
		return chart.Bytes
	case strings.HasSuffix(m, "ms") || strings.HasSuffix(m, "millis"):
		return chart.Milliseconds
	case strings.HasSuffix(m, "seconds") || strings.HasSuffix(m, "time") || strings.HasSuffix(m, "duration") || m == "uptime" || m == "rtt":
		return chart.Seconds
	}
	return chart.None
}

// chartRanges are the ranges a chart offers.
var chartRanges = []struct {
	Name string
	D    time.Duration
}{{"1h", time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

// maxChartSeries bounds the items drawn in one chart.
const maxChartSeries = 8

// GET /asset/{id}/chart?collector=&check=&type=&metric=&range=: one
// numeric metric of a check's items over time.
func (s *Server) chartPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	a, _, ok := scoped(s, w, r, si, s.st.Asset, func(a state.Asset) int64 { return a.ContainerID })
	if !ok {
		return
	}
	q := r.URL.Query()
	col, check, typ, metric := q.Get("collector"), q.Get("check"), q.Get("type"), q.Get("metric")
	rng := chartRanges[1]
	for _, c := range chartRanges {
		if q.Get("range") == c.Name {
			rng = c
		}
	}
	if col == "" || check == "" || typ == "" || metric == "" || s.series == nil {
		s.notFound(w, r, si)
		return
	}
	end := s.now()
	start := end.Add(-rng.D)
	const width = 800
	step := max(rng.D/width, time.Minute)
	sel := fmt.Sprintf(`sonde_%s_%s{asset_id=%q,collector=%q,check=%q}`, ingest.Sanitize(typ), ingest.Sanitize(metric),
		strconv.FormatInt(a.ID, 10), col, check)
	scope := tsstore.Scope{ContainerIDs: []string{strconv.FormatInt(a.ContainerID, 10)}}
	// The lowest and highest value of every step: a spike shorter than a
	// pixel still shows.
	series := map[string]*chart.Series{}
	var names []string
	for _, fn := range []string{"min_over_time", "max_over_time"} {
		v, err := s.series.QueryRange(r.Context(), scope, fmt.Sprintf("%s(%s[%ds])", fn, sel, int(step.Seconds())), start, end, step)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		m, ok := v.(promql.Matrix)
		if !ok {
			continue
		}
		for _, ser := range m {
			item := ser.Metric.Get(tsstore.LabelItem)
			cs := series[item]
			if cs == nil {
				if len(series) >= maxChartSeries {
					continue
				}
				cs = &chart.Series{Name: item}
				series[item] = cs
				names = append(names, item)
			}
			for _, p := range ser.Floats {
				cs.Points = append(cs.Points, chart.Point{T: p.T, V: p.F})
			}
		}
	}
	slices.Sort(names)
	list := make([]chart.Series, 0, len(names))
	for _, n := range names {
		list = append(list, *series[n])
	}
	loc := s.zone(si.user)
	if tz, err := time.LoadLocation(q.Get("tz")); err == nil && q.Get("tz") != "" {
		loc = tz
	}
	svg, err := chart.Render(list, chart.Options{Width: width, Height: 280, From: start, To: end, Unit: unitOf(metric),
		Location: loc, Title: fmt.Sprintf("%s · %s/%s · %s", typ, col, check, metric)})
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	links := make([]rangeLink, 0, len(chartRanges))
	for _, c := range chartRanges {
		v := url.Values{"collector": {col}, "check": {check}, "type": {typ}, "metric": {metric}, "range": {c.Name}}
		if q.Get("tz") != "" {
			v.Set("tz", q.Get("tz"))
		}
		links = append(links, rangeLink{Name: c.Name, URL: fmt.Sprintf("/asset/%d/chart?%s", a.ID, v.Encode()), Current: c.Name == rng.Name})
	}
	s.render(w, r, http.StatusOK, "chart", page{Title: a.Name + " · " + metric, User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user),
		Data: struct {
			Asset  state.Asset
			Chart  template.HTML
			Ranges []rangeLink
			Shown  int
		}{a, svg, links, len(list)}})
}

type rangeLink struct {
	Name, URL string
	Current   bool
}

// alertRow is an alert as the pages show it.
type alertRow struct {
	state.Alert
	SeverityName string
	Asset        string
}

func alertRows(as []state.Alert, assetNames map[int64]string) []alertRow {
	out := make([]alertRow, len(as))
	names := severityNames()
	for i, a := range as {
		out[i] = alertRow{Alert: a, Asset: assetNames[a.AssetID]}
		if a.Severity >= 0 && a.Severity < len(names) {
			out[i].SeverityName = names[a.Severity]
		}
	}
	return out
}

// alertFilter is the alerts page's filter, from the query string.
type alertFilter struct {
	Status    string
	Container int64
	Severity  int // the least severe shown (0 EMERGENCY … 7 DEBUG)
	Q         string
}

// GET /alerts?status=open|closed&container=&severity=&q=: the alerts of
// the containers the user sees (or of one, and below it), newest first.
func (s *Server) alertsPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	tree, perms, err := s.visible(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	q := r.URL.Query()
	f := alertFilter{Status: q.Get("status"), Severity: 7, Q: strings.TrimSpace(q.Get("q"))}
	if f.Status != "closed" {
		f.Status = "open"
	}
	if v, err := strconv.Atoi(q.Get("severity")); err == nil && v >= 0 && v <= 7 {
		f.Severity = v
	}
	if len(f.Q) > 200 {
		f.Q = f.Q[:200]
	}
	// The containers to list: all the user reads, or one and those below.
	under := map[int64]bool{}
	if v := q.Get("container"); v != "" {
		c, err := strconv.ParseInt(v, 10, 64)
		if _, ok := perms[c]; err != nil || !ok {
			s.notFound(w, r, si)
			return
		}
		f.Container = c
		under[c] = true
		for changed := true; changed; {
			changed = false
			for _, n := range tree {
				if n.ParentID != nil && under[*n.ParentID] && !under[n.ID] {
					under[n.ID], changed = true, true
				}
			}
		}
	}
	var ids []int64
	var conts []state.TreeNode
	for _, n := range tree {
		if p, ok := perms[n.ID]; ok && p.Has(auth.Read) {
			conts = append(conts, n)
			if f.Container == 0 || under[n.ID] {
				ids = append(ids, n.ID)
			}
		}
	}
	status := f.Status
	as, err := s.st.Alerts(r.Context(), state.AlertFilter{Containers: ids, Status: status, Limit: 500})
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	seen := map[int64]bool{}
	var assetIDs []int64
	for _, a := range as {
		if !seen[a.AssetID] {
			seen[a.AssetID] = true
			assetIDs = append(assetIDs, a.AssetID)
		}
	}
	names, err := s.st.AssetNames(r.Context(), assetIDs)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	rows := alertRows(as, names)
	if f.Severity < 7 || f.Q != "" {
		lq := strings.ToLower(f.Q)
		kept := rows[:0]
		for _, a := range rows {
			if a.Severity > f.Severity {
				continue
			}
			if lq != "" && !strings.Contains(strings.ToLower(a.Asset+"\x00"+a.Item+"\x00"+a.Message), lq) {
				continue
			}
			kept = append(kept, a)
		}
		rows = kept
	}
	s.render(w, r, http.StatusOK, "alerts", page{Title: "Alerts", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user),
		Data: struct {
			Status     string
			Alerts     []alertRow
			Filter     alertFilter
			Containers []state.TreeNode
			Severities [8]string
		}{status, rows, f, conts, severityNames()}})
}

// POST /alert/{id}/{action}: assign, message or close, with the
// permission the API asks for the same.
func (s *Server) alertAction(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	al, perm, ok := scoped(s, w, r, si, s.st.Alert, func(a state.Alert) int64 { return a.ContainerID })
	if !ok {
		return
	}
	var err error
	actor := "user " + si.user.Username
	now := s.now()
	action := r.PathValue("action")
	need := map[string]auth.Permission{"assign": auth.AlertAssign, "message": auth.AlertChange, "close": auth.AlertChange}[action]
	if need == 0 {
		s.notFound(w, r, si)
		return
	}
	if !perm.Has(need) {
		s.render(w, r, http.StatusForbidden, "notfound", page{Title: "Not allowed", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user),
			Error: "You may not do this: it needs the permission " + need.String() + " on this alert's container."})
		return
	}
	text := strings.TrimSpace(r.PostFormValue("text"))
	if len(text) > 1000 || strings.ContainsAny(text, "\x00") {
		s.render(w, r, http.StatusBadRequest, "notfound", page{Title: "Alert", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user),
			Error: "The text is longer than 1000 characters."})
		return
	}
	if action != "assign" {
		audit.SetReason(r.Context(), text)
	}
	switch action {
	case "assign":
		err = s.st.InTx(r.Context(), func(tx *state.Tx) error { return tx.AssignAlert(al.ID, text, actor, now) })
	case "message":
		if text == "" {
			break
		}
		err = s.st.InTx(r.Context(), func(tx *state.Tx) error {
			return tx.AddAlertEvent(state.AlertEvent{AlertID: al.ID, At: now, Kind: "message", Actor: actor, Text: text})
		})
	case "close":
		if s.alerts == nil {
			err = errors.New("no alert engine")
			break
		}
		reason := text
		if reason == "" {
			reason = "closed by hand"
		}
		err = s.alerts.CloseAlert(r.Context(), al.ID, reason, actor)
		if errors.Is(err, alert.ErrClosed) {
			err = nil
		}
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	// Back to the list, or to the asset's page: fixed paths, never one
	// from the request (no open redirect).
	back := "/alerts"
	if r.PostFormValue("back") == "asset" {
		back = fmt.Sprintf("/asset/%d", al.AssetID)
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

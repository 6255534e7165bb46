package alert

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/ingest"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// TestScripts runs testdata/*.test: the condition engine's scripted tests.
// The format is described in testdata/README.md.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.test")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts found: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".test"), func(t *testing.T) {
			t.Parallel()
			runScript(t, f)
		})
	}
}

type script struct {
	t     *testing.T
	ctx   context.Context
	st    *state.Store
	e     *Engine
	now   time.Time
	file  string
	line  int
	root  int64
	conts map[string]int64
	// assets by name: id and container.
	assets map[string][2]int64
	conds  map[string]int64
	rules  map[string]int64
	// what the engine did, not yet matched by an expect line
	pending []string
	alerts  map[int64]string // alert id → status seen
	notes   map[int64]string
	deliv   map[int64]bool
	apps    map[string]int64
	// connected are the appliances with a stream, whose heartbeats
	// arrive as the clock moves.
	connected map[int64]bool
	// the result being read: target and data, until its items end
	cur   *ingest.Target
	curCD *model.CheckData
}

func runScript(t *testing.T, file string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	root, _, err := st.EnsureRoot(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	s := &script{
		t: t, ctx: ctx, st: st, file: file, root: root,
		now:   time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		conts: map[string]int64{"root": root}, assets: map[string][2]int64{},
		conds: map[string]int64{}, rules: map[string]int64{},
		alerts: map[int64]string{}, notes: map[int64]string{}, deliv: map[int64]bool{},
		apps: map[string]int64{}, connected: map[int64]bool{},
	}
	s.e = New(Config{State: st, Now: func() time.Time { return s.now }})
	if err := s.e.Load(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s.line++
		raw := sc.Text()
		text := strings.TrimSpace(raw)
		if s.cur != nil && (raw == "" || raw[0] == ' ' || raw[0] == '\t') && text != "" && !strings.HasPrefix(text, "#") {
			s.item(text)
			continue
		}
		s.flush()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		s.command(text)
		if !strings.HasPrefix(text, "expect") {
			s.settle()
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	s.flush()
	s.settle()
	if len(s.pending) > 0 {
		s.fail("at the end, not expected: %s", strings.Join(s.pending, "; "))
	}
}

func (s *script) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s:%d: %s", s.file, s.line, fmt.Sprintf(format, args...))
}

// fields splits a line into words; a double-quoted part (Go syntax) may
// hold spaces, also after key=.
func (s *script) fields(line string) []string {
	var out []string
	for i := 0; i < len(line); {
		if line[i] == ' ' || line[i] == '\t' {
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			if line[j] == '"' {
				k := j + 1
				for k < len(line) && line[k] != '"' {
					if line[k] == '\\' {
						k++
					}
					k++
				}
				if k >= len(line) {
					s.fail("unterminated string in %q", line)
				}
				j = k
			}
			j++
		}
		out = append(out, line[i:j])
		i = j
	}
	return out
}

// args reads key=value words; a quoted value is unquoted.
func (s *script) args(words []string) map[string]string {
	m := map[string]string{}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			s.fail("%q is not key=value", w)
		}
		m[k] = s.unquote(v)
	}
	return m
}

func (s *script) unquote(v string) string {
	if strings.HasPrefix(v, `"`) {
		u, err := strconv.Unquote(v)
		if err != nil {
			s.fail("bad string %s: %v", v, err)
		}
		return u
	}
	return v
}

func (s *script) command(line string) {
	w := s.fields(line)
	switch w[0] {
	case "container":
		a := s.args(w[2:])
		parent := s.root
		if p, ok := a["parent"]; ok {
			parent = s.container(p)
		}
		id, err := s.st.CreateContainer(s.ctx, parent, w[1])
		s.check(err)
		s.conts[w[1]] = id
	case "asset":
		a := s.args(w[2:])
		c := s.root
		if n, ok := a["container"]; ok {
			c = s.container(n)
		}
		id, err := s.st.CreateAsset(s.ctx, c, w[1])
		s.check(err)
		s.assets[w[1]] = [2]int64{id, c}
		if l, ok := a["labels"]; ok {
			s.check(s.st.SetAssetLabels(s.ctx, id, strings.Split(l, ",")))
			s.e.LabelsChanged(id)
		}
	case "condition":
		s.condition(w[1], s.args(w[2:]))
	case "rule":
		s.rule(w[1], s.args(w[2:]))
	case "maintenance":
		a := s.args(w[1:])
		m := state.Maintenance{StartsAt: s.now, CreatedAt: s.now}
		if n, ok := a["asset"]; ok {
			as := s.asset(n)
			m.AssetID, m.ContainerID = &as[0], as[1]
		} else {
			m.ContainerID = s.container(a["container"])
		}
		d, err := time.ParseDuration(a["for"])
		s.check(err)
		m.EndsAt = s.now.Add(d)
		_, err = s.st.CreateMaintenance(s.ctx, m)
		s.check(err)
		s.check(s.e.MaintenanceChanged(s.ctx))
	case "clock":
		d, err := time.ParseDuration(strings.TrimPrefix(w[1], "+"))
		s.check(err)
		s.now = s.now.Add(d)
		// Connected appliances keep sending heartbeats, which the stream
		// server records.
		for id := range s.connected {
			s.check(s.st.TouchAppliance(s.ctx, id, s.now))
		}
	case "result":
		s.result(w[1:])
	case "rejected":
		as := s.asset(w[1])
		col, chk, _ := strings.Cut(w[2], "/")
		s.e.Rejected(s.ctx, ingest.Target{ContainerID: as[1], AssetID: as[0], AssetName: w[1], Collector: col, Check: chk},
			fmt.Errorf("%s", s.unquote(w[3])))
	case "sweep":
		s.check(s.e.Sweep(s.ctx))
	case "inherit":
		s.check(s.st.SetInheritAccess(s.ctx, s.container(w[1]), w[2] == "on"))
		s.e.TreeChanged()
	case "appliance":
		s.appliance(w[1], w[2], s.args(w[3:]))
	case "expect":
		s.expect(w[1:])
	default:
		s.fail("unknown command %q", w[0])
	}
}

func (s *script) check(err error) {
	s.t.Helper()
	if err != nil {
		s.fail("%v", err)
	}
}

func (s *script) container(name string) int64 {
	id, ok := s.conts[name]
	if !ok {
		s.fail("no container %q", name)
	}
	return id
}

func (s *script) asset(name string) [2]int64 {
	a, ok := s.assets[name]
	if !ok {
		s.fail("no asset %q", name)
	}
	return a
}

func (s *script) condition(name string, a map[string]string) {
	c := state.Condition{
		Name: name, Kind: KindExpression, Collector: a["collector"], Check: a["check"], Type: a["type"],
		Expression: a["expression"], Message: a["message"], ContainerID: s.root,
	}
	if k, ok := a["kind"]; ok {
		c.Kind = k
	}
	if n, ok := a["container"]; ok {
		c.ContainerID = s.container(n)
	}
	if it, ok := a["items"]; ok {
		c.Items = strings.Split(it, ",")
	}
	if l, ok := a["labels"]; ok {
		c.Labels = strings.Split(l, ",")
	}
	sev, err := ParseSeverity(cmpOr(a["severity"], "WARNING"))
	s.check(err)
	c.Severity = int(sev)
	c.Ticks, _ = strconv.Atoi(a["ticks"])
	c.ClearTicks, _ = strconv.Atoi(a["clearTicks"])
	err = Validate(&c)
	if want, ok := a["error"]; ok {
		if err == nil || !strings.Contains(err.Error(), want) {
			s.fail("condition %s: want an error containing %q, got %v", name, want, err)
		}
		return
	}
	s.check(err)
	id, err := s.st.CreateCondition(s.ctx, c, s.now)
	s.check(err)
	s.conds[name] = id
	s.check(s.e.ConditionsChanged(s.ctx))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *script) rule(name string, a map[string]string) {
	r := state.Rule{
		Name: name, ContainerID: s.root, Channel: cmpOr(a["channel"], ChannelWebhook),
		URL: cmpOr(a["url"], "https://hooks.example.invalid/sonde"), Secret: secret.New("0123456789abcdef-script"),
		Schedule: a["schedule"],
	}
	if sec, ok := a["secret"]; ok {
		r.Secret = secret.New(sec)
	}
	if r.Channel == ChannelEmail {
		r.URL, r.Secret, r.Recipients = "", secret.Secret{}, []string{"ops@example.invalid"}
	}
	if n, ok := a["container"]; ok {
		r.ContainerID = s.container(n)
	}
	sev, err := ParseSeverity(cmpOr(a["minSeverity"], "DEBUG"))
	s.check(err)
	r.MinSeverity = int(sev)
	ns, err := model.ParseSeverity(cmpOr(a["minNotificationSeverity"], "LOW"))
	s.check(err)
	r.MinNotificationSeverity = int(ns)
	if ev, ok := a["events"]; ok {
		r.Events = strings.Split(ev, ",")
	}
	if l, ok := a["labels"]; ok {
		r.Labels = strings.Split(l, ",")
	}
	if cs, ok := a["conditions"]; ok {
		for _, c := range strings.Split(cs, ",") {
			id, ok := s.conds[c]
			if !ok {
				s.fail("no condition %q", c)
			}
			r.ConditionIDs = append(r.ConditionIDs, id)
		}
	}
	err = ValidateRule(&r, false)
	if want, ok := a["error"]; ok {
		if err == nil || !strings.Contains(err.Error(), want) {
			s.fail("rule %s: want an error containing %q, got %v", name, want, err)
		}
		return
	}
	s.check(err)
	id, err := s.st.CreateRule(s.ctx, r, s.now)
	s.check(err)
	s.rules[name] = id
	s.check(s.e.RulesChanged(s.ctx))
}

// result starts a result: "result <asset> <collector>/<check> [key=value…]"
// with error=, severity=, unchanged=true, ts=<seconds from now>.
func (s *script) result(w []string) {
	as := s.asset(w[0])
	col, chk, ok := strings.Cut(w[1], "/")
	if !ok {
		s.fail("%q is not collector/check", w[1])
	}
	a := s.args(w[2:])
	cd := &model.CheckData{Timestamp: s.now.Unix(), HasResult: true}
	if off, ok := a["ts"]; ok {
		d, err := time.ParseDuration(off)
		s.check(err)
		cd.Timestamp = s.now.Add(d).Unix()
	}
	if msg, ok := a["error"]; ok {
		sev, err := model.ParseSeverity(cmpOr(a["severity"], "MEDIUM"))
		s.check(err)
		cd.Error = &model.CheckError{Message: msg, Severity: sev}
		cd.HasResult = a["data"] == "true"
	}
	if a["unchanged"] == "true" {
		cd.Unchanged, cd.HasResult = true, false
	}
	s.cur = &ingest.Target{ContainerID: as[1], AssetID: as[0], AssetName: w[0], Collector: col, Check: chk}
	s.curCD = cd
}

// item reads "<type> <item> metric=value…" below a result.
func (s *script) item(line string) {
	w := s.fields(line)
	if len(w) < 2 {
		s.fail("an item line is <type> <item> metric=value…")
	}
	it := model.Item{Name: s.unquote(w[1])}
	for _, kv := range w[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			s.fail("%q is not metric=value", kv)
		}
		it.Metrics = append(it.Metrics, model.Metric{Name: k, Value: s.value(v)})
	}
	cd := s.curCD
	for i := range cd.Types {
		if cd.Types[i].Name == w[0] {
			cd.Types[i].Items = append(cd.Types[i].Items, it)
			return
		}
	}
	cd.Types = append(cd.Types, model.Type{Name: w[0], Items: []model.Item{it}})
}

func (s *script) value(v string) model.Value {
	switch {
	case strings.HasPrefix(v, `"`):
		return model.StringValue(s.unquote(v))
	case v == "true" || v == "false":
		return model.BoolValue(v == "true")
	case strings.HasPrefix(v, "["):
		var raw []json.RawMessage
		if err := json.Unmarshal([]byte(v), &raw); err != nil {
			s.fail("bad list %s: %v", v, err)
		}
		l := model.Value{Kind: model.KindList}
		for _, r := range raw {
			l.List = append(l.List, s.value(string(r)))
		}
		return l
	case strings.ContainsAny(v, ".eE"):
		f, err := strconv.ParseFloat(v, 64)
		s.check(err)
		return model.FloatValue(f)
	}
	i, err := strconv.ParseInt(v, 10, 64)
	s.check(err)
	return model.IntValue(i)
}

// flush observes the result being read, if any.
func (s *script) flush() {
	if s.cur == nil {
		return
	}
	t, cd := *s.cur, s.curCD
	s.cur, s.curCD = nil, nil
	_, err := s.st.AddCollector(s.ctx, t.AssetID, t.Collector, nil, nil)
	s.check(err)
	r := state.Result{AssetID: t.AssetID, Collector: t.Collector, Check: t.Check, Timestamp: cd.Timestamp, ReceivedAt: s.now}
	if cd.HasResult {
		r.Data = cd.ResultJSON()
	}
	s.check(s.st.PutResult(s.ctx, r, cd.Unchanged, false))
	s.e.Observe(s.ctx, t, cd)
	s.settle()
}

// settle records what changed in the store since the last look.
func (s *script) settle() {
	alerts, err := s.st.Alerts(s.ctx, state.AlertFilter{Containers: s.allContainers()})
	s.check(err)
	slices.Reverse(alerts) // oldest first
	condName := map[int64]string{}
	for n, id := range s.conds {
		condName[id] = n
	}
	assetName := map[int64]string{}
	for n, a := range s.assets {
		assetName[a[0]] = n
	}
	for _, a := range alerts {
		desc := fmt.Sprintf("%s %s %s", condName[a.ConditionID], assetName[a.AssetID], a.Item)
		if _, seen := s.alerts[a.ID]; !seen {
			s.pending = append(s.pending, fmt.Sprintf("open %s severity=%s message=%q", desc, Severity(a.Severity), a.Message))
			s.alerts[a.ID] = "open"
		}
		if a.Status == "closed" && s.alerts[a.ID] != "closed" {
			s.pending = append(s.pending, "close "+desc)
			s.alerts[a.ID] = "closed"
		}
	}
	notes, err := s.st.Notifications(s.ctx, state.NotificationFilter{})
	s.check(err)
	slices.Reverse(notes)
	for _, n := range notes {
		desc := fmt.Sprintf("notification %s %s", n.Kind, n.Subject)
		if _, seen := s.notes[n.ID]; !seen {
			s.pending = append(s.pending, fmt.Sprintf("open %s severity=%s message=%q", desc, notificationSeverity(n.Severity), n.Message))
			s.notes[n.ID] = "open"
		}
		if n.Status == "closed" && s.notes[n.ID] != "closed" {
			s.pending = append(s.pending, "close "+desc)
			s.notes[n.ID] = "closed"
		}
	}
	ruleName := map[int64]string{}
	for n, id := range s.rules {
		ruleName[id] = n
	}
	for name, id := range s.rules {
		_ = name
		ds, err := s.st.Deliveries(s.ctx, id, 1000)
		s.check(err)
		slices.Reverse(ds)
		for _, d := range ds {
			if s.deliv[d.ID] {
				continue
			}
			s.deliv[d.ID] = true
			var ev Event
			s.check(json.Unmarshal(d.Payload, &ev))
			what := ""
			if ev.Alert != nil {
				what = fmt.Sprintf("%s %s %s", condName[ev.Alert.ConditionID], assetName[ev.Alert.AssetID], ev.Alert.Item)
			} else {
				what = fmt.Sprintf("%s %s", ev.Notification.Kind, ev.Notification.Subject)
			}
			s.pending = append(s.pending, fmt.Sprintf("delivery %s %s %s status=%s", ruleName[d.RuleID], d.Event, what, d.Status))
		}
	}
}

func (s *script) allContainers() []int64 {
	var ids []int64
	for _, id := range s.conts {
		ids = append(ids, id)
	}
	return ids
}

// expect matches one pending change: "expect open <cond> <asset> <item>
// [severity=…] [message=…]", "expect close <cond> <asset> <item>",
// "expect open notification <kind> <subject>", "expect delivery <rule>
// <event> …", or "expect none". The words given must equal the change's
// first words; key=value words must appear in it.
func (s *script) expect(w []string) {
	if len(w) == 1 && w[0] == "none" {
		if len(s.pending) > 0 {
			s.fail("expected no change, got: %s", strings.Join(s.pending, "; "))
		}
		return
	}
	var words, kvs []string
	for _, x := range w {
		if k, v, ok := strings.Cut(x, "="); ok && !strings.HasPrefix(x, `"`) {
			if strings.HasPrefix(v, `"`) {
				v = strconv.Quote(s.unquote(v))
			}
			kvs = append(kvs, k+"="+v)
		} else {
			words = append(words, s.unquote(x))
		}
	}
	for i, p := range s.pending {
		pw := s.fields(p)
		if len(pw) < len(words) {
			continue
		}
		match := true
		for j, x := range words {
			if s.unquote(pw[j]) != x {
				match = false
				break
			}
		}
		for _, kv := range kvs {
			if !slices.Contains(pw, kv) {
				match = false
			}
		}
		if match {
			s.pending = slices.Delete(s.pending, i, i+1)
			return
		}
	}
	s.fail("expected %s; pending changes: %s", strings.Join(w, " "), strings.Join(s.pending, "; "))
}

// appliance: "appliance NAME connected [dropped=N] [missing=a,b]
// [container=C]" or "appliance NAME gone".
func (s *script) appliance(name, st string, a map[string]string) {
	id, ok := s.apps[name]
	if !ok {
		c := s.root
		if n, ok := a["container"]; ok {
			c = s.container(n)
		}
		var err error
		id, err = s.st.CreateAppliance(s.ctx, state.Appliance{ContainerID: c, Name: name, CreatedAt: s.now})
		s.check(err)
		s.apps[name] = id
	}
	switch st {
	case "connected":
		// What the stream server records: connected, and the appliance's
		// heartbeat report.
		var dropped int64
		if d, ok := a["dropped"]; ok {
			n, err := strconv.ParseInt(d, 10, 64)
			s.check(err)
			dropped = n
		}
		var missing []string
		if m, ok := a["missing"]; ok {
			missing = strings.Split(m, ",")
		}
		s.check(s.st.SetApplianceConnected(s.ctx, id, "hub-1", s.now))
		s.check(s.st.RecordApplianceInfo(s.ctx, id, s.now, dropped, missing))
		s.connected[id] = true
	case "gone":
		s.check(s.st.SetApplianceDisconnected(s.ctx, id, "hub-1"))
		delete(s.connected, id)
	case "revoked":
		s.check(s.st.SetApplianceDisconnected(s.ctx, id, "hub-1"))
		delete(s.connected, id)
		s.check(s.st.RevokeAppliance(s.ctx, id, s.now))
	default:
		s.fail("appliance state %q is not connected, gone or revoked", st)
	}
}

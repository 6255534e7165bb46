package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/alert"
	"github.com/sonde-monitoring/sonde/internal/audit"
	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// ruleRow is a rule as the list shows it: never its secret, only whether
// it has one.
type ruleRow struct {
	ID, ContainerID         int64
	Container, Name         string
	Channel, Target         string
	HasSecret               bool
	MinSeverity             string
	MinNotificationSeverity string
	Events, Labels          string
	Conditions              string
	Schedule                string
	Disabled                bool
	SecretError             string
	CreatedAt               time.Time
}

// ruleForm is the rule form as typed (without the secret: it is never
// written into a page).
type ruleForm struct {
	Container, Name, Channel, URL, To string
	MinSeverity, MinNotifSeverity     string
	Events                            map[string]bool
	Labels                            string
	Conditions                        map[string]bool
	Timezone, From, Until             string
	Days                              map[string]bool
	Disabled                          bool
}

// conditionOption is a condition a rule may name.
type conditionOption struct {
	ID                  int64
	Name, ContainerName string
}

type rulesData struct {
	Rules []ruleRow
	// Containers are where the user may create rules.
	Containers    []state.TreeNode
	ConditionOpts []conditionOption
	Form          ruleForm
	Errors        fieldErrors
	Severities    [8]string
	NotifSevs     []string
	Days          []string
	// NewSecret is the webhook secret the hub just generated: shown once,
	// here only.
	NewSecret string
	NewName   string
}

// ruleFields maps the words alert.ValidateRule starts its errors with to
// the form's fields.
func ruleFields() map[string]string {
	return map[string]string{
		"name": "name", "to": "to", "url": "url", "secret": "secret", "channel": "channel", "minSeverity": "min_severity",
		"minNotificationSeverity": "min_notification_severity", "events": "events", "labels": "labels",
		"conditions": "conditions", "schedule": "schedule",
	}
}

func scheduleDays() []string {
	return []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
}

func newRuleForm() ruleForm {
	return ruleForm{Channel: alert.ChannelWebhook, MinSeverity: alert.Warning.String(), MinNotifSeverity: model.SeverityLow.String(),
		Events: map[string]bool{}, Conditions: map[string]bool{}, Days: map[string]bool{}}
}

func readRuleForm(r *http.Request) ruleForm {
	v := r.PostFormValue
	f := ruleForm{
		Container: v("container"), Name: strings.TrimSpace(v("name")), Channel: v("channel"), URL: strings.TrimSpace(v("url")),
		To: v("to"), MinSeverity: v("min_severity"), MinNotifSeverity: v("min_notification_severity"), Labels: v("labels"),
		Timezone: strings.TrimSpace(v("timezone")), From: strings.TrimSpace(v("from")), Until: strings.TrimSpace(v("until")),
		Disabled: v("disabled") != "", Events: map[string]bool{}, Conditions: map[string]bool{}, Days: map[string]bool{},
	}
	for _, e := range r.PostForm["events"] {
		f.Events[e] = true
	}
	for _, c := range r.PostForm["conditions"] {
		f.Conditions[c] = true
	}
	for _, d := range r.PostForm["days"] {
		f.Days[d] = true
	}
	return f
}

// scheduleText describes a stored schedule.
func scheduleText(raw string) string {
	if raw == "" {
		return "always"
	}
	var sc alert.Schedule
	if err := json.Unmarshal([]byte(raw), &sc); err != nil {
		return "unreadable"
	}
	var parts []string
	if len(sc.Days) > 0 {
		parts = append(parts, strings.Join(sc.Days, " "))
	} else {
		parts = append(parts, "every day")
	}
	if sc.From != "" {
		parts = append(parts, sc.From+"–"+sc.To)
	}
	tz := sc.Timezone
	if tz == "" {
		tz = "UTC"
	}
	return strings.Join(parts, " ") + " (" + tz + ")"
}

func viewRuleRow(x state.Rule, container string) ruleRow {
	row := ruleRow{
		ID: x.ID, ContainerID: x.ContainerID, Container: container, Name: x.Name, Channel: x.Channel, HasSecret: !x.Secret.IsZero(),
		MinSeverity: alert.Severity(x.MinSeverity).String(), MinNotificationSeverity: model.Severity(x.MinNotificationSeverity).String(),
		Events: "alerts, notifications", Labels: strings.Join(x.Labels, " "), Schedule: scheduleText(x.Schedule),
		Disabled: x.Disabled, SecretError: x.SecretError, CreatedAt: x.CreatedAt,
	}
	if x.Channel == alert.ChannelEmail {
		row.Target = strings.Join(x.Recipients, ", ")
	} else {
		row.Target = x.URL
	}
	if len(x.Events) > 0 {
		row.Events = strings.Join(x.Events, ", ")
	}
	ids := make([]string, len(x.ConditionIDs))
	for i, id := range x.ConditionIDs {
		ids[i] = "#" + strconv.FormatInt(id, 10)
	}
	row.Conditions = strings.Join(ids, " ")
	return row
}

// GET /rules: the notification rules of the containers where the user
// manages rules (RULE_MANAGEMENT, as the API asks to list them), and a
// form to add one.
func (s *Server) rulesPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	s.showRules(w, r, si, http.StatusOK, newRuleForm(), nil, "", "")
}

func (s *Server) showRules(w http.ResponseWriter, r *http.Request, si sessionInfo, code int, f ruleForm, errs fieldErrors, newSecret, newName string) {
	conts, perms, err := s.readableTree(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d := rulesData{Containers: withPerm(conts, perms, auth.RuleManagement|auth.Webhooks), Form: f, Errors: errs,
		Severities: severityNames(), NotifSevs: []string{model.SeverityHigh.String(), model.SeverityMedium.String(), model.SeverityLow.String()},
		Days: scheduleDays(), NewSecret: newSecret, NewName: newName}
	for _, c := range withPerm(conts, perms, auth.RuleManagement) {
		rs, err := s.st.Rules(r.Context(), c.ID)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		for _, x := range rs {
			d.Rules = append(d.Rules, viewRuleRow(x, c.Name))
		}
	}
	if len(d.Containers) > 0 {
		for _, c := range conts {
			cs, err := s.st.Conditions(r.Context(), c.ID)
			if err != nil {
				s.serverError(w, r, err)
				return
			}
			for _, x := range cs {
				d.ConditionOpts = append(d.ConditionOpts, conditionOption{ID: x.ID, Name: x.Name, ContainerName: c.Name})
			}
		}
	}
	p := s.userPage(si, "Notification rules")
	p.Data = d
	if len(errs) > 0 {
		p.Error = formFailed
		if msg := errs["form"]; msg != "" {
			p.Error = msg
		}
	}
	if newSecret != "" {
		p.Notice = "Copy the webhook secret now: receivers check every request's signature with it, and the hub shows it never again."
	}
	s.render(w, r, code, "rules", p)
}

// POST /rules: a new rule. Like the API: RULE_MANAGEMENT and WEBHOOKS on
// its container (both channels send outside the hub). An empty webhook
// secret is generated and shown once.
func (s *Server) createRule(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	_, perms, err := s.readableTree(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	f := readRuleForm(r)
	fail := func(code int, errs fieldErrors) { s.showRules(w, r, si, code, f, errs, "", "") }
	cont, ok := s.containerPicked(w, r, si, perms, auth.RuleManagement|auth.Webhooks, func() {
		fail(http.StatusBadRequest, fieldErrors{"container": "Choose a container where you may manage rules and webhooks."})
	})
	if !ok {
		return
	}
	rule := state.Rule{ContainerID: cont, Name: f.Name, Channel: f.Channel, Labels: splitWords(f.Labels), Disabled: f.Disabled}
	errs := fieldErrors{}
	generated := ""
	switch f.Channel {
	case alert.ChannelWebhook:
		rule.URL = f.URL
		sec := r.PostFormValue("secret")
		if sec == "" {
			if generated, err = randomToken(); err != nil {
				s.serverError(w, r, err)
				return
			}
			sec = generated
		}
		rule.Secret = secret.New(sec)
	case alert.ChannelEmail:
		rule.Recipients = splitWords(f.To)
	default:
		errs["channel"] = "Choose webhook or email."
	}
	if sev, err := alert.ParseSeverity(f.MinSeverity); err != nil {
		errs["min_severity"] = "Choose a severity."
	} else {
		rule.MinSeverity = int(sev)
	}
	if sev, err := model.ParseSeverity(f.MinNotifSeverity); err != nil {
		errs["min_notification_severity"] = "Choose HIGH, MEDIUM or LOW."
	} else {
		rule.MinNotificationSeverity = int(sev)
	}
	for _, e := range []string{alert.EventsAlerts, alert.EventsNotifications} {
		if f.Events[e] {
			rule.Events = append(rule.Events, e)
		}
	}
	if len(rule.Events) != len(f.Events) {
		errs["events"] = "Events are alerts or notifications."
	}
	for id := range f.Conditions {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 {
			errs["conditions"] = "Choose conditions from the list."
			break
		}
		rule.ConditionIDs = append(rule.ConditionIDs, n)
	}
	slices.Sort(rule.ConditionIDs)
	sc := alert.Schedule{Timezone: f.Timezone, From: f.From, To: f.Until}
	for _, d := range scheduleDays() {
		if f.Days[d] {
			sc.Days = append(sc.Days, d)
		}
	}
	if len(sc.Days) == 7 {
		sc.Days = nil // every day
	}
	if sc.Timezone != "" || len(sc.Days) > 0 || sc.From != "" || sc.To != "" {
		b, err := json.Marshal(sc)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		rule.Schedule = string(b)
	}
	if len(errs) > 0 {
		fail(http.StatusBadRequest, errs)
		return
	}
	// The API's checks.
	err = alert.ValidateRule(&rule, s.cfg.AllowPrivateWebhooks)
	if err == nil {
		err = alert.CheckMail(&rule, s.cfg.MailConfigured, s.cfg.MailDomains)
	}
	if err != nil {
		msg := err.Error()
		field := fieldOf(msg, ruleFields())
		if field == "" {
			field = "form"
		}
		fail(http.StatusBadRequest, fieldErrors{field: upperFirst(msg) + "."})
		return
	}
	// A rule may name only conditions its container can see.
	for _, id := range rule.ConditionIDs {
		c, err := s.st.Condition(r.Context(), id)
		ok := err == nil
		if err != nil && !errors.Is(err, state.ErrNotFound) {
			s.serverError(w, r, err)
			return
		}
		if ok {
			if ok, err = s.st.Within(r.Context(), rule.ContainerID, c.ContainerID); err != nil {
				s.serverError(w, r, err)
				return
			}
		}
		if !ok {
			fail(http.StatusBadRequest, fieldErrors{"conditions": fmt.Sprintf("Condition #%d is not defined on the rule's container or above it.", id)})
			return
		}
	}
	existing, err := s.st.Rules(r.Context(), cont)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if len(existing) >= maxRulesPerContainer {
		fail(http.StatusConflict, fieldErrors{"form": fmt.Sprintf("This container has %d rules, the most one container may have; delete some first.", len(existing))})
		return
	}
	id, err := s.st.CreateRule(r.Context(), rule, s.now())
	audit.SetObject(r.Context(), "rule", id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.log.Info("notification rule created", "rule_id", id, "container_id", cont, "channel", rule.Channel, "by_user_id", si.user.ID)
	if s.alerts != nil {
		if err := s.alerts.RulesChanged(r.Context()); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	if generated != "" {
		s.showRules(w, r, si, http.StatusCreated, newRuleForm(), nil, generated, rule.Name)
		return
	}
	http.Redirect(w, r, "/rules", http.StatusSeeOther)
}

// ruleOf reads the {id} rule when the user sees its container (else the
// 404 page) and holds RULE_MANAGEMENT there (else 403), as the API asks
// for every rule route.
func (s *Server) ruleOf(w http.ResponseWriter, r *http.Request, si sessionInfo) (state.Rule, bool) {
	rule, perm, ok := scoped(s, w, r, si, s.st.Rule, func(r state.Rule) int64 { return r.ContainerID })
	if !ok {
		return rule, false
	}
	if !perm.Has(auth.RuleManagement) {
		s.forbidden(w, r, si, auth.RuleManagement, "this rule's container")
		return rule, false
	}
	return rule, true
}

// POST /rule/{id}/delete (RULE_MANAGEMENT): the rule and its delivery log
// go.
func (s *Server) deleteRule(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	rule, ok := s.ruleOf(w, r, si)
	if !ok {
		return
	}
	if err := s.st.DeleteRule(r.Context(), rule.ID); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.log.Info("notification rule deleted", "rule_id", rule.ID, "container_id", rule.ContainerID, "by_user_id", si.user.ID)
	if s.alerts != nil {
		if err := s.alerts.RulesChanged(r.Context()); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/rules", http.StatusSeeOther)
}

// deliveryRow is one delivery as the log shows it (never its payload).
type deliveryRow struct {
	ID            int64
	Event, Status string
	Attempts      int
	LastStatus    int
	LastError     string
	CreatedAt     time.Time
	NextAttemptAt *time.Time
	DeliveredAt   *time.Time
}

// maxDeliveriesShown is how many deliveries the log shows, as the API.
const maxDeliveriesShown = 200

// GET /rule/{id}/deliveries (RULE_MANAGEMENT): the rule's delivery log,
// newest first.
func (s *Server) deliveriesPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	rule, ok := s.ruleOf(w, r, si)
	if !ok {
		return
	}
	ds, err := s.st.Deliveries(r.Context(), rule.ID, maxDeliveriesShown)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	rows := make([]deliveryRow, len(ds))
	for i, d := range ds {
		rows[i] = deliveryRow{ID: d.ID, Event: d.Event, Status: d.Status, Attempts: d.Attempts, LastStatus: d.LastStatus,
			LastError: d.LastError, CreatedAt: d.CreatedAt, DeliveredAt: d.DeliveredAt}
		if d.Status == "pending" {
			next := d.NextAttemptAt
			rows[i].NextAttemptAt = &next
		}
	}
	container := ""
	if c, err := s.st.Container(r.Context(), rule.ContainerID); err == nil {
		container = c.Name
	}
	p := s.userPage(si, "Deliveries of rule "+rule.Name)
	p.Data = struct {
		Rule       ruleRow
		Deliveries []deliveryRow
		Max        int
	}{viewRuleRow(rule, container), rows, maxDeliveriesShown}
	s.render(w, r, http.StatusOK, "deliveries", p)
}

package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sonde-monitoring/sonde/internal/alert"
	"github.com/sonde-monitoring/sonde/internal/alert/expr"
	"github.com/sonde-monitoring/sonde/internal/audit"
	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// conditionForm is the condition form as typed: kept as given when it is
// shown again with errors.
type conditionForm struct {
	ID                                  int64 // 0 for a new condition
	Container                           string
	Name, Kind, Type, Collector, Check  string
	Expression, Items, Labels, Severity string
	Message, Ticks, ClearTicks          string
	Disabled                            bool
}

// conditionRow is a condition as the list shows it.
type conditionRow struct {
	state.Condition
	SeverityName string
}

// conditionGroup is one container's conditions.
type conditionGroup struct {
	Container  state.TreeNode
	CanManage  bool
	Conditions []conditionRow
}

type conditionsData struct {
	Groups []conditionGroup
	// Containers are where the user may create conditions.
	Containers []state.TreeNode
	Form       conditionForm
	Errors     fieldErrors
	Kinds      []string
	Severities [8]string
	// Edit shows one condition's form alone; CanManage says it may be
	// changed.
	Edit          bool
	CanManage     bool
	ContainerName string
}

func conditionKinds() []string {
	return []string{alert.KindExpression, alert.KindItemsMissing, alert.KindItemsMustExist}
}

// conditionFields maps the words alert.Validate starts its errors with to
// the form's fields.
func conditionFields() map[string]string {
	return map[string]string{
		"name": "name", "type": "type", "collector": "collector", "check": "check", "ticks": "ticks", "clearTicks": "clear_ticks",
		"severity": "severity", "labels": "labels", "expression": "expression", "items": "items", "kind": "kind", "message": "message",
	}
}

func newConditionForm() conditionForm {
	return conditionForm{Kind: alert.KindExpression, Severity: alert.Warning.String(), Ticks: "1", ClearTicks: "1"}
}

func conditionFormOf(c state.Condition) conditionForm {
	return conditionForm{
		ID: c.ID, Container: strconv.FormatInt(c.ContainerID, 10), Name: c.Name, Kind: c.Kind, Type: c.Type,
		Collector: c.Collector, Check: c.Check, Expression: c.Expression, Items: strings.Join(c.Items, "\n"),
		Labels: strings.Join(c.Labels, " "), Severity: alert.Severity(c.Severity).String(), Message: c.Message,
		Ticks: strconv.Itoa(c.Ticks), ClearTicks: strconv.Itoa(c.ClearTicks), Disabled: c.Disabled,
	}
}

func readConditionForm(r *http.Request) conditionForm {
	v := r.PostFormValue
	return conditionForm{
		Container: v("container"), Name: strings.TrimSpace(v("name")), Kind: v("kind"), Type: strings.TrimSpace(v("type")),
		Collector: strings.TrimSpace(v("collector")), Check: strings.TrimSpace(v("check")), Expression: v("expression"),
		Items: v("items"), Labels: v("labels"), Severity: v("severity"), Message: v("message"),
		Ticks: strings.TrimSpace(v("ticks")), ClearTicks: strings.TrimSpace(v("clear_ticks")), Disabled: v("disabled") != "",
	}
}

// apply checks the form and writes it over c (whose container is set);
// errors are by field.
func (f conditionForm) apply(c *state.Condition) fieldErrors {
	errs := fieldErrors{}
	c.Name, c.Kind, c.Type, c.Collector, c.Check = f.Name, f.Kind, f.Type, f.Collector, f.Check
	c.Expression, c.Message, c.Disabled = strings.TrimSpace(f.Expression), strings.TrimSpace(f.Message), f.Disabled
	c.Items, c.Labels = splitLines(f.Items), splitWords(f.Labels)
	sev, err := alert.ParseSeverity(f.Severity)
	if err != nil {
		errs["severity"] = "Choose a severity."
	}
	c.Severity = int(sev)
	for _, n := range []struct {
		field, v string
		dst      *int
	}{{"ticks", f.Ticks, &c.Ticks}, {"clear_ticks", f.ClearTicks, &c.ClearTicks}} {
		i, err := strconv.Atoi(n.v)
		if n.v == "" {
			i, err = 1, nil
		}
		if err != nil || i < 1 || i > 100 {
			errs[n.field] = "A whole number from 1 to 100."
			continue
		}
		*n.dst = i
	}
	for field, v := range map[string]string{"collector": c.Collector, "check": c.Check} {
		if v != "" && !validKeyChars(v) {
			errs[field] = "At most 64 letters, digits, '_', '-' and '.'."
		}
	}
	// The commonest mistakes are shown together; alert.Validate, which
	// stops at the first, has the last word.
	if strings.TrimSpace(c.Name) == "" || len(c.Name) > 200 {
		errs["name"] = "A name of 1 to 200 characters."
	}
	if c.Type == "" || len(c.Type) > 200 {
		errs["type"] = "The result type the condition looks at, like disk (1 to 200 characters)."
	}
	if c.Kind == alert.KindExpression && c.Expression != "" {
		if _, err := expr.Parse(c.Expression); err != nil {
			errs["expression"] = upperFirst(err.Error()) + "."
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if err := alert.Validate(c); err != nil {
		msg := err.Error()
		field := fieldOf(msg, conditionFields())
		if field == "" {
			field = "form"
		}
		errs[field] = upperFirst(msg) + "."
		return errs
	}
	return nil
}

// validKeyChars checks a collector or check key as the API does.
func validKeyChars(s string) bool {
	if len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && c != '-' && c != '.' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// GET /conditions: the conditions of every container the user sees, by
// container, and a form to add one.
func (s *Server) conditionsPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	s.showConditions(w, r, si, http.StatusOK, newConditionForm(), nil)
}

func (s *Server) showConditions(w http.ResponseWriter, r *http.Request, si sessionInfo, code int, f conditionForm, errs fieldErrors) {
	conts, perms, err := s.readableTree(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	d := conditionsData{Containers: withPerm(conts, perms, auth.RuleManagement), Form: f, Errors: errs,
		Kinds: conditionKinds(), Severities: severityNames()}
	d.CanManage = len(d.Containers) > 0
	for _, c := range conts {
		cs, err := s.st.Conditions(r.Context(), c.ID)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if len(cs) == 0 {
			continue
		}
		g := conditionGroup{Container: c, CanManage: perms[c.ID].Has(auth.RuleManagement)}
		for _, x := range cs {
			g.Conditions = append(g.Conditions, conditionRow{Condition: x, SeverityName: alert.Severity(x.Severity).String()})
		}
		d.Groups = append(d.Groups, g)
	}
	p := s.userPage(si, "Conditions")
	p.Data = d
	if len(errs) > 0 {
		p.Error = formFailed
		if msg := errs["form"]; msg != "" {
			p.Error = msg
		}
	}
	s.render(w, r, code, "conditions", p)
}

// POST /conditions: a new condition (RULE_MANAGEMENT on its container).
func (s *Server) createCondition(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	_, perms, err := s.readableTree(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	f := readConditionForm(r)
	cont, ok := s.containerPicked(w, r, si, perms, auth.RuleManagement, func() {
		s.showConditions(w, r, si, http.StatusBadRequest, f, fieldErrors{"container": "Choose a container where you may manage conditions."})
	})
	if !ok {
		return
	}
	c := state.Condition{ContainerID: cont}
	if errs := f.apply(&c); errs != nil {
		s.showConditions(w, r, si, http.StatusBadRequest, f, errs)
		return
	}
	existing, err := s.st.Conditions(r.Context(), cont)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if len(existing) >= maxConditionsPerContainer {
		s.showConditions(w, r, si, http.StatusConflict, f, fieldErrors{"form": fmt.Sprintf(
			"This container has %d conditions, the most one container may have; delete some first.", len(existing))})
		return
	}
	id, err := s.st.CreateCondition(r.Context(), c, s.now())
	audit.SetObject(r.Context(), "condition", id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.log.Info("condition created", "condition_id", id, "container_id", cont, "by_user_id", si.user.ID)
	if s.alerts != nil {
		if err := s.alerts.ConditionsChanged(r.Context()); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/conditions", http.StatusSeeOther)
}

// conditionOf reads the {id} condition when the user sees its container;
// otherwise it writes the 404 page.
func (s *Server) conditionOf(w http.ResponseWriter, r *http.Request, si sessionInfo) (state.Condition, auth.Permission, bool) {
	return scoped(s, w, r, si, s.st.Condition, func(c state.Condition) int64 { return c.ContainerID })
}

// GET /condition/{id}: one condition, in a form to change it.
func (s *Server) conditionPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	c, perm, ok := s.conditionOf(w, r, si)
	if !ok {
		return
	}
	s.showCondition(w, r, si, http.StatusOK, c, perm, conditionFormOf(c), nil)
}

func (s *Server) showCondition(w http.ResponseWriter, r *http.Request, si sessionInfo, code int, c state.Condition, perm auth.Permission, f conditionForm, errs fieldErrors) {
	name := ""
	if ct, err := s.st.Container(r.Context(), c.ContainerID); err == nil {
		name = ct.Name
	}
	f.ID = c.ID
	p := s.userPage(si, "Condition "+c.Name)
	p.Data = conditionsData{Form: f, Errors: errs, Kinds: conditionKinds(), Severities: severityNames(), Edit: true,
		CanManage: perm.Has(auth.RuleManagement), ContainerName: name}
	if len(errs) > 0 {
		p.Error = formFailed
		if msg := errs["form"]; msg != "" {
			p.Error = msg
		}
	} else if !perm.Has(auth.RuleManagement) {
		p.Notice = "You may read this condition; changing it needs the permission RULE_MANAGEMENT."
	}
	s.render(w, r, code, "conditions", p)
}

// POST /condition/{id}: change a condition (RULE_MANAGEMENT). Its open
// alerts close when what it tests changed, as through the API.
func (s *Server) updateCondition(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	c, perm, ok := s.conditionOf(w, r, si)
	if !ok {
		return
	}
	if !perm.Has(auth.RuleManagement) {
		s.forbidden(w, r, si, auth.RuleManagement, "this condition's container")
		return
	}
	before := c
	f := readConditionForm(r)
	if errs := f.apply(&c); errs != nil {
		s.showCondition(w, r, si, http.StatusBadRequest, before, perm, f, errs)
		return
	}
	if err := s.st.UpdateCondition(r.Context(), c, s.now()); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.log.Info("condition changed", "condition_id", c.ID, "container_id", c.ContainerID, "by_user_id", si.user.ID)
	if s.alerts != nil {
		if before.Kind != c.Kind || before.Type != c.Type || before.Expression != c.Expression || before.Collector != c.Collector ||
			before.Check != c.Check || !slices.Equal(before.Items, c.Items) || !slices.Equal(before.Labels, c.Labels) || (c.Disabled && !before.Disabled) {
			if err := s.alerts.CloseConditionAlerts(r.Context(), c.ID, "the condition was changed", "user "+si.user.Username); err != nil {
				s.serverError(w, r, err)
				return
			}
		}
		if err := s.alerts.ConditionsChanged(r.Context()); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/conditions", http.StatusSeeOther)
}

// POST /condition/{id}/delete (RULE_MANAGEMENT): its open alerts close.
func (s *Server) deleteCondition(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	c, perm, ok := s.conditionOf(w, r, si)
	if !ok {
		return
	}
	if !perm.Has(auth.RuleManagement) {
		s.forbidden(w, r, si, auth.RuleManagement, "this condition's container")
		return
	}
	if err := s.st.DeleteCondition(r.Context(), c.ID, s.now()); err != nil {
		s.serverError(w, r, err)
		return
	}
	s.log.Info("condition deleted", "condition_id", c.ID, "container_id", c.ContainerID, "by_user_id", si.user.ID)
	if s.alerts != nil {
		if err := s.alerts.ConditionsChanged(r.Context()); err != nil {
			s.serverError(w, r, err)
			return
		}
		if err := s.alerts.CloseConditionAlerts(r.Context(), c.ID, "the condition was deleted", "user "+si.user.Username); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/conditions", http.StatusSeeOther)
}

package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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

// The routes of conditions, alerts, notifications, maintenance and rules.
func (a *API) alertRoutes(m *http.ServeMux) {
	api := auth.API
	a.handle(m, "POST /api/v1/container/{id}/condition", api|auth.RuleManagement, a.createCondition)
	a.handle(m, "GET /api/v1/container/{id}/conditions", api|auth.Read, a.listConditions)
	a.handle(m, "GET /api/v1/condition/{id}", api|auth.Read, a.getCondition)
	a.handle(m, "PATCH /api/v1/condition/{id}", api|auth.RuleManagement, a.patchCondition)
	a.handle(m, "DELETE /api/v1/condition/{id}", api|auth.RuleManagement, a.deleteCondition)

	a.handle(m, "GET /api/v1/container/{id}/alerts", api|auth.Read, a.listAlerts)
	a.handle(m, "GET /api/v1/asset/{id}/alerts", api|auth.Read, a.listAssetAlerts)
	a.handle(m, "GET /api/v1/alert/{id}", api|auth.Read, a.getAlert)
	a.handle(m, "POST /api/v1/alert/{id}/assign", api|auth.AlertAssign, a.assignAlert)
	a.handle(m, "POST /api/v1/alert/{id}/message", api|auth.AlertChange, a.messageAlert)
	a.handle(m, "POST /api/v1/alert/{id}/close", api|auth.AlertChange, a.closeAlert)

	a.handle(m, "GET /api/v1/container/{id}/notifications", api|auth.Read, a.listNotifications)
	a.handle(m, "GET /api/v1/container/{id}/log", api|auth.ViewLog, a.auditLog)

	a.handle(m, "PUT /api/v1/asset/{id}/labels", api|auth.AssetManagement, a.setLabels)
	a.handle(m, "GET /api/v1/asset/{id}/labels", api|auth.Read, a.getLabels)
	a.handle(m, "POST /api/v1/container/{id}/maintenance", api|auth.AlertChange, a.createMaintenance)
	a.handle(m, "GET /api/v1/container/{id}/maintenance", api|auth.Read, a.listMaintenance)
	a.handle(m, "DELETE /api/v1/maintenance/{id}", api|auth.AlertChange, a.deleteMaintenance)

	a.handle(m, "POST /api/v1/container/{id}/rule", api|auth.RuleManagement, a.createRule)
	a.handle(m, "GET /api/v1/container/{id}/rules", api|auth.RuleManagement, a.listRules)
	a.handle(m, "GET /api/v1/rule/{id}", api|auth.RuleManagement, a.getRule)
	a.handle(m, "PATCH /api/v1/rule/{id}", api|auth.RuleManagement, a.patchRule)
	a.handle(m, "DELETE /api/v1/rule/{id}", api|auth.RuleManagement, a.deleteRule)
	a.handle(m, "GET /api/v1/rule/{id}/deliveries", api|auth.RuleManagement, a.listDeliveries)
}

// actor names who did something, for an alert's history.
func actor(p principal) string { return "token " + strconv.FormatInt(p.TokenID, 10) }

// scopedContainer reads the {id} container, within the caller's scope.
func (a *API) scopedContainer(w http.ResponseWriter, r *http.Request, p principal) (state.Container, bool) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return state.Container{}, false
	}
	return a.container(w, r, p, id)
}

// scopedByID reads the object named by the path's {id} with get, and
// answers 404 (naming what) when it does not exist or lies outside the
// caller's scope.
func scopedByID[T any](a *API, w http.ResponseWriter, r *http.Request, p principal, what string,
	get func(context.Context, int64) (T, error), container func(T) int64) (T, bool) {
	var zero T
	id, ok := pathID(w, r, "id")
	if !ok {
		return zero, false
	}
	v, err := get(r.Context(), id)
	if errors.Is(err, state.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %d not found", what, id))
		return zero, false
	}
	if err != nil {
		a.serverError(w, r, err)
		return zero, false
	}
	return v, a.inScope(w, r, p, container(v), fmt.Sprintf("%s %d", what, id))
}

// inScope reports whether container c is within the caller's scope; it
// answers 404 (naming what) when not.
func (a *API) inScope(w http.ResponseWriter, r *http.Request, p principal, c int64, what string) bool {
	in, err := a.st.Within(r.Context(), c, p.Container)
	if err != nil {
		a.serverError(w, r, err)
		return false
	}
	if !in {
		writeError(w, http.StatusNotFound, what+" not found")
	}
	return in
}

type conditionJSON struct {
	ConditionID int64     `json:"conditionId"`
	ContainerID int64     `json:"containerId"`
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	Collector   string    `json:"collector"`
	Check       string    `json:"check"`
	Type        string    `json:"type"`
	Expression  string    `json:"expression"`
	Items       []string  `json:"items"`
	Labels      []string  `json:"labels"`
	Severity    string    `json:"severity"`
	Message     string    `json:"message"`
	Ticks       int       `json:"ticks"`
	ClearTicks  int       `json:"clearTicks"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

func viewCondition(c state.Condition) conditionJSON {
	return conditionJSON{
		ConditionID: c.ID, ContainerID: c.ContainerID, Name: c.Name, Kind: c.Kind, Collector: c.Collector, Check: c.Check,
		Type: c.Type, Expression: c.Expression, Items: nonNil(c.Items), Labels: nonNil(c.Labels),
		Severity: alert.Severity(c.Severity).String(), Message: c.Message, Ticks: c.Ticks, ClearTicks: c.ClearTicks,
		Disabled: c.Disabled, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// conditionInput is a condition as posted or patched; absent fields keep
// their value (PATCH) or default (POST).
type conditionInput struct {
	Name       *string   `json:"name"`
	Kind       *string   `json:"kind"`
	Collector  *string   `json:"collector"`
	Check      *string   `json:"check"`
	Type       *string   `json:"type"`
	Expression *string   `json:"expression"`
	Items      *[]string `json:"items"`
	Labels     *[]string `json:"labels"`
	Severity   *string   `json:"severity"`
	Message    *string   `json:"message"`
	Ticks      *int      `json:"ticks"`
	ClearTicks *int      `json:"clearTicks"`
	Disabled   *bool     `json:"disabled"`
}

// apply writes the given fields over c.
func (in conditionInput) apply(c *state.Condition) error {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&c.Name, in.Name)
	set(&c.Kind, in.Kind)
	set(&c.Collector, in.Collector)
	set(&c.Check, in.Check)
	set(&c.Type, in.Type)
	set(&c.Expression, in.Expression)
	set(&c.Message, in.Message)
	if in.Items != nil {
		c.Items = *in.Items
	}
	if in.Labels != nil {
		c.Labels = *in.Labels
	}
	if in.Severity != nil {
		s, err := alert.ParseSeverity(*in.Severity)
		if err != nil {
			return err
		}
		c.Severity = int(s)
	}
	if in.Ticks != nil {
		if *in.Ticks < 1 {
			return errors.New("ticks must be at least 1")
		}
		c.Ticks = *in.Ticks
	}
	if in.ClearTicks != nil {
		if *in.ClearTicks < 1 {
			return errors.New("clearTicks must be at least 1")
		}
		c.ClearTicks = *in.ClearTicks
	}
	if in.Disabled != nil {
		c.Disabled = *in.Disabled
	}
	for what, v := range map[string]string{"collector": c.Collector, "check": c.Check} {
		if v != "" {
			if err := validKey(v); err != nil {
				return fmt.Errorf("%s %w", what, err)
			}
		}
	}
	return nil
}

// POST /container/{id}/condition → 201 {"conditionId"}.
func (a *API) createCondition(w http.ResponseWriter, r *http.Request, p principal) {
	cont, ok := a.scopedContainer(w, r, p)
	if !ok {
		return
	}
	var in conditionInput
	if !readJSON(w, r, &in, maxManagementBody, true) {
		return
	}
	c := state.Condition{ContainerID: cont.ID, Kind: alert.KindExpression, Severity: int(alert.Warning)}
	if err := in.apply(&c); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := alert.Validate(&c); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	existing, err := a.st.Conditions(r.Context(), cont.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if len(existing) >= maxConditionsPerContainer {
		writeError(w, http.StatusConflict, fmt.Sprintf("container %d has %d conditions, the most one container may have", cont.ID, len(existing)))
		return
	}
	id, err := a.st.CreateCondition(r.Context(), c, a.now())
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if err := a.alerts.ConditionsChanged(r.Context()); err != nil {
		a.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"conditionId": id})
}

const (
	maxConditionsPerContainer = 1000
	maxRulesPerContainer      = 100
	maxWindowsPerContainer    = 100
)

func (a *API) listConditions(w http.ResponseWriter, r *http.Request, p principal) {
	cont, ok := a.scopedContainer(w, r, p)
	if !ok {
		return
	}
	cs, err := a.st.Conditions(r.Context(), cont.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	out := make([]conditionJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, viewCondition(c))
	}
	writeJSON(w, http.StatusOK, out)
}

// condition reads the {id} condition within the caller's scope.
func (a *API) condition(w http.ResponseWriter, r *http.Request, p principal) (state.Condition, bool) {
	return scopedByID(a, w, r, p, "condition", a.st.Condition, func(c state.Condition) int64 { return c.ContainerID })
}

func (a *API) getCondition(w http.ResponseWriter, r *http.Request, p principal) {
	if c, ok := a.condition(w, r, p); ok {
		writeJSON(w, http.StatusOK, viewCondition(c))
	}
}

func (a *API) patchCondition(w http.ResponseWriter, r *http.Request, p principal) {
	c, ok := a.condition(w, r, p)
	if !ok {
		return
	}
	var in conditionInput
	if !readJSON(w, r, &in, maxManagementBody, true) {
		return
	}
	before := c
	if err := in.apply(&c); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := alert.Validate(&c); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := a.st.UpdateCondition(r.Context(), c, a.now()); err != nil {
		a.serverError(w, r, err)
		return
	}
	// What the condition tests changed: its open alerts may no longer
	// mean anything; close them (it opens new ones where it holds).
	if before.Kind != c.Kind || before.Type != c.Type || before.Expression != c.Expression || before.Collector != c.Collector ||
		before.Check != c.Check || strings.Join(before.Items, "\x00") != strings.Join(c.Items, "\x00") ||
		strings.Join(before.Labels, "\x00") != strings.Join(c.Labels, "\x00") || (c.Disabled && !before.Disabled) {
		if err := a.alerts.CloseConditionAlerts(r.Context(), c.ID, "the condition was changed", actor(p)); err != nil {
			a.serverError(w, r, err)
			return
		}
	}
	if err := a.alerts.ConditionsChanged(r.Context()); err != nil {
		a.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewCondition(c))
}

func (a *API) deleteCondition(w http.ResponseWriter, r *http.Request, p principal) {
	c, ok := a.condition(w, r, p)
	if !ok {
		return
	}
	if err := a.st.DeleteCondition(r.Context(), c.ID, a.now()); err != nil {
		a.serverError(w, r, err)
		return
	}
	if err := a.alerts.ConditionsChanged(r.Context()); err != nil {
		a.serverError(w, r, err)
		return
	}
	if err := a.alerts.CloseConditionAlerts(r.Context(), c.ID, "the condition was deleted", actor(p)); err != nil {
		a.serverError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// statusParam reads ?status=open|closed ("" for both).
func statusParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	s := r.URL.Query().Get("status")
	if s != "" && s != "open" && s != "closed" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status %q is not open or closed", s))
		return "", false
	}
	return s, true
}

// GET /container/{id}/alerts?status=open|closed: the alerts of the
// container and every container below it, newest first.
func (a *API) listAlerts(w http.ResponseWriter, r *http.Request, p principal) {
	cont, ok := a.scopedContainer(w, r, p)
	if !ok {
		return
	}
	status, ok := statusParam(w, r)
	if !ok {
		return
	}
	ids, err := a.st.Subtree(r.Context(), cont.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	as, err := a.st.Alerts(r.Context(), state.AlertFilter{Containers: ids, Status: status})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	writeAlerts(w, as)
}

func writeAlerts(w http.ResponseWriter, as []state.Alert) {
	out := make([]alert.AlertView, 0, len(as))
	for _, x := range as {
		out = append(out, alert.ViewAlert(x))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) listAssetAlerts(w http.ResponseWriter, r *http.Request, p principal) {
	as, ok := a.asset(w, r, p)
	if !ok {
		return
	}
	status, ok := statusParam(w, r)
	if !ok {
		return
	}
	alerts, err := a.st.Alerts(r.Context(), state.AlertFilter{AssetID: as.ID, Status: status})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	writeAlerts(w, alerts)
}

// alertByID reads the {id} alert within the caller's scope.
func (a *API) alertByID(w http.ResponseWriter, r *http.Request, p principal) (state.Alert, bool) {
	return scopedByID(a, w, r, p, "alert", a.st.Alert, func(al state.Alert) int64 { return al.ContainerID })
}

type alertEventJSON struct {
	At    time.Time `json:"at"`
	Kind  string    `json:"kind"`
	Actor string    `json:"actor"`
	Text  string    `json:"text"`
}

// GET /alert/{id}: the alert with its history.
func (a *API) getAlert(w http.ResponseWriter, r *http.Request, p principal) {
	al, ok := a.alertByID(w, r, p)
	if !ok {
		return
	}
	evs, err := a.st.AlertEvents(r.Context(), al.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	hist := make([]alertEventJSON, 0, len(evs))
	for _, e := range evs {
		hist = append(hist, alertEventJSON{At: e.At, Kind: e.Kind, Actor: e.Actor, Text: e.Text})
	}
	writeJSON(w, http.StatusOK, struct {
		alert.AlertView
		History []alertEventJSON `json:"history"`
	}{alert.ViewAlert(al), hist})
}

func (a *API) assignAlert(w http.ResponseWriter, r *http.Request, p principal) {
	al, ok := a.alertByID(w, r, p)
	if !ok {
		return
	}
	var body struct {
		To string `json:"to"`
	}
	if !readJSON(w, r, &body, maxManagementBody, true) {
		return
	}
	if len(body.To) > 200 || strings.ContainsAny(body.To, "\r\n") {
		writeError(w, http.StatusBadRequest, "to must be at most 200 characters on one line (empty unassigns)")
		return
	}
	err := a.st.InTx(r.Context(), func(tx *state.Tx) error { return tx.AssignAlert(al.ID, body.To, actor(p), a.now()) })
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) messageAlert(w http.ResponseWriter, r *http.Request, p principal) {
	al, ok := a.alertByID(w, r, p)
	if !ok {
		return
	}
	var body struct {
		Text string `json:"text"`
	}
	if !readJSON(w, r, &body, maxManagementBody, true) {
		return
	}
	if strings.TrimSpace(body.Text) == "" || len(body.Text) > 4000 {
		writeError(w, http.StatusBadRequest, "text must be 1 to 4000 characters")
		return
	}
	audit.SetReason(r.Context(), body.Text)
	err := a.st.InTx(r.Context(), func(tx *state.Tx) error {
		return tx.AddAlertEvent(state.AlertEvent{AlertID: al.ID, At: a.now(), Kind: "message", Actor: actor(p), Text: body.Text})
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) closeAlert(w http.ResponseWriter, r *http.Request, p principal) {
	al, ok := a.alertByID(w, r, p)
	if !ok {
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 && !readJSON(w, r, &body, maxManagementBody, true) {
		return
	}
	if len(body.Reason) > 1000 {
		writeError(w, http.StatusBadRequest, "reason is longer than 1000 characters")
		return
	}
	reason := "closed by hand"
	if body.Reason != "" {
		reason = body.Reason
	}
	audit.SetReason(r.Context(), reason)
	err := a.alerts.CloseAlert(r.Context(), al.ID, reason, actor(p))
	switch {
	case errors.Is(err, alert.ErrClosed):
		writeError(w, http.StatusConflict, fmt.Sprintf("alert %d is closed already", al.ID))
	case err != nil:
		a.serverError(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// GET /container/{id}/notifications?status=: the monitoring-health
// notifications of the container and below.
func (a *API) listNotifications(w http.ResponseWriter, r *http.Request, p principal) {
	cont, ok := a.scopedContainer(w, r, p)
	if !ok {
		return
	}
	status, ok := statusParam(w, r)
	if !ok {
		return
	}
	ids, err := a.st.Subtree(r.Context(), cont.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	ns, err := a.st.Notifications(r.Context(), state.NotificationFilter{Containers: ids, Status: status})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	out := make([]alert.NotificationView, 0, len(ns))
	for _, n := range ns {
		out = append(out, alert.ViewNotification(n))
	}
	writeJSON(w, http.StatusOK, out)
}

// PUT /asset/{id}/labels {"labels": […]}.
func (a *API) setLabels(w http.ResponseWriter, r *http.Request, p principal) {
	as, ok := a.asset(w, r, p)
	if !ok {
		return
	}
	var body struct {
		Labels []string `json:"labels"`
	}
	if !readJSON(w, r, &body, maxManagementBody, true) {
		return
	}
	if len(body.Labels) > 50 {
		writeError(w, http.StatusBadRequest, "labels: at most 50 per asset")
		return
	}
	for _, l := range body.Labels {
		if err := alert.ValidLabel(l); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if err := a.st.SetAssetLabels(r.Context(), as.ID, body.Labels); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.alerts.LabelsChanged(as.ID)
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) getLabels(w http.ResponseWriter, r *http.Request, p principal) {
	as, ok := a.asset(w, r, p)
	if !ok {
		return
	}
	ls, err := a.st.AssetLabels(r.Context(), as.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string][]string{"labels": ls})
}

type maintenanceJSON struct {
	MaintenanceID int64     `json:"maintenanceId"`
	ContainerID   int64     `json:"containerId"`
	AssetID       *int64    `json:"assetId"`
	StartsAt      time.Time `json:"startsAt"`
	EndsAt        time.Time `json:"endsAt"`
	Reason        string    `json:"reason"`
}

// POST /container/{id}/maintenance {"assetId"?, "endsAt" | "duration",
// "reason"} → 201 {"maintenanceId"}: from now until the end, no new
// alerts or notifications for the container (and below) or the asset.
func (a *API) createMaintenance(w http.ResponseWriter, r *http.Request, p principal) {
	cont, ok := a.scopedContainer(w, r, p)
	if !ok {
		return
	}
	var body struct {
		AssetID  *int64     `json:"assetId"`
		EndsAt   *time.Time `json:"endsAt"`
		Duration string     `json:"duration"`
		Reason   string     `json:"reason"`
	}
	if !readJSON(w, r, &body, maxManagementBody, true) {
		return
	}
	now := a.now()
	m := state.Maintenance{ContainerID: cont.ID, StartsAt: now, CreatedAt: now, Reason: body.Reason}
	switch {
	case body.EndsAt != nil && body.Duration != "":
		writeError(w, http.StatusBadRequest, "give endsAt or duration, not both")
		return
	case body.EndsAt != nil:
		m.EndsAt = *body.EndsAt
	case body.Duration != "":
		d, err := time.ParseDuration(body.Duration)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("duration %q is not a duration like 90m or 2h", body.Duration))
			return
		}
		m.EndsAt = now.Add(d)
	default:
		writeError(w, http.StatusBadRequest, "give endsAt (RFC 3339) or duration (like 2h): a maintenance window must end")
		return
	}
	if !m.EndsAt.After(now) || m.EndsAt.Sub(now) > 90*24*time.Hour {
		writeError(w, http.StatusBadRequest, "the window must end in the future, within 90 days")
		return
	}
	if len(body.Reason) > 1000 {
		writeError(w, http.StatusBadRequest, "reason is longer than 1000 characters")
		return
	}
	audit.SetReason(r.Context(), body.Reason)
	if body.AssetID != nil {
		as, err := a.st.Asset(r.Context(), *body.AssetID)
		if errors.Is(err, state.ErrNotFound) || (err == nil && as.ContainerID != cont.ID) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("asset %d is not in container %d", *body.AssetID, cont.ID))
			return
		}
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		m.AssetID = body.AssetID
	}
	if ws, err := a.st.MaintenanceWindows(r.Context(), []int64{cont.ID}, now); err != nil {
		a.serverError(w, r, err)
		return
	} else if len(ws) >= maxWindowsPerContainer {
		writeError(w, http.StatusConflict, "the container has too many maintenance windows; delete some")
		return
	}
	id, err := a.st.CreateMaintenance(r.Context(), m)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if err := a.alerts.MaintenanceChanged(r.Context()); err != nil {
		a.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"maintenanceId": id})
}

// GET /container/{id}/maintenance: the windows not ended, of the container
// and below.
func (a *API) listMaintenance(w http.ResponseWriter, r *http.Request, p principal) {
	cont, ok := a.scopedContainer(w, r, p)
	if !ok {
		return
	}
	ids, err := a.st.Subtree(r.Context(), cont.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	ws, err := a.st.MaintenanceWindows(r.Context(), ids, a.now())
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	out := make([]maintenanceJSON, 0, len(ws))
	for _, m := range ws {
		out = append(out, maintenanceJSON{m.ID, m.ContainerID, m.AssetID, m.StartsAt, m.EndsAt, m.Reason})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteMaintenance(w http.ResponseWriter, r *http.Request, p principal) {
	m, ok := scopedByID(a, w, r, p, "maintenance window", a.st.MaintenanceByID, func(m state.Maintenance) int64 { return m.ContainerID })
	if !ok {
		return
	}
	if err := a.st.DeleteMaintenance(r.Context(), m.ID); err != nil {
		a.serverError(w, r, err)
		return
	}
	if err := a.alerts.MaintenanceChanged(r.Context()); err != nil {
		a.serverError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ruleJSON is a rule as the API shows it: never its secret.
type ruleJSON struct {
	RuleID                  int64           `json:"ruleId"`
	ContainerID             int64           `json:"containerId"`
	Name                    string          `json:"name"`
	Channel                 string          `json:"channel"`
	URL                     string          `json:"url,omitempty"`
	To                      []string        `json:"to,omitempty"`
	HasSecret               bool            `json:"hasSecret"`
	MinSeverity             string          `json:"minSeverity"`
	MinNotificationSeverity string          `json:"minNotificationSeverity"`
	Events                  []string        `json:"events"`
	Labels                  []string        `json:"labels"`
	Conditions              []int64         `json:"conditions"`
	Schedule                *alert.Schedule `json:"schedule"`
	Disabled                bool            `json:"disabled"`
	CreatedAt               time.Time       `json:"createdAt"`
	UpdatedAt               time.Time       `json:"updatedAt"`
}

func viewRule(r state.Rule) ruleJSON {
	out := ruleJSON{
		RuleID: r.ID, ContainerID: r.ContainerID, Name: r.Name, Channel: r.Channel, URL: r.URL, To: r.Recipients,
		HasSecret: !r.Secret.IsZero(), MinSeverity: alert.Severity(r.MinSeverity).String(),
		MinNotificationSeverity: model.Severity(r.MinNotificationSeverity).String(),
		Events:                  nonNil(r.Events), Labels: nonNil(r.Labels), Conditions: nonNil(r.ConditionIDs),
		Disabled: r.Disabled, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if r.Schedule != "" {
		var s alert.Schedule
		if err := jsonUnmarshalString(r.Schedule, &s); err == nil {
			out.Schedule = &s
		}
	}
	return out
}

// ruleInput is a rule as posted or patched.
type ruleInput struct {
	Name                    *string         `json:"name"`
	Channel                 *string         `json:"channel"`
	URL                     *string         `json:"url"`
	To                      *[]string       `json:"to"`
	Secret                  *secret.Secret  `json:"secret"`
	MinSeverity             *string         `json:"minSeverity"`
	MinNotificationSeverity *string         `json:"minNotificationSeverity"`
	Events                  *[]string       `json:"events"`
	Labels                  *[]string       `json:"labels"`
	Conditions              *[]int64        `json:"conditions"`
	Schedule                *alert.Schedule `json:"schedule"`
	Disabled                *bool           `json:"disabled"`
}

func (in ruleInput) apply(r *state.Rule) error {
	if in.Name != nil {
		r.Name = *in.Name
	}
	if in.Channel != nil {
		r.Channel = *in.Channel
	}
	if in.URL != nil {
		r.URL = *in.URL
	}
	if in.To != nil {
		r.Recipients = *in.To
	}
	if in.Secret != nil {
		r.Secret = *in.Secret
	}
	if in.MinSeverity != nil {
		s, err := alert.ParseSeverity(*in.MinSeverity)
		if err != nil {
			return fmt.Errorf("minSeverity: %w", err)
		}
		r.MinSeverity = int(s)
	}
	if in.MinNotificationSeverity != nil {
		s, err := model.ParseSeverity(*in.MinNotificationSeverity)
		if err != nil {
			return fmt.Errorf("minNotificationSeverity: %w", err)
		}
		r.MinNotificationSeverity = int(s)
	}
	if in.Events != nil {
		r.Events = *in.Events
	}
	if in.Labels != nil {
		r.Labels = *in.Labels
	}
	if in.Conditions != nil {
		r.ConditionIDs = *in.Conditions
	}
	if in.Schedule != nil {
		b, err := jsonMarshalString(in.Schedule)
		if err != nil {
			return err
		}
		r.Schedule = b
		if in.Schedule.Timezone == "" && len(in.Schedule.Days) == 0 && in.Schedule.From == "" && in.Schedule.To == "" {
			r.Schedule = ""
		}
	}
	if in.Disabled != nil {
		r.Disabled = *in.Disabled
	}
	return nil
}

// checkRule validates a rule and what the caller and the hub allow of it.
func (a *API) checkRule(w http.ResponseWriter, r *http.Request, p principal, rule *state.Rule) bool {
	if err := alert.ValidateRule(rule, a.allowPrivateWebhooks); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	// Both channels send outside the hub, from the operator's systems:
	// they need WEBHOOKS besides RULE_MANAGEMENT.
	if !p.Perms.Has(auth.Webhooks) {
		writeError(w, http.StatusForbidden, rule.Channel+" rules send outside the hub and need the permission WEBHOOKS")
		return false
	}
	if err := alert.CheckMail(rule, a.mailConfigured, a.mailDomains); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return false
	}
	// A rule may name only conditions its container can see.
	for _, id := range rule.ConditionIDs {
		c, err := a.st.Condition(r.Context(), id)
		ok := err == nil
		if ok {
			in, werr := a.st.Within(r.Context(), rule.ContainerID, c.ContainerID)
			if werr != nil {
				a.serverError(w, r, werr)
				return false
			}
			ok = in
		}
		if !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("conditions: condition %d is not defined on the rule's container or above it", id))
			return false
		}
	}
	return true
}

// POST /container/{id}/rule → 201 {"ruleId"}.
func (a *API) createRule(w http.ResponseWriter, r *http.Request, p principal) {
	cont, ok := a.scopedContainer(w, r, p)
	if !ok {
		return
	}
	var in ruleInput
	if !readJSON(w, r, &in, maxManagementBody, true) {
		return
	}
	rule := state.Rule{ContainerID: cont.ID, MinSeverity: int(alert.Warning), MinNotificationSeverity: int(model.SeverityLow)}
	if err := in.apply(&rule); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if !a.checkRule(w, r, p, &rule) {
		return
	}
	existing, err := a.st.Rules(r.Context(), cont.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if len(existing) >= maxRulesPerContainer {
		writeError(w, http.StatusConflict, fmt.Sprintf("container %d has %d rules, the most one container may have", cont.ID, len(existing)))
		return
	}
	id, err := a.st.CreateRule(r.Context(), rule, a.now())
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if err := a.alerts.RulesChanged(r.Context()); err != nil {
		a.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]int64{"ruleId": id})
}

func (a *API) listRules(w http.ResponseWriter, r *http.Request, p principal) {
	cont, ok := a.scopedContainer(w, r, p)
	if !ok {
		return
	}
	rs, err := a.st.Rules(r.Context(), cont.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	out := make([]ruleJSON, 0, len(rs))
	for _, x := range rs {
		out = append(out, viewRule(x))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) ruleByID(w http.ResponseWriter, r *http.Request, p principal) (state.Rule, bool) {
	return scopedByID(a, w, r, p, "rule", a.st.Rule, func(rule state.Rule) int64 { return rule.ContainerID })
}

func (a *API) getRule(w http.ResponseWriter, r *http.Request, p principal) {
	if rule, ok := a.ruleByID(w, r, p); ok {
		writeJSON(w, http.StatusOK, viewRule(rule))
	}
}

func (a *API) patchRule(w http.ResponseWriter, r *http.Request, p principal) {
	rule, ok := a.ruleByID(w, r, p)
	if !ok {
		return
	}
	var in ruleInput
	if !readJSON(w, r, &in, maxManagementBody, true) {
		return
	}
	if !p.Perms.Has(auth.Webhooks) {
		writeError(w, http.StatusForbidden, "changing a rule needs the permission WEBHOOKS: rules send outside the hub")
		return
	}
	if err := in.apply(&rule); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if in.Channel != nil && *in.Channel == alert.ChannelEmail {
		rule.URL, rule.Secret = "", secret.Secret{}
	}
	if !a.checkRule(w, r, p, &rule) {
		return
	}
	if err := a.st.UpdateRule(r.Context(), rule, a.now()); err != nil {
		a.serverError(w, r, err)
		return
	}
	if err := a.alerts.RulesChanged(r.Context()); err != nil {
		a.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewRule(rule))
}

func (a *API) deleteRule(w http.ResponseWriter, r *http.Request, p principal) {
	rule, ok := a.ruleByID(w, r, p)
	if !ok {
		return
	}
	if err := a.st.DeleteRule(r.Context(), rule.ID); err != nil {
		a.serverError(w, r, err)
		return
	}
	if err := a.alerts.RulesChanged(r.Context()); err != nil {
		a.serverError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type deliveryJSON struct {
	DeliveryID    string     `json:"deliveryId"`
	Event         string     `json:"event"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastStatus    int        `json:"lastStatus,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	DeliveredAt   *time.Time `json:"deliveredAt"`
}

// GET /rule/{id}/deliveries: the rule's delivery log, newest first.
func (a *API) listDeliveries(w http.ResponseWriter, r *http.Request, p principal) {
	rule, ok := a.ruleByID(w, r, p)
	if !ok {
		return
	}
	ds, err := a.st.Deliveries(r.Context(), rule.ID, 200)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	out := make([]deliveryJSON, 0, len(ds))
	for _, d := range ds {
		j := deliveryJSON{
			DeliveryID: alert.DeliveryID(rule.ID, d.EventKey), Event: d.Event, Status: d.Status, Attempts: d.Attempts,
			LastStatus: d.LastStatus, LastError: d.LastError, CreatedAt: d.CreatedAt, DeliveredAt: d.DeliveredAt,
		}
		if d.Status == "pending" {
			next := d.NextAttemptAt
			j.NextAttemptAt = &next
		}
		out = append(out, j)
	}
	writeJSON(w, http.StatusOK, out)
}

func jsonUnmarshalString(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func jsonMarshalString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/audit"
	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// maintenanceRow is a window as the list shows it.
type maintenanceRow struct {
	ID, ContainerID  int64
	Container        string
	AssetID          *int64
	Asset            string
	StartsAt, EndsAt time.Time
	Active           bool
	Reason           string
	CanEnd           bool
}

// maintenanceForm is the form as typed.
type maintenanceForm struct {
	Container, Asset, Starts, Ends, Duration, Reason string
}

type maintenanceData struct {
	Windows []maintenanceRow
	// Containers are where the user may create windows.
	Containers []state.TreeNode
	Form       maintenanceForm
	Errors     fieldErrors
	ZoneName   string
}

// The limits of a window, as the API's.
const (
	maxWindowAhead = 90 * 24 * time.Hour
	maxReason      = 1000
)

// localLayouts are the forms a time is accepted in: what a browser's
// datetime-local input sends, and the same typed by hand.
func localLayouts() []string {
	return []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05"}
}

// parseLocal reads a time of day in the user's zone.
func parseLocal(v string, loc *time.Location) (time.Time, bool) {
	for _, l := range localLayouts() {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseSpan reads a duration like 90m, 2h or 1h30m, or whole days like
// 3d.
func parseSpan(v string) (time.Duration, bool) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d < 1 || d > 90 {
			return 0, false
		}
		return time.Duration(d) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(v)
	return d, err == nil && d > 0
}

// GET /maintenance: the windows, active and upcoming, of every container
// the user sees and their assets, and a form to add one.
func (s *Server) maintenancePage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	f := maintenanceForm{Starts: s.now().In(s.zone(si.user)).Format("2006-01-02T15:04")}
	s.showMaintenance(w, r, si, http.StatusOK, f, nil)
}

func (s *Server) showMaintenance(w http.ResponseWriter, r *http.Request, si sessionInfo, code int, f maintenanceForm, errs fieldErrors) {
	conts, perms, err := s.readableTree(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	loc := s.zone(si.user)
	d := maintenanceData{Containers: withPerm(conts, perms, auth.AlertChange), Form: f, Errors: errs, ZoneName: loc.String()}
	ids := make([]int64, len(conts))
	names := make(map[int64]string, len(conts))
	for i, c := range conts {
		ids[i] = c.ID
		names[c.ID] = c.Name
	}
	now := s.now()
	ws, err := s.st.MaintenanceWindows(r.Context(), ids, now)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	var assetIDs []int64
	for _, m := range ws {
		if m.AssetID != nil {
			assetIDs = append(assetIDs, *m.AssetID)
		}
	}
	assets, err := s.st.AssetNames(r.Context(), assetIDs)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	for _, m := range ws {
		row := maintenanceRow{ID: m.ID, ContainerID: m.ContainerID, Container: names[m.ContainerID], AssetID: m.AssetID,
			StartsAt: m.StartsAt, EndsAt: m.EndsAt, Active: !now.Before(m.StartsAt), Reason: m.Reason,
			CanEnd: perms[m.ContainerID].Has(auth.AlertChange)}
		if m.AssetID != nil {
			row.Asset = assets[*m.AssetID]
		}
		d.Windows = append(d.Windows, row)
	}
	p := s.userPage(si, "Maintenance")
	p.Data = d
	if len(errs) > 0 {
		p.Error = formFailed
		if msg := errs["form"]; msg != "" {
			p.Error = msg
		}
	}
	s.render(w, r, code, "maintenance", p)
}

// POST /maintenance: a window of a container (and below) or of one of its
// assets (ALERT_CHANGE on the container, as the API). It starts now or at
// a time given in the user's zone, and ends at a time or after a
// duration, at most 90 days ahead.
func (s *Server) createMaintenance(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	_, perms, err := s.readableTree(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	v := r.PostFormValue
	f := maintenanceForm{Container: v("container"), Asset: strings.TrimSpace(v("asset")), Starts: strings.TrimSpace(v("starts")),
		Ends: strings.TrimSpace(v("ends")), Duration: strings.TrimSpace(v("duration")), Reason: strings.TrimSpace(v("reason"))}
	fail := func(code int, errs fieldErrors) { s.showMaintenance(w, r, si, code, f, errs) }
	cont, ok := s.containerPicked(w, r, si, perms, auth.AlertChange, func() {
		fail(http.StatusBadRequest, fieldErrors{"container": "Choose a container where you may change alerts."})
	})
	if !ok {
		return
	}
	loc := s.zone(si.user)
	now := s.now()
	m := state.Maintenance{ContainerID: cont, StartsAt: now, CreatedAt: now, Reason: f.Reason}
	errs := fieldErrors{}
	if f.Starts != "" {
		t, ok := parseLocal(f.Starts, loc)
		switch {
		case !ok:
			errs["starts"] = "A date and time like 2026-11-25T14:30 (" + loc.String() + "), or empty for now."
		case t.After(now):
			m.StartsAt = t // else it starts now: a window cannot start in the past
		}
	}
	switch {
	case f.Ends != "" && f.Duration != "":
		errs["ends"] = "Give an end or a duration, not both."
	case f.Ends != "":
		t, ok := parseLocal(f.Ends, loc)
		if !ok {
			errs["ends"] = "A date and time like 2026-11-25T18:00 (" + loc.String() + ")."
		}
		m.EndsAt = t
	case f.Duration != "":
		d, ok := parseSpan(f.Duration)
		if !ok {
			errs["duration"] = "A duration like 90m, 2h, 1h30m or 3d."
		}
		m.EndsAt = m.StartsAt.Add(d)
	default:
		errs["ends"] = "A maintenance window must end: give an end or a duration."
	}
	if len(errs) == 0 {
		field := "ends"
		if f.Duration != "" {
			field = "duration"
		}
		if !m.EndsAt.After(m.StartsAt) {
			errs[field] = "The window must end after it starts."
		} else if m.EndsAt.Sub(now) > maxWindowAhead {
			errs[field] = "The window must end within 90 days."
		}
	}
	if len(f.Reason) > maxReason {
		errs["reason"] = fmt.Sprintf("At most %d characters.", maxReason)
	}
	if f.Asset != "" {
		id, err := strconv.ParseInt(f.Asset, 10, 64)
		if err != nil || id <= 0 {
			errs["asset"] = "An asset id (a number), or empty for the whole container."
		} else {
			a, err := s.st.Asset(r.Context(), id)
			if err != nil && !errors.Is(err, state.ErrNotFound) {
				s.serverError(w, r, err)
				return
			}
			if err != nil || a.ContainerID != cont {
				errs["asset"] = fmt.Sprintf("Asset %d is not in this container.", id)
			} else {
				m.AssetID = &id
			}
		}
	}
	if len(errs) > 0 {
		fail(http.StatusBadRequest, errs)
		return
	}
	ws, err := s.st.MaintenanceWindows(r.Context(), []int64{cont}, now)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if len(ws) >= maxWindowsPerContainer {
		fail(http.StatusConflict, fieldErrors{"form": "The container has too many maintenance windows; end some first."})
		return
	}
	audit.SetReason(r.Context(), m.Reason)
	id, err := s.st.CreateMaintenance(r.Context(), m)
	audit.SetObject(r.Context(), "maintenance", id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.log.Info("maintenance window created", "maintenance_id", id, "container_id", cont, "asset_id", m.AssetID,
		"starts_at", m.StartsAt, "ends_at", m.EndsAt, "by_user_id", si.user.ID)
	if s.alerts != nil {
		if err := s.alerts.MaintenanceChanged(r.Context()); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/maintenance", http.StatusSeeOther)
}

// POST /maintenance/{id}/end (ALERT_CHANGE): the window ends now (an
// upcoming one is cancelled); the store removes it.
func (s *Server) endMaintenance(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	m, perm, ok := scoped(s, w, r, si, s.st.MaintenanceByID, func(m state.Maintenance) int64 { return m.ContainerID })
	if !ok {
		return
	}
	if !perm.Has(auth.AlertChange) {
		s.forbidden(w, r, si, auth.AlertChange, "this window's container")
		return
	}
	if err := s.st.DeleteMaintenance(r.Context(), m.ID); err != nil {
		if errors.Is(err, state.ErrNotFound) {
			s.notFound(w, r, si)
			return
		}
		s.serverError(w, r, err)
		return
	}
	s.log.Info("maintenance window ended", "maintenance_id", m.ID, "container_id", m.ContainerID, "by_user_id", si.user.ID)
	if s.alerts != nil {
		if err := s.alerts.MaintenanceChanged(r.Context()); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/maintenance", http.StatusSeeOther)
}

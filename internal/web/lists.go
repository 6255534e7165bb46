package web

import (
	"net/http"
	"slices"

	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/stream"
)

// Appliances reports on the appliances connected to this hub.
type Appliances interface {
	Live(appliance int64) (stream.Live, bool)
}

// readable lists the containers the user may read, sorted.
func (s *Server) readable(r *http.Request, si sessionInfo) ([]int64, error) {
	_, perms, err := s.visible(r, si)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for id, p := range perms {
		if p.Has(auth.Read) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// notificationRow is a monitoring-health notification as the page shows
// it.
type notificationRow struct {
	state.Notification
	SeverityName string
}

// GET /notifications?status=open|closed: what is wrong with the
// monitoring itself, in every container the user sees.
func (s *Server) notificationsPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	ids, err := s.readable(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	status := r.URL.Query().Get("status")
	if status != "closed" {
		status = "open"
	}
	ns, err := s.st.Notifications(r.Context(), state.NotificationFilter{Containers: ids, Status: status, Limit: 500})
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	rows := make([]notificationRow, len(ns))
	for i, n := range ns {
		rows[i] = notificationRow{Notification: n, SeverityName: model.Severity(n.Severity).String()}
	}
	s.render(w, r, http.StatusOK, "notifications", page{Title: "Monitoring notifications", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user),
		Data: struct {
			Status string
			Rows   []notificationRow
		}{status, rows}})
}

// applianceRow is an appliance as the page shows it.
type applianceRow struct {
	state.Appliance
	Connected bool
	Live      stream.Live
	// Hardening is the latest hardening audit; nil before the first.
	Hardening *state.Hardening
}

// GET /appliances: the appliances of every container the user sees, with
// what the connected ones report.
func (s *Server) appliancesPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	ids, err := s.readable(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	var rows []applianceRow
	for _, c := range ids {
		as, err := s.st.Appliances(r.Context(), c)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		audits := map[int64]state.Hardening{}
		if len(as) > 0 {
			if audits, err = s.st.ApplianceHardening(r.Context(), c); err != nil {
				s.serverError(w, r, err)
				return
			}
		}
		for _, a := range as {
			row := applianceRow{Appliance: a}
			if h, ok := audits[a.ID]; ok {
				row.Hardening = &h
			}
			if s.appliances != nil && a.RevokedAt == nil {
				row.Live, row.Connected = s.appliances.Live(a.ID)
			}
			if !row.Connected && a.ConnectedAt(s.now()) {
				// Connected to another hub: what it recorded.
				row.Connected = true
				row.Live = stream.Live{Dropped: a.BufferDropped, Missing: a.MissingProbes}
			}
			rows = append(rows, row)
		}
	}
	s.render(w, r, http.StatusOK, "appliances", page{Title: "Appliances", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user), Data: rows})
}

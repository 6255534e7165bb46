package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/sonde-monitoring/sonde/internal/audit"
	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// statusRecorder keeps the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// audited runs h for a form post and records the change in the audit log
// once it succeeded (any answer below 400): the user, the route, the
// object the path names (or the container the form names), the address
// and the reason the handler notes.
func (s *Server) audited(w http.ResponseWriter, r *http.Request, si sessionInfo, h sessionHandler) {
	e := audit.Entry{ActorKind: audit.ActorUser, ActorID: si.user.ID, Action: r.Pattern, Address: clientIP(r)}
	kind, param := audit.Object(r.Pattern, "/")
	id, err := strconv.ParseInt(r.PathValue(param), 10, 64)
	if kind == "" || err != nil {
		kind, id, err = "", 0, nil
		if formCreations()[r.Pattern] {
			// A creation: in the container the form names, when the user
			// sees it (the handler refuses the others; an entry must never
			// land in a log the user cannot write to).
			c, perr := strconv.ParseInt(r.PostFormValue("container"), 10, 64)
			_, perms, verr := s.visible(r, si)
			if verr != nil {
				s.serverError(w, r, verr)
				return
			}
			if _, ok := perms[c]; perr == nil && ok {
				kind, id = "container", c
			}
		}
	}
	if kind != "" && id > 0 {
		e.ObjectKind, e.ObjectID = kind, id
		c, err := s.st.ContainerOf(r.Context(), kind, id)
		switch {
		case err == nil:
			e.ContainerID = c
		case !errors.Is(err, state.ErrNotFound):
			s.serverError(w, r, err)
			return
		}
	}
	pending := audit.NewPending(e)
	rec := &statusRecorder{ResponseWriter: w}
	h(rec, r.WithContext(audit.With(r.Context(), pending)), si)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	if rec.code >= 400 {
		return
	}
	e = pending.Entry()
	if e.ObjectKind != kind || e.ObjectID != id {
		in := fmt.Sprintf("in %s %d", kind, id)
		if e.Detail != "" {
			in += "; " + e.Detail
		}
		e.Detail = in
	}
	e.At, e.Status = s.now(), rec.code
	s.appendAudit(r, e)
}

// formCreations are the form posts that create an object in the
// container their form names; other posts without an object in the path
// (the user's own account) are in no container.
func formCreations() map[string]bool {
	return map[string]bool{"POST /tokens": true, "POST /conditions": true, "POST /rules": true, "POST /maintenance": true}
}

// appendAudit writes an entry; a failure is logged (the change is made).
func (s *Server) appendAudit(r *http.Request, e audit.Entry) {
	if e.At.IsZero() {
		e.At = s.now()
	}
	if err := s.st.AppendAudit(r.Context(), e); err != nil {
		s.log.Error("writing the audit log failed", "action", e.Action, "err", err)
	}
}

// logRow is an audit entry as the page shows it.
type logRow struct {
	audit.Entry
	Container string
	Actor     string
}

type logData struct {
	Rows       []logRow
	Containers []state.TreeNode
	Container  int64
	Action     string
	More       string // the link to older entries
}

// GET /log?container=&action=&before=: the audit log of the containers
// where the user holds VIEW_LOG.
func (s *Server) logPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	tree, perms, err := s.visible(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	names := map[int64]string{}
	var conts []state.TreeNode
	var ids []int64
	for _, n := range tree {
		if perms[n.ID].Has(auth.ViewLog) {
			conts = append(conts, n)
			ids = append(ids, n.ID)
			names[n.ID] = n.Name
		}
	}
	q := r.URL.Query()
	d := logData{Containers: conts, Action: strings.TrimSpace(q.Get("action"))}
	if v := q.Get("container"); v != "" {
		c, err := strconv.ParseInt(v, 10, 64)
		if _, ok := names[c]; err != nil || !ok {
			s.notFound(w, r, si)
			return
		}
		d.Container, ids = c, []int64{c}
	}
	if len(d.Action) > 200 {
		d.Action = d.Action[:200]
	}
	f := state.AuditFilter{Containers: ids, Action: d.Action, Limit: 100}
	if v := q.Get("before"); v != "" {
		f.Before, _ = strconv.ParseInt(v, 10, 64)
	}
	// The root's admins also see what happened outside any container
	// (logins, account changes).
	if len(tree) > 0 && tree[0].ParentID == nil && perms[tree[0].ID].Has(auth.ViewLog) && d.Container == 0 {
		f.Containers = append(f.Containers, 0)
	}
	entries, err := s.st.AuditLog(r.Context(), f)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	users := map[int64]string{}
	for _, e := range entries {
		row := logRow{Entry: e, Container: names[e.ContainerID], Actor: fmt.Sprintf("%s %d", e.ActorKind, e.ActorID)}
		if e.ContainerID == 0 {
			row.Container = "—"
		}
		if e.ActorKind == audit.ActorUser && e.ActorID > 0 {
			name, ok := users[e.ActorID]
			if !ok {
				if u, err := s.st.UserByID(r.Context(), e.ActorID); err == nil {
					name = u.Username
				}
				users[e.ActorID] = name
			}
			if name != "" {
				row.Actor = "user " + name
			}
		}
		d.Rows = append(d.Rows, row)
	}
	if len(entries) == f.Limit {
		v := r.URL.Query()
		v.Set("before", strconv.FormatInt(entries[len(entries)-1].ID, 10))
		d.More = "/log?" + v.Encode()
	}
	s.render(w, r, http.StatusOK, "log", page{Title: "Audit log", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user), Data: d})
}

// loginEvent records a login, a failed one or a lockout. An unknown user
// name is not stored: people type passwords into that field.
func (s *Server) loginEvent(r *http.Request, user int64, action string) {
	s.appendAudit(r, audit.Entry{At: s.now(), ActorKind: audit.ActorUser, ActorID: user, Action: action, Address: clientIP(r)})
}

package web

import (
	"net/http"

	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// treeRow is one container of the overview, with its subtree's counts.
type treeRow struct {
	ID            int64
	Name          string
	Depth         int
	Assets        int
	Alerts        [8]int // open alerts of the subtree, by severity
	AlertsTotal   int
	Notifications int
	Own           state.ContainerCounts
}

// severityNames names the alert severities for the templates.
func severityNames() [8]string {
	return [8]string{"EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"}
}

// visibleSet is what a user sees: the container tree and the user's
// permissions on each visible container. It is computed once per request.
type visibleSet struct {
	done  bool
	tree  []state.TreeNode
	perms map[int64]auth.Permission
	err   error
}

// visible computes the containers the session's user sees, with their
// permissions, once per request.
func (s *Server) visible(r *http.Request, si sessionInfo) ([]state.TreeNode, map[int64]auth.Permission, error) {
	v := si.view
	if v == nil {
		v = &visibleSet{}
	}
	if v.done {
		return v.tree, v.perms, v.err
	}
	v.done = true
	v.tree, v.perms, v.err = s.computeVisible(r, si.user)
	return v.tree, v.perms, v.err
}

func (s *Server) computeVisible(r *http.Request, u state.User) ([]state.TreeNode, map[int64]auth.Permission, error) {
	tree, err := s.st.Tree(r.Context())
	if err != nil {
		return nil, nil, err
	}
	ms, err := s.st.Memberships(r.Context(), u.ID)
	if err != nil {
		return nil, nil, err
	}
	grants := map[int64]auth.Permission{}
	for _, m := range ms {
		grants[m.ContainerID] |= auth.Permission(m.Permissions)
	}
	nodes := make([]auth.Node, len(tree))
	for i, n := range tree {
		nodes[i] = auth.Node{ID: n.ID, Inherit: n.InheritAccess}
		if n.ParentID != nil {
			nodes[i].Parent = *n.ParentID
		}
	}
	return tree, auth.Effective(nodes, grants), nil
}

// GET /: the container tree the user sees, each with the health of its
// subtree.
func (s *Server) overview(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	tree, perms, err := s.visible(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	counts, err := s.st.Counts(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	children := map[int64][]state.TreeNode{}
	for _, n := range tree {
		var p int64
		if n.ParentID != nil {
			p = *n.ParentID
		}
		children[p] = append(children[p], n)
	}
	var rows []treeRow
	// walk adds the visible containers in tree order; a container the
	// user cannot see is skipped with its counts, but its visible
	// descendants (invited) still show.
	var walk func(n state.TreeNode, depth int) treeRow
	walk = func(n state.TreeNode, depth int) treeRow {
		_, ok := perms[n.ID]
		idx := -1
		if ok {
			idx = len(rows)
			rows = append(rows, treeRow{ID: n.ID, Name: n.Name, Depth: min(depth, 6)})
			depth++
		}
		var sum treeRow
		if c := counts[n.ID]; c != nil && ok {
			sum.Assets, sum.Alerts, sum.Notifications = c.Assets, c.OpenAlerts, c.OpenNotifications
		}
		for _, ch := range children[n.ID] {
			sub := walk(ch, depth)
			sum.Assets += sub.Assets
			sum.Notifications += sub.Notifications
			for i := range sum.Alerts {
				sum.Alerts[i] += sub.Alerts[i]
			}
		}
		if idx >= 0 {
			row := &rows[idx]
			row.Assets, row.Alerts, row.Notifications = sum.Assets, sum.Alerts, sum.Notifications
			for _, n := range sum.Alerts {
				row.AlertsTotal += n
			}
		}
		return sum
	}
	for _, root := range children[0] {
		walk(root, 0)
	}
	s.render(w, r, http.StatusOK, "overview", page{Title: "Overview", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user),
		Data: struct {
			Rows       []treeRow
			Severities [8]string
		}{rows, severityNames()}})
}

func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	// The route, not the path: a path may hold a secret (an invitation
	// link's token).
	s.log.Error("a page failed", "route", r.Pattern, "err", err)
	s.render(w, r, http.StatusInternalServerError, "notfound", page{Title: "Error", Error: "Something went wrong on the hub; its log has the details."})
}

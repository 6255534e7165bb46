package web

import (
	"net/http"
	"strings"
	"unicode"

	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// manageRoutes registers the pages that manage alerting: conditions,
// notification rules (with their delivery logs) and maintenance windows.
// Each action asks for the permission the REST API asks for the same
// (internal/api/alerts.go), on the object's container.
func (s *Server) manageRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /conditions", s.withSession(s.conditionsPage, 0))
	m.HandleFunc("POST /conditions", s.withSession(s.createCondition, 0))
	m.HandleFunc("GET /condition/{id}", s.withSession(s.conditionPage, 0))
	m.HandleFunc("POST /condition/{id}", s.withSession(s.updateCondition, 0))
	m.HandleFunc("POST /condition/{id}/delete", s.withSession(s.deleteCondition, 0))

	m.HandleFunc("GET /rules", s.withSession(s.rulesPage, 0))
	m.HandleFunc("POST /rules", s.withSession(s.createRule, 0))
	m.HandleFunc("POST /rule/{id}/delete", s.withSession(s.deleteRule, 0))
	m.HandleFunc("GET /rule/{id}/deliveries", s.withSession(s.deliveriesPage, 0))

	m.HandleFunc("GET /maintenance", s.withSession(s.maintenancePage, 0))
	m.HandleFunc("POST /maintenance", s.withSession(s.createMaintenance, 0))
	m.HandleFunc("POST /maintenance/{id}/end", s.withSession(s.endMaintenance, 0))
}

// The most objects of a kind one container may have: the API's limits.
const (
	maxConditionsPerContainer = 1000
	maxRulesPerContainer      = 100
	maxWindowsPerContainer    = 100
)

// fieldErrors are a form's errors by field name, shown beside the fields.
type fieldErrors map[string]string

// formFailed is the page-level message of a form with errors beside its
// fields.
const formFailed = "Nothing was saved: correct the fields marked below."

// userPage is the page skeleton for a logged-in user.
func (s *Server) userPage(si sessionInfo, title string) page {
	return page{Title: title, User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user)}
}

// forbidden answers an action the user may not take: the object is
// visible, the permission is missing.
func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, si sessionInfo, need auth.Permission, where string) {
	p := s.userPage(si, "Not allowed")
	p.Error = "You may not do this: it needs the permission " + need.String() + " on " + where + "."
	s.render(w, r, http.StatusForbidden, "notfound", p)
}

// readableTree lists the containers the user may read, in tree order,
// with the user's permissions on every container.
func (s *Server) readableTree(r *http.Request, si sessionInfo) ([]state.TreeNode, map[int64]auth.Permission, error) {
	tree, perms, err := s.visible(r, si)
	if err != nil {
		return nil, nil, err
	}
	var out []state.TreeNode
	for _, n := range tree {
		if perms[n.ID].Has(auth.Read) {
			out = append(out, n)
		}
	}
	return out, perms, nil
}

// withPerm keeps the containers where the user holds need.
func withPerm(nodes []state.TreeNode, perms map[int64]auth.Permission, need auth.Permission) []state.TreeNode {
	var out []state.TreeNode
	for _, n := range nodes {
		if perms[n.ID].Has(need) {
			out = append(out, n)
		}
	}
	return out
}

// splitWords splits a list typed by hand at commas, spaces and line
// breaks (labels and e-mail addresses hold none of them).
func splitWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ';' || unicode.IsSpace(r) })
}

// splitLines splits a list typed one entry a line (item names may hold
// spaces and commas); empty lines are dropped.
func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// fieldOf finds the form field a validation error is about from its
// first word ("expression: position 4 …", "ticks must be …"), by the
// given names (API field name → form field); "" when none matches.
func fieldOf(msg string, fields map[string]string) string {
	word := msg
	if i := strings.IndexAny(word, " :"); i >= 0 {
		word = word[:i]
	}
	return fields[word]
}

// upperFirst starts a message with a capital, for showing it alone.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// containerPicked reads a form's container field. It answers (and ok is
// false) 400 via bad for an empty or malformed value, 404 for a container
// the user does not see, and 403 when the user lacks need there.
func (s *Server) containerPicked(w http.ResponseWriter, r *http.Request, si sessionInfo, perms map[int64]auth.Permission,
	need auth.Permission, bad func()) (int64, bool) {
	v := strings.TrimSpace(r.PostFormValue("container"))
	var id int64
	for _, c := range v {
		if c < '0' || c > '9' || id > 1<<50 {
			bad()
			return 0, false
		}
		id = id*10 + int64(c-'0')
	}
	if v == "" || id == 0 {
		bad()
		return 0, false
	}
	p, ok := perms[id]
	if !ok || !p.Has(auth.Read) {
		s.notFound(w, r, si)
		return 0, false
	}
	if !p.Has(need) {
		s.forbidden(w, r, si, need, "this container")
		return 0, false
	}
	return id, true
}

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
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// Invitation links live this many days unless the inviter says otherwise
// (at most maxInviteDays).
const (
	defaultInviteDays = 7
	maxInviteDays     = 30
)

func (s *Server) accessRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /account", s.withSession(s.accountPage, allowMustChange|allowNoTOTP))
	m.HandleFunc("POST /account/zone", s.withSession(s.setZone, allowMustChange|allowNoTOTP))
	m.HandleFunc("GET /access", s.withSession(s.accessList, 0))
	m.HandleFunc("GET /container/{id}/access", s.withSession(s.accessPage, 0))
	m.HandleFunc("POST /container/{id}/invite", s.withSession(s.invite, 0))
	m.HandleFunc("POST /container/{id}/invitation/{inv}/withdraw", s.withSession(s.withdrawInvitation, 0))
	m.HandleFunc("POST /container/{id}/member/{user}", s.withSession(s.setMember, 0))
	m.HandleFunc("POST /container/{id}/member/{user}/remove", s.withSession(s.removeMember, 0))
	m.HandleFunc("POST /container/{id}/settings", s.withSession(s.containerSettings, 0))
	m.HandleFunc("GET /invite/{token}", s.invitationPage)
	m.HandleFunc("POST /invite/{token}", s.acceptInvitation)
}

// GET /account: the user's time zone, and the way to the password, the
// second factor and the sessions.
func (s *Server) accountPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	s.showAccount(w, r, si, http.StatusOK, "", si.user.TimeZone)
}

type accountData struct {
	Zone      string
	ZoneError string
	HasTOTP   bool
	Zones     []string
}

func (s *Server) showAccount(w http.ResponseWriter, r *http.Request, si sessionInfo, code int, zoneErr, zone string) {
	p := page{Title: "Your account", User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user),
		Data: accountData{Zone: zone, ZoneError: zoneErr, HasTOTP: !si.user.TOTPSecret.IsZero(), Zones: commonZones()}}
	if r.URL.Query().Get("saved") != "" {
		p.Notice = "Saved."
	}
	s.render(w, r, code, "account", p)
}

// commonZones suggests time zones in the form; any IANA name is accepted.
func commonZones() []string {
	return []string{"UTC", "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Amsterdam", "Europe/Brussels",
		"Europe/Berlin", "Europe/Paris", "Europe/Madrid", "Europe/Rome", "Europe/Zurich", "Europe/Vienna", "Europe/Stockholm",
		"Europe/Oslo", "Europe/Copenhagen", "Europe/Helsinki", "Europe/Warsaw", "Europe/Prague", "Europe/Athens",
		"Europe/Istanbul", "Europe/Kyiv", "Africa/Johannesburg", "Africa/Lagos", "Africa/Cairo", "Asia/Dubai",
		"Asia/Kolkata", "Asia/Singapore", "Asia/Shanghai", "Asia/Tokyo", "Asia/Seoul", "Australia/Sydney",
		"Australia/Perth", "Pacific/Auckland", "America/New_York", "America/Chicago", "America/Denver",
		"America/Los_Angeles", "America/Toronto", "America/Sao_Paulo", "America/Mexico_City"}
}

// validZone checks a time-zone name a user gives; "" (UTC) is valid.
func validZone(name string) bool {
	if name == "" || name == "UTC" {
		return true
	}
	if len(name) > 64 || name == "Local" || strings.ContainsAny(name, " \\\x00") || strings.Contains(name, "..") {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
}

// POST /account/zone: zone.
func (s *Server) setZone(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	zone := strings.TrimSpace(r.PostFormValue("zone"))
	if !validZone(zone) {
		s.showAccount(w, r, si, http.StatusBadRequest, "No such time zone. Use a name like Europe/Amsterdam or America/New_York.", zone)
		return
	}
	if zone == "UTC" {
		zone = ""
	}
	if err := s.st.SetTimeZone(r.Context(), si.user.ID, zone, s.now()); err != nil {
		s.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account?saved=1", http.StatusSeeOther)
}

// GET /access: the containers whose access the user manages.
func (s *Server) accessList(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	tree, perms, err := s.visible(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	var rows []state.TreeNode
	for _, n := range tree {
		if perms[n.ID].Has(auth.ContainerAdmin) {
			rows = append(rows, n)
		}
	}
	s.render(w, r, http.StatusOK, "access-list", page{Title: "Access", User: si.user.Username, CSRF: si.session.CSRF,
		Zone: s.zone(si.user), Data: rows})
}

// memberRow is a member as the access page lists it.
type memberRow struct {
	state.Member
	Perms string
	// Editable: the viewer holds every flag the member has there, so may
	// change or remove the grant.
	Editable bool
	Flags    []flagBox
}

// flagBox is one permission checkbox.
type flagBox struct {
	Name    string
	Checked bool
}

// inheritedRow is a user who sees the container through a grant above.
type inheritedRow struct {
	Username string
	Via      string
	Perms    string
}

type invitationRow struct {
	state.Invitation
	Perms string
}

type accessData struct {
	Container state.TreeNode
	Members   []memberRow
	Inherited []inheritedRow
	Pending   []invitationRow
	Flags     []flagBox // what the viewer may grant
	// Link is the invitation link just made: shown once, here only.
	Link        string
	InviteError string
	MemberError string
	Days        int
}

// adminOf returns the container and the user's permissions there when the
// user administers it; otherwise it answers 404 (not seen) or 403.
func (s *Server) adminOf(w http.ResponseWriter, r *http.Request, si sessionInfo) (state.TreeNode, auth.Permission, bool) {
	id, ok := pathID(r)
	if !ok {
		s.notFound(w, r, si)
		return state.TreeNode{}, 0, false
	}
	tree, perms, err := s.visible(r, si)
	if err != nil {
		s.serverError(w, r, err)
		return state.TreeNode{}, 0, false
	}
	mine, seen := perms[id]
	if !seen || !mine.Has(auth.Read) {
		s.notFound(w, r, si)
		return state.TreeNode{}, 0, false
	}
	if !mine.Has(auth.ContainerAdmin) {
		s.render(w, r, http.StatusForbidden, "notfound", page{Title: "Not allowed", User: si.user.Username, CSRF: si.session.CSRF,
			Zone: s.zone(si.user), Error: "Managing who has access here needs the CONTAINER_ADMIN permission on this container."})
		return state.TreeNode{}, 0, false
	}
	for _, n := range tree {
		if n.ID == id {
			return n, mine, true
		}
	}
	s.notFound(w, r, si)
	return state.TreeNode{}, 0, false
}

// GET /container/{id}/access: members, users who see it from above,
// pending invitations, and the container's access settings.
func (s *Server) accessPage(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	c, mine, ok := s.adminOf(w, r, si)
	if !ok {
		return
	}
	s.showAccess(w, r, si, c, mine, http.StatusOK, accessData{})
}

func (s *Server) showAccess(w http.ResponseWriter, r *http.Request, si sessionInfo, c state.TreeNode, mine auth.Permission, code int, d accessData) {
	ctx := r.Context()
	d.Container = c
	if d.Days == 0 {
		d.Days = defaultInviteDays
	}
	members, err := s.st.ContainerMembers(ctx, c.ID)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	for _, m := range members {
		p := auth.Permission(m.Permissions)
		row := memberRow{Member: m, Perms: p.String(), Editable: mine.Has(p) && m.UserID != si.user.ID}
		if row.Editable {
			row.Flags = flagBoxes(mine, p)
		}
		d.Members = append(d.Members, row)
	}
	// Users of the containers above see this one while it inherits.
	if c.InheritAccess {
		tree, _, err := s.visible(r, si)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		byID := map[int64]state.TreeNode{}
		for _, n := range tree {
			byID[n.ID] = n
		}
		for n := c; n.InheritAccess && n.ParentID != nil; {
			parent, ok := byID[*n.ParentID]
			if !ok {
				break
			}
			ms, err := s.st.ContainerMembers(ctx, parent.ID)
			if err != nil {
				s.serverError(w, r, err)
				return
			}
			for _, m := range ms {
				d.Inherited = append(d.Inherited, inheritedRow{Username: m.Username, Via: parent.Name, Perms: auth.Permission(m.Permissions).String()})
			}
			n = parent
		}
	}
	invs, err := s.st.PendingInvitations(ctx, c.ID, s.now())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	for _, inv := range invs {
		d.Pending = append(d.Pending, invitationRow{Invitation: inv, Perms: auth.Permission(inv.Permissions).String()})
	}
	if d.Flags == nil {
		d.Flags = flagBoxes(mine, auth.Read)
	}
	p := page{Title: "Access to " + c.Name, User: si.user.Username, CSRF: si.session.CSRF, Zone: s.zone(si.user), Data: d}
	if d.Link != "" {
		p.Notice = "Send this link to the person you invite, by a channel you trust. It works once, and the hub shows it never again."
	}
	if q := r.URL.Query().Get("done"); q != "" && code == http.StatusOK {
		p.Notice = doneNotice(q)
	}
	s.render(w, r, code, "access", p)
}

func doneNotice(q string) string {
	switch q {
	case "member":
		return "Permissions saved."
	case "removed":
		return "Access removed; the user's sessions ended."
	case "withdrawn":
		return "Invitation withdrawn."
	case "settings":
		return "Settings saved."
	}
	return ""
}

// flagBoxes are the checkboxes for the flags the viewer may grant, ticked
// as in checked.
func flagBoxes(mine, checked auth.Permission) []flagBox {
	var out []flagBox
	for f := auth.Permission(1); f <= auth.All; f <<= 1 {
		if mine.Has(f) {
			out = append(out, flagBox{Name: f.String(), Checked: checked.Has(f)})
		}
	}
	return out
}

// formPermissions reads the permission checkboxes: at least one, READ
// among them, and only flags the viewer holds.
func formPermissions(r *http.Request, mine auth.Permission) (auth.Permission, string) {
	p, err := auth.ParsePermissions(r.PostForm["permissions"])
	switch {
	case err != nil:
		return 0, "Unknown permission; reload the page."
	case !p.Has(auth.Read):
		return p, "Tick READ at least: without it the container stays hidden."
	case p&^mine != 0:
		return p, "You cannot give permissions you do not hold here: " + (p &^ mine).String() + "."
	}
	return p, ""
}

// POST /container/{id}/invite: permissions, note, days.
func (s *Server) invite(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	c, mine, ok := s.adminOf(w, r, si)
	if !ok {
		return
	}
	perms, msg := formPermissions(r, mine)
	days := defaultInviteDays
	if v := r.PostFormValue("days"); v != "" && msg == "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxInviteDays {
			msg = fmt.Sprintf("The link may live 1 to %d days.", maxInviteDays)
		} else {
			days = n
		}
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	if msg == "" && (len(note) > 200 || strings.ContainsAny(note, "\r\n\x00")) {
		msg = "The note must be at most 200 characters on one line."
	}
	if msg != "" {
		s.showAccess(w, r, si, c, mine, http.StatusBadRequest, accessData{InviteError: msg, Flags: flagBoxes(mine, perms), Days: days})
		return
	}
	tok, err := randomToken()
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	now := s.now()
	id, err := s.st.CreateInvitation(r.Context(), state.Invitation{TokenHash: hashToken(tok), ContainerID: c.ID,
		Permissions: uint64(perms), Note: note, CreatedBy: si.user.ID, CreatedAt: now, ExpiresAt: now.Add(time.Duration(days) * 24 * time.Hour)})
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	audit.SetObject(r.Context(), "invitation", id)
	s.log.Info("invitation created", "invitation_id", id, "container_id", c.ID, "permissions", perms.String(), "by_user_id", si.user.ID)
	base := strings.TrimSuffix(s.cfg.ExternalURL, "/")
	if base == "" {
		base = "https://" + r.Host
	}
	audit.SetDetail(r.Context(), "with "+perms.String())
	link := base + "/invite/" + tok
	s.showAccess(w, r, si, c, mine, http.StatusCreated, accessData{Link: link})
}

// POST /container/{id}/invitation/{inv}/withdraw.
func (s *Server) withdrawInvitation(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	c, _, ok := s.adminOf(w, r, si)
	if !ok {
		return
	}
	inv, err := strconv.ParseInt(r.PathValue("inv"), 10, 64)
	if err != nil {
		s.notFound(w, r, si)
		return
	}
	if err := s.st.DeleteInvitation(r.Context(), c.ID, inv); errors.Is(err, state.ErrNotFound) {
		s.notFound(w, r, si)
		return
	} else if err != nil {
		s.serverError(w, r, err)
		return
	}
	audit.SetDetail(r.Context(), fmt.Sprintf("invitation %d withdrawn", inv))
	s.log.Info("invitation withdrawn", "invitation_id", inv, "container_id", c.ID, "by_user_id", si.user.ID)
	http.Redirect(w, r, fmt.Sprintf("/container/%d/access?done=withdrawn", c.ID), http.StatusSeeOther)
}

// member finds a direct member of the container for a change; the viewer
// must hold every flag the member has there, and may not change their own
// grant (another admin does that).
func (s *Server) member(w http.ResponseWriter, r *http.Request, si sessionInfo, c state.TreeNode, mine auth.Permission) (state.Member, []state.Member, bool) {
	uid, err := strconv.ParseInt(r.PathValue("user"), 10, 64)
	if err != nil {
		s.notFound(w, r, si)
		return state.Member{}, nil, false
	}
	members, err := s.st.ContainerMembers(r.Context(), c.ID)
	if err != nil {
		s.serverError(w, r, err)
		return state.Member{}, nil, false
	}
	for _, m := range members {
		if m.UserID != uid {
			continue
		}
		switch {
		case uid == si.user.ID:
			s.showAccess(w, r, si, c, mine, http.StatusForbidden, accessData{MemberError: "You cannot change your own access; another admin of this container can."})
		case !mine.Has(auth.Permission(m.Permissions)):
			s.showAccess(w, r, si, c, mine, http.StatusForbidden, accessData{MemberError: fmt.Sprintf(
				"%s holds permissions you do not (%s): only someone who holds them can change that access.", m.Username,
				auth.Permission(m.Permissions)&^mine)})
		default:
			return m, members, true
		}
		return state.Member{}, nil, false
	}
	s.notFound(w, r, si)
	return state.Member{}, nil, false
}

const (
	lastAdminMsg = "this container stops inheritance and would be left without an admin of its own: make someone else admin first."
	stopMsg      = "Invite an admin of this container (CONTAINER_ADMIN here) before you stop inheritance: otherwise nobody could manage it."
)

// lastAdmin reports whether taking CONTAINER_ADMIN from user would leave
// a container that stops inheritance with no admin of its own: nobody
// could then manage it.
func lastAdmin(c state.TreeNode, members []state.Member, user int64) bool {
	return !c.InheritAccess && !hasAdmin(members, user)
}

// hasAdmin reports whether a member other than user holds CONTAINER_ADMIN.
func hasAdmin(members []state.Member, except int64) bool {
	for _, m := range members {
		if m.UserID != except && auth.Permission(m.Permissions).Has(auth.ContainerAdmin) {
			return true
		}
	}
	return false
}

// POST /container/{id}/member/{user}: permissions.
func (s *Server) setMember(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	c, mine, ok := s.adminOf(w, r, si)
	if !ok {
		return
	}
	m, members, ok := s.member(w, r, si, c, mine)
	if !ok {
		return
	}
	perms, msg := formPermissions(r, mine)
	if msg == "" && !perms.Has(auth.ContainerAdmin) && auth.Permission(m.Permissions).Has(auth.ContainerAdmin) && lastAdmin(c, members, m.UserID) {
		msg = "This container stops inheritance and " + m.Username + " is its only admin: make someone else admin first."
	}
	if msg != "" {
		s.showAccess(w, r, si, c, mine, http.StatusBadRequest, accessData{MemberError: m.Username + ": " + msg})
		return
	}
	if err := s.st.SetMembership(r.Context(), m.UserID, c.ID, uint64(perms), uint64(auth.ContainerAdmin)); errors.Is(err, state.ErrLastAdmin) {
		s.showAccess(w, r, si, c, mine, http.StatusConflict, accessData{MemberError: m.Username + ": " + lastAdminMsg})
		return
	} else if err != nil {
		s.serverError(w, r, err)
		return
	}
	audit.SetDetail(r.Context(), fmt.Sprintf("user %d (%s) now holds %s", m.UserID, m.Username, perms))
	s.log.Info("access changed", "user_id", m.UserID, "container_id", c.ID, "permissions", perms.String(), "by_user_id", si.user.ID)
	http.Redirect(w, r, fmt.Sprintf("/container/%d/access?done=member", c.ID), http.StatusSeeOther)
}

// POST /container/{id}/member/{user}/remove.
func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	c, mine, ok := s.adminOf(w, r, si)
	if !ok {
		return
	}
	m, members, ok := s.member(w, r, si, c, mine)
	if !ok {
		return
	}
	if auth.Permission(m.Permissions).Has(auth.ContainerAdmin) && lastAdmin(c, members, m.UserID) {
		s.showAccess(w, r, si, c, mine, http.StatusBadRequest, accessData{MemberError: "This container stops inheritance and " +
			m.Username + " is its only admin: make someone else admin first."})
		return
	}
	if err := s.st.RemoveMembership(r.Context(), m.UserID, c.ID, uint64(auth.ContainerAdmin)); errors.Is(err, state.ErrLastAdmin) {
		s.showAccess(w, r, si, c, mine, http.StatusConflict, accessData{MemberError: m.Username + ": " + lastAdminMsg})
		return
	} else if err != nil {
		s.serverError(w, r, err)
		return
	}
	audit.SetDetail(r.Context(), fmt.Sprintf("user %d (%s) removed; held %s", m.UserID, m.Username, auth.Permission(m.Permissions)))
	s.log.Info("access removed", "user_id", m.UserID, "container_id", c.ID, "by_user_id", si.user.ID)
	http.Redirect(w, r, fmt.Sprintf("/container/%d/access?done=removed", c.ID), http.StatusSeeOther)
}

// POST /container/{id}/settings: inherit ("1" or absent), require_totp
// ("1" or absent).
func (s *Server) containerSettings(w http.ResponseWriter, r *http.Request, si sessionInfo) {
	c, mine, ok := s.adminOf(w, r, si)
	if !ok {
		return
	}
	inherit := r.PostFormValue("inherit") == "1"
	requireTOTP := r.PostFormValue("require_totp") == "1"
	ctx := r.Context()
	if !inherit && c.InheritAccess {
		members, err := s.st.ContainerMembers(ctx, c.ID)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if !hasAdmin(members, 0) {
			s.showAccess(w, r, si, c, mine, http.StatusBadRequest, accessData{MemberError: stopMsg})
			return
		}
	}
	if inherit != c.InheritAccess {
		var err error
		if inherit {
			err = s.st.SetInheritAccess(ctx, c.ID, true)
		} else {
			err = s.st.StopInheritance(ctx, c.ID, uint64(auth.ContainerAdmin))
		}
		if errors.Is(err, state.ErrLastAdmin) {
			s.showAccess(w, r, si, c, mine, http.StatusConflict, accessData{MemberError: stopMsg})
			return
		}
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		s.log.Info("container access inheritance changed", "container_id", c.ID, "inherit", inherit, "by_user_id", si.user.ID)
	}
	if requireTOTP != c.RequireTOTP {
		if err := s.st.SetTOTPRequired(ctx, c.ID, requireTOTP); err != nil {
			s.serverError(w, r, err)
			return
		}
		s.log.Info("container second-factor requirement changed", "container_id", c.ID, "require_totp", requireTOTP, "by_user_id", si.user.ID)
	}
	// Stopping inheritance may hide the container from the viewer.
	_, perms, err := s.computeVisible(r, si.user)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !perms[c.ID].Has(auth.ContainerAdmin) {
		http.Redirect(w, r, "/access", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/container/%d/access?done=settings", c.ID), http.StatusSeeOther)
}

// inviteData is the invitation page.
type inviteData struct {
	Container  string
	Perms      string
	Expires    time.Time
	Username   string // the logged-in user who may accept, or ""
	NameValue  string
	NameError  string
	PassError  string
	FormAction string
}

// invitation finds a valid invitation from the link; an unknown, used,
// withdrawn or expired one all get the same answer.
func (s *Server) invitation(w http.ResponseWriter, r *http.Request) (state.Invitation, string, bool) {
	tok := r.PathValue("token")
	if len(tok) < 40 || len(tok) > 64 {
		s.invitationGone(w, r)
		return state.Invitation{}, "", false
	}
	inv, err := s.st.InvitationByHash(r.Context(), hashToken(tok), s.now())
	if errors.Is(err, state.ErrNotFound) {
		s.invitationGone(w, r)
		return inv, "", false
	}
	if err != nil {
		s.serverError(w, r, err)
		return inv, "", false
	}
	// A link is worth what its inviter still holds: an admin removed (or
	// stripped of a flag) since cannot let anyone in with it.
	if ok, err := s.inviterHolds(r, inv); err != nil {
		s.serverError(w, r, err)
		return inv, "", false
	} else if !ok {
		s.invitationGone(w, r)
		return inv, "", false
	}
	c, err := s.st.Container(r.Context(), inv.ContainerID)
	if err != nil {
		s.serverError(w, r, err)
		return inv, "", false
	}
	return inv, c.Name, true
}

// inviterHolds reports whether the invitation's creator still administers
// its container with every flag the invitation gives.
func (s *Server) inviterHolds(r *http.Request, inv state.Invitation) (bool, error) {
	if inv.CreatedBy == 0 {
		return false, nil
	}
	u, err := s.st.UserByID(r.Context(), inv.CreatedBy)
	if errors.Is(err, state.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if u.DisabledAt != nil {
		return false, nil
	}
	_, perms, err := s.computeVisible(r, u)
	if err != nil {
		return false, err
	}
	return perms[inv.ContainerID].Has(auth.ContainerAdmin | auth.Permission(inv.Permissions)), nil
}

func (s *Server) invitationGone(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusNotFound, "notfound", page{Title: "Invitation not valid",
		Error: "This invitation link is not valid: it was used, withdrawn or has expired. Ask for a new one."})
}

// GET /invite/{token}: accept as the logged-in user, or make an account.
func (s *Server) invitationPage(w http.ResponseWriter, r *http.Request) {
	inv, name, ok := s.invitation(w, r)
	if !ok {
		return
	}
	s.showInvitation(w, r, inv, name, http.StatusOK, inviteData{})
}

func (s *Server) showInvitation(w http.ResponseWriter, r *http.Request, inv state.Invitation, container string, code int, d inviteData) {
	d.Container, d.Perms, d.Expires, d.FormAction = container, auth.Permission(inv.Permissions).String(), inv.ExpiresAt, r.URL.Path
	p := page{Title: "Invitation to " + container}
	if si, ok := s.currentSession(r); ok && si.session.Stage == stageFull {
		d.Username, p.CSRF, p.Zone = si.user.Username, si.session.CSRF, s.zone(si.user)
	} else {
		tok, err := randomToken()
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		setCookie(w, LoginCookie, tok, 3600)
		p.CSRF = tok
	}
	p.Data = d
	s.render(w, r, code, "invite", p)
}

// validUsername: 1 to 64 of a-z, 0-9, ".", "_", "-", "@" (after
// lower-casing), starting with a letter or digit.
func validUsername(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for i, c := range n {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && strings.ContainsRune("._-@", c):
		default:
			return false
		}
	}
	return true
}

// POST /invite/{token}: as the logged-in user (the session's CSRF token),
// or a new account: username, password, confirm (the login form's CSRF
// cookie).
func (s *Server) acceptInvitation(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return
	}
	inv, container, ok := s.invitation(w, r)
	if !ok {
		return
	}
	hash := hashToken(r.PathValue("token"))
	now := s.now()
	if si, ok := s.currentSession(r); ok && si.session.Stage == stageFull {
		if !equalTokens(si.session.CSRF, r.PostFormValue("csrf")) {
			s.showInvitation(w, r, inv, container, http.StatusForbidden, inviteData{NameError: "The form expired; try again."})
			return
		}
		if _, err := s.st.AcceptInvitation(r.Context(), hash, si.user.ID, nil, now); errors.Is(err, state.ErrInvitationUsed) {
			s.invitationGone(w, r)
			return
		} else if err != nil {
			s.serverError(w, r, err)
			return
		}
		s.log.Info("invitation accepted", "invitation_id", inv.ID, "user_id", si.user.ID, "container_id", inv.ContainerID)
		s.appendAudit(r, audit.Entry{ContainerID: inv.ContainerID, ActorKind: audit.ActorUser, ActorID: si.user.ID,
			Action: "invitation accepted", ObjectKind: "invitation", ObjectID: inv.ID, Address: clientIP(r), Status: http.StatusSeeOther})
		http.Redirect(w, r, fmt.Sprintf("/container/%d", inv.ContainerID), http.StatusSeeOther)
		return
	}
	c, err := r.Cookie(LoginCookie)
	if err != nil || !equalTokens(c.Value, r.PostFormValue("csrf")) {
		s.showInvitation(w, r, inv, container, http.StatusForbidden, inviteData{NameError: "The form expired; fill it in again."})
		return
	}
	name := state.NormalizeUsername(r.PostFormValue("username"))
	d := inviteData{NameValue: name}
	pw := secret.New(r.PostFormValue("password"))
	switch {
	case !validUsername(name):
		d.NameError = "A user name is 1 to 64 letters, digits, dots, dashes, underscores or @, starting with a letter or digit."
	case r.PostFormValue("password") != r.PostFormValue("confirm"):
		d.PassError = "The password and its confirmation differ."
	default:
		if err := auth.CheckPassword(name, pw); err != nil {
			d.PassError = strings.ToUpper(err.Error()[:1]) + err.Error()[1:] + "."
		}
	}
	if d.NameError != "" || d.PassError != "" {
		s.showInvitation(w, r, inv, container, http.StatusBadRequest, d)
		return
	}
	release, ok := s.passwordSlot(w, r)
	if !ok {
		return
	}
	pwHash, err := auth.HashPassword(pw)
	release()
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	u := state.User{Username: name, PasswordHash: pwHash}
	id, err := s.st.AcceptInvitation(r.Context(), hash, 0, &u, now)
	switch {
	case errors.Is(err, state.ErrUserExists):
		d.NameError = "That user name is taken; choose another. If it is yours, log in first and open this link again."
		s.showInvitation(w, r, inv, container, http.StatusConflict, d)
		return
	case errors.Is(err, state.ErrInvitationUsed):
		s.invitationGone(w, r)
		return
	case err != nil:
		s.serverError(w, r, err)
		return
	}
	u, err = s.st.UserByID(r.Context(), id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if err := s.startSession(w, r, u, stageFull); err != nil {
		s.serverError(w, r, err)
		return
	}
	setCookie(w, LoginCookie, "", -1)
	s.log.Info("invitation accepted by a new user", "invitation_id", inv.ID, "user_id", id, "container_id", inv.ContainerID)
	s.appendAudit(r, audit.Entry{ContainerID: inv.ContainerID, ActorKind: audit.ActorUser, ActorID: id,
		Action: "invitation accepted by a new user", ObjectKind: "invitation", ObjectID: inv.ID, Address: clientIP(r), Status: http.StatusSeeOther})
	http.Redirect(w, r, fmt.Sprintf("/container/%d", inv.ContainerID), http.StatusSeeOther)
}

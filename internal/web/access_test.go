package web

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/state"
)

var inviteLinkRE = regexp.MustCompile(`<code class="key" id="invite-link">https://[^/]+(/invite/[A-Za-z0-9_-]+)</code>`)

// invite makes an invitation link as b on container c, and returns its
// path.
func invite(t *testing.T, b *browser, c int64, perms ...string) string {
	t.Helper()
	_, body := b.get(fmt.Sprintf("/container/%d/access", c))
	resp, body := b.post(fmt.Sprintf("/container/%d/invite", c), url.Values{"csrf": {csrfOf(t, body)}, "permissions": perms,
		"note": {"for <b>someone</b>"}, "days": {"7"}})
	if resp.StatusCode != 201 {
		t.Fatalf("invite: %d\n%s", resp.StatusCode, body)
	}
	m := inviteLinkRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no invitation link on the page:\n%s", body)
	}
	if !strings.Contains(body, "for &lt;b&gt;someone&lt;/b&gt;") {
		t.Errorf("the pending invitation's note is not shown escaped")
	}
	return m[1]
}

// TestInvitation: an admin invites; the link makes a new user a member
// with the permissions given, once; a logged-in user joins with the link;
// withdrawn and expired links are refused alike.
func TestInvitation(t *testing.T) {
	ui := newTestUI(t)
	ctx := context.Background()
	acme, _ := ui.st.CreateContainer(ctx, ui.root, "acme")
	other, _ := ui.st.CreateContainer(ctx, ui.root, "other")
	ui.user("admin", "admin passphrase here", false, map[int64]auth.Permission{acme: auth.Read | auth.ContainerAdmin | auth.AlertAssign})
	ui.user("existing", "existing user passphrase", false, map[int64]auth.Permission{other: auth.Read})
	admin := ui.browser()
	admin.login("admin", "admin passphrase here")

	// Not more than the inviter holds.
	_, body := admin.get(fmt.Sprintf("/container/%d/access", acme))
	resp, body := admin.post(fmt.Sprintf("/container/%d/invite", acme), url.Values{"csrf": {csrfOf(t, body)}, "permissions": {"READ", "WEBHOOKS"}})
	if resp.StatusCode != 400 || !strings.Contains(body, "You cannot give permissions you do not hold here: WEBHOOKS") {
		t.Fatalf("inviting with more than held: %d\n%s", resp.StatusCode, body)
	}
	link := invite(t, admin, acme, "READ", "ALERT_ASSIGN")

	// A new user makes an account with the link: bad input first.
	nb := ui.browser()
	resp, body = nb.get(link)
	if resp.StatusCode != 200 || !strings.Contains(body, "READ|ALERT_ASSIGN") {
		t.Fatalf("invitation page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = nb.post(link, url.Values{"csrf": {csrfOf(t, body)}, "username": {"New <User>"}, "password": {"a fine passphrase"}, "confirm": {"a fine passphrase"}})
	if resp.StatusCode != 400 || !strings.Contains(body, `id="username-error"`) {
		t.Fatalf("a bad user name: %d\n%s", resp.StatusCode, body)
	}
	resp, body = nb.post(link, url.Values{"csrf": {csrfOf(t, body)}, "username": {"existing"}, "password": {"a fine passphrase"}, "confirm": {"a fine passphrase"}})
	if resp.StatusCode != 409 || !strings.Contains(body, "That user name is taken") {
		t.Fatalf("a taken user name: %d\n%s", resp.StatusCode, body)
	}
	resp, body = nb.post(link, url.Values{"csrf": {csrfOf(t, body)}, "username": {"newbie"}, "password": {"password1234"}, "confirm": {"password1234"}})
	if resp.StatusCode != 400 || !strings.Contains(body, `id="password-error"`) {
		t.Fatalf("a common password: %d\n%s", resp.StatusCode, body)
	}
	resp, body = nb.post(link, url.Values{"csrf": {"forged"}, "username": {"newbie"}, "password": {"a fine passphrase"}, "confirm": {"a fine passphrase"}})
	if resp.StatusCode != 403 {
		t.Fatalf("a forged form: %d", resp.StatusCode)
	}
	resp, _ = nb.post(link, url.Values{"csrf": {csrfOf(t, body)}, "username": {"newbie"}, "password": {"a fine passphrase"}, "confirm": {"a fine passphrase"}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != fmt.Sprintf("/container/%d", acme) {
		t.Fatalf("accepting: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ = nb.get(fmt.Sprintf("/container/%d", acme)); resp.StatusCode != 200 {
		t.Fatalf("the new member's view of the container: %d", resp.StatusCode)
	}
	if resp, _ = nb.get(fmt.Sprintf("/container/%d", other)); resp.StatusCode != 404 {
		t.Errorf("the new member sees another container: %d", resp.StatusCode)
	}
	u, err := ui.st.UserByName(ctx, "newbie")
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := ui.st.Memberships(ctx, u.ID)
	if len(ms) != 1 || ms[0].ContainerID != acme || auth.Permission(ms[0].Permissions) != auth.Read|auth.AlertAssign {
		t.Errorf("the new member's grants: %+v", ms)
	}
	// Once only, and the same answer as for a link that never was.
	third := ui.browser()
	resp, body = third.get(link)
	if resp.StatusCode != 404 || !strings.Contains(body, "it was used, withdrawn or has expired") {
		t.Errorf("a used link: %d", resp.StatusCode)
	}
	resp2, body2 := third.get("/invite/" + strings.Repeat("A", 43))
	if resp2.StatusCode != 404 || body2 != body {
		t.Errorf("an unknown link answers differently from a used one")
	}

	// A logged-in user joins with a link.
	link = invite(t, admin, acme, "READ")
	eb := ui.browser()
	eb.login("existing", "existing user passphrase")
	_, body = eb.get(link)
	if !strings.Contains(body, "Join as existing") {
		t.Fatalf("the invitation page for a logged-in user:\n%s", body)
	}
	resp, _ = eb.post(link, url.Values{"csrf": {csrfOf(t, body)}})
	if resp.StatusCode != 303 {
		t.Fatalf("joining: %d", resp.StatusCode)
	}
	if resp, _ = eb.get(fmt.Sprintf("/container/%d", acme)); resp.StatusCode != 200 {
		t.Errorf("the joined user does not see the container: %d", resp.StatusCode)
	}

	// Withdrawn and expired links.
	link = invite(t, admin, acme, "READ")
	_, body = admin.get(fmt.Sprintf("/container/%d/access", acme))
	ids := regexp.MustCompile(`/invitation/(\d+)/withdraw`).FindAllStringSubmatch(body, -1)
	if len(ids) != 1 {
		t.Fatalf("pending invitations: %v", ids)
	}
	if resp, _ = admin.post(fmt.Sprintf("/container/%d/invitation/%s/withdraw", acme, ids[0][1]), url.Values{"csrf": {csrfOf(t, body)}}); resp.StatusCode != 303 {
		t.Fatalf("withdrawing: %d", resp.StatusCode)
	}
	if resp, _ = ui.browser().get(link); resp.StatusCode != 404 {
		t.Errorf("a withdrawn link: %d", resp.StatusCode)
	}
	link = invite(t, admin, acme, "READ")
	ui.advance(8 * 24 * time.Hour)
	if resp, _ = ui.browser().get(link); resp.StatusCode != 404 {
		t.Errorf("an expired link: %d", resp.StatusCode)
	}
}

// TestAccessManagement: who may manage access, changing and removing a
// member, stopping inheritance (not without an admin of its own), and
// requiring a second factor.
func TestAccessManagement(t *testing.T) {
	ui := newTestUI(t)
	ctx := context.Background()
	msp, _ := ui.st.CreateContainer(ctx, ui.root, "msp")
	acme, _ := ui.st.CreateContainer(ctx, msp, "acme")
	other, _ := ui.st.CreateContainer(ctx, ui.root, "other")
	ui.user("mspadmin", "msp admin passphrase", false, map[int64]auth.Permission{msp: auth.Read | auth.ContainerAdmin | auth.AlertAssign})
	ui.user("reader", "reader user passphrase", false, map[int64]auth.Permission{acme: auth.Read})
	rootUser := ui.user("boss", "the root user passphrase", false, map[int64]auth.Permission{acme: auth.All})
	_ = rootUser

	mb := ui.browser()
	mb.login("mspadmin", "msp admin passphrase")
	rb := ui.browser()
	rb.login("reader", "reader user passphrase")

	// A reader may not manage access; a container of another tenant is
	// not found.
	if resp, _ := rb.get(fmt.Sprintf("/container/%d/access", acme)); resp.StatusCode != 403 {
		t.Errorf("a reader on the access page: %d", resp.StatusCode)
	}
	if resp, _ := mb.get(fmt.Sprintf("/container/%d/access", other)); resp.StatusCode != 404 {
		t.Errorf("another tenant's access page: %d", resp.StatusCode)
	}
	resp, body := mb.get(fmt.Sprintf("/container/%d/access", acme))
	if resp.StatusCode != 200 || !strings.Contains(body, ">reader<") || !strings.Contains(body, ">mspadmin<") {
		t.Fatalf("the access page: %d\n%s", resp.StatusCode, body)
	}
	// boss holds flags mspadmin does not: not editable by mspadmin.
	readerID := regexp.MustCompile(`/member/(\d+)/remove`).FindAllStringSubmatch(body, -1)
	if len(readerID) != 1 {
		t.Fatalf("editable members: %v (boss holds more than mspadmin and must not be editable)", readerID)
	}
	resp, _ = mb.post(fmt.Sprintf("/container/%d/member/%s", acme, readerID[0][1]), url.Values{"csrf": {csrfOf(t, body)},
		"permissions": {"READ", "ALERT_ASSIGN"}})
	if resp.StatusCode != 303 {
		t.Fatalf("changing a member: %d", resp.StatusCode)
	}
	u, _ := ui.st.UserByName(ctx, "reader")
	if log, _ := ui.st.AuditLog(ctx, state.AuditFilter{Containers: []int64{acme}, Limit: 1}); len(log) != 1 ||
		log[0].Detail != fmt.Sprintf("user %d (reader) now holds READ|ALERT_ASSIGN", u.ID) || log[0].ObjectKind != "container" {
		t.Errorf("the audit entry of the change: %+v", log)
	}
	ms, _ := ui.st.Memberships(ctx, u.ID)
	if len(ms) != 1 || auth.Permission(ms[0].Permissions) != auth.Read|auth.AlertAssign {
		t.Errorf("reader's grants: %+v", ms)
	}
	b2, _ := ui.st.UserByName(ctx, "boss")
	resp, body = mb.post(fmt.Sprintf("/container/%d/member/%d/remove", acme, b2.ID), url.Values{"csrf": {csrfOf(t, body)}})
	if resp.StatusCode != 403 || !strings.Contains(body, "holds permissions you do not") {
		t.Errorf("removing a member who holds more: %d", resp.StatusCode)
	}
	// Removing the reader ends their sessions at once.
	resp, _ = mb.post(fmt.Sprintf("/container/%d/member/%s/remove", acme, readerID[0][1]), url.Values{"csrf": {csrfOf(t, body)}})
	if resp.StatusCode != 303 {
		t.Fatalf("removing a member: %d", resp.StatusCode)
	}
	if resp, _ := rb.get("/"); resp.StatusCode != 303 {
		t.Errorf("a removed member is still logged in: %d", resp.StatusCode)
	}

	// Stopping inheritance: the msp admin loses sight of acme; boss (a
	// member of acme) keeps it.
	_, body = mb.get(fmt.Sprintf("/container/%d/access", acme))
	resp, _ = mb.post(fmt.Sprintf("/container/%d/settings", acme), url.Values{"csrf": {csrfOf(t, body)}, "require_totp": {"1"}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/access" {
		t.Fatalf("stopping inheritance: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := mb.get(fmt.Sprintf("/container/%d", acme)); resp.StatusCode != 404 {
		t.Errorf("the msp admin still sees acme after it stopped inheritance: %d", resp.StatusCode)
	}
	bb := ui.browser()
	bb.login("boss", "the root user passphrase")
	if resp, _ := bb.get("/"); resp.StatusCode != 303 || resp.Header.Get("Location") != "/totp" {
		t.Errorf("acme requires a second factor; boss is sent to %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A container without an admin of its own cannot stop inheritance.
	beta, _ := ui.st.CreateContainer(ctx, msp, "beta")
	_, body = mb.get(fmt.Sprintf("/container/%d/access", beta))
	resp, body = mb.post(fmt.Sprintf("/container/%d/settings", beta), url.Values{"csrf": {csrfOf(t, body)}})
	if resp.StatusCode != 400 || !strings.Contains(body, "before you stop inheritance") {
		t.Errorf("stopping inheritance without an admin: %d", resp.StatusCode)
	}
}

// TestTimeZone: times are shown in the user's zone; a bad zone is refused
// beside the field.
func TestTimeZone(t *testing.T) {
	ui := newTestUI(t)
	ui.user("tz", "time zone passphrase", false, map[int64]auth.Permission{ui.root: auth.Read})
	b := ui.browser()
	b.login("tz", "time zone passphrase")
	_, body := b.get("/account")
	resp, body := b.post("/account/zone", url.Values{"csrf": {csrfOf(t, body)}, "zone": {"Mars/Olympus_Mons"}})
	if resp.StatusCode != 400 || !strings.Contains(body, `id="zone-error"`) || !strings.Contains(body, "Mars/Olympus_Mons") {
		t.Fatalf("a bad zone: %d\n%s", resp.StatusCode, body)
	}
	for _, bad := range []string{"Local", "../../etc/passwd", strings.Repeat("A", 100)} {
		if resp, _ := b.post("/account/zone", url.Values{"csrf": {csrfOf(t, body)}, "zone": {bad}}); resp.StatusCode != 400 {
			t.Errorf("zone %q: %d", bad, resp.StatusCode)
		}
	}
	if resp, _ = b.post("/account/zone", url.Values{"csrf": {csrfOf(t, body)}, "zone": {"Asia/Tokyo"}}); resp.StatusCode != 303 {
		t.Fatalf("setting a zone: %d", resp.StatusCode)
	}
	_, body = b.get("/sessions")
	// The clock is 2026-11-25 12:00 UTC: 21:00 in Tokyo.
	if !strings.Contains(body, `<time datetime="2026-11-25T12:00:00Z">2026-11-25 21:00 JST</time>`) {
		t.Errorf("the sessions page does not show Tokyo time:\n%s", body)
	}
}

// TestInvitationLinkUsesExternalURL: behind a proxy the link names the
// address users reach the hub at, not the host of the request.
func TestInvitationLinkUsesExternalURL(t *testing.T) {
	ui := newTestUIWith(t, func(c *Config) { c.ExternalURL = "https://sonde.example.com/" })
	ui.user("boss", "the boss passphrase", false, map[int64]auth.Permission{ui.root: auth.All})
	b := ui.browser()
	b.login("boss", "the boss passphrase")
	_, body := b.get(fmt.Sprintf("/container/%d/access", ui.root))
	_, body = b.post(fmt.Sprintf("/container/%d/invite", ui.root), url.Values{"csrf": {csrfOf(t, body)}, "permissions": {"READ"}})
	if !strings.Contains(body, `id="invite-link">https://sonde.example.com/invite/`) {
		t.Errorf("the link does not use the external URL:\n%s", body)
	}
}

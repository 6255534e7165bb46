package web

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// TestAuditLogFromTheUI: a change through a form is in the audit log with
// the user, the route, the object, the container, the address and the
// reason; a refused one is not; logins are; the log page shows a user the
// containers where they hold VIEW_LOG only.
func TestAuditLogFromTheUI(t *testing.T) {
	ui := newTestUI(t)
	ctx := context.Background()
	acme, _ := ui.st.CreateContainer(ctx, ui.root, "acme")
	globex, _ := ui.st.CreateContainer(ctx, ui.root, "globex")
	uid := ui.user("ops", "ops user passphrase", false, map[int64]auth.Permission{acme: auth.Read | auth.ContainerTokens | auth.ViewLog | auth.API})
	ui.user("gx", "globex user passphrase", false, map[int64]auth.Permission{globex: auth.Read | auth.ViewLog})
	b := ui.browser()
	b.login("ops", "ops user passphrase")
	_, body := b.get("/tokens")
	csrf := csrfOf(t, body)
	if resp, _ := b.post("/tokens", url.Values{"csrf": {csrf}, "container": {fmt.Sprint(acme)}, "name": {"ci"}, "permissions": {"READ"}}); resp.StatusCode != 201 {
		t.Fatalf("creating a token: %d", resp.StatusCode)
	}
	// Refused: more than held.
	if resp, _ := b.post("/tokens", url.Values{"csrf": {csrf}, "container": {fmt.Sprint(acme)}, "name": {"x"}, "permissions": {"WEBHOOKS"}}); resp.StatusCode != 400 {
		t.Fatalf("a refused token: %d", resp.StatusCode)
	}
	log, err := ui.st.AuditLog(ctx, state.AuditFilter{Containers: []int64{0, acme}})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action)
	}
	if len(log) != 2 || log[0].Action != "POST /tokens" || log[1].Action != "login: full" {
		t.Fatalf("the audit log: %q", actions)
	}
	e := log[0]
	if e.ActorKind != "user" || e.ActorID != uid || e.ContainerID != acme || e.ObjectKind != "token" || e.ObjectID == 0 ||
		e.Address != "127.0.0.1" || e.Status != 201 {
		t.Errorf("the entry: %+v", e)
	}
	// The page: ops sees acme's entries; gx sees none of them.
	_, body = b.get("/log")
	if !strings.Contains(body, "POST /tokens") || !strings.Contains(body, "user ops") {
		t.Errorf("the log page:\n%s", body)
	}
	if resp, _ := b.get(fmt.Sprintf("/log?container=%d", globex)); resp.StatusCode != 404 {
		t.Errorf("another tenant's log: %d", resp.StatusCode)
	}
	g := ui.browser()
	g.login("gx", "globex user passphrase")
	if _, body := g.get("/log"); strings.Contains(body, "POST /tokens") || !strings.Contains(body, "Nothing yet") {
		t.Errorf("the globex user sees acme's log:\n%s", body)
	}
	// A failed login of an unknown name stores no name.
	ui.browser().login("nobody-typed-a-password-here", "x")
	all, _ := ui.st.AuditLog(ctx, state.AuditFilter{Containers: []int64{0}})
	if all[0].Action != "login failed" || all[0].ActorID != 0 || strings.Contains(fmt.Sprint(all), "nobody-typed") {
		t.Errorf("a failed login: %+v", all[0])
	}
}

// TestChangesAreRateLimited: a user's form posts are limited (the audit
// log keeps each for 400 days); the limit refills with time.
func TestChangesAreRateLimited(t *testing.T) {
	ui := newTestUI(t)
	ui.user("busy", "busy user passphrase", false, map[int64]auth.Permission{ui.root: auth.Read})
	b := ui.browser()
	b.login("busy", "busy user passphrase")
	_, body := b.get("/account")
	csrf := csrfOf(t, body)
	for i := range PostBurst {
		if resp, _ := b.post("/account/zone", url.Values{"csrf": {csrf}, "zone": {"UTC"}}); resp.StatusCode != 303 {
			t.Fatalf("change %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, body := b.post("/account/zone", url.Values{"csrf": {csrf}, "zone": {"UTC"}})
	if resp.StatusCode != 429 || !strings.Contains(body, "Wait a few seconds") {
		t.Fatalf("change %d: %d", PostBurst+1, resp.StatusCode)
	}
	ui.advance(2 * time.Second)
	if resp, _ := b.post("/account/zone", url.Values{"csrf": {csrf}, "zone": {"UTC"}}); resp.StatusCode != 303 {
		t.Errorf("after a pause: %d", resp.StatusCode)
	}
	// Another user is not slowed down.
	ui.user("calm", "calm user passphrase", false, map[int64]auth.Permission{ui.root: auth.Read})
	c := ui.browser()
	c.login("calm", "calm user passphrase")
	_, body = c.get("/account")
	if resp, _ := c.post("/account/zone", url.Values{"csrf": {csrfOf(t, body)}, "zone": {"UTC"}}); resp.StatusCode != 303 {
		t.Errorf("another user: %d", resp.StatusCode)
	}
}

package web

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/alert"
	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/state"
)

var fieldIDRE = regexp.MustCompile(`<(?:input|select|textarea) id="([^"]+)"`)

// formsAccessible checks that every field of a page has a label bound to
// it, and that the page has no inline style.
func formsAccessible(t *testing.T, page, body string) {
	t.Helper()
	for _, m := range fieldIDRE.FindAllStringSubmatch(body, -1) {
		if !strings.Contains(body, `for="`+m[1]+`"`) {
			t.Errorf("%s: field %s has no label", page, m[1])
		}
	}
	if strings.Contains(body, " style=") || strings.Contains(body, "<style") {
		t.Errorf("%s has inline style", page)
	}
}

// TestConditionsPage: create, list, change and delete a condition
// through the forms; a bad expression is shown beside the field with
// the input kept; other tenants, missing permissions and CSRF.
func TestConditionsPage(t *testing.T) {
	ui := newTestUI(t)
	ctx := context.Background()
	acme, _ := ui.st.CreateContainer(ctx, ui.root, "acme")
	other, _ := ui.st.CreateContainer(ctx, ui.root, "other")
	hidden := state.Condition{ContainerID: other, Name: "other-tenant-condition", Kind: alert.KindExpression, Type: "disk",
		Expression: "item.x > 1", Severity: int(alert.Warning)}
	if err := alert.Validate(&hidden); err != nil {
		t.Fatal(err)
	}
	hiddenID, err := ui.st.CreateCondition(ctx, hidden, ui.clock())
	if err != nil {
		t.Fatal(err)
	}
	ui.user("author", "author passphrase ok", false, map[int64]auth.Permission{acme: auth.Read | auth.RuleManagement})
	ui.user("viewer", "viewer passphrase ok", false, map[int64]auth.Permission{acme: auth.Read})

	b := ui.browser()
	b.login("author", "author passphrase ok")
	resp, body := b.get("/conditions")
	if resp.StatusCode != 200 || strings.Contains(body, "other-tenant-condition") || strings.Contains(body, fmt.Sprintf(`value="%d"`, other)) {
		t.Fatalf("conditions page: %d\n%s", resp.StatusCode, body)
	}
	formsAccessible(t, "conditions page", body)
	csrf := csrfOf(t, body)
	form := url.Values{"csrf": {csrf}, "container": {fmt.Sprint(acme)}, "name": {"disk <full>"}, "kind": {"expression"},
		"type": {"disk"}, "expression": {"item.percentUsed > and 3"}, "labels": {"prod, core"}, "severity": {"CRITICAL"},
		"ticks": {"2"}, "clear_ticks": {"1"}}

	// A bad expression: 400, the reason beside the field, the input kept.
	resp, body = b.post("/conditions", form)
	if resp.StatusCode != 400 || !strings.Contains(body, `id="cf-expression-err"`) || !strings.Contains(body, "Position 19 (line 1, column 20): expected an operand") ||
		!strings.Contains(body, `aria-describedby="cf-expression-help cf-expression-err"`) {
		t.Fatalf("bad expression: %d\n%s", resp.StatusCode, body)
	}
	for _, kept := range []string{"item.percentUsed &gt; and 3</textarea>", `value="disk &lt;full&gt;"`, `value="prod, core"`,
		`<option value="CRITICAL" selected>`, `name="ticks" type="number" min="1" max="100" value="2"`} {
		if !strings.Contains(body, kept) {
			t.Errorf("the form shown again lost %s", kept)
		}
	}
	formsAccessible(t, "conditions form with errors", body)
	if cs, _ := ui.st.Conditions(ctx, acme); len(cs) != 0 {
		t.Fatalf("a bad condition was stored: %+v", cs)
	}
	// Several mistakes are shown at once.
	several := cloneForm(form)
	several.Set("name", "")
	if resp, body := b.post("/conditions", several); resp.StatusCode != 400 || !strings.Contains(body, `id="cf-name-err"`) || !strings.Contains(body, `id="cf-expression-err"`) {
		t.Errorf("no name and a bad expression: %d", resp.StatusCode)
	}
	// A bad tick count is shown beside its field.
	bad := cloneForm(form)
	bad.Set("expression", "item.percentUsed > 90")
	bad.Set("ticks", "0")
	if resp, body := b.post("/conditions", bad); resp.StatusCode != 400 || !strings.Contains(body, `id="cf-ticks-err"`) {
		t.Errorf("ticks 0: %d", resp.StatusCode)
	}

	// Without the CSRF token: refused, nothing stored.
	nocsrf := cloneForm(form)
	nocsrf.Del("csrf")
	nocsrf.Set("expression", "item.percentUsed > 90")
	if resp, _ := b.post("/conditions", nocsrf); resp.StatusCode != 403 {
		t.Errorf("create without csrf: %d", resp.StatusCode)
	}
	if cs, _ := ui.st.Conditions(ctx, acme); len(cs) != 0 {
		t.Fatal("a condition was stored without the CSRF token")
	}

	// A good one.
	form.Set("expression", "item.percentUsed > 90")
	if resp, body := b.post("/conditions", form); resp.StatusCode != 303 || resp.Header.Get("Location") != "/conditions" {
		t.Fatalf("create: %d\n%s", resp.StatusCode, body)
	}
	cs, _ := ui.st.Conditions(ctx, acme)
	if len(cs) != 1 || cs[0].Name != "disk <full>" || cs[0].Severity != int(alert.Critical) || cs[0].Ticks != 2 ||
		strings.Join(cs[0].Labels, ",") != "prod,core" || cs[0].Message == "" {
		t.Fatalf("stored: %+v", cs)
	}
	id := cs[0].ID
	_, body = b.get("/conditions")
	for _, want := range []string{"disk &lt;full&gt;", "item.percentUsed &gt; 90", "CRITICAL", ">prod<", ">core<", "2 / 1",
		fmt.Sprintf(`action="/condition/%d/delete"`, id)} {
		if !strings.Contains(body, want) {
			t.Errorf("the list lacks %s", want)
		}
	}
	if strings.Contains(body, "<full>") {
		t.Error("the name is not escaped")
	}

	// Change it on its own page.
	resp, body = b.get(fmt.Sprintf("/condition/%d", id))
	if resp.StatusCode != 200 || !strings.Contains(body, "item.percentUsed &gt; 90</textarea>") {
		t.Fatalf("condition page: %d", resp.StatusCode)
	}
	formsAccessible(t, "condition page", body)
	upd := cloneForm(form)
	upd.Del("container")
	upd.Set("severity", "WARNING")
	upd.Set("expression", "item.percentUsed >")
	if resp, body := b.post(fmt.Sprintf("/condition/%d", id), upd); resp.StatusCode != 400 || !strings.Contains(body, `id="cf-expression-err"`) ||
		!strings.Contains(body, "item.percentUsed &gt;</textarea>") {
		t.Errorf("bad update: %d", resp.StatusCode)
	}
	upd.Set("expression", "item.percentUsed > 95")
	if resp, _ := b.post(fmt.Sprintf("/condition/%d", id), upd); resp.StatusCode != 303 {
		t.Fatalf("update: %d", resp.StatusCode)
	}
	if c, _ := ui.st.Condition(ctx, id); c.Severity != int(alert.Warning) || c.Expression != "item.percentUsed > 95" || c.ContainerID != acme {
		t.Errorf("after the update: %+v", c)
	}

	// Another tenant's condition is not found; in no list.
	for _, p := range []string{fmt.Sprintf("/condition/%d", hiddenID), "/condition/99999", "/condition/x"} {
		if resp, body := b.get(p); resp.StatusCode != 404 || strings.Contains(body, "other-tenant-condition") {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
	for _, p := range []string{fmt.Sprintf("/condition/%d/delete", hiddenID), fmt.Sprintf("/condition/%d", hiddenID)} {
		if resp, _ := b.post(p, cloneForm(upd)); resp.StatusCode != 404 {
			t.Errorf("POST %s: %d", p, resp.StatusCode)
		}
	}
	other2 := cloneForm(form)
	other2.Set("container", fmt.Sprint(other))
	if resp, _ := b.post("/conditions", other2); resp.StatusCode != 404 {
		t.Errorf("create in another tenant's container: %d", resp.StatusCode)
	}
	if c, err := ui.st.Condition(ctx, hiddenID); err != nil || c.Name != "other-tenant-condition" {
		t.Error("the other tenant's condition changed")
	}

	// A reader sees it but may neither create nor delete: 403.
	v := ui.browser()
	v.login("viewer", "viewer passphrase ok")
	resp, body = v.get("/conditions")
	if resp.StatusCode != 200 || !strings.Contains(body, "disk &lt;full&gt;") || strings.Contains(body, `action="/conditions"`) ||
		strings.Contains(body, "/delete") {
		t.Errorf("reader's conditions page: %d", resp.StatusCode)
	}
	vcsrf := csrfOf(t, body)
	if resp, body := v.post(fmt.Sprintf("/condition/%d/delete", id), url.Values{"csrf": {vcsrf}}); resp.StatusCode != 403 || !strings.Contains(body, "RULE_MANAGEMENT") {
		t.Errorf("delete without RULE_MANAGEMENT: %d", resp.StatusCode)
	}
	vform := cloneForm(form)
	vform.Set("csrf", vcsrf)
	if resp, _ := v.post("/conditions", vform); resp.StatusCode != 403 {
		t.Errorf("create without RULE_MANAGEMENT: %d", resp.StatusCode)
	}

	// Delete.
	if resp, _ := b.post(fmt.Sprintf("/condition/%d/delete", id), url.Values{"csrf": {csrf}}); resp.StatusCode != 303 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if _, err := ui.st.Condition(ctx, id); err == nil {
		t.Error("the condition is still there")
	}
	if _, body := b.get("/conditions"); strings.Contains(body, "disk &lt;full&gt;") {
		t.Error("the deleted condition is still listed")
	}
}

func cloneForm(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// TestRulesPage: a rule's secret is never shown after creation (one the
// hub generates is shown once), the delivery log, the permissions the
// API asks for, and other tenants.
func TestRulesPage(t *testing.T) {
	ui := newTestUIWith(t, func(c *Config) { c.MailConfigured, c.MailDomains = true, []string{"acme.example"} })
	ctx := context.Background()
	acme, _ := ui.st.CreateContainer(ctx, ui.root, "acme")
	other, _ := ui.st.CreateContainer(ctx, ui.root, "other")
	hiddenRule, err := ui.st.CreateRule(ctx, state.Rule{ContainerID: other, Name: "other-tenant-rule", Channel: alert.ChannelEmail,
		Recipients: []string{"ops@other.example"}, MinSeverity: int(alert.Warning), MinNotificationSeverity: 2}, ui.clock())
	if err != nil {
		t.Fatal(err)
	}
	ui.user("ops", "ops passphrase is ok", false, map[int64]auth.Permission{acme: auth.Read | auth.RuleManagement | auth.Webhooks})
	ui.user("nohooks", "nohooks passphrase ok", false, map[int64]auth.Permission{acme: auth.Read | auth.RuleManagement})
	ui.user("viewer", "viewer passphrase ok", false, map[int64]auth.Permission{acme: auth.Read})

	b := ui.browser()
	b.login("ops", "ops passphrase is ok")
	resp, body := b.get("/rules")
	if resp.StatusCode != 200 || strings.Contains(body, "other-tenant-rule") || !strings.Contains(body, `action="/rules"`) {
		t.Fatalf("rules page: %d\n%s", resp.StatusCode, body)
	}
	formsAccessible(t, "rules page", body)
	csrf := csrfOf(t, body)
	const sec = "s3cret-Value-that-is-long-enough"
	form := url.Values{"csrf": {csrf}, "container": {fmt.Sprint(acme)}, "name": {"on call <ops>"}, "channel": {"webhook"},
		"url": {"http://hooks.example.org/sonde"}, "secret": {sec}, "min_severity": {"ERROR"}, "min_notification_severity": {"MEDIUM"},
		"events": {"alerts"}, "labels": {"core"}, "days": {"mon", "fri"}, "from": {"08:00"}, "until": {"18:00"}, "timezone": {"Europe/Amsterdam"}}

	// http:// is refused beside the URL; the input is kept, not the secret.
	resp, body = b.post("/rules", form)
	if resp.StatusCode != 400 || !strings.Contains(body, `id="rf-url-err"`) || !strings.Contains(body, `value="http://hooks.example.org/sonde"`) ||
		!strings.Contains(body, `value="on call &lt;ops&gt;"`) || !strings.Contains(body, `value="mon" checked`) {
		t.Fatalf("http webhook: %d\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, sec) {
		t.Fatal("the form shown again holds the secret")
	}
	// A bad schedule is shown beside it.
	bad := cloneForm(form)
	bad.Set("url", "https://hooks.example.org/sonde")
	bad.Set("timezone", "Mars/Olympus")
	if resp, body := b.post("/rules", bad); resp.StatusCode != 400 || !strings.Contains(body, `id="rf-schedule-err"`) {
		t.Errorf("bad time zone: %d", resp.StatusCode)
	}
	// Too short a secret.
	bad.Set("timezone", "Europe/Amsterdam")
	bad.Set("secret", "short")
	if resp, body := b.post("/rules", bad); resp.StatusCode != 400 || !strings.Contains(body, `id="rf-secret-err"`) {
		t.Errorf("short secret: %d", resp.StatusCode)
	}

	form.Set("url", "https://hooks.example.org/sonde")
	if resp, body := b.post("/rules", form); resp.StatusCode != 303 {
		t.Fatalf("create: %d\n%s", resp.StatusCode, body)
	}
	rs, _ := ui.st.Rules(ctx, acme)
	if len(rs) != 1 || rs[0].Secret.Reveal() != sec || rs[0].MinSeverity != int(alert.Error) || rs[0].MinNotificationSeverity != 1 ||
		strings.Join(rs[0].Events, ",") != "alerts" || !strings.Contains(rs[0].Schedule, `"from":"08:00"`) {
		t.Fatalf("stored: %+v", rs)
	}
	hook := rs[0].ID
	_, body = b.get("/rules")
	if strings.Contains(body, sec) {
		t.Fatal("the rules page shows a secret")
	}
	for _, want := range []string{"on call &lt;ops&gt;", "https://hooks.example.org/sonde", "<td>set</td>", "alerts ERROR", "notifications MEDIUM",
		"mon fri 08:00–18:00 (Europe/Amsterdam)", fmt.Sprintf(`href="/rule/%d/deliveries"`, hook)} {
		if !strings.Contains(body, want) {
			t.Errorf("the list lacks %s", want)
		}
	}

	// Without a secret the hub makes one and shows it once.
	gen := cloneForm(form)
	gen.Set("name", "generated")
	gen.Del("secret")
	resp, body = b.post("/rules", gen)
	m := regexp.MustCompile(`id="new-secret">([A-Za-z0-9_-]{40,})<`).FindStringSubmatch(body)
	if resp.StatusCode != 201 || m == nil {
		t.Fatalf("generated secret: %d\n%s", resp.StatusCode, body)
	}
	if _, body := b.get("/rules"); strings.Contains(body, m[1]) || strings.Contains(body, sec) {
		t.Fatal("a secret is shown again")
	}
	// An e-mail rule.
	mail := url.Values{"csrf": {csrf}, "container": {fmt.Sprint(acme)}, "name": {"mail"}, "channel": {"email"},
		"to": {"ops@acme.example, noc@acme.example"}, "min_severity": {"WARNING"}, "min_notification_severity": {"LOW"}}
	if resp, body := b.post("/rules", mail); resp.StatusCode != 303 {
		t.Fatalf("e-mail rule: %d\n%s", resp.StatusCode, body)
	}
	mail.Set("to", "ops@elsewhere.example")
	if resp, body := b.post("/rules", mail); resp.StatusCode != 400 || !strings.Contains(body, "only to the domains acme.example") {
		t.Errorf("an e-mail rule to a domain not allowed: %d", resp.StatusCode)
	}
	if _, body := b.get("/rules"); !strings.Contains(body, "ops@acme.example, noc@acme.example") {
		t.Error("the e-mail rule's addresses are not listed")
	}
	mail.Set("to", "not an address")
	if resp, body := b.post("/rules", mail); resp.StatusCode != 400 || !strings.Contains(body, `id="rf-to-err"`) {
		t.Errorf("bad address: %d", resp.StatusCode)
	}

	// The delivery log, escaped.
	err = ui.st.InTx(ctx, func(tx *state.Tx) error {
		return tx.AddDelivery(state.Delivery{RuleID: hook, ContainerID: acme, EventKey: "alert.open:1", Event: "alert.open",
			Payload: []byte(`{}`), Status: "pending", NextAttemptAt: ui.clock(), CreatedAt: ui.clock()})
	})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := ui.st.Deliveries(ctx, hook, 10)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries: %v %v", ds, err)
	}
	d := ds[0]
	d.Status, d.Attempts, d.LastStatus, d.LastError = "failed", 3, 500, "<b>refused</b>"
	if ok, err := ui.st.UpdateDelivery(ctx, d, 0); !ok || err != nil {
		t.Fatalf("recording the delivery: %v %v", ok, err)
	}
	resp, body = b.get(fmt.Sprintf("/rule/%d/deliveries", hook))
	if resp.StatusCode != 200 || !strings.Contains(body, "alert.open") || !strings.Contains(body, "failed") ||
		!strings.Contains(body, "HTTP 500: &lt;b&gt;refused&lt;/b&gt;") || !strings.Contains(body, `<time datetime="2026-11-25T12:00:00Z">`) {
		t.Fatalf("deliveries page: %d\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, sec) {
		t.Fatal("the deliveries page shows the secret")
	}

	// Another tenant's rule: not found, for every route.
	if resp, _ := b.get(fmt.Sprintf("/rule/%d/deliveries", hiddenRule)); resp.StatusCode != 404 {
		t.Errorf("another tenant's deliveries: %d", resp.StatusCode)
	}
	if resp, _ := b.post(fmt.Sprintf("/rule/%d/delete", hiddenRule), url.Values{"csrf": {csrf}}); resp.StatusCode != 404 {
		t.Errorf("deleting another tenant's rule: %d", resp.StatusCode)
	}
	if _, err := ui.st.Rule(ctx, hiddenRule); err != nil {
		t.Error("the other tenant's rule is gone")
	}

	// RULE_MANAGEMENT without WEBHOOKS: the list, but no new rule (403).
	n := ui.browser()
	n.login("nohooks", "nohooks passphrase ok")
	resp, body = n.get("/rules")
	if resp.StatusCode != 200 || !strings.Contains(body, "on call &lt;ops&gt;") || strings.Contains(body, `action="/rules"`) || strings.Contains(body, sec) {
		t.Errorf("rules page without WEBHOOKS: %d", resp.StatusCode)
	}
	nform := cloneForm(form)
	nform.Set("csrf", csrfOf(t, body))
	if resp, body := n.post("/rules", nform); resp.StatusCode != 403 || !strings.Contains(body, "WEBHOOKS") {
		t.Errorf("create without WEBHOOKS: %d", resp.StatusCode)
	}
	// A reader: no rules listed (the API lists them only with
	// RULE_MANAGEMENT), 403 on the log and on delete.
	v := ui.browser()
	v.login("viewer", "viewer passphrase ok")
	resp, body = v.get("/rules")
	if resp.StatusCode != 200 || strings.Contains(body, "on call") {
		t.Errorf("reader's rules page: %d", resp.StatusCode)
	}
	if resp, _ := v.get(fmt.Sprintf("/rule/%d/deliveries", hook)); resp.StatusCode != 403 {
		t.Errorf("deliveries without RULE_MANAGEMENT: %d", resp.StatusCode)
	}
	if resp, _ := v.post(fmt.Sprintf("/rule/%d/delete", hook), url.Values{"csrf": {csrfOf(t, body)}}); resp.StatusCode != 403 {
		t.Errorf("delete without RULE_MANAGEMENT: %d", resp.StatusCode)
	}

	// Delete: without CSRF refused, with it done.
	if resp, _ := b.post(fmt.Sprintf("/rule/%d/delete", hook), url.Values{}); resp.StatusCode != 403 {
		t.Errorf("delete without csrf: %d", resp.StatusCode)
	}
	if resp, _ := b.post(fmt.Sprintf("/rule/%d/delete", hook), url.Values{"csrf": {csrf}}); resp.StatusCode != 303 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if _, err := ui.st.Rule(ctx, hook); err == nil {
		t.Error("the rule is still there")
	}
}

// TestMaintenancePage: a window ending at a time in the user's zone, one
// for an asset by duration, ending one early; other tenants and the
// permission.
func TestMaintenancePage(t *testing.T) {
	ui := newTestUI(t)
	ctx := context.Background()
	acme, _ := ui.st.CreateContainer(ctx, ui.root, "acme")
	other, _ := ui.st.CreateContainer(ctx, ui.root, "other")
	db, _ := ui.st.CreateAsset(ctx, acme, "db <1>")
	foreign, _ := ui.st.CreateAsset(ctx, other, "foreign")
	now := ui.clock()
	hiddenWin, err := ui.st.CreateMaintenance(ctx, state.Maintenance{ContainerID: other, StartsAt: now, EndsAt: now.Add(time.Hour),
		Reason: "other-tenant-window", CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	uid := ui.user("oncall", "oncall passphrase ok", false, map[int64]auth.Permission{acme: auth.Read | auth.AlertChange})
	if err := ui.st.SetTimeZone(ctx, uid, "Europe/Amsterdam", now); err != nil {
		t.Fatal(err)
	}
	ui.user("viewer", "viewer passphrase ok", false, map[int64]auth.Permission{acme: auth.Read})

	b := ui.browser()
	b.login("oncall", "oncall passphrase ok")
	resp, body := b.get("/maintenance")
	// 12:00 UTC is 13:00 in Amsterdam in November.
	if resp.StatusCode != 200 || strings.Contains(body, "other-tenant-window") || !strings.Contains(body, `value="2026-11-25T13:00"`) ||
		!strings.Contains(body, "Europe/Amsterdam") {
		t.Fatalf("maintenance page: %d\n%s", resp.StatusCode, body)
	}
	formsAccessible(t, "maintenance page", body)
	csrf := csrfOf(t, body)
	form := url.Values{"csrf": {csrf}, "container": {fmt.Sprint(acme)}, "starts": {""}, "ends": {"2026-11-25T15:30"}, "reason": {"upgrade <db>"}}

	// Errors beside the fields, the input kept.
	noEnd := cloneForm(form)
	noEnd.Set("ends", "")
	if resp, body := b.post("/maintenance", noEnd); resp.StatusCode != 400 || !strings.Contains(body, `id="mf-ends-err"`) || !strings.Contains(body, `value="upgrade &lt;db&gt;"`) {
		t.Errorf("no end: %d", resp.StatusCode)
	}
	past := cloneForm(form)
	past.Set("ends", "2026-11-25T12:30") // 11:30 UTC: before now
	if resp, body := b.post("/maintenance", past); resp.StatusCode != 400 || !strings.Contains(body, "must end after") {
		t.Errorf("end in the past: %d", resp.StatusCode)
	}
	far := cloneForm(form)
	far.Del("ends")
	far.Set("duration", "100d")
	if resp, body := b.post("/maintenance", far); resp.StatusCode != 400 || !strings.Contains(body, `id="mf-duration-err"`) || !strings.Contains(body, `value="100d"`) {
		t.Errorf("100 days: %d", resp.StatusCode)
	}
	foreignAsset := cloneForm(form)
	foreignAsset.Set("asset", fmt.Sprint(foreign))
	if resp, body := b.post("/maintenance", foreignAsset); resp.StatusCode != 400 || !strings.Contains(body, `id="mf-asset-err"`) {
		t.Errorf("another tenant's asset: %d", resp.StatusCode)
	}
	nocsrf := cloneForm(form)
	nocsrf.Del("csrf")
	if resp, _ := b.post("/maintenance", nocsrf); resp.StatusCode != 403 {
		t.Errorf("create without csrf: %d", resp.StatusCode)
	}
	if ws, _ := ui.st.MaintenanceWindows(ctx, []int64{acme}, now); len(ws) != 0 {
		t.Fatalf("windows stored by bad forms: %+v", ws)
	}

	// The end is read in the user's zone: 15:30 in Amsterdam is 14:30 UTC.
	if resp, body := b.post("/maintenance", form); resp.StatusCode != 303 {
		t.Fatalf("create: %d\n%s", resp.StatusCode, body)
	}
	// An asset's window by duration, starting later.
	asset := url.Values{"csrf": {csrf}, "container": {fmt.Sprint(acme)}, "asset": {fmt.Sprint(db)}, "starts": {"2026-11-26T09:00"}, "duration": {"2h"}}
	if resp, body := b.post("/maintenance", asset); resp.StatusCode != 303 {
		t.Fatalf("create for an asset: %d\n%s", resp.StatusCode, body)
	}
	ws, _ := ui.st.MaintenanceWindows(ctx, []int64{acme}, now)
	if len(ws) != 2 {
		t.Fatalf("windows: %+v", ws)
	}
	whole, forAsset := ws[0], ws[1]
	if !whole.StartsAt.Equal(now) || !whole.EndsAt.Equal(time.Date(2026, 11, 25, 14, 30, 0, 0, time.UTC)) || whole.AssetID != nil || whole.Reason != "upgrade <db>" {
		t.Errorf("the container's window: %+v", whole)
	}
	if forAsset.AssetID == nil || *forAsset.AssetID != db || !forAsset.StartsAt.Equal(time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)) ||
		forAsset.EndsAt.Sub(forAsset.StartsAt) != 2*time.Hour {
		t.Errorf("the asset's window: %+v", forAsset)
	}
	_, body = b.get("/maintenance")
	for _, want := range []string{"upgrade &lt;db&gt;", "db &lt;1&gt;", "whole container", ">active<", ">upcoming<",
		`<time datetime="2026-11-25T14:30:00Z">2026-11-25 15:30 CET</time>`, fmt.Sprintf(`action="/maintenance/%d/end"`, whole.ID)} {
		if !strings.Contains(body, want) {
			t.Errorf("the list lacks %s", want)
		}
	}
	if strings.Contains(body, "other-tenant-window") {
		t.Error("another tenant's window is listed")
	}

	// Another tenant's window cannot be ended; a reader may not end one.
	if resp, _ := b.post(fmt.Sprintf("/maintenance/%d/end", hiddenWin), url.Values{"csrf": {csrf}}); resp.StatusCode != 404 {
		t.Errorf("ending another tenant's window: %d", resp.StatusCode)
	}
	if _, err := ui.st.MaintenanceByID(ctx, hiddenWin); err != nil {
		t.Error("the other tenant's window is gone")
	}
	other2 := cloneForm(form)
	other2.Set("container", fmt.Sprint(other))
	if resp, _ := b.post("/maintenance", other2); resp.StatusCode != 404 {
		t.Errorf("a window in another tenant's container: %d", resp.StatusCode)
	}
	v := ui.browser()
	v.login("viewer", "viewer passphrase ok")
	resp, body = v.get("/maintenance")
	if resp.StatusCode != 200 || !strings.Contains(body, "upgrade &lt;db&gt;") || strings.Contains(body, "/end\"") || strings.Contains(body, `action="/maintenance"`) {
		t.Errorf("reader's maintenance page: %d", resp.StatusCode)
	}
	if resp, body := v.post(fmt.Sprintf("/maintenance/%d/end", whole.ID), url.Values{"csrf": {csrfOf(t, body)}}); resp.StatusCode != 403 || !strings.Contains(body, "ALERT_CHANGE") {
		t.Errorf("ending without ALERT_CHANGE: %d", resp.StatusCode)
	}

	// End early.
	if resp, _ := b.post(fmt.Sprintf("/maintenance/%d/end", whole.ID), url.Values{"csrf": {csrf}}); resp.StatusCode != 303 {
		t.Fatalf("end: %d", resp.StatusCode)
	}
	if ws, _ := ui.st.MaintenanceWindows(ctx, []int64{acme}, now); len(ws) != 1 || ws[0].ID != forAsset.ID {
		t.Errorf("after ending one: %+v", ws)
	}
	if resp, _ := b.post(fmt.Sprintf("/maintenance/%d/end", whole.ID), url.Values{"csrf": {csrf}}); resp.StatusCode != 404 {
		t.Errorf("ending it again: %d", resp.StatusCode)
	}
}

//go:build linux

package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hub"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/testutil"
	"github.com/sonde-monitoring/sonde/internal/totp"
	"github.com/sonde-monitoring/sonde/internal/web"
)

// ui drives the web UI in Debian's headless Chromium over WebDriver, and
// takes a screenshot after every step (test-artifacts/<test>/NN-step.png).
type ui struct {
	t    *testing.T
	b    *testutil.Browser
	base string
	shot int
}

func (u *ui) step(name string) {
	u.shot++
	u.b.Shot(u.t, fmt.Sprintf("%02d-%s", u.shot, name))
}

func (u *ui) open(path string) {
	u.t.Helper()
	if err := u.b.Navigate(u.base + path); err != nil {
		u.t.Fatalf("opening %s: %v", path, err)
	}
}

func (u *ui) find(css string) testutil.Element {
	u.t.Helper()
	e, err := u.b.WaitFor(css, 10*time.Second)
	if err != nil {
		u.t.Fatalf("on %s: %v", u.path(), err)
	}
	return e
}

func (u *ui) typeIn(css, text string) {
	u.t.Helper()
	e := u.find(css)
	if err := e.Clear(); err != nil {
		u.t.Fatal(err)
	}
	if err := e.SendKeys(text); err != nil {
		u.t.Fatal(err)
	}
}

func (u *ui) click(css string) {
	u.t.Helper()
	if err := u.find(css).Click(); err != nil {
		u.t.Fatalf("clicking %s on %s: %v", css, u.path(), err)
	}
}

// press clicks a link or a form's button and waits for the next page (the
// old document is marked; the new one is not).
func (u *ui) press(css string) {
	u.t.Helper()
	u.js(new(any), `window.__sondeOld = true; return null`)
	u.click(css)
	u.waitNewPage()
}

func (u *ui) waitNewPage() {
	u.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var loaded bool
		raw, err := u.b.ExecuteScript(`return !window.__sondeOld && document.readyState === "complete"`)
		if err == nil && json.Unmarshal(raw, &loaded) == nil && loaded {
			return
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("no new page after a submit on %s", u.path())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (u *ui) path() string {
	s, err := u.b.URL()
	if err != nil {
		u.t.Fatal(err)
	}
	return strings.TrimPrefix(s, u.base)
}

func (u *ui) text(css string) string {
	u.t.Helper()
	s, err := u.find(css).Text()
	if err != nil {
		u.t.Fatal(err)
	}
	return s
}

// js runs script and decodes its value into out.
func (u *ui) js(out any, script string, args ...any) {
	u.t.Helper()
	raw, err := u.b.ExecuteScript(script, args...)
	if err != nil {
		u.t.Fatalf("script on %s: %v", u.path(), err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		u.t.Fatalf("script value %s: %v", raw, err)
	}
}

func (u *ui) body() string {
	var s string
	u.js(&s, "return document.body.innerText")
	return s
}

func (u *ui) wantPath(want string) {
	u.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for u.path() != want {
		if time.Now().After(deadline) {
			u.t.Fatalf("at %s, want %s; the page says:\n%s", u.path(), want, u.body())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (u *ui) login(user, pw string) {
	u.t.Helper()
	u.open("/login")
	u.typeIn("#username", user)
	u.typeIn("#password", pw)
	u.press("main form button[type=submit]")
}

func (u *ui) logout() {
	u.t.Helper()
	u.press("form.logout button")
	u.wantPath("/login")
}

// The markup a monitored system may put in names: shown as text, never
// run (the CSP would block inline script too; this proves the escaping).
const (
	evilAsset = `<script>window.__xss="asset"</script>db-1`
	evilItem  = `<img src=x onerror="window.__xss='item'">cpu0`
)

// TestBrowserEndToEnd logs in as the first admin (one-time password, then
// a password of their own), turns on TOTP and logs in with it, browses to
// an asset whose names carry markup, opens a chart, acknowledges and
// closes an alert, creates and revokes a token, invites a user of another
// customer who sees nothing of the first, and is locked out after ten
// failures.
func TestBrowserEndToEnd(t *testing.T) {
	testutil.RequireBrowser(t)
	h := testutil.StartHub(t, hub.Config{State: web.PostgresStateForTest(t)})
	acme, globex := newContainer(h, 1, "acme"), newContainer(h, 1, "globex")
	tok := h.Token(acme, "READ", "API", "ASSET_MANAGEMENT", "INSERT_CHECK_DATA")
	asset := agentAsset(t, h, tok, acme, evilAsset)
	gtok := h.Token(globex, "READ", "API", "ASSET_MANAGEMENT", "INSERT_CHECK_DATA")
	gasset := agentAsset(t, h, gtok, globex, "globex-db")
	h.Must(201, "POST", fmt.Sprintf("/api/v1/container/%d/condition", acme), map[string]any{
		"name": "cpu high", "kind": "expression", "collector": "linux", "check": "cpu", "type": "cpu",
		"expression": "item.usage > 90", "severity": "CRITICAL", "message": "{item} at {item.usage}%", "ticks": 1,
	}, nil)
	now := time.Now().Unix()
	for i := range 10 {
		postCPU(t, h, tok, asset, now-int64(600-60*i), float64(10*i)+0.5)
		postCPU(t, h, gtok, gasset, now-int64(600-60*i), 5)
	}
	postCPU(t, h, tok, asset, now, 97.5) // opens an alert on the evil item

	// This run's screenshots only.
	old, _ := filepath.Glob(filepath.Join(testutil.ArtifactDir(t), "*.png"))
	for _, f := range old {
		os.Remove(f)
	}
	b := testutil.StartBrowserTLS(t, h.CA, h.Addr)
	u := &ui{t: t, b: b, base: "https://" + h.Addr}
	pwFile, err := os.ReadFile(filepath.Join(h.Dir, hub.AdminPasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	oneTime := strings.Split(strings.TrimSpace(string(pwFile)), "\n")[1]

	// A wrong password: the generic answer.
	u.login("admin", "not the password at all")
	if !strings.Contains(u.text("p.error"), "Wrong user name or password.") {
		t.Fatalf("a wrong password answers:\n%s", u.body())
	}
	u.step("login-wrong")
	// The one-time password, then one's own.
	u.login("admin", oneTime)
	u.wantPath("/password")
	u.step("password-forced")
	const adminPW = "a long admin passphrase for e2e"
	u.typeIn("#current", oneTime)
	u.typeIn("#new", adminPW)
	u.typeIn("#confirm", adminPW)
	u.press("main form button[type=submit]")
	u.wantPath("/")
	u.step("overview")

	// TOTP: the key from the page, a code from it, then a login with a
	// code of the next step (the setup used this one).
	u.open("/totp")
	var key string
	u.js(&key, `return document.querySelector("input[name=secret]").value`)
	if _, err := u.b.Find("figure.qr svg"); err != nil {
		t.Errorf("no QR code: %v", err)
	}
	sec := secret.New(key)
	code, err := totp.Code(sec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	u.typeIn("#totp", code)
	u.typeIn("#setup-password", adminPW)
	u.step("totp-setup")
	u.press("main form button[type=submit]")
	if n, _ := u.b.FindAll("ul.codes li"); len(n) == 0 {
		t.Fatalf("no recovery codes after the setup:\n%s", u.body())
	}
	u.step("totp-recovery-codes")
	u.logout()
	u.login("admin", adminPW)
	u.wantPath("/login/totp")
	next, _ := totp.Code(sec, time.Now().Add(totp.Period))
	u.typeIn("#totp", next)
	u.step("totp-login")
	u.press("main form button[type=submit]")
	u.wantPath("/")

	// To the asset through the tree: names with markup are text.
	u.press(fmt.Sprintf(`a[href="/container/%d"]`, acme))
	u.press(fmt.Sprintf(`a[href="/asset/%d"]`, asset))
	u.wantPath(fmt.Sprintf("/asset/%d", asset))
	if got := u.text("h1"); got != evilAsset {
		t.Errorf("the asset's name is shown as %q, want the text %q", got, evilAsset)
	}
	if !strings.Contains(u.body(), evilItem) {
		t.Errorf("the item's name is not shown as text")
	}
	var injected struct {
		XSS      any `json:"xss"`
		Elements int `json:"elements"`
	}
	u.js(&injected, `return {xss: window.__xss || null, elements: document.querySelectorAll("main script, main img").length}`)
	if injected.XSS != nil || injected.Elements != 0 {
		t.Errorf("markup from names ran or became elements: %+v", injected)
	}
	u.step("asset")
	// On a phone: the page fits the width (no sideways scrolling of the
	// page itself; wide tables scroll in their own box).
	if err := u.b.SetWindowSize(390, 844); err != nil {
		t.Fatal(err)
	}
	var overflow bool
	u.js(&overflow, `return document.documentElement.scrollWidth > window.innerWidth + 1`)
	if overflow {
		t.Errorf("the asset page is wider than a phone's screen")
	}
	u.step("asset-phone")
	u.open("/")
	u.js(&overflow, `return document.documentElement.scrollWidth > window.innerWidth + 1`)
	if overflow {
		t.Errorf("the overview is wider than a phone's screen")
	}
	u.step("overview-phone")
	if err := u.b.SetWindowSize(1280, 900); err != nil {
		t.Fatal(err)
	}
	u.open(fmt.Sprintf("/asset/%d", asset))
	// A chart of the usage.
	u.press(`a[href*="/chart?"][href*="metric=usage"]`)
	u.find("figure.chart-figure svg path.chart-line")
	u.press(`nav.ranges a[href*="range=1h"]`)
	var points int
	u.js(&points, `return document.querySelector("figure.chart-figure svg path.chart-line").getAttribute("d").split(/[ML]/).length - 1`)
	if points < 10 {
		t.Errorf("the 1 h chart draws %d points, want ≥ 10", points)
	}
	u.step("chart")

	// The alert: acknowledge (assign to oneself), then close.
	u.open("/alerts")
	if !strings.Contains(u.body(), evilItem) || !strings.Contains(u.body(), "CRITICAL") {
		t.Fatalf("the alerts page:\n%s", u.body())
	}
	u.typeIn(`td.actions form[action$="/assign"] input[name=text]`, "admin")
	u.press(`td.actions form[action$="/assign"] button`)
	u.wantPath("/alerts")
	var alerts []struct {
		ID         int64  `json:"alertId"`
		AssignedTo string `json:"assignedTo"`
		Status     string `json:"status"`
	}
	h.Must(200, "GET", fmt.Sprintf("/api/v1/asset/%d/alerts", asset), nil, &alerts)
	if len(alerts) != 1 || alerts[0].AssignedTo != "admin" {
		t.Fatalf("the alert after assigning: %+v", alerts)
	}
	u.step("alert-assigned")
	u.typeIn(`td.actions form[action$="/close"] input[name=text]`, "fixed by hand")
	u.press(`td.actions form[action$="/close"] button`)
	u.wantPath("/alerts")
	h.Must(200, "GET", fmt.Sprintf("/api/v1/asset/%d/alerts", asset), nil, &alerts)
	if len(alerts) != 1 || alerts[0].Status != "closed" {
		t.Fatalf("the alert after closing: %+v", alerts)
	}
	u.step("alert-closed")

	// A token: created, shown once, works; revoked, it does not.
	u.open("/tokens")
	u.typeIn("#tname", "e2e token")
	u.js(new(any), `const s = document.getElementById("tcont"); s.value = arguments[0]; return null`, fmt.Sprint(acme))
	u.click(`input[name=permissions][value=READ]`)
	u.click(`input[name=permissions][value=API]`)
	u.press(`form[action="/tokens"] button[type=submit]`)
	value := u.text("#new-token")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(value) {
		t.Fatalf("the new token shows as %q", value)
	}
	u.step("token-created")
	if code := tokenWorks(t, h, value); code != 200 {
		t.Fatalf("the new token answers %d", code)
	}
	u.open("/tokens")
	if strings.Contains(u.body(), value) {
		t.Errorf("the token's value is shown again")
	}
	// Revoke this token (the agents' tokens are in the list too).
	u.js(new(any), `window.__sondeOld = true
	for (const row of document.querySelectorAll("tbody tr")) {
		if (row.querySelector("th")?.textContent === "e2e token") { row.querySelector("form[action$='/revoke'] button").click(); }
	}
	return null`)
	u.waitNewPage()
	u.wantPath("/tokens")
	if strings.Contains(u.body(), "e2e token") {
		t.Errorf("the revoked token is still listed")
	}
	if code := tokenWorks(t, h, value); code != 401 {
		t.Errorf("a revoked token answers %d", code)
	}
	u.step("token-revoked")

	// A user of globex, by invitation: sees globex and nothing of acme.
	u.open(fmt.Sprintf("/container/%d/access", globex))
	u.click(`input[name=permissions][value=ALERT_ASSIGN]`)
	u.press(`form[action$="/invite"] button[type=submit]`)
	link := u.text("#invite-link")
	u.step("invitation")
	u.logout()
	if err := u.b.Navigate(link); err != nil {
		t.Fatal(err)
	}
	const globexPW = "globex user passphrase"
	u.typeIn("#username", "globex-ops")
	u.typeIn("#password", globexPW)
	u.typeIn("#confirm", globexPW)
	u.press("main form button[type=submit]")
	u.wantPath(fmt.Sprintf("/container/%d", globex))
	u.step("globex-user")
	for _, p := range []string{"/", "/alerts?status=closed", "/notifications", "/appliances", "/tokens", "/access", "/conditions", "/rules", "/maintenance"} {
		u.open(p)
		if body := u.body(); strings.Contains(body, "acme") || strings.Contains(body, "db-1") {
			t.Errorf("the globex user sees acme on %s:\n%s", p, body)
		}
	}
	for _, p := range []string{fmt.Sprintf("/container/%d", acme), fmt.Sprintf("/asset/%d", asset), fmt.Sprintf("/container/%d/access", acme)} {
		u.open(p)
		if got := u.text("h1"); got != "Not found" {
			t.Errorf("the globex user on %s sees %q", p, got)
		}
	}
	u.step("tenancy-not-found")
	u.logout()

	// Ten failures lock the account, even for the right password.
	for i := range 10 {
		u.login("globex-ops", "a wrong passphrase!")
		if msg := u.text("p.error"); i < 9 && msg != "Wrong user name or password." {
			t.Fatalf("failure %d answers %q", i+1, msg)
		}
	}
	u.login("globex-ops", globexPW)
	if msg := u.text("p.error"); !strings.Contains(msg, "Too many failed logins") {
		t.Errorf("after ten failures the right password answers %q", msg)
	}
	if u.path() != "/login" {
		t.Errorf("a locked account got in: at %s", u.path())
	}
	u.step("locked-out")
}

func newContainer(h *testutil.Hub, parent int64, name string) int64 {
	var out struct {
		ContainerID int64 `json:"containerId"`
	}
	h.Must(201, "POST", fmt.Sprintf("/api/v1/container/%d/container", parent), map[string]string{"name": name}, &out)
	return out.ContainerID
}

// agentAsset makes an asset with the linux collector as an agent does.
func agentAsset(t *testing.T, h *testutil.Hub, tok string, container int64, name string) int64 {
	t.Helper()
	var out struct {
		AssetID int64 `json:"assetId"`
	}
	call(t, h, tok, 201, "POST", fmt.Sprintf("/api/v1/container/%d/asset", container), fmt.Sprintf(`{"name":%q}`, name), &out)
	call(t, h, tok, 204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux", out.AssetID), "", nil)
	return out.AssetID
}

func postCPU(t *testing.T, h *testutil.Hub, tok string, asset, ts int64, usage float64) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"timestamp": ts, "data": map[string]any{"cpu": []map[string]any{
		{"name": evilItem, "usage": usage}, {"name": "cpu1", "usage": 3.25}}}})
	call(t, h, tok, 204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset), string(body), nil)
}

func tokenWorks(t *testing.T, h *testutil.Hub, tok string) int {
	t.Helper()
	return call(t, h, tok, 0, "GET", "/api/v1/container/id", "", nil)
}

// call sends body with tok; want 0 takes any status.
func call(t *testing.T, h *testutil.Hub, tok string, want int, method, path, body string, out any) int {
	t.Helper()
	req, err := newRequest(method, "https://"+h.Addr+path, body, tok)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if want != 0 && resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d", method, path, resp.StatusCode, want)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func newRequest(method, url, body, tok string) (*http.Request, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

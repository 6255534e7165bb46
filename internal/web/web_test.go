package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/alert"
	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/totp"
)

// testUI is the web UI over a real state store, served over TLS on
// 127.0.0.1 (the cookies are Secure), with a clock the test moves.
type testUI struct {
	t    *testing.T
	st   *state.Store
	srv  *httptest.Server
	root int64
	dir  string
	mu   sync.Mutex
	now  time.Time
}

func newTestUI(t *testing.T) *testUI {
	t.Helper()
	return newTestUIWith(t, nil)
}

// newTestUIWith is newTestUI with configure applied to the UI's Config.
func newTestUIWith(t *testing.T, configure func(*Config)) *testUI {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := state.Open(ctx, stateLocation(t, dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	root, _, err := st.EnsureRoot(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	ui := &testUI{t: t, st: st, root: root, dir: dir, now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	eng := alert.New(alert.Config{State: st, Now: ui.clock})
	if err := eng.Load(ctx); err != nil {
		t.Fatal(err)
	}
	cfg := Config{State: st, Now: ui.clock, AdminPasswordFile: filepath.Join(dir, "admin-password"), Version: "test", Alerts: eng}
	if configure != nil {
		configure(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ui.srv = httptest.NewTLSServer(s)
	t.Cleanup(ui.srv.Close)
	return ui
}

func (ui *testUI) clock() time.Time {
	ui.mu.Lock()
	defer ui.mu.Unlock()
	return ui.now
}

func (ui *testUI) advance(d time.Duration) {
	ui.mu.Lock()
	ui.now = ui.now.Add(d)
	ui.mu.Unlock()
}

// user creates a user with a password and memberships.
func (ui *testUI) user(name, pw string, mustChange bool, grants map[int64]auth.Permission) int64 {
	ui.t.Helper()
	h, err := auth.HashPassword(secret.New(pw))
	if err != nil {
		ui.t.Fatal(err)
	}
	ctx := context.Background()
	id, err := ui.st.CreateUser(ctx, state.User{Username: name, PasswordHash: h, MustChange: mustChange}, ui.clock())
	if err != nil {
		ui.t.Fatal(err)
	}
	for c, p := range grants {
		if err := ui.st.AddMembership(ctx, state.Membership{UserID: id, ContainerID: c, Permissions: uint64(p)}, ui.clock()); err != nil {
			ui.t.Fatal(err)
		}
	}
	return id
}

// browser is a client with a cookie jar that does not follow redirects.
type browser struct {
	t  *testing.T
	ui *testUI
	c  *http.Client
}

func (ui *testUI) browser() *browser {
	jar, _ := cookiejar.New(nil)
	shared := ui.srv.Client()
	c := &http.Client{Transport: shared.Transport, Jar: jar} // a jar of its own: one browser each
	c.Timeout = 30 * time.Second
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: ui.t, ui: ui, c: c}
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.ui.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.ui.srv.URL+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in %s", body)
	}
	return m[1]
}

// login fetches the form and posts it.
func (b *browser) login(user, pw string) (*http.Response, string) {
	b.t.Helper()
	_, body := b.get("/login")
	return b.post("/login", url.Values{"username": {user}, "password": {pw}, "csrf": {csrfOf(b.t, body)}})
}

func TestLoginPageHeaders(t *testing.T) {
	ui := newTestUI(t)
	resp, body := ui.browser().get("/login")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for h, want := range map[string]string{
		"Content-Security-Policy":   "frame-ancestors 'none'",
		"Strict-Transport-Security": "max-age=",
		"X-Content-Type-Options":    "nosniff",
		"Referrer-Policy":           "no-referrer",
	} {
		if !strings.Contains(resp.Header.Get(h), want) {
			t.Errorf("%s: %q", h, resp.Header.Get(h))
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	for _, f := range []string{`name="username"`, `name="password"`, `name="csrf"`} {
		if !strings.Contains(body, f) {
			t.Errorf("the form lacks %s", f)
		}
	}
	if strings.Contains(body, "<style") || regexp.MustCompile(`<script>|<script [^>]*>[^<]`).MatchString(body) || strings.Contains(body, " style=") {
		t.Error("the page has inline script or style")
	}
	c := resp.Header.Get("Set-Cookie")
	for _, want := range []string{LoginCookie + "=", "Secure", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(c, want) {
			t.Errorf("login cookie %q lacks %s", c, want)
		}
	}
	// The static files are served, with a type.
	for _, f := range []string{"/static/style.css", "/static/app.js"} {
		resp, _ := ui.browser().get(f)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") == "" {
			t.Errorf("%s: %d %q", f, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if resp, _ := ui.browser().get("/static/"); resp.StatusCode != 404 {
		t.Errorf("directory listing: %d", resp.StatusCode)
	}
}

func TestLoginFlow(t *testing.T) {
	ui := newTestUI(t)
	const first = "one-time-Password-4711"
	ui.user("admin", first, true, map[int64]auth.Permission{ui.root: auth.All})
	if err := os.WriteFile(filepath.Join(ui.dir, "admin-password"), []byte("admin\n"+first+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := ui.browser()
	// Not logged in: every page sends to /login.
	if resp, _ := b.get("/"); resp.StatusCode != 303 || resp.Header.Get("Location") != "/login" {
		t.Fatalf("/ without a session: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Wrong password and unknown user answer alike.
	resp1, body1 := b.login("admin", "wrong password here")
	resp2, body2 := b.login("nobody", "wrong password here")
	if resp1.StatusCode != 401 || resp2.StatusCode != 401 || !strings.Contains(body1, loginFailed) || !strings.Contains(body2, loginFailed) {
		t.Fatalf("failed logins: %d %d", resp1.StatusCode, resp2.StatusCode)
	}
	// No CSRF token: refused.
	if resp, _ := b.post("/login", url.Values{"username": {"admin"}, "password": {first}}); resp.StatusCode != 403 {
		t.Fatalf("login without csrf: %d", resp.StatusCode)
	}
	// The first login must change the password.
	resp, _ := b.login("Admin", first)
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/password" {
		t.Fatalf("first login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	sc := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
	if !strings.Contains(sc, SessionCookie+"=") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Fatalf("session cookie: %s", sc)
	}
	if resp, _ := b.get("/"); resp.StatusCode != 303 || resp.Header.Get("Location") != "/password" {
		t.Fatalf("/ before changing the password: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body := b.get("/password")
	csrf := csrfOf(t, body)
	for _, c := range []struct{ cur, next, confirm, want string }{
		{first, "short", "short", "at least 12"},
		{first, "Qwerty123456", "Qwerty123456", "common passwords"},
		{first, "a much better passphrase", "a different passphrase", "differ"},
		{"not the password", "a much better passphrase", "a much better passphrase", "current password is wrong"},
		{first, first, first, "must differ"},
	} {
		resp, body := b.post("/password", url.Values{"csrf": {csrf}, "current": {c.cur}, "new": {c.next}, "confirm": {c.confirm}})
		if resp.StatusCode != 400 || !strings.Contains(body, c.want) {
			t.Errorf("password %q: %d, want an error with %q", c.next, resp.StatusCode, c.want)
		}
	}
	if resp, _ := b.post("/password", url.Values{"current": {first}, "new": {"a much better passphrase"}, "confirm": {"a much better passphrase"}}); resp.StatusCode != 403 {
		t.Errorf("password change without csrf: %d", resp.StatusCode)
	}
	resp, _ = b.post("/password", url.Values{"csrf": {csrf}, "current": {first}, "new": {"a much better passphrase"}, "confirm": {"a much better passphrase"}})
	if resp.StatusCode != 303 {
		t.Fatalf("password change: %d", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(ui.dir, "admin-password")); !os.IsNotExist(err) {
		t.Errorf("the one-time password file is still there: %v", err)
	}
	if resp, body := b.get("/"); resp.StatusCode != 200 || !strings.Contains(body, "root") {
		t.Fatalf("overview: %d", resp.StatusCode)
	}
	// The old password no longer works; the new one does.
	if resp, _ := ui.browser().login("admin", first); resp.StatusCode != 401 {
		t.Errorf("old password: %d", resp.StatusCode)
	}
	if resp, _ := ui.browser().login("admin", "a much better passphrase"); resp.StatusCode != 303 {
		t.Errorf("new password: %d", resp.StatusCode)
	}
	// Logout needs the CSRF token, then the session is gone.
	_, body = b.get("/")
	if resp, _ := b.post("/logout", url.Values{}); resp.StatusCode != 403 {
		t.Errorf("logout without csrf: %d", resp.StatusCode)
	}
	b.post("/logout", url.Values{"csrf": {csrfOf(t, body)}})
	if resp, _ := b.get("/"); resp.StatusCode != 303 {
		t.Errorf("after logout: %d", resp.StatusCode)
	}
}

func TestSessionTimeouts(t *testing.T) {
	ui := newTestUI(t)
	ui.user("ops", "a good long passphrase", false, map[int64]auth.Permission{ui.root: auth.Read})
	b := ui.browser()
	if resp, _ := b.login("ops", "a good long passphrase"); resp.StatusCode != 303 {
		t.Fatal(resp.StatusCode)
	}
	// Active every 20 minutes: alive; then idle 31 minutes: gone.
	for range 3 {
		ui.advance(20 * time.Minute)
		if resp, _ := b.get("/"); resp.StatusCode != 200 {
			t.Fatalf("active session refused: %d", resp.StatusCode)
		}
	}
	ui.advance(31 * time.Minute)
	if resp, _ := b.get("/"); resp.StatusCode != 303 {
		t.Fatalf("idle session: %d", resp.StatusCode)
	}
	// Absolute timeout, however active.
	if resp, _ := b.login("ops", "a good long passphrase"); resp.StatusCode != 303 {
		t.Fatal(resp.StatusCode)
	}
	for i := 0; i < int(AbsoluteTimeout/(20*time.Minute)); i++ {
		ui.advance(20 * time.Minute)
		b.get("/")
	}
	ui.advance(20 * time.Minute)
	if resp, _ := b.get("/"); resp.StatusCode != 303 {
		t.Fatalf("session past its absolute timeout: %d", resp.StatusCode)
	}
}

func TestLoginLockout(t *testing.T) {
	ui := newTestUI(t)
	const pw = "the right passphrase"
	ui.user("alice", pw, false, nil)
	b := ui.browser()
	for i := 1; i < FailuresBeforeLock; i++ {
		if resp, _ := b.login("alice", "wrong"); resp.StatusCode != 401 {
			t.Fatalf("failure %d: %d", i, resp.StatusCode)
		}
	}
	resp, body := b.login("alice", "wrong")
	if resp.StatusCode != 429 || !strings.Contains(body, "Wait") {
		t.Fatalf("10th failure: %d", resp.StatusCode)
	}
	// Even the right password is refused while locked.
	if resp, _ := b.login("alice", pw); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("right password while locked: %d", resp.StatusCode)
	}
	// An unknown name locks the same way (no enumeration).
	for range FailuresBeforeLock {
		b.login("nosuchuser", "wrong")
	}
	if resp, _ := ui.browser().login("nosuchuser", "wrong"); resp.StatusCode != 429 {
		t.Fatalf("unknown user after 10 failures: %d", resp.StatusCode)
	}
	// After the lock, a failure locks again for longer; the right password
	// then works.
	ui.advance(LockBase + time.Second)
	if resp, _ := b.login("alice", "wrong"); resp.StatusCode != 429 {
		t.Fatalf("11th failure: %d", resp.StatusCode)
	}
	ui.advance(LockBase + time.Second)
	if resp, _ := b.login("alice", pw); resp.StatusCode != 429 {
		t.Fatalf("the second lock lasts longer than the first: %d", resp.StatusCode)
	}
	ui.advance(2*LockBase + time.Second)
	if resp, _ := b.login("alice", pw); resp.StatusCode != 303 {
		t.Fatalf("after the lock: %d", resp.StatusCode)
	}
}

// TestOverviewTenancyAndEscaping: a user sees only the containers granted
// (and not one that stops inheritance unless invited), and names from
// monitored systems are shown as text.
func TestOverviewTenancyAndEscaping(t *testing.T) {
	ui := newTestUI(t)
	ctx := context.Background()
	msp, _ := ui.st.CreateContainer(ctx, ui.root, "msp")
	acme, _ := ui.st.CreateContainer(ctx, msp, "acme <script>alert(1)</script>")
	beta, _ := ui.st.CreateContainer(ctx, msp, "beta")
	other, _ := ui.st.CreateContainer(ctx, ui.root, "other tenant")
	if _, err := ui.st.CreateAsset(ctx, acme, "<img src=x onerror=alert(2)>"); err != nil {
		t.Fatal(err)
	}
	ui.user("mspuser", "msp user passphrase", false, map[int64]auth.Permission{msp: auth.Read})
	ui.user("acmeuser", "acme user passphrase", false, map[int64]auth.Permission{acme: auth.All})
	_ = beta
	_ = other

	see := func(user, pw string) string {
		b := ui.browser()
		if resp, _ := b.login(user, pw); resp.StatusCode != 303 {
			t.Fatalf("login %s: %d", user, resp.StatusCode)
		}
		resp, body := b.get("/")
		if resp.StatusCode != 200 {
			t.Fatalf("overview of %s: %d", user, resp.StatusCode)
		}
		return body
	}
	body := see("mspuser", "msp user passphrase")
	for _, want := range []string{">msp<", ">beta<", "acme &lt;script&gt;alert(1)&lt;/script&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("the msp user does not see %q", want)
		}
	}
	if strings.Contains(body, "other tenant") || strings.Contains(body, "<script>alert") {
		t.Errorf("the msp user sees another tenant or unescaped markup:\n%s", body)
	}
	// acme stops inheritance: the msp user no longer sees it.
	if err := ui.st.SetInheritAccess(ctx, acme, false); err != nil {
		t.Fatal(err)
	}
	body = see("mspuser", "msp user passphrase")
	if strings.Contains(body, "acme") {
		t.Errorf("the msp user sees a container that stopped inheritance")
	}
	body = see("acmeuser", "acme user passphrase")
	if !strings.Contains(body, "acme &lt;script&gt;") || strings.Contains(body, ">msp<") || strings.Contains(body, "beta") {
		t.Errorf("the acme user's overview:\n%s", body)
	}
}

var (
	secretRE   = regexp.MustCompile(`name="secret" value="([A-Z2-7]+)"`)
	recoveryRE = regexp.MustCompile(`<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>`)
)

// TestSecondFactor: set up TOTP with the QR code's key, log in with a
// code (not twice with the same one), with a recovery code (once), and a
// container that requires a second factor.
func TestSecondFactor(t *testing.T) {
	ui := newTestUI(t)
	const pw = "a sturdy passphrase here"
	ui.user("bob", pw, false, map[int64]auth.Permission{ui.root: auth.Read})
	b := ui.browser()
	if resp, _ := b.login("bob", pw); resp.StatusCode != 303 || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body := b.get("/totp")
	m := secretRE.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "<svg") || strings.Contains(body, "<script>") {
		t.Fatalf("setup page: %s", body)
	}
	key := secret.New(m[1])
	csrf := csrfOf(t, body)
	if resp, _ := b.post("/totp", url.Values{"csrf": {csrf}, "secret": {m[1]}, "totp": {"000000"}, "password": {pw}}); resp.StatusCode != 400 {
		t.Fatalf("wrong setup code: %d", resp.StatusCode)
	}
	code, _ := totp.Code(key, ui.clock())
	if resp, _ := b.post("/totp", url.Values{"csrf": {csrf}, "secret": {m[1]}, "totp": {code}, "password": {"not it"}}); resp.StatusCode != 400 {
		t.Fatalf("setup without the password: %d", resp.StatusCode)
	}
	resp, body := b.post("/totp", url.Values{"csrf": {csrf}, "secret": {m[1]}, "totp": {code}, "password": {pw}})
	codes := recoveryRE.FindAllStringSubmatch(body, -1)
	if resp.StatusCode != 200 || len(codes) != totp.RecoveryCodeCount {
		t.Fatalf("setup: %d, %d recovery codes", resp.StatusCode, len(codes))
	}
	if _, body := b.get("/totp"); strings.Contains(body, codes[0][1]) || strings.Contains(body, m[1]) {
		t.Fatal("the recovery codes or the key are shown again")
	}

	// A new login needs the second factor; pages wait for it.
	b2 := ui.browser()
	if resp, _ := b2.login("bob", pw); resp.Header.Get("Location") != "/login/totp" {
		t.Fatalf("password step: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b2.get("/"); resp.Header.Get("Location") != "/login/totp" {
		t.Fatalf("/ before the second factor: %s", resp.Header.Get("Location"))
	}
	_, body = b2.get("/login/totp")
	csrf2 := csrfOf(t, body)
	// The setup's code was used: it is refused (replay), as is a wrong one.
	for _, c := range []string{code, "123456", "abcde-fghij"} {
		if resp, _ := b2.post("/login/totp", url.Values{"csrf": {csrf2}, "totp": {c}}); resp.StatusCode != 401 {
			t.Fatalf("code %q: %d", c, resp.StatusCode)
		}
	}
	ui.advance(30 * time.Second)
	code, _ = totp.Code(key, ui.clock())
	resp, _ = b2.post("/login/totp", url.Values{"csrf": {csrf2}, "totp": {code}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/" {
		t.Fatalf("second factor: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b2.get("/"); resp.StatusCode != 200 {
		t.Fatalf("after the second factor: %d", resp.StatusCode)
	}
	// A recovery code works once.
	recovery := codes[3][1]
	for i, want := range []int{303, 401} {
		b3 := ui.browser()
		b3.login("bob", pw)
		_, body := b3.get("/login/totp")
		if resp, _ := b3.post("/login/totp", url.Values{"csrf": {csrfOf(t, body)}, "totp": {strings.ToUpper(recovery)}}); resp.StatusCode != want {
			t.Fatalf("recovery code use %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}

	// A container requiring a second factor sends a user without one to
	// the setup.
	ui.user("carol", pw, false, map[int64]auth.Permission{ui.root: auth.Read})
	if err := ui.st.SetTOTPRequired(context.Background(), ui.root, true); err != nil {
		t.Fatal(err)
	}
	b4 := ui.browser()
	b4.login("carol", pw)
	if resp, _ := b4.get("/"); resp.StatusCode != 303 || resp.Header.Get("Location") != "/totp" {
		t.Fatalf("required second factor: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := b4.get("/totp"); resp.StatusCode != 200 || !strings.Contains(body, "requires a second factor") {
		t.Fatalf("setup page for a required factor: %d", resp.StatusCode)
	}
}

// TestPages: the container, asset and alerts pages, with names from
// monitored systems shown as text, filters in the query string, alert
// actions needing their permissions, and another tenant's objects not
// found.
func TestPages(t *testing.T) {
	ui := newTestUI(t)
	ctx := context.Background()
	acme, _ := ui.st.CreateContainer(ctx, ui.root, "acme")
	other, _ := ui.st.CreateContainer(ctx, ui.root, "other")
	web1, _ := ui.st.CreateAsset(ctx, acme, "web-1")
	evil, _ := ui.st.CreateAsset(ctx, acme, "<script>alert('asset')</script>")
	hidden, _ := ui.st.CreateAsset(ctx, other, "hidden-asset")
	if err := ui.st.SetAssetLabels(ctx, web1, []string{"prod"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ui.st.AddCollector(ctx, evil, "linux", nil, nil); err != nil {
		t.Fatal(err)
	}
	data := `{"disk":[{"name":"<img src=x onerror=alert(1)>","usedBytes":1073741824,"percentUsed":97.5,"state":"<b>bad</b>"}]}`
	if err := ui.st.PutResult(ctx, state.Result{AssetID: evil, Collector: "linux", Check: "disk", Timestamp: ui.clock().Unix(),
		ReceivedAt: ui.clock(), Data: []byte(data), ErrorMessage: "<script>err</script>"}, false, false); err != nil {
		t.Fatal(err)
	}
	cond := state.Condition{ContainerID: acme, Name: "full", Kind: alert.KindExpression, Type: "disk", Expression: "item.percentUsed > 90", Severity: int(alert.Critical)}
	if err := alert.Validate(&cond); err != nil {
		t.Fatal(err)
	}
	condID, _ := ui.st.CreateCondition(ctx, cond, ui.clock())
	var alertID, hiddenAlert int64
	err := ui.st.InTx(ctx, func(tx *state.Tx) error {
		var err error
		alertID, _, err = tx.OpenAlert(state.Alert{ContainerID: acme, AssetID: evil, ConditionID: condID, Item: "<i>item</i>",
			Severity: int(alert.Critical), Message: "<script>msg</script>", OpenedAt: ui.clock()})
		if err != nil {
			return err
		}
		hiddenAlert, _, err = tx.OpenAlert(state.Alert{ContainerID: other, AssetID: hidden, ConditionID: condID, Item: "x",
			Severity: int(alert.Critical), Message: "other-tenant-alert", OpenedAt: ui.clock()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ui.user("viewer", "viewer passphrase ok", false, map[int64]auth.Permission{acme: auth.Read})
	ui.user("oncall", "oncall passphrase ok", false, map[int64]auth.Permission{acme: auth.Read | auth.AlertAssign | auth.AlertChange})
	b := ui.browser()
	b.login("viewer", "viewer passphrase ok")

	noMarkup := func(page, body string) {
		t.Helper()
		for _, bad := range []string{"<script>alert", "<img src=x", "<b>bad</b>", "<i>item</i>", "<script>msg", "<script>err"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s shows markup from a monitored system unescaped: %s", page, bad)
			}
		}
	}
	resp, body := b.get(fmt.Sprintf("/container/%d", acme))
	if resp.StatusCode != 200 || !strings.Contains(body, "web-1") || !strings.Contains(body, "&lt;script&gt;alert(&#39;asset&#39;)") {
		t.Fatalf("container page: %d", resp.StatusCode)
	}
	noMarkup("container page", body)
	if _, body := b.get(fmt.Sprintf("/container/%d?label=prod", acme)); !strings.Contains(body, "web-1") || strings.Contains(body, "alert(&#39;asset") {
		t.Errorf("label filter")
	}
	if _, body := b.get(fmt.Sprintf("/container/%d?state=alerting", acme)); strings.Contains(body, "web-1") || !strings.Contains(body, "alert(&#39;asset") {
		t.Errorf("state filter")
	}
	resp, body = b.get(fmt.Sprintf("/asset/%d", evil))
	if resp.StatusCode != 200 || !strings.Contains(body, "1 GiB") || !strings.Contains(body, "97.5") || !strings.Contains(body, "/chart?") {
		t.Fatalf("asset page: %d\n%s", resp.StatusCode, body)
	}
	noMarkup("asset page", body)
	resp, body = b.get("/alerts")
	if resp.StatusCode != 200 || !strings.Contains(body, "&lt;script&gt;msg") || strings.Contains(body, "other-tenant-alert") {
		t.Fatalf("alerts page: %d", resp.StatusCode)
	}
	noMarkup("alerts page", body)
	csrf := csrfOf(t, body)
	// Filters: severity, text, container (another tenant's is not found).
	for q, want := range map[string]bool{"?severity=2": true, "?severity=1": false, "?q=SCRIPT%3EMSG": true, "?q=nothing-like-it": false,
		fmt.Sprintf("?container=%d", acme): true} {
		resp, body := b.get("/alerts" + q)
		if resp.StatusCode != 200 || strings.Contains(body, "&lt;script&gt;msg") != want {
			t.Errorf("alerts%s: %d, shows the alert: %v, want %v", q, resp.StatusCode, !want, want)
		}
	}
	if resp, _ := b.get(fmt.Sprintf("/alerts?container=%d", other)); resp.StatusCode != 404 {
		t.Errorf("alerts of another tenant's container: %d", resp.StatusCode)
	}

	// Another tenant's objects are not found.
	for _, p := range []string{fmt.Sprintf("/container/%d", other), fmt.Sprintf("/asset/%d", hidden), "/container/99999", "/asset/abc"} {
		if resp, body := b.get(p); resp.StatusCode != 404 || strings.Contains(body, "hidden-asset") {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	// A viewer may not assign; nobody here may touch the other tenant's.
	if resp, _ := b.post(fmt.Sprintf("/alert/%d/assign", alertID), url.Values{"csrf": {csrf}, "text": {"me"}}); resp.StatusCode != 403 {
		t.Errorf("assign without ALERT_ASSIGN: %d", resp.StatusCode)
	}
	o := ui.browser()
	o.login("oncall", "oncall passphrase ok")
	_, body = o.get("/alerts")
	csrf = csrfOf(t, body)
	if resp, _ := o.post(fmt.Sprintf("/alert/%d/close", hiddenAlert), url.Values{"csrf": {csrf}}); resp.StatusCode != 404 {
		t.Errorf("closing another tenant's alert: %d", resp.StatusCode)
	}
	if resp, _ := o.post(fmt.Sprintf("/alert/%d/assign", alertID), url.Values{"csrf": {csrf}, "text": {"oncall"}, "back": {"//evil.example/"}}); resp.StatusCode != 303 || resp.Header.Get("Location") != "/alerts" {
		t.Errorf("assign: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := o.post(fmt.Sprintf("/alert/%d/close", alertID), url.Values{"csrf": {csrf}, "text": {"fixed the disk"}}); resp.StatusCode != 303 {
		t.Errorf("close: %d", resp.StatusCode)
	}
	a, _ := ui.st.Alert(ctx, alertID)
	if a.Status != "closed" || a.AssignedTo != "oncall" || a.CloseReason != "fixed the disk" {
		t.Errorf("alert after the actions: %+v", a)
	}
	if h, _ := ui.st.Alert(ctx, hiddenAlert); h.Status != "open" {
		t.Error("the other tenant's alert changed")
	}
}

// TestLoginBurst: failed logins sent all at once still lock the account:
// the right password sent in the middle of sixty wrong ones is refused.
func TestLoginBurst(t *testing.T) {
	ui := newTestUI(t)
	const pw = "the right passphrase"
	ui.user("alice", pw, false, nil)
	_, body := ui.browser().get("/login")
	_ = body
	var wg sync.WaitGroup
	// counted receives each wrong guess the hub verified and counted (401,
	// or 429 once locked); one the hub had no time for (503: busy with the
	// others, not counted) is sent again.
	counted := make(chan struct{}, 60)
	for range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				resp, _ := ui.browser().login("alice", "wrong guess")
				if resp.StatusCode != http.StatusServiceUnavailable {
					counted <- struct{}{}
					return
				}
			}
		}()
	}
	// Ten wrong ones counted (the lock's threshold), the rest still on
	// their way: the right one goes in among them.
	for range FailuresBeforeLock {
		<-counted
	}
	resp, _ := ui.browser().login("alice", pw)
	wg.Wait()
	if resp.StatusCode == 303 {
		t.Fatal("the right password got in behind a burst of wrong ones")
	}
}

// TestListPages: notifications and appliances of the containers a user
// sees, and of no other.
func TestListPages(t *testing.T) {
	ui := newTestUI(t)
	ctx := context.Background()
	acme, _ := ui.st.CreateContainer(ctx, ui.root, "acme")
	other, _ := ui.st.CreateContainer(ctx, ui.root, "other")
	asset, _ := ui.st.CreateAsset(ctx, acme, "db")
	for _, c := range []struct {
		container int64
		msg       string
	}{{acme, "check linux/disk on <b>db</b> failed"}, {other, "other-tenant-note"}} {
		n := state.Notification{ContainerID: c.container, Kind: "check_error", Subject: fmt.Sprint(c.container), Severity: 0, Message: c.msg, OpenedAt: ui.clock()}
		if c.container == acme {
			n.AssetID = &asset
		}
		if err := ui.st.InTx(ctx, func(tx *state.Tx) error { _, _, err := tx.OpenNotification(n); return err }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ui.st.CreateAppliance(ctx, state.Appliance{ContainerID: acme, Name: "acme-probe"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ui.st.CreateAppliance(ctx, state.Appliance{ContainerID: other, Name: "other-probe"}); err != nil {
		t.Fatal(err)
	}
	ui.user("viewer", "viewer passphrase ok", false, map[int64]auth.Permission{acme: auth.Read})
	b := ui.browser()
	b.login("viewer", "viewer passphrase ok")
	resp, body := b.get("/notifications")
	if resp.StatusCode != 200 || !strings.Contains(body, "&lt;b&gt;db&lt;/b&gt;") || strings.Contains(body, "other-tenant-note") || !strings.Contains(body, "HIGH") {
		t.Errorf("notifications page: %d\n%s", resp.StatusCode, body)
	}
	resp, body = b.get("/appliances")
	if resp.StatusCode != 200 || !strings.Contains(body, "acme-probe") || strings.Contains(body, "other-probe") || !strings.Contains(body, "disconnected") {
		t.Errorf("appliances page: %d\n%s", resp.StatusCode, body)
	}
}

// TestTokensPage: a token is shown once, only the permissions the user
// holds can be given, and only tokens of the user's containers revoked.
func TestTokensPage(t *testing.T) {
	ui := newTestUI(t)
	ctx := context.Background()
	acme, _ := ui.st.CreateContainer(ctx, ui.root, "acme")
	other, _ := ui.st.CreateContainer(ctx, ui.root, "other")
	otherTok, _ := ui.st.CreateToken(ctx, state.Token{ContainerID: other, Name: "other-token", Hash: "00", Permissions: uint64(auth.Read)})
	ui.user("admin2", "admin two passphrase", false, map[int64]auth.Permission{acme: auth.Read | auth.API | auth.ContainerTokens})
	b := ui.browser()
	b.login("admin2", "admin two passphrase")
	_, body := b.get("/tokens")
	if strings.Contains(body, "other-token") || !strings.Contains(body, `value="`+fmt.Sprint(acme)+`"`) {
		t.Fatalf("tokens page:\n%s", body)
	}
	csrf := csrfOf(t, body)
	form := url.Values{"csrf": {csrf}, "name": {"agent <x>"}, "container": {fmt.Sprint(acme)}, "permissions": {"READ", "WEBHOOKS"}, "days": {"30"}}
	if resp, body := b.post("/tokens", form); resp.StatusCode != 400 || !strings.Contains(body, `<p class="error" id="tperm-err">You cannot give permissions you do not hold there: WEBHOOKS.`) ||
		!strings.Contains(body, `value="agent &lt;x&gt;"`) || !strings.Contains(body, `value="30"`) || !strings.Contains(body, `value="READ" checked`) {
		t.Fatalf("a permission the user lacks: %d (the error beside the field, the input kept)\n%s", resp.StatusCode, body)
	}
	form["permissions"] = []string{"READ", "API"}
	resp, body := b.post("/tokens", form)
	m := regexp.MustCompile(`id="new-token">([0-9a-f]{32})<`).FindStringSubmatch(body)
	if resp.StatusCode != 201 || m == nil || !strings.Contains(body, "agent &lt;x&gt;") {
		t.Fatalf("create: %d\n%s", resp.StatusCode, body)
	}
	tok, valid, err := ui.st.AuthToken(ctx, auth.HashToken(secret.New(m[1])), ui.clock())
	if err != nil || !valid || tok.ContainerID != acme || auth.Permission(tok.Permissions) != auth.Read|auth.API || tok.ExpiresAt == nil {
		t.Fatalf("stored token: %+v %v %v", tok, valid, err)
	}
	if _, body := b.get("/tokens"); strings.Contains(body, m[1]) {
		t.Fatal("the token is shown again")
	}
	form["container"] = []string{fmt.Sprint(other)}
	if resp, _ := b.post("/tokens", form); resp.StatusCode != 400 {
		t.Errorf("a token in another tenant's container: %d", resp.StatusCode)
	}
	if resp, _ := b.post(fmt.Sprintf("/token/%d/revoke", otherTok), url.Values{"csrf": {csrf}}); resp.StatusCode != 404 {
		t.Errorf("revoking another tenant's token: %d", resp.StatusCode)
	}
	if resp, _ := b.post(fmt.Sprintf("/token/%d/revoke", tok.ID), url.Values{"csrf": {csrf}}); resp.StatusCode != 303 {
		t.Errorf("revoke: %d", resp.StatusCode)
	}
	if _, valid, _ := ui.st.AuthToken(ctx, auth.HashToken(secret.New(m[1])), ui.clock()); valid {
		t.Error("a revoked token still authenticates")
	}
}

// TestSessionsPage: a user sees and ends their own sessions, not
// another user's.
func TestSessionsPage(t *testing.T) {
	ui := newTestUI(t)
	ui.user("dora", "dora's passphrase", false, map[int64]auth.Permission{ui.root: auth.Read})
	ui.user("eve", "eve's passphrase ok", false, map[int64]auth.Permission{ui.root: auth.Read})
	laptop, phone, eve := ui.browser(), ui.browser(), ui.browser()
	laptop.login("dora", "dora's passphrase")
	phone.login("dora", "dora's passphrase")
	eve.login("eve", "eve's passphrase ok")
	_, body := laptop.get("/sessions")
	hashes := regexp.MustCompile(`name="session" value="([0-9a-f]{32})"`).FindAllStringSubmatch(body, -1)
	if len(hashes) != 2 || !strings.Contains(body, "(this one)") {
		t.Fatalf("dora's sessions:\n%s", body)
	}
	// Eve cannot end dora's sessions.
	_, ebody := eve.get("/sessions")
	for _, h := range hashes {
		if resp, _ := eve.post("/sessions/end", url.Values{"csrf": {csrfOf(t, ebody)}, "session": {h[1]}}); resp.StatusCode != 404 {
			t.Errorf("eve ends dora's session: %d", resp.StatusCode)
		}
	}
	// The laptop ends every other session: the phone is out.
	if resp, _ := laptop.post("/sessions/end", url.Values{"csrf": {csrfOf(t, body)}, "others": {"1"}}); resp.StatusCode != 303 {
		t.Fatalf("end others: %d", resp.StatusCode)
	}
	if resp, _ := phone.get("/"); resp.StatusCode != 303 {
		t.Errorf("the phone's session survived: %d", resp.StatusCode)
	}
	if resp, _ := laptop.get("/"); resp.StatusCode != 200 {
		t.Errorf("the laptop's session ended too: %d", resp.StatusCode)
	}
	if resp, _ := eve.get("/"); resp.StatusCode != 200 {
		t.Errorf("eve's session ended: %d", resp.StatusCode)
	}
}

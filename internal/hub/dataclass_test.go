package hub

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/totp"
)

// webClient is a browser-like client of the hub's web UI.
type webClient struct {
	t   *testing.T
	th  *testHub
	c   http.Client
	all *strings.Builder // every page read, for the search below
}

func newWebClient(t *testing.T, th *testHub, all *strings.Builder) *webClient {
	jar, _ := cookiejar.New(nil)
	c := *th.client
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &webClient{t: t, th: th, c: c, all: all}
}

func (w *webClient) do(method, path string, form url.Values, record bool) (int, string) {
	w.t.Helper()
	var resp *http.Response
	var err error
	if method == "GET" {
		resp, err = w.c.Get(w.th.url + path)
	} else {
		resp, err = w.c.PostForm(w.th.url+path, form)
	}
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if record {
		// Set-Cookie hands the session to its owner: left out.
		h := resp.Header.Clone()
		h.Del("Set-Cookie")
		fmt.Fprintf(w.all, "\n== %s %s %d\n%s\n%s", method, path, resp.StatusCode, h, b)
	}
	return resp.StatusCode, string(b)
}

func csrfIn(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf in %s", body)
	}
	return m[1]
}

// TestRestrictedDataNeverShown makes every kind of restricted value (API
// and web tokens, a webhook secret, passwords, a TOTP secret and recovery
// codes, an invitation link, session cookies), then reads every API route
// that answers GET and every page of the web UI, and searches the answers
// and the hub's log for each of them, and for every restricted value the
// store holds (hashes, sealed secrets: internal/dataclass). The answers
// that hand a value over once (the creation of a token, the TOTP setup,
// an invitation link) are the only ones left out of the search.
func TestRestrictedDataNeverShown(t *testing.T) {
	dir := t.TempDir()
	th := startHubWith(t, Config{DataDir: dir})
	var seen strings.Builder
	var plain []string // the restricted values in the clear
	plain = append(plain, th.admin)

	c := th.newContainer(1, "customer")
	tok := th.newToken(c, agentPerms...)
	plain = append(plain, tok)
	asset := th.agentSetup(tok, "web-1")
	th.must(201, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/condition", c), map[string]any{
		"name": "cpu", "kind": "expression", "collector": "linux", "check": "cpu", "type": "cpu", "expression": "item.usage > 90", "severity": "CRITICAL", "ticks": 1}, nil)
	const ruleSecret = "webhook-secret-restricted-0123456789"
	plain = append(plain, ruleSecret)
	var rule struct {
		RuleID int64 `json:"ruleId"`
	}
	th.must(201, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/rule", c), map[string]any{
		"name": "hook", "channel": "webhook", "url": "https://hooks.example.com/x", "secret": ruleSecret, "minSeverity": "ERROR"}, &rule)
	th.must(204, tok, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset),
		fmt.Sprintf(`{"timestamp":%d,"data":{"cpu":[{"name":"cpu0","usage":99.5}]}}`, time.Now().Unix()), nil)
	var maint struct {
		MaintenanceID int64 `json:"maintenanceId"`
	}
	th.must(201, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/maintenance", c), map[string]any{"duration": "1h", "reason": "r"}, &maint)

	// The web UI: the first admin's one-time password, a new password, a
	// second factor, a token, an invitation accepted by a new user.
	b, err := os.ReadFile(filepath.Join(dir, AdminPasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	oneTime := strings.Split(strings.TrimSpace(string(b)), "\n")[1]
	const adminPW, newPW = "the admin's own passphrase", "the invited user's passphrase"
	plain = append(plain, oneTime, adminPW, newPW)
	w := newWebClient(t, th, &seen)
	_, body := w.do("GET", "/login", nil, true)
	w.do("POST", "/login", url.Values{"csrf": {csrfIn(t, body)}, "username": {"admin"}, "password": {oneTime}}, true)
	_, body = w.do("GET", "/password", nil, true)
	w.do("POST", "/password", url.Values{"csrf": {csrfIn(t, body)}, "current": {oneTime}, "new": {adminPW}, "confirm": {adminPW}}, true)
	_, body = w.do("GET", "/totp", nil, false) // hands the key over
	key := regexp.MustCompile(`name="secret" value="([A-Z2-7]+)"`).FindStringSubmatch(body)[1]
	code, _ := totp.Code(secret.New(key), time.Now())
	_, body = w.do("POST", "/totp", url.Values{"csrf": {csrfIn(t, body)}, "secret": {key}, "totp": {code}, "password": {adminPW}}, false)
	codes := regexp.MustCompile(`<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>`).FindAllStringSubmatch(body, -1)
	if len(codes) == 0 {
		t.Fatalf("no recovery codes:\n%s", body)
	}
	plain = append(plain, key)
	for _, m := range codes {
		plain = append(plain, m[1])
	}
	_, body = w.do("GET", "/tokens", nil, true)
	_, body = w.do("POST", "/tokens", url.Values{"csrf": {csrfIn(t, body)}, "container": {fmt.Sprint(c)}, "name": {"ci"}, "permissions": {"READ"}}, false)
	webTok := regexp.MustCompile(`id="new-token">([0-9a-f]{32})<`).FindStringSubmatch(body)
	if webTok == nil {
		t.Fatalf("no token on the page:\n%s", body)
	}
	plain = append(plain, webTok[1])
	_, body = w.do("GET", fmt.Sprintf("/container/%d/access", c), nil, true)
	_, body = w.do("POST", fmt.Sprintf("/container/%d/invite", c), url.Values{"csrf": {csrfIn(t, body)}, "permissions": {"READ"}}, false)
	link := regexp.MustCompile(`id="invite-link">https://[^/]+/invite/([A-Za-z0-9_-]+)<`).FindStringSubmatch(body)
	if link == nil {
		t.Fatalf("no invitation link:\n%s", body)
	}
	plain = append(plain, link[1])
	nu := newWebClient(t, th, &seen)
	_, body = nu.do("GET", "/invite/"+link[1], nil, false) // the link itself is in this page's form action
	if code, _ := nu.do("POST", "/invite/"+link[1], url.Values{"csrf": {csrfIn(t, body)}, "username": {"newbie"}, "password": {newPW}, "confirm": {newPW}}, false); code != 303 {
		t.Fatalf("accepting the invitation: %d", code)
	}
	for _, cl := range []*webClient{w, nu} {
		u, _ := url.Parse(th.url)
		for _, ck := range cl.c.Jar.Cookies(u) {
			if strings.HasPrefix(ck.Name, "__Host-sonde-session") {
				plain = append(plain, ck.Value)
			}
		}
	}

	// Every page of the web UI, as the admin and as the new user.
	var alertID int64
	var alerts []struct {
		AlertID int64 `json:"alertId"`
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/alerts", c), nil, &alerts)
	if len(alerts) > 0 {
		alertID = alerts[0].AlertID
	}
	pages := []string{"/", fmt.Sprintf("/container/%d", c), fmt.Sprintf("/asset/%d", asset),
		fmt.Sprintf("/asset/%d/chart?collector=linux&check=cpu&type=cpu&metric=usage", asset), "/alerts", "/alerts?status=closed",
		"/notifications", "/appliances", "/tokens", "/sessions", "/account", "/totp", "/password", "/conditions", "/rules",
		fmt.Sprintf("/rule/%d/deliveries", rule.RuleID), "/maintenance", "/access", fmt.Sprintf("/container/%d/access", c), "/log",
		fmt.Sprintf("/log?container=%d", c), "/login", "/nope"}
	for _, p := range pages {
		for _, cl := range []*webClient{w, nu} {
			if code, body := cl.do("GET", p, nil, true); code >= 500 {
				t.Errorf("GET %s: %d\n%s", p, code, body)
			}
		}
	}

	// Every API route that answers GET, with the admin token.
	for _, r := range th.hub.Routes() {
		method, path, _ := strings.Cut(r.Pattern, " ")
		if method != "GET" {
			continue
		}
		repl := strings.NewReplacer("{id}", fmt.Sprint(c), "{cid}", fmt.Sprint(c), "{key}", "linux", "{check}", "cpu", "{tokenId}", "1")
		switch {
		case strings.HasPrefix(path, "/api/v1/asset/"):
			repl = strings.NewReplacer("{id}", fmt.Sprint(asset), "{key}", "linux", "{check}", "cpu")
		case strings.HasPrefix(path, "/api/v1/rule/"):
			repl = strings.NewReplacer("{id}", fmt.Sprint(rule.RuleID))
		case strings.HasPrefix(path, "/api/v1/alert/"):
			repl = strings.NewReplacer("{id}", fmt.Sprint(alertID))
		case strings.HasPrefix(path, "/api/v1/maintenance/"):
			repl = strings.NewReplacer("{id}", fmt.Sprint(maint.MaintenanceID))
		}
		path = repl.Replace(path)
		if strings.HasPrefix(path, "/prometheus/") {
			path += "?query=" + url.QueryEscape(`{__name__=~".+"}`)
		}
		code, out := th.do(th.admin, "GET", path, nil)
		fmt.Fprintf(&seen, "\n== GET %s %d\n%s", path, code, out)
	}

	stored, err := th.hub.st.RestrictedValues(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) < 8 {
		t.Fatalf("only %d restricted values stored; the run made more", len(stored))
	}
	haystack := seen.String() + "\n== hub log\n" + th.logs.String()
	for _, v := range append(plain, stored...) {
		if len(v) < 8 {
			t.Fatalf("a restricted value too short to search for: %q", v)
		}
		if i := strings.Index(haystack, v); i >= 0 {
			start := max(0, strings.LastIndex(haystack[:i], "\n== "))
			t.Errorf("a restricted value appears in %s", strings.SplitN(haystack[start:], "\n", 3)[1])
		}
	}
	t.Logf("searched %d KiB of answers, pages and logs for %d restricted values (%d in the clear, %d as stored)",
		len(haystack)>>10, len(plain)+len(stored), len(plain), len(stored))
}

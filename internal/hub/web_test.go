package hub

import (
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
)

// TestWebUI logs in to the hub's web UI as the first admin, changes the
// one-time password, and finds an agent's asset with its table and a
// chart drawn from the time-series store.
func TestWebUI(t *testing.T) {
	dir := t.TempDir()
	th := startHub(t, dir)
	tok := th.newToken(1, agentPerms...)
	asset := th.agentSetup(tok, "db-1")
	now := time.Now().Unix()
	for i := range 10 {
		th.must(204, tok, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset),
			fmt.Sprintf(`{"timestamp":%d,"data":{"cpu":[{"name":"cpu0","usage":%d.5},{"name":"cpu1","usage":3.25}]}}`, now-int64(600-60*i), 10*i), nil)
	}
	b, err := os.ReadFile(filepath.Join(dir, AdminPasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "admin" {
		t.Fatalf("admin-password holds %d lines", len(lines))
	}
	jar, _ := cookiejar.New(nil)
	c := *th.client
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(path string) (int, string) {
		resp, err := c.Get(th.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	post := func(path string, form url.Values) (int, string) {
		resp, err := c.PostForm(th.url+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	csrf := func(body string) string {
		m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no csrf in %s", body)
		}
		return m[1]
	}
	_, body := get("/login")
	if code, to := post("/login", url.Values{"username": {"admin"}, "password": {lines[1]}, "csrf": {csrf(body)}}); code != 303 || to != "/password" {
		t.Fatalf("first login: %d %s", code, to)
	}
	_, body = get("/password")
	if code, _ := post("/password", url.Values{"csrf": {csrf(body)}, "current": {lines[1]}, "new": {"the admin's own passphrase"}, "confirm": {"the admin's own passphrase"}}); code != 303 {
		t.Fatalf("password change: %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, AdminPasswordFile)); !os.IsNotExist(err) {
		t.Errorf("the one-time password file stays: %v", err)
	}
	code, body := get(fmt.Sprintf("/asset/%d", asset))
	if code != 200 || !strings.Contains(body, "cpu0") || !strings.Contains(body, "90.5 %") {
		t.Fatalf("asset page: %d\n%s", code, body)
	}
	m := regexp.MustCompile(`href="(/asset/\d+/chart\?[^"]+metric=usage[^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no chart link on the asset page")
	}
	code, body = get(strings.ReplaceAll(m[1], "&amp;", "&") + "&range=1h")
	if code != 200 || !strings.Contains(body, "<svg") || !strings.Contains(body, "cpu0") || !strings.Contains(body, "cpu1") || strings.Contains(body, "no data in this range") {
		t.Fatalf("chart page: %d\n%s", code, body)
	}
	// The API is unchanged under the UI: JSON errors for unknown API routes.
	code, body = get("/api/v1/nope")
	if code != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("unknown API route: %d %s", code, body)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/testutil"
)

// lockedWriter lets the test read what `sonde up` printed so far.
type lockedWriter = testutil.SyncBuffer

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestUp runs `sonde up` as the README says and checks that the whole
// system works: the local agent's host checks and the enrolled appliance's
// sample probe checks reach the hub.
func TestUp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sonde-data")
	listen, stream := freeAddr(t), freeAddr(t)
	out, logs := &lockedWriter{}, &lockedWriter{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runHub(ctx, []string{"--data", dir, "--listen", listen, "--stream-listen", stream, "--log-level", "debug"}, out, logs, true)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sonde up: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("sonde up did not stop")
		}
		if t.Failed() {
			t.Logf("output:\n%s\nlog:\n%s", out, logs)
		}
	}()
	testutil.WaitFor(t, "sonde up to start", 30*time.Second, func() bool { return strings.Contains(out.String(), "Stop with Ctrl-C.") })
	for _, want := range []string{"Local agent:", "Local appliance:", "Admin token:", "CA fingerprint:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output does not say %q", want)
		}
	}
	admin := regexp.MustCompile(`Admin token:\s+in (\S+)`).FindStringSubmatch(out.String())
	if admin == nil {
		t.Fatalf("no admin token path in:\n%s", out)
	}
	h := &testutil.Hub{Addr: listen}
	h.SetT(t)
	h.Admin = strings.TrimSpace(readFile(t, admin[1]))
	h.Client = testutil.CAClient(t, filepath.Join(dir, "tls", "ca.crt"))
	for _, sel := range []string{
		`sonde_cpu_cpus{collector="linux"}`,
		fmt.Sprintf(`sonde_tcp_open{collector="tcp",asset=%q}`, sampleAsset),
		fmt.Sprintf(`sonde_tls_daysLeft{collector="tls",asset=%q}`, sampleAsset),
		fmt.Sprintf(`sonde_icmp_received{collector="icmp",asset=%q}`, sampleAsset),
	} {
		testutil.WaitFor(t, sel, 45*time.Second, func() bool { return len(h.Samples(sel)) > 0 })
	}
	// The web UI's first login, with the one-time password printed.
	m := regexp.MustCompile(`log in as "admin" with the one-time password (\S+) `).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("sonde up does not print the first login:\n%s", out.String())
	}
	jar, _ := cookiejar.New(nil)
	web := testutil.CAClient(t, filepath.Join(dir, "tls", "ca.crt"))
	web.Jar = jar
	web.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := web.Get("https://" + listen + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(string(page))
	if csrf == nil {
		t.Fatalf("login page: %s", page)
	}
	resp, err = web.PostForm("https://"+listen+"/login", url.Values{"username": {"admin"}, "password": {m[1]}, "csrf": {csrf[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/password" {
		t.Fatalf("first login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The sample conditions, and no alert on a healthy machine's hub.
	var conds []struct {
		Name string `json:"name"`
	}
	local := strings.TrimSpace(readFile(t, filepath.Join(dir, "up", "container-id")))
	h.Must(200, "GET", "/api/v1/container/"+local+"/conditions", nil, &conds)
	if len(conds) != 3 {
		t.Errorf("sample conditions: %+v", conds)
	}
	var alerts []struct {
		Message string `json:"message"`
	}
	h.Must(200, "GET", "/api/v1/container/1/alerts?status=open", nil, &alerts)
	for _, a := range alerts {
		if !strings.Contains(a.Message, "full") { // a full disk of the machine running the test is not the hub's fault
			t.Errorf("open alert on the sample asset: %s", a.Message)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var _ io.Writer = (*lockedWriter)(nil)

//go:build linux

package testutil

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/tlsca"
)

const webdriverTestPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>WebDriver test</title>
<script src="/app.js" defer></script></head>
<body>
<form id="f" onsubmit="return false">
<input id="name" name="name" autocomplete="off">
<button id="go" type="button">Greet</button>
</form>
<p id="greeting">nobody</p>
<a id="other" href="/other">other</a>
</body></html>
`

const webdriverTestScript = `document.getElementById("go").addEventListener("click", () => {
  document.getElementById("greeting").textContent = "Hello, " + document.getElementById("name").value + "!";
});
`

// quietTLSServer is httptest.NewUnstartedServer without the log lines of
// refused TLS handshakes, which the tests provoke.
func quietTLSServer(h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	return srv
}

func webdriverTestHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "__Host-sid", Value: "s3cret", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(webdriverTestPage))
	})
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write([]byte(webdriverTestScript))
	})
	mux.HandleFunc("GET /other", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>Other</title><p id="here">other page</p>`))
	})
	return mux
}

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// TestWebDriver drives a page served over HTTPS by httptest, whose
// self-signed certificate Chromium accepts by its SPKI hash only.
func TestWebDriver(t *testing.T) {
	srv := quietTLSServer(webdriverTestHandler())
	srv.StartTLS()
	defer srv.Close()
	if os.Getenv("SONDE_ARTIFACTS") == "" {
		// Keep this test's screenshot out of the source tree.
		t.Setenv("SONDE_ARTIFACTS", t.TempDir())
	}
	hash, err := SPKIHash(srv.Certificate().Raw)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b := StartBrowserWith(t, BrowserOptions{SPKIHashes: []string{hash}})
	t.Logf("browser started in %v", time.Since(start))

	home := srv.URL + "/"
	if err := b.Navigate(home); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Title(); err != nil || got != "WebDriver test" {
		t.Fatalf("Title() = %q, %v; want %q", got, err, "WebDriver test")
	}
	if got, err := b.URL(); err != nil || got != home {
		t.Fatalf("URL() = %q, %v; want %q", got, err, home)
	}

	name, err := b.WaitFor("#name", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := name.SendKeys("Ada"); err != nil {
		t.Fatal(err)
	}
	if v, err := name.Property("value"); err != nil || string(v) != `"Ada"` {
		t.Fatalf("value property = %s, %v; want %q", v, err, "Ada")
	}
	if err := name.Clear(); err != nil {
		t.Fatal(err)
	}
	if err := name.SendKeys("Grace"); err != nil {
		t.Fatal(err)
	}
	button, err := b.Find("#go")
	if err != nil {
		t.Fatal(err)
	}
	if err := button.Click(); err != nil {
		t.Fatal(err)
	}
	greeting, err := b.Find("#greeting")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := greeting.Text(); err != nil || got != "Hello, Grace!" {
		t.Fatalf("greeting = %q, %v; want %q", got, err, "Hello, Grace!")
	}
	if got, err := button.Attribute("type"); err != nil || got != "button" {
		t.Fatalf("Attribute(type) = %q, %v", got, err)
	}
	if got, err := button.Attribute("data-absent"); err != nil || got != "" {
		t.Fatalf("Attribute(data-absent) = %q, %v; want empty", got, err)
	}
	if els, err := b.FindAll("form input, form button"); err != nil || len(els) != 2 {
		t.Fatalf("FindAll = %d elements, %v; want 2", len(els), err)
	}
	if els, err := b.FindAll(".absent"); err != nil || len(els) != 0 {
		t.Fatalf("FindAll(.absent) = %d elements, %v; want none", len(els), err)
	}

	_, err = b.Find("#absent")
	var werr *WebDriverError
	if !errors.As(err, &werr) || werr.Code != "no such element" {
		t.Fatalf("Find(#absent) = %v; want a WebDriverError %q", err, "no such element")
	}
	if !strings.Contains(err.Error(), "POST /session/") || !strings.Contains(err.Error(), "#absent") {
		t.Errorf("error %q does not name the command and the selector", err)
	}
	if _, err := b.WaitFor("#absent", 200*time.Millisecond); !errors.As(err, &werr) || werr.Code != "no such element" {
		t.Fatalf("WaitFor(#absent) = %v; want a WebDriverError %q", err, "no such element")
	}
	if _, err := b.ExecuteScript("throw new Error('boom')"); !errors.As(err, &werr) || werr.Code != "javascript error" {
		t.Fatalf("a throwing script gave %v; want a WebDriverError %q", err, "javascript error")
	}

	v, err := b.ExecuteScript("return [arguments[0] * 2, arguments[1].id, document.title];", 21, button)
	if err != nil {
		t.Fatal(err)
	}
	var got []any
	if err := json.Unmarshal(v, &got); err != nil || len(got) != 3 || got[0] != 42.0 || got[1] != "go" || got[2] != "WebDriver test" {
		t.Fatalf("ExecuteScript = %s, %v", v, err)
	}

	cookies, err := b.Cookies()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cookies {
		if c.Name == "__Host-sid" {
			found = c.Value == "s3cret" && c.Secure && c.HTTPOnly && c.SameSite == "Strict"
			if !found {
				t.Errorf("cookie %+v", c)
			}
		}
	}
	if !found {
		t.Errorf("no __Host-sid cookie in %+v", cookies)
	}
	if src, err := b.Source(); err != nil || !strings.Contains(src, `id="greeting"`) {
		t.Fatalf("Source() = %.200q, %v", src, err)
	}

	path := filepath.Join(t.TempDir(), "page.png")
	if err := b.Screenshot(path); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(path); err != nil || !bytes.HasPrefix(data, pngMagic) {
		t.Fatalf("screenshot: %v, starts with %q", err, data[:min(len(data), 8)])
	}
	b.Shot(t, "greeted")
	shot := filepath.Join(ArtifactDir(t), "greeted.png")
	if data, err := os.ReadFile(shot); err != nil || !bytes.HasPrefix(data, pngMagic) {
		t.Fatalf("Shot: %v", err)
	}

	other, err := b.Find("#other")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Click(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitFor("#here", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.Back(); err != nil {
		t.Fatal(err)
	}
	if got, err := b.URL(); err != nil || got != home {
		t.Fatalf("URL() after Back = %q, %v; want %q", got, err, home)
	}
	t.Logf("test done in %v", time.Since(start))
}

// TestWebDriverUntrusted checks that trust comes from the SPKI list: a
// browser without it does not load the page.
func TestWebDriverUntrusted(t *testing.T) {
	srv := quietTLSServer(webdriverTestHandler())
	srv.StartTLS()
	defer srv.Close()
	b := StartBrowser(t)
	err := b.Navigate(srv.URL + "/")
	if err == nil {
		// Chromium shows its certificate error page instead.
		_, err = b.Find("#greeting")
	}
	if err == nil {
		t.Fatal("the page loaded from a server with an untrusted certificate")
	}
	t.Logf("as expected: %v", err)
}

// TestWebDriverTLS is the hub's case: the hub's own CA (internal/tlsca)
// and server certificate, the server sending the leaf certificate only,
// the test knowing the CA file.
func TestWebDriverTLS(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := tlsca.LoadOrCreate(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.EnsureServerCert(dir, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Certificate) != 1 {
		t.Fatalf("the server certificate has a chain of %d; this test wants the leaf alone", len(cert.Certificate))
	}
	srv := quietTLSServer(webdriverTestHandler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	caFile := filepath.Join(dir, tlsca.CACertFile)

	b := StartBrowserTLS(t, caFile, addr)
	if err := b.Navigate(srv.URL + "/"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Title(); err != nil || got != "WebDriver test" {
		t.Fatalf("Title() = %q, %v", got, err)
	}

	// The certificate must chain to the CA file.
	other := filepath.Join(t.TempDir(), "other-ca.pem")
	otherCert := httptest.NewTLSServer(http.NotFoundHandler())
	defer otherCert.Close()
	if err := os.WriteFile(other, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherCert.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ServerSPKIHashes(addr, other); err == nil {
		t.Error("ServerSPKIHashes accepted a server whose certificate is not from the CA file")
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	if got := sanitizeArtifactName("a b/../c"); got != "a_b_.._c" {
		t.Errorf("sanitizeArtifactName = %q", got)
	}
	if got := sanitizeArtifactName(".."); got != "_.." {
		t.Errorf("sanitizeArtifactName(..) = %q", got)
	}
}

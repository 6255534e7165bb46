//go:build linux

package testutil

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A minimal W3C WebDriver client (https://www.w3.org/TR/webdriver2/) for
// end-to-end tests in a real browser: Debian's chromedriver driving Debian's
// headless Chromium over plain HTTP and JSON, so no third-party module is
// needed.

const (
	defaultChromedriver = "/usr/bin/chromedriver"
	defaultChromium     = "/usr/bin/chromium"

	// webdriverElementKey names the element reference in W3C answers (the
	// spec's "web element identifier").
	webdriverElementKey = "element-6066-11e4-a52e-4f735466cecf"

	// webdriverRequestTimeout bounds every command; the browser's own page
	// load and script timeouts are set a little lower so that it answers
	// with a WebDriver error first.
	webdriverRequestTimeout = 30 * time.Second
	browserCommandTimeout   = 25 * time.Second
	chromedriverStartup     = 20 * time.Second
)

// BrowserOptions configures StartBrowserWith. The zero value gives a
// browser that trusts only the system's certificate authorities.
type BrowserOptions struct {
	// SPKIHashes are base64 SHA-256 hashes of SubjectPublicKeyInfos (see
	// SPKIHash) of server certificates Chromium accepts whoever signed
	// them (--ignore-certificate-errors-spki-list). Chromium compares them
	// with the certificates the server sends, so pin the server's leaf
	// certificate (or a CA the server sends in its chain).
	SPKIHashes []string
	// AcceptInsecureCerts makes the browser accept any certificate. Only
	// for a test that cannot know the server's key; prefer SPKIHashes.
	AcceptInsecureCerts bool
	// Args are added to Chromium's command line.
	Args []string
}

// Browser is a WebDriver session in a headless Chromium, started by
// StartBrowser. It is closed when the test ends.
type Browser struct {
	// Session is the WebDriver session id.
	Session string
	// Dir holds the browser profile and chromedriver's log.
	Dir string

	base    string // http://127.0.0.1:PORT
	client  *http.Client
	logPath string
}

// Element is a reference to an element of the current page.
type Element struct {
	ID string
	b  *Browser
}

// MarshalJSON encodes the element as a W3C element reference, so an
// Element can be an argument of ExecuteScript.
func (e Element) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{webdriverElementKey: e.ID})
}

// Cookie is a cookie of the current page as WebDriver reports it.
type Cookie struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Path     string `json:"path"`
	Domain   string `json:"domain"`
	Secure   bool   `json:"secure"`
	HTTPOnly bool   `json:"httpOnly"`
	// Expiry is in seconds since the epoch; 0 for a session cookie.
	Expiry   int64  `json:"expiry,omitempty"`
	SameSite string `json:"sameSite"`
}

// WebDriverError is an error answer of the WebDriver server, such as Code
// "no such element". Errors of Browser and Element methods wrap it: use
// errors.As.
type WebDriverError struct {
	// Command is the request, e.g. "POST /session/ID/element".
	Command string
	// Status is the HTTP status of the answer.
	Status int
	// Code is the W3C error code ("no such element", "timeout", …).
	Code    string
	Message string
}

func (e *WebDriverError) Error() string {
	// chromedriver's messages start with the code already.
	if strings.HasPrefix(e.Message, e.Code) {
		return fmt.Sprintf("webdriver %s: %s", e.Command, e.Message)
	}
	return fmt.Sprintf("webdriver %s: %s: %s", e.Command, e.Code, e.Message)
}

// RequireBrowser returns the paths of chromedriver and Chromium:
// $CHROMEDRIVER or /usr/bin/chromedriver, $CHROMIUM or /usr/bin/chromium.
// When either is missing the test fails under CI=true and is skipped
// elsewhere.
func RequireBrowser(t testing.TB) (chromedriver, chromium string) {
	t.Helper()
	chromedriver, chromium = os.Getenv("CHROMEDRIVER"), os.Getenv("CHROMIUM")
	if chromedriver == "" {
		chromedriver = defaultChromedriver
	}
	if chromium == "" {
		chromium = defaultChromium
	}
	var missing []string
	for _, p := range []string{chromedriver, chromium} {
		fi, err := os.Stat(p) // #nosec G703 -- the test machine's own browser paths (env or /usr/bin)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("no executable %s", strings.Join(missing, " or "))
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: CI must have Debian's chromium and chromium-driver packages (scripts/install-test-deps.sh)", msg)
		}
		t.Skipf("%s: install Debian's chromium and chromium-driver packages (apt-get install chromium chromium-driver), or set CHROMIUM and CHROMEDRIVER, to run this test", msg)
	}
	return chromedriver, chromium
}

// StartBrowser starts chromedriver on 127.0.0.1 at a free port with a
// headless Chromium session and closes both when the test ends. Without
// them the test fails under CI=true and is skipped elsewhere.
//
// Such a browser trusts no test certificate: use StartBrowserTLS or
// BrowserOptions.SPKIHashes for an HTTPS server. Note that Navigate to a
// server with an untrusted certificate succeeds, showing Chromium's
// "Privacy error" page.
func StartBrowser(t testing.TB) *Browser {
	t.Helper()
	return StartBrowserWith(t, BrowserOptions{})
}

// StartBrowserTLS is StartBrowser for the HTTPS server at addr
// ("127.0.0.1:PORT") whose certificate chains to the CA in caFile (the
// hub's CA.pem): it connects to the server, checks its certificate
// against caFile, and has Chromium accept that certificate by the hash of
// its key. Chromium has no option to trust a CA file, and its SPKI list is
// compared with the certificates the server sends, which for the hub is
// the leaf alone.
func StartBrowserTLS(t testing.TB, caFile, addr string) *Browser {
	t.Helper()
	RequireBrowser(t)
	hashes, err := ServerSPKIHashes(addr, caFile)
	if err != nil {
		t.Fatal(err)
	}
	return StartBrowserWith(t, BrowserOptions{SPKIHashes: hashes})
}

// StartBrowserWith is StartBrowser with options.
func StartBrowserWith(t testing.TB, opts BrowserOptions) *Browser {
	t.Helper()
	driverBin, chromiumBin := RequireBrowser(t)

	// TempDir before the cleanup below, so that the profile is removed
	// after the browser has stopped.
	dir := t.TempDir()
	b := &Browser{
		Dir:     dir,
		logPath: filepath.Join(dir, "chromedriver.log"),
		client:  &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true}},
	}
	profile := filepath.Join(dir, "profile")
	if err := os.Mkdir(profile, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromedriver log (%s):\n%s", b.logPath, b.Log())
		}
	})

	// The port is picked by binding it and letting it go, so another
	// process may take it before chromedriver does: try a few times.
	var p *snmpdProcess
	var lastErr error
	for attempt := 0; attempt < 5 && p == nil; attempt++ {
		port, err := freeTCPPort()
		if err != nil {
			t.Fatal(err)
		}
		b.base = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p, err = startChromedriver(driverBin, port, b.logPath)
		if err != nil {
			t.Fatalf("starting chromedriver: %v", err)
		}
		if lastErr = b.waitReady(p); lastErr != nil {
			stopChromedriver(p)
			p = nil
		}
	}
	if p == nil {
		t.Fatalf("chromedriver did not start: %v\nlog:\n%s", lastErr, b.Log())
	}
	t.Cleanup(func() {
		if b.Session != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := b.do(ctx, http.MethodDelete, "/session/"+url.PathEscape(b.Session), nil)
			cancel()
			if err != nil {
				t.Logf("closing the browser: %v", err)
			}
		}
		stopChromedriver(p)
	})

	args := []string{
		"--headless=new",
		"--no-sandbox", // Chromium runs as root in CI containers
		"--disable-gpu",
		"--disable-quic",
		"--no-first-run",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-dev-shm-usage",
		"--no-proxy-server",
		"--window-size=1280,900",
		"--user-data-dir=" + profile,
	}
	if len(opts.SPKIHashes) > 0 {
		// Honoured only together with --user-data-dir.
		args = append(args, "--ignore-certificate-errors-spki-list="+strings.Join(opts.SPKIHashes, ","))
	}
	args = append(args, opts.Args...)
	caps := map[string]any{
		"capabilities": map[string]any{
			"alwaysMatch": map[string]any{
				"browserName":         "chrome",
				"acceptInsecureCerts": opts.AcceptInsecureCerts,
				"timeouts": map[string]any{
					"pageLoad": browserCommandTimeout.Milliseconds(),
					"script":   browserCommandTimeout.Milliseconds(),
					"implicit": 0,
				},
				"goog:chromeOptions": map[string]any{
					"binary": chromiumBin,
					"args":   args,
				},
			},
		},
	}
	// Starting Chromium can take a while on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v, err := b.do(ctx, http.MethodPost, "/session", caps)
	if err != nil {
		t.Fatalf("creating a browser session: %v", err)
	}
	var s struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(v, &s); err != nil || s.SessionID == "" {
		t.Fatalf("creating a browser session: no session id in %s (%v)", v, err)
	}
	b.Session = s.SessionID
	return b
}

// Log returns what chromedriver logged so far.
func (b *Browser) Log() string {
	data, err := os.ReadFile(b.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", b.logPath, err)
	}
	return string(data)
}

func startChromedriver(bin string, port int, logPath string) (*snmpdProcess, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600) // #nosec G304 -- a path in the test's own t.TempDir()
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	// Without --allowed-ips chromedriver listens on loopback only
	// (127.0.0.1 and ::1) and refuses other clients; even an empty
	// --allowed-ips= makes it listen on every address.
	cmd := exec.Command(bin, "--port="+strconv.Itoa(port), "--log-level=INFO") // #nosec G204 -- test helper: bin is chromedriver, the arguments are generated
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Setpgid: chromedriver and the Chromium processes it starts share a
	// process group, stopped as one. Pdeathsig as for snmpd: if the test
	// binary dies without its cleanups, the kernel stops chromedriver.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &snmpdProcess{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	return p, nil
}

// stopChromedriver sends SIGTERM to chromedriver's process group, SIGKILL
// after 5 s, waits for chromedriver, then kills the rest of the group and
// waits (at most 5 s) until none of it runs, so that no Chromium process
// still writes to the profile when the test's temporary directory is
// removed. Zombies do not count: reaping the orphans is up to PID 1, which
// in some containers takes seconds.
func stopChromedriver(p *snmpdProcess) {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && groupRunning(pgid) {
		time.Sleep(20 * time.Millisecond)
	}
}

// groupRunning reports whether a process of the group pgid is alive
// (zombies aside), by /proc.
func groupRunning(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")) // #nosec G304 -- /proc/PID/stat
		if err != nil {
			continue
		}
		// "pid (comm) state ppid pgrp ...": comm may hold anything, so
		// parse after its last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[0] != "X" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// waitReady polls /status until chromedriver is ready for a session (at
// most 20 s), or it exits.
func (b *Browser) waitReady(p *snmpdProcess) error {
	deadline := time.Now().Add(chromedriverStartup)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			p.exited <- err
			return fmt.Errorf("chromedriver exited: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		v, err := b.do(ctx, http.MethodGet, "/status", nil)
		cancel()
		if err == nil {
			var st struct {
				Ready   bool   `json:"ready"`
				Message string `json:"message"`
			}
			if err = json.Unmarshal(v, &st); err == nil && !st.Ready {
				err = fmt.Errorf("not ready: %s", st.Message)
			}
			if err == nil {
				return nil
			}
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %v: %v", chromedriverStartup, lastErr)
}

// do sends a WebDriver command and returns the "value" of the answer.
func (b *Browser) do(ctx context.Context, method, path string, body any) (json.RawMessage, error) {
	command := method + " " + path
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("webdriver %s: %w", command, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("webdriver %s: %w", command, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("webdriver %s: %w", command, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("webdriver %s: reading the answer: %w", command, err)
	}
	var answer struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &answer); err != nil {
		return nil, fmt.Errorf("webdriver %s: status %d, answer %.200q: %w", command, resp.StatusCode, data, err)
	}
	var werr struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if len(answer.Value) > 0 && answer.Value[0] == '{' {
		_ = json.Unmarshal(answer.Value, &werr)
	}
	if resp.StatusCode != http.StatusOK || werr.Error != "" {
		e := &WebDriverError{Command: command, Status: resp.StatusCode, Code: werr.Error, Message: werr.Message}
		if e.Code == "" {
			e.Code, e.Message = "unknown error", fmt.Sprintf("status %d: %.200s", resp.StatusCode, data)
		}
		return nil, e
	}
	return answer.Value, nil
}

// cmd sends a command of the session; path starts with "/".
func (b *Browser) cmd(method, path string, body any) (json.RawMessage, error) {
	if b.Session == "" {
		return nil, errors.New("webdriver: no session")
	}
	ctx, cancel := context.WithTimeout(context.Background(), webdriverRequestTimeout)
	defer cancel()
	return b.do(ctx, method, "/session/"+url.PathEscape(b.Session)+path, body)
}

// cmdInto sends a command and decodes its value into out.
func (b *Browser) cmdInto(out any, method, path string, body any) error {
	v, err := b.cmd(method, path, body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(v, out); err != nil {
		return fmt.Errorf("webdriver %s %s: decoding %.200s: %w", method, path, v, err)
	}
	return nil
}

// Navigate loads url and waits for the page to load.
func (b *Browser) Navigate(url string) error {
	_, err := b.cmd(http.MethodPost, "/url", map[string]string{"url": url})
	return err
}

// SetWindowSize resizes the browser window (CSS pixels), e.g. to a
// phone's 390 × 844.
func (b *Browser) SetWindowSize(width, height int) error {
	_, err := b.cmd(http.MethodPost, "/window/rect", map[string]int{"width": width, "height": height})
	return err
}

// URL returns the URL of the current page.
func (b *Browser) URL() (string, error) {
	var s string
	err := b.cmdInto(&s, http.MethodGet, "/url", nil)
	return s, err
}

// Title returns the title of the current page.
func (b *Browser) Title() (string, error) {
	var s string
	err := b.cmdInto(&s, http.MethodGet, "/title", nil)
	return s, err
}

// Back goes back in the browser history.
func (b *Browser) Back() error {
	_, err := b.cmd(http.MethodPost, "/back", struct{}{})
	return err
}

// Source returns the serialized DOM of the current page.
func (b *Browser) Source() (string, error) {
	var s string
	err := b.cmdInto(&s, http.MethodGet, "/source", nil)
	return s, err
}

// Cookies returns the cookies visible to the current page, HttpOnly ones
// included.
func (b *Browser) Cookies() ([]Cookie, error) {
	var cs []Cookie
	err := b.cmdInto(&cs, http.MethodGet, "/cookie", nil)
	return cs, err
}

// ExecuteScript runs script as the body of a function with args (an
// Element is passed as the DOM element) and returns what it returns, as
// JSON.
func (b *Browser) ExecuteScript(script string, args ...any) (json.RawMessage, error) {
	if args == nil {
		args = []any{}
	}
	return b.cmd(http.MethodPost, "/execute/sync", map[string]any{"script": script, "args": args})
}

// Find returns the first element matching the CSS selector. When there is
// none the error wraps a WebDriverError with Code "no such element".
func (b *Browser) Find(css string) (Element, error) {
	var ref map[string]string
	if err := b.cmdInto(&ref, http.MethodPost, "/element", map[string]string{"using": "css selector", "value": css}); err != nil {
		return Element{}, fmt.Errorf("finding %q: %w", css, err)
	}
	id := ref[webdriverElementKey]
	if id == "" {
		return Element{}, fmt.Errorf("finding %q: no element reference in the answer", css)
	}
	return Element{ID: id, b: b}, nil
}

// FindAll returns the elements matching the CSS selector, none if none
// does.
func (b *Browser) FindAll(css string) ([]Element, error) {
	var refs []map[string]string
	if err := b.cmdInto(&refs, http.MethodPost, "/elements", map[string]string{"using": "css selector", "value": css}); err != nil {
		return nil, fmt.Errorf("finding %q: %w", css, err)
	}
	els := make([]Element, 0, len(refs))
	for _, r := range refs {
		els = append(els, Element{ID: r[webdriverElementKey], b: b})
	}
	return els, nil
}

// WaitFor polls every 50 ms for an element matching the CSS selector, at
// most timeout. It gives up at once on an error other than "no such
// element".
func (b *Browser) WaitFor(css string, timeout time.Duration) (Element, error) {
	deadline := time.Now().Add(timeout)
	for {
		e, err := b.Find(css)
		var werr *WebDriverError
		if err == nil || !errors.As(err, &werr) || werr.Code != "no such element" {
			return e, err
		}
		if time.Now().After(deadline) {
			return Element{}, fmt.Errorf("waited %v: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Screenshot writes a PNG of the viewport to path.
func (b *Browser) Screenshot(path string) error {
	var s string
	if err := b.cmdInto(&s, http.MethodGet, "/screenshot", nil); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("decoding the screenshot: %w", err)
	}
	return os.WriteFile(path, png, 0o600)
}

// Shot writes a screenshot to <ArtifactDir>/<name>.png and logs its path.
// A failure is reported with t.Error: the test goes on.
func (b *Browser) Shot(t testing.TB, name string) {
	t.Helper()
	dir, err := artifactDir(t)
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(dir, sanitizeArtifactName(name)+".png")
	if err := b.Screenshot(path); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", path)
}

func (e Element) path(rest string) string {
	return "/element/" + url.PathEscape(e.ID) + rest
}

// Click clicks the middle of the element, scrolled into view.
func (e Element) Click() error {
	_, err := e.b.cmd(http.MethodPost, e.path("/click"), struct{}{})
	return err
}

// SendKeys focuses the element and types text.
func (e Element) SendKeys(text string) error {
	_, err := e.b.cmd(http.MethodPost, e.path("/value"), map[string]string{"text": text})
	return err
}

// Clear empties an input or textarea.
func (e Element) Clear() error {
	_, err := e.b.cmd(http.MethodPost, e.path("/clear"), struct{}{})
	return err
}

// Text returns the rendered text of the element.
func (e Element) Text() (string, error) {
	var s string
	err := e.b.cmdInto(&s, http.MethodGet, e.path("/text"), nil)
	return s, err
}

// Attribute returns the HTML attribute name, "" when absent.
func (e Element) Attribute(name string) (string, error) {
	var s *string
	if err := e.b.cmdInto(&s, http.MethodGet, e.path("/attribute/"+url.PathEscape(name)), nil); err != nil || s == nil {
		return "", err
	}
	return *s, nil
}

// Property returns the DOM property name (such as "value" or "checked")
// as JSON; null when absent.
func (e Element) Property(name string) (json.RawMessage, error) {
	return e.b.cmd(http.MethodGet, e.path("/property/"+url.PathEscape(name)), nil)
}

// SPKIHash returns the base64 SHA-256 of the SubjectPublicKeyInfo of a
// certificate in PEM (the first CERTIFICATE block) or DER, as Chromium's
// --ignore-certificate-errors-spki-list wants it.
func SPKIHash(cert []byte) (string, error) {
	der := cert
	rest := cert
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			der = blk.Bytes
			break
		}
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "", fmt.Errorf("parsing the certificate: %w", err)
	}
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// ServerSPKIHashes connects to the TLS server at addr ("host:port"),
// checks its certificate against the CA certificates in caFile for the
// host of addr, and returns the SPKIHash of the certificates it sent.
func ServerSPKIHashes(addr, caFile string) ([]string, error) {
	pemData, err := os.ReadFile(caFile) // #nosec G304 -- the test names the file
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("checking the certificate of %s against %s: %w", addr, caFile, err)
	}
	defer c.Close()
	var hashes []string
	for _, cert := range c.(*tls.Conn).ConnectionState().PeerCertificates {
		h, err := SPKIHash(cert.Raw)
		if err != nil {
			return nil, err
		}
		hashes = append(hashes, h)
	}
	return hashes, nil
}

// ArtifactDir returns the directory for the test's screenshots and other
// files worth keeping after it, and makes it: $SONDE_ARTIFACTS/<test
// name> when SONDE_ARTIFACTS is set, else test-artifacts/<test name> in
// the module's root (the directory with go.mod above the working
// directory). Subtests get subdirectories.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	dir, err := artifactDir(t)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func artifactDir(t testing.TB) (string, error) {
	root := os.Getenv("SONDE_ARTIFACTS")
	if root == "" {
		mod, err := moduleRoot()
		if err != nil {
			return "", err
		}
		root = filepath.Join(mod, "test-artifacts")
	}
	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = sanitizeArtifactName(p)
	}
	dir := filepath.Join(append([]string{root}, parts...)...)
	if err := os.MkdirAll(dir, 0o750); err != nil { // #nosec G703 -- under the module root or SONDE_ARTIFACTS; names sanitised
		return "", err
	}
	return dir, nil
}

// sanitizeArtifactName keeps letters, digits, '.', '-' and '_' of a
// test or file name, replacing the rest with '_'.
func sanitizeArtifactName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
	if s == "" || strings.Trim(s, ".") == "" {
		s = "_" + s
	}
	return s
}

// moduleRoot returns the nearest directory with a go.mod at or above the
// working directory.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod in %s or above", wd)
		}
	}
}

//go:build linux

package testutil

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pythonPath is Debian's interpreter. The python3 on PATH may be a pyenv
// shim that does not see Debian's python3-* packages.
const pythonPath = "/usr/bin/python3"

// SMTPDOptions configures StartSMTPD. The zero value gives a server that
// offers STARTTLS with a certificate for 127.0.0.1 and localhost from a CA
// made for the test, requires STARTTLS before MAIL, and accepts every
// recipient without authentication.
type SMTPDOptions struct {
	// CertPEM and KeyPEM are the server's certificate chain and key. Empty
	// means a certificate from a new CA, see SMTPD.RootCAs.
	CertPEM, KeyPEM []byte
	// NoTLS makes a server that does not offer STARTTLS at all.
	NoTLS bool
	// Username and Password, when set, make AUTH (PLAIN, LOGIN, after
	// STARTTLS only) mandatory before MAIL.
	Username, Password string
	// RejectRecipients are answered with 550 at RCPT, DeferRecipients with
	// 450, and StallRecipients not at all (the server hangs on that RCPT).
	// Compared case-insensitively.
	RejectRecipients []string
	DeferRecipients  []string
	StallRecipients  []string
}

// SMTPD is a running aiosmtpd started by StartSMTPD. It is stopped when the
// test ends.
type SMTPD struct {
	// Addr is "127.0.0.1:PORT".
	Addr string
	// RootCAs verifies the server's certificate when StartSMTPD made it;
	// nil when the options gave one.
	RootCAs *x509.CertPool
	// Dir holds the configuration, the log and the received messages.
	Dir string

	msgDir  string
	logPath string
}

// SMTPMessage is one message the server accepted.
type SMTPMessage struct {
	MailFrom string   `json:"mail_from"`
	RcptTos  []string `json:"rcpt_tos"`
	// TLS reports whether the session had done STARTTLS.
	TLS bool `json:"tls"`
	// AuthLogin is the user the session authenticated as, or "".
	AuthLogin string `json:"auth_login"`
	// Data is the message as received (RFC 5322, CRLF line ends, dot
	// stuffing removed).
	Data []byte `json:"data"`
}

// Log returns what aiosmtpd wrote to stdout and stderr so far.
func (s *SMTPD) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", s.logPath, err)
	}
	return string(b)
}

// Messages returns the messages received so far, oldest first.
func (s *SMTPD) Messages() ([]SMTPMessage, error) {
	names, err := filepath.Glob(filepath.Join(s.msgDir, "msg-*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	msgs := make([]SMTPMessage, 0, len(names))
	for _, n := range names {
		b, err := os.ReadFile(n) // #nosec G304 -- a file in the test's own t.TempDir()
		if err != nil {
			return nil, err
		}
		var m SMTPMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("reading %s: %w", n, err)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// WaitMessages waits until at least n messages have been received, at most
// timeout, and returns them all.
func (s *SMTPD) WaitMessages(n int, timeout time.Duration) ([]SMTPMessage, error) {
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := s.Messages()
		if err != nil || len(msgs) >= n {
			return msgs, err
		}
		if time.Now().After(deadline) {
			return msgs, fmt.Errorf("got %d messages, want %d within %v", len(msgs), n, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// RequireAiosmtpd checks that Debian's python3-aiosmtpd is usable. When it
// is not the test fails under CI=true and is skipped elsewhere.
func RequireAiosmtpd(t testing.TB) {
	t.Helper()
	out, err := exec.Command(pythonPath, "-c", "import aiosmtpd.controller").CombinedOutput() // #nosec G204 -- fixed arguments
	if err != nil {
		msg := fmt.Sprintf("%s cannot import aiosmtpd (%v: %s)", pythonPath, err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: CI must have Debian's python3-aiosmtpd package (scripts/install-test-deps.sh)", msg)
		}
		t.Skipf("%s: install Debian's python3-aiosmtpd package (apt-get install python3-aiosmtpd) to run this test", msg)
	}
}

// smtpdScript runs aiosmtpd with the JSON configuration named by its
// argument, writing each accepted message to dir as msg-NNNNNN.json (made
// under another name and renamed, so a reader never sees half a file).
const smtpdScript = `
import asyncio, base64, json, os, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

with open(sys.argv[1]) as f:
    cfg = json.load(f)
count = 0

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        a = address.lower()
        if a in cfg["stall"]:
            await asyncio.sleep(3600)
        if a in cfg["reject"]:
            return "550 5.1.1 <%s>: recipient rejected" % address
        if a in cfg["defer"]:
            return "450 4.2.1 <%s>: mailbox busy, try later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        login = ""
        if isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8", "replace")
        rec = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "auth_login": login,
            "data": base64.b64encode(envelope.original_content).decode("ascii"),
        }
        p = os.path.join(cfg["dir"], "msg-%06d.json" % count)
        with open(p + ".tmp", "w") as f:
            json.dump(rec, f)
        os.replace(p + ".tmp", p)
        return "250 2.0.0 OK queued as %d" % count

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login.decode("utf-8", "replace") == cfg["username"]
          and auth_data.password.decode("utf-8", "replace") == cfg["password"])
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

kw = {}
if cfg["cert"]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cfg["cert"], cfg["key"])
    kw.update(tls_context=ctx, require_starttls=True)
if cfg["username"]:
    kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=True)

c = Controller(Handler(), hostname="127.0.0.1", port=cfg["port"],
               server_hostname="sonde-test-smtpd", **kw)
c.start()
print("aiosmtpd listening on 127.0.0.1:%d" % cfg["port"], flush=True)
while True:
    time.sleep(3600)
`

// StartSMTPD starts Debian's aiosmtpd (python3-aiosmtpd) on 127.0.0.1 at a
// free port, waits until it greets, and stops it when the test ends. Its
// output goes to the test log if the test fails. Without aiosmtpd the test
// fails under CI=true and is skipped elsewhere.
func StartSMTPD(t testing.TB, opts SMTPDOptions) *SMTPD {
	t.Helper()
	RequireAiosmtpd(t)

	s := &SMTPD{Dir: t.TempDir()}
	s.msgDir = filepath.Join(s.Dir, "messages")
	s.logPath = filepath.Join(s.Dir, "aiosmtpd.log")
	if err := os.Mkdir(s.msgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"dir":      s.msgDir,
		"cert":     "",
		"key":      "",
		"username": opts.Username,
		"password": opts.Password,
		"reject":   lower(opts.RejectRecipients),
		"defer":    lower(opts.DeferRecipients),
		"stall":    lower(opts.StallRecipients),
	}
	if !opts.NoTLS {
		certPEM, keyPEM := opts.CertPEM, opts.KeyPEM
		if len(certPEM) == 0 {
			certPEM, keyPEM, s.RootCAs = NewTLSCert(t, "127.0.0.1", "localhost")
		}
		cfg["cert"] = filepath.Join(s.Dir, "cert.pem")
		cfg["key"] = filepath.Join(s.Dir, "key.pem")
		if err := os.WriteFile(cfg["cert"].(string), certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg["key"].(string), keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(s.Dir, "smtpd.py")
	if err := os.WriteFile(script, []byte(smtpdScript), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("aiosmtpd on %s logged:\n%s", s.Addr, s.Log())
		}
	})

	// The port is picked by binding it and letting it go, so another
	// process may take it before aiosmtpd does: try a few times.
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freeTCPPort()
		if err != nil {
			t.Fatal(err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cfg["port"] = port
		b, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		confPath := filepath.Join(s.Dir, "smtpd.json")
		if err := os.WriteFile(confPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := startSMTPDProcess(script, confPath, s.logPath)
		if err != nil {
			t.Fatalf("starting aiosmtpd: %v", err)
		}
		if lastErr = waitSMTPD(s.Addr, p); lastErr == nil {
			t.Cleanup(p.stop)
			return s
		}
		p.stop()
	}
	t.Fatalf("aiosmtpd did not start: %v\nlog:\n%s", lastErr, s.Log())
	return nil
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// startSMTPDProcess starts the script; snmpdProcess (snmpd.go) is the
// generic started-daemon handle.
func startSMTPDProcess(script, conf, logPath string) (*snmpdProcess, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600) // #nosec G304 -- a path in the test's own t.TempDir()
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	// -I: isolated mode, so neither the environment (PYTHONPATH) nor the
	// user's site-packages change which aiosmtpd runs.
	cmd := exec.Command(pythonPath, "-I", script, conf) // #nosec G204 -- test helper: fixed interpreter, generated files
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// As for snmpd: if the test binary dies without its cleanups, the
	// kernel stops the server too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &snmpdProcess{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	return p, nil
}

// waitSMTPD polls addr until it answers with a 220 greeting (at most
// 10 s), or the server exits.
func waitSMTPD(addr string, p *snmpdProcess) error {
	deadline := time.Now().Add(10 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case err := <-p.exited:
			p.exited <- err
			return fmt.Errorf("aiosmtpd exited: %v", err)
		default:
		}
		if lastErr = greets(addr); lastErr == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no greeting within 10 s: %v", lastErr)
}

func greets(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "220") {
		return fmt.Errorf("greeting %q", strings.TrimSpace(line))
	}
	_, _ = c.Write([]byte("QUIT\r\n"))
	return nil
}

func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// NewTLSCert makes a CA and a server certificate signed by it for hosts
// (IP addresses or DNS names), valid for an hour. It returns the
// certificate and its key in PEM and a pool holding only the CA.
func NewTLSCert(t testing.TB, hosts ...string) (certPEM, keyPEM []byte, roots *x509.CertPool) {
	t.Helper()
	certPEM, keyPEM, roots, err := newTLSCert(hosts)
	if err != nil {
		t.Fatalf("making a test certificate: %v", err)
	}
	return certPEM, keyPEM, roots
}

func newTLSCert(hosts []string) (certPEM, keyPEM []byte, roots *x509.CertPool, err error) {
	if len(hosts) == 0 {
		return nil, nil, nil, errors.New("no host")
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sonde test CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	roots = x509.NewCertPool()
	roots.AddCert(ca)
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, roots, nil
}

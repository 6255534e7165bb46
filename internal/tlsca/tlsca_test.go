package tlsca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testSANs is a fixed SAN set, so tests do not depend on the host name.
var testSANs = []string{"localhost", "127.0.0.1", "::1", "hub.example.com"}

func newCA(t *testing.T) (*CA, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	ca, created, err := LoadOrCreate(dir, nil)
	if err != nil {
		t.Fatalf("LoadOrCreate: %v", err)
	}
	if !created {
		t.Fatal("LoadOrCreate on an empty directory: created = false")
	}
	return ca, dir
}

func ensure(t *testing.T, ca *CA, dir string, sans []string, now time.Time) tls.Certificate {
	t.Helper()
	cert, err := ca.EnsureServerCert(dir, sans, now)
	if err != nil {
		t.Fatalf("EnsureServerCert(%v): %v", sans, err)
	}
	return cert
}

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestCreateWritesFilesWithModes(t *testing.T) {
	ca, dir := newCA(t)
	ensure(t, ca, dir, testSANs, time.Now())

	for _, tc := range []struct {
		name string
		want os.FileMode
	}{
		{".", 0o700},
		{CAKeyFile, 0o600},
		{ServerKeyFile, 0o600},
		{CACertFile, 0o644},
		{ServerCertFile, 0o644},
	} {
		if got := perm(t, filepath.Join(dir, tc.name)); got != tc.want {
			t.Errorf("mode of %s = %v, want %v", tc.name, got, tc.want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{CACertFile, CAKeyFile, ServerCertFile, ServerKeyFile}; !slices.Equal(names, want) {
		t.Errorf("files in %s = %v, want exactly %v (no temporary files left)", dir, names, want)
	}

	data, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, ca.CertPEM()) {
		t.Error("ca.crt differs from CertPEM()")
	}
	c := ca.Certificate()
	if !c.IsCA || !c.BasicConstraintsValid || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA certificate: IsCA=%v BasicConstraintsValid=%v KeyUsage=%v", c.IsCA, c.BasicConstraintsValid, c.KeyUsage)
	}
	if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", c.PublicKey)
	}
	if life := c.NotAfter.Sub(c.NotBefore); life < 10*365*24*time.Hour || life > 10*366*24*time.Hour+2*clockSkew {
		t.Errorf("CA lifetime = %v, want about 10 years", life)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(keyPEM); block == nil || block.Type != "PRIVATE KEY" {
		t.Errorf("ca.key is not a PKCS #8 PEM key")
	}
}

func TestLoadOrCreateReusesCA(t *testing.T) {
	ca1, dir := newCA(t)
	ca2, created, err := LoadOrCreate(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("second LoadOrCreate: %v", err)
	}
	if created {
		t.Error("second LoadOrCreate: created = true")
	}
	if ca1.Fingerprint() != ca2.Fingerprint() {
		t.Errorf("fingerprint changed: %s -> %s", ca1.Fingerprint(), ca2.Fingerprint())
	}
	if !bytes.Equal(ca1.CertPEM(), ca2.CertPEM()) {
		t.Error("CertPEM changed")
	}
	// The loaded key must be the CA's: a certificate it issues verifies.
	cert := ensure(t, ca2, dir, testSANs, time.Now())
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: ca1.Pool(), DNSName: "localhost"}); err != nil {
		t.Errorf("server certificate from reloaded CA does not verify: %v", err)
	}
}

func TestLoadOrCreateTightensDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreate(dir, nil); err != nil {
		t.Fatal(err)
	}
	if got := perm(t, dir); got != 0o700 {
		t.Errorf("directory mode = %v, want 0700", got)
	}
}

func TestLoadOrCreatePartialOrBadCA(t *testing.T) {
	otherKey := func(t *testing.T) []byte {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, err := encodeKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name        string
		mutate      func(t *testing.T, dir string)
		wantErr     []string // substrings; nil means success
		wantCreated bool
	}{
		{
			name:    "cert without key",
			mutate:  func(t *testing.T, dir string) { mustRemove(t, filepath.Join(dir, CAKeyFile)) },
			wantErr: []string{CAKeyFile, "does not", "restore"},
		},
		{
			name:        "key without cert",
			mutate:      func(t *testing.T, dir string) { mustRemove(t, filepath.Join(dir, CACertFile)) },
			wantCreated: true,
		},
		{
			name: "key of another CA",
			mutate: func(t *testing.T, dir string) {
				mustWrite(t, filepath.Join(dir, CAKeyFile), otherKey(t), 0o600)
			},
			wantErr: []string{"does not match", CAKeyFile, CACertFile},
		},
		{
			name: "garbage key",
			mutate: func(t *testing.T, dir string) {
				mustWrite(t, filepath.Join(dir, CAKeyFile), []byte("not a key"), 0o600)
			},
			wantErr: []string{"parsing private key", CAKeyFile},
		},
		{
			name: "garbage cert",
			mutate: func(t *testing.T, dir string) {
				mustWrite(t, filepath.Join(dir, CACertFile), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644)
			},
			wantErr: []string{"parsing certificate", CACertFile},
		},
		{
			name: "not a CA certificate",
			mutate: func(t *testing.T, dir string) {
				ca, _, err := LoadOrCreate(dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				ensure(t, ca, dir, testSANs, time.Now())
				copyFile(t, filepath.Join(dir, ServerCertFile), filepath.Join(dir, CACertFile))
				copyFile(t, filepath.Join(dir, ServerKeyFile), filepath.Join(dir, CAKeyFile))
			},
			wantErr: []string{"not a CA certificate", CACertFile},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig, dir := newCA(t)
			tc.mutate(t, dir)
			ca, created, err := LoadOrCreate(dir, nil)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("LoadOrCreate succeeded, want error")
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadOrCreate: %v", err)
			}
			if created != tc.wantCreated {
				t.Errorf("created = %v, want %v", created, tc.wantCreated)
			}
			if tc.wantCreated && ca.Fingerprint() == orig.Fingerprint() {
				t.Error("a new CA has the old fingerprint")
			}
		})
	}
}

func TestEnsureServerCertReuseAndReissue(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string) // after the first issue
		ca      func(t *testing.T, orig *CA) *CA
		sans    []string
		now     time.Time
		reissue bool
	}{
		{name: "unchanged", sans: testSANs, now: now},
		{name: "same set, other order and case", sans: []string{"HUB.example.com.", "::1", "localhost", "127.0.0.1", "localhost"}, now: now},
		{name: "a day later", sans: testSANs, now: now.Add(24 * time.Hour)},
		{name: "31 days before expiry", sans: testSANs, now: now.Add(serverValidity - 31*24*time.Hour)},
		{name: "29 days before expiry", sans: testSANs, now: now.Add(serverValidity - 29*24*time.Hour), reissue: true},
		{name: "expired", sans: testSANs, now: now.Add(serverValidity + time.Hour), reissue: true},
		// Before the CA's own NotBefore too, so only the new leaf's own
		// validity is checked below.
		{name: "clock went back before NotBefore", sans: testSANs, now: now.Add(-2 * clockSkew), reissue: true},
		{name: "SAN added", sans: append(slices.Clone(testSANs), "10.0.0.7"), now: now, reissue: true},
		{name: "SAN removed", sans: testSANs[:3], now: now, reissue: true},
		{name: "SAN replaced", sans: []string{"localhost", "127.0.0.1", "::1", "other.example.com"}, now: now, reissue: true},
		{
			name: "signed by another CA",
			ca: func(t *testing.T, _ *CA) *CA {
				other, _ := newCA(t)
				return other
			},
			sans: testSANs, now: now, reissue: true,
		},
		{
			name: "server.crt corrupt",
			prepare: func(t *testing.T, dir string) {
				mustWrite(t, filepath.Join(dir, ServerCertFile), []byte("junk"), 0o644)
			},
			sans: testSANs, now: now, reissue: true,
		},
		{
			name:    "server.key missing",
			prepare: func(t *testing.T, dir string) { mustRemove(t, filepath.Join(dir, ServerKeyFile)) },
			sans:    testSANs, now: now, reissue: true,
		},
		{
			name: "server.key does not match",
			prepare: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(dir, CAKeyFile), filepath.Join(dir, ServerKeyFile))
			},
			sans: testSANs, now: now, reissue: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ca, dir := newCA(t)
			first := ensure(t, ca, dir, testSANs, now)
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			if tc.ca != nil {
				ca = tc.ca(t, ca)
			}
			second := ensure(t, ca, dir, tc.sans, tc.now)
			reissued := !bytes.Equal(first.Certificate[0], second.Certificate[0])
			if reissued != tc.reissue {
				t.Fatalf("reissued = %v, want %v", reissued, tc.reissue)
			}
			// Whatever happened, the files hold what was returned, the
			// pair matches, and the certificate is valid for tc.sans.
			onDisk, err := LoadKeyPair(filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile))
			if err != nil {
				t.Fatalf("LoadKeyPair of the files written: %v", err)
			}
			if !bytes.Equal(onDisk.Certificate[0], second.Certificate[0]) {
				t.Error("server.crt differs from the returned certificate")
			}
			leaf := second.Leaf
			if tc.now.Before(leaf.NotBefore) || !tc.now.Before(leaf.NotAfter) {
				t.Errorf("certificate valid %v to %v, not at now %v", leaf.NotBefore, leaf.NotAfter, tc.now)
			}
			verifyAt := tc.now
			if verifyAt.Before(ca.Certificate().NotBefore) {
				verifyAt = ca.Certificate().NotBefore
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: verifyAt, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("certificate does not verify: %v", err)
			}
			for _, s := range tc.sans {
				if err := leaf.VerifyHostname(s); err != nil {
					t.Errorf("certificate not valid for %q: %v", s, err)
				}
			}
			if reissued {
				// A third start with the same inputs reuses the new one.
				third := ensure(t, ca, dir, tc.sans, tc.now)
				if !bytes.Equal(third.Certificate[0], second.Certificate[0]) {
					t.Error("freshly reissued certificate was reissued again")
				}
			}
		})
	}
}

func TestServerCertContents(t *testing.T) {
	ca, dir := newCA(t)
	now := time.Now()
	cert := ensure(t, ca, dir, []string{"localhost", "127.0.0.1", "::1", "*.hub.example.com", "::ffff:10.1.2.3"}, now)
	c := cert.Leaf
	if !slices.Equal(c.DNSNames, []string{"localhost", "*.hub.example.com"}) {
		t.Errorf("DNSNames = %v", c.DNSNames)
	}
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"127.0.0.1", "::1", "10.1.2.3"}) {
		t.Errorf("IPAddresses = %v", ips)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || c.IsCA {
		t.Errorf("ExtKeyUsage = %v, IsCA = %v", c.ExtKeyUsage, c.IsCA)
	}
	if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("server key is %T, want ECDSA P-256", c.PublicKey)
	}
	if got := c.NotAfter.Sub(now); got < serverValidity-time.Second || got > serverValidity+time.Second {
		t.Errorf("server certificate valid for %v after now, want %v", got, serverValidity)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v is not a positive 128-bit number", c.SerialNumber)
	}
	if err := c.VerifyHostname("a.hub.example.com"); err != nil {
		t.Errorf("wildcard SAN does not match: %v", err)
	}
}

func TestServerCertLimitedByCA(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	// A CA created 9.8 years ago expires in about 2.4 months.
	ca, err := createCA(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile), slog.New(slog.DiscardHandler), now.AddDate(-10, 2, 0))
	if err != nil {
		t.Fatal(err)
	}
	cert := ensure(t, ca, dir, testSANs, now)
	if !cert.Leaf.NotAfter.Equal(ca.Certificate().NotAfter) {
		t.Errorf("server NotAfter = %v, want the CA's %v", cert.Leaf.NotAfter, ca.Certificate().NotAfter)
	}

	// An expired CA issues nothing, and says what to do.
	expired, err := createCA(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile), slog.New(slog.DiscardHandler), now.AddDate(-11, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := expired.EnsureServerCert(t.TempDir(), testSANs, now); err == nil || !strings.Contains(err.Error(), "CA expired") {
		t.Errorf("EnsureServerCert with an expired CA: err = %v, want CA expired", err)
	}
	if _, err := expired.SignClientCSR(newCSR(t, nil), "x", time.Hour); err == nil || !strings.Contains(err.Error(), "CA expired") {
		t.Errorf("SignClientCSR with an expired CA: err = %v, want CA expired", err)
	}
	// It still loads (with an error logged), so the hub can explain.
	if _, _, err := LoadOrCreate(dir, nil); err != nil {
		t.Errorf("LoadOrCreate of an expired CA: %v", err)
	}
}

func TestSANValidation(t *testing.T) {
	good := []struct{ in, want string }{
		{"localhost", "localhost"},
		{"Hub.Example.COM.", "hub.example.com"},
		{"  hub.example.com ", "hub.example.com"},
		{"*.example.com", "*.example.com"},
		{"my_host.lan", "my_host.lan"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"10.1.2.3", "10.1.2.3"},
		{"2001:DB8::1", "2001:db8::1"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
		{"a1.b2", "a1.b2"},
		{strings.Repeat("a", 63) + ".com", strings.Repeat("a", 63) + ".com"},
	}
	for _, tc := range good {
		got, err := normalizeSAN(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("normalizeSAN(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, mention string }{
		{"", "empty"},
		{"   ", "empty"},
		{"foo bar", "' '"},
		{"https://hub.example.com", "URL"},
		{"hub.example.com:8443", "port"},
		{"[::1]", "brackets"},
		{"10.0.0.0/8", "prefix"},
		{"fe80::1%eth0", "zone"},
		{"999.1.1.1", "mistyped IP"},
		{"10.1.2", "mistyped IP"},
		{"a..b", "empty label"},
		{".example.com", "empty label"},
		{"-a.example.com", "'-'"},
		{"a-.example.com", "'-'"},
		{"bücher.example", "xn--"},
		{"*", "wildcard"},
		{"a*.example.com", "wildcard"},
		{"a.*.example.com", "wildcard"},
		{strings.Repeat("a", 64) + ".com", "longer than 63"},
		{strings.Repeat("abcdefg.", 32) + "com", "longer than 253"},
		{"host;rm -rf", "not allowed"},
	}
	for _, tc := range bad {
		_, err := normalizeSAN(tc.in)
		if err == nil {
			t.Errorf("normalizeSAN(%q) succeeded, want error", tc.in)
			continue
		}
		if !strings.Contains(err.Error(), tc.mention) || !strings.Contains(err.Error(), "invalid TLS SAN") {
			t.Errorf("normalizeSAN(%q) error %q does not mention %q", tc.in, err, tc.mention)
		}
	}
}

func TestServerSANs(t *testing.T) {
	got, err := ServerSANs([]string{"HUB.example.com", "localhost", "10.0.0.7", "hub.example.com."})
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultSANs()
	if !slices.Equal(got[:len(def)], def) {
		t.Errorf("ServerSANs = %v, does not start with DefaultSANs %v", got, def)
	}
	extra := got[len(def):]
	for _, want := range []string{"hub.example.com", "10.0.0.7"} {
		if countOf(got, want) != 1 {
			t.Errorf("ServerSANs = %v, want %q exactly once", got, want)
		}
	}
	if slices.Contains(extra, "localhost") {
		t.Errorf("ServerSANs = %v repeats localhost", got)
	}

	_, err = ServerSANs([]string{"ok.example.com", "bad name", "http://x"})
	if err == nil {
		t.Fatal("ServerSANs with garbage succeeded")
	}
	for _, s := range []string{`"bad name"`, `"http://x"`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	if strings.Contains(err.Error(), "ok.example.com") {
		t.Errorf("error %q names a good value", err)
	}

	ca, dir := newCA(t)
	if _, err := ca.EnsureServerCert(dir, []string{"localhost", "no way"}, time.Now()); err == nil || !strings.Contains(err.Error(), `"no way"`) {
		t.Errorf("EnsureServerCert with a bad SAN: err = %v", err)
	}
	if _, err := ca.EnsureServerCert(dir, nil, time.Now()); err == nil {
		t.Error("EnsureServerCert with no SANs succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, ServerCertFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed EnsureServerCert wrote %s (stat: %v)", ServerCertFile, err)
	}
}

func TestDefaultSANs(t *testing.T) {
	got := DefaultSANs()
	if !slices.Equal(got[:3], []string{"localhost", "127.0.0.1", "::1"}) {
		t.Errorf("DefaultSANs = %v, want localhost, 127.0.0.1, ::1 first", got)
	}
	for _, s := range got {
		if n, err := normalizeSAN(s); err != nil || n != s {
			t.Errorf("DefaultSANs entry %q is not a normalised SAN: %q, %v", s, n, err)
		}
		if countOf(got, s) != 1 {
			t.Errorf("DefaultSANs = %v repeats %q", got, s)
		}
	}
	if h, err := os.Hostname(); err == nil {
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		if checkDNSName(h) == nil && !slices.Contains(got, h) {
			t.Errorf("DefaultSANs = %v lacks the host name %q", got, h)
		}
	}
	// Whatever the host is called, a certificate can be issued for them.
	ca, dir := newCA(t)
	ensure(t, ca, dir, got, time.Now())
}

// serve runs a TLS server on 127.0.0.1 that completes handshakes and closes
// the connections. It returns the address and reports the server side's
// peer certificates of the last successful handshake on peers.
func serve(t *testing.T, cfg *tls.Config) (addr string, peers chan []*x509.Certificate) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	peers = make(chan []*x509.Certificate, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				tc := c.(*tls.Conn)
				tc.SetDeadline(time.Now().Add(10 * time.Second))
				if tc.Handshake() == nil {
					select {
					case peers <- tc.ConnectionState().PeerCertificates:
					default:
					}
					// Wait for the client to close, so it can read any
					// post-handshake messages (TLS 1.3 tickets, alerts).
					io.Copy(io.Discard, tc)
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String(), peers
}

func dial(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	tc := c.(*tls.Conn)
	// In TLS 1.3 a client certificate the server rejects is only reported
	// on the first read.
	tc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var buf [1]byte
	if _, err := tc.Read(buf[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, io.EOF) {
		return tls.ConnectionState{}, err
	}
	return tc.ConnectionState(), nil
}

func TestTLSHandshake(t *testing.T) {
	ca, dir := newCA(t)
	cert := ensure(t, ca, dir, testSANs, time.Now())
	addr, _ := serve(t, ServerConfig(cert))
	_, port, _ := net.SplitHostPort(addr)

	// Clients trust only ca.crt as written on disk.
	caPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	other, _ := newCA(t)

	tests := []struct {
		name       string
		addr       string
		cfg        *tls.Config
		wantErr    string
		wantVer    uint16
		wantProto  string
		wantCipher uint16
	}{
		{
			name:      "localhost, TLS 1.3 and h2",
			addr:      addr,
			cfg:       &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}},
			wantVer:   tls.VersionTLS13,
			wantProto: "h2",
		},
		{
			name:      "IP 127.0.0.1 as server name",
			addr:      net.JoinHostPort("127.0.0.1", port),
			cfg:       &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}},
			wantVer:   tls.VersionTLS13,
			wantProto: "http/1.1",
		},
		{
			name:       "TLS 1.2 client gets ECDHE AEAD",
			addr:       addr,
			cfg:        &tls.Config{RootCAs: roots, ServerName: "localhost", MaxVersion: tls.VersionTLS12},
			wantVer:    tls.VersionTLS12,
			wantCipher: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		},
		{
			name: "TLS 1.2 client with only a CBC suite is refused",
			addr: addr,
			cfg: &tls.Config{RootCAs: roots, ServerName: "localhost", MaxVersion: tls.VersionTLS12,
				CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}},
			wantErr: "handshake failure",
		},
		{
			name:    "TLS 1.1 client is refused",
			addr:    addr,
			cfg:     &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
			wantErr: "protocol version",
		},
		{
			name:    "name not in the certificate",
			addr:    addr,
			cfg:     &tls.Config{RootCAs: roots, ServerName: "nothere.example.com"},
			wantErr: "not nothere.example.com",
		},
		{
			name:    "client trusting another CA",
			addr:    addr,
			cfg:     &tls.Config{RootCAs: other.Pool(), ServerName: "localhost"},
			wantErr: "unknown authority",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := dial(tc.addr, tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("handshake err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if st.Version != tc.wantVer {
				t.Errorf("version = %x, want %x", st.Version, tc.wantVer)
			}
			if st.NegotiatedProtocol != tc.wantProto {
				t.Errorf("ALPN = %q, want %q", st.NegotiatedProtocol, tc.wantProto)
			}
			if tc.wantCipher != 0 && st.CipherSuite != tc.wantCipher {
				t.Errorf("cipher = %s, want %s", tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(tc.wantCipher))
			}
		})
	}
}

func TestServerConfig(t *testing.T) {
	cfg := ServerConfig(tls.Certificate{})
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x", cfg.MinVersion)
	}
	if !slices.Equal(cfg.NextProtos, []string{"h2", "http/1.1"}) {
		t.Errorf("NextProtos = %v", cfg.NextProtos)
	}
	if len(cfg.Certificates) != 1 {
		t.Errorf("Certificates has %d entries", len(cfg.Certificates))
	}
	if len(cfg.CipherSuites) == 0 {
		t.Fatal("no cipher suites configured")
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("cipher suite %s is not ECDHE with AEAD", name)
		}
	}
	if ServerConfig(tls.Certificate{}) == cfg {
		t.Error("ServerConfig returns a shared config")
	}
}

func TestFingerprint(t *testing.T) {
	ca, dir := newCA(t)
	sum := sha256.Sum256(ca.Certificate().Raw)
	var parts []string
	for _, b := range sum {
		parts = append(parts, strings.ToUpper(hex.EncodeToString([]byte{b})))
	}
	want := strings.Join(parts, ":")
	if got := ca.Fingerprint(); got != want {
		t.Errorf("Fingerprint() = %s, want %s", got, want)
	}
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(ca.Fingerprint()) {
		t.Errorf("Fingerprint() = %s, not 32 colon-separated uppercase hex bytes", ca.Fingerprint())
	}
	if got := Fingerprint(nil); got != "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55" {
		t.Errorf("Fingerprint(nil) = %s", got)
	}

	// The same text as openssl prints, when openssl is around.
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Log("openssl not found; skipping the comparison with it")
		return
	}
	out, err := exec.Command(openssl, "x509", "-noout", "-fingerprint", "-sha256", "-in", filepath.Join(dir, CACertFile)).Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	_, osslFP, _ := strings.Cut(strings.TrimSpace(string(out)), "=")
	if osslFP != ca.Fingerprint() {
		t.Errorf("openssl says %s, Fingerprint() = %s", osslFP, ca.Fingerprint())
	}
}

// newCSR returns a DER CSR for key (a new P-256 key if nil) that asks for
// names and extensions the CA must ignore.
func newCSR(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: "asked-for-cn", Organization: []string{"Evil"}},
		DNSNames:       []string{"hub.example.com", "localhost"},
		IPAddresses:    []net.IP{net.ParseIP("127.0.0.1")},
		EmailAddresses: []string{"x@example.com"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestSignClientCSR(t *testing.T) {
	ca, _ := newCA(t)
	clientKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr := newCSR(t, clientKey)
	before := time.Now()
	der, err := ca.SignClientCSR(csr, "appliance-0042", 90*24*time.Hour)
	if err != nil {
		t.Fatalf("SignClientCSR: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify for client auth: %v", err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("client certificate verifies for server auth")
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || len(c.UnknownExtKeyUsage) != 0 {
		t.Errorf("ExtKeyUsage = %v, %v; want client auth only", c.ExtKeyUsage, c.UnknownExtKeyUsage)
	}
	if c.Subject.CommonName != "appliance-0042" || len(c.Subject.Organization) != 0 {
		t.Errorf("Subject = %v, want CN=appliance-0042 only", c.Subject)
	}
	if len(c.DNSNames)+len(c.IPAddresses)+len(c.EmailAddresses)+len(c.URIs) != 0 {
		t.Errorf("CSR names were copied: %v %v %v %v", c.DNSNames, c.IPAddresses, c.EmailAddresses, c.URIs)
	}
	if c.IsCA {
		t.Error("client certificate is a CA")
	}
	if !c.PublicKey.(*ecdsa.PublicKey).Equal(clientKey.Public()) {
		t.Error("client certificate is not for the CSR's key")
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v is not a positive 128-bit number", c.SerialNumber)
	}
	if want := before.Add(90 * 24 * time.Hour); c.NotAfter.Before(want.Add(-time.Second)) || c.NotAfter.After(want.Add(time.Minute)) {
		t.Errorf("NotAfter = %v, want about %v", c.NotAfter, want)
	}

	der2, err := ca.SignClientCSR(csr, "appliance-0042", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := x509.ParseCertificate(der2)
	if c2.SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Error("two certificates got the same serial")
	}

	long, err := ca.SignClientCSR(csr, "appliance-0042", 50*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lc, _ := x509.ParseCertificate(long)
	if !lc.NotAfter.Equal(ca.Certificate().NotAfter) {
		t.Errorf("long-lived client certificate NotAfter = %v, want the CA's %v", lc.NotAfter, ca.Certificate().NotAfter)
	}
}

func TestSignClientCSRRejects(t *testing.T) {
	ca, _ := newCA(t)
	good := newCSR(t, nil)
	badSig := slices.Clone(good)
	badSig[len(badSig)-1] ^= 0x01 // last byte of the signature
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	var weakRSA []byte
	if err == nil {
		weakRSA, err = x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, rsaKey)
	}
	if err != nil {
		t.Logf("cannot make a 1024-bit RSA CSR here (%v); skipping that case", err)
	}
	tests := []struct {
		name     string
		csr      []byte
		cn       string
		validity time.Duration
		wantErr  string
	}{
		{"bad signature", badSig, "a", time.Hour, "signature"},
		{"not a CSR", []byte("garbage"), "a", time.Hour, "parsing CSR"},
		{"empty CN", good, "", time.Hour, "empty common name"},
		{"CN too long", good, strings.Repeat("x", 65), time.Hour, "longer than 64"},
		{"CN with control character", good, "a\nb", time.Hour, "unprintable"},
		{"zero validity", good, "a", 0, "not positive"},
		{"negative validity", good, "a", -time.Hour, "not positive"},
		{"weak RSA key", weakRSA, "a", time.Hour, "too small"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.csr == nil {
				t.Skip("no CSR for this case")
			}
			der, err := ca.SignClientCSR(tc.csr, tc.cn, tc.validity)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("SignClientCSR err = %v, want one containing %q", err, tc.wantErr)
			}
			if der != nil {
				t.Error("certificate returned along with an error")
			}
		})
	}
}

// TestMutualTLS checks end to end that an appliance with a certificate from
// SignClientCSR can authenticate to a server that trusts ca.Pool().
func TestMutualTLS(t *testing.T) {
	ca, dir := newCA(t)
	serverCert := ensure(t, ca, dir, testSANs, time.Now())
	cfg := ServerConfig(serverCert)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = ca.Pool()
	addr, peers := serve(t, cfg)

	clientKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.SignClientCSR(newCSR(t, clientKey), "appliance-7", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clientCert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: clientKey}
	if _, err := dial(addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{clientCert}}); err != nil {
		t.Fatalf("mutual TLS handshake: %v", err)
	}
	select {
	case got := <-peers:
		if len(got) == 0 || got[0].Subject.CommonName != "appliance-7" {
			t.Errorf("server saw client certificates %v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server reported no handshake")
	}

	// A server certificate is not a client certificate.
	if _, err := dial(addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{serverCert}}); err == nil {
		t.Error("server accepted a client presenting a server-auth-only certificate")
	}
	// Nor is no certificate.
	if _, err := dial(addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}); err == nil {
		t.Error("server accepted a client without a certificate")
	}
}

func TestLoadKeyPair(t *testing.T) {
	ca, dir := newCA(t)
	ensure(t, ca, dir, testSANs, time.Now())
	crt := filepath.Join(dir, ServerCertFile)
	key := filepath.Join(dir, ServerKeyFile)
	work := t.TempDir()

	// Operator formats: chain with intermediate, SEC 1 key after an
	// EC PARAMETERS block as openssl ecparam -genkey writes, PKCS #1 RSA.
	chain := filepath.Join(work, "chain.pem")
	mustWrite(t, chain, append(mustRead(t, crt), ca.CertPEM()...), 0o644)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecCrt, ecKeyFile := selfSigned(t, work, "ec", ecKey,
		append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaCrt, rsaKeyFile := selfSigned(t, work, "rsa", rsaKey,
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))

	encrypted := filepath.Join(work, "enc.key")
	mustWrite(t, encrypted, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600)
	garbage := filepath.Join(work, "garbage")
	mustWrite(t, garbage, []byte("hello"), 0o600)
	missing := filepath.Join(work, "missing.pem")

	tests := []struct {
		name      string
		cert, key string
		chainLen  int
		wantErr   []string
	}{
		{name: "hub pair", cert: crt, key: key, chainLen: 1},
		{name: "chain with intermediate", cert: chain, key: key, chainLen: 2},
		{name: "SEC 1 key after EC PARAMETERS", cert: ecCrt, key: ecKeyFile, chainLen: 1},
		{name: "PKCS #1 RSA key", cert: rsaCrt, key: rsaKeyFile, chainLen: 1},
		{name: "mismatched key", cert: crt, key: filepath.Join(dir, CAKeyFile), wantErr: []string{"does not match", crt, CAKeyFile}},
		{name: "mismatched RSA key", cert: rsaCrt, key: key, wantErr: []string{"does not match", rsaCrt, key}},
		{name: "missing cert", cert: missing, key: key, wantErr: []string{"reading certificate", missing}},
		{name: "missing key", cert: crt, key: missing, wantErr: []string{"reading private key", missing}},
		{name: "cert file without certificate", cert: garbage, key: key, wantErr: []string{"no CERTIFICATE", garbage}},
		{name: "key file without key", cert: crt, key: garbage, wantErr: []string{"no private key", garbage}},
		{name: "key file holds a certificate", cert: crt, key: crt, wantErr: []string{"no private key", crt}},
		{name: "encrypted key", cert: crt, key: encrypted, wantErr: []string{"encrypted", encrypted}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pair, err := LoadKeyPair(tc.cert, tc.key)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("LoadKeyPair succeeded, want error")
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadKeyPair: %v", err)
			}
			if len(pair.Certificate) != tc.chainLen || pair.Leaf == nil || !bytes.Equal(pair.Leaf.Raw, pair.Certificate[0]) {
				t.Errorf("chain of %d, leaf %v", len(pair.Certificate), pair.Leaf != nil)
			}
			// The pair is usable by crypto/tls as is.
			if _, err := tls.X509KeyPair(certsPEM(pair), keyPEM(t, pair)); err != nil {
				t.Errorf("crypto/tls rejects the pair: %v", err)
			}
		})
	}
	if _, err := LoadKeyPair(missing, key); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error for a missing file does not wrap os.ErrNotExist: %v", err)
	}
}

func TestWriteFileAtomicReplacesMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	mustWrite(t, p, []byte("old"), 0o644)
	if err := writeFileAtomic(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := string(mustRead(t, p)); got != "new" {
		t.Errorf("content = %q", got)
	}
	if got := perm(t, p); got != 0o600 {
		t.Errorf("mode = %v, want 0600", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("%d files in the directory, want 1", len(entries))
	}
	if err := writeFileAtomic(filepath.Join(t.TempDir(), "no", "such", "dir"), nil, 0o600); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

func selfSigned(t *testing.T, dir, name string, key crypto.Signer, keyPEM []byte) (certFile, keyFile string) {
	t.Helper()
	serial, err := randomSerial()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	mustWrite(t, certFile, encodeCert(der), 0o644)
	mustWrite(t, keyFile, keyPEM, 0o600)
	return certFile, keyFile
}

func certsPEM(c tls.Certificate) []byte {
	var b []byte
	for _, der := range c.Certificate {
		b = append(b, encodeCert(der)...)
	}
	return b
}

func keyPEM(t *testing.T, c tls.Certificate) []byte {
	t.Helper()
	b, err := encodeKey(c.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	mustWrite(t, to, mustRead(t, from), perm(t, from))
}

func countOf(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

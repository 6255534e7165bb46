package tlsca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	// serverValidity is the lifetime of an issued server certificate.
	serverValidity = 365 * 24 * time.Hour
	// renewBefore is how long before expiry the server certificate is
	// reissued at start.
	renewBefore    = 30 * 24 * time.Hour
	maxDNSNameLen  = 253
	maxDNSLabelLen = 63
)

// EnsureServerCert returns the hub's server certificate from dir (normally
// <data>/tls), issuing a new one with a new key when there is none, or when
// the existing one is unreadable, does not match its key, was not signed by
// ca, expires within 30 days of now, is not yet valid at now, or does not
// carry exactly the subject alternative names sans. sans is the complete set
// (usually from ServerSANs); each must be an IP address or a DNS name.
func (ca *CA) EnsureServerCert(dir string, sans []string, now time.Time) (tls.Certificate, error) {
	want, err := parseSANs(sans)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ensuring server certificate: %w", err)
	}
	if len(want.all) == 0 {
		return tls.Certificate{}, errors.New("ensuring server certificate: no subject alternative names given")
	}
	if err := ensureDir(dir); err != nil {
		return tls.Certificate{}, err
	}
	certFile := filepath.Join(dir, ServerCertFile)
	keyFile := filepath.Join(dir, ServerKeyFile)

	cert, reason, err := ca.reuseServerCert(certFile, keyFile, want, now)
	if err != nil {
		return tls.Certificate{}, err
	}
	if reason == "" {
		ca.logger.Debug("reusing server certificate", "cert", certFile, "not_after", cert.Leaf.NotAfter)
		return cert, nil
	}
	return ca.issueServerCert(certFile, keyFile, want, now, reason)
}

// reuseServerCert returns the existing certificate if it can be reused, or
// else why it cannot. Errors are kept for I/O failures other than absence, so
// that a file that could not be read is not silently replaced.
func (ca *CA) reuseServerCert(certFile, keyFile string, want sanSet, now time.Time) (tls.Certificate, string, error) {
	var none tls.Certificate
	haveCert, err := exists(certFile)
	if err != nil {
		return none, "", fmt.Errorf("ensuring server certificate: %w", err)
	}
	haveKey, err := exists(keyFile)
	if err != nil {
		return none, "", fmt.Errorf("ensuring server certificate: %w", err)
	}
	if !haveCert || !haveKey {
		return none, "no server certificate yet", nil
	}
	certs, key, err := readCertAndKey(certFile, keyFile)
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return none, "", fmt.Errorf("ensuring server certificate: %w", err)
	}
	if err != nil {
		return none, "existing one unusable: " + err.Error(), nil
	}
	c := certs[0]
	switch {
	case c.CheckSignatureFrom(ca.cert) != nil || !slices.Equal(c.RawIssuer, ca.cert.RawSubject):
		return none, "existing one was not signed by the current CA", nil
	case now.Before(c.NotBefore):
		return none, "existing one is not valid until " + c.NotBefore.Format(time.RFC3339), nil
	case !now.Add(renewBefore).Before(c.NotAfter):
		return none, "existing one expires at " + c.NotAfter.Format(time.RFC3339), nil
	case !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth):
		return none, "existing one lacks the server authentication usage", nil
	}
	have := sanSet{}
	for _, n := range c.DNSNames {
		have.add("", strings.ToLower(n))
	}
	for _, ip := range c.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			have.add(a.Unmap().String(), "")
		}
	}
	if !slices.Equal(have.sorted(), want.sorted()) {
		return none, "names changed from " + strings.Join(have.sorted(), ",") + " to " + strings.Join(want.sorted(), ","), nil
	}
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}, "", nil
}

func (ca *CA) issueServerCert(certFile, keyFile string, want sanSet, now time.Time, reason string) (tls.Certificate, error) {
	if !now.Before(ca.cert.NotAfter) {
		return tls.Certificate{}, fmt.Errorf("issuing server certificate: the CA expired at %s; remove %s and %s to create a new CA, which every client will then have to trust",
			ca.cert.NotAfter.Format(time.RFC3339), CACertFile, CAKeyFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating server key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issuing server certificate: %w", err)
	}
	notAfter := now.Add(serverValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
		ca.logger.Warn("server certificate cut short by the CA's expiry", "not_after", notAfter)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: want.commonName(), Organization: []string{"Sonde"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              want.dns,
	}
	for _, a := range want.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(a.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("issuing server certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parsing new server certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("writing server key %s: %w", keyFile, err)
	}
	// Key first: a crash in between leaves a pair that does not match,
	// which the next start detects and reissues.
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("writing server key: %w", err)
	}
	if err := writeFileAtomic(certFile, encodeCert(der), 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("writing server certificate: %w", err)
	}
	ca.logger.Info("issued server certificate", "reason", reason, "cert", certFile,
		"sans", strings.Join(want.all, ","), "not_after", notAfter)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, nil
}

// DefaultSANs returns the names the server certificate always carries:
// localhost, 127.0.0.1, ::1, the host name from os.Hostname and, when that
// is a fully qualified name, its first label. It does no DNS lookups; a host
// name that cannot be read or is not a valid DNS name is left out.
func DefaultSANs() []string {
	sans := []string{"localhost", "127.0.0.1", "::1"}
	if h := hostName(); h != "" {
		sans = append(sans, h)
		if short, _, ok := strings.Cut(h, "."); ok {
			sans = append(sans, short)
		}
	}
	var out []string
	for _, s := range sans {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// hostName returns the host name, lower-cased without a trailing dot, or ""
// if it cannot be read or is not a valid DNS name.
func hostName() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if checkDNSName(h) != nil {
		return ""
	}
	return h
}

// ServerSANs returns DefaultSANs followed by the operator's extra names
// (--tls-san values) in normalised form, without duplicates. Each extra
// must be an IP address or a DNS name (a leading "*." wildcard label is
// allowed); the error names every value that is neither.
func ServerSANs(extra []string) ([]string, error) {
	out := DefaultSANs()
	var errs []error
	for _, raw := range extra {
		s, err := normalizeSAN(raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// sanSet is a validated, normalised set of subject alternative names.
type sanSet struct {
	all []string // in order given, normalised
	dns []string
	ips []netip.Addr
}

func (s *sanSet) add(ip, dns string) {
	v := ip + dns
	if slices.Contains(s.all, v) {
		return
	}
	s.all = append(s.all, v)
	if ip != "" {
		s.ips = append(s.ips, netip.MustParseAddr(ip))
	} else {
		s.dns = append(s.dns, dns)
	}
}

func (s sanSet) sorted() []string {
	return slices.Sorted(slices.Values(s.all))
}

// commonName picks the subject CN: the first DNS name that is not
// localhost, else the first DNS name, else the first IP. Clients match SANs
// only; the CN is for people reading the certificate.
func (s sanSet) commonName() string {
	for _, n := range s.dns {
		if n != "localhost" && !strings.HasPrefix(n, "*.") {
			return n
		}
	}
	if len(s.dns) > 0 {
		return s.dns[0]
	}
	if len(s.ips) > 0 {
		return s.ips[0].String()
	}
	return "sonde-hub"
}

func parseSANs(sans []string) (sanSet, error) {
	var set sanSet
	var errs []error
	for _, raw := range sans {
		s, err := normalizeSAN(raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil {
			set.add(a.String(), "")
		} else {
			set.add("", s)
		}
	}
	return set, errors.Join(errs...)
}

// normalizeSAN validates one subject alternative name and returns it in
// canonical form: an IP address as netip prints it (IPv4-mapped IPv6
// unmapped), a DNS name lower-cased without a trailing dot.
func normalizeSAN(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("invalid TLS SAN %q: %s", raw, why)
	}
	if s == "" {
		return bad("empty")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return bad("an IPv6 zone cannot go in a certificate; give the address without %" + a.Zone())
		}
		return a.Unmap().String(), nil
	}
	switch {
	case strings.Contains(s, "://"):
		return bad("want an IP address or DNS name, not a URL")
	case strings.HasPrefix(s, "["):
		return bad("give IPv6 addresses without brackets or port")
	case strings.Contains(s, "/"):
		return bad("want a single IP address or DNS name, not a prefix or path")
	case strings.Contains(s, ":"):
		return bad("not a valid IP address, and a DNS name cannot contain ':' (give no port)")
	}
	name := strings.TrimSuffix(strings.ToLower(s), ".")
	if err := checkDNSName(name); err != nil {
		return bad("not an IP address, and not a valid DNS name: " + err.Error())
	}
	return name, nil
}

// checkDNSName checks a lower-case DNS name without trailing dot: labels of
// 1 to 63 letters, digits, hyphens (not at either end) or underscores (not
// valid in host names but common in the wild and accepted by Go clients), a
// leading "*" wildcard label, at most 253 bytes, and a last label that is not
// all digits (that would be a mistyped IPv4 address).
func checkDNSName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > maxDNSNameLen {
		return fmt.Errorf("longer than %d bytes", maxDNSNameLen)
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if l == "*" && i == 0 {
			if len(labels) == 1 {
				return errors.New("a wildcard needs a domain after it (*.example.com)")
			}
			continue
		}
		if l == "" {
			return errors.New("empty label (leading or doubled dot)")
		}
		if len(l) > maxDNSLabelLen {
			return fmt.Errorf("label %q is longer than %d bytes", l, maxDNSLabelLen)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q starts or ends with '-'", l)
		}
		for _, r := range l {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			case r > 0x7f:
				return fmt.Errorf("non-ASCII character %q; give internationalised names in their xn-- form", r)
			case r == '*':
				return errors.New("a wildcard may only be the whole first label (*.example.com)")
			default:
				return fmt.Errorf("character %q is not allowed", r)
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" {
		return errors.New("the last label is all digits (a mistyped IP address?)")
	}
	return nil
}

// LoadKeyPair loads an operator-supplied server certificate (PEM, leaf first,
// optionally followed by intermediates) and its private key (PEM: PKCS #8,
// SEC 1 or PKCS #1, unencrypted). It checks that the key belongs to the leaf
// certificate; errors name the file at fault. It does not check expiry or
// names: the operator chose this certificate.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certs, key, err := readCertAndKey(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("loading TLS key pair: %w", err)
	}
	chain := make([][]byte, len(certs))
	for i, c := range certs {
		chain[i] = c.Raw
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: certs[0]}, nil
}

// ServerConfig returns the hub's TLS server configuration serving cert:
// TLS 1.2 at least (Go prefers 1.3 whenever the client offers it), only
// ECDHE key exchange with AEAD ciphers for TLS 1.2 (Go's TLS 1.3 suites are
// all AEAD and not configurable), and ALPN for h2 and http/1.1.
func ServerConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: []string{"h2", "http/1.1"},
	}
}

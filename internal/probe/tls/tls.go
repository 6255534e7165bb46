// Package tlsprobe is the tls probe: it connects to a TLS server, completes
// a handshake and reports on the certificate chain the server presents (is
// it valid, does it match the name, when does it expire) and on the session
// (protocol version, cipher suite). It sends no application data.
//
// The handshake itself accepts any certificate, and the chain is verified by
// hand afterwards with crypto/x509: an expired, self-signed or misnamed
// certificate still yields all metrics, with chainValid or hostnameMatch
// false and an error.
//
// Configuration (collector and check key "tls"):
//
//	address     string  host name or IP address; empty means the asset's name
//	port        int     TCP port (default 443)
//	servername  string  name sent in SNI and checked against the certificate
//	                    (default: address; an IP address is matched against
//	                    the certificate's IP addresses and sent no SNI)
//	ca          string  PEM certificates to verify against instead of the
//	                    system's roots (a private PKI)
//	warnDays    float   warn when a certificate of the chain expires in fewer
//	                    days (default 14; 0 turns the warning off)
//	timeout     float   seconds the run may take at most (0: the run's
//	                    deadline; at most 300); without a deadline on the
//	                    run, 10 s
//
// Result: one type, "tls", with one item named "address:port":
//
//	metric             kind    meaning
//	chainValid         bool    the chain verifies against the roots, for
//	                           server authentication, at the current time
//	hostnameMatch      bool    the leaf certificate is valid for servername
//	selfSigned         bool    the leaf certificate signed itself
//	daysLeft           float   days until the leaf certificate expires
//	                           (negative once expired)
//	notAfter           int     the leaf's expiry, Unix seconds
//	chainDaysLeft      float   days until the first certificate the server
//	                           presented (leaf or intermediate) expires
//	chainNotAfter      int     that certificate's expiry, Unix seconds
//	chainLength        int     certificates the server presented
//	subjectCN          string  the leaf's subject common name
//	issuerCN           string  the leaf's issuer common name
//	sha256Fingerprint  string  SHA-256 of the leaf certificate (DER), lower
//	                           case hex
//	version            string  negotiated protocol ("TLS 1.3", …)
//	cipherSuite        string  negotiated cipher suite (IANA name)
//	connectTime        float   seconds to open the TCP connection
//	handshakeTime      float   seconds the TLS handshake took
//
// Errors and their severities (a configuration error is HIGH: the check
// collects nothing until it is fixed):
//
//	HIGH    the configuration is invalid; the name does not resolve; the
//	        run's address policy refuses the address it resolves to (see
//	        probe.WithAddrPolicy); the connection fails; the handshake fails (not a TLS server, no
//	        common protocol); the chain is not valid (expired, not yet
//	        valid, unknown authority, self-signed, wrong key usage); the
//	        certificate does not match servername. The result is sent with
//	        the last two.
//	MEDIUM  a certificate of the chain expires within warnDays; the result
//	        is sent with the error
//	LOW     the server negotiated TLS 1.0 or 1.1 (deprecated by RFC 8996);
//	        the result is sent with the error
//
// A message lists every problem found; its severity is the worst one's.
package tlsprobe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

const (
	defaultPort     = 443
	defaultWarnDays = 14
	maxTimeout      = 300 // seconds
	defaultTimeout  = 10 * time.Second
	maxStringLen    = 256
	maxMessageLen   = 2048
)

var _ probe.Func = Probe

// Config is the tls check's configuration.
type Config struct {
	// Address is the host name or IP address to connect to. Empty means
	// the asset's name.
	Address string `json:"address"`
	// Port is the TCP port; zero means 443.
	Port int `json:"port"`
	// ServerName is sent in SNI and checked against the certificate;
	// empty means Address.
	ServerName string `json:"servername"`
	// CA holds the PEM certificates to verify the chain against instead of
	// the system's roots.
	CA string `json:"ca"`
	// WarnDays warns when a certificate expires in fewer days; nil means
	// 14 and 0 turns the warning off.
	WarnDays *float64 `json:"warnDays"`
	// Timeout is how long the run may take at most, in seconds. Zero means
	// the run's own deadline.
	Timeout float64 `json:"timeout"`
}

// settings is a validated Config with defaults filled in.
type settings struct {
	address, serverName string
	port                int
	roots               *x509.CertPool // nil: the system's
	warnDays            float64
	timeout             time.Duration
}

// Validate checks the configuration and names the field that is wrong. An
// empty address is valid here: Probe falls back to the asset's name.
func (c *Config) Validate() error {
	_, err := c.settings("localhost")
	return err
}

func (c *Config) settings(assetName string) (*settings, error) {
	s := &settings{address: c.Address, serverName: c.ServerName, port: c.Port, warnDays: defaultWarnDays}
	if s.address == "" {
		if !probe.ValidHost(assetName) {
			return nil, errors.New("config.address: missing, and the asset's name is not a host name; set config.address")
		}
		s.address = assetName
	}
	if !probe.ValidHost(s.address) {
		return nil, errors.New("config.address: must be a host name or an IP address")
	}
	s.address = strings.Trim(s.address, "[]")
	switch {
	case s.port == 0:
		s.port = defaultPort
	case s.port < 1 || s.port > 65535:
		return nil, errors.New("config.port: must be between 1 and 65535")
	}
	if s.serverName == "" {
		s.serverName = strings.TrimSuffix(s.address, ".")
	} else if !probe.ValidHost(s.serverName) {
		return nil, errors.New("config.servername: must be a host name or an IP address")
	}
	s.serverName = strings.Trim(s.serverName, "[]")
	if c.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.CA)) {
			return nil, errors.New("config.ca: holds no PEM certificate")
		}
		s.roots = pool
	}
	if c.WarnDays != nil {
		if *c.WarnDays < 0 || *c.WarnDays > 3650 || math.IsNaN(*c.WarnDays) {
			return nil, errors.New("config.warnDays: must be between 0 and 3650")
		}
		s.warnDays = *c.WarnDays
	}
	if c.Timeout < 0 || c.Timeout > maxTimeout {
		return nil, fmt.Errorf("config.timeout: must be between 0 and %d seconds", maxTimeout)
	}
	s.timeout = time.Duration(c.Timeout * float64(time.Second))
	return s, nil
}

// Probe connects to the target, completes a TLS handshake and reports on
// the certificate chain and the session. It needs no credentials.
func Probe(ctx context.Context, t probe.Target, _ probe.Credentials) probe.Result {
	return run(ctx, t, time.Now)
}

// run is Probe with the clock injected, so expiry is tested without
// waiting for certificates to expire.
func run(ctx context.Context, t probe.Target, now func() time.Time) probe.Result {
	var c Config
	if err := probe.DecodeConfig(t.Config, &c); err != nil {
		return probe.Fail(model.SeverityHigh, "%v", err)
	}
	s, err := c.settings(t.AssetName)
	if err != nil {
		return probe.Fail(model.SeverityHigh, "%v", err)
	}
	switch {
	case s.timeout > 0:
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	default:
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
			defer cancel()
		}
	}

	addr := net.JoinHostPort(s.address, strconv.Itoa(s.port))
	start := time.Now()
	// The run's address policy (see probe.WithAddrPolicy) is checked on
	// the address actually dialled, after resolution.
	raw, err := (&net.Dialer{KeepAlive: -1, Control: probe.DialControl(ctx, nil)}).DialContext(ctx, "tcp", addr)
	if err != nil {
		if refused, ok := errors.AsType[*probe.AddrRefusedError](err); ok {
			return probe.Fail(model.SeverityHigh, "connecting to %s: %s", addr, shorten(refused.Error()))
		}
		return probe.Fail(model.SeverityHigh, "connecting to %s: %s", addr, shorten(err.Error()))
	}
	defer raw.Close()
	connectTime := time.Since(start)

	// #nosec G402 -- verified by hand below: the probe must see, and report
	// on, invalid certificates too. No application data is ever sent, and
	// old protocol versions are allowed so they can be reported.
	conf := &tls.Config{
		ServerName:         s.serverName,
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS10,
	}
	conn := tls.Client(raw, conf)
	start = time.Now()
	if err := conn.HandshakeContext(ctx); err != nil {
		if ctx.Err() != nil {
			return probe.Fail(model.SeverityHigh, "TLS handshake with %s: no answer before the deadline", addr)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return probe.Fail(model.SeverityHigh, "TLS handshake with %s: the server closed the connection during the handshake", addr)
		}
		return probe.Fail(model.SeverityHigh, "TLS handshake with %s: %s", addr, shorten(err.Error()))
	}
	handshakeTime := time.Since(start)
	state := conn.ConnectionState()
	_ = conn.Close()
	if len(state.PeerCertificates) == 0 {
		return probe.Fail(model.SeverityHigh, "TLS handshake with %s: the server sent no certificate", addr)
	}
	return report(s, addr, state, now(), connectTime, handshakeTime)
}

// report verifies the presented chain at now and builds the result.
func report(s *settings, addr string, state tls.ConnectionState, now time.Time, connectTime, handshakeTime time.Duration) probe.Result {
	certs := state.PeerCertificates
	leaf := certs[0]
	intermediates := x509.NewCertPool()
	for _, c := range certs[1:] {
		intermediates.AddCert(c)
	}
	_, chainErr := leaf.Verify(x509.VerifyOptions{
		Roots:         s.roots,
		Intermediates: intermediates,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	hostErr := leaf.VerifyHostname(s.serverName)

	earliest := leaf
	for _, c := range certs[1:] {
		if c.NotAfter.Before(earliest.NotAfter) {
			earliest = c
		}
	}
	days := func(c *x509.Certificate) float64 { return c.NotAfter.Sub(now).Hours() / 24 }
	fp := sha256.Sum256(leaf.Raw)

	metrics := []model.Metric{
		{Name: "chainValid", Value: model.BoolValue(chainErr == nil)},
		{Name: "hostnameMatch", Value: model.BoolValue(hostErr == nil)},
		{Name: "selfSigned", Value: model.BoolValue(selfSigned(leaf))},
		{Name: "daysLeft", Value: model.FloatValue(days(leaf))},
		{Name: "notAfter", Value: model.IntValue(leaf.NotAfter.Unix())},
		{Name: "chainDaysLeft", Value: model.FloatValue(days(earliest))},
		{Name: "chainNotAfter", Value: model.IntValue(earliest.NotAfter.Unix())},
		{Name: "chainLength", Value: model.IntValue(int64(len(certs)))},
		{Name: "subjectCN", Value: model.StringValue(bound(leaf.Subject.CommonName))},
		{Name: "issuerCN", Value: model.StringValue(bound(leaf.Issuer.CommonName))},
		{Name: "sha256Fingerprint", Value: model.StringValue(hex.EncodeToString(fp[:]))},
		{Name: "version", Value: model.StringValue(tls.VersionName(state.Version))},
		{Name: "cipherSuite", Value: model.StringValue(tls.CipherSuiteName(state.CipherSuite))},
		{Name: "connectTime", Value: model.FloatValue(connectTime.Seconds())},
		{Name: "handshakeTime", Value: model.FloatValue(handshakeTime.Seconds())},
	}
	res := probe.Result{Types: []model.Type{{Name: "tls", Items: []model.Item{{Name: addr, Metrics: metrics}}}}}

	var problems []string
	sev := model.SeverityLow
	if chainErr != nil {
		sev = model.SeverityHigh
		problems = append(problems, "the certificate chain is not valid: "+shorten(chainErr.Error()))
	}
	if hostErr != nil {
		sev = model.SeverityHigh
		problems = append(problems, "the certificate does not match the server name: "+shorten(hostErr.Error()))
	}
	if d := days(earliest); d >= 0 && d < s.warnDays {
		sev = min(sev, model.SeverityMedium)
		which := "the certificate"
		if earliest != leaf {
			which = "the chain's certificate"
		}
		problems = append(problems, fmt.Sprintf("%s %q expires in %.1f days (%s)",
			which, bound(earliest.Subject.CommonName), d, earliest.NotAfter.UTC().Format(time.RFC3339)))
	}
	if state.Version < tls.VersionTLS12 {
		problems = append(problems, fmt.Sprintf("the server negotiated %s, deprecated by RFC 8996", tls.VersionName(state.Version)))
	}
	if len(problems) > 0 {
		res.Error = &model.CheckError{Severity: sev, Message: addr + ": " + strings.Join(problems, "; ")}
	}
	return res
}

// selfSigned reports whether c names itself as issuer and its signature
// checks out with its own key.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// bound keeps a string from the server printable-sized.
func bound(s string) string {
	if len(s) <= maxStringLen {
		return s
	}
	return s[:maxStringLen] + "…"
}

func shorten(s string) string {
	if len(s) <= maxMessageLen {
		return s
	}
	return s[:maxMessageLen] + "…"
}

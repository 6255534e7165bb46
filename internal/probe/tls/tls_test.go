package tlsprobe

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

const distinctiveSecret = "s3cr3t-Zebra-Quartz-4242"

type creds map[string]probe.Credential

func (c creds) Credential(name string) (probe.Credential, error) {
	if cr, ok := c[name]; ok {
		return cr, nil
	}
	return probe.Credential{}, probe.ErrNoCredential
}

var vault = creds{"x": {Name: "x", Username: "admin", Secret: secret.New(distinctiveSecret)}}

var serial atomic.Int64

// spec describes a certificate to issue.
type spec struct {
	cn        string
	dns       []string
	ips       []net.IP
	notBefore time.Time
	notAfter  time.Time
	ca        bool
}

// issued is a certificate with its key.
type issued struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func (i issued) pem() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: i.cert.Raw}))
}

// issue makes a certificate signed by parent, or by itself when parent is
// nil.
func issue(t testing.TB, s spec, parent *issued) issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: s.cn},
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
		NotBefore:    s.notBefore,
		NotAfter:     s.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if s.ca {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
		tmpl.BasicConstraintsValid, tmpl.IsCA = true, true
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return issued{cert: cert, key: key}
}

// serveTLS accepts connections on 127.0.0.1:0 and completes a TLS handshake
// presenting chain (leaf first); it returns the port.
func serveTLS(t testing.TB, chain []issued, minV, maxV uint16) int {
	t.Helper()
	cert := tls.Certificate{PrivateKey: chain[0].key, Leaf: chain[0].cert}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.cert.Raw)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: minV, MaxVersion: maxV}
	return serve(t, func(c net.Conn) {
		tc := tls.Server(c, conf)
		if tc.Handshake() == nil {
			_, _ = io.Copy(io.Discard, tc)
		}
	})
}

// serve accepts connections on 127.0.0.1:0 and hands them to h.
func serve(t testing.TB, h func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				h(c)
			})
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func target(cfg map[string]any) probe.Target {
	return probe.Target{AssetID: 3, AssetName: "127.0.0.1", Collector: "tls", Check: "tls", Config: cfg, Interval: time.Minute}
}

// resultStrings returns every string a result carries.
func resultStrings(res probe.Result) []string {
	var out []string
	if res.Error != nil {
		out = append(out, res.Error.Message)
	}
	for _, ty := range res.Types {
		out = append(out, ty.Name)
		for _, it := range ty.Items {
			out = append(out, it.Name)
			for _, m := range it.Metrics {
				out = append(out, m.Name, m.Value.Str)
			}
		}
	}
	return out
}

// assertValid checks that the hub accepts res: it is encoded the way a
// collector sends it and decoded under the hub's default limits.
func assertValid(t testing.TB, res probe.Result) {
	t.Helper()
	d := &model.CheckData{Types: res.Types, HasResult: res.Types != nil, Error: res.Error, Timestamp: time.Now().Unix()}
	if _, err := model.DecodeCheckData(bytes.NewReader(d.MarshalAgentJSON()), model.Limits{}); err != nil {
		t.Fatalf("the hub would refuse the result: %v\n%s", err, d.MarshalAgentJSON())
	}
}

func TestProbe(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	local := spec{cn: "localhost", dns: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}, notBefore: now.Add(-day), notAfter: now.Add(90 * day)}
	with := func(s spec, f func(*spec)) spec { f(&s); return s }

	ca := issue(t, spec{cn: "Sonde Test Root", notBefore: now.Add(-day), notAfter: now.Add(3650 * day), ca: true}, nil)
	inter := issue(t, spec{cn: "Sonde Test Intermediate", notBefore: now.Add(-day), notAfter: now.Add(365 * day), ca: true}, &ca)
	shortInter := issue(t, spec{cn: "Short Intermediate", notBefore: now.Add(-day), notAfter: now.Add(3 * day), ca: true}, &ca)

	good := issue(t, local, &inter)
	expired := issue(t, with(local, func(s *spec) { s.notBefore, s.notAfter = now.Add(-10*day), now.Add(-day) }), &inter)
	wrongName := issue(t, with(local, func(s *spec) { s.cn, s.dns, s.ips = "other.example", []string{"other.example"}, nil }), &inter)
	self := issue(t, local, nil)
	soon := issue(t, with(local, func(s *spec) { s.notAfter = now.Add(5 * day) }), &inter)
	underShort := issue(t, with(local, func(s *spec) { s.notAfter = now.Add(30 * day) }), &shortInter)

	goodPort := serveTLS(t, []issued{good, inter}, 0, 0)
	tls12Port := serveTLS(t, []issued{good, inter}, tls.VersionTLS12, tls.VersionTLS12)
	tls10Port := serveTLS(t, []issued{good, inter}, tls.VersionTLS10, tls.VersionTLS10)
	expiredPort := serveTLS(t, []issued{expired, inter}, 0, 0)
	wrongPort := serveTLS(t, []issued{wrongName, inter}, 0, 0)
	selfPort := serveTLS(t, []issued{self}, 0, 0)
	soonPort := serveTLS(t, []issued{soon, inter}, 0, 0)
	shortPort := serveTLS(t, []issued{underShort, shortInter}, 0, 0)
	noInterPort := serveTLS(t, []issued{good}, 0, 0)

	high, medium, low := model.SeverityHigh, model.SeverityMedium, model.SeverityLow
	type want struct {
		chainValid, hostnameMatch, selfSigned bool
		leaf, earliest                        *x509.Certificate
		version                               string
		chainLength                           int64
	}
	cases := []struct {
		name   string
		cfg    map[string]any
		clock  time.Time
		sev    *model.Severity
		errHas []string
		want   want
	}{
		{
			name: "valid chain from the test CA, servername",
			cfg:  map[string]any{"port": goodPort, "servername": "localhost", "ca": ca.pem()},
			want: want{chainValid: true, hostnameMatch: true, leaf: good.cert, earliest: good.cert, version: "TLS 1.3", chainLength: 2},
		},
		{
			name: "IP address as server name",
			cfg:  map[string]any{"address": "127.0.0.1", "port": goodPort, "ca": ca.pem()},
			want: want{chainValid: true, hostnameMatch: true, leaf: good.cert, earliest: good.cert, version: "TLS 1.3", chainLength: 2},
		},
		{
			name: "TLS 1.2 only",
			cfg:  map[string]any{"port": tls12Port, "servername": "localhost", "ca": ca.pem()},
			want: want{chainValid: true, hostnameMatch: true, leaf: good.cert, earliest: good.cert, version: "TLS 1.2", chainLength: 2},
		},
		{
			name:   "TLS 1.0 is reported, not refused",
			cfg:    map[string]any{"port": tls10Port, "servername": "localhost", "ca": ca.pem()},
			sev:    &low,
			errHas: []string{"the server negotiated TLS 1.0, deprecated by RFC 8996"},
			want:   want{chainValid: true, hostnameMatch: true, leaf: good.cert, earliest: good.cert, version: "TLS 1.0", chainLength: 2},
		},
		{
			name:   "not trusted without the CA",
			cfg:    map[string]any{"port": goodPort, "servername": "localhost"},
			sev:    &high,
			errHas: []string{"the certificate chain is not valid"},
			want:   want{chainValid: false, hostnameMatch: true, leaf: good.cert, earliest: good.cert, version: "TLS 1.3", chainLength: 2},
		},
		{
			name:   "intermediate missing",
			cfg:    map[string]any{"port": noInterPort, "servername": "localhost", "ca": ca.pem()},
			sev:    &high,
			errHas: []string{"unknown authority"},
			want:   want{chainValid: false, hostnameMatch: true, leaf: good.cert, earliest: good.cert, version: "TLS 1.3", chainLength: 1},
		},
		{
			name:   "expired",
			cfg:    map[string]any{"port": expiredPort, "servername": "localhost", "ca": ca.pem()},
			sev:    &high,
			errHas: []string{"expired"},
			want:   want{chainValid: false, hostnameMatch: true, leaf: expired.cert, earliest: expired.cert, version: "TLS 1.3", chainLength: 2},
		},
		{
			name:   "expired by the clock",
			cfg:    map[string]any{"port": goodPort, "servername": "localhost", "ca": ca.pem()},
			clock:  now.Add(100 * day),
			sev:    &high,
			errHas: []string{"expired"},
			want:   want{chainValid: false, hostnameMatch: true, leaf: good.cert, earliest: good.cert, version: "TLS 1.3", chainLength: 2},
		},
		{
			name:   "expiring by the clock",
			cfg:    map[string]any{"port": goodPort, "servername": "localhost", "ca": ca.pem()},
			clock:  now.Add(80 * day),
			sev:    &medium,
			errHas: []string{`the certificate "localhost" expires in 10.0 days`},
			want:   want{chainValid: true, hostnameMatch: true, leaf: good.cert, earliest: good.cert, version: "TLS 1.3", chainLength: 2},
		},
		{
			name:   "wrong host name",
			cfg:    map[string]any{"port": wrongPort, "servername": "localhost", "ca": ca.pem()},
			sev:    &high,
			errHas: []string{"does not match the server name", "other.example"},
			want:   want{chainValid: true, hostnameMatch: false, leaf: wrongName.cert, earliest: wrongName.cert, version: "TLS 1.3", chainLength: 2},
		},
		{
			name:   "self-signed",
			cfg:    map[string]any{"port": selfPort, "servername": "localhost", "ca": ca.pem()},
			sev:    &high,
			errHas: []string{"the certificate chain is not valid"},
			want:   want{chainValid: false, hostnameMatch: true, selfSigned: true, leaf: self.cert, earliest: self.cert, version: "TLS 1.3", chainLength: 1},
		},
		{
			name: "self-signed and trusted through ca",
			cfg:  map[string]any{"port": selfPort, "servername": "localhost", "ca": self.pem()},
			want: want{chainValid: true, hostnameMatch: true, selfSigned: true, leaf: self.cert, earliest: self.cert, version: "TLS 1.3", chainLength: 1},
		},
		{
			name:   "expires soon",
			cfg:    map[string]any{"port": soonPort, "servername": "localhost", "ca": ca.pem()},
			sev:    &medium,
			errHas: []string{`the certificate "localhost" expires in 5.0 days`},
			want:   want{chainValid: true, hostnameMatch: true, leaf: soon.cert, earliest: soon.cert, version: "TLS 1.3", chainLength: 2},
		},
		{
			name: "expires soon, warning off",
			cfg:  map[string]any{"port": soonPort, "servername": "localhost", "ca": ca.pem(), "warnDays": 0},
			want: want{chainValid: true, hostnameMatch: true, leaf: soon.cert, earliest: soon.cert, version: "TLS 1.3", chainLength: 2},
		},
		{
			name:   "intermediate expires first",
			cfg:    map[string]any{"port": shortPort, "servername": "localhost", "ca": ca.pem(), "warnDays": 7},
			sev:    &medium,
			errHas: []string{`the chain's certificate "Short Intermediate" expires in 3.0 days`},
			want:   want{chainValid: true, hostnameMatch: true, leaf: underShort.cert, earliest: shortInter.cert, version: "TLS 1.3", chainLength: 2},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := c.clock
			if clock.IsZero() {
				clock = now
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res := run(ctx, target(c.cfg), func() time.Time { return clock })
			assertValid(t, res)
			for _, s := range resultStrings(res) {
				if strings.Contains(s, distinctiveSecret) {
					t.Fatalf("secret in %q", s)
				}
			}
			switch {
			case c.sev == nil && res.Error != nil:
				t.Fatalf("unexpected error %+v", res.Error)
			case c.sev != nil:
				if res.Error == nil || res.Error.Severity != *c.sev {
					t.Fatalf("error %+v, want %v", res.Error, *c.sev)
				}
				for _, h := range c.errHas {
					if !strings.Contains(res.Error.Message, h) {
						t.Errorf("message %q lacks %q", res.Error.Message, h)
					}
				}
			}
			if len(res.Types) != 1 || res.Types[0].Name != "tls" || len(res.Types[0].Items) != 1 {
				t.Fatalf("types %+v", res.Types)
			}
			it := res.Types[0].Items[0]
			if port := strconv.Itoa(c.cfg["port"].(int)); it.Name != "127.0.0.1:"+port {
				t.Errorf("item %q, want 127.0.0.1:%s", it.Name, port)
			}
			m := map[string]model.Value{}
			for _, x := range it.Metrics {
				m[x.Name] = x.Value
			}
			w := c.want
			fp := sha256.Sum256(w.leaf.Raw)
			days := func(x *x509.Certificate) float64 { return x.NotAfter.Sub(clock).Hours() / 24 }
			checks := []struct {
				name string
				ok   bool
			}{
				{"chainValid", eq(m["chainValid"], model.BoolValue(w.chainValid))},
				{"hostnameMatch", eq(m["hostnameMatch"], model.BoolValue(w.hostnameMatch))},
				{"selfSigned", eq(m["selfSigned"], model.BoolValue(w.selfSigned))},
				{"notAfter", eq(m["notAfter"], model.IntValue(w.leaf.NotAfter.Unix()))},
				{"chainNotAfter", eq(m["chainNotAfter"], model.IntValue(w.earliest.NotAfter.Unix()))},
				{"daysLeft", m["daysLeft"].Kind == model.KindFloat && math.Abs(m["daysLeft"].F-days(w.leaf)) < 1e-6},
				{"chainDaysLeft", m["chainDaysLeft"].Kind == model.KindFloat && math.Abs(m["chainDaysLeft"].F-days(w.earliest)) < 1e-6},
				{"chainLength", eq(m["chainLength"], model.IntValue(w.chainLength))},
				{"subjectCN", eq(m["subjectCN"], model.StringValue(w.leaf.Subject.CommonName))},
				{"issuerCN", eq(m["issuerCN"], model.StringValue(w.leaf.Issuer.CommonName))},
				{"sha256Fingerprint", eq(m["sha256Fingerprint"], model.StringValue(hex.EncodeToString(fp[:])))},
				{"version", eq(m["version"], model.StringValue(w.version))},
				{"cipherSuite", strings.HasPrefix(m["cipherSuite"].Str, "TLS_")},
				{"connectTime", m["connectTime"].Kind == model.KindFloat && m["connectTime"].F > 0},
				{"handshakeTime", m["handshakeTime"].Kind == model.KindFloat && m["handshakeTime"].F > 0},
			}
			for _, ch := range checks {
				if !ch.ok {
					t.Errorf("%s = %+v", ch.name, m[ch.name])
				}
			}
			if len(m) != len(checks) {
				t.Errorf("%d metrics, want %d: %+v", len(m), len(checks), it.Metrics)
			}
		})
	}
}

// eq compares two scalar values.
func eq(a, b model.Value) bool {
	return a.Kind == b.Kind && a.Int == b.Int && a.F == b.F && a.Str == b.Str && a.Bool == b.Bool
}

// TestFailures: no handshake, no result, a HIGH error, within the timeout.
func TestFailures(t *testing.T) {
	notTLS := serve(t, func(c net.Conn) { _, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n") })
	httpPort := serve(t, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 512))
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
	})
	silent := serve(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	closes := serve(t, func(c net.Conn) {})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	cases := []struct {
		name   string
		cfg    map[string]any
		errHas string
	}{
		{"sends a banner", map[string]any{"port": notTLS}, "TLS handshake with 127.0.0.1:" + strconv.Itoa(notTLS)},
		{"speaks HTTP", map[string]any{"port": httpPort}, "TLS handshake with"},
		{"never answers", map[string]any{"port": silent, "timeout": 0.4}, "no answer before the deadline"},
		{"closes at once", map[string]any{"port": closes}, "the server closed the connection during the handshake"},
		{"connection refused", map[string]any{"port": refused}, "connection refused"},
		{"bad port", map[string]any{"port": 70000}, "config.port: must be between 1 and 65535"},
		{"bad servername", map[string]any{"port": 443, "servername": "a b"}, "config.servername"},
		{"bad address", map[string]any{"address": "https://x", "port": 443}, "config.address"},
		{"bad ca", map[string]any{"port": 443, "ca": "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n"}, "config.ca: holds no PEM certificate"},
		{"bad warnDays", map[string]any{"port": 443, "warnDays": -1}, "config.warnDays"},
		{"unknown field", map[string]any{"port": 443, "serverName2": "x"}, `unknown field "serverName2"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			res := Probe(ctx, target(c.cfg), vault)
			assertValid(t, res)
			if el := time.Since(start); el > 8*time.Second { // a hang, not a busy machine
				t.Errorf("took %v", el)
			}
			if res.Error == nil || res.Error.Severity != model.SeverityHigh || !strings.Contains(res.Error.Message, c.errHas) || res.Types != nil {
				t.Fatalf("got %+v %+v, want only a HIGH error containing %q", res.Error, res.Types, c.errHas)
			}
			t.Log(res.Error.Message)
		})
	}
}

// BenchmarkProbe measures a whole check: connect, TLS 1.3 handshake and
// verification of a two-certificate chain.
func BenchmarkProbe(b *testing.B) {
	now := time.Now()
	ca := issue(b, spec{cn: "Root", notBefore: now.Add(-time.Hour), notAfter: now.Add(1000 * time.Hour), ca: true}, nil)
	leaf := issue(b, spec{cn: "localhost", dns: []string{"localhost"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(1000 * time.Hour)}, &ca)
	port := serveTLS(b, []issued{leaf, ca}, 0, 0)
	tg := target(map[string]any{"port": port, "servername": "localhost", "ca": ca.pem()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if res := Probe(ctx, tg, nil); res.Error != nil {
			b.Fatal(res.Error.Message)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// defaultPrometheus is where Debian's prometheus package puts the server.
const defaultPrometheus = "/usr/bin/prometheus"

// promConfig is the spawned Prometheus' configuration: it scrapes nothing.
const promConfig = `global:
  scrape_interval: 1m
  evaluation_interval: 1m
`

// spawnPrometheus runs a Prometheus server with its remote-write receiver
// on a free local port, its data in dir. Unless plain, it serves HTTPS with
// a certificate made for the run, as the hub does, so that both pay for TLS.
// A positive outOfOrder is its TSDB's out-of-order window, for hubs that
// send it samples of the past in any order.
func spawnPrometheus(ctx context.Context, bin, dir string, plain bool, outOfOrder time.Duration) (*server, error) {
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("prometheus"); err != nil {
			bin = defaultPrometheus
		}
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no Prometheus server at %s (on Debian: apt-get install prometheus): %w", bin, err)
	}
	port, err := freeLocalPort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(prometheusConfig(outOfOrder)), 0o600); err != nil {
		return nil, fmt.Errorf("writing Prometheus' configuration: %w", err)
	}
	data := filepath.Join(dir, "prometheus-data")
	args := []string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + data,
		"--web.listen-address=" + addr,
		"--web.enable-remote-write-receiver",
		"--log.level=warn",
	}
	s := &server{name: "prometheus", base: "http://" + addr, tsdbDir: data, tlsConf: &tls.Config{MinVersion: tls.VersionTLS12}}
	if !plain {
		webCfg, conf, err := selfSignedTLS(dir)
		if err != nil {
			return nil, err
		}
		args = append(args, "--web.config.file="+webCfg)
		s.base, s.tlsConf = "https://"+addr, conf
	}
	c, err := startChild("prometheus", bin, args, filepath.Join(dir, "prometheus.log"))
	if err != nil {
		return nil, err
	}
	s.pid = c.pid()
	// "prometheus, version 2.42.0+ds (branch: …)" → "2.42.0+ds"
	v := strings.TrimPrefix(binaryVersion(ctx, bin, "--version"), "prometheus, version ")
	s.version, _, _ = strings.Cut(v, " ")
	s.stop = func() error { return c.stop(time.Minute) }
	client := newClient(s.tlsConf, true, 2*time.Second)
	if err := c.waitReady(ctx, time.Minute, func(ctx context.Context) error {
		return getOK(ctx, client, s.base+"/-/ready")
	}); err != nil {
		return nil, errors.Join(err, c.stop(10*time.Second))
	}
	return s, nil
}

// prometheusConfig is promConfig with, for a positive outOfOrder, the
// TSDB's out-of-order window in whole hours (rounded up).
func prometheusConfig(outOfOrder time.Duration) string {
	if outOfOrder <= 0 {
		return promConfig
	}
	hours := (outOfOrder + time.Hour - 1) / time.Hour
	return promConfig + fmt.Sprintf("storage:\n  tsdb:\n    out_of_order_time_window: %dh\n", hours)
}

// externalPrometheus is a Prometheus server someone else runs.
func externalPrometheus(ctx context.Context, rawURL, caFile string, pid int, allowRemote bool) (*server, error) {
	u, err := checkLocal(rawURL, allowRemote)
	if err != nil {
		return nil, err
	}
	conf, err := tlsConfigFromCA(caFile)
	if err != nil {
		return nil, err
	}
	s := &server{name: "prometheus", base: u.Scheme + "://" + u.Host, tlsConf: conf, pid: pid}
	if err := getOK(ctx, newClient(conf, true, 5*time.Second), s.base+"/-/ready"); err != nil {
		return nil, fmt.Errorf("the Prometheus server at %s is not ready: %w", s.base, err)
	}
	return s, nil
}

// selfSignedTLS writes a key and a self-signed certificate for 127.0.0.1
// and localhost into dir, and a Prometheus web configuration that serves
// them. It returns the configuration's path and a client configuration
// that trusts the certificate.
func selfSignedTLS(dir string) (string, *tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, fmt.Errorf("generating a TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return "", nil, fmt.Errorf("generating a serial number: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "sonde-bench prometheus"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", nil, fmt.Errorf("creating a TLS certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", nil, fmt.Errorf("encoding the TLS key: %w", err)
	}
	certPath, keyPath, webPath := filepath.Join(dir, "prom-cert.pem"), filepath.Join(dir, "prom-key.pem"), filepath.Join(dir, "prom-web.yml")
	files := []struct {
		path string
		data []byte
	}{
		{certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})},
		{keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})},
		{webPath, fmt.Appendf(nil, "tls_server_config:\n  cert_file: %s\n  key_file: %s\n", certPath, keyPath)},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return "", nil, fmt.Errorf("writing %s: %w", f.path, err)
		}
	}
	conf, err := tlsConfigFromCA(certPath)
	return webPath, conf, err
}

package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// newClient returns an HTTP client with its own keep-alive connection, as
// one agent on its own host has. http1 forbids HTTP/2; otherwise HTTP/2 is
// used when the server offers it over TLS.
func newClient(tlsConf *tls.Config, http1 bool, timeout time.Duration) *http.Client {
	var protos http.Protocols
	protos.SetHTTP1(true)
	if !http1 {
		protos.SetHTTP2(true)
	}
	tr := &http.Transport{
		Proxy:       nil, // never through a proxy: the target is local
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// A copy each: a transport that speaks HTTP/2 adds "h2" to its
		// configuration's NextProtos, which must not leak to others.
		TLSClientConfig:       tlsConf.Clone(),
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          2,
		MaxIdleConnsPerHost:   2,
		DisableCompression:    true,
		Protocols:             &protos,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// tlsConfigFromCA trusts only the certificates of the PEM file caFile
// (none: plain HTTP or the system's roots).
func tlsConfigFromCA(caFile string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return conf, nil
	}
	pem, err := os.ReadFile(caFile) // #nosec G304 -- the operator's --ca, or the CA file of a hub sonde-bench spawned
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", caFile)
	}
	conf.RootCAs = pool
	return conf, nil
}

// drain reads and closes a response body so the connection is reused; for
// an error status it returns the start of the body.
func drain(resp *http.Response) string {
	defer resp.Body.Close()
	// A failed read only costs the connection's reuse: the status is
	// what counts.
	var b []byte
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		b, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return strings.TrimSpace(string(b))
}

// checkLocal refuses a target that is not this machine, unless allowed:
// a load generator pointed at someone else's server is an attack.
func checkLocal(raw string, allowRemote bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, usageErr("target %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, usageErr("target %q: the scheme must be http or https", raw)
	}
	if u.Host == "" {
		return nil, usageErr("target %q has no host", raw)
	}
	if allowRemote || isLoopback(u.Hostname()) {
		return u, nil
	}
	return nil, usageErr("target %s is not 127.0.0.1 or localhost; give --allow-remote to load another machine", u.Host)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

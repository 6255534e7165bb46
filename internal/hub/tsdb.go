package hub

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
	"github.com/sonde-monitoring/sonde/internal/tsstore/local"
	"github.com/sonde-monitoring/sonde/internal/tsstore/remote"
)

// TSDBQueueDir is the directory, under the data directory, of the queue of
// samples on their way to a remote TSDB.
const TSDBQueueDir = "tsdb-queue"

// openSeries opens the time-series store: the embedded one in <data>/tsdb,
// or a remote TSDB when both of its URLs are given.
func (h *Hub) openSeries(reg prometheus.Registerer) (tsstore.Store, error) {
	c := h.cfg
	if c.TSDBRemoteWrite == "" && c.TSDBQuery == "" {
		if c.TSDBCAFile != "" || c.TSDBBearerTokenFile != "" || c.TSDBOrgID != "" {
			return nil, errors.New("the --tsdb-* flags need --tsdb-remote-write and --tsdb-query")
		}
		return local.Open(filepath.Join(c.DataDir, "tsdb"), local.Options{Retention: c.Retention}, c.Logger, reg)
	}
	if c.TSDBRemoteWrite == "" || c.TSDBQuery == "" {
		return nil, errors.New("a remote TSDB needs both --tsdb-remote-write (where samples go) and --tsdb-query (where they are read)")
	}
	write, err := tsdbURL("--tsdb-remote-write", c.TSDBRemoteWrite)
	if err != nil {
		return nil, err
	}
	query, err := tsdbURL("--tsdb-query", c.TSDBQuery)
	if err != nil {
		return nil, err
	}
	opts := remote.Options{
		WriteURL: write,
		QueryURL: query,
		OrgID:    c.TSDBOrgID,
		QueueDir: filepath.Join(c.DataDir, TSDBQueueDir),
		Queue:    remote.QueueOptions{MaxBytes: c.TSDBQueueBytes},
		// The TSDB refuses samples older than its out-of-order window, so
		// the hub refuses such results itself (its embedded store does as
		// much).
		MaxSampleAge: c.TSDBMaxSampleAge,
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TSDBCAFile != "" {
		pem, err := os.ReadFile(c.TSDBCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading --tsdb-ca: %w", err)
		}
		tr.TLSClientConfig.RootCAs = x509.NewCertPool()
		if !tr.TLSClientConfig.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tsdb-ca %s holds no PEM certificate", c.TSDBCAFile)
		}
	}
	opts.Client = &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	if c.TSDBBearerTokenFile != "" {
		if fi, err := os.Stat(c.TSDBBearerTokenFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			c.Logger.Warn("the TSDB's bearer token file is readable by others than its owner: chmod 600 it",
				"file", c.TSDBBearerTokenFile, "mode", fi.Mode().Perm().String())
		}
		b, err := os.ReadFile(c.TSDBBearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading --tsdb-bearer-token-file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return nil, fmt.Errorf("--tsdb-bearer-token-file %s is empty", c.TSDBBearerTokenFile)
		}
		opts.BearerToken = secret.New(tok)
	}
	c.Logger.Info("time series go to a remote TSDB; its own retention applies, not --retention",
		"remote_write", write.Redacted(), "query", query.Redacted())
	return remote.Open(opts, c.Logger.With("part", "tsdb-remote"), reg)
}

// tsdbURL checks a remote TSDB URL: http(s), no credentials in it (they
// would show in the process list), and TLS unless the TSDB is on this
// machine, since it receives every tenant's metrics.
func tsdbURL(flag, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%s must be an http(s):// URL with a host, e.g. https://tsdb.example:8428/api/v1/write", flag)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%s holds credentials, which any user of this machine can read in the process list: put a bearer token in --tsdb-bearer-token-file instead", flag)
	}
	if u.Scheme == "http" {
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("%s must use https:// unless the TSDB is on this machine: it carries every tenant's metrics", flag)
		}
	}
	return u, nil
}

// Package hub wires the hub together: TLS, the state store, the
// time-series store, ingest and the HTTPS API, and runs them until stopped.
package hub

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sonde-monitoring/sonde/internal/alert"
	"github.com/sonde-monitoring/sonde/internal/alert/notify"
	"github.com/sonde-monitoring/sonde/internal/api"
	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/cluster"
	"github.com/sonde-monitoring/sonde/internal/ingest"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/service"
	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/stream"
	"github.com/sonde-monitoring/sonde/internal/tlsca"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
	"github.com/sonde-monitoring/sonde/internal/web"
)

// AdminTokenFile is the file, under the data directory, that receives the
// first admin token.
const AdminTokenFile = "admin-token"

// SecretKeyFile is the file, under the data directory, with the key that
// seals secrets in the state store (webhook secrets of notification
// rules). Back it up with the database: without it they do not open.
const SecretKeyFile = "secret.key"

// AdminPasswordFile is the file, under the data directory, that receives
// the first admin's user name and one-time password (0600). The web UI
// removes it once the admin has chosen a password.
const AdminPasswordFile = "admin-password"

// Config configures a hub.
type Config struct {
	DataDir string
	Listen  string // HTTPS address, e.g. ":8443"
	// State is where the state store lives: "" for SQLite in
	// <data>/state.db, or a postgres:// URL (verified TLS unless the
	// server is on this machine). Every hub on one PostgreSQL must share
	// the same <data>/secret.key.
	State string
	// ExternalURL is the hub's address as users reach it (through a
	// proxy, say), for links the web UI hands out; empty uses the host
	// the browser asked for.
	ExternalURL  string
	StreamListen string // appliance stream address (TLS); empty serves none
	// AllowTokenAnnounce accepts InfraSonar appliances that announce with
	// a token and no client certificate.
	AllowTokenAnnounce bool
	// ExtraProbeKeys are InfraSonar probe collector keys to send to
	// appliances besides Sonde's own probes.
	ExtraProbeKeys []string
	// Heartbeat is how often the hub asks appliances for their info; 0
	// means 30 s.
	Heartbeat time.Duration
	// ApplianceCertValidity is how long an appliance certificate is
	// valid; 0 means a year. Appliances renew theirs in time.
	ApplianceCertValidity time.Duration
	// MaxAppliancesPerContainer bounds the appliances connected at once
	// in one container; 0 means 100.
	MaxAppliancesPerContainer int
	TLSSANs                   []string
	TLSCert                   string
	TLSKey                    string
	Retention                 time.Duration
	// TSDBRemoteWrite and TSDBQuery, given together, put the time series
	// in a remote Prometheus-compatible TSDB instead of <data>/tsdb: the
	// remote-write endpoint, and the base of its Prometheus HTTP API.
	// https:// unless the TSDB is on this machine.
	TSDBRemoteWrite, TSDBQuery string
	// TSDBCAFile verifies the remote TSDB instead of the system's roots.
	TSDBCAFile string
	// TSDBBearerTokenFile holds a token sent to the remote TSDB.
	TSDBBearerTokenFile string
	// TSDBOrgID is sent as X-Scope-OrgID (Mimir, Thanos Receive).
	TSDBOrgID string
	// TSDBQueueBytes bounds the queue of samples waiting for the remote
	// TSDB; 0 means 1 GiB.
	TSDBQueueBytes int64
	// TSDBMaxSampleAge refuses results older than the remote TSDB
	// accepts (its out-of-order window); 0 means 24 h.
	TSDBMaxSampleAge time.Duration
	// RequestsPerSecond and Burst limit each API token; 0 disables.
	RequestsPerSecond float64
	Burst             float64
	Logger            *slog.Logger
	// MaxSeriesPerContainer bounds each container's active series; 0
	// means the default (1,000,000), negative no limit.
	MaxSeriesPerContainer int
	// Now is the clock for token expiry, rate limits and received times;
	// nil means time.Now. Tests inject one.
	Now func() time.Time
	// Out receives what the operator must read: URL, CA fingerprint,
	// where the admin token is. Never a secret.
	Out io.Writer
	// Version is shown in the web UI.
	Version string
	// SMTP server for e-mail rules; empty SMTPAddr sends no e-mail.
	SMTPAddr, SMTPFrom, SMTPUsername string
	// SMTPPasswordFile holds the SMTP password.
	SMTPPasswordFile string
	// SMTPCAFile verifies the SMTP server instead of the system's roots.
	SMTPCAFile string
	// SMTPAllowedDomains, when not empty, are the only recipient domains
	// of e-mail rules.
	SMTPAllowedDomains []string
	// AllowPrivateWebhooks lets webhook rules use http:// and reach
	// private addresses.
	AllowPrivateWebhooks bool
	// AllowPrivateServices lets the hub's service checks reach loopback,
	// private and other special-purpose addresses: tests and labs only
	// (a tenant could otherwise probe the hub's own network).
	AllowPrivateServices bool
	// HealthInterval is how often the monitoring-health sweep runs; 0
	// means 30 s.
	HealthInterval time.Duration
	// NotifyMinBackoff is the first wait before a failed delivery is
	// retried; 0 means 30 s.
	NotifyMinBackoff time.Duration
}

// Hub is a running hub.
type Hub struct {
	cfg     Config
	logger  *slog.Logger
	st      *state.Store
	series  tsstore.Store
	cluster *cluster.Cluster
	// reloadOpen asks for the open alerts to be read again (another hub
	// changed some).
	reloadOpen chan struct{}
	listener   net.Listener
	server     *http.Server
	ca         *tlsca.CA
	stream     *stream.Server
	streamLn   net.Listener
	api        *api.API
	web        *web.Server
	services   *service.Runner
	alerts     *alert.Engine
	outbox     *alert.Outbox
	caFile     string
	// Fingerprint is the SHA-256 fingerprint of the certificate that
	// signed the hub's certificate (the hub's CA, or the operator's
	// certificate itself).
	Fingerprint string
}

// New prepares a hub: it creates or loads the TLS material, opens the
// stores, creates the root container and the first admin token on first
// start, and listens. Serve runs it.
func New(ctx context.Context, cfg Config) (_ *Hub, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.DataDir == "" {
		return nil, errors.New("the data directory is not set: give --data DIR")
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("give both --tls-cert and --tls-key, or neither")
	}
	if cfg.ExternalURL != "" {
		u, err := url.Parse(cfg.ExternalURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("--external-url %q must be https://HOST[:PORT], the address users reach the hub at", cfg.ExternalURL)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory %s: %w", cfg.DataDir, err)
	}
	// Every tenant's data is below: owner only, even when the directory
	// existed before with a looser mode.
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil { // #nosec G302 -- a directory needs its x bit
		return nil, fmt.Errorf("restricting data directory %s to its owner: %w", cfg.DataDir, err)
	}
	h := &Hub{cfg: cfg, logger: cfg.Logger}
	defer func() {
		if err != nil {
			h.closeStores()
		}
	}()

	cert, err := h.tlsCertificate()
	if err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	loc := cfg.State
	if loc == "" {
		loc = filepath.Join(cfg.DataDir, "state.db")
	} else if !state.IsPostgres(loc) {
		return nil, fmt.Errorf("--state %q: give a postgres:// URL, or leave it out for SQLite in the data directory", loc)
	}
	h.st, err = state.Open(ctx, loc, cfg.Logger)
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(cfg.DataDir, SecretKeyFile)
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		// A new key would open nothing sealed with the old one.
		sealed, err := h.st.HasSealedSecrets(ctx)
		if err != nil {
			return nil, err
		}
		if sealed {
			return nil, fmt.Errorf("%s is missing, and the state store holds secrets sealed with it: restore the file from the backup of this data directory", keyPath)
		}
	}
	key, err := loadOrCreateKey(keyPath, cfg.Logger)
	if err != nil {
		return nil, err
	}
	if err := h.st.UseSecretKey(key); err != nil {
		return nil, err
	}
	root, err := h.bootstrap(ctx)
	if err != nil {
		return nil, err
	}
	if err := h.firstUser(ctx, root); err != nil {
		return nil, err
	}
	h.series, err = h.openSeries(reg)
	if err != nil {
		return nil, err
	}

	dsn := ""
	if state.IsPostgres(loc) {
		dsn = loc
	}
	if h.cluster, err = cluster.New(cluster.Config{DSN: dsn, Logger: clusterLogger(cfg.Logger)}); err != nil {
		return nil, err
	}
	h.reloadOpen = make(chan struct{}, 1)
	var alertPeer alert.Peers
	var streamPeer stream.Peers
	if h.cluster.Shared() {
		alertPeer, streamPeer = alertPeers{h.cluster}, streamPeers{h.cluster}
		cfg.Logger.Info("this hub shares its state store with any other hub on it", "hub_id", h.cluster.ID())
		if cfg.TSDBRemoteWrite == "" {
			cfg.Logger.Warn("the time series stay in this hub's embedded store: with several hubs on this PostgreSQL, each charts only the samples it received; give them one remote TSDB (--tsdb-remote-write, --tsdb-query; docs/SCALING.md)")
		}
	} else if err := h.st.ForgetConnections(ctx); err != nil {
		// The only hub: streams recorded before a crash are gone.
		return nil, err
	}
	h.alerts = alert.New(alert.Config{State: h.st, Logger: cfg.Logger.With("part", "alerts"), Now: cfg.Now, Registerer: reg, Peers: alertPeer})
	if err := h.alerts.Load(ctx); err != nil {
		return nil, fmt.Errorf("loading conditions and alerts: %w", err)
	}
	mailer, err := h.mailer()
	if err != nil {
		return nil, err
	}
	h.outbox = alert.NewOutbox(alert.OutboxConfig{
		State: h.st, Logger: cfg.Logger.With("part", "notify"), Now: cfg.Now, Wake: h.alerts.Wake(), Registerer: reg,
		Webhook:     notify.NewWebhook(notify.WebhookConfig{AllowPrivate: cfg.AllowPrivateWebhooks, UserAgent: "Sonde-Hub", Now: cfg.Now}),
		Mailer:      mailer,
		MailDomains: cfg.SMTPAllowedDomains,
		MinBackoff:  cfg.NotifyMinBackoff,
		Fence:       h.cluster.Fence,
	})
	in := ingest.New(h.st, h.series, cfg.Logger, reg, cfg.Now, ingest.Options{MaxSeriesPerContainer: cfg.MaxSeriesPerContainer, Observer: h.alerts})
	var appliances api.Appliances
	if cfg.StreamListen != "" {
		h.stream, err = stream.New(stream.Config{
			State: h.st, Ingest: in, CA: h.ca, Cert: cert, Logger: cfg.Logger.With("part", "stream"),
			AllowTokenAnnounce: cfg.AllowTokenAnnounce, ExtraProbeKeys: cfg.ExtraProbeKeys,
			Heartbeat: cfg.Heartbeat, CertValidity: cfg.ApplianceCertValidity, Now: cfg.Now,
			MaxAppliancesPerContainer: cfg.MaxAppliancesPerContainer, Version: cfg.Version,
			HubID: h.cluster.ID(), Peers: streamPeer,
		})
		if err != nil {
			return nil, err
		}
		appliances = h.stream
		if h.cluster.Shared() {
			appliances = sharedAppliances{local: h.stream, c: h.cluster}
		}
	}
	h.services = service.New(service.Config{State: h.st, Ingest: in, Logger: cfg.Logger.With("part", "services"),
		AllowPrivate: cfg.AllowPrivateServices, Version: cfg.Version})
	var services api.Services = h.services
	if h.cluster.Shared() {
		services = sharedServices{local: h.services, c: h.cluster}
	}
	h.api = api.New(api.Config{
		Services:   services,
		Appliances: appliances, Alerts: h.alerts, AllowPrivateWebhooks: cfg.AllowPrivateWebhooks, MailConfigured: mailer != nil, MailDomains: cfg.SMTPAllowedDomains,
		State: h.st, Series: h.series, Ingester: in, Logger: cfg.Logger,
		Gatherer: reg, Registerer: reg,
		RequestsPerSecond: cfg.RequestsPerSecond, Burst: cfg.Burst,
		ContainerRequestsPerSecond: 5 * cfg.RequestsPerSecond, ContainerBurst: 5 * cfg.Burst,
		RootID: root, Now: cfg.Now,
	})
	h.web, err = web.New(web.Config{State: h.st, Logger: cfg.Logger.With("part", "web"), Now: cfg.Now,
		AdminPasswordFile: filepath.Join(cfg.DataDir, AdminPasswordFile), Version: cfg.Version,
		Series: h.series, Alerts: h.alerts, Appliances: webAppliances(h.stream),
		AllowPrivateWebhooks: cfg.AllowPrivateWebhooks, MailConfigured: mailer != nil, MailDomains: cfg.SMTPAllowedDomains,
		ExternalURL: cfg.ExternalURL})
	if err != nil {
		return nil, err
	}
	front := http.NewServeMux()
	for _, p := range []string{"/api/", "/prometheus/", "/metrics", "/healthz"} {
		front.Handle(p, h.api)
	}
	front.Handle("/", h.web)
	h.server = &http.Server{
		Handler:           front,
		TLSConfig:         tlsca.ServerConfig(cert),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listening on %s for HTTPS: %w", cfg.Listen, err)
	}
	h.listener = ln
	if h.stream != nil {
		sln, err := net.Listen("tcp", cfg.StreamListen)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("listening on %s for appliance streams: %w", cfg.StreamListen, err)
		}
		h.streamLn = sln
	}
	return h, nil
}

// tlsCertificate loads the operator's certificate, or creates the hub's CA
// and server certificate under <data>/tls. With an operator's certificate
// the hub's CA is still made when appliances connect: it signs their
// client certificates.
func (h *Hub) tlsCertificate() (tls.Certificate, error) {
	dir := filepath.Join(h.cfg.DataDir, "tls")
	if h.cfg.TLSCert == "" || h.cfg.StreamListen != "" {
		ca, created, err := tlsca.LoadOrCreate(dir, h.logger)
		if err != nil {
			return tls.Certificate{}, err
		}
		if created {
			h.logger.Info("created the hub's certificate authority", "dir", dir)
		}
		h.ca = ca
	}
	ca := h.ca
	if h.cfg.TLSCert != "" {
		cert, err := tlsca.LoadKeyPair(h.cfg.TLSCert, h.cfg.TLSKey)
		if err != nil {
			return cert, err
		}
		h.Fingerprint = tlsca.Fingerprint(cert.Certificate[len(cert.Certificate)-1])
		h.caFile = h.cfg.TLSCert
		return cert, nil
	}
	sans, err := tlsca.ServerSANs(h.cfg.TLSSANs)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := ca.EnsureServerCert(dir, sans, time.Now())
	if err != nil {
		return cert, err
	}
	h.Fingerprint = ca.Fingerprint()
	h.caFile = filepath.Join(dir, tlsca.CACertFile)
	return cert, nil
}

// bootstrap creates the root container and, with it, the first admin token,
// written to <data>/admin-token (0600). It never logs the token.
func (h *Hub) bootstrap(ctx context.Context) (root int64, err error) {
	root, created, err := h.st.EnsureRoot(ctx, "root")
	if err != nil || !created {
		return root, err
	}
	tok, err := auth.NewToken()
	if err != nil {
		return 0, err
	}
	path := filepath.Join(h.cfg.DataDir, AdminTokenFile)
	// Write the file before the token exists in the store: a crash in
	// between leaves an unusable file, never a usable token nobody has.
	if err := writeSecretFile(path, []byte(tok.Reveal()+"\n")); err != nil {
		return 0, err
	}
	if _, err := h.st.CreateToken(ctx, state.Token{
		ContainerID: root, Name: "admin (created at first start)", Hash: auth.HashToken(tok), Permissions: uint64(auth.All),
	}); err != nil {
		return 0, err
	}
	fmt.Fprintf(h.cfg.Out, "First start: an admin token for the root container is in %s (readable by you only).\n", path)
	return root, nil
}

// loadOrCreateKey reads the 32-byte key at path, creating it (0600) when
// it does not exist; two hubs starting at once end with the same key.
func loadOrCreateKey(path string, log *slog.Logger) ([]byte, error) {
	for range 2 {
		key, err := os.ReadFile(path) // #nosec G304 -- path is <data>/secret.key, under the operator's data directory
		switch {
		case err == nil:
			if len(key) != 32 {
				return nil, fmt.Errorf("%s holds %d bytes, not a 32-byte key: restore it from your backup", path, len(key))
			}
			if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
				log.Warn("the secret key was readable by others; restricting it to its owner", "file", path, "mode", fi.Mode().Perm().String())
				if err := os.Chmod(path, 0o600); err != nil {
					return nil, fmt.Errorf("restricting %s to its owner: %w", path, err)
				}
			}
			return key, nil
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("making the secret key: %w", err)
		}
		if err := createSecretFile(path, key); err == nil {
			return key, nil
		} else if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		// Another hub made it first: read that one.
	}
	return nil, fmt.Errorf("%s could not be created or read", path)
}

// createSecretFile writes data to path (0600) only if path does not exist
// yet; it fails with an error wrapping os.ErrExist otherwise.
func createSecretFile(path string, data []byte) error { return putSecretFile(path, data, false) }

// firstUser creates the first admin of the web UI when there is no user
// yet: user name "admin", a random one-time password that must be changed
// at the first login, written to <data>/admin-password (0600), and every
// permission on the root container.
func (h *Hub) firstUser(ctx context.Context, root int64) error {
	n, err := h.st.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	pw, err := auth.NewPassword()
	if err != nil {
		return err
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	path := filepath.Join(h.cfg.DataDir, AdminPasswordFile)
	if err := writeSecretFile(path, []byte("admin\n"+pw.Reveal()+"\n")); err != nil {
		return err
	}
	now := time.Now()
	if h.cfg.Now != nil {
		now = h.cfg.Now()
	}
	if _, err := h.st.CreateUserWith(ctx, state.User{Username: "admin", PasswordHash: hash, MustChange: true}, root, uint64(auth.All), now); err != nil {
		return err
	}
	fmt.Fprintf(h.cfg.Out, "First start: the web UI's first user is \"admin\"; its one-time password is in %s (readable by you only; change it at the first login).\n", path)
	return nil
}

// AdminPasswordPath is where the first admin's one-time password is, until
// it is changed.
func (h *Hub) AdminPasswordPath() string { return filepath.Join(h.cfg.DataDir, AdminPasswordFile) }

// writeSecretFile writes data to path, readable by the owner only. The
// temporary file is created new (O_EXCL, mode 0600), so neither a stale
// file nor a planted symlink can receive the secret.
func writeSecretFile(path string, data []byte) error { return putSecretFile(path, data, true) }

// putSecretFile writes data to a new temporary file (0600) beside path,
// then moves it to path: replacing what is there, or (replace false)
// failing with os.ErrExist if something is.
func putSecretFile(path string, data []byte, replace bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // gone already after a rename
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if replace {
			err = os.Rename(tmp, path)
		} else {
			err = os.Link(tmp, path) // fails if path exists, unlike a rename
		}
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// webAppliances is the stream server for the web UI, or nil (not a nil
// pointer in an interface) when the hub serves no stream.
func webAppliances(s *stream.Server) web.Appliances {
	if s == nil {
		return nil
	}
	return s
}

// mailer builds the SMTP client of e-mail rules; nil when none is
// configured.
func (h *Hub) mailer() (*notify.Mailer, error) {
	c := h.cfg
	if c.SMTPAddr == "" {
		if c.SMTPFrom != "" || c.SMTPUsername != "" || c.SMTPPasswordFile != "" || c.SMTPCAFile != "" || len(c.SMTPAllowedDomains) > 0 {
			return nil, errors.New("the --smtp-* flags need --smtp-addr")
		}
		return nil, nil
	}
	mc := notify.MailConfig{Addr: c.SMTPAddr, From: c.SMTPFrom, Username: c.SMTPUsername}
	if c.SMTPPasswordFile != "" {
		b, err := os.ReadFile(c.SMTPPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("reading --smtp-password-file: %w", err)
		}
		mc.Password = secret.New(strings.TrimRight(string(b), "\r\n"))
	}
	if c.SMTPCAFile != "" {
		pem, err := os.ReadFile(c.SMTPCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading --smtp-ca: %w", err)
		}
		mc.RootCAs = x509.NewCertPool()
		if !mc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--smtp-ca %s holds no PEM certificate", c.SMTPCAFile)
		}
	}
	m, err := notify.NewMailer(mc)
	if err != nil {
		return nil, fmt.Errorf("the SMTP settings: %w", err)
	}
	return m, nil
}

// Routes lists the API's token-authenticated routes.
func (h *Hub) Routes() []api.Route { return h.api.Routes() }

// Addr is the address the HTTPS server listens on.
func (h *Hub) Addr() net.Addr { return h.listener.Addr() }

// CAFile is the file a client should trust to reach this hub.
func (h *Hub) CAFile() string { return h.caFile }

// AdminTokenPath is where the first admin token was written.
func (h *Hub) AdminTokenPath() string { return filepath.Join(h.cfg.DataDir, AdminTokenFile) }

// StreamAddr is the address the appliance stream listens on; nil when the
// hub serves none.
func (h *Hub) StreamAddr() net.Addr {
	if h.streamLn == nil {
		return nil
	}
	return h.streamLn.Addr()
}

// Serve answers requests until ctx ends, then shuts down gracefully and
// closes the stores.
func (h *Hub) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- h.server.ServeTLS(h.listener, "", "") }()
	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	var streamDone chan error // nil, never ready, when there is no stream
	if h.stream != nil {
		streamDone = make(chan error, 1)
		go func() { streamDone <- h.stream.Serve(streamCtx, h.streamLn) }()
	}
	// The health sweep and the outbox write to the state store: they stop
	// before it closes.
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	// Changes made on other hubs; the work one hub does for all, under
	// the cluster's leases (at once for a single hub).
	h.cluster.Subscribe(h.applyEvent)
	bg.Go(func() { h.cluster.Listen(bgCtx) })
	bg.Go(func() { h.reloadOpenAlerts(bgCtx) })
	bg.Go(func() {
		h.lead(bgCtx, cluster.LeaseHealth, func(ctx context.Context) error { h.alerts.RunHealth(ctx, h.cfg.HealthInterval); return nil })
	})
	bg.Go(func() {
		h.lead(bgCtx, cluster.LeaseOutbox, func(ctx context.Context) error { h.outbox.Run(ctx); return nil })
	})
	bg.Go(func() {
		h.lead(bgCtx, cluster.LeaseHousekeeping, func(ctx context.Context) error { h.web.Run(ctx); return nil })
	})
	bg.Go(func() { h.lead(bgCtx, cluster.LeaseServices, h.services.Run) })
	defer func() {
		stopBG()
		bg.Wait()
	}()
	var err error
	select {
	case err = <-errc:
		err = fmt.Errorf("serving HTTPS: %w", err)
	case err = <-streamDone:
		streamDone <- nil
		err = fmt.Errorf("serving appliance streams: %w", cmp.Or(err, errors.New("stopped")))
		h.server.Close()
		<-errc
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if serr := h.server.Shutdown(sctx); serr != nil {
			h.logger.Warn("shutting down HTTPS did not finish cleanly", "err", serr)
		}
		<-errc
	}
	// Appliance streams write to the stores: end them first.
	stopStream()
	if streamDone != nil {
		if serr := <-streamDone; serr != nil {
			h.logger.Error("the appliance stream stopped", "err", serr)
		}
	}
	stopBG()
	bg.Wait()
	return errors.Join(err, h.closeStores())
}

func (h *Hub) closeStores() error {
	var errs []error
	if h.cluster != nil {
		errs = append(errs, h.cluster.Close())
		h.cluster = nil
	}
	if h.series != nil {
		errs = append(errs, h.series.Close())
		h.series = nil
	}
	if h.st != nil {
		errs = append(errs, h.st.Close())
		h.st = nil
	}
	return errors.Join(errs...)
}

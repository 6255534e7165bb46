// Command sonde runs the Sonde hub (sonde hub) or the whole system on one
// machine (sonde up).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hub"
)

// version is set by the build (-ldflags "-X main.version=…").
var version = "dev"

const usage = `sonde — the Sonde monitoring hub

Usage:
  sonde hub [flags]   run the hub (HTTPS API, stores)
  sonde up  [flags]   run everything on this machine with data in ./sonde-data
  sonde migrate-state --from sqlite:PATH --to postgres://…
                      copy the state store into a new one (the hub stopped)
  sonde version       print the version

Run "sonde hub -h" for the hub's flags.
`

func main() {
	// Everything the hub writes (state, time series, keys, tokens) is for
	// its owner only, whatever the caller's umask.
	syscall.Umask(0o077)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "hub":
		err = runHub(ctx, args[1:], stdout, stderr, false)
	case "up":
		err = runHub(ctx, args[1:], stdout, stderr, true)
	case "migrate-state":
		err = runMigrateState(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "sonde", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "sonde: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "sonde:", err)
		return 1
	}
	return 0
}

func hostname() string {
	name, err := os.Hostname()
	if err != nil || name == "" {
		return "localhost"
	}
	return name
}

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func runHub(ctx context.Context, args []string, stdout, stderr io.Writer, up bool) error {
	name := "hub"
	dataDef, listenDef, streamDef := "/var/lib/sonde", ":8443", ":8730"
	if up {
		name = "up"
		dataDef, listenDef, streamDef = "./sonde-data", "127.0.0.1:8443", "127.0.0.1:8730"
	}
	fs := flag.NewFlagSet("sonde "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg hub.Config
	var sans listFlag
	var logLevel string
	fs.StringVar(&cfg.DataDir, "data", dataDef, "data directory (state, time series, TLS material)")
	fs.StringVar(&cfg.State, "state", "", "state store: a postgres://USER@HOST/DB?sslmode=verify-full URL (default: SQLite in the data directory)")
	fs.StringVar(&cfg.Listen, "listen", listenDef, "HTTPS address for the API")
	fs.StringVar(&cfg.ExternalURL, "external-url", "", "the hub's address as users reach it, e.g. https://sonde.example.com (for invitation links; default: the host the browser asked for)")
	fs.StringVar(&cfg.StreamListen, "stream-listen", streamDef, "TLS address for appliance streams (empty: serve none)")
	fs.BoolVar(&cfg.AllowPrivateServices, "allow-private-services", false, "let service checks (run by the hub) reach loopback and private addresses: labs only")
	fs.BoolVar(&cfg.AllowTokenAnnounce, "allow-token-announce", false, "accept unchanged InfraSonar appliances, which announce with a token and no client certificate")
	fs.IntVar(&cfg.MaxAppliancesPerContainer, "max-appliances-per-container", 100, "appliances one container may have connected at once")
	var probeKeys listFlag
	fs.Var(&probeKeys, "probe-collectors", "extra collector keys of InfraSonar probes to send to appliances (repeatable, or comma-separated)")
	fs.Var(&sans, "tls-san", "extra DNS name or IP for the hub's certificate (repeatable, or comma-separated)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "operator's certificate (PEM) instead of the hub's own CA")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "private key (PEM) of --tls-cert")
	fs.DurationVar(&cfg.Retention, "retention", 90*24*time.Hour, "how long time series are kept (embedded store)")
	fs.StringVar(&cfg.TSDBRemoteWrite, "tsdb-remote-write", "", "send time series to this Prometheus remote-write URL instead of the embedded store (with --tsdb-query)")
	fs.StringVar(&cfg.TSDBQuery, "tsdb-query", "", "read time series from the Prometheus HTTP API under this URL, e.g. https://vm.example:8481/select/0/prometheus (with --tsdb-remote-write)")
	fs.StringVar(&cfg.TSDBCAFile, "tsdb-ca", "", "CA certificate (PEM) to verify the remote TSDB with, instead of the system's")
	fs.StringVar(&cfg.TSDBBearerTokenFile, "tsdb-bearer-token-file", "", "file holding a bearer token for the remote TSDB")
	fs.StringVar(&cfg.TSDBOrgID, "tsdb-org-id", "", "tenant sent to the remote TSDB as X-Scope-OrgID (Mimir, Thanos Receive)")
	fs.DurationVar(&cfg.TSDBMaxSampleAge, "tsdb-max-sample-age", 24*time.Hour, "refuse results older than this, which the remote TSDB would not take: set it to the TSDB's out-of-order window")
	fs.Int64Var(&cfg.TSDBQueueBytes, "tsdb-queue-bytes", 1<<30, "most bytes of samples kept on disk while the remote TSDB is down or slow; results are refused (and kept by appliances) beyond it")
	fs.Float64Var(&cfg.RequestsPerSecond, "api-rate", 200, "requests per second allowed per API token (0 = no limit)")
	fs.Float64Var(&cfg.Burst, "api-burst", 400, "burst of requests allowed per API token")
	fs.IntVar(&cfg.MaxSeriesPerContainer, "max-series-per-container", 1_000_000, "active time series one container may hold (-1 = no limit)")
	fs.StringVar(&cfg.SMTPAddr, "smtp-addr", "", "SMTP server (host:port, STARTTLS required) for e-mail notification rules")
	fs.StringVar(&cfg.SMTPFrom, "smtp-from", "", "sender address of notification e-mails")
	fs.StringVar(&cfg.SMTPUsername, "smtp-user", "", "SMTP user name, if the server wants one")
	fs.StringVar(&cfg.SMTPPasswordFile, "smtp-password-file", "", "file holding the SMTP password (never on the command line)")
	fs.StringVar(&cfg.SMTPCAFile, "smtp-ca", "", "CA certificate (PEM) to verify the SMTP server with, instead of the system's")
	var mailDomains listFlag
	fs.Var(&mailDomains, "smtp-allowed-domains", "the only recipient domains (and their subdomains) e-mail rules may send to (repeatable, or comma-separated; default: any)")
	fs.BoolVar(&cfg.AllowPrivateWebhooks, "allow-private-webhooks", false, "let webhook rules use http:// and private, loopback and link-local addresses (labs and tests; unsafe for a shared hub)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.TLSSANs = sans
	cfg.ExtraProbeKeys = probeKeys
	cfg.SMTPAllowedDomains = mailDomains
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Out = stderr
	cfg.Version = version
	h, err := hub.New(ctx, cfg)
	if err != nil {
		return err
	}
	url := "https://" + h.Addr().String()
	if up {
		url = "https://" + strings.Replace(h.Addr().String(), "127.0.0.1", "localhost", 1)
	}
	fmt.Fprintf(stdout, `Sonde hub %s is running.
  URL:             %s
  API:             %s/api/v1
  Prometheus API:  %s/prometheus
  CA certificate:  %s
  CA fingerprint:  SHA256 %s
`, version, url, url, url, h.CAFile(), h.Fingerprint)
	if _, err := os.Stat(h.AdminTokenPath()); err == nil {
		fmt.Fprintf(stdout, `  Admin token:     in %s
Try it:
  curl --cacert %s -H "Authorization: Bearer $(cat %s)" %s/api/v1/container/id
`, h.AdminTokenPath(), h.CAFile(), h.AdminTokenPath(), url)
	} else {
		// Another hub on this state store made the first admin token.
		fmt.Fprintln(stdout, "  Admin token:     in the data directory of the first hub on this state store")
	}
	if !up {
		fmt.Fprintln(stdout, "Stop with Ctrl-C.")
		return h.Serve(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- h.Serve(ctx) }()
	if err := upParts(ctx, h, cfg.DataDir, cfg.Logger, stdout); err != nil {
		cancel()
		<-served
		return err
	}
	fmt.Fprintln(stdout, "Stop with Ctrl-C.")
	return <-served
}

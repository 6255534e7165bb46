// Command sonde-agent is Sonde's host agent: it collects the host's system,
// CPU, memory, disk, filesystem, network and process figures and posts them
// to the hub with the InfraSonar agent API, over HTTPS only.
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
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sonde-monitoring/sonde/internal/agent"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

// version is set by the build (-ldflags "-X main.version=…").
var version = "dev"

const usage = `sonde-agent — Sonde's host agent

Usage:
  sonde-agent [flags]     collect every --interval and send to the hub
  sonde-agent --once      collect once, send, and exit (0 when the hub took everything)
  sonde-agent version     print the version

Flags (environment variables as InfraSonar's agents read them):
`

func main() {
	syscall.Umask(0o077)
	// The agent's live heap is under 1 MB, but with Go's default the
	// first collection comes only after ~4 MB of garbage (about 18 rounds
	// at 30 s), which alone would take the agent past 12 MB of RSS. A
	// quarter of the live heap is plenty; GC costs ~1–2 ms every 2 min.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version" || args[0] == "-version") {
		fmt.Fprintln(os.Stdout, "sonde-agent", version)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := runAgent(ctx, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "sonde-agent:", err)
		return 1
	}
	return 0
}

func runAgent(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("sonde-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var cfg agent.Config
	var tokenFile, assetID, logLevel, runAs string
	fs.StringVar(&cfg.APIURL, "api", os.Getenv("API_URI"), "the hub's agent API, e.g. https://hub:8443/api/v1 (API_URI)")
	fs.StringVar(&tokenFile, "token-file", "", "file holding the agent token (or TOKEN in the environment)")
	fs.StringVar(&cfg.CAFile, "ca", os.Getenv("SSL_CERT_FILE"), "the hub's CA certificate, PEM (default: the system's roots; SSL_CERT_FILE)")
	fs.StringVar(&cfg.AssetName, "asset-name", os.Getenv("ASSET_NAME"), "the asset's name on the hub (ASSET_NAME; default: the host name)")
	fs.StringVar(&assetID, "asset-id", os.Getenv("ASSET_ID"), "the asset's id on the hub (ASSET_ID; default: remembered in --state-dir, or found by name, or created)")
	fs.StringVar(&cfg.StateDir, "state-dir", "/var/lib/sonde-agent", "where the agent keeps its asset id and the results not sent yet")
	fs.DurationVar(&cfg.Interval, "interval", 60*time.Second, "how often to collect")
	fs.BoolVar(&cfg.Once, "once", false, "collect once, send, and exit")
	fs.StringVar(&cfg.Root, "root", "/", "where /proc and /sys are read from (a host's root mounted in a container, say)")
	fs.Int64Var(&cfg.SpoolBytes, "spool-bytes", 64<<20, "disk budget for results waiting for the hub; the oldest are dropped beyond it")
	fs.StringVar(&runAs, "user", "sonde-agent", "unprivileged user to switch to when started as root")
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
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Version = version

	tok, err := readToken(tokenFile)
	if err != nil {
		return err
	}
	cfg.Token = tok
	if assetID != "" {
		if cfg.AssetID, err = strconv.ParseInt(assetID, 10, 64); err != nil || cfg.AssetID <= 0 {
			return fmt.Errorf("--asset-id / ASSET_ID %q: give a positive number", assetID)
		}
	}
	if cfg.AssetName == "" {
		if cfg.AssetName, err = os.Hostname(); err != nil {
			return fmt.Errorf("reading the host name for the asset name: %w (give --asset-name)", err)
		}
	}
	// Everything privileged (reading a root-only token file, creating
	// the state directory) is done; collect as an unprivileged user.
	dropped, err := agent.DropPrivileges(runAs, cfg.StateDir)
	if err != nil {
		return err
	}
	if dropped {
		cfg.Logger.Info("started as root; now running as an unprivileged user", "user", runAs)
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	cfg.Logger.Info("sonde-agent started", "version", version, "api", cfg.APIURL, "asset", cfg.AssetName, "interval", cfg.Interval)
	return a.Run(ctx)
}

// readToken reads the token from a file, or from TOKEN, which it then
// removes from the environment.
func readToken(file string) (secret.Secret, error) {
	if file != "" {
		b, err := os.ReadFile(file) // #nosec G304 -- the operator names the token file
		if err != nil {
			return secret.Secret{}, fmt.Errorf("reading the token file: %w", err)
		}
		return secret.New(strings.TrimSpace(string(b))), nil
	}
	if t := os.Getenv("TOKEN"); t != "" {
		os.Unsetenv("TOKEN")
		return secret.New(strings.TrimSpace(t)), nil
	}
	return secret.Secret{}, errors.New("no token: give --token-file FILE or TOKEN")
}

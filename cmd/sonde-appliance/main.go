// Command sonde-appliance is Sonde's monitoring appliance: it runs the
// agentless probes for the assets the hub assigns it, keeps credentials in
// an encrypted vault that never leaves it, and sends results to the hub
// over mutual TLS through an encrypted disk buffer.
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

	"github.com/sonde-monitoring/sonde/internal/appliance"
	"github.com/sonde-monitoring/sonde/internal/logfile"
)

// version is set by the build (-ldflags "-X main.version=…").
var version = "dev"

const usage = `sonde-appliance — Sonde's monitoring appliance

Usage:
  sonde-appliance run   --hub HOST:PORT[,HOST:PORT…] --ca FILE --name NAME [--token-file FILE] [--zone Z] [--data DIR]
                        [--log-file FILE [--log-max-bytes N] [--log-max-files K] [--log-max-age D]]
                        connect out to the hub (enrolling with the token the first time) and run the checks;
                        with several hubs (processes of one hub) it stays on the one that works and fails over;
                        the log goes to stderr, or to FILE (mode 0600) rotated before it passes N bytes,
                        keeping FILE.1 … FILE.K and removing those older than D (10 MiB, 5, 720h by default)
  sonde-appliance vault set|list|hosts|rm|rotate|rekey ...
                        manage the credentials the probes use (values never leave the appliance)
  sonde-appliance audit [--json] [--root DIR] [--data DIR]
                        check this system's hardening (SSH, updates, disk encryption, Sonde's own files);
                        exit status 1 when a check fails. The running appliance sends the same audit
                        to the hub every hour (collector "appliance", check "hardening")
  sonde-appliance version

Run "sonde-appliance run -h" or "sonde-appliance vault" for the flags.
`

// defaultDataDir is where the appliance keeps its vault, buffer and identity.
const defaultDataDir = "/var/lib/sonde-appliance"

func main() {
	// The vault, the buffer and the key are for the appliance's user only.
	syscall.Umask(0o077)
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "run":
		err := runAppliance(ctx, args[1:], stderr)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			fmt.Fprintln(stderr, "sonde-appliance:", err)
			return 1
		}
		return 0
	case "vault":
		return vaultMain(ctx, args[1:], stdin, stdout, stderr)
	case "audit":
		return auditMain(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "sonde-appliance", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sonde-appliance: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func runAppliance(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("sonde-appliance run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg appliance.Config
	var logLevel string
	fs.StringVar(&cfg.DataDir, "data", defaultDataDir, "data directory (vault, key, buffer, certificate)")
	fs.Var((*hubList)(&cfg.Hubs), "hub", "the hub's appliance stream, `HOST:PORT` (port 8730 by default); several hubs separated by commas\n"+
		"or with the flag repeated, tried in that order: the appliance stays on the one that works and fails over")
	fs.StringVar(&cfg.TokenFile, "token-file", "", "file with a token holding CORE_CONNECT, to enroll the first time")
	fs.StringVar(&cfg.CAFile, "ca", "", "the hub's CA certificate (PEM)")
	fs.StringVar(&cfg.Name, "name", hostname(), "the appliance's name on the hub")
	fs.IntVar(&cfg.Zone, "zone", 0, "the appliance's zone (0–9): it serves the assets of its zone")
	fs.StringVar(&cfg.PassphraseFile, "passphrase-file", "", "seal the vault with the passphrase in this file instead of the key file")
	fs.Int64Var(&cfg.BufferBytes, "buffer-bytes", 1<<30, "disk budget for results waiting for the hub; the oldest are dropped beyond it")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.PinnedVersion, "pinned-version", "", "the version this appliance is pinned at, if any (the hardening audit reports it)")
	fs.IntVar(&cfg.RotationDays, "rotation-days", 90, "credentials older than this many days fail the hardening audit's rotation check")
	lf := addLogFlags(fs)
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
	logw, closeLog, err := openLog(lf, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if err := closeLog(); err != nil {
			fmt.Fprintln(stderr, "sonde-appliance: closing the log:", err)
		}
	}()
	cfg.Logger = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level}))
	cfg.Version = version
	a, err := appliance.Open(cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	cfg.Logger.Info("sonde-appliance started", "version", version, "hubs", strings.Join(cfg.Hubs, ","), "name", cfg.Name, "zone", cfg.Zone)
	return a.Run(ctx)
}

// hubList is the --hub flag: addresses separated by commas, the flag
// repeated adding to the list. Each is checked and given the default port
// as it is parsed, so a bad one is named by the flag's error.
type hubList []string

func (l *hubList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *hubList) Set(s string) error {
	for part := range strings.SplitSeq(s, ",") {
		addr, err := appliance.HubAddress(part)
		if err != nil {
			return err
		}
		*l = append(*l, addr)
	}
	return nil
}

// logFlags are the run command's log file flags.
type logFlags struct {
	file     string
	maxBytes int64
	maxFiles int
	maxAge   time.Duration
}

func addLogFlags(fs *flag.FlagSet) *logFlags {
	lf := &logFlags{}
	fs.StringVar(&lf.file, "log-file", "", "write the log to this file (created 0600, rotated) instead of stderr")
	fs.Int64Var(&lf.maxBytes, "log-max-bytes", logfile.DefaultMaxBytes, "rotate the log file before it grows past this many bytes")
	fs.IntVar(&lf.maxFiles, "log-max-files", logfile.DefaultMaxFiles, "rotated log files kept (FILE.1 is the newest)")
	fs.DurationVar(&lf.maxAge, "log-max-age", logfile.DefaultMaxAge, "rotated log files last written longer ago than this are removed")
	return lf
}

// openLog returns where the log goes and how to close it: stderr without
// --log-file, the rotated log file otherwise. A failed rotation (the line
// still goes to the file in hand) is told on stderr, once for each run of
// failures.
func openLog(lf *logFlags, stderr io.Writer) (io.Writer, func() error, error) {
	if lf.file == "" {
		return stderr, func() error { return nil }, nil
	}
	if lf.maxBytes <= 0 || lf.maxFiles <= 0 || lf.maxAge <= 0 {
		return nil, nil, errors.New("--log-max-bytes, --log-max-files and --log-max-age must be positive")
	}
	f, err := logfile.Open(logfile.Options{Path: lf.file, MaxBytes: lf.maxBytes, MaxFiles: lf.maxFiles, MaxAge: lf.maxAge})
	if err != nil {
		return nil, nil, fmt.Errorf("--log-file: %w", err)
	}
	return rotationReporter{f: f, stderr: stderr}, f.Close, nil
}

// rotationReporter tells rotation failures on stderr: slog drops the errors
// of its handler's writer.
type rotationReporter struct {
	f      *logfile.File
	stderr io.Writer
}

func (r rotationReporter) Write(p []byte) (int, error) {
	n, err := r.f.Write(p)
	if _, ok := errors.AsType[*logfile.RotateError](err); ok {
		fmt.Fprintln(r.stderr, "sonde-appliance: the log line was written, but:", err)
		return n, nil
	}
	return n, err
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "appliance"
	}
	return h
}

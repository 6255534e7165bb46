package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/sonde-monitoring/sonde/internal/appliance"
	"github.com/sonde-monitoring/sonde/internal/hardening"
	"github.com/sonde-monitoring/sonde/internal/vault"
)

// auditMain runs the hardening audit once and prints it: a table, or JSON
// with --json. The exit status is 1 when a finding fails, 0 otherwise
// (unknown findings say why in their observed text).
func auditMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sonde-appliance audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg appliance.Config
	var asJSON bool
	var root, latest string
	fs.BoolVar(&asJSON, "json", false, "print the findings as JSON")
	fs.StringVar(&root, "root", "/", "audit the filesystem tree under DIR instead of this system (commands such as sshd -T run only for /)")
	fs.StringVar(&cfg.DataDir, "data", defaultDataDir, "the appliance's data directory (vault, key)")
	fs.StringVar(&cfg.PassphraseFile, "passphrase-file", "", "the vault is sealed with the passphrase in this file")
	fs.StringVar(&cfg.PinnedVersion, "pinned-version", "", "the version this appliance is pinned at, if any")
	fs.StringVar(&latest, "latest-version", "", "the latest Sonde version (the running appliance learns it from the hub)")
	fs.IntVar(&cfg.RotationDays, "rotation-days", 90, "credentials older than this many days fail the rotation check")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sonde-appliance audit: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return 2
	}
	cfg.Version = version
	root = filepath.Clean(root)
	// The vault's entries (names and rotation dates only) when it can be
	// opened; the audit says why not otherwise.
	var v *vault.Vault
	var verr error
	if root == "/" {
		v, verr = vault.Open(cfg.DataDir, vault.Options{PassphraseFile: cfg.PassphraseFile, MustExist: true})
	} else {
		verr = fmt.Errorf("the vault of another root (%s) is not opened", root)
	}
	o := appliance.HardeningOptions(cfg, v, verr, latest)
	o.Root = root
	findings := hardening.Audit(ctx, o)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(findings); err != nil {
			fmt.Fprintln(stderr, "sonde-appliance audit:", err)
			return 1
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STATUS\tSEVERITY\tFINDING\tOBSERVED\tADVICE")
		for _, f := range findings {
			advice := f.Advice
			if f.Status == hardening.Pass {
				advice = ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Status, f.Severity, f.Name, oneLine(f.Observed), oneLine(advice))
		}
		tw.Flush()
	}
	for _, f := range findings {
		if f.Status == hardening.Fail {
			return 1
		}
	}
	return 0
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

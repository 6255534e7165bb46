package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/state"
)

// storeLocation reads a --from or --to value: sqlite:PATH or a
// postgres:// URL.
func storeLocation(flagName, v string) (string, error) {
	switch {
	case strings.HasPrefix(v, "sqlite:") && len(v) > len("sqlite:"):
		return strings.TrimPrefix(v, "sqlite:"), nil
	case state.IsPostgres(v):
		return v, nil
	}
	return "", fmt.Errorf("--%s %q: give sqlite:PATH (e.g. sqlite:/var/lib/sonde/state.db) or a postgres:// URL", flagName, v)
}

// runMigrateState copies a state store into a new, empty one (SQLite to
// PostgreSQL, or back), with progress on stderr and a count of every
// table at the end. The hub must be stopped; its secret.key goes with the
// data (sealed secrets stay sealed).
func runMigrateState(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sonde migrate-state", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the store to copy: sqlite:PATH or postgres://…")
	to := fs.String("to", "", "the new, empty store: postgres://… or sqlite:PATH")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || *to == "" || fs.NArg() > 0 {
		return errors.New("give --from and --to (sqlite:PATH or postgres://…), and nothing else")
	}
	src, err := storeLocation("from", *from)
	if err != nil {
		return err
	}
	dst, err := storeLocation("to", *to)
	if err != nil {
		return err
	}
	s, err := state.Open(ctx, src, nil)
	if err != nil {
		return fmt.Errorf("opening --from: %w", err)
	}
	defer s.Close()
	d, err := state.Open(ctx, dst, nil)
	if err != nil {
		return fmt.Errorf("opening --to: %w", err)
	}
	defer d.Close()
	start := time.Now()
	last := time.Time{}
	counts, err := s.CopyTo(ctx, d, func(table string, done, total int64) {
		if done < total && time.Since(last) < 200*time.Millisecond {
			return
		}
		last = time.Now()
		fmt.Fprintf(stderr, "\r%-16s %s %d/%d", table, bar(done, total, 30), done, total)
		if done == total {
			fmt.Fprintln(stderr)
		}
	})
	if err != nil {
		return err
	}
	var total int64
	fmt.Fprintln(stdout, "verified: every table holds as many rows in the new store as in the old one")
	for _, t := range sortedKeys(counts) {
		fmt.Fprintf(stdout, "  %-16s %d\n", t, counts[t])
		total += counts[t]
	}
	fmt.Fprintf(stdout, "%d rows in %s. Start the hub with --state %s (and the same data directory: its secret.key opens the sealed secrets).\n",
		total, time.Since(start).Round(time.Millisecond), *to)
	return nil
}

func bar(done, total int64, width int) string {
	n := width
	if total > 0 {
		n = int(done * int64(width) / total)
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(" ", width-n) + "]"
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

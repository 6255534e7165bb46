// Command sonde-bench measures the Sonde hub: how many check results and
// samples per second it ingests over HTTPS, at what latency, CPU and memory,
// and how many bytes a sample takes on disk once the head is compacted
// (sonde-bench ingest); and what the embedded time-series store alone
// takes on disk and in memory per series (sonde-bench storage).
//
// docs/PERFORMANCE.md has the figures of a run and the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `sonde-bench — load and storage benchmarks for the Sonde hub

Usage:
  sonde-bench ingest  [flags]   drive a hub with concurrent agents over HTTPS
  sonde-bench storage [flags]   write gauges straight into the local time-series store
  sonde-bench replay  [flags]   fill an appliance's disk buffer and time its replay into the hub
  sonde-bench icmp    [flags]   ICMP echoes through the icmp probe and through fping, side by side
  sonde-bench agent   [flags]   the host agent's CPU and memory beside Debian's prometheus-node-exporter

Run "sonde-bench ingest -h" or "sonde-bench storage -h" for the flags.
`

func main() {
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
	case "ingest":
		err = runIngest(ctx, args[1:], stdout, stderr)
	case "storage":
		err = runStorage(ctx, args[1:], stdout, stderr)
	case "replay":
		err = runReplay(ctx, args[1:], stdout, stderr)
	case "agent":
		err = runAgent(ctx, args[1:], stdout, stderr)
	case "icmp":
		err = runICMP(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sonde-bench: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "sonde-bench:", err)
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "sonde-bench:", err)
		return 1
	}
	return 0
}

// errUsage marks an error in the command line.
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

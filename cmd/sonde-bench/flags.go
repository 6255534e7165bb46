package main

import (
	"flag"
	"io"
	"strings"
	"time"
)

// ingestFlags is the command line of sonde-bench ingest.
type ingestFlags struct {
	sonde       string
	hubURL      string
	caFile      string
	tokenFile   string
	hubPID      int
	inProcess   bool
	cpuProfile  string
	shape       shape
	duration    time.Duration
	results     int64
	span        time.Duration
	http1       bool
	timeout     time.Duration
	allowRemote bool
	promURL     string
	promCA      string
	promPID     int
	spawnProm   optionalPath
	promPlain   bool
	jsonOut     bool
	keep        bool
	workDir     string
	conditions  int
	// hubs, statePostgres and tsdb spawn a cluster: several hubs on one
	// PostgreSQL and one remote TSDB, all spawned by sonde-bench.
	hubs          int
	statePostgres bool
	tsdb          string
}

// optionalPath is a flag that may be given alone (--spawn-prometheus, the
// default path) or with a value (--spawn-prometheus=/opt/prometheus).
type optionalPath struct {
	set  bool
	path string
}

func (o *optionalPath) String() string   { return o.path }
func (o *optionalPath) IsBoolFlag() bool { return true }
func (o *optionalPath) Set(s string) error {
	switch s {
	case "true":
		o.set, o.path = true, ""
	case "false":
		o.set, o.path = false, ""
	default:
		o.set, o.path = true, s
	}
	return nil
}

func parseIngestFlags(args []string, stderr io.Writer) (*ingestFlags, error) {
	f := &ingestFlags{}
	fs := flag.NewFlagSet("sonde-bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.sonde, "sonde", "bin/sonde", "the sonde binary to spawn the hub with (build it with: go build -o bin/sonde ./cmd/sonde)")
	fs.StringVar(&f.hubURL, "hub", "", "load a running hub at this URL instead of spawning one (e.g. https://127.0.0.1:8443); several hubs of one installation separated by commas share the agents")
	fs.StringVar(&f.caFile, "ca", "", "with --hub: the CA certificate to trust (the hub's <data>/tls/ca.crt)")
	fs.StringVar(&f.tokenFile, "token-file", "", "with --hub: file holding an admin token")
	fs.IntVar(&f.hubPID, "hub-pid", 0, "with --hub: the hub's process ID, to measure its CPU and memory")
	fs.BoolVar(&f.inProcess, "in-process", false, "run the hub inside sonde-bench (for --cpuprofile; no per-process CPU or memory figures)")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the load to this file (implies --in-process)")
	fs.IntVar(&f.shape.Agents, "agents", 64, "concurrent agents, each with its own asset and connection")
	fs.IntVar(&f.shape.Checks, "checks", 10, "check names per agent, posted round-robin")
	fs.IntVar(&f.shape.Items, "items", 1, "items per result")
	fs.IntVar(&f.shape.Metrics, "metrics", 20, "float metrics per item")
	fs.DurationVar(&f.shape.Interval, "interval", 60*time.Second, "sample time between two results of one check")
	fs.IntVar(&f.shape.Decimals, "decimals", 2, "decimals of the values (random walks)")
	fs.Uint64Var(&f.shape.Seed, "seed", 1, "seed of the values")
	fs.DurationVar(&f.duration, "duration", 30*time.Second, "how long to load each server (at most 1h)")
	fs.Int64Var(&f.results, "results", 0, "total results to send to each server (0: as many as --duration allows)")
	fs.DurationVar(&f.span, "span", 24*time.Hour, "sample time before now where the series start (raised to fit --results)")
	fs.BoolVar(&f.http1, "http1", true, "speak HTTP/1.1, the faster for the hub (docs/PERFORMANCE.md); --http1=false speaks HTTP/2 where offered")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "timeout of every request")
	fs.BoolVar(&f.allowRemote, "allow-remote", false, "allow targets other than 127.0.0.1 and localhost")
	fs.StringVar(&f.promURL, "prometheus", "", "also send the same samples by remote write to the Prometheus server at this URL")
	fs.StringVar(&f.promCA, "prometheus-ca", "", "with --prometheus https://…: the CA certificate to trust")
	fs.IntVar(&f.promPID, "prometheus-pid", 0, "with --prometheus: its process ID, to measure its CPU and memory")
	fs.Var(&f.spawnProm, "spawn-prometheus", "spawn a Prometheus server and send it the same samples (alone: prometheus on $PATH, else "+defaultPrometheus+"; or =PATH)")
	fs.BoolVar(&f.promPlain, "prometheus-plain", false, "serve the spawned Prometheus over plain HTTP instead of HTTPS")
	fs.IntVar(&f.hubs, "hubs", 1, "spawn this many hubs, which share the agents round-robin (more than one needs --state-postgres and --tsdb)")
	fs.BoolVar(&f.statePostgres, "state-postgres", false, "spawn a PostgreSQL server (Debian's, /usr/lib/postgresql/*/bin, default settings) and keep the hubs' state in it")
	fs.StringVar(&f.tsdb, "tsdb", "", "spawn this TSDB, "+tsdbVictoriaMetrics+" or "+tsdbPrometheus+", and send the hubs' time series to it by remote write")
	fs.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	fs.IntVar(&f.conditions, "conditions", 0, "expression conditions to define on the benchmark's container before loading (they hold on no item: the evaluation cost, not alert storms)")
	fs.BoolVar(&f.keep, "keep", false, "keep the temporary directory (data, logs) and print its path")
	fs.StringVar(&f.workDir, "workdir", "", "where to create the temporary directory (default: the system's)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErr("unexpected arguments %q (give a path to --spawn-prometheus as --spawn-prometheus=PATH)", strings.Join(fs.Args(), " "))
	}
	explicit := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { explicit[fl.Name] = true })
	if f.results > 0 && !explicit["duration"] {
		f.duration = time.Hour // bounded by the count; the hour is a safety net
	}
	return f, f.validate()
}

func (f *ingestFlags) validate() error {
	s := f.shape
	switch {
	case s.Agents < 1 || s.Agents > 10_000:
		return usageErr("--agents must be between 1 and 10000")
	case s.Checks < 1 || s.Checks > 1000:
		return usageErr("--checks must be between 1 and 1000")
	case s.Items < 1 || s.Items > 10_000:
		return usageErr("--items must be between 1 and 10000")
	case s.Metrics < 1 || s.Metrics > 1000:
		return usageErr("--metrics must be between 1 and 1000")
	case s.Items*s.Metrics > 100_000:
		return usageErr("--items × --metrics must be at most 100000 samples per result")
	case s.Interval < time.Second || s.Interval%time.Second != 0:
		return usageErr("--interval must be whole seconds, at least 1s")
	case s.Decimals < 0 || s.Decimals > 6:
		return usageErr("--decimals must be between 0 and 6")
	case f.duration <= 0 || f.duration > time.Hour:
		return usageErr("--duration must be between 1ns and 1h")
	case f.results < 0 || f.results > 1_000_000_000:
		return usageErr("--results must be between 0 and 1e9")
	case f.span < s.Interval || f.span > 300*24*time.Hour:
		return usageErr("--span must be between --interval and 300 days")
	case f.conditions < 0 || f.conditions > 1000:
		return usageErr("--conditions must be between 0 and 1000")
	case f.timeout <= 0 || f.timeout > 10*time.Minute:
		return usageErr("--timeout must be between 1ns and 10m")
	case f.hubURL != "" && (f.inProcess || f.cpuProfile != ""):
		return usageErr("--hub and --in-process/--cpuprofile exclude each other")
	case f.promURL != "" && f.spawnProm.set:
		return usageErr("give --prometheus URL or --spawn-prometheus, not both")
	case f.hubs < 1 || f.hubs > maxHubs:
		return usageErr("--hubs must be between 1 and %d", maxHubs)
	case f.tsdb != "" && f.tsdb != tsdbVictoriaMetrics && f.tsdb != tsdbPrometheus:
		return usageErr("--tsdb must be %s or %s", tsdbVictoriaMetrics, tsdbPrometheus)
	case f.spawnsCluster() && f.hubURL != "":
		return usageErr("--hubs, --state-postgres and --tsdb spawn the hubs; --hub loads running ones: give one or the other")
	case f.spawnsCluster() && (f.inProcess || f.cpuProfile != ""):
		return usageErr("the in-process hub (--in-process, --cpuprofile) keeps its state in SQLite and its series in the embedded TSDB: leave out --hubs, --state-postgres and --tsdb")
	case f.hubs > 1 && (!f.statePostgres || f.tsdb == ""):
		return usageErr("--hubs %d needs --state-postgres and --tsdb: several hubs share one state store and one TSDB (with SQLite or the embedded TSDB each hub would hold its own, and they would not be one installation)", f.hubs)
	}
	if f.cpuProfile != "" {
		f.inProcess = true
	}
	return nil
}

// spawnsCluster tells whether the hubs are spawned with the new flags
// (--hubs, --state-postgres, --tsdb) rather than as the one hub of
// SQLite and the embedded TSDB.
func (f *ingestFlags) spawnsCluster() bool {
	return f.hubs > 1 || f.statePostgres || f.tsdb != ""
}

// startTime is the Unix second of the series' first round: span before
// now, on a block boundary (alignStart), and early enough for every round
// --results needs to be in the past.
func (f *ingestFlags) startTime(now time.Time) int64 {
	iv := int64(f.shape.Interval / time.Second)
	span := int64(f.span / time.Second)
	if f.results > 0 {
		perAgent := (f.results + int64(f.shape.Agents) - 1) / int64(f.shape.Agents)
		rounds := (perAgent + int64(f.shape.Checks) - 1) / int64(f.shape.Checks)
		span = max(span, (rounds+1)*iv)
	}
	return alignStart(now.Unix()-span, iv)
}

// blockSeconds is the TSDB's block range: two hours.
const blockSeconds = 2 * 60 * 60

// alignStart moves start back to a block boundary when the interval
// divides the block range (so that a run of 120 one-minute rounds fills one
// block), else to a multiple of the interval.
func alignStart(start, iv int64) int64 {
	if blockSeconds%iv == 0 {
		return start - start%blockSeconds
	}
	return start - start%iv
}

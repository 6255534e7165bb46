package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// The host agent's footprint targets: RSS and binary size in bytes
// (MB = 10^6 bytes, the stricter reading), CPU in percent of one core.
const (
	agentRSSLimit    = 12_000_000
	agentCPULimit    = 1.0
	agentBinaryLimit = 10_000_000
)

// footprint is what one monitored process cost during the benchmark.
type footprint struct {
	Name    string
	Version string
	Binary  int64 // size of the executable, bytes

	StartupCPU float64 // CPU seconds before the window: start-up and first collection
	StartupRSS int64

	Window    time.Duration // wall time between the first and last readings
	CPU       float64       // CPU seconds over the window
	MaxRSS    int64         // highest VmRSS of the periodic readings in the window
	FinalRSS  int64         // VmRSS at the end of the window
	FinalAnon int64         // RssAnon at the end: the rest of FinalRSS is files mapped in, mostly the executable
	PeakRSS   int64         // VmHWM at the end: the highest RSS since start, between readings too
	Rounds    int           // collections in the window
}

// corePercent is cpu seconds over window as a percentage of one core.
func corePercent(cpu float64, window time.Duration) float64 {
	if window <= 0 {
		return 0
	}
	return cpu / window.Seconds() * 100
}

// ticksIn counts the ticks first, first+every, first+2×every… that fall in
// (from, to].
func ticksIn(first time.Time, every time.Duration, from, to time.Time) int {
	if every <= 0 || !to.After(from) {
		return 0
	}
	n := 0
	for t := first; !t.After(to); t = t.Add(every) {
		if t.After(from) {
			n++
		}
	}
	return n
}

// scrapeStats sums up the scrapes of node_exporter.
type scrapeStats struct {
	Scrapes   int   // successful scrapes
	Failed    int   // failed scrapes
	WireBytes int64 // bytes received, as sent (gzip when the exporter compressed)
	TextBytes int64 // bytes of exposition text after decompression
	Series    int   // sample lines of the last scrape
	Gzip      bool  // the last answer was gzip-compressed
	LastErr   error
}

// countSeries reads Prometheus exposition text to the end and returns its
// size and the number of sample lines (neither comments nor blank).
func countSeries(r io.Reader) (n int64, series int, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	atLineStart := true
	for {
		chunk, rerr := br.ReadSlice('\n') // a longer line comes in pieces
		n += int64(len(chunk))
		if atLineStart {
			line := bytes.TrimLeft(chunk, " \t")
			if len(line) > 0 && line[0] != '#' && line[0] != '\n' && line[0] != '\r' {
				series++
			}
		}
		if len(chunk) > 0 {
			atLineStart = chunk[len(chunk)-1] == '\n'
		}
		switch {
		case rerr == nil, errors.Is(rerr, bufio.ErrBufferFull):
		case errors.Is(rerr, io.EOF):
			return n, series, nil
		default:
			return n, series, rerr
		}
	}
}

// agentReport is the result of `sonde-bench agent`.
type agentReport struct {
	Date     time.Time
	Machine  Machine
	Interval time.Duration
	Startup  time.Duration
	Sample   time.Duration
	Agent    footprint
	Exporter footprint
	Scrape   scrapeStats

	HubStored float64 // results the hub stored (sonde_hub_check_results_total{outcome="stored"}); -1: unknown
	HubSystem int     // results of the system check in the hub's time-series store
	HubErr    error
}

// mb formats bytes as decimal megabytes.
func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// verdict compares a figure with its limit.
func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "EXCEEDED"
}

// writeText prints the report: a table with a column per process, the
// scrape and hub figures, and the agent against its targets.
func (r *agentReport) writeText(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "sonde-bench agent — %s\n", r.Date.Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s RAM, Linux %s\n", m.CPUs, m.CPUModel, gib(m.MemTotal), m.Kernel)
	fmt.Fprintf(w, "window: %s after %s of start-up; both collect every %s; CPU and RSS read every %s; MB = 10^6 bytes\n\n",
		r.Window().Round(100*time.Millisecond), r.Startup, r.Interval, r.Sample)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fs := []*footprint{&r.Agent, &r.Exporter}
	row := func(name string, f func(p *footprint) string) {
		cells := []string{name}
		for _, p := range fs {
			cells = append(cells, f(p))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	row("", func(p *footprint) string { return p.Name })
	row("binary", func(p *footprint) string { return mb(p.Binary) })
	row(fmt.Sprintf("start-up CPU (first %s)", r.Startup), func(p *footprint) string { return fmt.Sprintf("%.2f s", p.StartupCPU) })
	row("RSS after start-up", func(p *footprint) string { return mb(p.StartupRSS) })
	row("CPU over the window", func(p *footprint) string { return fmt.Sprintf("%.2f s", p.CPU) })
	row("share of one core", func(p *footprint) string { return fmt.Sprintf("%.3f %%", corePercent(p.CPU, p.Window)) })
	row("collections in the window", func(p *footprint) string { return strconv.Itoa(p.Rounds) })
	row("CPU per collection", func(p *footprint) string {
		if p.Rounds == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f ms", p.CPU/float64(p.Rounds)*1000)
	})
	row(fmt.Sprintf("max RSS (every %s)", r.Sample), func(p *footprint) string { return mb(p.MaxRSS) })
	row("final RSS", func(p *footprint) string { return mb(p.FinalRSS) })
	row("  of which anonymous / file", func(p *footprint) string {
		return fmt.Sprintf("%.1f / %.1f MB", float64(p.FinalAnon)/1e6, float64(p.FinalRSS-p.FinalAnon)/1e6)
	})
	row("peak RSS (VmHWM)", func(p *footprint) string { return mb(p.PeakRSS) })
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nsonde-agent:   %s\n", r.Agent.Version)
	fmt.Fprintf(w, "node_exporter: %s\n", r.Exporter.Version)
	s := r.Scrape
	fmt.Fprintf(w, "node_exporter scrapes: %d (%d failed)", s.Scrapes+s.Failed, s.Failed)
	if s.Scrapes > 0 {
		enc := "uncompressed"
		if s.Gzip {
			enc = "gzip"
		}
		fmt.Fprintf(w, ", %d series, %.1f kB on the wire (%s), %.1f kB of text per scrape",
			s.Series, float64(s.WireBytes)/float64(s.Scrapes)/1e3, enc, float64(s.TextBytes)/float64(s.Scrapes)/1e3)
	}
	if s.LastErr != nil {
		fmt.Fprintf(w, "; last error: %v", s.LastErr)
	}
	fmt.Fprintln(w)

	fmt.Fprint(w, "hub: ")
	switch {
	case r.HubErr != nil:
		fmt.Fprintf(w, "could not read what it received: %v\n", r.HubErr)
	default:
		if r.HubStored >= 0 {
			fmt.Fprintf(w, "%.0f results stored from the agent (all checks, start-up included); ", r.HubStored)
		}
		fmt.Fprintf(w, "%d rounds of its system check in the time-series store\n", r.HubSystem)
	}

	a := r.Agent
	peak := max(a.MaxRSS, a.PeakRSS)
	pct := corePercent(a.CPU, a.Window)
	fmt.Fprintf(w, "sonde-agent targets: RSS ≤ %s: %s (peak %s); CPU ≤ %g%% of one core: %s (%.3f %%); binary ≤ %s: %s (%s)\n",
		mb(agentRSSLimit), verdict(peak <= agentRSSLimit), mb(peak),
		agentCPULimit, verdict(pct <= agentCPULimit), pct,
		mb(agentBinaryLimit), verdict(a.Binary <= agentBinaryLimit), mb(a.Binary))
	return nil
}

// Window is the measurement window (the agent's; the exporter's is the
// same to within a reading).
func (r *agentReport) Window() time.Duration { return r.Agent.Window }

// runAgent measures the host agent's footprint beside Debian's
// prometheus-node-exporter in one run: a hub (bin/sonde) receives the
// agent's results, sonde-bench scrapes node_exporter at the agent's
// interval, and both processes' CPU time and RSS are read from /proc.
func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sonde-bench agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 10*time.Minute, "measurement window, after the start-up")
	interval := fs.Duration("interval", 30*time.Second, "the agent's --interval and the node_exporter scrape interval")
	sampleEvery := fs.Duration("sample", 10*time.Second, "how often to read both processes' CPU time and RSS")
	startup := fs.Duration("startup", 5*time.Second, "start-up left out of the window (reported apart)")
	sondeBin := fs.String("sonde", "bin/sonde", "the sonde binary to run the hub with")
	agentBin := fs.String("agent", "bin/sonde-agent", "the sonde-agent binary to measure")
	exporterBin := fs.String("node-exporter", "/usr/bin/prometheus-node-exporter", "the node_exporter binary to measure beside it")
	agentUser := fs.String("user", "nobody", "user the agent drops to when sonde-bench runs as root (its --user)")
	exporterUser := fs.String("exporter-user", "prometheus", "user node_exporter runs as (through setpriv) when sonde-bench runs as root, as Debian's unit does; empty: sonde-bench's own")
	keep := fs.Bool("keep", false, "keep the temporary directory (logs, hub data, agent state) and print its path")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected arguments %v", fs.Args())
	case *duration <= 0:
		return usageErr("-duration must be positive")
	case *interval < time.Second:
		return usageErr("-interval must be at least 1s")
	case *sampleEvery <= 0:
		return usageErr("-sample must be positive")
	case *startup < 0:
		return usageErr("-startup must not be negative")
	}
	agentSize, err := fileSize(*agentBin, "build it: make build")
	if err != nil {
		return err
	}
	exporterSize, err := fileSize(*exporterBin, "install it: apt-get install prometheus-node-exporter")
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "sonde-bench: "+format+"\n", a...) }
	rep := &agentReport{Date: time.Now().UTC(), Machine: machine(), Interval: *interval, Startup: *startup, Sample: *sampleEvery,
		Agent:     footprint{Name: "sonde-agent", Binary: agentSize, Version: binaryVersion(ctx, *agentBin, "version")},
		Exporter:  footprint{Name: "node_exporter", Binary: exporterSize, Version: binaryVersion(ctx, *exporterBin, "--version")},
		HubStored: -1}

	dir, err := os.MkdirTemp("", "sonde-bench-agent-")
	if err != nil {
		return fmt.Errorf("creating a temporary directory: %w", err)
	}
	if *keep {
		defer fmt.Fprintf(stderr, "kept %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	root := os.Geteuid() == 0
	if root {
		// The agent drops to --user before it opens its state directory
		// and CA certificate in here: let others through (not list it).
		if err := os.Chmod(dir, 0o711); err != nil { // #nosec G302 -- a directory others may traverse but not list; its files keep their own modes
			return err
		}
	}

	// The hub, and the agent's token.
	h, err := spawnHub(ctx, *sondeBin, dir, false)
	if err != nil {
		return err
	}
	var children []*child // stopped in reverse order, the hub last
	stopAll := func() error {
		var errs []error
		for _, c := range slices.Backward(children) {
			if err := c.stop(10 * time.Second); err != nil && !stoppedBySIGTERM(err) {
				errs = append(errs, err)
			}
		}
		children = nil
		if h != nil {
			errs = append(errs, h.stop())
			h = nil
		}
		return errors.Join(errs...)
	}
	defer stopAll()
	admin := &adminClient{base: h.base, token: h.token, client: newClient(h.tlsConf, true, 30*time.Second)}
	var tok struct {
		Token string `json:"token"`
	}
	if err := admin.call(ctx, http.MethodPost, "/api/v1/container/1/token",
		map[string]any{"name": "sonde-bench agent", "permissions": []string{"READ", "API", "ASSET_MANAGEMENT", "INSERT_CHECK_DATA"}}, &tok); err != nil {
		return fmt.Errorf("creating the agent's token: %w", err)
	}
	tokFile := filepath.Join(dir, "agent-token")
	if err := os.WriteFile(tokFile, []byte(tok.Token+"\n"), 0o600); err != nil {
		return err
	}
	// The agent reads its token as root, its CA certificate after the drop.
	ca, err := os.ReadFile(filepath.Join(dir, "hub-data", "tls", "ca.crt")) // #nosec G304 -- the CA certificate of the hub sonde-bench spawned
	if err != nil {
		return err
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca, 0o644); err != nil { // #nosec G306 G703 -- a CA certificate is public and the agent reads it as --user; the path is in sonde-bench's own temporary directory
		return err
	}

	// The agent.
	stateDir := filepath.Join(dir, "agent")
	agentArgs := []string{"--api", h.base + "/api/v1", "--token-file", tokFile, "--ca", caFile, "--state-dir", stateDir,
		"--interval", interval.String(), "--asset-name", "bench-host"}
	if root {
		agentArgs = append(agentArgs, "--user", *agentUser)
	}
	logf("%s %s", *agentBin, strings.Join(agentArgs, " "))
	agentStart := time.Now()
	ag, err := startChild("sonde-agent", *agentBin, agentArgs, filepath.Join(dir, "agent.log"))
	if err != nil {
		return err
	}
	children = append(children, ag)

	// node_exporter, with its default collectors.
	port, err := freeLocalPort()
	if err != nil {
		return err
	}
	exporterURL := "http://127.0.0.1:" + strconv.Itoa(port)
	exBin, exArgs := *exporterBin, []string{"--web.listen-address=127.0.0.1:" + strconv.Itoa(port)}
	if root && *exporterUser != "" {
		if exBin, exArgs, err = asUser(*exporterUser, *exporterBin, exArgs); err != nil {
			return err
		}
	}
	logf("%s %s", exBin, strings.Join(exArgs, " "))
	ex, err := startChild("node_exporter", exBin, exArgs, filepath.Join(dir, "node_exporter.log"))
	if err != nil {
		return err
	}
	children = append(children, ex)
	client := newClient(&tls.Config{MinVersion: tls.VersionTLS12}, true, 10*time.Second)
	// The landing page, not /metrics: readiness must not collect.
	if err := ex.waitReady(ctx, 30*time.Second, func(ctx context.Context) error { return getOK(ctx, client, exporterURL+"/") }); err != nil {
		return err
	}

	// Collect: scrape node_exporter every interval from now on (the first
	// now, as the agent's first collection is at its start), read both
	// processes' /proc every sample from the end of the start-up.
	firstScrape := time.Now()
	begin := firstScrape.Add(*startup)
	end := begin.Add(*duration)
	logf("measuring for %s after %s of start-up (until %s)", *duration, *startup, end.Format(time.TimeOnly))
	var aBase, eBase, aLast, eLast procSample
	var aBaseAt, aLastAt, eBaseAt, eLastAt time.Time
	nextScrape, nextSample := firstScrape, begin
	baseline := true
	lastProgress := begin
	for {
		now := time.Now()
		if !now.Before(nextScrape) && !nextScrape.After(end) {
			err := scrapeExporter(ctx, client, exporterURL+"/metrics", &rep.Scrape)
			if err != nil {
				logf("scraping node_exporter: %v", err)
			}
			if nextScrape.After(begin) {
				rep.Exporter.Rounds++
			}
			nextScrape = nextScrape.Add(*interval)
		}
		if !now.Before(nextSample) {
			a, aerr := readProc(ag.pid())
			aAt := time.Now()
			e, eerr := readProc(ex.pid())
			eAt := time.Now()
			if err := errors.Join(aerr, eerr); err != nil {
				return fmt.Errorf("reading the processes: %w", err)
			}
			if baseline {
				aBase, eBase, aBaseAt, eBaseAt = a, e, aAt, eAt
				rep.Agent.StartupCPU, rep.Agent.StartupRSS = a.CPUSeconds, a.RSSBytes
				rep.Exporter.StartupCPU, rep.Exporter.StartupRSS = e.CPUSeconds, e.RSSBytes
				baseline = false
			} else {
				rep.Agent.MaxRSS = max(rep.Agent.MaxRSS, a.RSSBytes)
				rep.Exporter.MaxRSS = max(rep.Exporter.MaxRSS, e.RSSBytes)
			}
			aLast, eLast, aLastAt, eLastAt = a, e, aAt, eAt
			if now.Sub(lastProgress) >= time.Minute || !nextSample.Before(end) {
				lastProgress = now
				logf("%s: sonde-agent %.2f s CPU, %s RSS; node_exporter %.2f s CPU, %s RSS",
					now.Sub(begin).Round(time.Second), a.CPUSeconds-aBase.CPUSeconds, mb(a.RSSBytes),
					e.CPUSeconds-eBase.CPUSeconds, mb(e.RSSBytes))
			}
			if !nextSample.Before(end) {
				break
			}
			if nextSample = nextSample.Add(*sampleEvery); nextSample.After(end) {
				nextSample = end
			}
		}
		wait := time.Until(nextSample)
		if !nextScrape.After(end) {
			wait = min(wait, time.Until(nextScrape))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted: %w", ctx.Err())
		case <-ag.exited:
			return fmt.Errorf("sonde-agent exited during the run (%v):\n%s", ag.waitErr, ag.logTail())
		case <-ex.exited:
			return fmt.Errorf("node_exporter exited during the run (%v):\n%s", ex.waitErr, ex.logTail())
		case <-time.After(max(wait, 0)):
		}
	}
	for _, x := range []struct {
		f              *footprint
		base, last     procSample
		baseAt, lastAt time.Time
	}{{&rep.Agent, aBase, aLast, aBaseAt, aLastAt}, {&rep.Exporter, eBase, eLast, eBaseAt, eLastAt}} {
		x.f.Window = x.lastAt.Sub(x.baseAt)
		x.f.CPU = x.last.CPUSeconds - x.base.CPUSeconds
		x.f.FinalRSS, x.f.FinalAnon = x.last.RSSBytes, x.last.AnonBytes
		x.f.PeakRSS = x.last.HWMBytes
		x.f.MaxRSS = max(x.f.MaxRSS, x.last.RSSBytes)
	}
	rep.Agent.Rounds = ticksIn(agentStart, *interval, aBaseAt, aLastAt)

	// What the hub received, before anything stops.
	rep.HubStored, rep.HubSystem, rep.HubErr = hubReceived(ctx, h, admin, stateDir, time.Since(agentStart)+*interval)

	stopErr := stopAll()
	if err := rep.writeText(stdout); err != nil {
		return err
	}
	return stopErr
}

// fileSize is the size of an executable that must exist.
func fileSize(path, hint string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("%w (%s)", err, hint)
	}
	return st.Size(), nil
}

// asUser runs bin through setpriv as username, with that user's groups,
// as systemd's User= does. setpriv execs bin, which keeps its process id.
func asUser(username, bin string, args []string) (string, []string, error) {
	u, err := user.Lookup(username)
	if err != nil {
		return "", nil, usageErr("-exporter-user %q: %v", username, err)
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return "", nil, fmt.Errorf("running node_exporter as %s needs setpriv (util-linux), or give -exporter-user \"\": %w", username, err)
	}
	return setpriv, append([]string{"--reuid", u.Uid, "--regid", u.Gid, "--init-groups", "--pdeathsig", "TERM", "--", bin}, args...), nil
}

// stoppedBySIGTERM reports whether a child's stop error only says that
// SIGTERM ended it: node_exporter has no handler for it.
func stoppedBySIGTERM(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}

// scrapeExporter scrapes url as Prometheus does (text format, gzip) and
// adds the answer's sizes to st.
func scrapeExporter(ctx context.Context, client *http.Client, url string, st *scrapeStats) (err error) {
	defer func() {
		if err != nil {
			st.Failed++
			st.LastErr = err
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", url, resp.Status, drain(resp))
	}
	wire := &countingReader{r: resp.Body}
	var body io.Reader = wire
	gz := resp.Header.Get("Content-Encoding") == "gzip"
	if gz {
		zr, err := gzip.NewReader(wire)
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		body = zr
	}
	n, series, err := countSeries(io.LimitReader(body, 256<<20))
	if err != nil {
		return fmt.Errorf("GET %s: reading the body: %w", url, err)
	}
	st.Scrapes++
	st.WireBytes += wire.n
	st.TextBytes += n
	st.Series = series
	st.Gzip = gz
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// hubReceived asks the hub how many results it stored (its own metric) and
// how many results of the system check of the agent's asset are in its
// time-series store over the last span. (One query cannot count every
// check: count_over_time drops the metric name, and the checks' series
// would then collide.)
func hubReceived(ctx context.Context, h *server, admin *adminClient, stateDir string, span time.Duration) (float64, int, error) {
	stored := -1.0
	text, err := scrapeMetrics(ctx, h)
	if err != nil {
		return stored, 0, err
	}
	if v, ok := metricValue(text, `sonde_hub_check_results_total{outcome="stored"}`); ok {
		stored = v
	}
	b, err := os.ReadFile(filepath.Join(stateDir, "asset-id")) // #nosec G304 -- the state directory of the agent sonde-bench started
	if err != nil {
		return stored, 0, fmt.Errorf("the agent's asset id: %w", err)
	}
	id, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return stored, 0, fmt.Errorf("the agent's asset id: %w", err)
	}
	q := fmt.Sprintf(`count_over_time(sonde_system_uptime{asset_id="%d"}[%ds])`, id, int64(span.Seconds()))
	var out struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := admin.call(ctx, http.MethodGet, "/prometheus/api/v1/query?query="+url.QueryEscape(q), nil, &out); err != nil {
		return stored, 0, err
	}
	if len(out.Data.Result) != 1 {
		return stored, 0, fmt.Errorf("%s: %d series, want 1", q, len(out.Data.Result))
	}
	s, _ := out.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return stored, 0, fmt.Errorf("%s: value %v", q, out.Data.Result[0].Value[1])
	}
	return stored, int(v), nil
}

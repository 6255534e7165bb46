package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sonde-monitoring/sonde/internal/probe"
	icmpprobe "github.com/sonde-monitoring/sonde/internal/probe/icmp"
)

// maxICMPRun is the most echo requests one icmp check may send: longer
// streams are cut into consecutive runs.
const maxICMPRun = 100

// ICMPReport is the icmp benchmark's report: the same echo requests, to
// the same loopback targets on the same schedule, sent by Sonde's icmp
// probe and then by fping.
type ICMPReport struct {
	Date    time.Time `json:"date"`
	Machine Machine   `json:"machine"`
	Args    []string  `json:"args"`
	Targets []string  `json:"targets"`
	// Copies is how many streams go to each target at once.
	Copies int `json:"copies"`
	// Count is how many echo requests each stream sends.
	Count     int     `json:"count"`
	PeriodMS  int     `json:"period_ms"`
	TimeoutMS int     `json:"timeout_ms"`
	Size      int     `json:"size"`
	Sonde     ICMPRun `json:"sonde"`
	Fping     ICMPRun `json:"fping"`
	// CPURatio is Sonde's CPU time per echo over fping's.
	CPURatio float64 `json:"cpu_ratio"`
}

// ICMPRun is what one tool did.
type ICMPRun struct {
	Tool string `json:"tool"`
	// Detail names the sockets (Sonde) or the command line (fping).
	Detail       string  `json:"detail"`
	Sent         int64   `json:"sent"`
	Received     int64   `json:"received"`
	Elapsed      float64 `json:"elapsed_seconds"`
	EchoesPerSec float64 `json:"echoes_per_second"`
	// CPUSeconds is user + system time: of sonde-bench itself for Sonde
	// (getrusage RUSAGE_SELF), of the fping process for fping
	// (RUSAGE_CHILDREN).
	CPUSeconds  float64 `json:"cpu_seconds"`
	CPUPer1000  float64 `json:"cpu_seconds_per_1000_echoes"`
	AvgRTTMilli float64 `json:"avg_rtt_ms"`
	Errors      int     `json:"errors,omitempty"`
	FirstError  string  `json:"first_error,omitempty"`
}

func (r *ICMPRun) finish(elapsed, cpu float64) {
	r.Elapsed, r.CPUSeconds = elapsed, cpu
	if elapsed > 0 {
		r.EchoesPerSec = float64(r.Sent) / elapsed
	}
	if r.Sent > 0 {
		r.CPUPer1000 = cpu / float64(r.Sent) * 1000
	}
}

// runICMP is "sonde-bench icmp": it pings loopback targets through the
// icmp probe and through fping and compares their throughput and CPU time.
func runICMP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sonde-bench icmp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	targetList := fs.String("targets", "127.0.0.1,::1", "comma-separated loopback addresses to ping")
	count := fs.Int("count", 1000, "echo requests per target and copy")
	period := fs.Duration("period", time.Millisecond, "time between two requests to one target (fping -p); whole milliseconds")
	copies := fs.Int("copies", 1, "concurrent streams per target (fping: the target listed this many times)")
	timeout := fs.Duration("timeout", time.Second, "how long a request waits for its reply (fping -t); whole milliseconds")
	size := fs.Int("size", 56, "payload bytes per request (fping -b)")
	mode := fs.String("mode", "auto", "Sonde's sockets: auto, raw or unprivileged")
	fping := fs.String("fping", "fping", "the fping binary (Debian: apt-get install fping)")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var targets []string
	for t := range strings.SplitSeq(*targetList, ",") {
		t = strings.TrimSpace(t)
		ip, err := netip.ParseAddr(t)
		if err != nil || !ip.IsLoopback() {
			return usageErr("--targets: %q is not a loopback address (127.0.0.0/8 or ::1)", t)
		}
		targets = append(targets, t)
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected arguments %v", fs.Args())
	case *count < 1 || *count > 1_000_000:
		return usageErr("--count must be between 1 and 1000000")
	case *copies < 1 || *copies > 1000:
		return usageErr("--copies must be between 1 and 1000")
	case *period < time.Millisecond || *period > time.Minute || *period%time.Millisecond != 0:
		return usageErr("--period must be whole milliseconds between 1ms and 1m")
	case *timeout < time.Millisecond || *timeout > time.Minute || *timeout%time.Millisecond != 0:
		return usageErr("--timeout must be whole milliseconds between 1ms and 1m")
	case *size < 0 || *size > 65507:
		return usageErr("--size must be between 0 and 65507")
	}
	rep := &ICMPReport{Date: time.Now().UTC(), Machine: machine(), Args: args, Targets: targets, Copies: *copies,
		Count: *count, PeriodMS: int(period.Milliseconds()), TimeoutMS: int(timeout.Milliseconds()), Size: *size}

	fmt.Fprintf(stderr, "sonde-bench: %d echo requests through the icmp probe\n", len(targets)**copies**count)
	var err error
	if rep.Sonde, err = pingSonde(ctx, rep, icmpprobe.Mode(*mode), stderr); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sonde-bench: the same through %s\n", *fping)
	if rep.Fping, err = pingFping(ctx, rep, *fping); err != nil {
		return err
	}
	if rep.Fping.CPUPer1000 > 0 {
		rep.CPURatio = rep.Sonde.CPUPer1000 / rep.Fping.CPUPer1000
	}
	if *jsonOut {
		return writeJSONReport(stdout, rep)
	}
	return rep.writeText(stdout)
}

// pingSonde sends the echo requests through one icmp Prober: one stream
// per target and copy, all at once, each cut into consecutive checks of at
// most 100 requests.
func pingSonde(ctx context.Context, rep *ICMPReport, mode icmpprobe.Mode, stderr io.Writer) (ICMPRun, error) {
	sockets := &socketLog{next: slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})}
	p, err := icmpprobe.New(icmpprobe.Options{Mode: mode, Logger: slog.New(sockets)})
	if err != nil {
		return ICMPRun{}, usageErr("--mode: %v", err)
	}
	defer p.Close()
	check := func(addr string, n int) probe.Target {
		return probe.Target{AssetName: addr, Collector: "icmp", Check: "icmp", Config: map[string]any{
			"address": addr, "count": n, "intervalMs": rep.PeriodMS, "timeoutMs": rep.TimeoutMS, "size": rep.Size}}
	}
	// Open the sockets before measuring.
	for _, t := range rep.Targets {
		if res := p.Probe(ctx, check(t, 1), nil); res.Error != nil {
			return ICMPRun{}, fmt.Errorf("pinging %s through the icmp probe: %s", t, res.Error.Message)
		}
	}

	run := ICMPRun{Tool: "sonde icmp"}
	var mu sync.Mutex
	var rttSum float64
	cpu0, err := rusageSeconds(syscall.RUSAGE_SELF)
	if err != nil {
		return run, err
	}
	start := time.Now()
	var wg sync.WaitGroup
	for _, t := range rep.Targets {
		for range rep.Copies {
			wg.Go(func() {
				for left := rep.Count; left > 0 && ctx.Err() == nil; {
					n := min(left, maxICMPRun)
					left -= n
					res := p.Probe(ctx, check(t, n), nil)
					sent, received, avg := icmpFigures(res)
					mu.Lock()
					if sent == 0 {
						sent = int64(n)
					}
					run.Sent += sent
					run.Received += received
					rttSum += avg * float64(received)
					if res.Error != nil {
						if run.Errors == 0 {
							run.FirstError = res.Error.Message
						}
						run.Errors++
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	cpu1, err := rusageSeconds(syscall.RUSAGE_SELF)
	if err != nil {
		return run, err
	}
	if ctx.Err() != nil {
		return run, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	run.finish(elapsed, cpu1-cpu0)
	if run.Received > 0 {
		run.AvgRTTMilli = rttSum / float64(run.Received) * 1000
	}
	run.Detail = strings.Join(sockets.kinds(), ", ") + " sockets"
	return run, nil
}

// icmpFigures reads requests sent, replies and mean round-trip time
// (seconds) from an icmp result.
func icmpFigures(res probe.Result) (sent, received int64, avg float64) {
	if len(res.Types) != 1 || len(res.Types[0].Items) != 1 {
		return 0, 0, 0
	}
	for _, m := range res.Types[0].Items[0].Metrics {
		switch m.Name {
		case "count":
			sent = m.Value.Int
		case "received":
			received = m.Value.Int
		case "avg":
			avg = m.Value.F
		}
	}
	return sent, received, avg
}

// pingFping sends the same echo requests with fping, every target listed
// once per copy, and reads its per-request report (-C).
func pingFping(ctx context.Context, rep *ICMPReport, bin string) (ICMPRun, error) {
	args := []string{"-C", strconv.Itoa(rep.Count), "-p", strconv.Itoa(rep.PeriodMS), "-t", strconv.Itoa(rep.TimeoutMS),
		"-b", strconv.Itoa(rep.Size), "-i", "0", "-q"}
	for _, t := range rep.Targets {
		for range rep.Copies {
			args = append(args, t)
		}
	}
	run := ICMPRun{Tool: "fping", Detail: bin + " " + strings.Join(args, " ")}
	if len(run.Detail) > 120 {
		run.Detail = run.Detail[:117] + "..."
	}
	if out, err := exec.CommandContext(ctx, bin, "-v").CombinedOutput(); err == nil {
		run.Tool = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), bin+":"))
		run.Tool = strings.Replace(run.Tool, "Version ", "fping ", 1)
	}
	var out bytes.Buffer
	// #nosec G204 -- the binary is the operator's --fping; the arguments
	// are numbers and addresses checked to be loopback ones.
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cpu0, err := rusageSeconds(syscall.RUSAGE_CHILDREN)
	if err != nil {
		return run, err
	}
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start).Seconds()
	// fping exits with 1 when some target did not answer every request.
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		return run, fmt.Errorf("running %s: %w: %s", bin, err, strings.TrimSpace(out.String()))
	}
	cpu1, err := rusageSeconds(syscall.RUSAGE_CHILDREN)
	if err != nil {
		return run, err
	}
	var rttSum float64
	run.Sent, run.Received, rttSum = parseFpingC(out.Bytes())
	if want := int64(len(rep.Targets) * rep.Copies * rep.Count); run.Sent != want {
		return run, fmt.Errorf("fping reported %d requests, want %d: %s", run.Sent, want, strings.TrimSpace(out.String()))
	}
	run.finish(elapsed, cpu1-cpu0)
	if run.Received > 0 {
		run.AvgRTTMilli = rttSum / float64(run.Received)
	}
	return run, nil
}

// parseFpingC reads fping -C -q output, one line per target:
// "127.0.0.1 : 0.05 0.04 - 0.06", a round-trip time in milliseconds or
// "-" per request.
func parseFpingC(out []byte) (sent, received int64, rttSumMilli float64) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		_, rest, ok := strings.Cut(sc.Text(), " : ")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			if f == "-" {
				sent++
				continue
			}
			if v, err := strconv.ParseFloat(f, 64); err == nil {
				sent++
				received++
				rttSumMilli += v
			}
		}
	}
	return sent, received, rttSumMilli
}

// rusageSeconds returns user + system time of this process (RUSAGE_SELF)
// or of its children that have been waited for (RUSAGE_CHILDREN).
func rusageSeconds(who int) (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0, fmt.Errorf("reading CPU time: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), nil
}

// socketLog is a log handler that notes which sockets the icmp probe
// opened and passes warnings on.
type socketLog struct {
	next  slog.Handler
	mu    sync.Mutex
	names []string
}

func (h *socketLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *socketLog) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "socket" && r.Message == "icmp: socket opened" {
			h.mu.Lock()
			h.names = append(h.names, a.Value.String())
			h.mu.Unlock()
		}
		return true
	})
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *socketLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *socketLog) WithGroup(string) slog.Handler      { return h }

func (h *socketLog) kinds() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.names)
}

func (r *ICMPReport) writeText(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "sonde-bench icmp — %s\n", r.Date.Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s RAM, Linux %s, %s\n", m.CPUs, m.CPUModel, gib(m.MemTotal), m.Kernel, m.GoVersion)
	fmt.Fprintf(w, "load: %s × %d streams: %d echo requests each, every %d ms, timeout %d ms, %d-byte payload\n\n",
		strings.Join(r.Targets, ", "), r.Copies, r.Count, r.PeriodMS, r.TimeoutMS, r.Size)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tool\tsent\treceived\twall s\techoes/s\tCPU s\tCPU s/1000 echoes\tavg RTT ms\t")
	for _, run := range []ICMPRun{r.Sonde, r.Fping} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.0f\t%.3f\t%.4f\t%.3f\t\n", run.Tool, run.Sent, run.Received, run.Elapsed,
			run.EchoesPerSec, run.CPUSeconds, run.CPUPer1000, run.AvgRTTMilli)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	fmt.Fprintf(w, "\nsonde: %s\nfping: %s\n", r.Sonde.Detail, r.Fping.Detail)
	if r.CPURatio > 0 {
		fmt.Fprintf(w, "sonde / fping: %.2f× the CPU time per echo request\n", r.CPURatio)
	}
	for _, run := range []ICMPRun{r.Sonde, r.Fping} {
		if run.Errors > 0 {
			fmt.Fprintf(w, "%s: %d checks with an error, the first: %s\n", run.Tool, run.Errors, run.FirstError)
		}
	}
	fmt.Fprint(w, `
Both send the same requests on the same schedule, so echoes/s follows from
--period, --copies and the number of targets; CPU time per request is the
comparison. Sonde's CPU time is all of sonde-bench's (the probe, the Go
runtime, the garbage collector); fping's is its process's. On loopback the
kernel's work (the echo replies included) is charged to the sender.
`)
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"
)

func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseIngestFlags(args, stderr)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(f.workDir, "sonde-bench-")
	if err != nil {
		return fmt.Errorf("creating a temporary directory: %w", err)
	}
	if f.keep {
		defer fmt.Fprintf(stderr, "kept %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "sonde-bench: "+format+"\n", a...) }

	rep := &IngestReport{Date: time.Now().UTC(), Machine: machine(), Args: args, Interval: f.shape.Interval.Seconds(), Series: f.shape.Series()}
	f.shape.Start = f.startTime(time.Now())
	rep.Shape = f.shape
	spec := loadSpec{Shape: f.shape, Duration: f.duration, Results: f.results}

	// The hub.
	var hs *server
	switch {
	case f.hubURL != "":
		hs, err = externalHub(ctx, f.hubURL, f.caFile, f.tokenFile, f.hubPID, f.allowRemote)
	case f.inProcess:
		hs, err = inProcessHub(ctx, work)
	case f.spawnsCluster():
		hs, err = spawnCluster(ctx, f, work, logf)
	default:
		hs, err = spawnHub(ctx, f.sonde, work, false)
	}
	if err != nil {
		return err
	}
	logf("hub at %s; creating %d assets", hs.base, f.shape.Agents)
	admin := &adminClient{base: hs.base, token: hs.token, client: newClient(hs.tlsConf, true, 30*time.Second)}
	fl, err := setupFleet(ctx, admin, f.shape.Agents)
	if err != nil {
		return errors.Join(err, stopServer(hs, logf))
	}
	if f.conditions > 0 {
		logf("defining %d conditions", f.conditions)
		if err := defineConditions(ctx, admin, fl.ContainerID, f.conditions, f.shape.Metrics); err != nil {
			return errors.Join(err, stopServer(hs, logf))
		}
		rep.Conditions = f.conditions
	}
	logf("loading the hub: %s", describeSpec(spec))
	send := hubSender(hs.allBases(), hs.tlsConf, f.http1, f.timeout, f.shape, fl)
	tr := measure(ctx, hs, spec, send, f.cpuProfile, logf)
	rep.Targets = append(rep.Targets, tr)

	// Prometheus, the same samples.
	if (f.promURL != "" || f.spawnProm.set) && ctx.Err() == nil {
		var ps *server
		if f.promURL != "" {
			ps, err = externalPrometheus(ctx, f.promURL, f.promCA, f.promPID, f.allowRemote)
		} else {
			ps, err = spawnPrometheus(ctx, f.spawnProm.path, work, f.promPlain, 0)
		}
		if err == nil {
			logf("loading Prometheus at %s with the same samples", ps.base)
			send := promSender(ps.base, ps.tlsConf, f.http1, f.timeout, f.shape, fl)
			rep.Targets = append(rep.Targets, measure(ctx, ps, spec, send, "", logf))
		}
	}

	// The hub's figures are printed even when Prometheus could not run.
	var werr error
	if f.jsonOut {
		werr = writeJSONReport(stdout, rep)
	} else {
		werr = rep.writeText(stdout)
	}
	switch {
	case werr != nil:
		return werr
	case err != nil:
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return nil
}

func describeSpec(s loadSpec) string {
	d := fmt.Sprintf("%d agents for up to %s", s.Shape.Agents, s.Duration)
	if s.Results > 0 {
		d += fmt.Sprintf(" or %d results", s.Results)
	}
	return d
}

// measure loads one server and measures it: CPU and memory around the
// load (when its process is known), then, when it is ours, stops it and
// measures its data on disk. It always stops a server it owns.
func measure(ctx context.Context, s *server, spec loadSpec, send sendFunc, cpuProfile string, logf func(string, ...any)) TargetReport {
	tr := TargetReport{Name: s.name, Version: s.version, URL: s.base, Errors: map[string]int64{}}
	var before procSample
	var err error
	procs := s.processes()
	if len(procs) > 0 {
		if before, err = readProcs(procs); err != nil {
			logf("%s: %v", s.name, err)
			procs = nil
		}
	}
	self0, _ := readProc(0)
	busy0, _ := machineBusySeconds()
	stopProfile := func() {}
	if cpuProfile != "" {
		if stopProfile, err = startProfile(cpuProfile); err != nil {
			logf("%v", err)
			stopProfile = func() {}
		}
	}

	out := runLoad(ctx, spec, send)
	stopProfile()

	self1, _ := readProc(0)
	busy1, _ := machineBusySeconds()
	tr.BenchCPUSeconds = self1.CPUSeconds - self0.CPUSeconds
	st := out.Stats
	tr.Interrupted = out.Canceled
	tr.Protocols = out.Protocols
	tr.Results, tr.Samples = st.results, st.samples
	tr.Elapsed = out.Elapsed.Seconds()
	if tr.Elapsed > 0 {
		tr.ResultsPerSec = float64(st.results) / tr.Elapsed
		tr.SamplesPerSec = float64(st.samples) / tr.Elapsed
	}
	tr.Latency = summarize(st.latencies)
	tr.Errors, tr.ErrorExamples = st.errors, st.firstErr
	tr.TimelineEnded = out.TimelineEnded
	if out.Generated > 0 {
		tr.UnchangedFraction = float64(out.Unchanged) / float64(out.Generated)
	}
	if tr.Elapsed > 0 {
		tr.MachineCores = (busy1 - busy0) / tr.Elapsed
	}
	if len(procs) > 0 {
		if after, err := readProcs(procs); err == nil {
			tr.Server = serverUse(before, after, tr, spec.Shape.Series())
			if tr.Elapsed > 0 {
				other := max(0, tr.MachineCores-(tr.Server.CPUSeconds+tr.BenchCPUSeconds)/tr.Elapsed)
				tr.OtherCores = &other
			}
		} else {
			logf("%s: %v", s.name, err)
		}
	}
	if text, err := scrapeAll(context.WithoutCancel(ctx), s); err == nil {
		if tr.Server != nil {
			if v, ok := metricValue(text, "prometheus_tsdb_head_series"); ok && v > 0 {
				tr.Server.ActiveSeries, tr.Server.ActiveSeriesSource = int64(v), "tsdb head"
				tr.Server.RSSPerSeries = float64(tr.Server.RSSAfter-tr.Server.RSSBefore) / v
				tr.Server.AnonPerSeries = float64(tr.Server.AnonAfter-tr.Server.AnonBefore) / v
			}
			if v, ok := metricValue(text, "go_memstats_heap_inuse_bytes"); ok {
				tr.Server.HeapInuse = int64(v)
			}
		}
	} else {
		logf("%v", err)
	}
	logf("%s: %d results, %.0f samples/s, %s", s.name, tr.Results, tr.SamplesPerSec, errorSummary(tr.Errors))

	if s.stop == nil {
		return tr
	}
	logf("stopping %s", s.name)
	if err := stopServer(s, logf); err != nil {
		tr.DiskError = err.Error()
		return tr
	}
	if s.tsdbDir == "" || ctx.Err() != nil {
		return tr
	}
	logf("compacting %s's head and measuring its blocks", s.name)
	if tr.Disk, err = compactAndMeasure(ctx, s.tsdbDir); err != nil {
		tr.DiskError = err.Error()
	}
	return tr
}

// scrapeAll reads /metrics of every hub of s, one text after the other,
// so that metricValue sums them.
func scrapeAll(ctx context.Context, s *server) (string, error) {
	var all strings.Builder
	for _, b := range s.allBases() {
		text, err := scrapeMetricsAt(ctx, s, b)
		if err != nil {
			return "", err
		}
		all.WriteString(text)
	}
	return all.String(), nil
}

func serverUse(before, after procSample, tr TargetReport, planned int) *ServerUse {
	u := &ServerUse{
		CPUSeconds: after.CPUSeconds - before.CPUSeconds,
		RSSBefore:  before.RSSBytes, RSSAfter: after.RSSBytes, RSSPeak: after.HWMBytes,
		AnonBefore: before.AnonBytes, AnonAfter: after.AnonBytes,
		ActiveSeries: int64(planned), ActiveSeriesSource: "planned",
	}
	if tr.Samples > 0 {
		u.CPUPerMillion = u.CPUSeconds / (float64(tr.Samples) / 1e6)
	}
	if tr.Elapsed > 0 {
		u.Cores = u.CPUSeconds / tr.Elapsed
	}
	if planned > 0 {
		u.RSSPerSeries = float64(u.RSSAfter-u.RSSBefore) / float64(planned)
		u.AnonPerSeries = float64(u.AnonAfter-u.AnonBefore) / float64(planned)
	}
	return u
}

func stopServer(s *server, logf func(string, ...any)) error {
	if s.stop == nil {
		return nil
	}
	err := s.stop()
	s.stop = nil
	if err != nil {
		logf("%v", err)
	}
	return err
}

// startProfile starts a CPU profile into path; the returned function ends it.
func startProfile(path string) (func(), error) {
	out, err := os.Create(filepath.Clean(path))
	if err != nil {
		return nil, fmt.Errorf("creating the CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		return nil, errors.Join(fmt.Errorf("starting the CPU profile: %w", err), out.Close())
	}
	return func() {
		pprof.StopCPUProfile()
		if err := out.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "sonde-bench: writing the CPU profile: %v\n", err)
		}
	}, nil
}

// defineConditions creates n expression conditions on the benchmark's
// type, of the shapes users write (a threshold, a ratio, a rate, a
// difference with the previous result, a guarded one), with thresholds no
// value reaches: the benchmark measures evaluating them, not alerting.
func defineConditions(ctx context.Context, c *adminClient, container int64, n, metrics int) error {
	for i := range n {
		a, b := metricName(i%metrics), metricName((i+1)%metrics)
		var e string
		switch i % 5 {
		case 0:
			e = fmt.Sprintf("item.%s > 1e9", a)
		case 1:
			e = fmt.Sprintf("item.%s / (item.%s + 1) > 1e9", a, b)
		case 2:
			e = fmt.Sprintf("rate(item.%s) > 1e9", a)
		case 3:
			e = fmt.Sprintf("item.%s - prev.%s > 1e9", a, a)
		default:
			e = fmt.Sprintf("exists(item.%s) and item.%s < 0", a, a)
		}
		body := map[string]any{
			"name": fmt.Sprintf("bench %d", i), "type": typeName, "collector": collectorKey,
			"expression": e, "severity": "WARNING", "message": "{item}: {item." + a + "}",
		}
		if err := c.call(ctx, "POST", fmt.Sprintf("/api/v1/container/%d/condition", container), body, nil); err != nil {
			return fmt.Errorf("defining the benchmark's conditions: %w", err)
		}
	}
	return nil
}

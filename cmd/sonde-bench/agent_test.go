package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCorePercent(t *testing.T) {
	for _, c := range []struct {
		cpu    float64
		window time.Duration
		want   float64
	}{
		{6, 10 * time.Minute, 1},
		{0.3, 30 * time.Second, 1},
		{1.2, 2 * time.Minute, 1},
		{0, time.Minute, 0},
		{5, 0, 0},
	} {
		if got := corePercent(c.cpu, c.window); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("corePercent(%g, %s) = %g, want %g", c.cpu, c.window, got, c.want)
		}
	}
}

func TestTicksIn(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	iv := 30 * time.Second
	for _, c := range []struct {
		from, to time.Duration // after t0
		want     int
	}{
		{5 * time.Second, 605 * time.Second, 20}, // the default run: 30 s … 600 s
		{0, 600 * time.Second, 20},               // (from, to]: the tick at t0 is out, 600 s in
		{-time.Second, 0, 1},
		{5 * time.Second, 29 * time.Second, 0},
		{10 * time.Second, 5 * time.Second, 0},
	} {
		if got := ticksIn(t0, iv, t0.Add(c.from), t0.Add(c.to)); got != c.want {
			t.Errorf("ticksIn(%s, %s) = %d, want %d", c.from, c.to, got, c.want)
		}
	}
}

func TestCountSeries(t *testing.T) {
	text := "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 0.5\n\n" +
		`node_cpu_seconds_total{cpu="0",mode="idle"} 123.4` + "\n" +
		"node_long{x=\"" + strings.Repeat("a", 100_000) + "\"} 1\n" + // longer than the read buffer
		"node_no_newline 3"
	n, series, err := countSeries(strings.NewReader(text))
	if err != nil || n != int64(len(text)) || series != 4 {
		t.Errorf("countSeries = %d bytes, %d series, %v; want %d bytes, 4 series", n, series, err, len(text))
	}
	if n, series, err := countSeries(strings.NewReader("")); n != 0 || series != 0 || err != nil {
		t.Errorf("empty: %d, %d, %v", n, series, err)
	}
}

func TestStoppedBySIGTERM(t *testing.T) {
	if stoppedBySIGTERM(errors.New("exit status 1")) || stoppedBySIGTERM(nil) {
		t.Error("an error that is no exit by SIGTERM counts as one")
	}
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if !stoppedBySIGTERM(errors.Join(err, nil)) {
		t.Errorf("%v: not seen as SIGTERM", err)
	}
}

func TestAgentReportText(t *testing.T) {
	r := &agentReport{
		Date: time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC), Machine: Machine{CPUs: 2, CPUModel: "Test CPU", MemTotal: 4 << 30, Kernel: "6.1"},
		Interval: 30 * time.Second, Startup: 5 * time.Second, Sample: 10 * time.Second,
		Agent: footprint{Name: "sonde-agent", Version: "sonde-agent v1", Binary: 7_205_024, StartupCPU: 0.05, StartupRSS: 8_000_000,
			Window: 10 * time.Minute, CPU: 1.2, MaxRSS: 9_500_000, FinalRSS: 9_400_000, FinalAnon: 2_900_000, PeakRSS: 9_800_000, Rounds: 20},
		Exporter: footprint{Name: "node_exporter", Version: "node_exporter 1.5.0", Binary: 13_703_864, StartupCPU: 0.08,
			Window: 10 * time.Minute, CPU: 12, MaxRSS: 20_000_000, FinalRSS: 19_000_000, PeakRSS: 21_000_000, Rounds: 20},
		Scrape:    scrapeStats{Scrapes: 21, WireBytes: 21 * 9000, TextBytes: 21 * 120_000, Series: 1200, Gzip: true},
		HubStored: 147, HubSystem: 21,
	}
	var b bytes.Buffer
	if err := r.writeText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"sonde-agent  node_exporter",
		"7.2 MB", "13.7 MB",
		"1.20 s", "12.00 s",
		"0.200 %", "2.000 %",
		"60 ms", "600 ms",
		"9.5 MB", "20.0 MB",
		"2.9 / 6.5 MB",
		"21 (0 failed), 1200 series, 9.0 kB on the wire (gzip), 120.0 kB of text per scrape",
		"147 results stored from the agent (all checks, start-up included); 21 rounds of its system check in the time-series store",
		"RSS ≤ 12.0 MB: ok (peak 9.8 MB); CPU ≤ 1% of one core: ok (0.200 %); binary ≤ 10.0 MB: ok (7.2 MB)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	r.Agent.PeakRSS, r.Agent.CPU = 12_500_000, 7
	b.Reset()
	if err := r.writeText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "RSS ≤ 12.0 MB: EXCEEDED (peak 12.5 MB); CPU ≤ 1% of one core: EXCEEDED (1.167 %)") {
		t.Errorf("targets missed are not flagged:\n%s", b.String())
	}
}

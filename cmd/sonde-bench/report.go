package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemTotal  int64  `json:"mem_total_bytes"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				if _, err := fmt.Sscan(rest, &kb); err == nil {
					m.MemTotal = kb << 10
				}
			}
		}
	}
	return m
}

// TargetReport is what one server did under the load.
type TargetReport struct {
	Name      string           `json:"name"`
	Version   string           `json:"version,omitempty"`
	URL       string           `json:"url"`
	Protocols map[string]int64 `json:"protocols"`
	// Results and Samples were acknowledged with a 2xx status.
	Results       int64             `json:"results"`
	Samples       int64             `json:"samples"`
	Elapsed       float64           `json:"elapsed_seconds"`
	ResultsPerSec float64           `json:"results_per_second"`
	SamplesPerSec float64           `json:"samples_per_second"`
	Latency       Latency           `json:"latency"`
	Errors        map[string]int64  `json:"errors"`
	ErrorExamples map[string]string `json:"error_examples,omitempty"`
	// TimelineEnded is how many agents stopped because their next
	// timestamp would have been in the future (raise --span).
	TimelineEnded int `json:"agents_out_of_timeline,omitempty"`
	// UnchangedFraction is the share of generated samples equal to their
	// series' previous value.
	UnchangedFraction float64 `json:"unchanged_fraction"`
	// BenchCPUSeconds is the CPU time of sonde-bench itself during the load.
	BenchCPUSeconds float64 `json:"bench_cpu_seconds"`
	// MachineCores is the CPU time all processes spent during the load
	// per second of it; OtherCores what neither the server nor
	// sonde-bench spent: other work on the machine that competed.
	MachineCores float64 `json:"machine_cpu_cores_busy"`
	// OtherCores is nil when the server's own CPU time is unknown.
	OtherCores  *float64   `json:"other_processes_cpu_cores,omitempty"`
	Server      *ServerUse `json:"server,omitempty"`
	Disk        *Disk      `json:"disk,omitempty"`
	DiskError   string     `json:"disk_error,omitempty"`
	Interrupted bool       `json:"interrupted,omitempty"`
}

// ServerUse is the server process' CPU and memory during the load.
type ServerUse struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPerMillion is CPU seconds per million acknowledged samples;
	// Cores is CPU seconds per second of load.
	CPUPerMillion float64 `json:"cpu_seconds_per_million_samples"`
	Cores         float64 `json:"cpu_cores_busy"`
	RSSBefore     int64   `json:"rss_before_bytes"`
	RSSAfter      int64   `json:"rss_after_bytes"`
	RSSPeak       int64   `json:"rss_peak_bytes"`
	// ActiveSeries is the head's series count from the server's own
	// metrics (prometheus_tsdb_head_series), or the planned count.
	ActiveSeries       int64   `json:"active_series"`
	ActiveSeriesSource string  `json:"active_series_source"`
	RSSPerSeries       float64 `json:"rss_growth_per_series_bytes"`
	// AnonPerSeries is the growth of RssAnon (heap, stacks: not mapped
	// files) per active series.
	AnonPerSeries float64 `json:"rss_anon_growth_per_series_bytes"`
	AnonBefore    int64   `json:"rss_anon_before_bytes"`
	AnonAfter     int64   `json:"rss_anon_after_bytes"`
	HeapInuse     int64   `json:"go_heap_inuse_bytes,omitempty"`
}

// IngestReport is the whole ingest benchmark's report.
type IngestReport struct {
	Date    time.Time `json:"date"`
	Machine Machine   `json:"machine"`
	Args    []string  `json:"args"`
	Shape   shape     `json:"shape"`
	// Conditions is how many expression conditions were active.
	Conditions int            `json:"conditions,omitempty"`
	Interval   float64        `json:"interval_seconds"`
	Series     int            `json:"series"`
	Targets    []TargetReport `json:"targets"`
}

func writeJSONReport(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// writeText prints the report as a table, one column per target, and the
// ratio of the first to the second when there are two.
func (r *IngestReport) writeText(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "sonde-bench ingest — %s\n", r.Date.Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s RAM, Linux %s, %s\n", m.CPUs, m.CPUModel, gib(m.MemTotal), m.Kernel, m.GoVersion)
	s := r.Shape
	fmt.Fprintf(w, "load: %d agents × %d checks, %d item(s) × %d float metrics per result (%d samples), %gs interval, %d decimals → %d series\n\n",
		s.Agents, s.Checks, s.Items, s.Metrics, s.SamplesPerResult(), r.Interval, s.Decimals, r.Series)
	if r.Conditions > 0 {
		fmt.Fprintf(w, "conditions: %d expression conditions evaluated on every item\n\n", r.Conditions)
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	ratio := len(r.Targets) == 2
	row := func(name string, f func(t *TargetReport) string, rf func(a, b *TargetReport) string) {
		cells := []string{name}
		for i := range r.Targets {
			cells = append(cells, f(&r.Targets[i]))
		}
		if ratio {
			c := ""
			if rf != nil {
				c = rf(&r.Targets[0], &r.Targets[1])
			}
			cells = append(cells, c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	head := []string{""}
	for _, t := range r.Targets {
		head = append(head, t.Name)
	}
	if ratio {
		head = append(head, r.Targets[0].Name+" / "+r.Targets[1].Name)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	div := func(f func(t *TargetReport) (float64, bool)) func(a, b *TargetReport) string {
		return func(a, b *TargetReport) string {
			x, ok1 := f(a)
			y, ok2 := f(b)
			if !ok1 || !ok2 || y == 0 {
				return "–"
			}
			return fmt.Sprintf("%.2f×", x/y)
		}
	}
	num := func(f func(t *TargetReport) (float64, bool), format string) func(t *TargetReport) string {
		return func(t *TargetReport) string {
			if v, ok := f(t); ok {
				return fmt.Sprintf(format, v)
			}
			return "n/a"
		}
	}
	always := func(f func(t *TargetReport) float64) func(t *TargetReport) (float64, bool) {
		return func(t *TargetReport) (float64, bool) { return f(t), true }
	}
	srv := func(f func(u *ServerUse) float64) func(t *TargetReport) (float64, bool) {
		return func(t *TargetReport) (float64, bool) {
			if t.Server == nil {
				return 0, false
			}
			return f(t.Server), true
		}
	}
	disk := func(f func(d *Disk) float64) func(t *TargetReport) (float64, bool) {
		return func(t *TargetReport) (float64, bool) {
			if t.Disk == nil || t.Disk.Head.Samples == 0 {
				return 0, false
			}
			return f(t.Disk), true
		}
	}
	row("version", func(t *TargetReport) string { return cut(t.Version, 24) }, nil)
	row("protocol", func(t *TargetReport) string { return protoSummary(t.Protocols) }, nil)
	row("elapsed s", num(always(func(t *TargetReport) float64 { return t.Elapsed }), "%.1f"), nil)
	resPS := always(func(t *TargetReport) float64 { return t.ResultsPerSec })
	row("check results/s", num(resPS, "%.0f"), div(resPS))
	smpPS := always(func(t *TargetReport) float64 { return t.SamplesPerSec })
	row("samples/s", num(smpPS, "%.0f"), div(smpPS))
	row("samples acknowledged", num(always(func(t *TargetReport) float64 { return float64(t.Samples) }), "%.0f"), nil)
	for _, p := range []struct {
		name string
		f    func(l Latency) float64
	}{
		{"latency p50 ms", func(l Latency) float64 { return l.P50 }},
		{"latency p90 ms", func(l Latency) float64 { return l.P90 }},
		{"latency p99 ms", func(l Latency) float64 { return l.P99 }},
		{"latency max ms", func(l Latency) float64 { return l.Max }},
	} {
		f := always(func(t *TargetReport) float64 { return p.f(t.Latency) })
		row(p.name, num(f, "%.2f"), div(f))
	}
	row("errors", func(t *TargetReport) string { return errorSummary(t.Errors) }, nil)
	cpu := srv(func(u *ServerUse) float64 { return u.CPUPerMillion })
	row("server CPU s / 1M samples", num(cpu, "%.1f"), div(cpu))
	row("server CPU cores busy", num(srv(func(u *ServerUse) float64 { return u.Cores }), "%.2f"), nil)
	row("sonde-bench CPU s", num(always(func(t *TargetReport) float64 { return t.BenchCPUSeconds }), "%.1f"), nil)
	row("machine CPU cores busy", num(always(func(t *TargetReport) float64 { return t.MachineCores }), "%.2f"), nil)
	row("  of which other processes", num(func(t *TargetReport) (float64, bool) {
		if t.OtherCores == nil {
			return 0, false
		}
		return *t.OtherCores, true
	}, "%.2f"), nil)
	row("RSS before load MiB", num(srv(func(u *ServerUse) float64 { return float64(u.RSSBefore) / (1 << 20) }), "%.1f"), nil)
	rss := srv(func(u *ServerUse) float64 { return float64(u.RSSAfter) / (1 << 20) })
	row("RSS after load MiB", num(rss, "%.1f"), div(rss))
	row("RSS peak MiB", num(srv(func(u *ServerUse) float64 { return float64(u.RSSPeak) / (1 << 20) }), "%.1f"), nil)
	row("active series", func(t *TargetReport) string {
		if t.Server == nil {
			return "n/a"
		}
		return fmt.Sprintf("%d (%s)", t.Server.ActiveSeries, t.Server.ActiveSeriesSource)
	}, nil)
	perSeries := srv(func(u *ServerUse) float64 { return u.RSSPerSeries })
	row("RSS growth B / series", num(perSeries, "%.0f"), div(perSeries))
	anon := srv(func(u *ServerUse) float64 { return u.AnonPerSeries })
	row("  of which anon B / series", num(anon, "%.0f"), div(anon))
	row("samples in blocks", num(disk(func(d *Disk) float64 { return float64(d.Head.Samples) }), "%.0f"), nil)
	bps := disk(func(d *Disk) float64 { return d.Head.BytesPerSample })
	row("disk B / sample, 2h blocks", num(bps, "%.3f"), div(bps))
	cbps := disk(func(d *Disk) float64 { return d.Head.ChunkBytesPerSample })
	row("  of which chunks", num(cbps, "%.3f"), div(cbps))
	mbps := disk(func(d *Disk) float64 { return d.Merged.BytesPerSample })
	row("disk B / sample, merged", num(mbps, "%.3f"), div(mbps))
	row("blocks (2h / merged)", func(t *TargetReport) string {
		if t.Disk == nil {
			return "n/a"
		}
		return fmt.Sprintf("%d / %d", t.Disk.Head.Count, t.Disk.Merged.Count)
	}, nil)
	row("unchanged samples %", num(always(func(t *TargetReport) float64 { return 100 * t.UnchangedFraction }), "%.1f"), nil)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}

	for _, t := range r.Targets {
		for _, k := range sortedKeys(t.ErrorExamples) {
			fmt.Fprintf(w, "\n%s error %s, e.g.: %s", t.Name, k, t.ErrorExamples[k])
		}
		if t.TimelineEnded > 0 {
			fmt.Fprintf(w, "\n%s: %d agents stopped early: their next timestamp would have been in the future (raise --span)", t.Name, t.TimelineEnded)
		}
		if t.DiskError != "" {
			fmt.Fprintf(w, "\n%s: disk not measured: %s", t.Name, t.DiskError)
		}
		if t.Interrupted {
			fmt.Fprintf(w, "\n%s: interrupted; the figures cover the part that ran", t.Name)
		}
	}
	fmt.Fprint(w, `

What the figures mean:
  samples/s           samples in results the server answered 2xx for, divided by the load's wall time
  latency             request sent to answer read, per result, over all agents
  server CPU          utime+stime of the server process (/proc/<pid>/stat) during the load
                      (several hubs: the sum over their processes, and of their RSS; a PostgreSQL
                      or TSDB sonde-bench spawned counts among the other processes)
  RSS growth/series   (VmRSS after load − VmRSS before load) / active series; "anon": the same
                      for RssAnon (heap and stacks, without files mapped into memory)
  disk B/sample       after the server stopped (SIGTERM), its TSDB was opened with
                      internal/tsstore/local and the head compacted into 2h blocks; the size of
                      all files in the block directories (01…: chunks, index, meta.json,
                      tombstones) divided by the samples the blocks' meta.json count; WAL not
                      counted. "merged": again after the TSDB's level compaction of the blocks.
`)
	return nil
}

func protoSummary(m map[string]int64) string {
	if len(m) == 0 {
		return "–"
	}
	return strings.Join(sortedKeys(m), "+")
}

func errorSummary(m map[string]int64) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func cut(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	if s == "" {
		return "–"
	}
	return s
}

func gib(b int64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

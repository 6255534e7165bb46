package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
	"github.com/sonde-monitoring/sonde/internal/tsstore/local"
)

// Series of one benchmark asset: 10 checks of 20 metrics, as ingest's
// default load has.
const (
	storageChecks  = 10
	storageMetrics = 20
	seriesPerAsset = storageChecks * storageMetrics
)

// StorageReport is the storage benchmark's report.
type StorageReport struct {
	Date     time.Time `json:"date"`
	Machine  Machine   `json:"machine"`
	Args     []string  `json:"args"`
	Series   int       `json:"series"`
	Hours    float64   `json:"hours"`
	Interval float64   `json:"interval_seconds"`
	Decimals int       `json:"decimals"`
	Batch    int       `json:"batch"`
	// Samples were appended in Elapsed seconds, with CPUSeconds of this
	// process (appends and the TSDB's own compactions).
	Samples       int64   `json:"samples"`
	Elapsed       float64 `json:"elapsed_seconds"`
	SamplesPerSec float64 `json:"samples_per_second"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	CPUPerMillion float64 `json:"cpu_seconds_per_million_samples"`
	// Memory after the last sample, all series in the head: the Go heap
	// in use after a GC and the RSS, each minus its value before the store
	// was opened, per series.
	HeapPerSeries float64 `json:"heap_growth_per_series_bytes"`
	RSSPerSeries  float64 `json:"rss_growth_per_series_bytes"`
	AnonPerSeries float64 `json:"rss_anon_growth_per_series_bytes"`
	RSSBefore     int64   `json:"rss_before_bytes"`
	RSSAfter      int64   `json:"rss_after_bytes"`
	// UnchangedFraction is the share of samples equal to their series'
	// previous value.
	UnchangedFraction float64 `json:"unchanged_fraction"`
	Disk              *Disk   `json:"disk"`
	TimedOut          bool    `json:"timed_out,omitempty"`
}

func runStorage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sonde-bench storage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	series := fs.Int("series", 100_000, "series to write (rounded up to a multiple of 200: 10 checks × 20 metrics per asset)")
	hours := fs.Float64("hours", 24, "hours of samples per series")
	interval := fs.Duration("interval", 60*time.Second, "time between two samples of a series")
	decimals := fs.Int("decimals", 2, "decimals of the values (random walks)")
	batch := fs.Int("batch", 10_000, "samples per Append call")
	seed := fs.Uint64("seed", 1, "seed of the values")
	limit := fs.Duration("max-time", 30*time.Minute, "stop writing after this long and measure what was written")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	keep := fs.Bool("keep", false, "keep the store's directory and print its path")
	workDir := fs.String("workdir", "", "where to create the temporary directory (default: the system's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected arguments %v", fs.Args())
	case *series < 1 || *series > 10_000_000:
		return usageErr("--series must be between 1 and 10000000")
	case *hours <= 0 || *hours > 24*60:
		return usageErr("--hours must be between 0 and 1440 (60 days)")
	case *interval < time.Second || *interval%time.Second != 0:
		return usageErr("--interval must be whole seconds, at least 1s")
	case *decimals < 0 || *decimals > 6:
		return usageErr("--decimals must be between 0 and 6")
	case *batch < 1 || *batch > 1_000_000:
		return usageErr("--batch must be between 1 and 1000000")
	case *limit <= 0:
		return usageErr("--max-time must be positive")
	}
	work, err := os.MkdirTemp(*workDir, "sonde-bench-storage-")
	if err != nil {
		return fmt.Errorf("creating a temporary directory: %w", err)
	}
	if *keep {
		defer fmt.Fprintf(stderr, "kept %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}

	assets := (*series + seriesPerAsset - 1) / seriesPerAsset
	rounds := int(time.Duration(*hours*float64(time.Hour)) / *interval)
	iv := int64(*interval / time.Second)
	start := alignStart(time.Now().Unix()-int64(rounds+1)*iv, iv)
	sh := shape{Agents: assets, Checks: storageChecks, Items: 1, Metrics: storageMetrics,
		Interval: *interval, Decimals: *decimals, Seed: *seed, Start: start}
	rep := &StorageReport{Date: time.Now().UTC(), Machine: machine(), Args: args, Series: sh.Series(),
		Hours: float64(rounds) * interval.Hours(), Interval: interval.Seconds(), Decimals: *decimals, Batch: *batch}

	gens := make([]*agentGen, assets)
	keys := make([][]tsstore.SeriesKey, assets*storageChecks)
	for a := range gens {
		gens[a] = newAgentGen(sh, a)
		for c := range storageChecks {
			ks := make([]tsstore.SeriesKey, storageMetrics)
			for m := range ks {
				ks[m] = tsstore.SeriesKey{
					Metric: "sonde_" + typeName + "_" + metricName(m), ContainerID: "2",
					AssetID: strconv.Itoa(a + 1), Asset: assetName(a), Collector: collectorKey,
					Check: checkName(c), Item: itemName(0),
				}
			}
			keys[a*storageChecks+c] = ks
		}
	}

	heap0, p0 := memNow()
	rep.RSSBefore = p0.RSSBytes
	dir := filepath.Join(work, "tsdb")
	st, err := local.Open(dir, local.Options{}, nil, nil)
	if err != nil {
		return err
	}
	cpu0, _ := readProc(0)
	began := time.Now()
	deadline := began.Add(*limit)
	lastLog := began
	buf := make([]tsstore.Sample, 0, *batch)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		err := st.Append(ctx, buf)
		rep.Samples += int64(len(buf))
		buf = buf[:0]
		return err
	}
	total := int64(rounds) * int64(sh.Series())
write:
	for range rounds {
		for a, g := range gens {
			for range storageChecks {
				r := g.next()
				ks := keys[a*storageChecks+r.Check]
				for m, v := range r.Values {
					buf = append(buf, tsstore.Sample{Key: ks[m], T: r.TS * 1000, V: v})
				}
				if len(buf) >= *batch {
					if err := flush(); err != nil {
						return errors.Join(err, st.Close())
					}
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		if now := time.Now(); now.After(deadline) {
			rep.TimedOut = true
			break write
		} else if now.Sub(lastLog) >= 10*time.Second {
			lastLog = now
			fmt.Fprintf(stderr, "sonde-bench: %d of %d samples written (%.0f/s)\n",
				rep.Samples, total, float64(rep.Samples)/now.Sub(began).Seconds())
		}
	}
	if err := flush(); err != nil {
		return errors.Join(err, st.Close())
	}
	rep.Elapsed = time.Since(began).Seconds()
	cpu1, _ := readProc(0)
	rep.CPUSeconds = cpu1.CPUSeconds - cpu0.CPUSeconds
	if rep.Samples > 0 {
		rep.SamplesPerSec = float64(rep.Samples) / rep.Elapsed
		rep.CPUPerMillion = rep.CPUSeconds / (float64(rep.Samples) / 1e6)
	}
	heap1, p1 := memNow()
	rep.RSSAfter = p1.RSSBytes
	rep.HeapPerSeries = float64(heap1-heap0) / float64(rep.Series)
	rep.RSSPerSeries = float64(p1.RSSBytes-p0.RSSBytes) / float64(rep.Series)
	rep.AnonPerSeries = float64(p1.AnonBytes-p0.AnonBytes) / float64(rep.Series)
	var unchanged, generated int64
	for _, g := range gens {
		unchanged += g.unchanged
		generated += g.total
	}
	if generated > 0 {
		rep.UnchangedFraction = float64(unchanged) / float64(generated)
	}
	if err := st.Close(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	fmt.Fprintln(stderr, "sonde-bench: compacting the head and measuring the blocks")
	if rep.Disk, err = compactAndMeasure(ctx, dir); err != nil {
		return err
	}
	if *jsonOut {
		return writeJSONReport(stdout, rep)
	}
	return rep.writeText(stdout)
}

// memNow returns the Go heap in use after a collection, and the process'
// memory.
func memNow() (heap int64, p procSample) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p, _ = readProc(0)
	return int64(ms.HeapInuse), p
}

func (r *StorageReport) writeText(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "sonde-bench storage — %s\n", r.Date.Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s RAM, Linux %s, %s\n\n", m.CPUs, m.CPUModel, gib(m.MemTotal), m.Kernel, m.GoVersion)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	rows := []struct {
		k string
		v string
	}{
		{"series", fmt.Sprintf("%d", r.Series)},
		{"hours of samples", fmt.Sprintf("%.1f at %gs (%d decimals)", r.Hours, r.Interval, r.Decimals)},
		{"samples written", fmt.Sprintf("%d", r.Samples)},
		{"unchanged samples", fmt.Sprintf("%.1f%%", 100*r.UnchangedFraction)},
		{"append rate", fmt.Sprintf("%.0f samples/s (batches of %d)", r.SamplesPerSec, r.Batch)},
		{"CPU", fmt.Sprintf("%.1f s per 1M samples", r.CPUPerMillion)},
		{"Go heap growth", fmt.Sprintf("%.0f B per series", r.HeapPerSeries)},
		{"RSS growth", fmt.Sprintf("%.0f B per series (%.0f → %.0f MiB)", r.RSSPerSeries, float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20))},
		{"  anonymous", fmt.Sprintf("%.0f B per series (RssAnon: heap and stacks, no mapped files)", r.AnonPerSeries)},
	}
	if r.Disk != nil {
		for _, b := range []struct {
			name string
			b    Blocks
		}{{"2h blocks", r.Disk.Head}, {"merged blocks", r.Disk.Merged}} {
			rows = append(rows,
				struct{ k, v string }{b.name, fmt.Sprintf("%d blocks, %d series, %d chunks, %d samples", b.b.Count, b.b.Series, b.b.Chunks, b.b.Samples)},
				struct{ k, v string }{"  bytes", fmt.Sprintf("%d (chunks %d, index %d)", b.b.Bytes, b.b.ChunkBytes, b.b.IndexBytes)},
				struct{ k, v string }{"  disk per sample", fmt.Sprintf("%.3f B (chunks alone %.3f B)", b.b.BytesPerSample, b.b.ChunkBytesPerSample)},
			)
		}
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t  %s\n", row.k, row.v)
	}
	if r.TimedOut {
		fmt.Fprintf(tw, "note\t  --max-time passed: fewer hours than asked were written\n")
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	fmt.Fprint(w, `
Disk per sample: all files of the block directories (01…) after the head was
compacted into 2h blocks, divided by the samples the blocks' meta.json count;
WAL not counted. Merged: the same after the TSDB's level compaction (2h → 6h →
18h → 54h → 162h blocks), which a running hub does over time.
Memory per series: measured with every series in the head, after a GC.
`)
	return nil
}

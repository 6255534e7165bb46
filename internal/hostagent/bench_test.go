//go:build linux

package hostagent

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user and system) of the whole test process.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per operation, which says more than the
// wall time on a busy machine, and its share of one core at a 30 s
// interval.
func reportCPU(b *testing.B, start time.Duration) {
	per := float64(cpuTime(b)-start) / float64(b.N)
	b.ReportMetric(per, "cpu-ns/op")
	b.ReportMetric(per/float64(30*time.Second)*100, "%core@30s")
}

// BenchmarkCollectAll runs every check against the machine's own /proc,
// /sys and mounts, as the agent does each interval (rates included: the
// checks keep their previous sample from one iteration to the next).
func BenchmarkCollectAll(b *testing.B) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		b.Skip("no /proc here")
	}
	checks := Checks(Options{})
	ctx := context.Background()
	for _, c := range checks {
		c.Collect(ctx) // the first samples
	}
	b.ReportAllocs()
	start := cpuTime(b)
	for b.Loop() {
		for _, c := range checks {
			c.Collect(ctx)
		}
	}
	reportCPU(b, start)
}

// BenchmarkCollect is BenchmarkCollectAll check by check.
func BenchmarkCollect(b *testing.B) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		b.Skip("no /proc here")
	}
	ctx := context.Background()
	for _, c := range Checks(Options{}) {
		b.Run(c.Key(), func(b *testing.B) {
			c.Collect(ctx)
			b.ReportAllocs()
			start := cpuTime(b)
			for b.Loop() {
				c.Collect(ctx)
			}
			reportCPU(b, start)
		})
	}
}

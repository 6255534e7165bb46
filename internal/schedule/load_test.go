//go:build unix

package schedule

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// loadJobs returns 10,000 assets × 3 checks at the given interval. Check ids
// are drawn at random, as a hub's auto-incremented ids of checks added over
// time are, from a fixed seed.
func loadJobs(interval time.Duration) []Job {
	rng := rand.New(rand.NewPCG(3, 4)) // #nosec G404 -- reproducible test inputs, not secrets
	jobs := make([]Job, 0, 30000)
	for a := range uint64(10000) {
		for range 3 {
			jobs = append(jobs, Job{ID: JobID{AssetID: 1000 + a, CheckID: rng.Uint64N(10_000_000)}, Interval: interval})
		}
	}
	return jobs
}

// slotsBetween counts the runs the jobs have due in (from, to].
func slotsBetween(jobs []Job, from, to time.Time) uint64 {
	var n uint64
	for _, j := range jobs {
		n += uint64(len(slots(from, to, j.ID, j.Interval)))
	}
	return n
}

func cpuTime(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestLoad measures, with the real clock, the CPU the scheduler uses to run
// 30,000 jobs with a no-op RunFunc, and how late runs start. By default it
// runs the fast case for one interval (6 s); the full measurement takes a
// few minutes, so it runs only when asked:
//
//	SCHEDULE_LOAD=1 go test -run TestLoad -v ./internal/schedule
//
// SCHEDULE_LOAD_SPAN sets how long each case is measured (default: two
// intervals). The CPU figure is the whole test process's, so it includes the
// goroutine and context of every run, the garbage collector and the control
// sleeper. On a machine that is itself overloaded the lateness reflects the
// machine: compare it with the control's oversleep.
func TestLoad(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
	}{
		{"30000 jobs every 60 s", time.Minute},
		{"30000 jobs every 6 s", 6 * time.Second},
	}
	full := os.Getenv("SCHEDULE_LOAD") != ""
	if !full {
		tests = tests[1:]
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			span := 2 * tt.interval
			if !full {
				span = tt.interval
			}
			if v := os.Getenv("SCHEDULE_LOAD_SPAN"); v != "" {
				d, err := time.ParseDuration(v)
				if err != nil {
					t.Fatalf("SCHEDULE_LOAD_SPAN: %v", err)
				}
				span = d
			}
			s := New(func(context.Context, Job, time.Time) {}, Options{})
			jobs := loadJobs(tt.interval)
			runtime.GC()

			cpu0, wall0 := cpuTime(t), time.Now()
			if err := s.Set(jobs); err != nil {
				t.Fatal(err)
			}
			setCPU, setWall := cpuTime(t)-cpu0, time.Since(wall0)
			setBefore, setAfter := wall0, wall0.Add(setWall)

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx) }()
			cpu0, wall0 = cpuTime(t), time.Now()
			// A control: how late a plain 10 ms sleeper in the same process
			// wakes, which shows stalls of the machine rather than of the
			// scheduler.
			var oversleep time.Duration
			for time.Since(wall0) < span {
				t0 := time.Now()
				time.Sleep(10 * time.Millisecond)
				oversleep = max(oversleep, time.Since(t0)-10*time.Millisecond)
			}
			cpu, wall := cpuTime(t)-cpu0, time.Since(wall0)
			snapshot := time.Now()
			st := s.Stats()
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			core := 100 * cpu.Seconds() / wall.Seconds()
			perMinute := time.Duration(float64(cpu) / wall.Minutes())
			t.Logf("Set of %d jobs: %v wall, %v CPU", len(jobs), setWall.Round(time.Millisecond), setCPU.Round(time.Millisecond))
			t.Logf("%d runs in %v (%.0f runs/s): %v CPU = %v CPU per minute = %.2f%% of one core",
				st.Runs, wall.Round(time.Millisecond), float64(st.Runs)/wall.Seconds(),
				cpu.Round(time.Millisecond), perMinute.Round(time.Millisecond), core)
			t.Logf("max lateness %v, late (> %v) %d, skipped %d, missed %d, max queued %d; control: a 10 ms sleeper overslept by up to %v",
				st.MaxLateness, LateThreshold, st.Late, st.Skipped, st.Missed, st.MaxQueued, oversleep)
			// Every slot more than LateThreshold old has started; none in the
			// future has.
			least := slotsBetween(jobs, setAfter, snapshot.Add(-LateThreshold))
			most := slotsBetween(jobs, setBefore, snapshot)
			if st.Runs < least || st.Runs > most {
				t.Errorf("%d runs, want between %d and %d", st.Runs, least, most)
			}
			// A machine that stalls the whole process delays every timer; the
			// scheduler is judged on the lateness it adds to that.
			allowed := LateThreshold
			if oversleep > 100*time.Millisecond {
				allowed += oversleep
				t.Logf("the machine stalled the process for up to %v: allowing lateness up to %v", oversleep, allowed)
			}
			if st.MaxLateness > allowed || st.Skipped != 0 {
				t.Errorf("runs started late or were skipped: %+v", st)
			}
			if limit := 10 * float64(time.Minute) / float64(tt.interval); core > limit {
				t.Errorf("%.2f%% of a core, want under %.1f%% (10%% at 60 s, scaled by the rate)", core, limit)
			}
		})
	}
}

// BenchmarkDispatch measures the scheduler's cost per run, driven by the
// fake clock through one interval of 30,000 jobs per iteration; the cost of
// the fake clock's hand-offs is included.
func BenchmarkDispatch(b *testing.B) {
	clock := NewFakeClock(ts1700)
	s := New(func(context.Context, Job, time.Time) {}, Options{Clock: clock})
	jobs := loadJobs(time.Minute)
	if err := s.Set(jobs); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	clock.BlockUntil(1)
	b.ResetTimer()
	for range b.N {
		end := clock.Now().Add(time.Minute)
		for now := clock.Now(); now.Before(end); now = clock.Now() {
			step := end.Sub(now)
			if next, ok := clock.Next(); ok && next.Before(end) {
				step = max(next.Sub(now), 0)
			}
			clock.Advance(step)
			clock.BlockUntil(1)
		}
	}
	b.StopTimer()
	runs := s.Stats().Runs
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(runs), "ns/run")
	b.ReportMetric(float64(runs)/float64(b.N), "runs/op")
}

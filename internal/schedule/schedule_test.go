package schedule

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitLimit bounds every real-time wait of these tests, so that a bug fails
// a test instead of hanging it.
const waitLimit = 5 * time.Second

// record is one call of the RunFunc.
type record struct {
	id        JobID
	scheduled time.Time
	payload   any
	deadline  time.Time
}

// harness runs a Scheduler on a FakeClock and records its runs.
type harness struct {
	t     *testing.T
	clock *FakeClock
	s     *Scheduler

	mu   sync.Mutex
	runs []record
	// behave, when set, is called by the RunFunc after recording the run.
	behave func(ctx context.Context, job Job)
	// quiet, when set, reports whether the runs have done what they will do
	// until the clock moves again; advance waits for it. By default every
	// run has returned and nothing is queued.
	quiet func() bool

	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, maxConcurrent int, behave func(ctx context.Context, job Job)) *harness {
	t.Helper()
	h := &harness{t: t, clock: NewFakeClock(ts1700), behave: behave, done: make(chan error, 1)}
	h.s = New(h.runFunc, Options{Clock: h.clock, MaxConcurrent: maxConcurrent})
	h.quiet = func() bool {
		st := h.s.Stats()
		return st.Running == 0 && st.Queued == 0
	}
	return h
}

func (h *harness) runFunc(ctx context.Context, job Job, scheduled time.Time) {
	d, _ := ctx.Deadline()
	h.mu.Lock()
	h.runs = append(h.runs, record{id: job.ID, scheduled: scheduled, payload: job.Payload, deadline: d})
	h.mu.Unlock()
	if h.behave != nil {
		h.behave(ctx, job)
	}
}

// start runs the scheduler until the test ends.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.s.Run(ctx) }()
	h.t.Cleanup(func() { h.stop() })
	// A slot that passes before Run has started is missed: let it start.
	h.waitFor("Run to start", h.s.Running)
}

// stop cancels Run and waits for it to return.
func (h *harness) stop() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v", err)
		}
	case <-time.After(waitLimit):
		h.t.Fatal("Run did not return after its context was cancelled")
	}
}

// advance moves the clock and waits until the scheduler's loop has dealt
// with what came due and armed its timer again, and the runs are quiet.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	h.settle()
	if h.quiet != nil {
		h.waitFor("the runs to settle", h.quiet)
	}
}

func (h *harness) settle() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := h.clock.BlockUntilContext(ctx, 1); err != nil {
		h.t.Fatal("the scheduler did not arm its timer again")
	}
}

// advanceTo advances from one timer's deadline to the next up to t, so that
// every run is dispatched at exactly its scheduled time.
func (h *harness) advanceTo(t time.Time) {
	h.t.Helper()
	for now := h.clock.Now(); now.Before(t); now = h.clock.Now() {
		step := t.Sub(now)
		if next, ok := h.clock.Next(); ok && next.Before(t) {
			step = max(next.Sub(now), 0)
		}
		h.advance(step)
	}
}

// waitRuns waits until the RunFunc has been called as many times as the
// scheduler has started runs, and returns the records.
func (h *harness) waitRuns() []record {
	h.t.Helper()
	var got []record
	h.waitFor("every started run to reach the RunFunc", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		got = slices.Clone(h.runs)
		return uint64(len(got)) == h.s.Stats().Runs
	})
	return got
}

// runsOf returns the scheduled times of the recorded runs of id.
func runsOf(recs []record, id JobID) []time.Time {
	var ts []time.Time
	for _, r := range recs {
		if r.id == id {
			ts = append(ts, r.scheduled)
		}
	}
	return ts
}

// waitFor polls cond, which depends on goroutines the fake clock does not
// synchronise with (a RunFunc returning, a worker taking the next run).
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; stats %+v", what, h.s.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// slots returns the run times of a job from NextRun(from) on, up to until.
func slots(from, until time.Time, id JobID, interval time.Duration) []time.Time {
	var ts []time.Time
	for t := NextRun(from, id.AssetID, id.CheckID, interval); !t.After(until); t = t.Add(interval) {
		ts = append(ts, t)
	}
	return ts
}

// hangs tracks runs that block until their context is done.
type hangs struct {
	mu   sync.Mutex
	ctxs map[JobID]context.Context
}

// hang blocks until ctx is done and returns its error.
func (hg *hangs) hang(ctx context.Context, id JobID) error {
	hg.mu.Lock()
	if hg.ctxs == nil {
		hg.ctxs = make(map[JobID]context.Context)
	}
	hg.ctxs[id] = ctx
	hg.mu.Unlock()
	<-ctx.Done()
	hg.mu.Lock()
	delete(hg.ctxs, id)
	hg.mu.Unlock()
	return ctx.Err()
}

// live returns the number of hanging runs whose context is not yet done.
func (hg *hangs) live() int {
	hg.mu.Lock()
	defer hg.mu.Unlock()
	n := 0
	for _, ctx := range hg.ctxs {
		if ctx.Err() == nil {
			n++
		}
	}
	return n
}

// quietWith returns a quiet func for h whose runs hang in hg: only live
// hanging runs hold a slot, and runs are queued only when all slots are
// held.
func quietWith(h *harness, hg *hangs, maxConcurrent int) func() bool {
	return func() bool {
		live := hg.live()
		st := h.s.Stats()
		return st.Running == live && (st.Queued == 0 || live == maxConcurrent)
	}
}

func equalTimes(a, b []time.Time) bool {
	return slices.EqualFunc(a, b, time.Time.Equal)
}

func TestSchedulerRunsAtSlots(t *testing.T) {
	tests := []struct {
		name string
		jobs []Job
		span time.Duration
	}{
		{"one job", []Job{{ID: JobID{1, 1}, Interval: time.Minute}}, 3 * time.Minute},
		{"three checks of an asset", []Job{
			{ID: JobID{7, 100}, Interval: 10 * time.Second},
			{ID: JobID{7, 101}, Interval: 30 * time.Second},
			{ID: JobID{7, 102}, Interval: time.Minute},
		}, 2 * time.Minute},
		{"same second, different offsets", []Job{
			{ID: JobID{0, 2}, Interval: 5 * time.Second},
			{ID: JobID{1, 1}, Interval: 5 * time.Second},
			{ID: JobID{31, 3}, Interval: 5 * time.Second},
			{ID: JobID{33, 1}, Interval: 5 * time.Second},
		}, 20 * time.Second},
		{"due at once", []Job{{ID: JobID{10, 10}, Interval: time.Minute}}, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 0, nil)
			if err := h.s.Set(tt.jobs); err != nil {
				t.Fatal(err)
			}
			h.start()
			end := ts1700.Add(tt.span)
			h.advanceTo(end)
			recs := h.waitRuns()
			for _, j := range tt.jobs {
				want := slots(ts1700, end, j.ID, j.Interval)
				if got := runsOf(recs, j.ID); !equalTimes(got, want) {
					t.Errorf("job %s ran at %v, want %v", j.ID, got, want)
				}
			}
			st := h.s.Stats()
			if st.MaxLateness != 0 || st.Late != 0 || st.Skipped != 0 || st.Missed != 0 {
				t.Errorf("stats %+v, want no lateness, skips or misses", st)
			}
			for _, r := range recs {
				if want := r.scheduled.Add(Timeout(jobInterval(tt.jobs, r.id))); !r.deadline.Equal(want) {
					t.Errorf("run of %s at %v has deadline %v, want %v", r.id, r.scheduled, r.deadline, want)
				}
			}
		})
	}
}

func jobInterval(jobs []Job, id JobID) time.Duration {
	for _, j := range jobs {
		if j.ID == id {
			return j.Interval
		}
	}
	return 0
}

func TestSchedulerIntervalChange(t *testing.T) {
	id := JobID{3, 4}
	tests := []struct {
		name        string
		newInterval time.Duration
		viaSet      bool
	}{
		{"shorter by Upsert", 10 * time.Second, false},
		{"shorter by Set", 10 * time.Second, true},
		{"longer by Upsert", 5 * time.Minute, false},
		{"longer by Set", 5 * time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 0, nil)
			if err := h.s.Upsert(Job{ID: id, Interval: time.Minute}); err != nil {
				t.Fatal(err)
			}
			h.start()
			first := NextRun(ts1700, id.AssetID, id.CheckID, time.Minute)
			h.advanceTo(first.Add(3 * time.Second))
			changed := h.clock.Now()
			j := Job{ID: id, Interval: tt.newInterval}
			var err error
			if tt.viaSet {
				err = h.s.Set([]Job{j})
			} else {
				err = h.s.Upsert(j)
			}
			if err != nil {
				t.Fatal(err)
			}
			end := changed.Add(2 * tt.newInterval)
			h.advanceTo(end)
			want := append([]time.Time{first}, slots(changed, end, id, tt.newInterval)...)
			if got := runsOf(h.waitRuns(), id); !equalTimes(got, want) {
				t.Errorf("ran at %v, want %v", got, want)
			}
			if st := h.s.Stats(); st.MaxLateness != 0 {
				t.Errorf("max lateness %v, want 0", st.MaxLateness)
			}
		})
	}
}

func TestSchedulerSetKeepsUntouchedJobs(t *testing.T) {
	a := Job{ID: JobID{1, 2}, Interval: time.Minute, Payload: "a"}
	b := Job{ID: JobID{5, 30}, Interval: time.Minute, Payload: "b"} // due at :15
	gone := Job{ID: JobID{8, 20}, Interval: time.Minute}            // due at :08
	h := newHarness(t, 0, nil)
	if err := h.s.Set([]Job{a, b, gone}); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.advanceTo(ts1700.Add(30 * time.Second))
	// a unchanged; b with a new payload and the same interval; gone removed;
	// c new.
	b2 := b
	b2.Payload = "b2"
	c := Job{ID: JobID{2, 2}, Interval: 20 * time.Second}
	changed := h.clock.Now()
	if err := h.s.Set([]Job{a, b2, c}); err != nil {
		t.Fatal(err)
	}
	end := ts1700.Add(3 * time.Minute)
	h.advanceTo(end)
	recs := h.waitRuns()
	tests := []struct {
		id   JobID
		want []time.Time
	}{
		{a.ID, slots(ts1700, end, a.ID, a.Interval)},
		{b.ID, slots(ts1700, end, b.ID, b.Interval)},
		{gone.ID, slots(ts1700, changed, gone.ID, gone.Interval)},
		{c.ID, slots(changed, end, c.ID, c.Interval)},
	}
	for _, tt := range tests {
		if got := runsOf(recs, tt.id); !equalTimes(got, tt.want) {
			t.Errorf("job %s ran at %v, want %v", tt.id, got, tt.want)
		}
	}
	for _, r := range recs {
		if r.id != b.ID {
			continue
		}
		want := "b"
		if r.scheduled.After(changed) {
			want = "b2"
		}
		if r.payload != want {
			t.Errorf("run of b at %v had payload %v, want %v", r.scheduled, r.payload, want)
		}
	}
	if st := h.s.Stats(); st.Jobs != 3 {
		t.Errorf("Stats().Jobs = %d, want 3", st.Jobs)
	}
}

func TestSchedulerRemove(t *testing.T) {
	keep := Job{ID: JobID{1, 1}, Interval: 10 * time.Second}
	drop := Job{ID: JobID{2, 2}, Interval: 10 * time.Second}
	tests := []struct {
		name   string
		remove func(s *Scheduler)
	}{
		{"Remove", func(s *Scheduler) { s.Remove(drop.ID, JobID{99, 99}) }},
		{"Set without it", func(s *Scheduler) { _ = s.Set([]Job{keep}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ended := make(chan error, 10)
			var hg hangs
			h := newHarness(t, 0, func(ctx context.Context, job Job) {
				if job.ID == drop.ID {
					ended <- hg.hang(ctx, job.ID)
				}
			})
			h.quiet = quietWith(h, &hg, DefaultMaxConcurrent)
			if err := h.s.Set([]Job{keep, drop}); err != nil {
				t.Fatal(err)
			}
			h.start()
			first := NextRun(ts1700, drop.ID.AssetID, drop.ID.CheckID, drop.Interval)
			h.advanceTo(first.Add(time.Second))
			h.waitRuns()
			removed := h.clock.Now()
			tt.remove(h.s)
			select {
			case err := <-ended:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("removed job's run ended with %v, want context.Canceled", err)
				}
			case <-time.After(waitLimit):
				t.Fatal("removing a job did not cancel its run")
			}
			end := ts1700.Add(time.Minute)
			h.advanceTo(end)
			recs := h.waitRuns()
			if got := runsOf(recs, drop.ID); !equalTimes(got, []time.Time{first}) {
				t.Errorf("removed job ran at %v, want only %v", got, first)
			}
			if got, want := runsOf(recs, keep.ID), slots(ts1700, end, keep.ID, keep.Interval); !equalTimes(got, want) {
				t.Errorf("kept job ran at %v, want %v", got, want)
			}
			if st := h.s.Stats(); st.Jobs != 1 || st.Running != 0 {
				t.Errorf("stats %+v after removal (at %v), want one job and nothing running", st, removed)
			}
		})
	}
}

func TestSchedulerHungJob(t *testing.T) {
	hung := Job{ID: JobID{1, 0}, Interval: 10 * time.Second}  // due at :01.03125
	other := Job{ID: JobID{2, 0}, Interval: 10 * time.Second} // due at :02.0625
	tests := []struct {
		name          string
		maxConcurrent int
		wantLateness  time.Duration
	}{
		// With a free slot the other job starts on time.
		{"free slot", 2, 0},
		// With one slot it waits for the hung run's timeout, and no longer.
		{"single slot", 1, Timeout(hung.Interval) - time.Second - spreadStep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hg hangs
			h := newHarness(t, tt.maxConcurrent, func(ctx context.Context, job Job) {
				if job.ID == hung.ID {
					_ = hg.hang(ctx, job.ID)
				}
			})
			h.quiet = quietWith(h, &hg, tt.maxConcurrent)
			if err := h.s.Set([]Job{hung, other}); err != nil {
				t.Fatal(err)
			}
			h.start()
			otherAt := NextRun(ts1700, other.ID.AssetID, other.ID.CheckID, other.Interval)
			h.advanceTo(otherAt)
			wantQueued := 0
			if tt.maxConcurrent == 1 {
				wantQueued = 1
			}
			if st := h.s.Stats(); st.Queued != wantQueued {
				t.Fatalf("stats %+v, want %d queued", st, wantQueued)
			}
			// Over several intervals the hung run is cancelled at each
			// timeout and both jobs keep their slots.
			end := ts1700.Add(time.Minute)
			h.advanceTo(end)
			recs := h.waitRuns()
			for _, j := range []Job{hung, other} {
				if got, want := runsOf(recs, j.ID), slots(ts1700, end, j.ID, j.Interval); !equalTimes(got, want) {
					t.Errorf("job %s ran at %v, want %v", j.ID, got, want)
				}
			}
			st := h.s.Stats()
			if st.MaxLateness != tt.wantLateness || st.Skipped != 0 || st.Overruns != 0 {
				t.Errorf("stats %+v, want max lateness %v and no skips or overruns", st, tt.wantLateness)
			}
		})
	}
}

func TestSchedulerConcurrencyBound(t *testing.T) {
	tests := []struct {
		name          string
		maxConcurrent int
		jobs          int
	}{
		{"bound below the jobs", 3, 10},
		{"bound of one", 1, 4},
		{"bound above the jobs", 20, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			var mu sync.Mutex
			running, peak := 0, 0
			h := newHarness(t, tt.maxConcurrent, func(ctx context.Context, job Job) {
				mu.Lock()
				running++
				peak = max(peak, running)
				mu.Unlock()
				<-release
				mu.Lock()
				running--
				mu.Unlock()
			})
			var jobs []Job
			for i := range tt.jobs {
				// All due in the same second, 1/32 s apart.
				jobs = append(jobs, Job{ID: JobID{uint64(i), uint64(40 - i)}, Interval: time.Minute})
			}
			if err := h.s.Set(jobs); err != nil {
				t.Fatal(err)
			}
			h.quiet = nil
			h.start()
			h.advanceTo(ts1700.Add(21 * time.Second))
			bound := min(tt.maxConcurrent, tt.jobs)
			h.waitFor("the slots to fill", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return running == bound
			})
			st := h.s.Stats()
			if st.Queued != tt.jobs-bound || st.MaxQueued != tt.jobs-bound || st.Runs != uint64(bound) { // #nosec G115 -- a small count
				t.Errorf("stats %+v, want %d running and %d queued", st, bound, tt.jobs-bound)
			}
			close(release)
			h.waitFor("every job to run", func() bool {
				st := h.s.Stats()
				return st.Runs == uint64(tt.jobs) && st.Running == 0 // #nosec G115 -- a small count
			})
			mu.Lock()
			defer mu.Unlock()
			if peak != bound {
				t.Errorf("peak concurrency %d, want %d", peak, bound)
			}
		})
	}
}

func TestSchedulerSkipsBusySlots(t *testing.T) {
	// The run ignores its context, so it is still going at its next slots.
	stuck := Job{ID: JobID{1, 1}, Interval: 10 * time.Second}
	other := Job{ID: JobID{2, 1}, Interval: 10 * time.Second}
	release := make(chan struct{})
	var stuckIn atomic.Int64
	h := newHarness(t, 0, func(ctx context.Context, job Job) {
		if job.ID == stuck.ID {
			stuckIn.Add(1)
			<-release
			stuckIn.Add(-1)
		}
	})
	var released atomic.Bool
	h.quiet = func() bool {
		want := stuckIn.Load()
		if released.Load() {
			want = 0
		}
		st := h.s.Stats()
		return int64(st.Running) == want && st.Queued == 0
	}
	if err := h.s.Set([]Job{stuck, other}); err != nil {
		t.Fatal(err)
	}
	h.start()
	first := NextRun(ts1700, stuck.ID.AssetID, stuck.ID.CheckID, stuck.Interval)
	h.advanceTo(first.Add(3*stuck.Interval + time.Second))
	st := h.s.Stats()
	if st.Skipped != 3 {
		t.Errorf("Skipped = %d, want 3", st.Skipped)
	}
	released.Store(true)
	close(release)
	h.waitFor("the stuck run to return", h.quiet)
	end := first.Add(5 * stuck.Interval)
	h.advanceTo(end)
	recs := h.waitRuns()
	want := []time.Time{first, first.Add(4 * stuck.Interval), first.Add(5 * stuck.Interval)}
	if got := runsOf(recs, stuck.ID); !equalTimes(got, want) {
		t.Errorf("stuck job ran at %v, want %v", got, want)
	}
	if got, want := runsOf(recs, other.ID), slots(ts1700, end, other.ID, other.Interval); !equalTimes(got, want) {
		t.Errorf("other job ran at %v, want %v", got, want)
	}
	if st := h.s.Stats(); st.Overruns != 1 || st.MaxLateness != 0 {
		t.Errorf("stats %+v, want one overrun and no lateness", st)
	}
}

func TestSchedulerRunStops(t *testing.T) {
	job := Job{ID: JobID{4, 4}, Interval: time.Minute}
	queued := Job{ID: JobID{5, 4}, Interval: time.Minute}
	started := make(chan struct{}, 1)
	finish := make(chan struct{})
	var restarted atomic.Bool
	var ctxErr error
	h := newHarness(t, 1, func(ctx context.Context, j Job) {
		if restarted.Load() {
			return
		}
		started <- struct{}{}
		<-ctx.Done()
		ctxErr = ctx.Err()
		<-finish // a run that takes a while to wind up
	})
	h.quiet = nil
	if err := h.s.Set([]Job{job, queued}); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.advanceTo(NextRun(ts1700, queued.ID.AssetID, queued.ID.CheckID, queued.Interval))
	<-started
	if st := h.s.Stats(); st.Running != 1 || st.Queued != 1 {
		t.Fatalf("stats %+v, want one running and one queued", st)
	}
	h.cancel()
	select {
	case <-h.done:
		t.Fatal("Run returned before its running job did")
	case <-time.After(10 * time.Millisecond):
	}
	close(finish)
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return")
	}
	h.cancel = nil
	if !errors.Is(ctxErr, context.Canceled) {
		t.Errorf("the running job's context ended with %v, want context.Canceled", ctxErr)
	}
	st := h.s.Stats()
	if st.Runs != 1 || st.Running != 0 || st.Queued != 0 {
		t.Errorf("stats %+v, want one run, none running or queued", st)
	}

	// Restarted two and a half intervals later, Run counts the slots it
	// missed (and the dropped queued run) and runs each job once, at its
	// latest slot.
	restarted.Store(true)
	h.clock.Advance(150 * time.Second)
	h.start()
	h.settle()
	h.waitFor("the restarted runs", func() bool { return h.s.Stats().Runs == 3 })
	if st := h.s.Stats(); st.Missed != 3 {
		t.Errorf("Missed = %d, want 3", st.Missed)
	}
}

func TestSchedulerClockStep(t *testing.T) {
	job := Job{ID: JobID{1, 1}, Interval: time.Minute}
	first := NextRun(ts1700, job.ID.AssetID, job.ID.CheckID, job.Interval)
	wake := first.Add(job.Interval) // when the timer armed after the first run fires
	tests := []struct {
		name       string
		step       time.Duration
		want       func(end time.Time) []time.Time
		missed     uint64
		clockSteps uint64
	}{
		{
			name: "back an hour reschedules from the new time",
			step: -time.Hour,
			want: func(end time.Time) []time.Time {
				return append([]time.Time{first}, slots(wake.Add(-time.Hour), end, job.ID, job.Interval)...)
			},
			clockSteps: 1,
		},
		{
			name: "forward an hour misses the slots in between",
			step: time.Hour,
			want: func(end time.Time) []time.Time {
				return append([]time.Time{first}, slots(wake.Add(time.Hour-time.Second), end, job.ID, job.Interval)...)
			},
			missed: 60,
		},
		{
			name: "back half a second changes nothing",
			step: -500 * time.Millisecond,
			want: func(end time.Time) []time.Time {
				return slots(ts1700, end, job.ID, job.Interval)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 0, nil)
			if err := h.s.Upsert(job); err != nil {
				t.Fatal(err)
			}
			h.start()
			h.advanceTo(first.Add(time.Second))
			h.clock.Step(tt.step)
			end := h.clock.Now().Add(3 * time.Minute)
			h.advanceTo(end)
			if got, want := runsOf(h.waitRuns(), job.ID), tt.want(end); !equalTimes(got, want) {
				t.Errorf("ran at %v, want %v", got, want)
			}
			st := h.s.Stats()
			if st.Missed != tt.missed || st.ClockSteps != tt.clockSteps || st.MaxLateness != 0 {
				t.Errorf("stats %+v, want %d missed, %d clock steps and no lateness", st, tt.missed, tt.clockSteps)
			}
		})
	}
}

func TestSchedulerRunTwice(t *testing.T) {
	h := newHarness(t, 0, nil)
	h.start()
	h.waitFor("Run to start", func() bool {
		h.s.mu.Lock()
		defer h.s.mu.Unlock()
		return h.s.runCtx != nil
	})
	if err := h.s.Run(context.Background()); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run returned %v, want ErrRunning", err)
	}
}

func TestSchedulerPanic(t *testing.T) {
	job := Job{ID: JobID{6, 6}, Interval: 10 * time.Second}
	h := newHarness(t, 1, func(ctx context.Context, j Job) { panic("probe bug") })
	if err := h.s.Upsert(job); err != nil {
		t.Fatal(err)
	}
	h.start()
	end := ts1700.Add(30 * time.Second)
	h.advanceTo(end)
	h.waitFor("the runs", func() bool {
		return h.s.Stats().Panics == uint64(len(slots(ts1700, end, job.ID, job.Interval)))
	})
}

func TestSchedulerRejectsInvalidJobs(t *testing.T) {
	h := newHarness(t, 0, nil)
	good := Job{ID: JobID{1, 1}, Interval: time.Minute}
	tests := []struct {
		name string
		set  func() error
	}{
		{"Set", func() error { return h.s.Set([]Job{good, {ID: JobID{2, 2}}}) }},
		{"Upsert", func() error { return h.s.Upsert(Job{ID: JobID{3, 3}, Interval: -time.Second}) }},
	}
	for _, tt := range tests {
		if err := tt.set(); !errors.Is(err, ErrInvalidInterval) {
			t.Errorf("%s: error %v, want ErrInvalidInterval", tt.name, err)
		}
	}
	if st := h.s.Stats(); st.Jobs != 1 {
		t.Errorf("Jobs = %d, want the one valid job", st.Jobs)
	}
}

func TestJobIDString(t *testing.T) {
	if got := (JobID{12, 345}).String(); got != "12/345" {
		t.Errorf("String() = %q", got)
	}
}

// Package schedule runs each (asset, check) at its interval, spread over the
// interval as InfraSonar's probes spread them, under a timeout, with bounded
// concurrency and an injected clock.
//
// One timer drives a min-heap of next-run times, so the cost of the
// scheduler does not grow with a goroutine or a timer per job. A due run
// never waits on another run: when all concurrency slots are taken it waits
// in a FIFO queue and starts when a slot frees, and a hung run holds its slot
// only until its timeout cancels its context. A run whose previous run is
// still queued or running at its next slot skips that slot rather than
// stacking up behind it.
//
// Time comes from an injected Clock. The schedule follows the wall clock,
// because the slots it hands out become Unix timestamps: a step forward
// misses the slots in between, a step back reschedules every job. Tests
// drive it with a FakeClock, which the tests of other packages may use too.
package schedule

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// DefaultMaxConcurrent is the number of runs that may be in progress at
// once when Options.MaxConcurrent is not set.
const DefaultMaxConcurrent = 256

// LateThreshold is how long after its scheduled time a run may start before
// Stats counts it as late.
const LateThreshold = time.Second

// overrunGrace is how long past its deadline a run may return before it is
// counted and logged as ignoring its context.
const overrunGrace = time.Second

// idleWait is how long the timer is armed for when there are no jobs; the
// wake-up that follows finds nothing to do.
const idleWait = time.Hour

// clockStepTolerance is how far the wall clock may be seen to go back before
// the jobs are rescheduled from the new time.
const clockStepTolerance = time.Second

// ErrInvalidInterval is returned for a job whose interval is not positive.
var ErrInvalidInterval = errors.New("interval must be positive")

// ErrRunning is returned by Run when the scheduler is already running.
var ErrRunning = errors.New("scheduler is already running")

// JobID identifies a job: one check of one asset.
type JobID struct {
	AssetID uint64
	CheckID uint64
}

// String returns the id as "asset/check".
func (id JobID) String() string {
	return strconv.FormatUint(id.AssetID, 10) + "/" + strconv.FormatUint(id.CheckID, 10)
}

// Job is one check of one asset to run at an interval.
type Job struct {
	// ID selects the job and, through NextRun, its place in the interval.
	ID JobID
	// Interval is the time between two runs; it must be positive.
	Interval time.Duration
	// Payload is handed to the RunFunc untouched (the probe's target, say).
	Payload any
}

// Validate reports whether the scheduler can run j.
func (j Job) Validate() error {
	if j.Interval <= 0 {
		return fmt.Errorf("job %s: interval %v: %w", j.ID, j.Interval, ErrInvalidInterval)
	}
	return nil
}

// RunFunc runs a job once. ctx carries the run's deadline, Timeout(interval)
// after the run started, and is cancelled as well when the job is removed or
// the scheduler stops; a RunFunc must return soon after ctx is done, because
// until it returns it holds a concurrency slot. scheduled is the time the run
// was due (its slot plus the spread offset, which is under a second), so
// scheduled.Unix() is the slot to report as framework.timestamp.
type RunFunc func(ctx context.Context, job Job, scheduled time.Time)

// Options configure a Scheduler. The zero value is usable.
type Options struct {
	// Clock is the source of time; nil means RealClock().
	Clock Clock
	// MaxConcurrent bounds the runs in progress; 0 or less means
	// DefaultMaxConcurrent.
	MaxConcurrent int
	// Logger receives warnings about runs that panic or ignore their
	// context; nil discards them.
	Logger *slog.Logger
}

// Stats are counters of a Scheduler since it was made.
type Stats struct {
	// Jobs is the number of jobs in the set.
	Jobs int
	// Runs is the number of runs started.
	Runs uint64
	// Late is the number of runs that started more than LateThreshold after
	// their scheduled time.
	Late uint64
	// MaxLateness is the longest time between a run's scheduled time and its
	// start.
	MaxLateness time.Duration
	// Skipped is the number of slots not run because the job's previous run
	// was still queued or in progress.
	Skipped uint64
	// Missed is the number of slots passed over because the scheduler itself
	// was not running at the time (stopped, suspended, or the clock jumped),
	// counting the queued runs dropped when Run stopped.
	Missed uint64
	// Running is the number of runs in progress.
	Running int
	// Queued is the number of due runs waiting for a concurrency slot.
	Queued int
	// MaxQueued is the largest Queued seen.
	MaxQueued int
	// Overruns is the number of runs that returned more than a second after
	// their deadline, which means their RunFunc ignores its context.
	Overruns uint64
	// Panics is the number of runs whose RunFunc panicked.
	Panics uint64
	// ClockSteps is the number of times the wall clock was seen to go back
	// by more than a second, after which every job was rescheduled by
	// NextRun from the new time. (A step forward needs nothing: the slots
	// it jumped over are missed.)
	ClockSteps uint64
}

// Scheduler runs jobs at their intervals. Its methods are safe for
// concurrent use.
type Scheduler struct {
	run   RunFunc
	clock Clock
	log   *slog.Logger
	max   int
	timer Timer
	wg    sync.WaitGroup // run goroutines, added to only by Run

	mu      sync.Mutex
	jobs    map[JobID]*entry
	due     jobHeap
	queue   runQueue
	active  int             // goroutines holding a concurrency slot
	runCtx  context.Context // set while Run runs
	lastNow time.Time       // latest time read, to see the clock step back
	stats   Stats
}

// entry is the scheduler's state of one job.
type entry struct {
	job     Job
	next    time.Time // scheduled time of the next run
	index   int       // in the heap
	busy    bool      // a run is queued or in progress
	cancel  context.CancelFunc
	removed bool
}

// run is one started run of a job.
type run struct {
	e         *entry
	job       Job
	scheduled time.Time
	deadline  time.Time
	ctx       context.Context
	cancel    context.CancelFunc
}

// New returns a Scheduler that calls run for each due job once Run is
// called. It panics if run is nil.
func New(run RunFunc, opts Options) *Scheduler {
	if run == nil {
		panic("schedule: New with a nil RunFunc")
	}
	s := &Scheduler{
		run:   run,
		clock: opts.Clock,
		log:   opts.Logger,
		max:   opts.MaxConcurrent,
		jobs:  make(map[JobID]*entry),
	}
	if s.clock == nil {
		s.clock = RealClock()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.max <= 0 {
		s.max = DefaultMaxConcurrent
	}
	s.timer = s.clock.NewTimer(idleWait)
	return s
}

// Set replaces the whole set of jobs. A job already in the set keeps its
// next run time unless its interval changed, in which case it moves at once
// to the next slot of its new interval; its new payload is used from its
// next run on. A job no longer in the set stops, and a run of it in progress
// has its context cancelled. Invalid jobs are left out and reported in the
// returned error; the valid ones are set all the same. When an id appears
// twice, the last job wins.
func (s *Scheduler) Set(jobs []Job) error {
	var errs []error
	want := make(map[JobID]Job, len(jobs))
	for _, j := range jobs {
		if err := j.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		want[j.ID] = j
	}
	s.mu.Lock()
	now := s.nowLocked()
	for id, e := range s.jobs {
		if _, ok := want[id]; !ok {
			s.removeLocked(e)
		}
	}
	for _, j := range want {
		s.upsertLocked(j, now)
	}
	s.armLocked(now)
	s.mu.Unlock()
	return errors.Join(errs...)
}

// Upsert adds a job or changes one, as Set does for a single job.
func (s *Scheduler) Upsert(job Job) error {
	if err := job.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	s.upsertLocked(job, now)
	s.armLocked(now)
	return nil
}

// Remove stops the jobs with the given ids and cancels the context of their
// runs in progress. Unknown ids are ignored.
func (s *Scheduler) Remove(ids ...JobID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if e, ok := s.jobs[id]; ok {
			s.removeLocked(e)
		}
	}
	s.armLocked(s.nowLocked())
}

// Running reports whether Run is running: slots that pass while it is not
// are missed, not run.
func (s *Scheduler) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runCtx != nil
}

// Stats returns the scheduler's counters.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Jobs = len(s.jobs)
	st.Running = s.active
	st.Queued = s.queue.len()
	return st
}

// Run runs due jobs until ctx is done, then cancels the runs in progress,
// drops the queued ones and returns nil once every run has returned. The
// jobs stay set: Run may be called again, and slots that passed meanwhile
// are counted as missed. It returns ErrRunning if Run is already running.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.runCtx != nil {
		s.mu.Unlock()
		return ErrRunning
	}
	runCtx, cancel := context.WithCancel(ctx)
	s.runCtx = runCtx
	s.armLocked(s.nowLocked())
	s.mu.Unlock()

	for {
		select {
		case <-runCtx.Done():
			s.mu.Lock()
			s.dropQueueLocked()
			s.mu.Unlock()
			cancel()
			s.wg.Wait()
			s.mu.Lock()
			s.runCtx = nil
			s.mu.Unlock()
			return nil
		case <-s.timer.C():
			s.mu.Lock()
			now := s.nowLocked()
			skipped := s.dispatchLocked(now)
			s.armLocked(now)
			s.mu.Unlock()
			for _, sk := range skipped {
				s.log.Debug("skipping a slot: the previous run is still going",
					"asset", sk.id.AssetID, "check", sk.id.CheckID, "slot", sk.slot)
			}
		}
	}
}

// nowLocked reads the clock as wall time only. The schedule follows the
// wall clock, as the Unix timestamps it hands out must, so when the clock
// steps forward the slots in between are missed, and when it steps back
// every job is rescheduled from the new time rather than waiting for the
// old slots to come round again.
func (s *Scheduler) nowLocked() time.Time {
	now := s.clock.Now().Round(0)
	if !s.lastNow.IsZero() && now.Before(s.lastNow.Add(-clockStepTolerance)) {
		s.stats.ClockSteps++
		s.log.Warn("the clock went back: rescheduling every check", "by", s.lastNow.Sub(now))
		for _, e := range s.due {
			e.next = NextRun(now, e.job.ID.AssetID, e.job.ID.CheckID, e.job.Interval)
		}
		heap.Init(&s.due)
	}
	if now.After(s.lastNow) || now.Before(s.lastNow.Add(-clockStepTolerance)) {
		s.lastNow = now
	}
	return now
}

func (s *Scheduler) upsertLocked(j Job, now time.Time) {
	e, ok := s.jobs[j.ID]
	if !ok {
		e = &entry{job: j, next: NextRun(now, j.ID.AssetID, j.ID.CheckID, j.Interval)}
		s.jobs[j.ID] = e
		heap.Push(&s.due, e)
		return
	}
	old := e.job.Interval
	e.job = j
	if j.Interval != old {
		e.next = NextRun(now, j.ID.AssetID, j.ID.CheckID, j.Interval)
		heap.Fix(&s.due, e.index)
	}
}

func (s *Scheduler) removeLocked(e *entry) {
	heap.Remove(&s.due, e.index)
	delete(s.jobs, e.job.ID)
	e.removed = true
	if e.cancel != nil {
		e.cancel()
	}
}

// armLocked sets the timer to the earliest next run.
func (s *Scheduler) armLocked(now time.Time) {
	d := idleWait
	if len(s.due) > 0 {
		d = max(s.due[0].next.Sub(now), 0)
	}
	s.timer.Reset(d)
}

// skip is a slot skipped because its job's previous run was still going.
type skip struct {
	id   JobID
	slot time.Time
}

// dispatchLocked starts or queues every job that is due at now, and returns
// the slots it skipped.
func (s *Scheduler) dispatchLocked(now time.Time) []skip {
	var skipped []skip
	for len(s.due) > 0 {
		e := s.due[0]
		if e.next.After(now) {
			return skipped
		}
		slot := e.next
		iv := e.job.Interval
		if behind := now.Sub(slot); behind >= iv {
			k := behind / iv
			s.stats.Missed += uint64(k) // #nosec G115 -- positive
			slot = slot.Add(k * iv)
		}
		e.next = slot.Add(iv)
		heap.Fix(&s.due, 0)

		if e.busy {
			s.stats.Skipped++
			skipped = append(skipped, skip{id: e.job.ID, slot: slot})
			continue
		}
		e.busy = true
		if s.active < s.max {
			s.active++
			r := s.startLocked(e, slot, now)
			s.wg.Add(1)
			go s.work(r)
			continue
		}
		s.queue.push(queued{e: e, scheduled: slot})
		s.stats.MaxQueued = max(s.stats.MaxQueued, s.queue.len())
	}
	return skipped
}

// startLocked makes the context of a run of e and counts its start.
func (s *Scheduler) startLocked(e *entry, scheduled, now time.Time) run {
	late := now.Sub(scheduled)
	s.stats.Runs++
	if late > LateThreshold {
		s.stats.Late++
	}
	s.stats.MaxLateness = max(s.stats.MaxLateness, late)
	deadline := now.Add(Timeout(e.job.Interval))
	ctx, cancel := s.clock.WithDeadline(s.runCtx, deadline)
	e.cancel = cancel
	return run{e: e, job: e.job, scheduled: scheduled, deadline: deadline, ctx: ctx, cancel: cancel}
}

// work holds a concurrency slot: it runs r, then queued runs until the queue
// is empty.
func (s *Scheduler) work(r run) {
	defer s.wg.Done()
	for {
		s.call(r)
		r.cancel()
		s.mu.Lock()
		r.e.busy = false
		r.e.cancel = nil
		overrun := s.nowLocked().Sub(r.deadline)
		if overrun > overrunGrace {
			s.stats.Overruns++
		}
		next, ok := s.nextQueuedLocked()
		if !ok {
			s.active--
		}
		s.mu.Unlock()
		if overrun > overrunGrace {
			s.log.Warn("a check ran past its timeout: its probe ignores its context",
				"asset", r.job.ID.AssetID, "check", r.job.ID.CheckID,
				"timeout", Timeout(r.job.Interval), "overrun", overrun)
		}
		if !ok {
			return
		}
		r = next
	}
}

// call runs r, turning a panic of the RunFunc into a log line so that one
// broken probe does not take the scheduler down.
func (s *Scheduler) call(r run) {
	defer func() {
		if p := recover(); p != nil {
			s.mu.Lock()
			s.stats.Panics++
			s.mu.Unlock()
			s.log.Error("a check panicked",
				"asset", r.job.ID.AssetID, "check", r.job.ID.CheckID, "panic", fmt.Sprint(p))
		}
	}()
	s.run(r.ctx, r.job, r.scheduled)
}

func (s *Scheduler) nextQueuedLocked() (run, bool) {
	for {
		q, ok := s.queue.pop()
		if !ok {
			return run{}, false
		}
		if q.e.removed {
			continue
		}
		if s.runCtx == nil || s.runCtx.Err() != nil {
			q.e.busy = false
			s.stats.Missed++
			s.dropQueueLocked()
			return run{}, false
		}
		return s.startLocked(q.e, q.scheduled, s.nowLocked()), true
	}
}

// dropQueueLocked drops the queued runs when the scheduler stops; their
// slots count as missed.
func (s *Scheduler) dropQueueLocked() {
	for {
		q, ok := s.queue.pop()
		if !ok {
			return
		}
		q.e.busy = false
		if !q.e.removed {
			s.stats.Missed++
		}
	}
}

// jobHeap orders entries by next run time, then by id so that runs due at
// the same time start in a stable order.
type jobHeap []*entry

func (h jobHeap) Len() int { return len(h) }

func (h jobHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	if !a.next.Equal(b.next) {
		return a.next.Before(b.next)
	}
	if a.job.ID.AssetID != b.job.ID.AssetID {
		return a.job.ID.AssetID < b.job.ID.AssetID
	}
	return a.job.ID.CheckID < b.job.ID.CheckID
}

func (h jobHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *jobHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *jobHeap) Pop() any {
	old := *h
	n := len(old) - 1
	e := old[n]
	old[n] = nil
	e.index = -1
	*h = old[:n]
	return e
}

// queued is a due run waiting for a concurrency slot.
type queued struct {
	e         *entry
	scheduled time.Time
}

// runQueue is a FIFO of queued runs.
type runQueue struct {
	items []queued
	head  int
}

func (q *runQueue) len() int { return len(q.items) - q.head }

func (q *runQueue) push(r queued) {
	if q.head > 64 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	q.items = append(q.items, r)
}

func (q *runQueue) pop() (queued, bool) {
	if q.head == len(q.items) {
		return queued{}, false
	}
	r := q.items[q.head]
	q.items[q.head] = queued{}
	q.head++
	if q.head == len(q.items) {
		q.items = q.items[:0]
		q.head = 0
	}
	return r, true
}

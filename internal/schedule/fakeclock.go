package schedule

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// FakeClock is a Clock for tests: time stands still until Advance moves it,
// and Advance fires every timer that has come due, in deadline order, before
// it returns. It is safe for concurrent use. It lives outside the test files
// so that the tests of other packages can drive their schedulers with it.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	seq     uint64
	armed   []*fakeTimer
	changed chan struct{} // closed and replaced when a channel timer is armed
}

var _ Clock = (*FakeClock)(nil)

// NewFakeClock returns a FakeClock that reads start until it is advanced.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, changed: make(chan struct{})}
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the fake time has moved d past
// the current fake time. A timer with d <= 0 fires at once.
func (c *FakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clock: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armLocked(t, d)
	return t
}

// WithDeadline returns a copy of parent that is cancelled when the fake time
// reaches d; its Err then reports context.DeadlineExceeded and its Deadline
// reports d (a fake time). Contexts derived from it report
// context.Canceled rather than context.DeadlineExceeded when the fake
// deadline passes. The deadline is not counted by Waiters or BlockUntil.
func (c *FakeClock) WithDeadline(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	inner, cancel := context.WithCancelCause(parent)
	t := &fakeTimer{clock: c, fn: func() { cancel(context.DeadlineExceeded) }}
	c.mu.Lock()
	due := !d.After(c.now)
	if !due {
		c.armLocked(t, d.Sub(c.now))
	}
	c.mu.Unlock()
	if due {
		cancel(context.DeadlineExceeded)
	}
	ctx := &fakeDeadlineCtx{Context: inner, deadline: d}
	return ctx, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

// Advance moves the fake time forward by d and fires, in deadline order,
// every timer whose deadline is now reached. A channel timer delivers the new
// time on its channel; a WithDeadline context is cancelled before Advance
// returns. Goroutines woken by the fired timers run afterwards: use
// BlockUntil to wait until they have armed their next timer.
func (c *FakeClock) Advance(d time.Duration) {
	if d < 0 {
		panic("schedule: FakeClock.Advance with a negative duration")
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due, keep []*fakeTimer
	for _, t := range c.armed {
		if t.when.After(c.now) {
			keep = append(keep, t)
		} else {
			due = append(due, t)
		}
	}
	c.armed = keep
	slices.SortFunc(due, func(a, b *fakeTimer) int {
		if n := a.when.Compare(b.when); n != 0 {
			return n
		}
		return cmp.Compare(a.seq, b.seq)
	})
	var fns []func()
	for _, t := range due {
		t.armed = false
		if t.fn != nil {
			fns = append(fns, t.fn)
			continue
		}
		t.send(c.now)
	}
	c.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// Step changes the fake time by d, either way, as an NTP step or a resume
// from suspend changes the wall clock, without firing any timer or changing
// how long each has left: like the runtime's timers, which follow the
// monotonic clock, each still fires after the time it had left.
func (c *FakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.armed {
		t.when = t.when.Add(d)
	}
}

// Next returns the earliest deadline of the armed timers, those of
// WithDeadline contexts included, and false if no timer is armed. A test
// advances to it to step from one event to the next.
func (c *FakeClock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next time.Time
	for i, t := range c.armed {
		if i == 0 || t.when.Before(next) {
			next = t.when
		}
	}
	return next, len(c.armed) > 0
}

// Waiters returns the number of armed timers made by NewTimer.
func (c *FakeClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waitersLocked()
}

// BlockUntil blocks until at least n timers made by NewTimer are armed,
// which is how a test knows that the goroutines it drives have gone back to
// waiting on the clock.
func (c *FakeClock) BlockUntil(n int) {
	_ = c.BlockUntilContext(context.Background(), n)
}

// BlockUntilContext is BlockUntil that gives up, returning ctx's error, when
// ctx is done; a test uses it so that a bug fails the test instead of
// hanging it.
func (c *FakeClock) BlockUntilContext(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		if c.waitersLocked() >= n {
			c.mu.Unlock()
			return nil
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *FakeClock) waitersLocked() int {
	n := 0
	for _, t := range c.armed {
		if t.fn == nil {
			n++
		}
	}
	return n
}

// armLocked arms t to fire d from now; with d <= 0 a channel timer fires at
// once (a function timer must be handled by the caller).
func (c *FakeClock) armLocked(t *fakeTimer, d time.Duration) {
	c.seq++
	t.seq = c.seq
	t.when = c.now.Add(d)
	if d <= 0 && t.fn == nil {
		t.send(c.now)
		return
	}
	t.armed = true
	c.armed = append(c.armed, t)
	if t.fn == nil {
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

func (c *FakeClock) disarmLocked(t *fakeTimer) bool {
	if !t.armed {
		return false
	}
	t.armed = false
	if i := slices.Index(c.armed, t); i >= 0 {
		c.armed = slices.Delete(c.armed, i, i+1)
	}
	return true
}

type fakeTimer struct {
	clock *FakeClock
	ch    chan time.Time // nil for a WithDeadline timer
	fn    func()         // nil for a NewTimer timer
	when  time.Time
	seq   uint64
	armed bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.clock.disarmLocked(t)
	t.drain()
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := t.clock.disarmLocked(t)
	t.drain()
	t.clock.armLocked(t, d)
	return was
}

// send delivers now without blocking; the channel holds one value, as a
// time.Timer's does.
func (t *fakeTimer) send(now time.Time) {
	select {
	case t.ch <- now:
	default:
	}
}

func (t *fakeTimer) drain() {
	if t.ch == nil {
		return
	}
	select {
	case <-t.ch:
	default:
	}
}

type fakeDeadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c *fakeDeadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *fakeDeadlineCtx) Err() error {
	err := c.Context.Err()
	if err != nil && errors.Is(context.Cause(c.Context), context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}

package schedule

import (
	"context"
	"time"
)

// Clock is the source of time for the scheduler and for anything else that
// must be tested without sleeping. RealClock is the wall clock; FakeClock is
// moved by hand in tests.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns an armed timer that delivers the time on its channel
	// once d has passed.
	NewTimer(d time.Duration) Timer
	// WithDeadline returns a copy of parent that is cancelled, with
	// context.DeadlineExceeded, when the clock reaches d. Its Deadline method
	// reports d.
	WithDeadline(parent context.Context, d time.Time) (context.Context, context.CancelFunc)
}

// Timer is a single-shot timer made by a Clock. Its methods follow those of
// time.Timer since Go 1.23: after Stop or Reset returns, no stale time is
// received from C.
type Timer interface {
	// C returns the channel on which the time is delivered when the timer
	// fires.
	C() <-chan time.Time
	// Stop disarms the timer and reports whether it was armed.
	Stop() bool
	// Reset re-arms the timer to fire after d and reports whether it was
	// armed.
	Reset(d time.Duration) bool
}

// RealClock returns the Clock of the operating system.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

func (realClock) WithDeadline(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	return context.WithDeadline(parent, d)
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

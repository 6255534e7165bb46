package schedule

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestFakeClockTimers(t *testing.T) {
	start := time.Unix(1000, 0)
	type step struct {
		advance time.Duration
		fired   []string // timers expected to fire at this step, sorted
	}
	tests := []struct {
		name   string
		timers map[string]time.Duration
		steps  []step
	}{
		{
			name:   "fires in deadline order once due",
			timers: map[string]time.Duration{"a": 3 * time.Second, "b": time.Second, "c": 2 * time.Second},
			steps: []step{
				{advance: 999 * time.Millisecond},
				{advance: time.Millisecond, fired: []string{"b"}},
				{advance: 5 * time.Second, fired: []string{"a", "c"}},
			},
		},
		{
			name:   "zero fires at once",
			timers: map[string]time.Duration{"a": 0, "b": -time.Second},
			steps:  []step{{advance: 0, fired: []string{"a", "b"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewFakeClock(start)
			fired := make(chan string, len(tt.timers))
			for name, d := range tt.timers {
				tm := c.NewTimer(d)
				go func() {
					<-tm.C()
					fired <- name
				}()
			}
			for i, st := range tt.steps {
				c.Advance(st.advance)
				var got []string
				for range st.fired {
					select {
					case name := <-fired:
						got = append(got, name)
					case <-time.After(5 * time.Second):
						t.Fatalf("step %d: timers %v did not fire", i, st.fired)
					}
				}
				select {
				case name := <-fired:
					t.Fatalf("step %d: timer %s fired early", i, name)
				default:
				}
				slices.Sort(got)
				if !slices.Equal(got, st.fired) {
					t.Errorf("step %d: fired %v, want %v", i, got, st.fired)
				}
			}
			if c.Waiters() != 0 {
				t.Errorf("Waiters() = %d after all fired", c.Waiters())
			}
		})
	}
}

func TestFakeClockDeliversNewTime(t *testing.T) {
	c := NewFakeClock(time.Unix(0, 0))
	a := c.NewTimer(2 * time.Second)
	b := c.NewTimer(time.Second)
	c.Advance(3 * time.Second)
	for name, tm := range map[string]Timer{"a": a, "b": b} {
		select {
		case got := <-tm.C():
			if !got.Equal(time.Unix(3, 0)) {
				t.Errorf("timer %s delivered %v, want the new time", name, got)
			}
		default:
			t.Errorf("timer %s did not fire", name)
		}
	}
}

func TestFakeClockStopReset(t *testing.T) {
	c := NewFakeClock(time.Unix(0, 0))
	tm := c.NewTimer(time.Second)
	if c.Waiters() != 1 {
		t.Fatalf("Waiters() = %d, want 1", c.Waiters())
	}
	if !tm.Stop() {
		t.Error("Stop of an armed timer returned false")
	}
	if tm.Stop() {
		t.Error("Stop of a stopped timer returned true")
	}
	c.Advance(2 * time.Second)
	select {
	case <-tm.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	if tm.Reset(time.Second) {
		t.Error("Reset of a stopped timer returned true")
	}
	c.Advance(time.Second) // fires; the value waits in the channel
	if tm.Reset(time.Second) {
		t.Error("Reset of a fired timer returned true")
	}
	select {
	case <-tm.C():
		t.Fatal("Reset left a stale value in the channel")
	default:
	}
	if !tm.Reset(5 * time.Second) {
		t.Error("Reset of an armed timer returned false")
	}
	c.Advance(4 * time.Second)
	select {
	case <-tm.C():
		t.Fatal("Reset did not move the deadline")
	default:
	}
	c.Advance(time.Second)
	select {
	case <-tm.C():
	default:
		t.Fatal("reset timer did not fire")
	}
}

func TestFakeClockWithDeadline(t *testing.T) {
	tests := []struct {
		name    string
		after   time.Duration // deadline after now
		advance time.Duration
		cancel  bool
		wantErr error
	}{
		{"not yet", 2 * time.Second, time.Second, false, nil},
		{"reached", 2 * time.Second, 2 * time.Second, false, context.DeadlineExceeded},
		{"already past", -time.Second, 0, false, context.DeadlineExceeded},
		{"cancelled", 2 * time.Second, 0, true, context.Canceled},
		{"cancelled then reached", 2 * time.Second, 3 * time.Second, true, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewFakeClock(time.Unix(100, 0))
			d := c.Now().Add(tt.after)
			ctx, cancel := c.WithDeadline(context.Background(), d)
			defer cancel()
			if got, ok := ctx.Deadline(); !ok || !got.Equal(d) {
				t.Errorf("Deadline() = %v, %v, want %v", got, ok, d)
			}
			if tt.cancel {
				cancel()
			}
			c.Advance(tt.advance)
			if err := ctx.Err(); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Err() = %v, want %v", err, tt.wantErr)
			}
			if c.Waiters() != 0 {
				t.Errorf("a deadline counts as a waiter")
			}
		})
	}
}

func TestFakeClockBlockUntil(t *testing.T) {
	c := NewFakeClock(time.Unix(0, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := c.BlockUntilContext(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("BlockUntilContext with no timer = %v, want a deadline error", err)
	}
	done := make(chan struct{})
	go func() {
		c.BlockUntil(2)
		close(done)
	}()
	c.NewTimer(time.Second)
	select {
	case <-done:
		t.Fatal("BlockUntil(2) returned with one timer")
	case <-time.After(10 * time.Millisecond):
	}
	c.NewTimer(time.Second)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("BlockUntil(2) did not return with two timers")
	}
}

func TestFakeClockNext(t *testing.T) {
	c := NewFakeClock(time.Unix(0, 0))
	if _, ok := c.Next(); ok {
		t.Error("Next reported a deadline with no timer")
	}
	c.NewTimer(3 * time.Second)
	_, cancel := c.WithDeadline(context.Background(), time.Unix(2, 0))
	defer cancel()
	c.NewTimer(5 * time.Second)
	if next, ok := c.Next(); !ok || !next.Equal(time.Unix(2, 0)) {
		t.Errorf("Next() = %v, %v, want the deadline at 2 s", next, ok)
	}
}

func TestFakeClockStep(t *testing.T) {
	tests := []struct {
		name string
		step time.Duration
	}{
		{"back", -time.Hour},
		{"forward", time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewFakeClock(time.Unix(10_000, 0))
			tm := c.NewTimer(10 * time.Second)
			c.Step(tt.step)
			if want := time.Unix(10_000, 0).Add(tt.step); !c.Now().Equal(want) {
				t.Errorf("Now() = %v, want %v", c.Now(), want)
			}
			c.Advance(9 * time.Second)
			select {
			case <-tm.C():
				t.Fatal("the timer fired before its time had run out")
			default:
			}
			c.Advance(time.Second)
			select {
			case <-tm.C():
			default:
				t.Fatal("the timer did not fire when its time ran out")
			}
		})
	}
}

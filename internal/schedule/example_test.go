package schedule_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sonde-monitoring/sonde/internal/schedule"
)

func Example() {
	clock := schedule.NewFakeClock(time.Unix(1_700_000_000, 0))
	ran := make(chan string)
	s := schedule.New(func(ctx context.Context, job schedule.Job, scheduled time.Time) {
		deadline, _ := ctx.Deadline()
		ran <- fmt.Sprintf("%s %v at %d (+%v), timeout %v",
			job.ID, job.Payload, scheduled.Unix(), scheduled.Sub(scheduled.Truncate(time.Second)),
			deadline.Sub(scheduled))
	}, schedule.Options{Clock: clock})
	_ = s.Set([]schedule.Job{
		{ID: schedule.JobID{AssetID: 1, CheckID: 1}, Interval: time.Minute, Payload: "ping"},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	for !s.Running() { // a slot that passes before Run is missed
		time.Sleep(time.Millisecond)
	}

	// The check's slot is the second that is 1+1 modulo 60, plus 1/32 s
	// for asset 1.
	for range 2 {
		next := schedule.NextRun(clock.Now(), 1, 1, time.Minute)
		clock.Advance(next.Sub(clock.Now()))
		fmt.Println(<-ran)
		clock.BlockUntil(1)
	}
	cancel()
	<-done
	// Output:
	// 1/1 ping at 1700000042 (+31.25ms), timeout 48s
	// 1/1 ping at 1700000102 (+31.25ms), timeout 48s
}

package main

import (
	"context"
	"errors"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxRoundSkew is how many rounds (intervals of sample time) an agent may
// run ahead of the slowest one. It keeps every store's newest sample close
// to every series' next one, so nothing lands out of order or out of
// bounds (Prometheus refuses samples more than an hour behind its newest).
const maxRoundSkew = 10

// pacer keeps the agents within maxRoundSkew rounds of each other.
type pacer struct {
	progress []atomic.Int64 // rounds each agent has started
}

func newPacer(agents int) *pacer { return &pacer{progress: make([]atomic.Int64, agents)} }

func (p *pacer) minRound() int64 {
	m := int64(math.MaxInt64)
	for i := range p.progress {
		m = min(m, p.progress[i].Load())
	}
	return m
}

// start records that agent starts round r, after waiting until the
// slowest agent is close enough. It returns false when ctx ended or stop
// passed.
func (p *pacer) start(ctx context.Context, agent int, r int64, stop time.Time) bool {
	p.progress[agent].Store(r)
	for r > p.minRound()+maxRoundSkew {
		if ctx.Err() != nil || (!stop.IsZero() && time.Now().After(stop)) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// done takes agent out of the pacing: it no longer holds the others back.
func (p *pacer) done(agent int) { p.progress[agent].Store(math.MaxInt64) }

// sendFunc sends one result of one agent to a target. It returns the
// HTTP status, the protocol spoken ("HTTP/2.0") and, for a status outside
// 2xx, the start of the answer's body.
type sendFunc func(ctx context.Context, agent int, r result) (status int, proto, body string, err error)

// loadSpec bounds a load: by Duration or by Results (total), whichever
// comes first when both are set.
type loadSpec struct {
	Shape    shape
	Duration time.Duration
	Results  int64
	Now      func() time.Time // the clock timestamps must not pass
}

// loadOutcome is what a load did.
type loadOutcome struct {
	Stats   *workerStats
	Elapsed time.Duration
	// Protocols counts results by the protocol they were answered in.
	Protocols map[string]int64
	// TimelineEnded counts agents that stopped because their next
	// timestamp would have been in the future.
	TimelineEnded int
	// Unchanged and Generated count generated samples, and those equal to
	// their series' previous value.
	Unchanged, Generated int64
	Canceled             bool
}

// runLoad runs one goroutine per agent, each sending its results one at a
// time with send, until the spec's bound, ctx's end, or the timeline
// reaching the present.
func runLoad(ctx context.Context, spec loadSpec, send sendFunc) loadOutcome {
	n := spec.Shape.Agents
	now := spec.Now
	if now == nil {
		now = time.Now
	}
	var stop time.Time
	begin := time.Now()
	if spec.Duration > 0 {
		stop = begin.Add(spec.Duration)
	}
	pc := newPacer(n)
	stats := make([]*workerStats, n)
	gens := make([]*agentGen, n)
	protos := make([]map[string]int64, n)
	var timelineEnded atomic.Int64
	var wg sync.WaitGroup
	for a := range n {
		stats[a] = newWorkerStats()
		gens[a] = newAgentGen(spec.Shape, a)
		protos[a] = map[string]int64{}
		quota := int64(math.MaxInt64)
		if spec.Results > 0 {
			quota = spec.Results / int64(n)
			if int64(a) < spec.Results%int64(n) {
				quota++
			}
		}
		wg.Go(func() {
			defer pc.done(a)
			st, g := stats[a], gens[a]
			for sent := int64(0); sent < quota; sent++ {
				if ctx.Err() != nil || (!stop.IsZero() && time.Now().After(stop)) {
					return
				}
				if g.check == 0 && !pc.start(ctx, a, int64(g.round), stop) {
					return
				}
				if g.peekTS() > now().Unix() {
					timelineEnded.Add(1)
					return
				}
				r := g.next()
				t0 := time.Now()
				status, proto, body, err := send(ctx, a, r)
				d := time.Since(t0)
				if ctx.Err() != nil {
					return // interrupted: not the target's failure
				}
				st.observe(d)
				switch {
				case err != nil:
					st.fail(errorClass(err), err.Error())
				case status >= 200 && status < 300:
					st.results++
					st.samples += int64(len(r.Values))
					protos[a][proto]++
				default:
					st.fail(strconv.Itoa(status), body)
				}
			}
		})
	}
	wg.Wait()
	out := loadOutcome{
		Stats:         merge(stats),
		Elapsed:       time.Since(begin),
		Protocols:     map[string]int64{},
		TimelineEnded: int(timelineEnded.Load()),
		Canceled:      ctx.Err() != nil,
	}
	for a := range n {
		for k, v := range protos[a] {
			out.Protocols[k] += v
		}
		out.Unchanged += gens[a].unchanged
		out.Generated += gens[a].total
	}
	return out
}

// errorClass names the kind of a failed request for the error counts.
func errorClass(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "transport"
	}
}

package chart

import (
	"time"
)

// timeTick is one labelled tick of the time axis.
type timeTick struct {
	T     time.Time
	Label string
}

// timeStepKind says how a time step advances: by a fixed number of seconds
// of wall-clock time within a day, or by calendar days, months or years.
type timeStepKind int

const (
	bySeconds timeStepKind = iota
	byDays
	byWeeks
	byMonths
	byYears
)

// timeStep is a candidate step of the time axis; approx is its length, used
// only to count the ticks a range would get.
type timeStep struct {
	kind   timeStepKind
	n      int // seconds, days, months or years per step
	approx time.Duration
	layout string
}

const day = 24 * time.Hour

var timeSteps = func() []timeStep {
	var s []timeStep
	for _, sec := range []int{1, 2, 5, 10, 15, 30} {
		s = append(s, timeStep{bySeconds, sec, time.Duration(sec) * time.Second, "15:04:05"})
	}
	for _, m := range []int{1, 2, 5, 10, 15, 30} {
		s = append(s, timeStep{bySeconds, m * 60, time.Duration(m) * time.Minute, "15:04"})
	}
	for _, h := range []int{1, 2, 3, 6, 12} {
		s = append(s, timeStep{bySeconds, h * 3600, time.Duration(h) * time.Hour, "15:04"})
	}
	s = append(s,
		timeStep{byDays, 1, day, "Jan 2"},
		timeStep{byDays, 2, 2 * day, "Jan 2"},
		timeStep{byWeeks, 1, 7 * day, "Jan 2"},
		timeStep{byMonths, 1, 30 * day, "Jan 2006"},
		timeStep{byMonths, 3, 91 * day, "Jan 2006"},
		timeStep{byMonths, 6, 182 * day, "Jan 2006"},
	)
	for y := 1; y <= 5000; y *= 10 {
		for _, m := range []int{1, 2, 5} {
			s = append(s, timeStep{byYears, y * m, time.Duration(y*m) * 365 * day, "2006"})
		}
	}
	return s
}()

// chooseTimeStep returns the smallest step that gives the range at most
// maxTicks ticks.
func chooseTimeStep(span time.Duration, maxTicks int) timeStep {
	maxTicks = max(maxTicks, 1)
	for _, s := range timeSteps {
		if span/s.approx <= time.Duration(maxTicks) {
			return s
		}
	}
	return timeSteps[len(timeSteps)-1]
}

// maxTimeTicks bounds the loops below whatever the calendar does.
const maxTimeTicks = 1000

// timeTicks returns the ticks of a time axis from from to to (both
// included), at most about maxTicks of them, at round wall-clock times in
// loc: every 10 minutes, every 3 hours, every midnight, every Monday, every
// first of a month… A tick at midnight within a day-or-shorter step is
// labelled with its date, so the day change shows.
func timeTicks(from, to time.Time, maxTicks int, loc *time.Location) []timeTick {
	if loc == nil {
		loc = time.UTC
	}
	if to.Before(from) {
		return nil
	}
	s := chooseTimeStep(to.Sub(from), maxTicks)
	lf := from.In(loc)
	y, m, d := lf.Date()
	var ticks []timeTick
	var last time.Time
	add := func(t time.Time) bool {
		if t.After(to) {
			return false
		}
		if t.Before(from) || (!last.IsZero() && !t.After(last)) {
			return true // before the range, or a DST repeat
		}
		last = t
		label := t.Format(s.layout)
		if s.kind == bySeconds && t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 {
			label = t.Format("Jan 2")
		}
		ticks = append(ticks, timeTick{T: t, Label: label})
		return true
	}
	switch s.kind {
	case bySeconds:
		sod := lf.Hour()*3600 + lf.Minute()*60 + lf.Second()
		k := sod / s.n
		for range maxTimeTicks {
			if k*s.n >= 86400 {
				d++
				k = 0
			}
			if !add(time.Date(y, m, d, 0, 0, k*s.n, 0, loc)) {
				break
			}
			k++
		}
	case byDays, byWeeks:
		for i := range maxTimeTicks * 7 {
			t := time.Date(y, m, d+i, 0, 0, 0, 0, loc)
			if t.After(to) {
				break
			}
			if s.kind == byWeeks && t.Weekday() != time.Monday ||
				s.kind == byDays && mod64(civilDay(t), int64(s.n)) != 0 {
				continue
			}
			add(t)
		}
	case byMonths:
		for i := range maxTimeTicks {
			t := time.Date(y, m+time.Month(i), 1, 0, 0, 0, 0, loc)
			if t.After(to) {
				break
			}
			if (int(t.Month())-1)%s.n == 0 {
				add(t)
			}
		}
	case byYears:
		y0 := y - mod(y, s.n)
		for i := range maxTimeTicks {
			if !add(time.Date(y0+i*s.n, 1, 1, 0, 0, 0, 0, loc)) {
				break
			}
		}
	}
	return ticks
}

// civilDay numbers the calendar day of t (in t's location) from 1970-01-01.
func civilDay(t time.Time) int64 {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// mod is the remainder of a/b with b's sign.
func mod(a, b int) int {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

func mod64(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

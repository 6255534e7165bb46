package chart

import (
	"math"
	"slices"
)

// Stats returns the smallest, mean and largest finite value of points; ok
// is false when there is none. NaN and ±Inf are ignored.
func Stats(points []Point) (lo, avg, hi float64, ok bool) {
	var sum float64
	var n int
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range points {
		v := p.V
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		lo = min(lo, v)
		hi = max(hi, v)
		// Halved so that a sum of values near MaxFloat64 stays finite.
		sum += v / 2
		n++
	}
	if n == 0 {
		return 0, 0, 0, false
	}
	avg = sum / float64(n) * 2
	// Rounding can put the mean a hair outside the range.
	avg = min(max(avg, lo), hi)
	return lo, avg, hi, true
}

// finite reports whether v is neither NaN nor ±Inf.
func finite(v float64) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0)
}

// Times a chart accepts, in milliseconds since the Unix epoch: years 1 to
// 9999, so that every difference fits an int64 and time.Time formats them.
const (
	minMillis = -62135596800000
	maxMillis = 253402300799999
)

// sortedPoints returns pts sorted by time (a sorted copy when they are not)
// without the points outside the times a chart accepts.
func sortedPoints(pts []Point) []Point {
	cmp := func(a, b Point) int {
		switch {
		case a.T < b.T:
			return -1
		case a.T > b.T:
			return 1
		}
		return 0
	}
	if !slices.IsSortedFunc(pts, cmp) {
		pts = slices.Clone(pts)
		slices.SortStableFunc(pts, cmp)
	}
	return inRange(pts, minMillis, maxMillis)
}

// inRange returns the part of sorted pts whose times are in [from, to].
func inRange(pts []Point, from, to int64) []Point {
	lo, _ := slices.BinarySearchFunc(pts, from, func(p Point, t int64) int {
		if p.T < t {
			return -1
		}
		return 1
	})
	hi, _ := slices.BinarySearchFunc(pts, to, func(p Point, t int64) int {
		if p.T <= t {
			return -1
		}
		return 1
	})
	if hi < lo {
		return nil
	}
	return pts[lo:hi]
}

// stepSamples bounds the work of typicalStep on long series.
const stepSamples = 1024

// typicalStep estimates the interval of a sorted series: the median of (up
// to stepSamples evenly spread) positive differences between neighbouring
// times. It returns 0 when there is none.
func typicalStep(pts []Point) int64 {
	n := len(pts) - 1
	if n <= 0 {
		return 0
	}
	m := min(n, stepSamples)
	ds := make([]int64, 0, m)
	for j := range m {
		i := j * n / m
		if d := pts[i+1].T - pts[i].T; d > 0 {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// gapAfter returns the time difference beyond which two neighbouring
// points are not joined: twice the typical step.
func gapAfter(pts []Point) int64 {
	s := typicalStep(pts)
	if s <= 0 || s > math.MaxInt64/2 {
		return math.MaxInt64
	}
	return 2 * s
}

// A run is what the line keeps of the points of one series that fall in
// one pixel column without a gap between them: the first, the smallest, the
// largest and the last (M4 downsampling). Drawn in time order they give the
// same pixels as all the points would, so a one-sample spike stays visible
// however many points share its column.
type run struct {
	col                          int
	newSegment                   bool // a gap (or the start) comes before it
	first, last, lowest, highest int  // indices into the points
}

// columns splits the time range [from, from+span] into n equal columns.
type columns struct {
	from, span int64 // span > 0
	n          int
}

// of returns the column of time t, within the range. There is no
// overflow: t-from ≤ span < 2⁴⁹ and n ≤ 4000 < 2¹².
func (c columns) of(t int64) int {
	return min(int((t-c.from)*int64(c.n)/c.span), c.n-1)
}

// start returns the first time in column i (i ≤ n): ⌈i·span/n⌉ after from.
func (c columns) start(i int) int64 {
	if i >= c.n {
		return math.MaxInt64
	}
	return c.from + (int64(i)*c.span+int64(c.n)-1)/int64(c.n)
}

// walker finds the columns of increasing times, dividing only when a time
// leaves the current column.
type walker struct {
	cols       columns
	cur        int
	start, end int64 // of the current column
}

func (w *walker) of(t int64) int {
	if t < w.start || t >= w.end {
		w.cur = w.cols.of(t)
		w.start, w.end = w.cols.start(w.cur), w.cols.start(w.cur+1)
	}
	return w.cur
}

// downsample calls emit for every run of pts (sorted, all in the range),
// in time order, with the columns in cols. gap is the time difference that
// breaks the line. A NaN value breaks the line too; ±Inf values are
// skipped.
func downsample(pts []Point, cols columns, gap int64, emit func(run)) {
	col := walker{cols: cols, start: 1, end: 0}
	var r run
	open := false
	breakNext := true
	prev := int64(0)
	havePrev := false
	for i, p := range pts {
		if math.IsNaN(p.V) {
			breakNext = true
			continue
		}
		if math.IsInf(p.V, 0) {
			continue
		}
		if havePrev && p.T-prev > gap {
			breakNext = true
		}
		c := col.of(p.T)
		if open && (c != r.col || breakNext) {
			emit(r)
			open = false
		}
		if !open {
			r = run{col: c, newSegment: breakNext, first: i, last: i, lowest: i, highest: i}
			open = true
			breakNext = false
		} else {
			r.last = i
			if p.V < pts[r.lowest].V {
				r.lowest = i
			}
			if p.V > pts[r.highest].V {
				r.highest = i
			}
		}
		prev, havePrev = p.T, true
	}
	if open {
		emit(r)
	}
}

// indices returns the distinct points of r in time order, in buf.
func (r run) indices(buf *[4]int) []int {
	buf[0], buf[1], buf[2], buf[3] = r.first, r.lowest, r.highest, r.last
	s := buf[:]
	// Insertion sort of four.
	for i := 1; i < 4; i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	out := s[:1]
	for _, x := range s[1:] {
		if x != out[len(out)-1] {
			out = append(out, x)
		}
	}
	return out
}

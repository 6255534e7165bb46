// Package chart draws time series as SVG for the hub's web pages.
//
// The SVG is meant to be inlined into an html/template page served under a
// strict Content-Security-Policy: it holds no script, no style element or
// attribute, no event attribute and no reference to anything outside
// itself, and every text in it (titles, series names) is escaped. It reads
// well on its own through presentation attributes (stroke, fill,
// font-size); the site stylesheet restyles it through these classes, whose
// rules take precedence over presentation attributes:
//
//	svg.chart            the root element
//	.chart-title         the title
//	.chart-grid          the grid lines
//	.chart-axis          the axis lines
//	.chart-label         tick labels and legend text
//	.chart-line.s0 … s7  the line of series 0 to 7; series 8 to 15 reuse
//	                     s0 … s7 and add .alt (dashed by default)
//	.chart-swatch.sN     a series' sample in the legend
//	.chart-legend        the legend, one row per series
//	.chart-empty         the "no data in this range" message
//	.chart-hover         the invisible hover columns
//
// Hover needs no script in the page: the plot is covered by invisible
// rectangles, one per column of a few pixels (or fewer columns when there
// are fewer samples), each with a <title> that browsers show as a tooltip
// (the times of its first and last sample, "04:40–04:44 CET", then
// "name: value" or "name: min – max" per series) and with data-t0 and
// data-t1 attributes (the times the column covers, in Unix milliseconds)
// for a script served as a file to do more. Columns without a sample have
// no rectangle.
//
// Long series are downsampled to the pixels available: per pixel column
// and series, the first, smallest, largest and last sample are kept (M4),
// which draws the same pixels as all the samples would, so spikes stay
// visible.
package chart

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Point is one sample of a series.
type Point struct {
	T int64   // milliseconds since the Unix epoch
	V float64 // NaN marks a gap (breaks the line); ±Inf is ignored
}

// Series is one line of a chart.
type Series struct {
	// Name is shown in the legend and the hover text. It comes from
	// monitored systems and is always escaped.
	Name string
	// Points should be sorted by T; Render sorts a copy when they are not.
	Points []Point
}

// Options says how to draw a chart.
type Options struct {
	// Width and Height are the size of the whole chart in pixels, legend
	// included; 0 means DefaultWidth or DefaultHeight. When the legend
	// would leave the plot less than MinPlotHeight, the chart grows taller.
	Width, Height int
	// From and To bound the time axis; a zero one is taken from the data.
	From, To time.Time
	// Unit of every series' values. Except with None, the value axis
	// reaches zero: amounts read best from there.
	Unit Unit
	// Location is the viewer's time zone, for the time axis and the hover
	// text; nil means UTC.
	Location *time.Location
	// Title is drawn above the plot when not empty.
	Title string
}

// Sizes of Options, in pixels.
const (
	// DefaultWidth is the width of a chart whose Options.Width is 0.
	DefaultWidth = 800
	// DefaultHeight is the height of a chart whose Options.Height is 0.
	DefaultHeight = 240
	// MinWidth and MaxWidth bound Options.Width.
	MinWidth, MaxWidth = 200, 4000
	// MinHeight and MaxHeight bound Options.Height.
	MinHeight, MaxHeight = 100, 2000
	// MinPlotHeight is the least height the plot keeps whatever the
	// number of legend rows.
	MinPlotHeight = 60
)

// MaxSeries is the most series a chart draws: beyond, the legend would
// leave no room and the lines could not be told apart.
const MaxSeries = 16

// NoDataText is what a chart with no finite value in its range says.
const NoDataText = "no data in this range"

// ErrInvalidOptions is wrapped by the errors Render returns for options it
// cannot draw.
var ErrInvalidOptions = errors.New("invalid chart options")

// Default look, overridden by the stylesheet's classes.
var palette = [8]string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// Geometry, in pixels, for labels 11 px high.
const (
	fontSize     = 11
	charWidth    = 6.6 // an estimate of the average width of a character
	padTop       = 8
	titleHeight  = 18
	padRight     = 12
	axisHeight   = 20 // below the plot, for the time labels
	legendRow    = 16
	legendPad    = 6
	hoverMinCol  = 4  // the narrowest hover column
	yTickSpacing = 40 // the least room between two value ticks
	xTickSpacing = 80 // the least room between two time ticks
)

// Render draws series as an SVG chart. The result is safe to insert as is
// into an html/template page: every text in it is escaped. Only the points
// from From to To are drawn, and the legend gives their Stats; series with
// none are listed as having no data, and when no series has any the chart
// says NoDataText. The output depends only on the arguments, byte for
// byte. Errors wrap ErrInvalidOptions.
func Render(series []Series, o Options) (template.HTML, error) {
	c, err := newChart(series, o)
	if err != nil {
		return "", err
	}
	return template.HTML(c.svg()), nil // #nosec G203 -- the SVG is built here with every text escaped (xml.EscapeText); tests parse it and look for script
}

// seriesData is a series prepared for drawing.
type seriesData struct {
	name        string
	pts         []Point // sorted, within [from, to]
	lo, avg, hi float64
	ok          bool // has a finite value in range
}

type chart struct {
	o        Options
	w, h     int
	from, to int64 // ms; to > from, unless !hasRange
	hasRange bool
	series   []seriesData
	hasData  bool
	ticks    []float64 // value ticks, ascending
	tickStep float64
	axisLo   float64 // the value at the bottom of the plot
	axisHi   float64 // the value at the top
	// The plot area.
	left, top, right, bottom float64
}

func newChart(series []Series, o Options) (*chart, error) {
	if o.Width == 0 {
		o.Width = DefaultWidth
	}
	if o.Height == 0 {
		o.Height = DefaultHeight
	}
	if o.Width < MinWidth || o.Width > MaxWidth {
		return nil, fmt.Errorf("%w: width %d is not between %d and %d", ErrInvalidOptions, o.Width, MinWidth, MaxWidth)
	}
	if o.Height < MinHeight || o.Height > MaxHeight {
		return nil, fmt.Errorf("%w: height %d is not between %d and %d", ErrInvalidOptions, o.Height, MinHeight, MaxHeight)
	}
	if len(series) > MaxSeries {
		return nil, fmt.Errorf("%w: %d series, at most %d can be drawn: split them over several charts", ErrInvalidOptions, len(series), MaxSeries)
	}
	if o.Unit < None || o.Unit > Count {
		return nil, fmt.Errorf("%w: unknown unit %d", ErrInvalidOptions, o.Unit)
	}
	if !o.From.IsZero() && !o.To.IsZero() && !o.To.After(o.From) {
		return nil, fmt.Errorf("%w: the range ends (%s) before it starts (%s)", ErrInvalidOptions, o.To.Format(time.RFC3339), o.From.Format(time.RFC3339))
	}
	for _, t := range []time.Time{o.From, o.To} {
		if !t.IsZero() && (t.UnixMilli() < minMillis || t.UnixMilli() > maxMillis) {
			return nil, fmt.Errorf("%w: time %s is not between the years 1 and 9999", ErrInvalidOptions, t.Format(time.RFC3339))
		}
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	c := &chart{o: o, w: o.Width, h: o.Height}
	c.series = make([]seriesData, len(series))
	for i, s := range series {
		c.series[i] = seriesData{name: s.Name, pts: sortedPoints(s.Points)}
	}
	c.setRange()
	for i := range c.series {
		s := &c.series[i]
		if c.hasRange {
			s.pts = inRange(s.pts, c.from, c.to)
		} else {
			s.pts = nil
		}
		s.lo, s.avg, s.hi, s.ok = Stats(s.pts)
		c.hasData = c.hasData || s.ok
	}
	c.layout()
	return c, nil
}

// setRange sets the time range from the options, and from the data for
// the bounds the options leave zero.
func (c *chart) setRange() {
	c.hasRange = true
	if !c.o.From.IsZero() {
		c.from = c.o.From.UnixMilli()
	}
	if !c.o.To.IsZero() {
		c.to = c.o.To.UnixMilli()
	}
	if !c.o.From.IsZero() && !c.o.To.IsZero() {
		return
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range c.series {
		for _, p := range s.pts {
			if finite(p.V) {
				lo = min(lo, p.T)
				hi = max(hi, p.T)
			}
		}
	}
	switch {
	case c.o.From.IsZero() && c.o.To.IsZero():
		if lo > hi {
			c.hasRange = false
			return
		}
		c.from, c.to = lo, hi
	case c.o.From.IsZero():
		c.from = min(lo, c.to)
	default:
		c.to = max(hi, c.from)
	}
	if c.to <= c.from {
		// A single sample time: a minute around it.
		c.from, c.to = max(c.from-30_000, minMillis), min(c.to+30_000, maxMillis)
	}
}

// layout sets the value axis and the plot area.
func (c *chart) layout() {
	c.top = padTop
	if c.o.Title != "" {
		c.top += titleHeight
	}
	legend := 0.0
	if len(c.series) > 0 {
		legend = float64(len(c.series)*legendRow + legendPad)
	}
	plotH := float64(c.h) - c.top - axisHeight - legend
	if plotH < MinPlotHeight {
		plotH = MinPlotHeight
		c.h = int(math.Ceil(c.top + plotH + axisHeight + legend))
	}
	c.bottom = c.top + plotH

	labelW := 0.0
	if c.hasData {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, s := range c.series {
			if s.ok {
				lo, hi = min(lo, s.lo), max(hi, s.hi)
			}
		}
		if c.o.Unit != None {
			// Amounts read best from zero.
			if lo > 0 {
				lo = 0
			}
			if hi < 0 {
				hi = 0
			}
		}
		c.ticks, c.tickStep = valueTicks(lo, hi, max(1, int(plotH/yTickSpacing)), c.o.Unit)
		c.axisLo, c.axisHi = c.ticks[0], c.ticks[len(c.ticks)-1]
		for _, t := range c.ticks {
			labelW = max(labelW, float64(utf8.RuneCountInString(formatTick(t, c.tickStep, c.o.Unit)))*charWidth)
		}
	}
	c.left = math.Max(32, math.Ceil(labelW)+10)
	c.right = float64(c.w) - padRight
}

// x returns the horizontal position of time t (ms, within the range).
func (c *chart) x(t int64) float64 {
	return c.left + float64(t-c.from)/float64(c.to-c.from)*(c.right-c.left)
}

// y returns the vertical position of value v, kept within the plot.
func (c *chart) y(v float64) float64 {
	// Halves keep the differences finite near ±MaxFloat64.
	f := (v/2 - c.axisLo/2) / (c.axisHi/2 - c.axisLo/2)
	if math.IsNaN(f) {
		f = 0
	}
	f = min(max(f, 0), 1)
	return c.bottom - f*(c.bottom-c.top)
}

// svg writes the chart.
func (c *chart) svg() string {
	b := &writer{}
	b.Grow(4096 + 4*len(c.series)*int(c.right-c.left)*14)
	label := c.o.Title
	if label == "" {
		label = "chart"
	}
	b.printf(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="`, c.w, c.h, c.w, c.h)
	b.escape(label)
	b.printf(`" font-family="sans-serif" font-size="%d">`+"\n", fontSize)
	if c.o.Title != "" {
		b.WriteString(`<text class="chart-title" x="`)
		b.num(c.left)
		b.printf(`" y="%d" font-weight="bold">`, padTop+fontSize)
		b.escape(c.o.Title)
		b.WriteString("</text>\n")
	}
	c.grid(b)
	if c.hasData {
		c.lines(b)
		c.hover(b)
	} else {
		b.WriteString(`<text class="chart-empty chart-label" x="`)
		b.num((c.left + c.right) / 2)
		b.WriteString(`" y="`)
		b.num((c.top + c.bottom) / 2)
		b.WriteString(`" text-anchor="middle" fill="#666">`)
		b.escape(NoDataText)
		b.WriteString("</text>\n")
	}
	c.legend(b)
	b.WriteString("</svg>\n")
	return b.String()
}

// grid writes the grid lines, the axes and their labels.
func (c *chart) grid(b *writer) {
	var tt []timeTick
	if c.hasRange {
		maxTicks := max(1, int((c.right-c.left)/xTickSpacing))
		tt = timeTicks(time.UnixMilli(c.from), time.UnixMilli(c.to), maxTicks, c.o.Location)
	}
	if len(c.ticks) > 0 || len(tt) > 0 {
		b.WriteString(`<path class="chart-grid" fill="none" stroke="#e0e0e0" stroke-width="1" d="`)
		for _, v := range c.ticks {
			b.WriteByte('M')
			b.num(c.left)
			b.WriteByte(' ')
			b.num(c.y(v))
			b.WriteByte('H')
			b.num(c.right)
		}
		for _, t := range tt {
			b.WriteByte('M')
			b.num(c.x(t.T.UnixMilli()))
			b.WriteByte(' ')
			b.num(c.top)
			b.WriteByte('V')
			b.num(c.bottom)
		}
		b.WriteString("\"/>\n")
	}
	b.WriteString(`<path class="chart-axis" fill="none" stroke="#888" stroke-width="1" d="M`)
	b.num(c.left)
	b.WriteByte(' ')
	b.num(c.top)
	b.WriteByte('V')
	b.num(c.bottom)
	b.WriteByte('H')
	b.num(c.right)
	b.WriteString("\"/>\n")

	b.WriteString(`<g class="chart-label" fill="#555">` + "\n")
	for _, v := range c.ticks {
		b.WriteString(`<text x="`)
		b.num(c.left - 6)
		b.WriteString(`" y="`)
		b.num(c.y(v) + 4)
		b.WriteString(`" text-anchor="end">`)
		b.escape(formatTick(v, c.tickStep, c.o.Unit))
		b.WriteString("</text>\n")
	}
	for _, t := range tt {
		x := c.x(t.T.UnixMilli())
		half := float64(utf8.RuneCountInString(t.Label)) * charWidth / 2
		anchor := "middle"
		if x+half > float64(c.w) {
			x, anchor = float64(c.w)-2, "end"
		}
		b.WriteString(`<text x="`)
		b.num(x)
		b.WriteString(`" y="`)
		b.num(c.bottom + 15)
		b.WriteString(`" text-anchor="` + anchor + `">`)
		b.escape(t.Label)
		b.WriteString("</text>\n")
	}
	b.WriteString("</g>\n")
}

// seriesClass returns the classes and default stroke of series i.
func seriesClass(i int) (class, stroke, extra string) {
	class = "s" + strconv.Itoa(i%len(palette))
	if i >= len(palette) {
		class += " alt"
		extra = ` stroke-dasharray="5 3"`
	}
	return class, palette[i%len(palette)], extra
}

// lines writes one path per series, downsampled to the plot's pixel
// columns.
func (c *chart) lines(b *writer) {
	cols := columns{from: c.from, span: c.to - c.from, n: max(1, int(c.right-c.left))}
	b.WriteString(`<g class="chart-lines" fill="none" stroke-width="1.5" stroke-linejoin="round" stroke-linecap="round">` + "\n")
	for i, s := range c.series {
		if !s.ok {
			continue
		}
		class, stroke, extra := seriesClass(i)
		b.printf(`<path class="chart-line %s" stroke="%s"%s d="`, class, stroke, extra)
		var (
			idx       [4]int
			lastX     int64 = math.MinInt64
			lastY     int64
			inSegment int // points written in the current segment
		)
		endSegment := func() {
			if inSegment == 1 {
				b.WriteString("h0") // a lone sample: a dot, from the round cap
			}
		}
		downsample(s.pts, cols, gapAfter(s.pts), func(r run) {
			for k, j := range r.indices(&idx) {
				p := s.pts[j]
				x, y := tenths(c.x(p.T)), tenths(c.y(p.V))
				if k == 0 && r.newSegment {
					endSegment()
					b.WriteByte('M')
					inSegment = 0
				} else if x == lastX && y == lastY {
					continue
				} else {
					b.WriteByte('L')
				}
				b.tenths(x)
				b.WriteByte(' ')
				b.tenths(y)
				lastX, lastY = x, y
				inSegment++
			}
		})
		endSegment()
		b.WriteString("\"/>\n")
	}
	b.WriteString("</g>\n")
}

// hoverStat is what the hover text says of one series in one column.
type hoverStat struct {
	lo, hi float64
	n      int
}

// hover writes the invisible hover columns.
func (c *chart) hover(b *writer) {
	most := 0
	for _, s := range c.series {
		most = max(most, len(s.pts))
	}
	plotW := c.right - c.left
	n := max(1, min(int(plotW/hoverMinCol), most))
	span := c.to - c.from
	stats := make([]hoverStat, n*len(c.series))
	// The first and last sample time in each column, over all series.
	first, last := make([]int64, n), make([]int64, n)
	for h := range first {
		first[h], last[h] = math.MaxInt64, math.MinInt64
	}
	for i, s := range c.series {
		st := stats[i*n : (i+1)*n]
		col := walker{cols: columns{from: c.from, span: span, n: n}, start: 1, end: 0}
		for _, p := range s.pts {
			if !finite(p.V) {
				continue
			}
			h := col.of(p.T)
			first[h], last[h] = min(first[h], p.T), max(last[h], p.T)
			if st[h].n == 0 {
				st[h] = hoverStat{p.V, p.V, 1}
			} else {
				st[h].lo, st[h].hi, st[h].n = min(st[h].lo, p.V), max(st[h].hi, p.V), st[h].n+1
			}
		}
	}
	layout := "15:04"
	switch d := time.Duration(span) * time.Millisecond; {
	case d > 36*time.Hour:
		layout = "Mon 2 Jan 15:04"
	case d <= 5*time.Minute:
		layout = "15:04:05"
	}
	colW := plotW / float64(n)
	var text, endText []byte
	b.WriteString(`<g class="chart-hover" fill="transparent">` + "\n")
	for h := range n {
		if first[h] > last[h] {
			continue // no sample
		}
		t0 := c.from + int64(float64(span)*float64(h)/float64(n))
		t1 := c.from + int64(float64(span)*float64(h+1)/float64(n))
		start := time.UnixMilli(first[h]).In(c.o.Location)
		text = start.AppendFormat(text[:0], layout)
		if last[h] != first[h] {
			end := time.UnixMilli(last[h]).In(c.o.Location)
			endText = end.AppendFormat(endText[:0], layout)
			if !bytes.Equal(endText, text) {
				if sy, sm, sd := start.Date(); layout != "15:04" && end.Day() == sd && end.Month() == sm && end.Year() == sy {
					endText = end.AppendFormat(endText[:0], "15:04")
				}
				text = append(append(text, "–"...), endText...)
			}
		}
		text = start.AppendFormat(append(text, ' '), "MST")
		for i, s := range c.series {
			st := stats[i*n+h]
			if st.n == 0 {
				continue
			}
			text = append(text, '\n')
			text = append(text, legendName(s.name, i)...)
			text = append(text, ": "...)
			text = append(text, FormatValue(st.lo, c.o.Unit)...)
			if st.hi != st.lo {
				text = append(text, " – "...)
				text = append(text, FormatValue(st.hi, c.o.Unit)...)
			}
		}
		b.WriteString(`<rect x="`)
		b.num(c.left + float64(h)*colW)
		b.WriteString(`" y="`)
		b.num(c.top)
		b.WriteString(`" width="`)
		b.num(colW)
		b.WriteString(`" height="`)
		b.num(c.bottom - c.top)
		b.printf(`" data-t0="%d" data-t1="%d"><title>`, t0, t1)
		b.escapeBytes(text)
		b.WriteString("</title></rect>\n")
	}
	b.WriteString("</g>\n")
}

// legendName is how series i is named when its name is empty.
func legendName(name string, i int) string {
	if name == "" {
		return "series " + strconv.Itoa(i+1)
	}
	return name
}

// legend writes one row per series: its sample line, its name and the
// smallest, mean and largest of its values in range.
func (c *chart) legend(b *writer) {
	if len(c.series) == 0 {
		return
	}
	b.WriteString(`<g class="chart-legend chart-label" fill="#555">` + "\n")
	top := c.bottom + axisHeight + legendPad
	for i, s := range c.series {
		y := top + float64(i*legendRow) + fontSize
		class, stroke, extra := seriesClass(i)
		b.printf(`<path class="chart-swatch %s" fill="none" stroke="%s" stroke-width="2"%s d="M`, class, stroke, extra)
		b.num(c.left)
		b.WriteByte(' ')
		b.num(y - 4)
		b.WriteString("h14\"/>\n")

		stats := "no data"
		if s.ok {
			u := c.o.Unit
			stats = "min " + FormatValue(s.lo, u) + " · avg " + FormatValue(s.avg, u) + " · max " + FormatValue(s.hi, u)
		}
		room := c.right - c.left - 22 - float64(utf8.RuneCountInString(stats))*charWidth - 16
		name := legendName(s.name, i)
		short, cut := truncate(name, max(8, int(room/charWidth)))
		b.WriteString(`<text x="`)
		b.num(c.left + 20)
		b.WriteString(`" y="`)
		b.num(y)
		b.WriteString(`">`)
		if cut {
			b.WriteString("<title>")
			b.escape(name)
			b.WriteString("</title>")
		}
		b.escape(short)
		b.WriteString("</text>\n")
		b.WriteString(`<text x="`)
		b.num(c.right)
		b.WriteString(`" y="`)
		b.num(y)
		b.WriteString(`" text-anchor="end">`)
		b.escape(stats)
		b.WriteString("</text>\n")
	}
	b.WriteString("</g>\n")
}

// truncate shortens s to at most n runes, ending it with an ellipsis when
// it cuts, and says whether it did.
func truncate(s string, n int) (string, bool) {
	if utf8.RuneCountInString(s) <= n {
		return s, false
	}
	i, k := 0, 0
	for j := range s {
		if k == n-1 {
			i = j
			break
		}
		k++
	}
	return s[:i] + "…", true
}

// writer builds the SVG text.
type writer struct {
	bytes.Buffer
	scratch [32]byte
}

func (w *writer) printf(format string, args ...any) {
	fmt.Fprintf(w, format, args...)
}

// escape writes s as XML character data, also valid in an attribute value
// in double quotes. Characters XML cannot hold and invalid UTF-8 become
// U+FFFD.
func (w *writer) escape(s string) {
	_ = xml.EscapeText(w, []byte(s))
}

func (w *writer) escapeBytes(s []byte) {
	_ = xml.EscapeText(w, s)
}

// num writes v to a tenth of a pixel.
func (w *writer) num(v float64) {
	w.tenths(tenths(v))
}

// tenths returns v in tenths, rounded.
func tenths(v float64) int64 {
	if math.IsNaN(v) {
		return 0
	}
	v = min(max(v*10, -1e15), 1e15)
	return int64(math.Round(v))
}

// tenths writes n tenths as a decimal: 123 is "12.3", 120 is "12".
func (w *writer) tenths(n int64) {
	b := w.scratch[:0]
	if n < 0 {
		b = append(b, '-')
		n = -n
	}
	b = strconv.AppendInt(b, n/10, 10)
	if r := n % 10; r != 0 {
		b = append(b, '.', byte('0'+r))
	}
	w.Write(b)
}

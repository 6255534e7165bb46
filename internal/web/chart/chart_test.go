package chart

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the golden files use Europe/Amsterdam whatever the system has
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// t0 is 2026-03-01 00:00 UTC; the golden charts start from it.
var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func amsterdam(t testing.TB) *time.Location {
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// wave returns n points step apart from start, following f(i).
func wave(start time.Time, step time.Duration, n int, f func(i int) float64) []Point {
	pts := make([]Point, n)
	for i := range pts {
		pts[i] = Point{T: start.Add(time.Duration(i) * step).UnixMilli(), V: f(i)}
	}
	return pts
}

// series30d is one series of 30 days at 1-minute resolution: memory in use
// with a daily cycle, a slow leak and one 1-minute spike.
func series30d() Series {
	return Series{Name: "memory used", Points: wave(t0, time.Minute, 30*24*60, func(i int) float64 {
		v := 2<<30 + 512<<20*math.Sin(float64(i)/1440*2*math.Pi) + float64(i)*4096
		if i == 20000 {
			v = 7 << 30
		}
		return v
	})}
}

func goldenCases(t testing.TB) map[string]struct {
	series []Series
	o      Options
} {
	ams := amsterdam(t)
	h1 := t0.Add(9 * time.Hour)
	day := t0.Add(5 * 24 * time.Hour)
	return map[string]struct {
		series []Series
		o      Options
	}{
		"1h_percent": {
			series: []Series{
				{Name: "cpu0", Points: wave(h1, time.Minute, 61, func(i int) float64 { return 40 + 30*math.Sin(float64(i)/7) })},
				{Name: "cpu1", Points: wave(h1, time.Minute, 61, func(i int) float64 { return 55 + 40*math.Cos(float64(i)/5) })},
			},
			o: Options{From: h1, To: h1.Add(time.Hour), Unit: Percent, Location: ams, Title: "CPU usage"},
		},
		"24h_gap_ms": {
			series: []Series{{Name: "ping rtt", Points: func() []Point {
				pts := wave(day, time.Minute, 24*60, func(i int) float64 { return 12 + 8*math.Sin(float64(i)/90) + float64(i%17)/4 })
				pts[300].V = math.NaN() // a stale marker
				// Nothing from 10:00 to 12:30.
				return append(pts[:600:600], pts[750:]...)
			}()}},
			o: Options{From: day, To: day.Add(24 * time.Hour), Unit: Milliseconds, Location: ams},
		},
		"30d_1m_bytes": {
			series: []Series{series30d()},
			o:      Options{From: t0, To: t0.Add(30 * 24 * time.Hour), Unit: Bytes, Location: ams, Title: "Memory"},
		},
		"7d_bitrate_3series": {
			series: []Series{
				{Name: "eth0 in", Points: wave(t0, 5*time.Minute, 7*288, func(i int) float64 { return 40e6 + 30e6*math.Sin(float64(i)/288*2*math.Pi) })},
				{Name: "eth0 out", Points: wave(t0, 5*time.Minute, 7*288, func(i int) float64 { return 8e6 + 5e6*math.Cos(float64(i)/288*2*math.Pi) })},
				{Name: "eth1 in", Points: nil},
			},
			o: Options{Width: 600, Height: 200, From: t0, To: t0.Add(7 * 24 * time.Hour), Unit: BitsPerSecond},
		},
		"markup_in_names": {
			series: []Series{
				{Name: "<script>alert(1)</script>", Points: wave(h1, time.Minute, 30, func(i int) float64 { return float64(i * i) })},
				{Name: `"><g onload="alert(2)">` + strings.Repeat("very long name ", 20) + "\x00\x1b\xff", Points: wave(h1, time.Minute, 30, func(i int) float64 { return float64(900 - i*i) })},
			},
			o: Options{From: h1, To: h1.Add(30 * time.Minute), Unit: Count, Title: `<img src=x onerror="alert(3)"> & co`},
		},
		"empty": {
			series: []Series{{Name: "disk /", Points: wave(t0, time.Minute, 10, func(int) float64 { return 1 })}},
			o:      Options{From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour), Unit: Bytes, Location: ams},
		},
	}
}

func TestGolden(t *testing.T) {
	for name, tc := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			got, err := Render(tc.series, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			checkSafeSVG(t, string(got))
			path := filepath.Join("testdata", name+".svg")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs from the golden file; when the change is meant, run go test -update and review the diff", name)
			}
			again, _ := Render(tc.series, tc.o)
			if again != got {
				t.Error("a second rendering differs from the first")
			}
		})
	}
}

// checkSafeSVG fails t unless svg is one well-formed <svg> element with
// nothing a strict Content-Security-Policy would block or an attacker
// could use.
func checkSafeSVG(t testing.TB, svg string) {
	t.Helper()
	if err := safeSVG(svg); err != nil {
		t.Fatalf("%v\n%s", err, svg)
	}
}

func safeSVG(svg string) error {
	lower := strings.ToLower(svg)
	for _, bad := range []string{"<script", "<style", "<foreignobject", "javascript:", "<image", "<use", "<a "} {
		if strings.Contains(lower, bad) {
			return errors.New("contains " + bad)
		}
	}
	d := xml.NewDecoder(strings.NewReader(svg))
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if tok.Name.Local != "svg" {
					return errors.New("root element is " + tok.Name.Local)
				}
			}
			depth++
			switch strings.ToLower(tok.Name.Local) {
			case "script", "style", "foreignobject", "image", "use", "a", "animate", "set":
				return errors.New("element " + tok.Name.Local)
			}
			for _, a := range tok.Attr {
				n := strings.ToLower(a.Name.Local)
				if strings.HasPrefix(n, "on") || n == "style" || n == "href" || strings.Contains(strings.ToLower(a.Value), "url(") {
					return errors.New("attribute " + a.Name.Local + "=" + a.Value)
				}
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(tok)) > 0 {
				return errors.New("text outside the root element")
			}
		case xml.ProcInst, xml.Directive:
			return errors.New("processing instruction or directive")
		}
	}
	if roots != 1 {
		return errors.New("not exactly one root element")
	}
	return nil
}

func TestMarkupEscaped(t *testing.T) {
	tc := goldenCases(t)["markup_in_names"]
	got, err := Render(tc.series, tc.o)
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=&#34;alert(3)&#34;&gt; &amp; co"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, bad := range []string{"<script>", "<img", `onload="`, `onerror="`, "\x00", "\x1b"} {
		if strings.Contains(s, bad) {
			t.Errorf("output holds %q", bad)
		}
	}
	// The names survive decoding intact (bar what XML cannot hold).
	var texts []string
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if cd, ok := tok.(xml.CharData); ok {
			texts = append(texts, string(cd))
		}
	}
	if !strings.Contains(strings.Join(texts, "\n"), "<script>alert(1)</script>") {
		t.Error("the series name does not read back as its text")
	}
}

func TestRenderOptions(t *testing.T) {
	pts := wave(t0, time.Minute, 10, func(i int) float64 { return float64(i) })
	tests := map[string]struct {
		o       Options
		series  int
		wantErr bool
		want    []string
	}{
		"defaults":          {o: Options{}, series: 1, want: []string{`width="800" height="240"`, "series 1"}},
		"range from data":   {o: Options{Unit: Count}, series: 1, want: []string{">Mar 1</text>", ">00:09</text>", "<title>00:09 UTC&#xA;series 1: 9</title>"}},
		"too narrow":        {o: Options{Width: 50}, series: 1, wantErr: true},
		"too tall":          {o: Options{Height: 5000}, series: 1, wantErr: true},
		"reversed range":    {o: Options{From: t0.Add(time.Hour), To: t0}, series: 1, wantErr: true},
		"year 10000":        {o: Options{From: t0, To: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, series: 1, wantErr: true},
		"unknown unit":      {o: Options{Unit: Unit(99)}, series: 1, wantErr: true},
		"too many series":   {o: Options{}, series: MaxSeries + 1, wantErr: true},
		"alt classes":       {o: Options{}, series: 10, want: []string{`class="chart-line s1 alt"`, `stroke-dasharray="5 3"`}},
		"grows for legend":  {o: Options{Height: 100}, series: 8, want: []string{`height="222"`}},
		"no series":         {o: Options{From: t0, To: t0.Add(time.Hour)}, series: 0, want: []string{NoDataText}},
		"no series no time": {o: Options{}, series: 0, want: []string{NoDataText}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ss := make([]Series, tc.series)
			for i := range ss {
				ss[i].Points = pts
			}
			got, err := Render(ss, tc.o)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidOptions) {
					t.Fatalf("err = %v, want ErrInvalidOptions", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkSafeSVG(t, string(got))
			for _, w := range tc.want {
				if !strings.Contains(string(got), w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

// linePaths returns the d attribute of every series line of svg.
func linePaths(t *testing.T, svg string) []string {
	t.Helper()
	var ds []string
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return ds
		}
		if err != nil {
			t.Fatal(err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "path" {
			var class, dv string
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "class":
					class = a.Value
				case "d":
					dv = a.Value
				}
			}
			if strings.HasPrefix(class, "chart-line ") {
				ds = append(ds, dv)
			}
		}
	}
}

func TestGapsBreakTheLine(t *testing.T) {
	minute := func(i int) int64 { return t0.Add(time.Duration(i) * time.Minute).UnixMilli() }
	tests := map[string]struct {
		pts      []Point
		segments int
		dots     int // segments of one sample
	}{
		"regular":          {pts: []Point{{minute(0), 1}, {minute(1), 2}, {minute(2), 3}, {minute(3), 2}}, segments: 1},
		"jitter is no gap": {pts: []Point{{minute(0), 1}, {minute(1) + 20_000, 2}, {minute(3), 3}, {minute(4), 2}, {minute(5), 2}}, segments: 1},
		"missing samples":  {pts: []Point{{minute(0), 1}, {minute(1), 2}, {minute(2), 3}, {minute(6), 2}, {minute(7), 1}}, segments: 2},
		"NaN":              {pts: []Point{{minute(0), 1}, {minute(1), 2}, {minute(2), math.NaN()}, {minute(3), 2}, {minute(4), 1}}, segments: 2},
		"Inf is skipped":   {pts: []Point{{minute(0), 1}, {minute(1), math.Inf(1)}, {minute(2), 3}, {minute(3), math.Inf(-1)}}, segments: 1},
		"lone sample":      {pts: []Point{{minute(0), 1}, {minute(1), 2}, {minute(2), math.NaN()}, {minute(3), 2}, {minute(4), math.NaN()}, {minute(5), 1}, {minute(6), 1}}, segments: 3, dots: 1},
		"unsorted":         {pts: []Point{{minute(3), 1}, {minute(0), 2}, {minute(2), 3}, {minute(1), 2}}, segments: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Render([]Series{{Name: "x", Points: tc.pts}}, Options{From: t0, To: t0.Add(10 * time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			ds := linePaths(t, string(got))
			if len(ds) != 1 {
				t.Fatalf("%d lines, want 1", len(ds))
			}
			if n := strings.Count(ds[0], "M"); n != tc.segments {
				t.Errorf("%d segments, want %d: %s", n, tc.segments, ds[0])
			}
			if n := strings.Count(ds[0], "h0"); n != tc.dots {
				t.Errorf("%d dots, want %d: %s", n, tc.dots, ds[0])
			}
		})
	}
}

func TestDownsampleKeepsSpikes(t *testing.T) {
	s := series30d()
	got, err := Render([]Series{s}, Options{Width: 800, Height: 240, From: t0, To: t0.Add(30 * 24 * time.Hour), Unit: Bytes})
	if err != nil {
		t.Fatal(err)
	}
	ds := linePaths(t, string(got))
	if len(ds) != 1 {
		t.Fatalf("%d lines, want 1", len(ds))
	}
	points := strings.Count(ds[0], "L") + strings.Count(ds[0], "M")
	if points > 4*800 {
		t.Errorf("%d points drawn for an 800 px chart, want at most 4 per column", points)
	}
	// The spike (7 GiB, the top of the axis at 8 GiB) must be drawn: its y
	// is well above every other point's.
	c, err := newChart([]Series{s}, Options{From: t0, To: t0.Add(30 * 24 * time.Hour), Unit: Bytes})
	if err != nil {
		t.Fatal(err)
	}
	spikeY := " " + formatTenths(tenths(c.y(7<<30)))
	drawn := false
	for _, end := range []string{"L", "M", "h", "\x00"} {
		drawn = drawn || strings.Contains(ds[0]+"\x00", spikeY+end)
	}
	if !drawn {
		t.Errorf("the spike at y=%s is not drawn", spikeY)
	}
}

func formatTenths(n int64) string {
	var w writer
	w.tenths(n)
	return w.String()
}

func TestStats(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := map[string]struct {
		pts         []Point
		lo, avg, hi float64
		ok          bool
	}{
		"empty":    {pts: nil},
		"only NaN": {pts: []Point{{1, nan}, {2, inf}, {3, -inf}}},
		"one":      {pts: []Point{{1, 5}}, lo: 5, avg: 5, hi: 5, ok: true},
		"several":  {pts: []Point{{1, 1}, {2, nan}, {3, 2}, {4, inf}, {5, 6}}, lo: 1, avg: 3, hi: 6, ok: true},
		"huge":     {pts: []Point{{1, math.MaxFloat64}, {2, math.MaxFloat64}}, lo: math.MaxFloat64, avg: math.MaxFloat64, hi: math.MaxFloat64, ok: true},
		"negative": {pts: []Point{{1, -4}, {2, -2}}, lo: -4, avg: -3, hi: -2, ok: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			lo, avg, hi, ok := Stats(tc.pts)
			if lo != tc.lo || avg != tc.avg || hi != tc.hi || ok != tc.ok {
				t.Errorf("Stats = %v, %v, %v, %v; want %v, %v, %v, %v", lo, avg, hi, ok, tc.lo, tc.avg, tc.hi, tc.ok)
			}
		})
	}
}

func BenchmarkRender30d1m(b *testing.B) {
	s := []Series{series30d()}
	o := Options{Width: 800, Height: 240, From: t0, To: t0.Add(30 * 24 * time.Hour), Unit: Bytes, Location: amsterdam(b)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(s, o); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRender30d1m8Series(b *testing.B) {
	s := make([]Series, 8)
	for i := range s {
		s[i] = series30d()
	}
	o := Options{Width: 800, Height: 240, From: t0, To: t0.Add(30 * 24 * time.Hour), Unit: Bytes, Location: amsterdam(b)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(s, o); err != nil {
			b.Fatal(err)
		}
	}
}

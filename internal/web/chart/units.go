package chart

import (
	"math"
	"strconv"
	"strings"
)

// Unit is what a series' values measure; it decides how values are
// formatted and which steps the value axis uses.
type Unit int

// The units a chart knows. Percent values are percentages (97.3, not
// 0.973); Seconds and Milliseconds are durations.
const (
	None           Unit = iota // plain numbers, SI prefixes from 1000 up (1.5k, 2M)
	Bytes                      // B, KiB, MiB, GiB, TiB (binary prefixes)
	BytesPerSecond             // B/s, KiB/s, MiB/s … (binary prefixes)
	BitsPerSecond              // bit/s, kbit/s, Mbit/s … (SI prefixes)
	Percent                    // 97.3 %
	Seconds                    // ns, µs, ms, s, min, h, d
	Milliseconds               // as Seconds, from a value in milliseconds
	Count                      // whole things: 12, 1.5k, 3M (SI prefixes)
)

// scale is one prefix of a unit: values at or above f are shown divided by
// f, followed by suffix.
type scale struct {
	f      float64
	suffix string
	// whole asks tick labels at this scale to have no decimals ("90 s",
	// not "1.5 min"); when a tick needs some, a smaller scale is used.
	whole bool
}

var (
	siScales = []scale{{1, "", false}, {1e3, "k", false}, {1e6, "M", false}, {1e9, "G", false}, {1e12, "T", false}, {1e15, "P", false}}

	byteScales       = binaryScales(" B")
	bytesRateScales  = binaryScales(" B/s")
	bitsRateScales   = []scale{{1, " bit/s", false}, {1e3, " kbit/s", false}, {1e6, " Mbit/s", false}, {1e9, " Gbit/s", false}, {1e12, " Tbit/s", false}}
	percentScales    = []scale{{1, " %", false}}
	durationScales   = []scale{{1e-9, " ns", false}, {1e-6, " µs", false}, {1e-3, " ms", false}, {1, " s", false}, {60, " min", true}, {3600, " h", true}, {86400, " d", true}}
	durationZeroText = "0 s"
)

func binaryScales(unit string) []scale {
	prefixes := []string{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"}
	s := make([]scale, len(prefixes))
	for i, p := range prefixes {
		s[i] = scale{f: math.Pow(1024, float64(i)), suffix: " " + p + unit[1:]}
	}
	return s
}

// scales returns the prefixes of u, smallest first, and the unit u's values
// are to be divided by before (Milliseconds are shown as durations).
func (u Unit) scales() (s []scale, divisor float64) {
	switch u {
	case Bytes:
		return byteScales, 1
	case BytesPerSecond:
		return bytesRateScales, 1
	case BitsPerSecond:
		return bitsRateScales, 1
	case Percent:
		return percentScales, 1
	case Seconds:
		return durationScales, 1
	case Milliseconds:
		return durationScales, 1000
	default:
		return siScales, 1
	}
}

// zeroText is how 0 is shown in unit u.
func (u Unit) zeroText() string {
	switch u {
	case Seconds, Milliseconds:
		return durationZeroText
	}
	s, _ := u.scales()
	return "0" + s[0].suffix
}

// pick returns the index of the largest scale not above |v|, or 0.
func pick(s []scale, v float64) int {
	a := math.Abs(v)
	i := 0
	for j := range s {
		if s[j].f <= a {
			i = j
		}
	}
	return i
}

// FormatValue formats v in unit u with about three significant digits and
// the largest prefix not above it: "1.5 KiB", "97.3 %", "12 ms", "1.5k".
// Non-finite values are formatted as strconv does ("NaN", "+Inf").
func FormatValue(v float64, u Unit) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	s, div := u.scales()
	v /= div
	if v == 0 {
		return u.zeroText()
	}
	i := pick(s, v)
	return significant(v/s[i].f) + s[i].suffix
}

// significant formats x with three significant digits, or all its integer
// digits when it has more, without trailing zeros.
func significant(x float64) string {
	a := math.Abs(x)
	var s string
	switch {
	case a >= 1e6: // beyond the largest prefix
		s = strconv.FormatFloat(x, 'g', 3, 64)
	case a >= 100:
		s = strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(x, 'f', 1, 64)
	case a >= 1:
		s = strconv.FormatFloat(x, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(x, 'g', 3, 64)
	}
	return trimZeros(s)
}

// trimZeros removes the trailing zeros of a decimal fraction, and its
// point when nothing is left after it. "-0" becomes "0".
func trimZeros(s string) string {
	if strings.ContainsAny(s, "eE") {
		return s
	}
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		return "0"
	}
	return s
}

// maxTickDecimals is how many decimals a tick label may have before a
// smaller prefix is used: 1.25 GiB, but 1025 KiB rather than 1.0009765625 MiB.
const maxTickDecimals = 2

// formatTick formats a tick value v of an axis whose ticks are step apart.
// Each tick gets its own prefix (256 MiB, 512 MiB, 768 MiB, 1 GiB) with the
// decimals the step needs, so neighbouring labels never read the same.
func formatTick(v, step float64, u Unit) string {
	s, div := u.scales()
	v /= div
	step /= div
	if v == 0 {
		if u == Seconds || u == Milliseconds {
			// "0 ms" above "10 ms", "0 h" below "6 h".
			return "0" + s[pick(s, step)].suffix
		}
		return u.zeroText()
	}
	i := pick(s, v)
	for ; i > 0; i-- {
		limit := maxTickDecimals
		if s[i].whole {
			limit = 0
		}
		if decimals(step/s[i].f) <= limit && decimals(v/s[i].f) <= limit {
			break
		}
	}
	x := v / s[i].f
	d := max(decimals(step/s[i].f), decimals(x))
	if d > 12 || math.Abs(x) >= 1e6 {
		return significant(x) + s[i].suffix
	}
	return trimZeros(strconv.FormatFloat(x, 'f', d, 64)) + s[i].suffix
}

// decimals returns how many decimals x needs to be written exactly (up to
// float rounding), or 13 when it needs more than 12.
func decimals(x float64) int {
	x = math.Abs(x)
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return 13
	}
	p := 1.0
	for d := 0; d <= 12; d++ {
		y := x * p
		if math.Abs(y-math.Round(y)) <= 1e-9*y {
			return d
		}
		p *= 10
	}
	return 13
}

// valueTicks returns at most maxTicks+1 evenly spaced tick values, in
// steps that suit u, the first at or below lo and the last at or above hi.
// It returns the step too.
func valueTicks(lo, hi float64, maxTicks int, u Unit) (ticks []float64, step float64) {
	if lo > hi {
		lo, hi = hi, lo
	}
	maxTicks = max(maxTicks, 1)
	if hi-lo <= 1e-9*math.Max(math.Abs(lo), math.Abs(hi)) {
		// One value, or nearly: give it some room.
		if lo == 0 && hi == 0 {
			hi = 1
		} else {
			d := math.Max(math.Abs(lo), math.Abs(hi)) * 0.1
			if lo >= 0 && lo-d < 0 {
				lo, hi = 0, hi+d
			} else if hi <= 0 && hi+d > 0 {
				lo, hi = lo-d, 0
			} else {
				lo, hi = lo-d, hi+d
			}
		}
	}
	n := float64(maxTicks)
	raw := hi/n - lo/n
	if !(raw > 0) || math.IsInf(raw, 0) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return []float64{lo, hi}, hi/2 - lo/2
	}
	step = niceStep(raw, u)
	for range 64 {
		if !(step > 0) || math.IsInf(step, 0) {
			break
		}
		a, b := math.Floor(lo/step), math.Ceil(hi/step)
		if b-a <= n {
			ticks = make([]float64, 0, int(b-a)+1)
			for k := a; k <= b; k++ {
				v := k * step
				if v == 0 {
					v = 0 // no -0
				}
				ticks = append(ticks, v)
			}
			if len(ticks) >= 2 && !math.IsInf(ticks[0], 0) && !math.IsInf(ticks[len(ticks)-1], 0) {
				return ticks, step
			}
			break
		}
		step = niceStep(step*(1+1e-9), u)
	}
	return []float64{lo, hi}, hi/2 - lo/2
}

// niceStep returns the smallest step at or above raw that suits u: 1-2-5
// times a power of ten; powers of two for bytes from 512 B up; 1, 2, 5, 10,
// 15, 30 s, min, then 1, 2, 3, 6, 12 h, then days and weeks for durations.
// Counts never step by less than 1.
func niceStep(raw float64, u Unit) float64 {
	switch u {
	case Bytes, BytesPerSecond:
		if step125(raw) > 500 {
			p := math.Exp2(math.Ceil(math.Log2(raw)))
			if p < raw*(1-1e-12) {
				p *= 2
			}
			return p
		}
		if u == Bytes {
			return math.Max(1, step125(raw))
		}
	case Seconds:
		return durationStep(raw)
	case Milliseconds:
		return durationStep(raw/1000) * 1000
	case Count:
		return math.Max(1, step125(raw))
	}
	return step125(raw)
}

// step125 returns the smallest 1, 2 or 5 times a power of ten at or above raw.
func step125(raw float64) float64 {
	e := math.Floor(math.Log10(raw))
	base := math.Pow(10, e)
	for _, m := range []float64{1, 2, 5, 10} {
		if m*base >= raw*(1-1e-12) {
			return m * base
		}
	}
	return 10 * base
}

// durationSteps are the steps of a duration axis from 1 s to a week, in
// seconds.
var durationSteps = []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
	3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400}

func durationStep(raw float64) float64 {
	if raw < 1 {
		return step125(raw)
	}
	for _, s := range durationSteps {
		if s >= raw*(1-1e-12) {
			return s
		}
	}
	return step125(raw/86400) * 86400
}

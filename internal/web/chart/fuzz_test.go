package chart

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// FuzzRender draws charts of arbitrary points and options: Render must
// never panic, and what it returns must be one well-formed, script-free
// SVG element.
func FuzzRender(f *testing.F) {
	pt := func(t int64, v float64) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(t))
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	var regular []byte
	for i := range 100 {
		regular = append(regular, pt(t0.UnixMilli()+int64(i)*60_000, float64(i%7))...)
	}
	f.Add(uint16(800), uint16(240), uint8(Bytes), int64(0), int64(0), uint8(1), "cpu", regular)
	f.Add(uint16(0), uint16(0), uint8(Percent), t0.UnixMilli(), t0.UnixMilli()+3_600_000, uint8(3), "<b>&", regular)
	f.Add(uint16(200), uint16(100), uint8(Seconds), int64(0), int64(0), uint8(2), "\xff\x00",
		append(pt(math.MinInt64, math.NaN()), pt(math.MaxInt64, math.MaxFloat64)...))
	f.Add(uint16(300), uint16(120), uint8(None), int64(-62135596800000), int64(253402300799999), uint8(1), "",
		append(pt(0, -math.MaxFloat64), pt(1, math.MaxFloat64)...))
	f.Add(uint16(4000), uint16(2000), uint8(Milliseconds), int64(1), int64(2), uint8(16), "x",
		append(pt(1, 5e-324), pt(2, math.Inf(1))...))

	f.Fuzz(func(t *testing.T, w, h uint16, unit uint8, from, to int64, nseries uint8, name string, data []byte) {
		o := Options{Width: int(w), Height: int(h), Unit: Unit(unit % 9), Title: name}
		if from != 0 {
			o.From = time.UnixMilli(from)
		}
		if to != 0 {
			o.To = time.UnixMilli(to)
		}
		if unit&0x80 != 0 {
			o.Location = time.FixedZone("X", int(int8(unit))*900)
		}
		series := make([]Series, int(nseries%20))
		for i := range series {
			series[i].Name = name
		}
		for i := 0; len(series) > 0 && i+16 <= len(data); i += 16 {
			p := Point{T: int64(binary.LittleEndian.Uint64(data[i:])), V: math.Float64frombits(binary.LittleEndian.Uint64(data[i+8:]))}
			s := &series[(i/16)%len(series)]
			s.Points = append(s.Points, p)
		}
		got, err := Render(series, o)
		if err != nil {
			return
		}
		if err := safeSVG(string(got)); err != nil {
			t.Fatalf("%v\n%s", err, got)
		}
	})
}

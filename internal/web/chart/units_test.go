package chart

import (
	"math"
	"slices"
	"testing"
)

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		u    Unit
		want string
	}{
		{0, None, "0"},
		{0.00123, None, "0.00123"},
		{-2.5, None, "-2.5"},
		{12, None, "12"},
		{1234.5, None, "1.23k"},
		{1500, Count, "1.5k"},
		{999, Count, "999"},
		{3e6, Count, "3M"},
		{2.5e9, Count, "2.5G"},
		{0, Bytes, "0 B"},
		{512, Bytes, "512 B"},
		{1000, Bytes, "1000 B"},
		{1536, Bytes, "1.5 KiB"},
		{256 << 20, Bytes, "256 MiB"},
		{1.25 * (1 << 30), Bytes, "1.25 GiB"},
		{3 << 40, Bytes, "3 TiB"},
		{-2048, Bytes, "-2 KiB"},
		{2048, BytesPerSecond, "2 KiB/s"},
		{100, BitsPerSecond, "100 bit/s"},
		{1.5e6, BitsPerSecond, "1.5 Mbit/s"},
		{950e3, BitsPerSecond, "950 kbit/s"},
		{97.34, Percent, "97.3 %"},
		{100, Percent, "100 %"},
		{0.05, Percent, "0.05 %"},
		{0, Seconds, "0 s"},
		{5e-9, Seconds, "5 ns"},
		{2.5e-5, Seconds, "25 µs"},
		{0.012, Seconds, "12 ms"},
		{1.5, Seconds, "1.5 s"},
		{90, Seconds, "1.5 min"},
		{3600, Seconds, "1 h"},
		{3 * 86400, Seconds, "3 d"},
		{12, Milliseconds, "12 ms"},
		{0.25, Milliseconds, "250 µs"},
		{1500, Milliseconds, "1.5 s"},
		{0, Milliseconds, "0 s"},
		{99.96, Percent, "100 %"},
		{math.NaN(), Bytes, "NaN"},
		{math.Inf(1), Percent, "+Inf"},
		{math.MaxFloat64, Count, "1.8e+293P"},
	}
	for _, tc := range tests {
		if got := FormatValue(tc.v, tc.u); got != tc.want {
			t.Errorf("FormatValue(%v, %d) = %q, want %q", tc.v, tc.u, got, tc.want)
		}
	}
}

func TestValueTicks(t *testing.T) {
	const (
		mib = 1 << 20
		gib = 1 << 30
	)
	tests := []struct {
		name     string
		lo, hi   float64
		maxTicks int
		u        Unit
		want     []string
	}{
		{"percent", 0, 97.3, 5, Percent, []string{"0 %", "20 %", "40 %", "60 %", "80 %", "100 %"}},
		{"percent narrow", 0, 3.2, 4, Percent, []string{"0 %", "1 %", "2 %", "3 %", "4 %"}},
		{"plain negative", -7, 12, 4, None, []string{"-10", "0", "10", "20"}},
		{"plain decimals", 0.1, 0.37, 5, None, []string{"0.1", "0.2", "0.3", "0.4"}},
		{"bytes binary", 0, 1000 * mib, 4, Bytes, []string{"0 B", "256 MiB", "512 MiB", "768 MiB", "1 GiB"}},
		{"bytes per tick prefix", 0, 1.2 * gib, 5, Bytes, []string{"0 B", "256 MiB", "512 MiB", "768 MiB", "1 GiB", "1.25 GiB"}},
		{"bytes large", 0, 7 * gib, 4, Bytes, []string{"0 B", "2 GiB", "4 GiB", "6 GiB", "8 GiB"}},
		{"bytes small", 0, 180, 4, Bytes, []string{"0 B", "50 B", "100 B", "150 B", "200 B"}},
		{"bytes near a prefix", 1023 * 1024, 1025 * 1024, 4, Bytes, []string{"1023 KiB", "1023.5 KiB", "1024 KiB", "1024.5 KiB", "1025 KiB"}},
		{"bytes constant zero", 0, 0, 4, Bytes, []string{"0 B", "1 B"}},
		{"bits", 0, 72e6, 4, BitsPerSecond, []string{"0 bit/s", "20 Mbit/s", "40 Mbit/s", "60 Mbit/s", "80 Mbit/s"}},
		{"count whole", 0, 3, 8, Count, []string{"0", "1", "2", "3"}},
		{"count k", 0, 4500, 5, Count, []string{"0", "1k", "2k", "3k", "4k", "5k"}},
		{"seconds", 0, 0.031, 4, Seconds, []string{"0 ms", "10 ms", "20 ms", "30 ms", "40 ms"}},
		{"milliseconds", 0, 31, 4, Milliseconds, []string{"0 ms", "10 ms", "20 ms", "30 ms", "40 ms"}},
		{"seconds to minutes", 0, 100, 4, Seconds, []string{"0 s", "30 s", "60 s", "90 s", "120 s"}},
		{"hours", 0, 20 * 3600, 4, Seconds, []string{"0 h", "6 h", "12 h", "18 h", "24 h"}},
		{"days", 0, 20 * 86400, 4, Seconds, []string{"0 d", "7 d", "14 d", "21 d"}},
		{"constant", 5, 5, 4, None, []string{"4.5", "5", "5.5"}},
		{"constant", 42, 42, 4, Percent, []string{"35 %", "40 %", "45 %", "50 %"}},
		{"constant near zero", 3, 3, 4, Percent, []string{"2.6 %", "2.8 %", "3 %", "3.2 %", "3.4 %"}},
		{"days to hours", 3600, 5 * 86400, 5, Seconds, []string{"0 d", "1 d", "2 d", "3 d", "4 d", "5 d"}},
		{"tiny", 1e-7, 3e-7, 2, None, []string{"0.0000001", "0.0000002", "0.0000003"}},
		{"huge", -math.MaxFloat64, math.MaxFloat64, 4, None, []string{"-1.8e+293P", "1.8e+293P"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ticks, step := valueTicks(tc.lo, tc.hi, tc.maxTicks, tc.u)
			var got []string
			for _, v := range ticks {
				got = append(got, formatTick(v, step, tc.u))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ticks %q, want %q", got, tc.want)
			}
			if ticks[0] > tc.lo || ticks[len(ticks)-1] < tc.hi {
				t.Errorf("ticks %v do not cover [%v, %v]", ticks, tc.lo, tc.hi)
			}
		})
	}
}

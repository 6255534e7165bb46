package chart

import (
	"slices"
	"testing"
	"time"
)

func TestTimeTicks(t *testing.T) {
	ams := amsterdam(t)
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		name     string
		from, to time.Time
		maxTicks int
		loc      *time.Location
		want     []string // labels
		first    string   // RFC 3339 time of the first tick, when set
	}{
		{name: "1 h", from: utc("2026-03-01T09:03:00Z"), to: utc("2026-03-01T10:03:00Z"), maxTicks: 9, loc: time.UTC,
			want: []string{"09:10", "09:20", "09:30", "09:40", "09:50", "10:00"}},
		{name: "1 h in Amsterdam", from: utc("2026-03-01T09:03:00Z"), to: utc("2026-03-01T10:03:00Z"), maxTicks: 9, loc: ams,
			want: []string{"10:10", "10:20", "10:30", "10:40", "10:50", "11:00"}, first: "2026-03-01T09:10:00Z"},
		{name: "1 h in Kolkata (+05:30)", from: utc("2026-03-01T09:00:00Z"), to: utc("2026-03-01T10:00:00Z"), maxTicks: 4, loc: kolkata,
			want: []string{"14:30", "14:45", "15:00", "15:15", "15:30"}},
		{name: "5 min", from: utc("2026-03-01T09:00:00Z"), to: utc("2026-03-01T09:05:00Z"), maxTicks: 9, loc: time.UTC,
			want: []string{"09:00", "09:01", "09:02", "09:03", "09:04", "09:05"}},
		{name: "1 min", from: utc("2026-03-01T09:00:00Z"), to: utc("2026-03-01T09:01:00Z"), maxTicks: 5, loc: time.UTC,
			want: []string{"09:00:00", "09:00:15", "09:00:30", "09:00:45", "09:01:00"}},
		{name: "24 h", from: utc("2026-03-05T00:00:00Z"), to: utc("2026-03-06T00:00:00Z"), maxTicks: 9, loc: ams,
			want: []string{"03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00", "Mar 6"}},
		{name: "24 h over DST start", from: utc("2026-03-28T23:00:00Z"), to: utc("2026-03-29T22:00:00Z"), maxTicks: 9, loc: ams,
			want: []string{"Mar 29", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00", "Mar 30"}},
		{name: "24 h over DST end", from: utc("2026-10-24T22:00:00Z"), to: utc("2026-10-25T23:00:00Z"), maxTicks: 9, loc: ams,
			want: []string{"Oct 25", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00", "Oct 26"}},
		{name: "7 d", from: utc("2026-03-01T00:00:00Z"), to: utc("2026-03-08T00:00:00Z"), maxTicks: 9, loc: ams,
			want: []string{"Mar 2", "Mar 3", "Mar 4", "Mar 5", "Mar 6", "Mar 7", "Mar 8"}},
		{name: "7 d, narrow", from: utc("2026-03-01T00:00:00Z"), to: utc("2026-03-08T00:00:00Z"), maxTicks: 4, loc: time.UTC,
			want: []string{"Mar 2", "Mar 4", "Mar 6", "Mar 8"}},
		{name: "30 d", from: utc("2026-03-01T00:00:00Z"), to: utc("2026-03-31T00:00:00Z"), maxTicks: 9, loc: ams,
			want: []string{"Mar 2", "Mar 9", "Mar 16", "Mar 23", "Mar 30"}, first: "2026-03-01T23:00:00Z"},
		{name: "1 year", from: utc("2026-01-15T00:00:00Z"), to: utc("2027-01-15T00:00:00Z"), maxTicks: 6, loc: time.UTC,
			want: []string{"Apr 2026", "Jul 2026", "Oct 2026", "Jan 2027"}},
		{name: "decades", from: utc("1971-06-01T00:00:00Z"), to: utc("2026-06-01T00:00:00Z"), maxTicks: 6, loc: time.UTC,
			want: []string{"1980", "1990", "2000", "2010", "2020"}},
		{name: "reversed", from: utc("2026-03-02T00:00:00Z"), to: utc("2026-03-01T00:00:00Z"), maxTicks: 6, loc: time.UTC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ticks := timeTicks(tc.from, tc.to, tc.maxTicks, tc.loc)
			var got []string
			for i, tk := range ticks {
				got = append(got, tk.Label)
				if tk.T.Before(tc.from) || tk.T.After(tc.to) || i > 0 && !tk.T.After(ticks[i-1].T) {
					t.Errorf("tick %v out of range or order", tk.T)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("labels %q, want %q", got, tc.want)
			}
			if tc.first != "" && len(ticks) > 0 && !ticks[0].T.Equal(mustParse(t, tc.first)) {
				t.Errorf("first tick at %v, want %s", ticks[0].T.UTC(), tc.first)
			}
		})
	}
}

func mustParse(t *testing.T, s string) time.Time {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

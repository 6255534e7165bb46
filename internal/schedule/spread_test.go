package schedule

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"
)

// ts1700 is Unix second 1,700,000,000: 20 mod 60, 200 mod 300.
var ts1700 = time.Unix(1_700_000_000, 0).UTC()

func TestNextRun(t *testing.T) {
	ms := time.Millisecond
	us := time.Microsecond
	tests := []struct {
		name     string
		now      time.Time
		asset    uint64
		check    uint64
		interval time.Duration
		want     time.Time
	}{
		{"later in the minute", ts1700, 1, 1, time.Minute,
			time.Unix(1_700_000_042, int64(31250*us))}, // (2-20) mod 60 = 42, 1/32 s
		{"offset zero at asset 32", ts1700, 32, 8, time.Minute,
			time.Unix(1_700_000_020, 0)}, // 40-20 = 20
		{"now is the slot", ts1700, 10, 10, time.Minute,
			time.Unix(1_700_000_000, int64(312500*us))}, // 10/32 s
		{"just past the slot waits a whole interval", ts1700.Add(500 * ms), 10, 10, time.Minute,
			time.Unix(1_700_000_060, int64(312500*us))}, // (20-20.5) mod 60 = 59.5
		{"largest offset", ts1700, 31, 0, time.Minute,
			time.Unix(1_700_000_011, int64(968750*us))}, // 31/32 s
		{"five minutes", ts1700, 12345, 67890, 5 * time.Minute,
			time.Unix(1_700_000_235, int64(781250*us))}, // 80235%300=135, (135-200) mod 300 = 235, 12345%32 = 25
		{"sum wraps 64 bits", ts1700, math.MaxUint64, 1, time.Minute,
			time.Unix(1_700_000_056, int64(968750*us))}, // 2^64 % 60 = 16, (16-20) mod 60 = 56
		{"epoch", time.Unix(0, 0), 5, 5, time.Minute,
			time.Unix(10, int64(156250*us))},
		{"before the epoch", time.Unix(-50, 0), 5, 5, time.Minute,
			time.Unix(-50, int64(156250*us))}, // -50 mod 60 = 10 = 5+5
		{"before the epoch, later slot", time.Unix(-50, 0), 6, 5, time.Minute,
			time.Unix(-49, int64(187500*us))}, // (11-10) mod 60 = 1
		{"sub-second interval", ts1700, 1, 0, 1500 * ms,
			time.Unix(1_700_000_000, int64(531250*us))}, // 1 % 1.5 = 1, ts % 1.5 = 0.5
		{"one second", ts1700.Add(250 * ms), 7, 3, time.Second,
			time.Unix(1_700_000_001, int64(218750*us))}, // 7/32 s
		{"no interval", ts1700, 7, 3, 0, ts1700},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NextRun(tt.now, tt.asset, tt.check, tt.interval)
			if !got.Equal(tt.want) {
				t.Errorf("NextRun(%v, %d, %d, %v) = %v, want %v",
					tt.now.Unix(), tt.asset, tt.check, tt.interval,
					fmtUnix(got), fmtUnix(tt.want))
			}
		})
	}
}

// TestNextRunMatchesFormula checks NextRun against the formula of the wire
// spec evaluated literally with exact rationals, for random inputs.
func TestNextRunMatchesFormula(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2)) // #nosec G404 -- reproducible test inputs, not secrets
	intervals := []int64{1, 5, 10, 30, 60, 300, 900, 3600, 86400}
	for i := range 5000 {
		interval := intervals[i%len(intervals)]
		asset := rng.Uint64() >> rng.IntN(64)
		check := rng.Uint64() >> rng.IntN(64)
		now := time.Unix(1_600_000_000+rng.Int64N(400_000_000), rng.Int64N(1e9))
		got := NextRun(now, asset, check, time.Duration(interval)*time.Second)
		want := referenceNextRun(now, asset, check, interval)
		if !got.Equal(want) {
			t.Fatalf("NextRun(%s, %d, %d, %ds) = %s, want %s",
				fmtUnix(now), asset, check, interval, fmtUnix(got), fmtUnix(want))
		}
		// Properties: not before now, within an interval and a second of it,
		// and on a whole second congruent to asset+check once the offset is
		// taken off.
		wait := got.Sub(now)
		if wait < 0 || wait >= time.Duration(interval)*time.Second+time.Second {
			t.Fatalf("NextRun waits %v for interval %ds", wait, interval)
		}
		slot := got.Add(-time.Duration(asset%32) * spreadStep)
		if slot.Nanosecond() != 0 {
			t.Fatalf("slot %s is not a whole second", fmtUnix(slot))
		}
		sum := new(big.Int).Add(new(big.Int).SetUint64(asset), new(big.Int).SetUint64(check))
		if slot.Unix()%interval != new(big.Int).Mod(sum, big.NewInt(interval)).Int64() {
			t.Fatalf("slot %d is not congruent to %d+%d modulo %d", slot.Unix(), asset, check, interval)
		}
	}
}

// referenceNextRun is the formula of INFRASONAR-WIRE.md §4 with rationals:
// ts + ((asset_id + check_id) % interval − ts % interval) mod interval + (asset_id % 32) × 0.03125.
func referenceNextRun(now time.Time, asset, check uint64, interval int64) time.Time {
	iv := new(big.Rat).SetInt64(interval)
	ts := new(big.Rat).SetFrac(big.NewInt(now.UnixNano()), big.NewInt(1e9))
	sum := new(big.Int).Add(new(big.Int).SetUint64(asset), new(big.Int).SetUint64(check))
	phase := new(big.Rat).SetInt(new(big.Int).Mod(sum, big.NewInt(interval)))
	d := new(big.Rat).Sub(phase, ratMod(ts, iv))
	d = ratMod(d, iv)
	offset := new(big.Rat).Mul(new(big.Rat).SetUint64(asset%32), big.NewRat(3125, 100000))
	next := new(big.Rat).Add(new(big.Rat).Add(ts, d), offset)
	ns := new(big.Rat).Mul(next, new(big.Rat).SetInt64(1e9))
	if !ns.IsInt() {
		panic("reference: not a whole nanosecond")
	}
	return time.Unix(0, ns.Num().Int64())
}

// ratMod is x mod m with the sign of m, as Python's % has it.
func ratMod(x, m *big.Rat) *big.Rat {
	q := new(big.Rat).Quo(x, m)
	fl := new(big.Int).Div(q.Num(), q.Denom()) // Euclidean: floor for a positive denominator
	return new(big.Rat).Sub(x, new(big.Rat).Mul(new(big.Rat).SetInt(fl), m))
}

func fmtUnix(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z") + " (" + big.NewRat(t.UnixNano(), 1e9).FloatString(5) + ")"
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		interval, want time.Duration
	}{
		{0, 0},
		{-time.Second, 0},
		{time.Second, 800 * time.Millisecond},
		{10 * time.Second, 8 * time.Second},
		{time.Minute, 48 * time.Second},
		{5 * time.Minute, 240 * time.Second},
		{375 * time.Second, 300 * time.Second},
		{374 * time.Second, 299200 * time.Millisecond},
		{time.Hour, 300 * time.Second},
		{math.MaxInt64, 300 * time.Second},
	}
	for _, tt := range tests {
		if got := Timeout(tt.interval); got != tt.want {
			t.Errorf("Timeout(%v) = %v, want %v", tt.interval, got, tt.want)
		}
	}
}

func FuzzNextRun(f *testing.F) {
	f.Add(int64(1_700_000_000_000_000_000), uint64(1), uint64(1), int64(60_000_000_000))
	f.Fuzz(func(t *testing.T, nowNS int64, asset, check uint64, interval int64) {
		if interval <= 0 || nowNS > math.MaxInt64/2 || nowNS < math.MinInt64/2 || interval > int64(24*time.Hour) {
			return
		}
		now := time.Unix(0, nowNS)
		got := NextRun(now, asset, check, time.Duration(interval))
		if wait := got.Sub(now); wait < 0 || wait >= time.Duration(interval)+time.Second {
			t.Fatalf("NextRun waits %v for interval %v", wait, time.Duration(interval))
		}
	})
}

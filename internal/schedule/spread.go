package schedule

import (
	"math/bits"
	"time"
)

// MaxTimeout caps the timeout of a run, whatever its interval.
const MaxTimeout = 300 * time.Second

// spreadStep is the part of a second that each value of asset_id % 32 adds
// to a run's start: 1/32 s.
const spreadStep = time.Second / 32

// NextRun returns the first run time at or after now of the check checkID of
// the asset assetID, spread as InfraSonar's probes spread them
// (INFRASONAR-WIRE.md §4):
//
//	ts + ((asset_id + check_id) % interval − ts % interval) mod interval + (asset_id % 32) × 0.03125 s
//
// where ts is now in Unix seconds (with its fraction) and interval is in
// seconds. The arithmetic is exact, in nanoseconds and without overflow, so
// that for a whole-second interval the result lies on the whole second that
// is congruent to asset_id + check_id modulo the interval, plus the
// sub-second offset; its Unix seconds are that slot. A non-positive interval
// returns now.
func NextRun(now time.Time, assetID, checkID uint64, interval time.Duration) time.Time {
	if interval <= 0 {
		return now
	}
	iv := uint64(interval)
	// (asset_id + check_id) seconds modulo the interval, in nanoseconds:
	// ((a+c) mod iv) × 1e9 mod iv, with the 65-bit sum and the 128-bit
	// product kept whole.
	sum, carry := bits.Add64(assetID, checkID, 0)
	hi, lo := bits.Mul64(bits.Rem64(carry, sum, iv), uint64(time.Second))
	phase := int64(bits.Rem64(hi, lo, iv)) // #nosec G115 -- below interval, an int64
	ts := now.UnixNano() % int64(interval)
	if ts < 0 {
		ts += int64(interval)
	}
	wait := (phase - ts) % int64(interval)
	if wait < 0 {
		wait += int64(interval)
	}
	offset := time.Duration(assetID%32) * spreadStep // #nosec G115 -- below 32
	return now.Add(time.Duration(wait) + offset)
}

// Timeout returns how long a run of a check with the given interval may
// take: min(0.8 × interval, 300 s). A non-positive interval returns 0.
func Timeout(interval time.Duration) time.Duration {
	switch {
	case interval <= 0:
		return 0
	case interval >= MaxTimeout/4*5:
		return MaxTimeout
	}
	return interval * 4 / 5
}

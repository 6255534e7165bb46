package main

import (
	"math"
	"slices"
	"sort"
	"time"
)

// maxLatencies bounds the latencies one worker keeps (8 bytes each): at
// that point every further one replaces a random kept one (reservoir
// sampling), so percentiles stay unbiased and memory stays bounded.
const maxLatencies = 1 << 20

// workerStats is what one load worker counts. It is owned by its worker
// until the load ends; merge combines them.
type workerStats struct {
	results   int64 // answered with a 2xx status
	samples   int64 // samples in those results
	latencies []time.Duration
	seen      int64 // latencies observed, kept or not
	errors    map[string]int64
	firstErr  map[string]string
	rnd       uint64 // reservoir sampling state
}

func newWorkerStats() *workerStats {
	return &workerStats{errors: map[string]int64{}, firstErr: map[string]string{}, rnd: 0x9e3779b97f4a7c15}
}

// observe records the latency of one request.
func (s *workerStats) observe(d time.Duration) {
	s.seen++
	if len(s.latencies) < maxLatencies {
		s.latencies = append(s.latencies, d)
		return
	}
	// xorshift64: cheap, and reproducibility is not needed here.
	s.rnd ^= s.rnd << 13
	s.rnd ^= s.rnd >> 7
	s.rnd ^= s.rnd << 17
	if j := s.rnd % uint64(s.seen); j < maxLatencies {
		s.latencies[j] = d
	}
}

// fail counts a failed request under key (an HTTP status or an error
// class), keeping the first message of each key.
func (s *workerStats) fail(key, msg string) {
	s.errors[key]++
	if _, ok := s.firstErr[key]; !ok {
		s.firstErr[key] = msg
	}
}

// merge combines the workers' counts.
func merge(ws []*workerStats) *workerStats {
	out := newWorkerStats()
	for _, w := range ws {
		out.results += w.results
		out.samples += w.samples
		out.seen += w.seen
		out.latencies = append(out.latencies, w.latencies...)
		for k, v := range w.errors {
			out.errors[k] += v
			if _, ok := out.firstErr[k]; !ok {
				out.firstErr[k] = w.firstErr[k]
			}
		}
	}
	return out
}

// Latency summarises request latencies, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// summarize sorts d in place and returns its percentiles.
func summarize(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return Latency{
		Count: int64(len(d)),
		P50:   ms(percentile(d, 50)),
		P90:   ms(percentile(d, 90)),
		P99:   ms(percentile(d, 99)),
		Max:   ms(d[len(d)-1]),
		Mean:  ms(sum / time.Duration(len(d))),
	}
}

// percentile returns the p-th percentile (0 < p ≤ 100) of the sorted
// values by the nearest-rank method: the smallest value such that at
// least p% of the values are less than or equal to it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

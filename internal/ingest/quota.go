package ingest

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// ErrQuota is wrapped by Ingest's error when a container would hold more
// active series than its quota allows. Nothing is stored then.
var ErrQuota = errors.New("series quota exceeded")

// seriesQuota counts the active series of each container, so that one
// tenant (or one compromised agent token) cannot exhaust the hub's memory
// with made-up item or metric names. A series is active while it received a
// sample within the window. It is a cache: after a restart it starts empty
// and fills as results arrive.
type seriesQuota struct {
	limit  int
	window time.Duration
	seed   maphash.Seed

	mu        sync.Mutex
	active    map[int64]map[uint64]int64 // container → series hash → last seen (Unix s)
	lastPrune time.Time
}

func newSeriesQuota(limit int, window time.Duration) *seriesQuota {
	return &seriesQuota{limit: limit, window: window, seed: maphash.MakeSeed(), active: map[int64]map[uint64]int64{}}
}

func (q *seriesQuota) hash(k *tsstore.SeriesKey) uint64 {
	var h maphash.Hash
	h.SetSeed(q.seed)
	for _, s := range [...]string{k.Metric, k.AssetID, k.Collector, k.Check, k.Item} {
		h.WriteString(s)
		h.WriteByte(0)
	}
	return h.Sum64()
}

// admit records the samples' series as active, or refuses them all when
// the new ones would take the container over its limit.
func (q *seriesQuota) admit(container int64, samples []tsstore.Sample, now time.Time) error {
	if q == nil || q.limit <= 0 || len(samples) == 0 {
		return nil
	}
	hashes := make([]uint64, len(samples))
	for i := range samples {
		hashes[i] = q.hash(&samples[i].Key)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if now.Sub(q.lastPrune) > q.window/10 {
		q.prune(now)
	}
	set := q.active[container]
	if set == nil {
		set = map[uint64]int64{}
		q.active[container] = set
	}
	fresh := 0
	for _, h := range hashes {
		if _, ok := set[h]; !ok {
			fresh++
		}
	}
	if len(set)+fresh > q.limit {
		return fmt.Errorf("container %s has %d active series; %d more would pass its quota of %d: %w",
			strconv.FormatInt(container, 10), len(set), fresh, q.limit, ErrQuota)
	}
	ts := now.Unix()
	for _, h := range hashes {
		set[h] = ts
	}
	return nil
}

// prune forgets series that saw no sample within the window.
func (q *seriesQuota) prune(now time.Time) {
	cutoff := now.Add(-q.window).Unix()
	for c, set := range q.active {
		for h, seen := range set {
			if seen < cutoff {
				delete(set, h)
			}
		}
		if len(set) == 0 {
			delete(q.active, c)
		}
	}
	q.lastPrune = now
}

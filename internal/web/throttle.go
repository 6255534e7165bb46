package web

import (
	"sync"
	"time"
)

// Login throttling: after FailuresBeforeLock failures in a row for one
// account, or from one address, further attempts are refused (even with
// the right password) for LockBase, doubling with every further failure
// up to LockMax. A success resets the account's and the address's count.
const (
	FailuresBeforeLock = 10
	LockBase           = time.Minute
	LockMax            = time.Hour
	// throttleEntries bounds the memory the throttle uses; when full, the
	// oldest quiet entries go.
	throttleEntries = 100_000
)

// throttle counts failed logins by key ("user:<name>", "addr:<ip>").
// Counting for unknown user names too means the answers do not tell
// which names exist.
type throttle struct {
	mu      sync.Mutex
	entries map[string]*failures
}

type failures struct {
	count       int
	lockedUntil time.Time
	last        time.Time
}

func newThrottle() *throttle { return &throttle{entries: map[string]*failures{}} }

// locked reports until when any of the keys is locked (zero when none).
func (t *throttle) locked(now time.Time, keys ...string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	var until time.Time
	for _, k := range keys {
		if f := t.entries[k]; f != nil && now.Before(f.lockedUntil) && f.lockedUntil.After(until) {
			until = f.lockedUntil
		}
	}
	return until
}

// fail counts a failure for every key and returns until when the worst of
// them is now locked (zero when none is).
func (t *throttle) fail(now time.Time, keys ...string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.entries) >= throttleEntries {
		t.evictLocked(now)
	}
	var until time.Time
	for _, k := range keys {
		f := t.entries[k]
		if f == nil {
			f = &failures{}
			t.entries[k] = f
		}
		f.count++
		f.last = now
		if f.count >= FailuresBeforeLock {
			d := LockBase
			for i := FailuresBeforeLock; i < f.count && d < LockMax; i++ {
				d *= 2
			}
			f.lockedUntil = now.Add(min(d, LockMax))
		}
		if f.lockedUntil.After(until) {
			until = f.lockedUntil
		}
	}
	return until
}

// succeed forgets the keys' failures.
func (t *throttle) succeed(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.entries, k)
	}
}

// evictLocked drops entries quiet for a day, then, if still full, half of
// the rest, unlocked ones first.
func (t *throttle) evictLocked(now time.Time) {
	for k, f := range t.entries {
		if now.Sub(f.last) > 24*time.Hour && !now.Before(f.lockedUntil) {
			delete(t.entries, k)
		}
	}
	if len(t.entries) < throttleEntries {
		return
	}
	n := 0
	for k, f := range t.entries {
		if !now.Before(f.lockedUntil) {
			delete(t.entries, k)
			if n++; n >= throttleEntries/2 {
				return
			}
		}
	}
}

// Changes a user may make through forms: a burst of PostBurst, then
// PostsPerMinute. Every change is in the audit log, which is kept 400
// days: nobody may flood it.
const (
	PostBurst      = 60
	PostsPerMinute = 60
)

// postLimiter is a token bucket per user.
type postLimiter struct {
	mu      sync.Mutex
	buckets map[int64]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newPostLimiter() *postLimiter { return &postLimiter{buckets: map[int64]*bucket{}} }

// allow takes a token of user's bucket.
func (l *postLimiter) allow(user int64, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[user]
	if b == nil {
		if len(l.buckets) >= throttleEntries {
			// Full buckets hold nothing worth keeping.
			for id, x := range l.buckets {
				if x.tokens+now.Sub(x.at).Minutes()*PostsPerMinute >= PostBurst {
					delete(l.buckets, id)
				}
			}
		}
		b = &bucket{tokens: PostBurst, at: now}
		l.buckets[user] = b
	}
	b.tokens = min(PostBurst, b.tokens+now.Sub(b.at).Minutes()*PostsPerMinute)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

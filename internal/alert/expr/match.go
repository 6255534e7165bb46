package expr

import (
	"hash/maphash"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync/atomic"
)

// Memoising match(): the strings a pattern is matched against are mostly
// item names and states, which repeat from one item and one result to the
// next, and a regular expression costs a few hundred nanoseconds a call.

const (
	memoSize   = 256 // entries of a matcher's memo, a power of two
	memoMaxLen = 256 // longer strings are not memoised
	memoWays   = 4   // entries a string may be kept in
)

// matcher is the compiled form of match(s, "pattern"): the regular
// expression, a literal prefix that any match must begin with, and a bounded
// memo of earlier answers. The memo is a fixed-size table of
// atomically swapped immutable entries, each checked against the string on a
// hit (a string lives in one of memoWays entries from its hash), so concurrent Evals may use and fill it without locks and its memory
// is bounded (memoSize entries of at most memoMaxLen bytes, allocated when
// the match is first evaluated, not at Parse).
type matcher struct {
	re       *regexp.Regexp
	prefix   string // every match begins with it; "" if none
	anchored bool   // the pattern matches only at the start of the text
	complete bool   // the pattern is prefix itself, unanchored
	seed     maphash.Seed
	memo     atomic.Pointer[memoTable] // allocated at the first call
}

type memoTable [memoSize]atomic.Pointer[memoEntry]

type memoEntry struct {
	s     string
	match bool
}

func newMatcher(re *regexp.Regexp) *matcher {
	m := &matcher{re: re, seed: maphash.MakeSeed()}
	m.prefix, m.complete = re.LiteralPrefix()
	if m.prefix != "" {
		m.anchored = anchoredAtStart(re.String())
		m.complete = m.complete && !m.anchored
	} else {
		m.complete = false
	}
	return m
}

// anchoredAtStart reports whether pattern is a concatenation beginning with
// \A (^ outside multi-line mode), so that it matches only at the start.
func anchoredAtStart(pattern string) bool {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return false
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	return re.Op == syntax.OpConcat && len(re.Sub) > 0 && re.Sub[0].Op == syntax.OpBeginText
}

// MatchString is m.re.MatchString(s).
func (m *matcher) MatchString(s string) bool {
	if m.prefix != "" {
		if m.anchored {
			if !strings.HasPrefix(s, m.prefix) {
				return false
			}
		} else if m.complete {
			return strings.Contains(s, m.prefix)
		} else if !strings.Contains(s, m.prefix) {
			return false
		}
	}
	if len(s) > memoMaxLen {
		return m.re.MatchString(s)
	}
	memo := m.memo.Load()
	if memo == nil {
		m.memo.CompareAndSwap(nil, new(memoTable))
		memo = m.memo.Load()
	}
	h := maphash.String(m.seed, s)
	// Look in a window of memoWays entries from the hash, so that a few
	// strings that hash alike do not keep evicting each other.
	i := uint(h)
	var free *atomic.Pointer[memoEntry]
	for w := uint(0); w < memoWays; w++ {
		slot := &memo[(i+w)&(memoSize-1)]
		e := slot.Load()
		if e == nil {
			if free == nil {
				free = slot
			}
			continue
		}
		if e.s == s {
			return e.match
		}
	}
	if free == nil {
		// Evict the entry other bits of the hash pick.
		free = &memo[(i+uint(h>>32)%memoWays)&(memoSize-1)]
	}
	ok := m.re.MatchString(s)
	// The entry keeps a copy, so as not to hold on to the memory the
	// string came from.
	free.Store(&memoEntry{s: strings.Clone(s), match: ok})
	return ok
}

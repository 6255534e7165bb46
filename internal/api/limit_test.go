package api

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newLimiter(2, 3, func() time.Time { return now })
	var got []bool
	for i := 0; i < 5; i++ {
		got = append(got, l.allow("a"))
	}
	if want := []bool{true, true, true, false, false}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("burst: %v, want %v", got, want)
	}
	if !l.blocked("a") || l.blocked("b") || !l.allow("b") {
		t.Fatal("keys are not independent")
	}
	now = now.Add(500 * time.Millisecond) // one token back at 2/s
	if !l.allow("a") || l.allow("a") {
		t.Fatal("refill is wrong")
	}
	// Refilled buckets are forgotten, so the map does not grow forever.
	now = now.Add(time.Hour)
	l.allow("c")
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets kept, want 1", len(l.buckets))
	}
	var off *limiter
	if !off.allow("x") || !newLimiter(0, 0, time.Now).allow("x") {
		t.Fatal("a disabled limiter refused")
	}
}

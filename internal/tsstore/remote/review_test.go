package remote

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sonde-monitoring/sonde/internal/testutil/tsdbtest"
	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

// Finding: rendering the scoped query is quadratic in the number of
// operators and runs before any read slot is taken. A 40 KB query (the
// API takes 1 MB) costs seconds of CPU per request. Fails now (~8 s).
func TestReviewScopeQueryQuadratic(t *testing.T) {
	m, _, _ := tsstore.Scope{ContainerIDs: []string{"42"}}.MatcherAndKey()
	q := "a" + strings.Repeat("+a", 20000)
	start := time.Now()
	_, _, err := ScopeQuery(parser.NewParser(parser.Options{}), q, m)
	if took := time.Since(start); err == nil && took > 2*time.Second {
		t.Errorf("ScopeQuery of a %d-byte query took %v and was not refused", len(q), took)
	}
}

// Finding: the scope matcher is copied into every selector, so a wide scope
// (an MSP's token, 1000 containers) turns a 15 KB query into ~21 MB before
// it is sent. Fails now.
func TestReviewScopeQueryAmplification(t *testing.T) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = strconv.Itoa(100000 + i)
	}
	m, _, _ := tsstore.Scope{ContainerIDs: ids}.MatcherAndKey()
	q := "a" + strings.Repeat(" or a", 3000)
	_, rendered, err := ScopeQuery(parser.NewParser(parser.Options{}), q, m)
	if err == nil && len(rendered) > 1<<20 {
		t.Errorf("a %d-byte query became a %d-byte query to send, with no bound", len(q), len(rendered))
	}
}

// Finding: two queues on one directory (two hubs given the same --data,
// or an overlapping restart) both open; no lock. Fails now.
func TestReviewQueueOpenTwice(t *testing.T) {
	dir := t.TempDir()
	q1, err := OpenQueue(dir, QueueOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q1.Close()
	q2, err := OpenQueue(dir, QueueOptions{}, nil)
	if err == nil {
		defer q2.Close()
		t.Errorf("a second OpenQueue on %s succeeded while the first is open", dir)
	}
}

// Finding (fixed): a result backdated beyond what the TSDB accepts was
// queued, and the TSDB's refusal held back every other tenant's samples.
// Such a result is refused at Append now, as the embedded store refuses
// one older than its out-of-order window.
func TestReviewBackdatedResultRefused(t *testing.T) {
	srv := tsdbtest.Start(t, tsdbtest.Prometheus)
	s := openStore(t, srv, t.TempDir(), Options{})
	now := time.Now()
	err := s.Append(t.Context(), []tsstore.Sample{
		{Key: sampleKey("c2", "sonde_system_load", ""), T: now.UnixMilli(), V: 1000},
		{Key: sampleKey("c1", "sonde_system_load", ""), T: now.Add(-48 * time.Hour).UnixMilli(), V: 5},
	})
	if !errors.Is(err, tsstore.ErrOutOfRange) {
		t.Fatalf("a result with a sample 48 h old: %v, want ErrOutOfRange", err)
	}
	if st := s.QueueStats(); st.Records != 0 {
		t.Errorf("the refused result reached the queue")
	}
}

// Finding (fixed): one sample the TSDB will not take — here a second,
// different value for a series and time Prometheus holds already, for
// which it refuses and rolls back the whole request — made the sender
// drop (or retry forever) the whole batch, every tenant's samples in it.
// The sender halves the request until that result is alone, and drops
// only it.
func TestReviewPoisonSampleDropsOnlyItself(t *testing.T) {
	srv := tsdbtest.Start(t, tsdbtest.Prometheus)
	s := openStore(t, srv, t.TempDir(), Options{})
	now := time.Now().Truncate(time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := s.Append(ctx, []tsstore.Sample{{Key: sampleKey("c1", "sonde_system_load", ""), T: now.UnixMilli(), V: 1}}); err != nil {
		t.Fatal(err)
	}
	flushed(t, s, srv)
	// Stop the sender's progress while the batch is queued, so that the
	// poison and the good results go out in one request.
	srv.Pause()
	for i := range 20 {
		smp := tsstore.Sample{Key: sampleKey("c2", "sonde_system_load", strconv.Itoa(i)), T: now.UnixMilli(), V: float64(i)}
		if i == 10 {
			smp = tsstore.Sample{Key: sampleKey("c1", "sonde_system_load", ""), T: now.UnixMilli(), V: 5} // another value, same time
		}
		if err := s.Append(ctx, []tsstore.Sample{smp}); err != nil {
			t.Fatal(err)
		}
	}
	srv.Resume()
	flushed(t, s, srv)
	if n := countSamples(t, s, tsstore.Scope{ContainerIDs: []string{"c2"}}, "sonde_system_load", now.Add(time.Second)); n != 19 {
		t.Errorf("c2 has %d samples in the TSDB, want its 19: one result of c1 the TSDB refused took others with it", n)
	}
}

// The same for a sample the TSDB answers with a server error (Prometheus
// 2.42 answers 500 for one older than its out-of-order window; the hub's
// own age check is off here to let it through): the sender halves the
// request, finds the result, checks that the TSDB takes an empty request,
// and drops only that result.
func TestReviewFailingSampleDropsOnlyItself(t *testing.T) {
	srv := tsdbtest.Start(t, tsdbtest.Prometheus)
	s := openStore(t, srv, t.TempDir(), Options{MaxSampleAge: -1})
	now := time.Now().Truncate(time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	if err := s.Append(ctx, []tsstore.Sample{{Key: sampleKey("c1", "sonde_system_load", ""), T: now.UnixMilli(), V: 1}}); err != nil {
		t.Fatal(err)
	}
	flushed(t, s, srv)
	srv.Pause()
	for i := range 20 {
		smp := tsstore.Sample{Key: sampleKey("c2", "sonde_system_load", strconv.Itoa(i)), T: now.UnixMilli(), V: float64(i)}
		if i == 10 {
			smp = tsstore.Sample{Key: sampleKey("c1", "sonde_system_load", ""), T: now.Add(-48 * time.Hour).UnixMilli(), V: 5}
		}
		if err := s.Append(ctx, []tsstore.Sample{smp}); err != nil {
			t.Fatal(err)
		}
	}
	srv.Resume()
	flushed(t, s, srv)
	if n := countSamples(t, s, tsstore.Scope{ContainerIDs: []string{"c2"}}, "sonde_system_load", now.Add(time.Second)); n != 19 {
		t.Errorf("c2 has %d samples in the TSDB, want its 19", n)
	}
}

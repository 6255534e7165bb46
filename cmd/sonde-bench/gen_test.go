package main

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
)

func testShape() shape {
	return shape{Agents: 3, Checks: 4, Items: 2, Metrics: 5, Interval: time.Minute, Decimals: 2, Seed: 7, Start: 1_700_000_000}
}

func TestGeneratorTimeline(t *testing.T) {
	s := testShape()
	g := newAgentGen(s, 1)
	last := map[int]int64{}
	for i := range 4 * 50 {
		if want := g.peekTS(); want <= 0 {
			t.Fatal("no timestamp ahead")
		}
		peek := g.peekTS()
		r := g.next()
		if r.TS != peek {
			t.Fatalf("result %d: peekTS %d, next %d", i, peek, r.TS)
		}
		if r.Check != i%4 || r.Round != i/4 {
			t.Fatalf("result %d: check %d round %d", i, r.Check, r.Round)
		}
		if prev, ok := last[r.Check]; ok && r.TS-prev != 60 {
			t.Fatalf("check %d: step %d s, want 60", r.Check, r.TS-prev)
		}
		if r.TS < s.Start || r.TS >= s.Start+int64(r.Round+1)*60 {
			t.Fatalf("result %d: %d outside its round", i, r.TS)
		}
		last[r.Check] = r.TS
		if len(r.Values) != s.Items*s.Metrics {
			t.Fatalf("%d values", len(r.Values))
		}
		for _, v := range r.Values {
			if v < 0 || math.Abs(v*100-math.Round(v*100)) > 1e-6 {
				t.Fatalf("value %v: negative or more than 2 decimals", v)
			}
		}
	}
	if g.total != 200*10 || g.unchanged == g.total {
		t.Errorf("counted %d samples, %d unchanged", g.total, g.unchanged)
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	a, b := newAgentGen(testShape(), 2), newAgentGen(testShape(), 2)
	c := newAgentGen(testShape(), 1)
	same := true
	for range 20 {
		ra, rb, rc := a.next(), b.next(), c.next()
		if ra.TS != rb.TS || !equal(ra.Values, rb.Values) {
			t.Fatal("same agent, different results")
		}
		same = same && equal(ra.Values, rc.Values)
	}
	if same {
		t.Error("two agents generate the same values")
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestAgentBody checks that what hubSender posts is an agent body the
// hub decodes into the same samples.
func TestAgentBody(t *testing.T) {
	s := testShape()
	g := newAgentGen(s, 0)
	cd := newCheckData(s)
	for range 3 {
		r := g.next()
		got, err := model.DecodeCheckData(bytes.NewReader(agentBody(cd, s, r)), model.Limits{})
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if got.Timestamp != r.TS || got.SampleCount() != s.SamplesPerResult() || got.Types[0].Name != typeName {
			t.Fatalf("decoded %+v", got)
		}
		for i, it := range got.Types[0].Items {
			if it.Name != itemName(i) {
				t.Errorf("item %d named %q", i, it.Name)
			}
			for m, mt := range it.Metrics {
				if v, _ := mt.Value.Number(); v != r.Values[i*s.Metrics+m] || mt.Name != metricName(m) {
					t.Errorf("item %d metric %d: %s=%v, want %v", i, m, mt.Name, v, r.Values[i*s.Metrics+m])
				}
			}
		}
	}
}

func TestRunLoad(t *testing.T) {
	s := testShape()
	s.Start = time.Now().Unix() - 3600
	var mu sync.Mutex
	seen := map[[2]int]int64{} // (agent, check) → last timestamp
	send := func(_ context.Context, a int, r result) (int, string, string, error) {
		mu.Lock()
		defer mu.Unlock()
		k := [2]int{a, r.Check}
		if prev, ok := seen[k]; ok && r.TS <= prev {
			t.Errorf("agent %d check %d: %d after %d", a, r.Check, r.TS, prev)
		}
		seen[k] = r.TS
		switch {
		case a == 0 && r.Round == 1 && r.Check == 0:
			return 500, "HTTP/1.1", "boom", nil
		case a == 1 && r.Round == 1 && r.Check == 0:
			return 0, "", "", context.DeadlineExceeded
		}
		return 204, "HTTP/1.1", "", nil
	}
	out := runLoad(context.Background(), loadSpec{Shape: s, Duration: 10 * time.Second, Results: 100}, send)
	st := out.Stats
	if st.results != 98 || st.samples != 98*10 || st.seen != 100 {
		t.Errorf("results %d samples %d observed %d", st.results, st.samples, st.seen)
	}
	if st.errors["500"] != 1 || st.errors["timeout"] != 1 || st.firstErr["500"] != "boom" {
		t.Errorf("errors %v %v", st.errors, st.firstErr)
	}
	if out.Protocols["HTTP/1.1"] != 98 || out.TimelineEnded != 0 || out.Canceled {
		t.Errorf("outcome %+v", out)
	}

	// A timeline that reaches the present stops the agents.
	s.Start = time.Now().Unix() - 120
	out = runLoad(context.Background(), loadSpec{Shape: s, Duration: 10 * time.Second}, func(context.Context, int, result) (int, string, string, error) {
		return 204, "HTTP/2.0", "", nil
	})
	if out.TimelineEnded != s.Agents || out.Stats.results > int64(s.Agents*s.Checks*3) {
		t.Errorf("timeline: %d agents ended, %d results", out.TimelineEnded, out.Stats.results)
	}
}

func TestErrorClass(t *testing.T) {
	if c := errorClass(context.DeadlineExceeded); c != "timeout" {
		t.Errorf("deadline: %s", c)
	}
	if c := errorClass(errors.New("connection refused")); c != "transport" {
		t.Errorf("refused: %s", c)
	}
}

func TestCheckLocal(t *testing.T) {
	for _, ok := range []string{"https://127.0.0.1:8443", "http://localhost:9090", "https://[::1]:1", "https://127.0.0.2"} {
		if _, err := checkLocal(ok, false); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"https://example.com", "https://10.0.0.1:8443", "ftp://127.0.0.1", "127.0.0.1:8443", "https://"} {
		if _, err := checkLocal(bad, false); err == nil {
			t.Errorf("%s allowed", bad)
		}
	}
	if _, err := checkLocal("https://example.com", true); err != nil {
		t.Errorf("--allow-remote: %v", err)
	}
}

func TestStartTimeFitsResults(t *testing.T) {
	f := &ingestFlags{shape: testShape(), span: time.Hour, results: 3 * 4 * 100}
	now := time.Unix(1_700_000_000, 0)
	start := f.startTime(now)
	if start%7200 != 0 {
		t.Errorf("start %d not on a block boundary", start)
	}
	// 100 rounds of 60 s must end before now.
	if last := start + 99*60 + 59; last > now.Unix() {
		t.Errorf("last timestamp %d after now %d", last, now.Unix())
	}
	f.results = 0
	if got := f.startTime(now); now.Unix()-got < 3600 || now.Unix()-got >= 3600+7200 {
		t.Errorf("span 1h: start %d, now %d", got, now.Unix())
	}
}

func TestAlignStart(t *testing.T) {
	if got := alignStart(7200*5+100, 60); got != 7200*5 {
		t.Errorf("60 s: %d", got)
	}
	if got := alignStart(7200*5+100, 7); got != 7200*5+100-(7200*5+100)%7 || got%7 != 0 {
		t.Errorf("7 s: %d", got)
	}
}

func TestIngestFlags(t *testing.T) {
	var sb strings.Builder
	f, err := parseIngestFlags([]string{"--results", "1000", "--spawn-prometheus"}, &sb)
	if err != nil || f.duration != time.Hour || !f.spawnProm.set || f.spawnProm.path != "" {
		t.Errorf("flags %+v, %v", f, err)
	}
	f, err = parseIngestFlags([]string{"--spawn-prometheus=/opt/p"}, &sb)
	if err != nil || f.spawnProm.path != "/opt/p" || f.duration != 30*time.Second {
		t.Errorf("flags %+v, %v", f, err)
	}
	for _, bad := range [][]string{
		{"--spawn-prometheus", "/opt/p"},
		{"--agents", "0"},
		{"--interval", "1500ms"},
		{"--hub", "https://127.0.0.1:1", "--cpuprofile", "x"},
	} {
		if _, err := parseIngestFlags(bad, &sb); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}

package remote

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

func TestReviewExploreAmplification(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	ids := make([]string, 0, 1000)
	for i := range 1000 {
		ids = append(ids, strconv.Itoa(100000+i))
	}
	m, _, _ := tsstore.Scope{ContainerIDs: ids[:1]}.MatcherAndKey()
	for _, n := range []int{5000, 10000, 20000} {
		q := "a" + strings.Repeat("+a", n)
		start := time.Now()
		_, err := p.ParseExpr(q)
		t.Logf("parse n=%d err=%v took=%v", n, err, time.Since(start))
		start = time.Now()
		_, r, err := ScopeQuery(p, q, m)
		t.Logf("scope n=%d err=%v in=%d out=%d took=%v", n, err, len(q), len(r), time.Since(start))
	}
	m, _, _ = tsstore.Scope{ContainerIDs: ids}.MatcherAndKey()
	q := "a" + strings.Repeat(" or a", 3000)
	start := time.Now()
	_, r, err := ScopeQuery(p, q, m)
	t.Logf("wide scope err=%v in=%d out=%d took=%v", err, len(q), len(r), time.Since(start))
	for _, q := range []string{strings.Repeat("(", 100000) + "a" + strings.Repeat(")", 100000), strings.Repeat("-", 100000) + "a"} {
		start := time.Now()
		_, r, err := ScopeQuery(p, q, m)
		if err != nil {
			t.Logf("err %.200v", err)
		}
		t.Logf("deep in=%d out=%d took=%v", len(q), len(r), time.Since(start))
	}
}

package expr

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// genExpr writes a random condition over the metrics a..e.
func genExpr(r *rand.Rand, depth int) string {
	operand := func() string {
		switch r.Intn(9) {
		case 0:
			return []string{"0", "1", "-1", "7", "2.5", "-0.0", "1e300", "9223372036854775807"}[r.Intn(8)]
		case 1:
			return []string{`"a"`, `"A"`, `"ab"`, `""`, `"é"`}[r.Intn(5)]
		case 2:
			return []string{"true", "false"}[r.Intn(2)]
		case 3:
			return []string{"lower", "upper", "abs", "len"}[r.Intn(4)] + "(" + genExpr(r, depth-1) + ")"
		case 4:
			return []string{"exists", "rate"}[r.Intn(2)] + "(item." + string(rune('a'+r.Intn(5))) + ")"
		case 5:
			return "max(" + genExpr(r, depth-1) + ", " + genExpr(r, depth-1) + ")"
		case 6:
			return `match(` + genExpr(r, depth-1) + `, ` + matchPatterns[r.Intn(len(matchPatterns))] + `)`
		}
		return []string{"item.", "prev."}[r.Intn(2)] + string(rune('a'+r.Intn(5)))
	}
	if depth <= 0 || r.Intn(4) == 0 {
		return operand()
	}
	ops := []string{"and", "or", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%"}
	switch r.Intn(6) {
	case 0:
		return "not " + genExpr(r, depth-1)
	case 1:
		return "-" + genExpr(r, depth-1)
	case 2:
		return "(" + genExpr(r, depth-1) + ")"
	}
	return genExpr(r, depth-1) + " " + ops[r.Intn(len(ops))] + " " + genExpr(r, depth-1)
}

// matchPatterns are the patterns genExpr uses, with and without a literal
// prefix, anchored or not, so that match's prefilters and memo are covered.
var matchPatterns = []string{
	`"^[aA]"`, `"^a"`, `"a"`, `"^ab"`, `"b$"`, `"^a|b"`, `"(?i)^a"`, `"(?m)^a"`, `"x^a"`,
	`"é"`, `"^(a|aB)$"`, `"\\Aa"`, `"^$"`, `""`,
}

func genValue(r *rand.Rand) model.Value {
	switch r.Intn(7) {
	case 0:
		return model.IntValue([]int64{0, 1, -1, 7, math.MaxInt64, math.MinInt64}[r.Intn(6)])
	case 1:
		return model.FloatValue([]float64{0, 2.5, -1, math.NaN(), math.Inf(1)}[r.Intn(5)])
	case 2:
		return model.StringValue([]string{"a", "A", "ab", "", "É", "aB", "é", "ba", "xa", "b\na"}[r.Intn(10)])
	case 3:
		return model.BoolValue(r.Intn(2) == 0)
	case 4:
		return model.Value{Kind: model.KindList, List: []model.Value{model.StringValue("a"), model.IntValue(1)}}
	}
	return model.IntValue(int64(r.Intn(10)))
}

func genMetrics(r *rand.Rand) Metrics {
	var im ItemMetrics
	for _, i := range r.Perm(5) {
		if r.Intn(5) > 0 {
			im = append(im, model.Metric{Name: string(rune('a' + i)), Value: genValue(r)})
		}
	}
	switch r.Intn(5) {
	case 0:
		mm := MapMetrics{}
		for _, m := range im {
			mm[m.Name] = m.Value
		}
		return mm
	case 1:
		return nil
	case 2:
		return &im // as an Env reused without allocating has it
	}
	return im
}

// sameOutcome checks that the compiled evaluator and the reference tree walk
// agree on e in env.
func sameOutcome(t *testing.T, e *Expr, env *Env) {
	t.Helper()
	got, gerr := e.Eval(env)
	want, werr := refEvalExpr(e, env)
	if got != want || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
		t.Fatalf("%s: got %v, %v; want %v, %v", e, got, gerr, want, werr)
	}
	if gerr != nil {
		var ee *EvalError
		if !errors.As(gerr, &ee) {
			t.Fatalf("%s: error %T", e, gerr)
		}
	}
}

// TestDifferential compares the compiled evaluator with the reference tree
// walk on random conditions and items. One Env serves many items, as the
// hints in it are meant to.
func TestDifferential(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	env := &Env{Now: t0.Add(time.Minute), PrevTime: t0}
	n := 0
	for n < 4000 {
		e, err := Parse(genExpr(r, 4))
		if err != nil {
			continue
		}
		n++
		for j := 0; j < 20; j++ {
			env.Item, env.Prev = genMetrics(r), genMetrics(r)
			sameOutcome(t, e, env)
		}
	}
}

// TestConcurrentEval evaluates one Expr from many goroutines, on shared and
// on separate Envs, for the race detector.
func TestConcurrentEval(t *testing.T) {
	e, err := Parse("item.cpu > 90 or item.errors - prev.errors > 10 or lower(item.admin) == \"down\"")
	if err != nil {
		t.Fatal(err)
	}
	shared := &Env{Item: benchItem(3, nil), Prev: benchItem(1, nil), Now: t0.Add(time.Minute), PrevTime: t0}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := &Env{Now: t0.Add(time.Minute), PrevTime: t0}
			for i := 0; i < 200; i++ {
				if _, err := e.Eval(shared); err != nil {
					t.Error(err)
				}
				own.Item, own.Prev = benchItem(i, nil), ItemMetrics(benchItem(i, nil)[g:])
				if _, err := e.Eval(own); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}

func TestCompareCase(t *testing.T) {
	for _, s := range []string{"", "a", "A", "aB", "Ab", "UP", "up", "É", "é", "[", "`", "{", "@"} {
		for _, u := range []string{"", "a", "A", "ab", "AB", "up", "UP", "é", "É", "["} {
			if got, want := compareCase(s, u, false), strings.Compare(strings.ToLower(s), u); got != want {
				t.Errorf("lower %q vs %q: %d, want %d", s, u, got, want)
			}
			if got, want := compareCase(s, u, true), strings.Compare(strings.ToUpper(s), u); got != want {
				t.Errorf("upper %q vs %q: %d, want %d", s, u, got, want)
			}
		}
	}
}

// FuzzEval checks the compiled evaluator against the reference tree walk.
func FuzzEval(f *testing.F) {
	for _, s := range benchConditions {
		f.Add(s, int64(1))
	}
	f.Add(`lower(item.a) < "b" or 1 > item.b`, int64(2))
	f.Fuzz(func(t *testing.T, src string, seed int64) {
		e, err := Parse(src)
		if err != nil {
			return
		}
		r := rand.New(rand.NewSource(seed))
		env := &Env{Now: t0.Add(time.Minute), PrevTime: t0}
		for j := 0; j < 10; j++ {
			env.Item, env.Prev = genMetrics(r), genMetrics(r)
			sameOutcome(t, e, env)
		}
		sameOutcome(t, e, testEnv())
	})
}

// TestMatchMemo checks match's memo and prefilters against the regexp on
// more distinct strings than the memo holds, repeated, from several
// goroutines (for the race detector).
func TestMatchMemo(t *testing.T) {
	pats := []string{"^(eth|en)[0-9]+$", "^eth", "eth1", "1$", "(?i)^ETH", "^eth1|en", "^\\d", "",
		"(^eth)", "^(eth)1", "(?:^e)th", "^e*th", `^\Qeth.\E`, "(?s)^eth.", "^eth|^en", "^eth1$|^en1", "(?m)^eth", "\\Aeth", "h1\\z", "(?U)^eth"}
	var strs []string
	for i := 0; i < 3*memoSize; i++ {
		strs = append(strs, fmt.Sprintf("eth%d", i), fmt.Sprintf("en%d", i%7), fmt.Sprintf("%dx", i))
	}
	strs = append(strs, strings.Repeat("eth1", memoMaxLen), "", "ETH0", "Eth1\n", "xeth1", "a\neth1", "eth.", "eth\n", "th1")
	for _, p := range pats {
		m := newMatcher(regexp.MustCompile(p))
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for round := 0; round < 3; round++ {
					for i := range strs {
						s := strs[(i*(g+1))%len(strs)]
						if got, want := m.MatchString(s), m.re.MatchString(s); got != want {
							t.Errorf("%q on %q: %v, want %v", p, s, got, want)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
	}
}

package expr

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
)

func TestParse(t *testing.T) {
	tests := []struct {
		src  string
		want string // canonical form
	}{
		{"item.cpu > 90", "item.cpu > 90"},
		{"  item.cpu>90.5", "item.cpu > 90.5"},
		{"item.a + item.b * 2 >= 3", "item.a + item.b * 2 >= 3"},
		{"(item.a + item.b) * 2 >= 3", "(item.a + item.b) * 2 >= 3"},
		{"item.a - (item.b - item.c) == 1", "item.a - (item.b - item.c) == 1"},
		{"(item.a - item.b) - item.c == 1", "item.a - item.b - item.c == 1"},
		{"not item.up or item.x and item.y", "not item.up or item.x and item.y"},
		{"not (item.up or item.x)", "not (item.up or item.x)"},
		{"(item.a or item.b) and item.c", "(item.a or item.b) and item.c"},
		{"(item.a == item.b) == true", "(item.a == item.b) == true"},
		{"item.x == -5", "item.x == -5"},
		{"-(-5) == item.x", "--5 == item.x"},
		{"-item.x < -2.5e-3", "-item.x < -0.0025"},
		{"item.x == 1e6", "item.x == 1e+06"},
		{"item.x == 2.", "item.x == 2.0"},
		{"item.x == .5", "item.x == 0.5"},
		{`match(item.name, "^eth[0-9]+$")`, `match(item.name, "^eth[0-9]+$")`},
		{`lower(item.state) != "ok"`, `lower(item.state) != "ok"`},
		{`item.s == "a\"b\n"`, `item.s == "a\"b\n"`},
		{"exists(item.x) and item.x > 5", "exists(item.x) and item.x > 5"},
		{"exists(prev.x)", "exists(prev.x)"},
		{"rate(item.bytes) > 1000", "rate(item.bytes) > 1000"},
		{"max(item.a,item.b,3) > min(1, 2.5)", "max(item.a, item.b, 3) > min(1, 2.5)"},
		{"len(item.list) > 0 and contains(item.list, \"x\")", `len(item.list) > 0 and contains(item.list, "x")`},
		{"abs(item.x - prev.x) > 10", "abs(item.x - prev.x) > 10"},
		{"item.and == item.not", "item.and == item.not"},
		{"item.up", "item.up"},
		{"true", "true"},
		{"item.a % 2 == 1", "item.a % 2 == 1"},
		{"item.x\n  and item.y", "item.x and item.y"},
	}
	for _, tt := range tests {
		e, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		if got := e.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.src, got, tt.want)
		}
		again, err := Parse(e.String())
		if err != nil || again.String() != e.String() {
			t.Errorf("re-parse of %q: %v, %v", e.String(), again, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		src            string
		pos, line, col int
		msg            string
	}{
		{"", 0, 1, 1, "expected an operand, found end of condition"},
		{"item.cpu > 90 and", 17, 1, 18, `expected an operand after "and", found end of condition`},
		{"item.cpu > 90 and or", 18, 1, 19, `expected an operand after "and", found "or"`},
		{"item.x >", 8, 1, 9, `expected an operand after ">", found end of condition`},
		{"(item.x > 1", 11, 1, 12, `expected ")" to close the "(" at position 0, found end of condition`},
		{"item.x > 1)", 10, 1, 11, `unexpected ")" after the end of the condition`},
		{"cpu > 1", 0, 1, 1, `unknown name "cpu"; a metric is written item.cpu or prev.cpu`},
		{"item. > 1", 6, 1, 7, `expected a metric name after "item.", found ">"`},
		{"item.x = 1", 7, 1, 8, `unexpected "="; equality is written "=="`},
		{"item.x && item.y", 7, 1, 8, `unexpected '&'; use "and" or "or"`},
		{"item.x == 'a'", 10, 1, 11, "strings are written in double quotes"},
		{`item.x == "abc`, 10, 1, 11, "string is not closed"},
		{`item.x == "a\qb"`, 10, 1, 11, "malformed string: bad escape sequence"},
		{"item.x == 12abc", 10, 1, 11, `malformed number "12a"`},
		{"item.x == 99999999999999999999", 10, 1, 11, "integer 99999999999999999999 is out of range; write it as a float (99999999999999999999.0)"},
		{"item.x == 1e999", 10, 1, 11, "number 1e999 is out of range"},
		{"1 < 2 < 3", 6, 1, 7, `comparisons do not chain; combine them with "and"`},
		{`"a" > 5`, 6, 1, 7, "cannot compare a string with a number"},
		{`true < false`, 7, 1, 8, "bools can only be compared with == and !="},
		{`item.x + "a" > 1`, 9, 1, 10, `"+" needs numbers, not a string`},
		{`item.x / 0 > 1`, 9, 1, 10, "division by zero"},
		{`item.x % 0.0 > 1`, 9, 1, 10, "division by zero"},
		{`item.x and 5`, 11, 1, 12, `"and" needs true or false on both sides, not a number`},
		{`not 5`, 4, 1, 5, `"not" needs true or false, not a number`},
		{`item.x + 1`, 7, 1, 8, "a condition must be true or false, not a number"},
		{`-"a" == item.x`, 1, 1, 2, `"-" needs a number, not a string`},
		{`match(item.x, item.y)`, 14, 1, 15, "the pattern of match must be a string literal"},
		{`match(item.x, "(")`, 14, 1, 15, "bad pattern: error parsing regexp: missing closing ): `(`"},
		{`match(item.x, "` + strings.Repeat("a", 300) + `")`, 14, 1, 15, "the pattern is longer than 256 bytes"},
		{`abs(item.x, 1) > 0`, 0, 1, 1, "abs takes 1 argument(s), not 2"},
		{`min(item.x) > 0`, 0, 1, 1, "min takes at least 2 arguments, not 1"},
		{`len(5) > 0`, 4, 1, 5, "len needs a string or a list, not a number"},
		{`upper(1) == "A"`, 6, 1, 7, "upper needs a string, not a number"},
		{`rate(prev.x) > 0`, 5, 1, 6, "the argument of rate must be item.<metric>"},
		{`exists(1)`, 7, 1, 8, "the argument of exists must be item.<metric> or prev.<metric>"},
		{`foo(1)`, 0, 1, 1, `unknown name "foo"; a metric is written item.foo or prev.foo`},
		{`abs 1`, 4, 1, 5, `expected "(" after "abs"`},
		{`max(1 2)`, 6, 1, 7, `expected "," or ")" in the arguments of max, found "2"`},
		{"item.x > 1 and\n  item.y ! 2", 24, 2, 10, `unexpected "!"; negation is written "not"`},
		{"item.x == \"é\" é", 15, 1, 15, `unexpected character 'é'`},
		{strings.Repeat("(", 70) + "true" + strings.Repeat(")", 70), 65, 1, 66, "the condition is nested more than 64 levels deep"},
		{"item.x" + strings.Repeat(" + 1", 70) + " > 0", 259, 1, 260, "the condition is nested more than 64 levels deep"},
		{strings.Repeat("item.x > 0 or ", 200) + "true", 879, 1, 880, "the condition is nested more than 64 levels deep"},
		{strings.Repeat(" ", 4097), 4096, 1, 4097, "the condition is longer than 4096 bytes"},
		{`item.s == "` + strings.Repeat("\x01", 1500) + `"`, 0, 1, 1, "the condition is 6012 bytes long once written canonically, more than 4096"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.src)
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) error = %v, want a *ParseError", tt.src, err)
			continue
		}
		if pe.Pos != tt.pos || pe.Line != tt.line || pe.Col != tt.col || pe.Msg != tt.msg {
			t.Errorf("Parse(%.40q) = %d %d:%d %q\n want %d %d:%d %q", tt.src, pe.Pos, pe.Line, pe.Col, pe.Msg, tt.pos, tt.line, tt.col, tt.msg)
		}
	}
	_, err := Parse("item.x > 90 and")
	if want := `position 15 (line 1, column 16): expected an operand after "and", found end of condition`; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestMaxNodes(t *testing.T) {
	// Balanced so that depth stays small while the node count grows.
	var build func(n int) string
	build = func(n int) string {
		if n == 1 {
			return "item.x > 0"
		}
		return "(" + build(n/2) + ") or (" + build(n-n/2) + ")"
	}
	if _, err := Parse(build(100)); err != nil {
		t.Fatalf("100 comparisons: %v", err)
	}
	var pe *ParseError
	short := strings.Repeat("1 + ", 20)
	var b strings.Builder
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&b, "(%s1 > 0) or ", short)
	}
	b.WriteString("true")
	_, err := Parse(b.String())
	if !errors.As(err, &pe) || pe.Msg != "the condition has more than 1000 operands and operators" {
		t.Fatalf("many nodes: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	e, err := Parse("exists(prev.z) and item.b > item.a or rate(item.c) > 0 and item.a == 1")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.Metrics(), ","); got != "a,b,c,z" {
		t.Errorf("Metrics() = %s", got)
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testEnv() *Env {
	return &Env{
		Item: MapMetrics{
			"i":     model.IntValue(7),
			"neg":   model.IntValue(-3),
			"zero":  model.IntValue(0),
			"f":     model.FloatValue(2.5),
			"fzero": model.FloatValue(0),
			"s":     model.StringValue("Eth0"),
			"up":    model.BoolValue(true),
			"down":  model.BoolValue(false),
			"list":  {Kind: model.KindList, List: []model.Value{model.StringValue("a"), model.IntValue(3)}},
			"bytes": model.IntValue(5000),
			"big":   model.IntValue(1 << 62),
			"str":   model.StringValue("x"),
		},
		Prev: ItemMetrics{
			{Name: "bytes", Value: model.IntValue(2000)},
			{Name: "i", Value: model.IntValue(5)},
			{Name: "s", Value: model.StringValue("eth0")},
			{Name: "str", Value: model.StringValue("y")},
		},
		Now:      t0.Add(30 * time.Second),
		PrevTime: t0,
	}
}

func TestEval(t *testing.T) {
	tests := []struct {
		src  string
		want Result
		err  string // substring of the error
	}{
		{"item.i > 5", True, ""},
		{"item.i == 7.0", True, ""},
		{"item.i / 2 == 3.5", True, ""},
		{"item.i % 4 == 3", True, ""},
		{"item.i * 2 - 1 == 13", True, ""},
		{"item.f * 2 == 5", True, ""},
		{"item.f % 1 == 0.5", True, ""},
		{"-item.neg == 3 and abs(item.neg) == 3 and abs(-item.f) == 2.5", True, ""},
		{"min(item.i, item.f) == 2.5 and max(item.i, 3) == 7 and max(1, item.neg, -9) == 1", True, ""},
		{"item.i < item.f", False, ""},
		{`item.s == "Eth0" and lower(item.s) == "eth0" and upper(item.s) == "ETH0"`, True, ""},
		{`item.s < "F" and item.s >= "E"`, True, ""},
		{`match(item.s, "^[Ee]th[0-9]$")`, True, ""},
		{`match(item.s, "^eth")`, False, ""},
		{`contains(item.s, "th") and not contains(item.s, "x")`, True, ""},
		{`len(item.s) == 4 and len(item.list) == 2`, True, ""},
		{`contains(item.list, 3.0) and contains(item.list, "a") and not contains(item.list, true)`, True, ""},
		{"item.up and not item.down", True, ""},
		{"item.up == true and item.down != true", True, ""},
		{"item.down or item.up", True, ""},
		{"item.i - prev.i == 2", True, ""},
		{`item.s != prev.s`, True, ""},
		{"rate(item.bytes) == 100", True, ""},
		{"rate(item.i) > 0.06 and rate(item.i) < 0.07", True, ""},
		// Missing metrics.
		{"item.nope > 5", Missing, ""},
		{"item.i > 5 and item.nope > 5", Missing, ""},
		{"item.nope > 5 or true", Missing, ""},
		{"item.i > 5 or item.nope > 5", True, ""},
		{"item.i > 50 and item.nope > 5", False, ""},
		{"exists(item.nope) and item.nope > 5", False, ""},
		{"not exists(item.nope) or item.nope > 5", True, ""},
		{"exists(item.i) and item.i > 5", True, ""},
		{"exists(prev.bytes) and not exists(prev.f)", True, ""},
		{"prev.f > 1", Missing, ""},
		{"rate(item.f) > 1", Missing, ""},
		{"rate(item.nope) > 1", Missing, ""},
		{"len(item.nope) > 1", Missing, ""},
		// Errors.
		{"item.i / item.zero > 1", False, "position 7: division by zero"},
		{"item.i % item.zero > 1", False, "division by zero"},
		{"item.f / item.fzero > 1", False, "division by zero"},
		{"item.s > 5", False, "cannot compare a string with an int"},
		{`item.i == "7"`, False, "cannot compare an int with a string"},
		{"item.up > item.down", False, "bools can only be compared with == and !="},
		{"item.list == 1", False, "cannot compare a list with an int"},
		{"item.s + 1 > 0", False, `"+" needs numbers, not a string`},
		{"item.i", False, "a condition must be true or false, but this one gave an int"},
		{"item.i and true", False, `"and" needs true or false, not an int`},
		{"not item.s", False, `"not" needs true or false, not a string`},
		{"-item.s > 0", False, `"-" needs a number, not a string`},
		{"len(item.i) > 0", False, "len needs a string or a list, not an int"},
		{"abs(item.s) > 0", False, "abs needs a number, not a string"},
		{"lower(item.i) == \"\"", False, "lower needs a string, not an int"},
		{"match(item.i, \"x\")", False, "match needs a string, not an int"},
		{"contains(item.s, item.i)", False, "contains needs a string to look for"},
		{"contains(item.i, 1)", False, "contains needs a string or a list, not an int"},
		{"max(item.s, 1) > 0", False, "max needs numbers, not a string"},
		{"rate(item.str) > 0", False, "rate needs a number, not a string"},
		{"item.big * 4 > 0", False, "integer overflow"},
		{"item.big + item.big + item.big > 0", False, "integer overflow"},
		{"-item.big - item.big - item.big < 0", False, "integer overflow"},
		{"item.big * 4.0 > 0", True, ""},
	}
	for _, tt := range tests {
		e, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		got, err := e.Eval(testEnv())
		if tt.err != "" {
			var ee *EvalError
			if !errors.As(err, &ee) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Eval(%q) error = %v, want %q", tt.src, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Eval(%q) = %v, %v; want %v", tt.src, got, err, tt.want)
		}
	}
}

func TestEvalRateAndPrev(t *testing.T) {
	e, err := Parse("rate(item.bytes) > 0")
	if err != nil {
		t.Fatal(err)
	}
	env := testEnv()
	env.Prev = nil
	if got, err := e.Eval(env); got != Missing || err != nil {
		t.Errorf("no previous result: %v, %v", got, err)
	}
	env = testEnv()
	env.PrevTime = env.Now
	if _, err := e.Eval(env); err == nil || !strings.Contains(err.Error(), "older than the current one") {
		t.Errorf("same time: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	seeds := []string{
		"item.cpu > 90", "exists(item.x) and item.x > 5", `match(lower(item.name), "^eth\\d+$")`,
		"rate(item.bytes) / 1e6 >= 12.5 or not item.up", "-(-5) == --item.x", "max(1, 2.0, item.a) % 3 != 0",
		`contains(item.tags, "prod") and len(item.s) < 3`, "((((item.a))))", "1 < 2 < 3", `"\u00e9" == item.s`,
		"item.x == .5e-3", "not not true",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Pos < 0 || pe.Pos > len(src) {
				t.Fatalf("Parse(%q): bad error %v", src, err)
			}
			return
		}
		s := e.String()
		again, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not re-parse: %v", src, s, err)
		}
		if again.String() != s {
			t.Fatalf("Parse(%q) = %q, re-parsed to %q", src, s, again.String())
		}
		_, _ = e.Eval(testEnv())
	})
}

// benchConditions are 20 conditions of the kind users write on an interface
// or disk type.
var benchConditions = []string{
	"item.cpu > 90",
	"item.mem_used / item.mem_total * 100 > 95",
	"exists(item.temp) and item.temp > 80",
	"item.errors - prev.errors > 10",
	"rate(item.rx_bytes) > 100000000",
	"rate(item.tx_bytes) * 8 > 0.9 * item.speed",
	`item.status != "up"`,
	`match(item.name, "^(eth|en)[0-9]+$") and item.status == "down"`,
	`lower(item.admin) == "up" and item.oper != "up"`,
	"not item.enabled",
	"item.free_pct < 10 or item.free_bytes < 1000000000",
	"abs(item.drift) > 0.5",
	"len(item.alarms) > 0",
	`contains(item.alarms, "fan")`,
	"item.load1 > 2 * item.cores and item.load5 > item.cores",
	"max(item.latency, item.jitter) > 200",
	"item.uptime < prev.uptime",
	"item.queue % 100 == 99",
	`contains(item.descr, "uplink") and item.rx_errors > 0`,
	"exists(item.battery) and (item.battery < 20 or item.on_battery)",
}

func benchItem(i int, alarms []model.Value) ItemMetrics {
	return ItemMetrics{
		{Name: "name", Value: model.StringValue(fmt.Sprintf("eth%d", i))},
		{Name: "descr", Value: model.StringValue("uplink to core switch")},
		{Name: "status", Value: model.StringValue("up")},
		{Name: "admin", Value: model.StringValue("UP")},
		{Name: "oper", Value: model.StringValue("up")},
		{Name: "enabled", Value: model.BoolValue(true)},
		{Name: "cpu", Value: model.FloatValue(float64(i))},
		{Name: "mem_used", Value: model.IntValue(int64(i) << 20)},
		{Name: "mem_total", Value: model.IntValue(64 << 20)},
		{Name: "errors", Value: model.IntValue(int64(i))},
		{Name: "rx_bytes", Value: model.IntValue(int64(i) * 1e9)},
		{Name: "tx_bytes", Value: model.IntValue(int64(i) * 2e9)},
		{Name: "rx_errors", Value: model.IntValue(0)},
		{Name: "speed", Value: model.IntValue(1e10)},
		{Name: "free_pct", Value: model.FloatValue(42.5)},
		{Name: "free_bytes", Value: model.IntValue(5e10)},
		{Name: "drift", Value: model.FloatValue(-0.1)},
		{Name: "alarms", Value: model.Value{Kind: model.KindList, List: alarms}},
		{Name: "load1", Value: model.FloatValue(1.5)},
		{Name: "load5", Value: model.FloatValue(1.2)},
		{Name: "cores", Value: model.IntValue(8)},
		{Name: "latency", Value: model.FloatValue(12.5)},
		{Name: "jitter", Value: model.FloatValue(1.5)},
		{Name: "uptime", Value: model.IntValue(int64(i) * 1000)},
		{Name: "queue", Value: model.IntValue(int64(i))},
	}
}

// BenchmarkEval20x50 evaluates 20 conditions over a 50-item result; one op is
// one whole result.
func BenchmarkEval20x50(b *testing.B) {
	exprs := make([]*Expr, len(benchConditions))
	for i, src := range benchConditions {
		e, err := Parse(src)
		if err != nil {
			b.Fatalf("%s: %v", src, err)
		}
		exprs[i] = e
	}
	envs := make([]Env, 50)
	for i := range envs {
		envs[i] = Env{
			Item:     benchItem(i, []model.Value{model.StringValue("psu")}),
			Prev:     benchItem(i/2, nil),
			Now:      t0.Add(time.Minute),
			PrevTime: t0,
		}
	}
	counts := map[Result]int{}
	for i := range envs {
		for _, e := range exprs {
			r, err := e.Eval(&envs[i])
			if err != nil {
				b.Fatalf("%s: %v", e, err)
			}
			counts[r]++
		}
	}
	b.Logf("outcomes: %v", counts)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range envs {
			for _, e := range exprs {
				_, _ = e.Eval(&envs[i])
			}
		}
	}
}

package alert

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sonde-monitoring/sonde/internal/alert/expr"
	"github.com/sonde-monitoring/sonde/internal/model"
)

func TestRender(t *testing.T) {
	cur := expr.MapMetrics{"used": model.IntValue(97), "state": model.StringValue("<b>bad</b>"), "ratio": model.FloatValue(0.5)}
	prev := expr.MapMetrics{"used": model.IntValue(80)}
	cases := []struct{ tmpl, want string }{
		{"{item} at {item.used}%", "/data at 97%"},
		{"{asset}: {condition} ({prev.used} -> {item.used})", "db-1: full (80 -> 97)"},
		{"{item.state} {item.ratio} {item.nope} {prev.state}", "<b>bad</b> 0.5 ? ?"},
		{"{{literal}} }}", "{literal} }"},
		{"", ""},
	}
	for _, c := range cases {
		parts, err := parseMessage(c.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", c.tmpl, err)
		}
		if got := render(parts, "db-1", "full", "/data", cur, prev); got != c.want {
			t.Errorf("%q: got %q, want %q", c.tmpl, got, c.want)
		}
	}
	for _, bad := range []string{"{", "}", "{nope}", "{item.}", "{prev.}", "a {asset"} {
		if _, err := parseMessage(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// A huge value is cut at a character boundary.
	big := expr.MapMetrics{"s": model.StringValue(strings.Repeat("é", 2000))}
	parts, _ := parseMessage("{item.s}")
	got := render(parts, "", "", "", big, nil)
	if len(got) > maxMessage || !utf8.ValidString(got) {
		t.Errorf("render of a long value: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}

// FuzzMessage: any template either parses or is refused, and rendering a
// parsed one never panics and stays bounded and valid UTF-8.
func FuzzMessage(f *testing.F) {
	for _, s := range []string{"{item} at {item.used}%", "{{x}}", "{prev.a}{asset}{condition}", "}", "{", "é{item.é}"} {
		f.Add(s, "value")
	}
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		parts, err := parseMessage(tmpl)
		if err != nil {
			return
		}
		m := expr.MapMetrics{}
		for _, p := range parts {
			if p.name != "" {
				m[p.name] = model.StringValue(value)
			}
		}
		got := render(parts, value, value, value, m, m)
		if len(got) > maxMessage {
			t.Fatalf("rendered %d bytes", len(got))
		}
		if utf8.ValidString(tmpl) && utf8.ValidString(value) && !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 from valid input: %q", got)
		}
	})
}

func TestSchedule(t *testing.T) {
	// 2026-11-25 is a Wednesday.
	cases := []struct {
		sched string
		when  string // RFC 3339
		in    bool
	}{
		{``, "2026-11-25T03:00:00Z", true},
		{`{"days":["wed"]}`, "2026-11-25T03:00:00Z", true},
		{`{"days":["thu"]}`, "2026-11-25T03:00:00Z", false},
		{`{"from":"08:00","to":"18:00"}`, "2026-11-25T07:59:00Z", false},
		{`{"from":"08:00","to":"18:00"}`, "2026-11-25T08:00:00Z", true},
		{`{"from":"08:00","to":"18:00"}`, "2026-11-25T18:00:00Z", false},
		{`{"timezone":"Europe/Amsterdam","from":"08:00","to":"18:00"}`, "2026-11-25T07:30:00Z", true},
		{`{"timezone":"Europe/Amsterdam","from":"08:00","to":"18:00"}`, "2026-11-25T17:30:00Z", false},
		// Overnight windows belong to the day they start on.
		{`{"days":["tue"],"from":"22:00","to":"06:00"}`, "2026-11-25T05:00:00Z", true},
		{`{"days":["tue"],"from":"22:00","to":"06:00"}`, "2026-11-25T23:00:00Z", false},
		{`{"days":["wed"],"from":"22:00","to":"06:00"}`, "2026-11-25T23:00:00Z", true},
	}
	for _, c := range cases {
		s, err := compileSchedule(c.sched)
		if err != nil {
			t.Fatalf("%s: %v", c.sched, err)
		}
		when, _ := time.Parse(time.RFC3339, c.when)
		if got := s.in(when); got != c.in {
			t.Errorf("%s at %s: in=%v, want %v", c.sched, c.when, got, c.in)
		}
	}
	for _, bad := range []string{`{"days":["someday"]}`, `{"from":"8"}`, `{"from":"25:00","to":"01:00"}`, `{"timezone":"Nowhere/City"}`, `{"extra":1}`, `[]`} {
		if _, err := compileSchedule(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

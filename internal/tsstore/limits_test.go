package tsstore

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckQueryLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    string
		ok   bool
	}{
		{"plain", `sum by (asset) (rate(sonde_if_octets{item=~"eth.*"}[5m])) > 1e6 and on(asset) up == 1`, true},
		{"operators in strings do not count", `{asset=~"` + strings.Repeat("a+b-", 1000) + `"}`, true},
		{"operators in comments do not count", "up # " + strings.Repeat("+-", 1000) + "\n", true},
		{"escaped quote in a string", `{asset="a\"(((((("} + 1`, true},
		{"too long", "a" + strings.Repeat(" ", MaxQueryBytes), false},
		{"operator chain", "a" + strings.Repeat("+a", MaxQueryOperators+1), false},
		{"unary chain", strings.Repeat("-", MaxQueryOperators+1) + "a", false},
		{"or chain", "a" + strings.Repeat(" or a", MaxQueryOperators+1), false},
		{"deep brackets", strings.Repeat("(", MaxQueryDepth+1) + "a" + strings.Repeat(")", MaxQueryDepth+1), false},
		{"deep functions", strings.Repeat("abs(", MaxQueryDepth+1) + "a" + strings.Repeat(")", MaxQueryDepth+1), false},
		{"at the bounds", strings.Repeat("(", MaxQueryDepth) + "a" + strings.Repeat("+a", MaxQueryOperators) + strings.Repeat(")", MaxQueryDepth), true},
		{"identifiers containing or", "order + sensor_and_more", true},
	} {
		err := CheckQueryLimits(tc.q)
		if tc.ok && err != nil {
			t.Errorf("%s: refused: %v", tc.name, err)
		}
		if !tc.ok {
			var le *LimitError
			if !errors.As(err, &le) || !le.BadData() {
				t.Errorf("%s: %v, want a LimitError", tc.name, err)
			}
		}
	}
}

func FuzzCheckQueryLimits(f *testing.F) {
	f.Add(`sum(rate(x{a="b"}[5m])) + 1`)
	f.Add(`"unterminated`)
	f.Add("# comment only")
	f.Fuzz(func(t *testing.T, q string) {
		_ = CheckQueryLimits(q) // never panics, whatever the input
	})
}

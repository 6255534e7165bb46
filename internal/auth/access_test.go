package auth

import (
	"maps"
	"testing"
)

func TestEffective(t *testing.T) {
	// root(1) → msp(2) → acme(3, stops inheritance) → acme-prod(4)
	//                  → beta(5) → beta-prod(6)
	nodes := []Node{{1, 0, true}, {2, 1, true}, {3, 2, false}, {4, 3, true}, {5, 2, true}, {6, 5, true}}
	cases := []struct {
		name   string
		grants map[int64]Permission
		want   map[int64]Permission
	}{
		{"msp user sees beta, not acme", map[int64]Permission{2: Read},
			map[int64]Permission{2: Read, 5: Read, 6: Read}},
		{"acme invited the msp user", map[int64]Permission{2: Read, 3: Read | AlertAssign},
			map[int64]Permission{2: Read, 3: Read | AlertAssign, 4: Read | AlertAssign, 5: Read, 6: Read}},
		{"acme's own user", map[int64]Permission{3: All},
			map[int64]Permission{3: All, 4: All}},
		{"grants add up", map[int64]Permission{5: Read, 6: AlertChange},
			map[int64]Permission{5: Read, 6: Read | AlertChange}},
		{"no grant, nothing", map[int64]Permission{}, map[int64]Permission{}},
		{"root admin does not see acme", map[int64]Permission{1: All},
			map[int64]Permission{1: All, 2: All, 5: All, 6: All}},
	}
	for _, c := range cases {
		if got := Effective(nodes, c.grants); !maps.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

package stream

import (
	"fmt"
	"testing"

	"github.com/sonde-monitoring/sonde/internal/state"
)

func TestAssign(t *testing.T) {
	assets := func(zone int, ids ...int64) []state.ProbeAsset {
		var out []state.ProbeAsset
		for _, id := range ids {
			out = append(out, state.ProbeAsset{ID: id, Zone: zone})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		members []member
		assets  []state.ProbeAsset
		want    map[int64]string
	}{
		{"one appliance serves its zone only", []member{{7, 0}}, append(assets(0, 1, 2, 3), assets(1, 4)...),
			map[int64]string{7: "[1 2 3]"}},
		{"two in a zone share by id modulo, sorted by appliance id", []member{{9, 0}, {3, 0}}, assets(0, 1, 2, 3, 4, 5),
			map[int64]string{3: "[2 4]", 9: "[1 3 5]"}},
		{"zones are separate", []member{{1, 0}, {2, 1}, {3, 1}}, append(assets(0, 10, 11), assets(1, 20, 21, 22)...),
			map[int64]string{1: "[10 11]", 2: "[20 22]", 3: "[21]"}},
		{"an appliance with nothing to serve gets an empty list", []member{{1, 5}}, assets(0, 1),
			map[int64]string{1: "[]"}},
		{"no appliances", nil, assets(0, 1), map[int64]string{}},
		{"an appliance's own asset goes to it, whatever the modulo", []member{{3, 0}, {9, 0}},
			[]state.ProbeAsset{{ID: 2, ApplianceID: 9}, {ID: 5, ApplianceID: 3}, {ID: 8, ApplianceID: 4}, {ID: 4}},
			map[int64]string{3: "[5 4]", 9: "[2]"}},
		{"the hardening audit is not run for an asset of no appliance", []member{{1, 0}},
			[]state.ProbeAsset{{ID: 1, Collectors: []state.ProbeCollector{{Key: state.ApplianceCollector}}},
				{ID: 2, Collectors: []state.ProbeCollector{{Key: state.ApplianceCollector}, {Key: "tcp"}}}},
			map[int64]string{1: "[2]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := assign(tc.members, tc.assets)
			if len(got) != len(tc.want) {
				t.Fatalf("assign gave %d appliances, want %d", len(got), len(tc.want))
			}
			for id, want := range tc.want {
				var ids []int64
				for _, a := range got[id] {
					ids = append(ids, a.ID)
				}
				if s := fmt.Sprint(ids); s != want {
					t.Errorf("appliance %d serves %s, want %s", id, s, want)
				}
			}
		})
	}
}

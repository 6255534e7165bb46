package stream

import (
	"slices"
	"sort"

	"github.com/sonde-monitoring/sonde/internal/state"
)

// member is a connected appliance as the assignment sees it.
type member struct {
	ID   int64
	Zone int
}

// assign shares a container's assets among its connected appliances with
// InfraSonar's rule (INFRASONAR-WIRE.md §2): within a zone, the appliances
// are sorted by id and asset a goes to the one at index a % n. An asset in a
// zone without a connected appliance is served by none. Each appliance gets
// only its own assets; an unchanged InfraSonar appliance, which filters by
// the same rule itself over the same list, keeps all of them. An asset
// bound to an appliance (its own, for its hardening audit) goes to that
// appliance only.
func assign(members []member, assets []state.ProbeAsset) map[int64][]state.ProbeAsset {
	byZone := map[int][]int64{}
	for _, m := range members {
		byZone[m.Zone] = append(byZone[m.Zone], m.ID)
	}
	for _, ids := range byZone {
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	}
	out := make(map[int64][]state.ProbeAsset, len(members))
	for _, m := range members {
		out[m.ID] = nil
	}
	for _, a := range assets {
		if a.ApplianceID != 0 {
			// An appliance's own asset: that appliance or none.
			if _, ok := out[a.ApplianceID]; ok {
				out[a.ApplianceID] = append(out[a.ApplianceID], a)
			}
			continue
		}
		// The hardening audit runs only as an appliance's own asset.
		if n := len(a.Collectors); n > 0 {
			a.Collectors = slices.DeleteFunc(slices.Clone(a.Collectors), func(c state.ProbeCollector) bool { return c.Key == state.ApplianceCollector })
			if len(a.Collectors) == 0 {
				continue
			}
		}
		ids := byZone[a.Zone]
		if len(ids) == 0 || a.ID < 0 {
			continue
		}
		id := ids[a.ID%int64(len(ids))]
		out[id] = append(out[id], a)
	}
	return out
}

package alert

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// Health sweep settings.
const (
	// MissingFactor is how many intervals a check may stay silent.
	MissingFactor = 3
	// DisconnectGrace is how long an appliance may be away (a restart, an
	// upgrade) before it is reported disconnected.
	DisconnectGrace = 2 * time.Minute
	// DropQuiet is how long after an appliance last dropped buffered data
	// its notification stays open.
	DropQuiet = 10 * time.Minute
)

// DefaultRetention is how long closed alerts (with their history), closed
// notifications and finished deliveries are kept.
func DefaultRetention() state.Retention {
	return state.Retention{
		ClosedAlerts:        400 * 24 * time.Hour,
		ClosedNotifications: 90 * 24 * time.Hour,
		FinishedDeliveries:  30 * 24 * time.Hour,
	}
}

// sweptKinds are the notifications the sweep owns: it opens what it finds
// and closes the rest.
var sweptKinds = map[string]bool{
	KindCheckMissing: true, KindAgentSilent: true, KindApplianceDisconnected: true,
	KindBufferDropping: true, KindProbeMissing: true,
}

// RunHealth sweeps every interval (0 means 30 s) until ctx ends.
func (e *Engine) RunHealth(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var pruned time.Time
	for {
		if err := e.Sweep(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("the monitoring-health sweep failed; it runs again shortly", "err", err)
		}
		if now := e.now(); now.Sub(pruned) >= time.Hour {
			pruned = now
			n, err := e.st.Prune(ctx, now, DefaultRetention())
			switch {
			case err != nil && ctx.Err() == nil:
				e.log.Error("pruning old alerts and notifications failed; it runs again in an hour", "err", err)
			case n > 0:
				e.log.Info("pruned old alerts, notifications and deliveries", "rows", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sweep looks for silent checks and agents, and for appliances that are
// disconnected, dropping buffered data or missing probes; it opens a
// notification for each and closes those no longer true.
func (e *Engine) Sweep(ctx context.Context) error {
	now := e.now()
	want := map[noteKey]state.Notification{}
	missing, err := e.st.MissingChecks(ctx, now, MissingFactor)
	if err != nil {
		return err
	}
	type group struct {
		container, asset int64
		collector        string
	}
	groups := map[group][]state.MissingCheck{}
	var order []group
	for _, m := range missing {
		g := group{m.ContainerID, m.AssetID, m.Collector}
		if groups[g] == nil {
			order = append(order, g)
		}
		groups[g] = append(groups[g], m)
	}
	for _, g := range order {
		ms := groups[g]
		asset := g.asset
		if !ms[0].Configured {
			// Pushed by an agent: when all its checks are silent, the
			// agent is, and one notification says so.
			n, err := e.st.CountResults(ctx, g.asset, g.collector)
			if err != nil {
				return err
			}
			if n == len(ms) {
				subject := strconv.FormatInt(g.asset, 10) + "/" + g.collector
				want[noteKey{g.container, KindAgentSilent, subject}] = state.Notification{
					ContainerID: g.container, AssetID: &asset, Kind: KindAgentSilent, Subject: subject,
					Severity: int(model.SeverityHigh),
					Message: fmt.Sprintf("the %s agent on %s has sent nothing since %s; is it running, and can it reach the hub?",
						g.collector, ms[0].AssetName, ms[0].LastReceived.Format(time.RFC3339)),
				}
				continue
			}
		}
		for _, m := range ms {
			subject := strconv.FormatInt(m.AssetID, 10) + "/" + m.Collector + "/" + m.Check
			since := "it was configured"
			if !m.LastReceived.IsZero() {
				since = m.LastReceived.Format(time.RFC3339)
			}
			want[noteKey{m.ContainerID, KindCheckMissing, subject}] = state.Notification{
				ContainerID: m.ContainerID, AssetID: &asset, Kind: KindCheckMissing, Subject: subject,
				Severity: int(model.SeverityMedium),
				Message: fmt.Sprintf("check %s/%s on %s has sent no result since %s (interval %s)",
					m.Collector, m.Check, m.AssetName, since, m.Interval),
			}
		}
	}
	if err := e.sweepAppliances(ctx, now, want); err != nil {
		return err
	}
	// Group the changes by container: maintenance and rules depend on it.
	byContainer := map[int64]*actions{}
	get := func(c int64) *actions {
		if byContainer[c] == nil {
			byContainer[c] = &actions{container: c}
		}
		return byContainer[c]
	}
	e.mu.Lock()
	for k, n := range want {
		if e.notes[k] == 0 {
			a := get(k.container)
			a.noteOpens = append(a.noteOpens, n)
		}
	}
	for k, id := range e.notes {
		if sweptKinds[k.kind] {
			if _, ok := want[k]; !ok {
				a := get(k.container)
				a.noteCloses = append(a.noteCloses, noteClose{id, k})
			}
		}
	}
	e.mu.Unlock()
	for c, acts := range byContainer {
		// Labels only matter for notifications about one asset; apply
		// each such notification with its asset's labels.
		perAsset := map[int64]*actions{}
		for _, n := range acts.noteOpens {
			var asset int64
			if n.AssetID != nil {
				asset = *n.AssetID
			}
			if perAsset[asset] == nil {
				perAsset[asset] = &actions{container: c, asset: asset}
			}
			perAsset[asset].noteOpens = append(perAsset[asset].noteOpens, n)
		}
		for _, nc := range acts.noteCloses {
			// A rule filtered by labels must get the close of what it
			// got the open of: the subject of an asset's notification
			// starts with the asset's id.
			var asset int64
			if nc.key.kind == KindCheckMissing || nc.key.kind == KindAgentSilent {
				a, _, _ := strings.Cut(nc.key.subject, "/")
				asset, _ = strconv.ParseInt(a, 10, 64)
			}
			if perAsset[asset] == nil {
				perAsset[asset] = &actions{container: c, asset: asset}
			}
			perAsset[asset].noteCloses = append(perAsset[asset].noteCloses, nc)
		}
		for asset, a := range perAsset {
			var labels []string
			if asset != 0 {
				if labels, err = e.assetLabels(ctx, asset); err != nil {
					return err
				}
			}
			e.apply(ctx, labels, "", a)
		}
	}
	return nil
}

func (e *Engine) sweepAppliances(ctx context.Context, now time.Time, want map[noteKey]state.Notification) error {
	apps, err := e.st.Appliances(ctx, 0)
	if err != nil {
		return err
	}
	for _, a := range apps {
		if a.RevokedAt != nil {
			continue
		}
		id := a.ID
		subject := "appliance/" + strconv.FormatInt(a.ID, 10)
		// What the hub holding its stream recorded at its last
		// heartbeat, whichever hub that is.
		if a.ConnectedHub == "" || a.LastSeenAt == nil || now.Sub(*a.LastSeenAt) > DisconnectGrace {
			if a.LastSeenAt != nil && now.Sub(*a.LastSeenAt) > DisconnectGrace {
				want[noteKey{a.ContainerID, KindApplianceDisconnected, subject}] = state.Notification{
					ContainerID: a.ContainerID, ApplianceID: &id, Kind: KindApplianceDisconnected, Subject: subject,
					Severity: int(model.SeverityHigh),
					Message: fmt.Sprintf("appliance %s has been disconnected since %s; the checks it runs send nothing meanwhile (it buffers results on its disk)",
						a.Name, a.LastSeenAt.Format(time.RFC3339)),
				}
			}
			continue
		}
		e.mu.Lock()
		// The first count seen may be from before this hub started.
		if prev, seen := e.dropped[a.ID]; seen && a.BufferDropped > prev {
			e.dropUntil[a.ID] = now.Add(DropQuiet)
		}
		e.dropped[a.ID] = a.BufferDropped
		dropping := now.Before(e.dropUntil[a.ID])
		e.mu.Unlock()
		if dropping {
			want[noteKey{a.ContainerID, KindBufferDropping, subject}] = state.Notification{
				ContainerID: a.ContainerID, ApplianceID: &id, Kind: KindBufferDropping, Subject: subject,
				Severity: int(model.SeverityHigh),
				Message: fmt.Sprintf("appliance %s dropped buffered results (%d so far): its buffer is full; results are lost until it reaches the hub again",
					a.Name, a.BufferDropped),
			}
		}
		for _, p := range a.MissingProbes {
			s := subject + "/" + p
			want[noteKey{a.ContainerID, KindProbeMissing, s}] = state.Notification{
				ContainerID: a.ContainerID, ApplianceID: &id, Kind: KindProbeMissing, Subject: s,
				Severity: int(model.SeverityMedium),
				Message:  fmt.Sprintf("appliance %s was asked to run probe %q but does not have it; upgrade the appliance or move the asset", a.Name, p),
			}
		}
	}
	return nil
}

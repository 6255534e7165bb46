package hub

import (
	"context"
	"log/slog"

	"github.com/sonde-monitoring/sonde/internal/alert"
	"github.com/sonde-monitoring/sonde/internal/api"
	"github.com/sonde-monitoring/sonde/internal/cluster"
	"github.com/sonde-monitoring/sonde/internal/service"
	"github.com/sonde-monitoring/sonde/internal/stream"
)

// Several hubs on one PostgreSQL: what one hub changes reaches the others
// as cluster events (internal/cluster); each applies it to what it holds
// in memory — the streams of its appliances, the condition engine's
// definitions and open alerts, the service checks.

// streamPeers tells the other hubs of this hub's appliance streams.
type streamPeers struct{ c *cluster.Cluster }

func (p streamPeers) MembersChanged(container int64) {
	p.c.Publish(context.Background(), cluster.Event{Kind: cluster.KindMembers, Container: container})
}

func (p streamPeers) Connected(appliance int64) {
	p.c.Publish(context.Background(), cluster.Event{Kind: cluster.KindConnected, Appliance: appliance})
}

// alertPeers tells the other hubs of the condition engine's changes.
type alertPeers struct{ c *cluster.Cluster }

// alertKinds maps the engine's changes to cluster events, and back.
var alertKinds = map[string]string{
	alert.ChangeConditions:  cluster.KindConditions,
	alert.ChangeRules:       cluster.KindRules,
	alert.ChangeMaintenance: cluster.KindMaintenance,
	alert.ChangeLabels:      cluster.KindLabels,
	alert.ChangeAlerts:      cluster.KindAlerts,
	alert.ChangeAssetGone:   cluster.KindAssetGone,
}

func (p alertPeers) Changed(kind string, asset int64) {
	if k, ok := alertKinds[kind]; ok {
		p.c.Publish(context.Background(), cluster.Event{Kind: k, Asset: asset})
	}
}

// sharedAppliances is the API's view of the appliance streams: a change
// goes to this hub's streams and to the other hubs'.
type sharedAppliances struct {
	local *stream.Server
	c     *cluster.Cluster
}

func (s sharedAppliances) AssetChanged(container, asset int64) {
	s.local.AssetChanged(container, asset)
	s.c.Publish(context.Background(), cluster.Event{Kind: cluster.KindAsset, Container: container, Asset: asset})
}

func (s sharedAppliances) Revoked(appliance int64) {
	s.local.Revoked(appliance)
	s.c.Publish(context.Background(), cluster.Event{Kind: cluster.KindRevoked, Appliance: appliance})
}

func (s sharedAppliances) ApplianceChanged(appliance int64) {
	s.local.ApplianceChanged(appliance)
	s.c.Publish(context.Background(), cluster.Event{Kind: cluster.KindAppliance, Appliance: appliance})
}

func (s sharedAppliances) Live(appliance int64) (stream.Live, bool) {
	return s.local.Live(appliance)
}

var _ api.Appliances = sharedAppliances{}

// sharedServices is the API's view of the service checks: the hub that
// holds the services' lease runs them, whichever hub was told.
type sharedServices struct {
	local *service.Runner
	c     *cluster.Cluster
}

func (s sharedServices) Changed() {
	s.local.Changed()
	s.c.Publish(context.Background(), cluster.Event{Kind: cluster.KindServices})
}

// applyEvent applies another hub's change to this hub.
func (h *Hub) applyEvent(ctx context.Context, ev cluster.Event) {
	switch ev.Kind {
	case cluster.KindAsset:
		if h.stream != nil {
			h.stream.AssetChanged(ev.Container, ev.Asset)
		}
	case cluster.KindMembers:
		if h.stream != nil {
			h.stream.MembersChanged(ev.Container)
		}
	case cluster.KindAppliance:
		if h.stream != nil {
			h.stream.ApplianceChanged(ev.Appliance)
		}
	case cluster.KindRevoked:
		if h.stream != nil {
			h.stream.Revoked(ev.Appliance)
		}
	case cluster.KindConnected:
		if h.stream != nil {
			h.stream.ConnectedElsewhere(ev.Appliance)
		}
	case cluster.KindServices:
		h.services.Changed()
	case cluster.KindAlerts:
		// Open alerts change often: reloads are gathered.
		select {
		case h.reloadOpen <- struct{}{}:
		default:
		}
	case cluster.KindResync:
		if h.stream != nil {
			h.stream.Resync()
		}
		h.services.Changed()
		if err := h.alerts.Apply(ctx, alert.ChangeAll, 0); err != nil && ctx.Err() == nil {
			h.logger.Error("reading the condition engine's state again failed", "err", err)
		}
	default:
		for ak, ck := range alertKinds {
			if ck == ev.Kind {
				if err := h.alerts.Apply(ctx, ak, ev.Asset); err != nil && ctx.Err() == nil {
					h.logger.Error("applying another hub's change failed", "kind", ev.Kind, "err", err)
				}
				return
			}
		}
		h.logger.Debug("ignoring an unknown cluster event", "kind", ev.Kind)
	}
}

// reloadOpenAlerts reads the open alerts again whenever another hub
// opened or closed some, at most one reload at a time.
func (h *Hub) reloadOpenAlerts(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.reloadOpen:
		}
		if err := h.alerts.Apply(ctx, alert.ChangeAlerts, 0); err != nil && ctx.Err() == nil {
			h.logger.Error("reading the open alerts again failed", "err", err)
		}
	}
}

// lead runs work under a lease of the cluster's work, logging a failure.
func (h *Hub) lead(ctx context.Context, name string, work func(context.Context) error) {
	h.cluster.Lead(ctx, name, func(ctx context.Context) {
		if err := work(ctx); err != nil && ctx.Err() == nil {
			h.logger.Error("the cluster's work stopped", "lease", name, "err", err)
		}
	})
}

// clusterLogger is the cluster's logger.
func clusterLogger(l *slog.Logger) *slog.Logger { return l.With("part", "cluster") }

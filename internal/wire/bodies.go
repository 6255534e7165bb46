package wire

import (
	"fmt"
	"log/slog"
	"strconv"
)

// This file holds the bodies of the appliance ↔ hub stream,
// INFRASONAR-WIRE.md §2. Every Unmarshal function refuses a body of the
// wrong shape with an error wrapping ErrInvalidBody (or ErrMalformed), and
// every Marshal function refuses what its Unmarshal would refuse, so that
// neither end can send what the other drops.

// Announce is the body of an appliance's announce (TypeAnnounce):
// [appliance_id or nil, name, zone, token].
type Announce struct {
	// ApplianceID is 0 for an appliance that has none yet (nil on the
	// wire).
	ApplianceID uint64
	Name        string
	// Zone is the appliance's zone, 0–9.
	Zone int
	// Token is InfraSonar's authentication. It is a secret: String,
	// GoString and LogValue leave it out. An appliance with a client
	// certificate may send none (nil on the wire reads as "").
	Token string
}

// String describes the announce without its token.
func (a Announce) String() string {
	return fmt.Sprintf("announce{appliance %d, name %q, zone %d, token %s}", a.ApplianceID, a.Name, a.Zone, redacted(a.Token))
}

// GoString is String, so that %#v does not print the token either.
func (a Announce) GoString() string { return a.String() }

// LogValue logs the announce without its token.
func (a Announce) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Uint64("appliance_id", a.ApplianceID),
		slog.String("name", a.Name),
		slog.Int("zone", a.Zone),
		slog.String("token", redacted(a.Token)),
	)
}

func redacted(secret string) string {
	if secret == "" {
		return "none"
	}
	return "redacted"
}

// MarshalAnnounce encodes an announce body.
func MarshalAnnounce(a Announce) ([]byte, error) {
	s := shape{"announce"}
	if a.Name == "" {
		return nil, s.errf("", "%s must not be empty", elemName(1, "name"))
	}
	if !validZone(int64(a.Zone)) {
		return nil, s.errf("", "%s must be an integer 0–9, got %d", elemName(2, "zone"), a.Zone)
	}
	b := AppendArrayHeader(make([]byte, 0, 16+len(a.Name)+len(a.Token)), 4)
	if a.ApplianceID == 0 {
		b = AppendNil(b)
	} else {
		b = AppendUint(b, a.ApplianceID)
	}
	b = AppendString(b, a.Name)
	b = AppendInt(b, int64(a.Zone))
	return AppendString(b, a.Token), nil
}

// UnmarshalAnnounce decodes an announce body. Errors never quote the token.
func UnmarshalAnnounce(body []byte) (Announce, error) {
	s := shape{"announce"}
	v, err := s.decode(body)
	if err != nil {
		return Announce{}, err
	}
	a, err := s.tuple("", v, 4, 4, "[appliance_id, name, zone, token]")
	if err != nil {
		return Announce{}, err
	}
	var out Announce
	if out.ApplianceID, err = s.optID("", a, 0, "appliance_id"); err != nil {
		return Announce{}, err
	}
	if out.Name, err = s.str("", a, 1, "name", true); err != nil {
		return Announce{}, err
	}
	if out.Zone, err = s.zone("", a, 2); err != nil {
		return Announce{}, err
	}
	if a[3] != nil {
		if out.Token, err = s.str("", a, 3, "token", false); err != nil {
			return Announce{}, err
		}
	}
	return out, nil
}

// ApplianceZone is one appliance of a zone list: [appliance_id, zone].
type ApplianceZone struct {
	ID   uint64
	Zone int
}

// Asset is one asset the appliance serves: [asset_id, zone, asset_name,
// [probe, …]]. It is the body of an upsert asset packet, and an element of
// the asset lists of the announce reply and set assets.
type Asset struct {
	ID     uint64
	Zone   int
	Name   string
	Probes []AssetProbe
}

// AssetProbe is one probe (collector) of an asset: [probe_key,
// probe_config or nil, [check, …]].
type AssetProbe struct {
	Key string
	// Config is nil when the probe has none.
	Config map[string]any
	Checks []AssetCheck
}

// AssetCheck is one check of a probe: [check_id, check_key, interval_s,
// check_config or nil].
type AssetCheck struct {
	ID  uint64
	Key string
	// Interval is in seconds, 1 to a week.
	Interval int
	// Config is nil when the check has none.
	Config map[string]any
}

// AnnounceReply is the hub's answer to an announce (TypeAnnounceReply):
// [appliance_id, [[appliance_id, zone], …], assets].
type AnnounceReply struct {
	// ApplianceID is the id the hub knows the appliance by.
	ApplianceID uint64
	// Appliances lists the appliances of the zones, the announcing one
	// included: an unchanged InfraSonar appliance that is not in it drops
	// every asset.
	Appliances []ApplianceZone
	Assets     []Asset
}

// MarshalAnnounceReply encodes an announce reply. The appliance list must
// hold the reply's own appliance.
func MarshalAnnounceReply(r AnnounceReply) ([]byte, error) {
	s := shape{"announce reply"}
	if r.ApplianceID == 0 {
		return nil, s.errf("", "%s must be a positive integer, got 0", elemName(0, "appliance_id"))
	}
	if err := s.checkAppliances("appliances", r.Appliances, r.ApplianceID); err != nil {
		return nil, err
	}
	if err := s.checkAssets("assets", r.Assets); err != nil {
		return nil, err
	}
	b := AppendArrayHeader(make([]byte, 0, 64+64*len(r.Assets)), 3)
	b = AppendUint(b, r.ApplianceID)
	b = appendAppliances(b, r.Appliances)
	return s.appendAssets(b, r.Assets)
}

// UnmarshalAnnounceReply decodes an announce reply. An appliance list that
// does not hold the reply's own appliance is an error.
func UnmarshalAnnounceReply(body []byte) (AnnounceReply, error) {
	s := shape{"announce reply"}
	v, err := s.decode(body)
	if err != nil {
		return AnnounceReply{}, err
	}
	a, err := s.tuple("", v, 3, 3, "[appliance_id, appliances, assets]")
	if err != nil {
		return AnnounceReply{}, err
	}
	var r AnnounceReply
	if r.ApplianceID, err = s.uint("", a, 0, "appliance_id", true); err != nil {
		return AnnounceReply{}, err
	}
	if r.Appliances, err = s.appliances("appliances", a[1]); err != nil {
		return AnnounceReply{}, err
	}
	if err := s.checkAppliances("appliances", r.Appliances, r.ApplianceID); err != nil {
		return AnnounceReply{}, err
	}
	if r.Assets, err = s.assets("assets", a[2]); err != nil {
		return AnnounceReply{}, err
	}
	return r, nil
}

// SetAssets replaces everything the appliance serves (TypeSetAssets):
// [appliances, assets].
type SetAssets struct {
	Appliances []ApplianceZone
	Assets     []Asset
}

// MarshalSetAssets encodes a set assets body.
func MarshalSetAssets(sa SetAssets) ([]byte, error) {
	s := shape{"set assets"}
	if err := s.checkAppliances("appliances", sa.Appliances, 0); err != nil {
		return nil, err
	}
	if err := s.checkAssets("assets", sa.Assets); err != nil {
		return nil, err
	}
	b := AppendArrayHeader(make([]byte, 0, 64+64*len(sa.Assets)), 2)
	b = appendAppliances(b, sa.Appliances)
	return s.appendAssets(b, sa.Assets)
}

// UnmarshalSetAssets decodes a set assets body.
func UnmarshalSetAssets(body []byte) (SetAssets, error) {
	s := shape{"set assets"}
	v, err := s.decode(body)
	if err != nil {
		return SetAssets{}, err
	}
	a, err := s.tuple("", v, 2, 2, "[appliances, assets]")
	if err != nil {
		return SetAssets{}, err
	}
	var sa SetAssets
	if sa.Appliances, err = s.appliances("appliances", a[0]); err != nil {
		return SetAssets{}, err
	}
	if err := s.checkAppliances("appliances", sa.Appliances, 0); err != nil {
		return SetAssets{}, err
	}
	if sa.Assets, err = s.assets("assets", a[1]); err != nil {
		return SetAssets{}, err
	}
	return sa, nil
}

// MarshalUpsertAsset encodes an upsert asset body (TypeUpsertAsset): the
// asset, [asset_id, zone, name, probes].
func MarshalUpsertAsset(a Asset) ([]byte, error) {
	s := shape{"upsert asset"}
	if err := s.checkAsset("", &a); err != nil {
		return nil, err
	}
	return s.appendAsset(make([]byte, 0, 64), &a)
}

// UnmarshalUpsertAsset decodes an upsert asset body.
func UnmarshalUpsertAsset(body []byte) (Asset, error) {
	s := shape{"upsert asset"}
	v, err := s.decode(body)
	if err != nil {
		return Asset{}, err
	}
	return s.asset("", v)
}

// MarshalUnsetAssets encodes an unset assets body (TypeUnsetAssets, on the
// stream and the probe port): [asset_id, …].
func MarshalUnsetAssets(ids []uint64) ([]byte, error) {
	s := shape{"unset assets"}
	b := AppendArrayHeader(make([]byte, 0, 3+9*len(ids)), len(ids))
	for i, id := range ids {
		if id == 0 {
			return nil, s.errf("", "%s must be a positive integer, got 0", elemName(i, "asset_id"))
		}
		b = AppendUint(b, id)
	}
	return b, nil
}

// UnmarshalUnsetAssets decodes an unset assets body.
func UnmarshalUnsetAssets(body []byte) ([]uint64, error) {
	s := shape{"unset assets"}
	v, err := s.decode(body)
	if err != nil {
		return nil, err
	}
	a, err := s.list("", v, "[asset_id, …]")
	if err != nil {
		return nil, err
	}
	ids := make([]uint64, len(a))
	for i := range a {
		if ids[i], err = s.uint("", a, i, "asset_id", true); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// InfoReply is the appliance's answer to an info request (TypeInfoReply),
// a map. Keys absent or nil read as zero values; unknown keys are ignored.
type InfoReply struct {
	// RappConnected is InfraSonar's remote-appliance flag ("rapp_connected").
	RappConnected bool
	// Missing lists the keys of probes the appliance's assets need but
	// that are not connected.
	Missing []string
	Probes  []InfoProbe
	// Timestamp is the appliance's clock, Unix seconds.
	Timestamp float64
	// Version is the appliance's version.
	Version string
	// HasCounts says Buffered and Dropped were sent: Sonde's appliance
	// sends them, InfraSonar's does not.
	HasCounts bool
	// Buffered is how many data packets the appliance holds unacknowledged.
	Buffered int64
	// Dropped is how many data packets the appliance has dropped.
	Dropped int64
}

// InfoProbe is one connected probe of an info reply.
type InfoProbe struct {
	Key     string
	Version string
	// Timestamp is the probe's clock at its last answer, Unix seconds; 0
	// when unknown.
	Timestamp float64
	// Roundtrip is the probe's last answer time, seconds.
	Roundtrip float64
}

// MarshalInfoReply encodes an info reply. Its map keys come in a fixed
// order; nil lists are written as empty arrays.
func MarshalInfoReply(r InfoReply) []byte {
	n := 5
	if r.HasCounts {
		n += 2
	}
	b := AppendMapHeader(make([]byte, 0, 96+64*len(r.Probes)), n)
	b = AppendString(b, "rapp_connected")
	b = AppendBool(b, r.RappConnected)
	b = AppendString(b, "missing")
	b = AppendArrayHeader(b, len(r.Missing))
	for _, m := range r.Missing {
		b = AppendString(b, m)
	}
	b = AppendString(b, "probes")
	b = AppendArrayHeader(b, len(r.Probes))
	for _, p := range r.Probes {
		b = AppendMapHeader(b, 4)
		b = AppendString(b, "key")
		b = AppendString(b, p.Key)
		b = AppendString(b, "version")
		b = AppendString(b, p.Version)
		b = AppendString(b, "timestamp")
		b = AppendFloat64(b, p.Timestamp)
		b = AppendString(b, "roundtrip")
		b = AppendFloat64(b, p.Roundtrip)
	}
	b = AppendString(b, "timestamp")
	b = AppendFloat64(b, r.Timestamp)
	b = AppendString(b, "version")
	b = AppendString(b, r.Version)
	if r.HasCounts {
		b = AppendString(b, "buffered")
		b = AppendInt(b, r.Buffered)
		b = AppendString(b, "dropped")
		b = AppendInt(b, r.Dropped)
	}
	return b
}

// UnmarshalInfoReply decodes an info reply.
func UnmarshalInfoReply(body []byte) (InfoReply, error) {
	s := shape{"info reply"}
	v, err := s.decode(body)
	if err != nil {
		return InfoReply{}, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return InfoReply{}, s.errf("", "expected a map, got %s", describeValue(v))
	}
	var r InfoReply
	if r.RappConnected, err = s.optBool("", "rapp_connected", m["rapp_connected"]); err != nil {
		return InfoReply{}, err
	}
	missing, err := s.list("missing", m["missing"], "a list of probe keys")
	if err != nil {
		return InfoReply{}, err
	}
	if len(missing) > 0 {
		r.Missing = make([]string, len(missing))
		for i := range missing {
			if r.Missing[i], err = s.str("missing", missing, i, "probe key", false); err != nil {
				return InfoReply{}, err
			}
		}
	}
	probes, err := s.list("probes", m["probes"], "a list of probes")
	if err != nil {
		return InfoReply{}, err
	}
	if len(probes) > 0 {
		r.Probes = make([]InfoProbe, len(probes))
	}
	for i, pv := range probes {
		path := index("probes", i)
		pm, ok := pv.(map[string]any)
		if !ok {
			return InfoReply{}, s.errf(path, "expected a map, got %s", describeValue(pv))
		}
		p := &r.Probes[i]
		if p.Key, err = s.optString(path, "key", pm["key"]); err != nil {
			return InfoReply{}, err
		}
		if p.Version, err = s.optString(path, "version", pm["version"]); err != nil {
			return InfoReply{}, err
		}
		if p.Timestamp, err = s.number(path, "timestamp", pm["timestamp"]); err != nil {
			return InfoReply{}, err
		}
		if p.Roundtrip, err = s.number(path, "roundtrip", pm["roundtrip"]); err != nil {
			return InfoReply{}, err
		}
	}
	if r.Timestamp, err = s.number("", "timestamp", m["timestamp"]); err != nil {
		return InfoReply{}, err
	}
	if r.Version, err = s.optString("", "version", m["version"]); err != nil {
		return InfoReply{}, err
	}
	_, hasBuffered := m["buffered"]
	_, hasDropped := m["dropped"]
	r.HasCounts = hasBuffered || hasDropped
	if r.Buffered, err = s.optInt("", "buffered", m["buffered"]); err != nil {
		return InfoReply{}, err
	}
	if r.Dropped, err = s.optInt("", "dropped", m["dropped"]); err != nil {
		return InfoReply{}, err
	}
	return r, nil
}

// AuditLog is an appliance's audit event (TypeAuditLog), fire and forget:
// {"event_id", "message"}.
type AuditLog struct {
	EventID int64
	Message string
}

// MarshalAuditLog encodes an audit log body.
func MarshalAuditLog(l AuditLog) []byte {
	b := AppendMapHeader(make([]byte, 0, 24+len(l.Message)), 2)
	b = AppendString(b, "event_id")
	b = AppendInt(b, l.EventID)
	b = AppendString(b, "message")
	return AppendString(b, l.Message)
}

// UnmarshalAuditLog decodes an audit log body.
func UnmarshalAuditLog(body []byte) (AuditLog, error) {
	s := shape{"audit log"}
	v, err := s.decode(body)
	if err != nil {
		return AuditLog{}, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return AuditLog{}, s.errf("", "expected a map, got %s", describeValue(v))
	}
	var l AuditLog
	if l.EventID, err = s.optInt("", "event_id", m["event_id"]); err != nil {
		return AuditLog{}, err
	}
	if l.Message, err = s.optString("", "message", m["message"]); err != nil {
		return AuditLog{}, err
	}
	return l, nil
}

// MarshalErrorBody encodes the body of an error packet (TypeError): the
// message as a string.
func MarshalErrorBody(msg string) []byte {
	return AppendString(make([]byte, 0, 5+len(msg)), msg)
}

// UnmarshalErrorBody decodes the body of an error packet. Nil reads as "".
func UnmarshalErrorBody(body []byte) (string, error) {
	s := shape{"error"}
	v, err := s.decode(body)
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return "", s.errf("", "expected a string, got %s", describeValue(v))
}

// IsEmptyBody reports whether body says nothing: EmptyBody (c4 00), as
// InfraSonar sends, or nil (c0) or no bytes at all, which are accepted from
// peers too.
func IsEmptyBody(body []byte) bool {
	switch len(body) {
	case 0:
		return true
	case 1:
		return body[0] == mpNil
	case 2:
		return body[0] == mpBin8 && body[1] == 0
	}
	return false
}

// appliances reads a list of [appliance_id, zone].
func (s shape) appliances(path string, v any) ([]ApplianceZone, error) {
	list, err := s.list(path, v, "a list of [appliance_id, zone]")
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	out := make([]ApplianceZone, len(list))
	for i, e := range list {
		p := index(path, i)
		a, err := s.tuple(p, e, 2, 2, "[appliance_id, zone]")
		if err != nil {
			return nil, err
		}
		if out[i].ID, err = s.uint(p, a, 0, "appliance_id", true); err != nil {
			return nil, err
		}
		if out[i].Zone, err = s.zone(p, a, 1); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkAppliances checks a list of appliances: ids positive and unique,
// zones 0–9, and, when self is not 0, self in the list.
func (s shape) checkAppliances(path string, list []ApplianceZone, self uint64) error {
	seen := make(map[uint64]bool, len(list))
	for i, a := range list {
		p := index(path, i)
		if a.ID == 0 {
			return s.errf(p, "%s must be a positive integer, got 0", elemName(0, "appliance_id"))
		}
		if !validZone(int64(a.Zone)) {
			return s.errf(p, "%s must be an integer 0–9, got %d", elemName(1, "zone"), a.Zone)
		}
		if seen[a.ID] {
			return s.errf(p, "appliance %d appears twice", a.ID)
		}
		seen[a.ID] = true
	}
	if self != 0 && !seen[self] {
		return s.errf(path, "does not hold the appliance itself (%d); an InfraSonar appliance would drop every asset", self)
	}
	return nil
}

func appendAppliances(b []byte, list []ApplianceZone) []byte {
	b = AppendArrayHeader(b, len(list))
	for _, a := range list {
		b = AppendArrayHeader(b, 2)
		b = AppendUint(b, a.ID)
		b = AppendInt(b, int64(a.Zone))
	}
	return b
}

// assets reads a list of assets, ids unique.
func (s shape) assets(path string, v any) ([]Asset, error) {
	list, err := s.list(path, v, "a list of assets")
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	out := make([]Asset, len(list))
	seen := make(map[uint64]int, len(list))
	for i, e := range list {
		p := index(path, i)
		if out[i], err = s.asset(p, e); err != nil {
			return nil, err
		}
		if j, dup := seen[out[i].ID]; dup {
			return nil, s.errf(p, "asset %d appears twice (%s)", out[i].ID, index(path, j))
		}
		seen[out[i].ID] = i
	}
	return out, nil
}

// asset reads [asset_id, zone, asset_name, probes].
func (s shape) asset(path string, v any) (Asset, error) {
	a, err := s.tuple(path, v, 4, 4, "an asset [asset_id, zone, asset_name, probes]")
	if err != nil {
		return Asset{}, err
	}
	var out Asset
	if out.ID, err = s.uint(path, a, 0, "asset_id", true); err != nil {
		return Asset{}, err
	}
	if out.Zone, err = s.zone(path, a, 1); err != nil {
		return Asset{}, err
	}
	if out.Name, err = s.str(path, a, 2, "asset_name", false); err != nil {
		return Asset{}, err
	}
	pp := field(path, "probes")
	probes, err := s.list(pp, a[3], "a list of probes")
	if err != nil {
		return Asset{}, err
	}
	if len(probes) > 0 {
		out.Probes = make([]AssetProbe, len(probes))
	}
	keys := make(map[string]bool, len(probes))
	checks := make(map[uint64]bool)
	for i, pv := range probes {
		p := index(pp, i)
		pr := &out.Probes[i]
		t, err := s.tuple(p, pv, 3, 3, "a probe [probe_key, probe_config, checks]")
		if err != nil {
			return Asset{}, err
		}
		if pr.Key, err = s.str(p, t, 0, "probe_key", true); err != nil {
			return Asset{}, err
		}
		if keys[pr.Key] {
			return Asset{}, s.errf(p, "probe %q appears twice in the asset", pr.Key)
		}
		keys[pr.Key] = true
		if pr.Config, err = s.optMap(p, t, 1, "probe_config"); err != nil {
			return Asset{}, err
		}
		cp := field(p, "checks")
		list, err := s.list(cp, t[2], "a list of checks")
		if err != nil {
			return Asset{}, err
		}
		if len(list) > 0 {
			pr.Checks = make([]AssetCheck, len(list))
		}
		for j, cv := range list {
			c := index(cp, j)
			ch := &pr.Checks[j]
			// The config may be missing as well as nil.
			ct, err := s.tuple(c, cv, 3, 4, "a check [check_id, check_key, interval_s, check_config]")
			if err != nil {
				return Asset{}, err
			}
			if ch.ID, err = s.uint(c, ct, 0, "check_id", false); err != nil {
				return Asset{}, err
			}
			if checks[ch.ID] {
				return Asset{}, s.errf(c, "check %d appears twice in the asset", ch.ID)
			}
			checks[ch.ID] = true
			if ch.Key, err = s.str(c, ct, 1, "check_key", true); err != nil {
				return Asset{}, err
			}
			if ch.Interval, err = s.interval(c, ct, 2, "interval_s"); err != nil {
				return Asset{}, err
			}
			if ch.Config, err = s.optMap(c, ct, 3, "check_config"); err != nil {
				return Asset{}, err
			}
		}
	}
	return out, nil
}

// checkAssets checks assets before they are encoded, with the rules of
// assets.
func (s shape) checkAssets(path string, assets []Asset) error {
	seen := make(map[uint64]int, len(assets))
	for i := range assets {
		p := index(path, i)
		if err := s.checkAsset(p, &assets[i]); err != nil {
			return err
		}
		if j, dup := seen[assets[i].ID]; dup {
			return s.errf(p, "asset %d appears twice (%s)", assets[i].ID, index(path, j))
		}
		seen[assets[i].ID] = i
	}
	return nil
}

// checkAsset checks an asset before it is encoded, with the rules of asset.
func (s shape) checkAsset(path string, a *Asset) error {
	if a.ID == 0 {
		return s.errf(path, "%s must be a positive integer, got 0", elemName(0, "asset_id"))
	}
	if !validZone(int64(a.Zone)) {
		return s.errf(path, "%s must be an integer 0–9, got %d", elemName(1, "zone"), a.Zone)
	}
	keys := make(map[string]bool, len(a.Probes))
	checks := make(map[uint64]bool)
	for i, pr := range a.Probes {
		p := index(field(path, "probes"), i)
		if pr.Key == "" {
			return s.errf(p, "%s must not be empty", elemName(0, "probe_key"))
		}
		if keys[pr.Key] {
			return s.errf(p, "probe %q appears twice in the asset", pr.Key)
		}
		keys[pr.Key] = true
		for j, ch := range pr.Checks {
			c := index(field(p, "checks"), j)
			if checks[ch.ID] {
				return s.errf(c, "check %d appears twice in the asset", ch.ID)
			}
			checks[ch.ID] = true
			if ch.Key == "" {
				return s.errf(c, "%s must not be empty", elemName(1, "check_key"))
			}
			if !validInterval(int64(ch.Interval)) {
				return s.errf(c, "%s must be an integer of seconds, 1 to %d, got %d", elemName(2, "interval_s"), maxInterval, ch.Interval)
			}
		}
	}
	return nil
}

func (s shape) appendAssets(b []byte, assets []Asset) ([]byte, error) {
	b = AppendArrayHeader(b, len(assets))
	var err error
	for i := range assets {
		if b, err = s.appendAsset(b, &assets[i]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (s shape) appendAsset(b []byte, a *Asset) ([]byte, error) {
	b = AppendArrayHeader(b, 4)
	b = AppendUint(b, a.ID)
	b = AppendInt(b, int64(a.Zone))
	b = AppendString(b, a.Name)
	b = AppendArrayHeader(b, len(a.Probes))
	var err error
	for _, pr := range a.Probes {
		b = AppendArrayHeader(b, 3)
		b = AppendString(b, pr.Key)
		if b, err = s.appendConfig(b, pr.Config, "asset "+strconv.FormatUint(a.ID, 10)+" probe "+strconv.Quote(pr.Key)); err != nil {
			return nil, err
		}
		b = AppendArrayHeader(b, len(pr.Checks))
		for _, ch := range pr.Checks {
			b = AppendArrayHeader(b, 4)
			b = AppendUint(b, ch.ID)
			b = AppendString(b, ch.Key)
			b = AppendInt(b, int64(ch.Interval))
			if b, err = s.appendConfig(b, ch.Config, "asset "+strconv.FormatUint(a.ID, 10)+" check "+strconv.FormatUint(ch.ID, 10)); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// appendConfig appends a probe or check config, nil as nil.
func (s shape) appendConfig(b []byte, cfg map[string]any, what string) ([]byte, error) {
	if cfg == nil {
		return AppendNil(b), nil
	}
	out, err := AppendValue(b, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: config of %s: %w", s.what, what, err)
	}
	return out, nil
}

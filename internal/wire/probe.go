package wire

import (
	"errors"
	"fmt"
	"math"
)

// This file holds the bodies of the probe port, INFRASONAR-WIRE.md §3: an
// InfraSonar probe connects to the appliance, announces itself, receives
// its checks and sends their check data. The packet numbers are those of §2
// with other bodies; the unset assets and error bodies are the same.

// ProbeAnnounce is a probe's announce (TypeAnnounce on the probe port):
// [probe_name, version].
type ProbeAnnounce struct {
	Name    string
	Version string
}

// MarshalProbeAnnounce encodes a probe's announce.
func MarshalProbeAnnounce(a ProbeAnnounce) ([]byte, error) {
	s := shape{"probe announce"}
	if a.Name == "" {
		return nil, s.errf("", "%s must not be empty", elemName(0, "probe_name"))
	}
	b := AppendArrayHeader(make([]byte, 0, 8+len(a.Name)+len(a.Version)), 2)
	b = AppendString(b, a.Name)
	return AppendString(b, a.Version), nil
}

// UnmarshalProbeAnnounce decodes a probe's announce.
func UnmarshalProbeAnnounce(body []byte) (ProbeAnnounce, error) {
	s := shape{"probe announce"}
	v, err := s.decode(body)
	if err != nil {
		return ProbeAnnounce{}, err
	}
	a, err := s.tuple("", v, 2, 2, "[probe_name, version]")
	if err != nil {
		return ProbeAnnounce{}, err
	}
	var out ProbeAnnounce
	if out.Name, err = s.str("", a, 0, "probe_name", true); err != nil {
		return ProbeAnnounce{}, err
	}
	if out.Version, err = s.str("", a, 1, "version", false); err != nil {
		return ProbeAnnounce{}, err
	}
	return out, nil
}

// ProbeCheck is one check a probe runs, an element of the list the
// appliance sends it (TypeAnnounceReply and TypeSetAssets on the probe port):
// [[asset_id, check_id], [asset_name, check_key], {"_interval": int, …config}].
type ProbeCheck struct {
	AssetID   uint64
	CheckID   uint64
	AssetName string
	CheckKey  string
	// Interval is in seconds, the config's "_interval".
	Interval int
	// Config is the probe's and the check's config merged, without
	// "_interval"; nil when empty.
	Config map[string]any
}

// intervalKey is the config key the interval travels in.
const intervalKey = "_interval"

// MarshalProbeChecks encodes the check list of an announce reply or a set
// assets packet of the probe port.
func MarshalProbeChecks(checks []ProbeCheck) ([]byte, error) {
	return appendProbeChecks(make([]byte, 0, 16+48*len(checks)), shape{"probe checks"}, "", checks, 0)
}

// UnmarshalProbeChecks decodes the check list of an announce reply or a set
// assets packet of the probe port.
func UnmarshalProbeChecks(body []byte) ([]ProbeCheck, error) {
	s := shape{"probe checks"}
	v, err := s.decode(body)
	if err != nil {
		return nil, err
	}
	return s.probeChecks("", v, 0)
}

// MarshalProbeUpsert encodes an upsert asset packet of the probe port:
// [asset_id, checks], every check of that asset.
func MarshalProbeUpsert(assetID uint64, checks []ProbeCheck) ([]byte, error) {
	s := shape{"probe upsert asset"}
	if assetID == 0 {
		return nil, s.errf("", "%s must be a positive integer, got 0", elemName(0, "asset_id"))
	}
	b := AppendArrayHeader(make([]byte, 0, 16+48*len(checks)), 2)
	b = AppendUint(b, assetID)
	return appendProbeChecks(b, s, "checks", checks, assetID)
}

// UnmarshalProbeUpsert decodes an upsert asset packet of the probe port.
func UnmarshalProbeUpsert(body []byte) (assetID uint64, checks []ProbeCheck, err error) {
	s := shape{"probe upsert asset"}
	v, err := s.decode(body)
	if err != nil {
		return 0, nil, err
	}
	a, err := s.tuple("", v, 2, 2, "[asset_id, checks]")
	if err != nil {
		return 0, nil, err
	}
	if assetID, err = s.uint("", a, 0, "asset_id", true); err != nil {
		return 0, nil, err
	}
	if checks, err = s.probeChecks("checks", a[1], assetID); err != nil {
		return 0, nil, err
	}
	return assetID, checks, nil
}

// probeChecks reads a check list; with assetID not 0, every check must be
// of that asset.
func (s shape) probeChecks(path string, v any, assetID uint64) ([]ProbeCheck, error) {
	list, err := s.list(path, v, "a list of checks")
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	out := make([]ProbeCheck, len(list))
	type ids struct{ asset, check uint64 }
	seen := make(map[ids]bool, len(list))
	for i, e := range list {
		p := index(path, i)
		c := &out[i]
		a, err := s.tuple(p, e, 3, 3, "a check [[asset_id, check_id], [asset_name, check_key], config]")
		if err != nil {
			return nil, err
		}
		idp := field(p, "ids")
		id, err := s.tuple(idp, a[0], 2, 2, "[asset_id, check_id]")
		if err != nil {
			return nil, err
		}
		if c.AssetID, err = s.uint(idp, id, 0, "asset_id", true); err != nil {
			return nil, err
		}
		if c.CheckID, err = s.uint(idp, id, 1, "check_id", false); err != nil {
			return nil, err
		}
		if assetID != 0 && c.AssetID != assetID {
			return nil, s.errf(idp, "the check is of asset %d, not of the upserted asset %d", c.AssetID, assetID)
		}
		if seen[ids{c.AssetID, c.CheckID}] {
			return nil, s.errf(p, "check [%d, %d] appears twice", c.AssetID, c.CheckID)
		}
		seen[ids{c.AssetID, c.CheckID}] = true
		np := field(p, "names")
		names, err := s.tuple(np, a[1], 2, 2, "[asset_name, check_key]")
		if err != nil {
			return nil, err
		}
		if c.AssetName, err = s.str(np, names, 0, "asset_name", false); err != nil {
			return nil, err
		}
		if c.CheckKey, err = s.str(np, names, 1, "check_key", true); err != nil {
			return nil, err
		}
		cfg, ok := a[2].(map[string]any)
		if !ok {
			return nil, s.errf(p, "%s must be a map, got %s", elemName(2, "config"), describeValue(a[2]))
		}
		n, ok := cfg[intervalKey].(int64)
		if !ok || !validInterval(n) {
			return nil, s.errf(field(p, "config"), "%q must be an integer of seconds, 1 to %d, got %s", intervalKey, maxInterval, describeValue(cfg[intervalKey]))
		}
		c.Interval = int(n)
		if len(cfg) > 1 {
			delete(cfg, intervalKey)
			c.Config = cfg
		}
	}
	return out, nil
}

func appendProbeChecks(b []byte, s shape, path string, checks []ProbeCheck, assetID uint64) ([]byte, error) {
	b = AppendArrayHeader(b, len(checks))
	type ids struct{ asset, check uint64 }
	seen := make(map[ids]bool, len(checks))
	for i, c := range checks {
		p := index(path, i)
		switch {
		case c.AssetID == 0:
			return nil, s.errf(field(p, "ids"), "%s must be a positive integer, got 0", elemName(0, "asset_id"))
		case assetID != 0 && c.AssetID != assetID:
			return nil, s.errf(field(p, "ids"), "the check is of asset %d, not of the upserted asset %d", c.AssetID, assetID)
		case seen[ids{c.AssetID, c.CheckID}]:
			return nil, s.errf(p, "check [%d, %d] appears twice", c.AssetID, c.CheckID)
		case c.CheckKey == "":
			return nil, s.errf(field(p, "names"), "%s must not be empty", elemName(1, "check_key"))
		case !validInterval(int64(c.Interval)):
			return nil, s.errf(field(p, "config"), "%q must be an integer of seconds, 1 to %d, got %d", intervalKey, maxInterval, c.Interval)
		}
		if _, ok := c.Config[intervalKey]; ok {
			return nil, s.errf(field(p, "config"), "the config holds %q: set Interval instead", intervalKey)
		}
		seen[ids{c.AssetID, c.CheckID}] = true
		b = AppendArrayHeader(b, 3)
		b = AppendArrayHeader(b, 2)
		b = AppendUint(b, c.AssetID)
		b = AppendUint(b, c.CheckID)
		b = AppendArrayHeader(b, 2)
		b = AppendString(b, c.AssetName)
		b = AppendString(b, c.CheckKey)
		// The interval first, then the config with its keys sorted, as
		// AppendValue writes a map.
		cfg := make(map[string]any, len(c.Config)+1)
		for k, v := range c.Config {
			cfg[k] = v
		}
		cfg[intervalKey] = int64(c.Interval)
		var err error
		if b, err = AppendValue(b, cfg); err != nil {
			return nil, fmt.Errorf("%s: config of check [%d, %d]: %w", s.what, c.AssetID, c.CheckID, err)
		}
	}
	return b, nil
}

// ProbeDump is a probe's check data (TypeData on the probe port):
// [[asset_id, check_id], check_data].
type ProbeDump struct {
	AssetID uint64
	CheckID uint64
	// CheckData is the check data's MessagePack, as the probe sent it:
	// the appliance forwards it verbatim as the body of a data packet
	// after DecodeCheckData has accepted it.
	CheckData []byte
}

// MarshalProbeDump encodes a probe's dump. d.CheckData must hold one
// MessagePack value (EncodeCheckData makes one).
func MarshalProbeDump(d ProbeDump) ([]byte, error) {
	s := shape{"probe dump"}
	if d.AssetID == 0 {
		return nil, s.errf("", "%s must be a positive integer, got 0", elemName(0, "asset_id"))
	}
	if err := oneValue(d.CheckData); err != nil {
		return nil, fmt.Errorf("%s: check data: %w", s.what, err)
	}
	b := AppendArrayHeader(make([]byte, 0, 24+len(d.CheckData)), 2)
	b = AppendArrayHeader(b, 2)
	b = AppendUint(b, d.AssetID)
	b = AppendUint(b, d.CheckID)
	return append(b, d.CheckData...), nil
}

// UnmarshalProbeDump splits a probe's dump into its ids and the raw check
// data, which it does not decode: DecodeCheckData does. CheckData aliases
// body.
func UnmarshalProbeDump(body []byte) (ProbeDump, error) {
	s := shape{"probe dump"}
	d := decoder{b: body}
	t, err := d.next()
	if err != nil {
		return ProbeDump{}, fmt.Errorf("%s: %w", s.what, err)
	}
	if t.kind != kindArray || t.n != 2 {
		return ProbeDump{}, s.errf("", "expected [[asset_id, check_id], check_data], an array of 2 elements, got %s", t.describe())
	}
	// The ids are small: decode them generically, for the messages.
	ids, err := d.value(1)
	if err != nil {
		return ProbeDump{}, fmt.Errorf("%s: %w", s.what, err)
	}
	a, err := s.tuple("ids", ids, 2, 2, "[asset_id, check_id]")
	if err != nil {
		return ProbeDump{}, err
	}
	var out ProbeDump
	if out.AssetID, err = s.uint("ids", a, 0, "asset_id", true); err != nil {
		return ProbeDump{}, err
	}
	if out.CheckID, err = s.uint("ids", a, 1, "check_id", false); err != nil {
		return ProbeDump{}, err
	}
	start := d.off
	if err := d.skip(MaxDepth); err != nil {
		if errors.Is(err, errNested) {
			return ProbeDump{}, fmt.Errorf("%s: check data: %w", s.what, d.errAt(start, err.Error()))
		}
		return ProbeDump{}, fmt.Errorf("%s: check data: %w", s.what, err)
	}
	if d.off != len(body) {
		return ProbeDump{}, fmt.Errorf("%s: %w", s.what, d.errAt(d.off, fmt.Sprintf("%d bytes follow the value", len(body)-d.off)))
	}
	out.CheckData = body[start:d.off:d.off]
	return out, nil
}

// oneValue checks that b holds exactly one MessagePack value.
func oneValue(b []byte) error {
	d := decoder{b: b}
	if err := d.skip(MaxDepth); err != nil {
		if errors.Is(err, errNested) {
			return d.errAt(0, err.Error())
		}
		return err
	}
	if d.off != len(b) {
		return d.errAt(d.off, fmt.Sprintf("%d bytes follow the value", len(b)-d.off))
	}
	return nil
}

// MarshalProbeInfoReply encodes a probe's answer to an info request: its
// clock, Unix seconds, as a float.
func MarshalProbeInfoReply(clock float64) []byte {
	return AppendFloat64(make([]byte, 0, 9), clock)
}

// UnmarshalProbeInfoReply decodes a probe's answer to an info request, its
// clock; an integer is accepted too.
func UnmarshalProbeInfoReply(body []byte) (float64, error) {
	s := shape{"probe info reply"}
	v, err := s.decode(body)
	if err != nil {
		return 0, err
	}
	switch v := v.(type) {
	case int64:
		return float64(v), nil
	case uint64:
		return float64(v), nil
	case float64:
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			return v, nil
		}
	}
	return 0, s.errf("", "expected the probe's clock, a number, got %s", describeValue(v))
}

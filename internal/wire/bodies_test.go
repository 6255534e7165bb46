package wire

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/sonde-monitoring/sonde/internal/model"
)

const testToken = "0123456789abcdef0123456789abcdef"

func sampleAssets() []Asset {
	return []Asset{
		{ID: 12, Zone: 0, Name: "web1", Probes: []AssetProbe{
			{Key: "ping", Config: nil, Checks: []AssetCheck{
				{ID: 100, Key: "ping", Interval: 300, Config: map[string]any{"count": int64(5), "interval": 1.0}},
			}},
			{Key: "tcp", Config: map[string]any{"address": "10.0.0.1"}, Checks: []AssetCheck{
				{ID: 101, Key: "tcp", Interval: 60},
				{ID: 102, Key: "tls", Interval: 3600, Config: map[string]any{"ports": []any{int64(443), int64(8443)}}},
			}},
		}},
		{ID: 13, Zone: 9, Name: "", Probes: nil},
	}
}

func TestBodiesRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		golden    string
		marshal   func() ([]byte, error)
		unmarshal func([]byte) (any, error)
		want      any
	}{
		{
			name:   "announce",
			golden: "announce.golden",
			marshal: func() ([]byte, error) {
				return MarshalAnnounce(Announce{ApplianceID: 7, Name: "dc1", Zone: 3, Token: testToken})
			},
			unmarshal: func(b []byte) (any, error) { return UnmarshalAnnounce(b) },
			want:      Announce{ApplianceID: 7, Name: "dc1", Zone: 3, Token: testToken},
		},
		{
			name:      "first announce",
			golden:    "announce-first.golden",
			marshal:   func() ([]byte, error) { return MarshalAnnounce(Announce{Name: "dc1", Zone: 0, Token: testToken}) },
			unmarshal: func(b []byte) (any, error) { return UnmarshalAnnounce(b) },
			want:      Announce{Name: "dc1", Zone: 0, Token: testToken},
		},
		{
			name:   "announce reply",
			golden: "announce-reply.golden",
			marshal: func() ([]byte, error) {
				return MarshalAnnounceReply(AnnounceReply{ApplianceID: 7,
					Appliances: []ApplianceZone{{ID: 7, Zone: 0}, {ID: 8, Zone: 0}, {ID: 9, Zone: 9}}, Assets: sampleAssets()})
			},
			unmarshal: func(b []byte) (any, error) { return UnmarshalAnnounceReply(b) },
			want: AnnounceReply{ApplianceID: 7,
				Appliances: []ApplianceZone{{ID: 7, Zone: 0}, {ID: 8, Zone: 0}, {ID: 9, Zone: 9}}, Assets: sampleAssets()},
		},
		{
			name:   "set assets",
			golden: "set-assets.golden",
			marshal: func() ([]byte, error) {
				return MarshalSetAssets(SetAssets{Appliances: []ApplianceZone{{ID: 7, Zone: 0}}, Assets: sampleAssets()})
			},
			unmarshal: func(b []byte) (any, error) { return UnmarshalSetAssets(b) },
			want:      SetAssets{Appliances: []ApplianceZone{{ID: 7, Zone: 0}}, Assets: sampleAssets()},
		},
		{
			name:      "set no assets",
			golden:    "set-assets-empty.golden",
			marshal:   func() ([]byte, error) { return MarshalSetAssets(SetAssets{}) },
			unmarshal: func(b []byte) (any, error) { return UnmarshalSetAssets(b) },
			want:      SetAssets{},
		},
		{
			name:      "upsert asset",
			golden:    "upsert-asset.golden",
			marshal:   func() ([]byte, error) { return MarshalUpsertAsset(sampleAssets()[0]) },
			unmarshal: func(b []byte) (any, error) { return UnmarshalUpsertAsset(b) },
			want:      sampleAssets()[0],
		},
		{
			name:      "unset assets",
			golden:    "unset-assets.golden",
			marshal:   func() ([]byte, error) { return MarshalUnsetAssets([]uint64{12, 1 << 40}) },
			unmarshal: func(b []byte) (any, error) { return UnmarshalUnsetAssets(b) },
			want:      []uint64{12, 1 << 40},
		},
		{
			name:   "info reply from Sonde",
			golden: "info-reply.golden",
			marshal: func() ([]byte, error) {
				return MarshalInfoReply(InfoReply{Missing: []string{"snmp"},
					Probes:    []InfoProbe{{Key: "ping", Version: "3.0.0", Timestamp: 1700000000.5, Roundtrip: 0.002}},
					Timestamp: 1700000001.25, Version: "0.4.0", HasCounts: true, Buffered: 12, Dropped: 0}), nil
			},
			unmarshal: func(b []byte) (any, error) { return UnmarshalInfoReply(b) },
			want: InfoReply{Missing: []string{"snmp"},
				Probes:    []InfoProbe{{Key: "ping", Version: "3.0.0", Timestamp: 1700000000.5, Roundtrip: 0.002}},
				Timestamp: 1700000001.25, Version: "0.4.0", HasCounts: true, Buffered: 12},
		},
		{
			name:   "info reply without counts",
			golden: "info-reply-infrasonar.golden",
			marshal: func() ([]byte, error) {
				return MarshalInfoReply(InfoReply{RappConnected: true, Timestamp: 1, Version: "1"}), nil
			},
			unmarshal: func(b []byte) (any, error) { return UnmarshalInfoReply(b) },
			want:      InfoReply{RappConnected: true, Timestamp: 1, Version: "1"},
		},
		{
			name:   "audit log",
			golden: "audit-log.golden",
			marshal: func() ([]byte, error) {
				return MarshalAuditLog(AuditLog{EventID: 4, Message: "vault key rotated"}), nil
			},
			unmarshal: func(b []byte) (any, error) { return UnmarshalAuditLog(b) },
			want:      AuditLog{EventID: 4, Message: "vault key rotated"},
		},
		{
			name:      "error",
			golden:    "error.golden",
			marshal:   func() ([]byte, error) { return MarshalErrorBody("unknown asset 12"), nil },
			unmarshal: func(b []byte) (any, error) { return UnmarshalErrorBody(b) },
			want:      "unknown asset 12",
		},
		{
			name:   "enroll",
			golden: "enroll.golden",
			marshal: func() ([]byte, error) {
				return MarshalEnroll(Enroll{Token: testToken, Name: "dc1", Zone: 2, CSR: []byte{0x30, 0x82, 0x01, 0x0a}})
			},
			unmarshal: func(b []byte) (any, error) { return UnmarshalEnroll(b) },
			want:      Enroll{Token: testToken, Name: "dc1", Zone: 2, CSR: []byte{0x30, 0x82, 0x01, 0x0a}},
		},
		{
			name:   "enroll reply",
			golden: "enroll-reply.golden",
			marshal: func() ([]byte, error) {
				return MarshalEnrollReply(EnrollReply{ApplianceID: 7, Certificate: []byte{0x30, 1}, CA: []byte{0x30, 2}})
			},
			unmarshal: func(b []byte) (any, error) { return UnmarshalEnrollReply(b) },
			want:      EnrollReply{ApplianceID: 7, Certificate: []byte{0x30, 1}, CA: []byte{0x30, 2}},
		},
		{
			name:      "probe announce",
			golden:    "probe-announce.golden",
			marshal:   func() ([]byte, error) { return MarshalProbeAnnounce(ProbeAnnounce{Name: "ping", Version: "3.0.0"}) },
			unmarshal: func(b []byte) (any, error) { return UnmarshalProbeAnnounce(b) },
			want:      ProbeAnnounce{Name: "ping", Version: "3.0.0"},
		},
		{
			name:      "probe checks",
			golden:    "probe-checks.golden",
			marshal:   func() ([]byte, error) { return MarshalProbeChecks(sampleProbeChecks()) },
			unmarshal: func(b []byte) (any, error) { return UnmarshalProbeChecks(b) },
			want:      sampleProbeChecks(),
		},
		{
			name:    "probe upsert",
			golden:  "probe-upsert.golden",
			marshal: func() ([]byte, error) { return MarshalProbeUpsert(12, sampleProbeChecks()[:2]) },
			unmarshal: func(b []byte) (any, error) {
				id, checks, err := UnmarshalProbeUpsert(b)
				return []any{id, checks}, err
			},
			want: []any{uint64(12), sampleProbeChecks()[:2]},
		},
		{
			name:   "probe dump",
			golden: "probe-dump.golden",
			marshal: func() ([]byte, error) {
				return MarshalProbeDump(ProbeDump{AssetID: 12, CheckID: 100, CheckData: EncodeCheckData(sampleErrorOnly())})
			},
			unmarshal: func(b []byte) (any, error) { return UnmarshalProbeDump(b) },
			want:      ProbeDump{AssetID: 12, CheckID: 100, CheckData: EncodeCheckData(sampleErrorOnly())},
		},
		{
			name:      "probe info reply",
			golden:    "probe-info-reply.golden",
			marshal:   func() ([]byte, error) { return MarshalProbeInfoReply(1700000000.125), nil },
			unmarshal: func(b []byte) (any, error) { return UnmarshalProbeInfoReply(b) },
			want:      1700000000.125,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := tc.marshal()
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			golden(t, tc.golden, body)
			got, err := tc.unmarshal(body)
			if err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func sampleProbeChecks() []ProbeCheck {
	return []ProbeCheck{
		{AssetID: 12, CheckID: 100, AssetName: "web1", CheckKey: "ping", Interval: 300,
			Config: map[string]any{"address": "10.0.0.1", "count": int64(5)}},
		{AssetID: 12, CheckID: 101, AssetName: "web1", CheckKey: "tcp", Interval: 60},
		{AssetID: 13, CheckID: 100, AssetName: "db1", CheckKey: "ping", Interval: 30},
	}
}

func sampleErrorOnly() *model.CheckData {
	return &model.CheckData{Error: &model.CheckError{Message: "timed out", Severity: model.SeverityHigh}, Timestamp: 1700000000, Duration: 10}
}

// TestUnmarshalTolerance reads bodies written the way InfraSonar may write
// them: nil where Sonde writes an empty value, configs missing, wide
// integer formats, integer map keys.
func TestUnmarshalTolerance(t *testing.T) {
	tests := []struct {
		name      string
		body      []byte
		unmarshal func([]byte) (any, error)
		want      any
	}{
		{"announce with nil token", mp(a(nil, "dc1", 0, nil)),
			func(b []byte) (any, error) { return UnmarshalAnnounce(b) }, Announce{Name: "dc1"}},
		{"announce with wide integers", mp(a(raw{0xcf, 0, 0, 0, 0, 0, 0, 0, 7}, "dc1", raw{0xd0, 0x03}, testToken)),
			func(b []byte) (any, error) { return UnmarshalAnnounce(b) }, Announce{ApplianceID: 7, Name: "dc1", Zone: 3, Token: testToken}},
		{"asset with nil probes, check without config", mp(a(a(12, 0, "x", nil), a(13, 1, "y", a(a("ping", nil, a(a(1, "ping", 60))))))),
			func(b []byte) (any, error) { return replyWithAssets(b) }, nil},
		{"set assets with nil lists", mp(a(nil, nil)),
			func(b []byte) (any, error) { return UnmarshalSetAssets(b) }, SetAssets{}},
		{"config with integer keys", mp(a(12, 0, "x", a(a("snmp", m(1, "a"), a(a(5, "snmp", 300, m("oids", a("1.3.6"), 2, nil))))))),
			func(b []byte) (any, error) { return UnmarshalUpsertAsset(b) },
			Asset{ID: 12, Name: "x", Probes: []AssetProbe{{Key: "snmp", Config: map[string]any{"1": "a"},
				Checks: []AssetCheck{{ID: 5, Key: "snmp", Interval: 300, Config: map[string]any{"oids": []any{"1.3.6"}, "2": nil}}}}}}},
		{"info reply of nils and unknown keys", mp(m("rapp_connected", nil, "missing", nil, "probes", a(m("key", "ping", "version", nil, "timestamp", nil, "roundtrip", 1)),
			"timestamp", 1700000000, "version", nil, "extra", a(1))),
			func(b []byte) (any, error) { return UnmarshalInfoReply(b) },
			InfoReply{Probes: []InfoProbe{{Key: "ping", Roundtrip: 1}}, Timestamp: 1700000000}},
		{"info reply with only a count", mp(m("dropped", 3)),
			func(b []byte) (any, error) { return UnmarshalInfoReply(b) }, InfoReply{HasCounts: true, Dropped: 3}},
		{"audit log of nils", mp(m("event_id", nil, "message", nil)),
			func(b []byte) (any, error) { return UnmarshalAuditLog(b) }, AuditLog{}},
		{"nil error body", mp(nil),
			func(b []byte) (any, error) { return UnmarshalErrorBody(b) }, ""},
		{"probe info reply as an integer", mp(1700000000),
			func(b []byte) (any, error) { return UnmarshalProbeInfoReply(b) }, 1700000000.0},
		{"probe check of only an interval", mp(a(a(a(12, 0), a("web1", "ping"), m("_interval", 60)))),
			func(b []byte) (any, error) { return UnmarshalProbeChecks(b) },
			[]ProbeCheck{{AssetID: 12, AssetName: "web1", CheckKey: "ping", Interval: 60}}},
		{"probe dump with nil check data", mp(a(a(12, 1), nil)),
			func(b []byte) (any, error) { return UnmarshalProbeDump(b) }, ProbeDump{AssetID: 12, CheckID: 1, CheckData: []byte{0xc0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.unmarshal(tc.body)
			if err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

// replyWithAssets reads an asset list as the third element of an announce
// reply, for the tolerance table.
func replyWithAssets(b []byte) (any, error) {
	return UnmarshalAnnounceReply(mp(a(1, a(a(1, 0)), raw(b))))
}

func TestUnmarshalErrors(t *testing.T) {
	announce := func(b []byte) error { _, err := UnmarshalAnnounce(b); return err }
	reply := func(b []byte) error { _, err := UnmarshalAnnounceReply(b); return err }
	setAssets := func(b []byte) error { _, err := UnmarshalSetAssets(b); return err }
	upsert := func(b []byte) error { _, err := UnmarshalUpsertAsset(b); return err }
	unset := func(b []byte) error { _, err := UnmarshalUnsetAssets(b); return err }
	info := func(b []byte) error { _, err := UnmarshalInfoReply(b); return err }
	audit := func(b []byte) error { _, err := UnmarshalAuditLog(b); return err }
	errBody := func(b []byte) error { _, err := UnmarshalErrorBody(b); return err }
	probeAnnounce := func(b []byte) error { _, err := UnmarshalProbeAnnounce(b); return err }
	enroll := func(b []byte) error { _, err := UnmarshalEnroll(b); return err }
	enrollReply := func(b []byte) error { _, err := UnmarshalEnrollReply(b); return err }
	probeChecks := func(b []byte) error { _, err := UnmarshalProbeChecks(b); return err }
	probeUpsert := func(b []byte) error { _, _, err := UnmarshalProbeUpsert(b); return err }
	probeDump := func(b []byte) error { _, err := UnmarshalProbeDump(b); return err }
	probeInfo := func(b []byte) error { _, err := UnmarshalProbeInfoReply(b); return err }

	asset := func(probes any) any { return a(12, 0, "x", probes) }
	check := func(c ...any) []byte { return mp(asset(a(a("ping", nil, a(a(c...)))))) }
	tests := []struct {
		name      string
		unmarshal func([]byte) error
		body      []byte
		malformed bool // the error wraps ErrMalformed rather than ErrInvalidBody
		msg       string
	}{
		{"announce zone string", announce, mp(a(nil, "dc1", "0", testToken)), false,
			"announce: element 2 (zone) must be an integer 0–9, got a string"},
		{"announce zone 10", announce, mp(a(nil, "dc1", 10, testToken)), false,
			"announce: element 2 (zone) must be an integer 0–9, got the integer 10"},
		{"announce zone negative", announce, mp(a(nil, "dc1", -1, testToken)), false,
			"announce: element 2 (zone) must be an integer 0–9, got the integer -1"},
		{"announce zone float", announce, mp(a(nil, "dc1", 1.0, testToken)), false,
			"announce: element 2 (zone) must be an integer 0–9, got the float 1"},
		{"announce short", announce, mp(a(nil, "dc1", 0)), false,
			"announce: expected [appliance_id, name, zone, token], an array of 4 elements, got an array of 3 elements"},
		{"announce map", announce, mp(m("name", "dc1")), false,
			"announce: expected [appliance_id, name, zone, token], an array of 4 elements, got a map"},
		{"announce id string", announce, mp(a("7", "dc1", 0, testToken)), false,
			"announce: element 0 (appliance_id) must be a non-negative integer, got a string"},
		{"announce id negative", announce, mp(a(-7, "dc1", 0, testToken)), false,
			"announce: element 0 (appliance_id) must be a non-negative integer, got the integer -7"},
		{"announce empty name", announce, mp(a(nil, "", 0, testToken)), false,
			"announce: element 1 (name) must not be empty"},
		{"announce token is not quoted", announce, mp(a(nil, "dc1", 0, []byte(testToken))), false,
			"announce: element 3 (token) must be a string, got binary data"},
		{"announce malformed", announce, []byte{0x94, 0xc0}, true,
			"announce: malformed MessagePack at byte 0: truncated array of 4 elements: 1 bytes left"},
		{"announce trailing bytes", announce, append(mp(a(nil, "dc1", 0, testToken)), 0xc0), true,
			"announce: malformed MessagePack at byte 41: 1 bytes follow the value"},

		{"reply without itself", reply, mp(a(7, a(a(8, 0)), a())), false,
			"announce reply: appliances: does not hold the appliance itself (7); an InfraSonar appliance would drop every asset"},
		{"reply with an empty appliance list", reply, mp(a(7, nil, a())), false,
			"announce reply: appliances: does not hold the appliance itself (7); an InfraSonar appliance would drop every asset"},
		{"reply id nil", reply, mp(a(nil, a(), a())), false,
			"announce reply: element 0 (appliance_id) must be a positive integer, got nil"},
		{"reply appliance zone", reply, mp(a(7, a(a(7, 0), a(8, 12)), a())), false,
			"announce reply: appliances[1]: element 1 (zone) must be an integer 0–9, got the integer 12"},
		{"reply appliance twice", reply, mp(a(7, a(a(7, 0), a(7, 1)), a())), false,
			"announce reply: appliances[1]: appliance 7 appears twice"},
		{"reply appliance shape", reply, mp(a(7, a(7, 0), a())), false,
			"announce reply: appliances[0]: expected [appliance_id, zone], an array of 2 elements, got the integer 7"},
		{"reply asset twice", reply, mp(a(7, a(a(7, 0)), a(asset(nil), asset(nil)))), false,
			"announce reply: assets[1]: asset 12 appears twice (assets[0])"},
		{"reply assets map", reply, mp(a(7, a(a(7, 0)), m())), false,
			"announce reply: assets: expected a list of assets, an array, got a map"},

		{"set assets shape", setAssets, mp(a(a())), false,
			"set assets: expected [appliances, assets], an array of 2 elements, got an array of 1 element"},
		{"set assets asset id 0", setAssets, mp(a(a(), a(a(0, 0, "x", nil)))), false,
			"set assets: assets[0]: element 0 (asset_id) must be a positive integer, got the integer 0"},
		{"set assets asset zone", setAssets, mp(a(a(), a(a(1, nil, "x", nil)))), false,
			"set assets: assets[0]: element 1 (zone) must be an integer 0–9, got nil"},
		{"set assets asset name", setAssets, mp(a(a(), a(a(1, 0, 5, nil)))), false,
			"set assets: assets[0]: element 2 (asset_name) must be a string, got the integer 5"},
		{"set assets asset short", setAssets, mp(a(a(), a(a(1, 0, "x")))), false,
			"set assets: assets[0]: expected an asset [asset_id, zone, asset_name, probes], an array of 4 elements, got an array of 3 elements"},

		{"upsert probes map", upsert, mp(asset(m())), false,
			"upsert asset: probes: expected a list of probes, an array, got a map"},
		{"upsert probe key", upsert, mp(asset(a(a(nil, nil, a())))), false,
			"upsert asset: probes[0]: element 0 (probe_key) must be a string, got nil"},
		{"upsert probe key empty", upsert, mp(asset(a(a("", nil, a())))), false,
			"upsert asset: probes[0]: element 0 (probe_key) must not be empty"},
		{"upsert probe twice", upsert, mp(asset(a(a("ping", nil, a()), a("ping", nil, a())))), false,
			`upsert asset: probes[1]: probe "ping" appears twice in the asset`},
		{"upsert probe config list", upsert, mp(asset(a(a("ping", a(), a())))), false,
			"upsert asset: probes[0]: element 1 (probe_config) must be a map or nil, got an array of 0 elements"},
		{"upsert probe short", upsert, mp(asset(a(a("ping", nil)))), false,
			"upsert asset: probes[0]: expected a probe [probe_key, probe_config, checks], an array of 3 elements, got an array of 2 elements"},
		{"upsert checks nil element", upsert, mp(asset(a(a("ping", nil, a(nil))))), false,
			"upsert asset: probes[0].checks[0]: expected a check [check_id, check_key, interval_s, check_config], an array of 3 to 4 elements, got nil"},
		{"upsert check id", upsert, check("1", "ping", 60, nil), false,
			"upsert asset: probes[0].checks[0]: element 0 (check_id) must be a non-negative integer, got a string"},
		{"upsert check key", upsert, check(1, "", 60, nil), false,
			"upsert asset: probes[0].checks[0]: element 1 (check_key) must not be empty"},
		{"upsert check interval 0", upsert, check(1, "ping", 0, nil), false,
			"upsert asset: probes[0].checks[0]: element 2 (interval_s) must be an integer of seconds, 1 to 604800, got the integer 0"},
		{"upsert check interval float", upsert, check(1, "ping", 60.0, nil), false,
			"upsert asset: probes[0].checks[0]: element 2 (interval_s) must be an integer of seconds, 1 to 604800, got the float 60"},
		{"upsert check interval huge", upsert, check(1, "ping", uint64(1<<63), nil), false,
			"upsert asset: probes[0].checks[0]: element 2 (interval_s) must be an integer of seconds, 1 to 604800, got the integer 9223372036854775808"},
		{"upsert check config string", upsert, check(1, "ping", 60, "x"), false,
			"upsert asset: probes[0].checks[0]: element 3 (check_config) must be a map or nil, got a string"},
		{"upsert check twice", upsert, mp(asset(a(a("ping", nil, a(a(1, "ping", 60))), a("tcp", nil, a(a(1, "tcp", 60)))))), false,
			"upsert asset: probes[1].checks[0]: check 1 appears twice in the asset"},
		{"upsert config duplicate key", upsert, mp(asset(a(a("ping", m("a", 1, "a", 2), a())))), true,
			`upsert asset: malformed MessagePack at byte 16: map key "a" appears twice`},

		{"unset map", unset, mp(m()), false, "unset assets: expected [asset_id, …], an array, got a map"},
		{"unset id 0", unset, mp(a(1, 0)), false, "unset assets: element 1 (asset_id) must be a positive integer, got the integer 0"},

		{"info reply array", info, mp(a()), false, "info reply: expected a map, got an array of 0 elements"},
		{"info reply missing map", info, mp(m("missing", m())), false, "info reply: missing: expected a list of probe keys, an array, got a map"},
		{"info reply missing key", info, mp(m("missing", a("a", 1))), false, "info reply: missing: element 1 (probe key) must be a string, got the integer 1"},
		{"info reply probe", info, mp(m("probes", a("ping"))), false, "info reply: probes[0]: expected a map, got a string"},
		{"info reply probe timestamp", info, mp(m("probes", a(m("timestamp", "now")))), false,
			`info reply: probes[0]: "timestamp" must be a number, got a string`},
		{"info reply timestamp NaN", info, mp(m("timestamp", raw(AppendFloat64(nil, math.NaN())))), false,
			`info reply: "timestamp" must be a finite number, got the float NaN`},
		{"info reply connected", info, mp(m("rapp_connected", 1)), false, `info reply: "rapp_connected" must be true or false, got the integer 1`},
		{"info reply buffered", info, mp(m("buffered", 1.5)), false, `info reply: "buffered" must be an integer, got the float 1.5`},
		{"info reply version", info, mp(m("version", 1)), false, `info reply: "version" must be a string, got the integer 1`},

		{"audit log array", audit, mp(a()), false, "audit log: expected a map, got an array of 0 elements"},
		{"audit log event", audit, mp(m("event_id", "x")), false, `audit log: "event_id" must be an integer, got a string`},
		{"error body integer", errBody, mp(5), false, "error: expected a string, got the integer 5"},

		{"enroll csr string", enroll, mp(a(testToken, "dc1", 0, "csr")), false,
			"enroll: element 3 (csr) must be binary data of 1 to 16384 bytes, got a string"},
		{"enroll token binary", enroll, mp(a([]byte(testToken), "dc1", 0, []byte{1})), false,
			"enroll: element 0 (token) must be a string, got binary data"},
		{"enroll zone", enroll, mp(a(testToken, "dc1", 10, []byte{1})), false,
			"enroll: element 2 (zone) must be an integer 0–9, got the integer 10"},
		{"enroll reply certificate", enrollReply, mp(a(7, "pem", []byte{1})), false,
			"enroll reply: element 1 (certificate) must be binary data, got a string"},
		{"probe announce name", probeAnnounce, mp(a("", "1")), false, "probe announce: element 0 (probe_name) must not be empty"},
		{"probe announce version", probeAnnounce, mp(a("ping", nil)), false, "probe announce: element 1 (version) must be a string, got nil"},
		{"probe announce shape", probeAnnounce, mp(a("ping")), false,
			"probe announce: expected [probe_name, version], an array of 2 elements, got an array of 1 element"},
		{"probe checks ids", probeChecks, mp(a(a(a(12), a("x", "ping"), m("_interval", 60)))), false,
			"probe checks: [0].ids: expected [asset_id, check_id], an array of 2 elements, got an array of 1 element"},
		{"probe checks no interval", probeChecks, mp(a(a(a(12, 1), a("x", "ping"), m()))), false,
			`probe checks: [0].config: "_interval" must be an integer of seconds, 1 to 604800, got nil`},
		{"probe checks config nil", probeChecks, mp(a(a(a(12, 1), a("x", "ping"), nil))), false,
			"probe checks: [0]: element 2 (config) must be a map, got nil"},
		{"probe checks names", probeChecks, mp(a(a(a(12, 1), a("x", 1), m("_interval", 60)))), false,
			"probe checks: [0].names: element 1 (check_key) must be a string, got the integer 1"},
		{"probe checks twice", probeChecks, mp(a(a(a(12, 1), a("x", "p"), m("_interval", 60)), a(a(12, 1), a("x", "q"), m("_interval", 60)))), false,
			"probe checks: [1]: check [12, 1] appears twice"},
		{"probe upsert other asset", probeUpsert, mp(a(12, a(a(a(13, 1), a("x", "p"), m("_interval", 60))))), false,
			"probe upsert asset: checks[0].ids: the check is of asset 13, not of the upserted asset 12"},
		{"probe dump shape", probeDump, mp(a(12, m())), false,
			"probe dump: ids: expected [asset_id, check_id], an array of 2 elements, got the integer 12"},
		{"probe dump not an array", probeDump, mp(m()), false,
			"probe dump: expected [[asset_id, check_id], check_data], an array of 2 elements, got a map"},
		{"probe dump asset 0", probeDump, mp(a(a(0, 1), m())), false,
			"probe dump: ids: element 0 (asset_id) must be a positive integer, got the integer 0"},
		{"probe dump truncated check data", probeDump, mp(a(a(1, 1), raw{0x82, 0xa0})), true,
			"probe dump: check data: malformed MessagePack at byte 4: truncated map of 2 pairs: 1 bytes left"},
		{"probe dump trailing bytes", probeDump, append(mp(a(a(1, 1), m())), 0xc0), true,
			"probe dump: malformed MessagePack at byte 5: 1 bytes follow the value"},
		{"probe dump deep check data", probeDump, mp(a(a(1, 1), raw(repeat([]byte{0x91}, 100, 0xc0)))), true,
			"probe dump: check data: malformed MessagePack at byte 4: nested more than 64 levels deep"},
		{"probe info reply string", probeInfo, mp("1"), false, "probe info reply: expected the probe's clock, a number, got a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.unmarshal(tc.body)
			if err == nil {
				t.Fatal("no error")
			}
			target := ErrInvalidBody
			if tc.malformed {
				target = ErrMalformed
			}
			if !errors.Is(err, target) {
				t.Errorf("%v does not wrap %v", err, target)
			}
			if err.Error() != tc.msg {
				t.Errorf("error\n%q, want\n%q", err, tc.msg)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Error("the error quotes the token")
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	goodAssets := sampleAssets()
	badZone := sampleAssets()
	badZone[1].Zone = 10
	badInterval := sampleAssets()
	badInterval[0].Probes[1].Checks[0].Interval = 0
	dupAsset := sampleAssets()
	dupAsset[1].ID = 12
	dupProbe := sampleAssets()
	dupProbe[0].Probes[1].Key = "ping"
	dupCheck := sampleAssets()
	dupCheck[0].Probes[1].Checks[1].ID = 100
	noKey := sampleAssets()
	noKey[0].Probes[1].Checks[1].Key = ""
	badConfig := sampleAssets()
	badConfig[0].Probes[0].Config = map[string]any{"x": struct{}{}}
	tests := []struct {
		name        string
		marshal     func() ([]byte, error)
		unsupported bool
		msg         string
	}{
		{"announce zone", func() ([]byte, error) { return MarshalAnnounce(Announce{Name: "x", Zone: 10}) }, false,
			"announce: element 2 (zone) must be an integer 0–9, got 10"},
		{"announce name", func() ([]byte, error) { return MarshalAnnounce(Announce{}) }, false,
			"announce: element 1 (name) must not be empty"},
		{"reply id", func() ([]byte, error) { return MarshalAnnounceReply(AnnounceReply{}) }, false,
			"announce reply: element 0 (appliance_id) must be a positive integer, got 0"},
		{"reply without itself", func() ([]byte, error) {
			return MarshalAnnounceReply(AnnounceReply{ApplianceID: 7, Appliances: []ApplianceZone{{ID: 8}}, Assets: goodAssets})
		}, false, "announce reply: appliances: does not hold the appliance itself (7); an InfraSonar appliance would drop every asset"},
		{"appliance zone", func() ([]byte, error) {
			return MarshalSetAssets(SetAssets{Appliances: []ApplianceZone{{ID: 8, Zone: -1}}})
		}, false, "set assets: appliances[0]: element 1 (zone) must be an integer 0–9, got -1"},
		{"appliance id", func() ([]byte, error) {
			return MarshalSetAssets(SetAssets{Appliances: []ApplianceZone{{ID: 0}}})
		}, false, "set assets: appliances[0]: element 0 (appliance_id) must be a positive integer, got 0"},
		{"appliance twice", func() ([]byte, error) {
			return MarshalSetAssets(SetAssets{Appliances: []ApplianceZone{{ID: 1}, {ID: 1}}})
		}, false, "set assets: appliances[1]: appliance 1 appears twice"},
		{"asset zone", func() ([]byte, error) { return MarshalSetAssets(SetAssets{Assets: badZone}) }, false,
			"set assets: assets[1]: element 1 (zone) must be an integer 0–9, got 10"},
		{"asset id", func() ([]byte, error) { return MarshalUpsertAsset(Asset{}) }, false,
			"upsert asset: element 0 (asset_id) must be a positive integer, got 0"},
		{"asset twice", func() ([]byte, error) { return MarshalSetAssets(SetAssets{Assets: dupAsset}) }, false,
			"set assets: assets[1]: asset 12 appears twice (assets[0])"},
		{"probe twice", func() ([]byte, error) { return MarshalUpsertAsset(dupProbe[0]) }, false,
			`upsert asset: probes[1]: probe "ping" appears twice in the asset`},
		{"probe key", func() ([]byte, error) { return MarshalUpsertAsset(Asset{ID: 1, Probes: []AssetProbe{{}}}) }, false,
			"upsert asset: probes[0]: element 0 (probe_key) must not be empty"},
		{"check twice", func() ([]byte, error) { return MarshalUpsertAsset(dupCheck[0]) }, false,
			"upsert asset: probes[1].checks[1]: check 100 appears twice in the asset"},
		{"check key", func() ([]byte, error) { return MarshalUpsertAsset(noKey[0]) }, false,
			"upsert asset: probes[1].checks[1]: element 1 (check_key) must not be empty"},
		{"check interval", func() ([]byte, error) { return MarshalSetAssets(SetAssets{Assets: badInterval}) }, false,
			"set assets: assets[0].probes[1].checks[0]: element 2 (interval_s) must be an integer of seconds, 1 to 604800, got 0"},
		{"config not encodable", func() ([]byte, error) { return MarshalUpsertAsset(badConfig[0]) }, true,
			`upsert asset: config of asset 12 probe "ping": encoding a struct {} as MessagePack: unsupported operation`},
		{"unset id 0", func() ([]byte, error) { return MarshalUnsetAssets([]uint64{1, 0}) }, false,
			"unset assets: element 1 (asset_id) must be a positive integer, got 0"},
		{"probe announce", func() ([]byte, error) { return MarshalProbeAnnounce(ProbeAnnounce{}) }, false,
			"probe announce: element 0 (probe_name) must not be empty"},
		{"probe check asset 0", func() ([]byte, error) { return MarshalProbeChecks([]ProbeCheck{{CheckKey: "x", Interval: 1}}) }, false,
			"probe checks: [0].ids: element 0 (asset_id) must be a positive integer, got 0"},
		{"probe check key", func() ([]byte, error) { return MarshalProbeChecks([]ProbeCheck{{AssetID: 1, Interval: 1}}) }, false,
			"probe checks: [0].names: element 1 (check_key) must not be empty"},
		{"probe check interval", func() ([]byte, error) { return MarshalProbeChecks([]ProbeCheck{{AssetID: 1, CheckKey: "x"}}) }, false,
			`probe checks: [0].config: "_interval" must be an integer of seconds, 1 to 604800, got 0`},
		{"probe check _interval in config", func() ([]byte, error) {
			return MarshalProbeChecks([]ProbeCheck{{AssetID: 1, CheckKey: "x", Interval: 1, Config: map[string]any{"_interval": 5}}})
		}, false, `probe checks: [0].config: the config holds "_interval": set Interval instead`},
		{"probe check twice", func() ([]byte, error) {
			return MarshalProbeChecks([]ProbeCheck{{AssetID: 1, CheckKey: "x", Interval: 1}, {AssetID: 1, CheckKey: "y", Interval: 1}})
		}, false, "probe checks: [1]: check [1, 0] appears twice"},
		{"probe upsert other asset", func() ([]byte, error) { return MarshalProbeUpsert(12, sampleProbeChecks()) }, false,
			"probe upsert asset: checks[2].ids: the check is of asset 13, not of the upserted asset 12"},
		{"probe upsert asset 0", func() ([]byte, error) { return MarshalProbeUpsert(0, nil) }, false,
			"probe upsert asset: element 0 (asset_id) must be a positive integer, got 0"},
		{"probe check config not encodable", func() ([]byte, error) {
			return MarshalProbeChecks([]ProbeCheck{{AssetID: 1, CheckKey: "x", Interval: 1, Config: map[string]any{"f": func() {}}}})
		}, true, "probe checks: config of check [1, 0]: encoding a func() as MessagePack: unsupported operation"},
		{"probe dump asset 0", func() ([]byte, error) { return MarshalProbeDump(ProbeDump{CheckData: []byte{0x80}}) }, false,
			"probe dump: element 0 (asset_id) must be a positive integer, got 0"},
		{"probe dump no check data", func() ([]byte, error) { return MarshalProbeDump(ProbeDump{AssetID: 1}) }, false,
			"probe dump: check data: malformed MessagePack at byte 0: unexpected end of input"},
		{"probe dump two values", func() ([]byte, error) { return MarshalProbeDump(ProbeDump{AssetID: 1, CheckData: []byte{0x80, 0x80}}) }, false,
			"probe dump: check data: malformed MessagePack at byte 1: 1 bytes follow the value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.marshal()
			if err == nil {
				t.Fatalf("no error; body % x", b)
			}
			if b != nil {
				t.Errorf("body % x returned with the error", b)
			}
			target := ErrInvalidBody
			switch {
			case tc.unsupported:
				target = errors.ErrUnsupported
			case strings.Contains(tc.msg, "malformed"):
				target = ErrMalformed
			}
			if !errors.Is(err, target) {
				t.Errorf("%v does not wrap %v", err, target)
			}
			if err.Error() != tc.msg {
				t.Errorf("error\n%q, want\n%q", err, tc.msg)
			}
		})
	}
}

// TestAnnounceRedactsToken checks that printing or logging an announce
// never shows its token.
func TestAnnounceRedactsToken(t *testing.T) {
	an := Announce{ApplianceID: 7, Name: "dc1", Zone: 3, Token: testToken}
	en := Enroll{Token: testToken, Name: "dc1", CSR: []byte{1}}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("announce", "announce", an, "enroll", en)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("announce", "announce", an, "enroll", en)
	for _, s := range []string{
		fmt.Sprint(an), fmt.Sprintf("%v %+v %#v %s", an, an, an, an), fmt.Sprintf("%v", &an), logged.String(),
		fmt.Sprintf("%v %+v %#v %s", en, en, en, en),
	} {
		if strings.Contains(s, testToken) {
			t.Errorf("the token shows in %q", s)
		}
		if !strings.Contains(s, "redacted") {
			t.Errorf("%q does not say the token is redacted", s)
		}
	}
	if got := fmt.Sprint(an); got != `announce{appliance 7, name "dc1", zone 3, token redacted}` {
		t.Errorf("String() = %q", got)
	}
	if got := fmt.Sprint(Announce{Name: "dc1"}); got != `announce{appliance 0, name "dc1", zone 0, token none}` {
		t.Errorf("String() without a token = %q", got)
	}
}

func TestIsEmptyBody(t *testing.T) {
	for _, tc := range []struct {
		body []byte
		want bool
	}{
		{EmptyBody, true},
		{[]byte{0xc4, 0x00}, true},
		{[]byte{0xc0}, true},
		{nil, true},
		{[]byte{0xc4, 0x01, 0x00}, false},
		{[]byte{0xa0}, false},
		{[]byte{0x90}, false},
		{[]byte{0xc4}, false},
	} {
		if got := IsEmptyBody(tc.body); got != tc.want {
			t.Errorf("IsEmptyBody(% x) = %v", tc.body, got)
		}
	}
	if !bytes.Equal(EmptyBody, []byte{0xc4, 0x00}) {
		t.Errorf("EmptyBody = % x", EmptyBody)
	}
}

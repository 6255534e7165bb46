package snmp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

func TestParseConfig(t *testing.T) {
	v2 := func(kv ...any) map[string]any {
		cfg := map[string]any{"version": "2c", "credential": "c"}
		for i := 0; i+1 < len(kv); i += 2 {
			cfg[kv[i].(string)] = kv[i+1]
		}
		return cfg
	}
	v3 := func(kv ...any) map[string]any { return v2(append([]any{"version", "3"}, kv...)...) }
	cases := []struct {
		name    string
		asset   string
		cfg     map[string]any
		wantErr string // "" for a valid configuration
		check   func(*testing.T, *Config)
	}{
		{name: "v2c defaults", asset: "sw1.example", cfg: v2(), check: func(t *testing.T, c *Config) {
			if c.Address != "sw1.example" || c.Port != 161 || *c.Retries != 1 || c.MaxRepetitions != 25 || c.Timeout != 0 {
				t.Errorf("%+v", c)
			}
		}},
		{name: "v2c spelled v2c", cfg: v2("version", "v2c", "address", "192.0.2.1")},
		{name: "v3 as a number", cfg: v3("version", 3), check: func(t *testing.T, c *Config) {
			if c.Version != Version3 || c.level != LevelAuthPriv || c.authProto != gosnmp.SHA || c.privProto != gosnmp.AES {
				t.Errorf("%+v", c)
			}
		}},
		{name: "v3 protocols in other spellings", cfg: v3("authProtocol", "sha-512", "privProtocol", "aes-256c", "securityLevel", "AUTHPRIV"), check: func(t *testing.T, c *Config) {
			if c.authProto != gosnmp.SHA512 || c.privProto != gosnmp.AES256C {
				t.Errorf("%+v", c)
			}
		}},
		{name: "v3 authNoPriv", cfg: v3("securityLevel", "authNoPriv", "authProtocol", "SHA384"), check: func(t *testing.T, c *Config) {
			if c.level != LevelAuthNoPriv || c.privProto != gosnmp.NoPriv || c.authProto != gosnmp.SHA384 {
				t.Errorf("%+v", c)
			}
		}},
		{name: "v3 noAuthNoPriv", cfg: v3("securityLevel", "noAuthNoPriv"), check: func(t *testing.T, c *Config) {
			if c.level != LevelNoAuthNoPriv || c.authProto != gosnmp.NoAuth {
				t.Errorf("%+v", c)
			}
		}},
		{name: "all options", cfg: v2("address", "[2001:db8::1]", "port", 1161, "timeout", 2.5, "retries", 0, "maxRepetitions", 1000, "_interval", 60),
			check: func(t *testing.T, c *Config) {
				if c.Port != 1161 || *c.Retries != 0 || c.MaxRepetitions != 1000 || c.Timeout != 2.5 {
					t.Errorf("%+v", c)
				}
			}},

		{name: "no address", asset: "not a host", cfg: v2(), wantErr: "config.address"},
		{name: "bad address", cfg: v2("address", "a b"), wantErr: "config.address"},
		{name: "no version", cfg: map[string]any{"credential": "c"}, wantErr: "config.version: missing"},
		{name: "v1", cfg: v2("version", "1"), wantErr: "config.version"},
		{name: "version 2.5", cfg: v2("version", 2.5), wantErr: "config.version"},
		{name: "no credential", cfg: map[string]any{"version": "2c"}, wantErr: "config.credential"},
		{name: "port too big", cfg: v2("port", 70000), wantErr: "config.port"},
		{name: "negative timeout", cfg: v2("timeout", -1), wantErr: "config.timeout"},
		{name: "timeout too long", cfg: v2("timeout", 301), wantErr: "config.timeout"},
		{name: "too many retries", cfg: v2("retries", 11), wantErr: "config.retries"},
		{name: "negative retries", cfg: v2("retries", -1), wantErr: "config.retries"},
		{name: "maxRepetitions too big", cfg: v2("maxRepetitions", 1001), wantErr: "config.maxRepetitions"},
		{name: "unknown field", cfg: v2("community", "public"), wantErr: `unknown field "community"`},
		{name: "v3 field with v2c", cfg: v2("authProtocol", "SHA"), wantErr: "config.authProtocol: only for version"},
		{name: "privCredential with v2c", cfg: v2("privCredential", "p"), wantErr: "config.privCredential: only for version"},
		{name: "MD5", cfg: v3("authProtocol", "MD5"), wantErr: "MD5 is broken"},
		{name: "DES", cfg: v3("privProtocol", "DES"), wantErr: "DES is broken"},
		{name: "bad securityLevel", cfg: v3("securityLevel", "high"), wantErr: "config.securityLevel"},
		{name: "privProtocol with authNoPriv", cfg: v3("securityLevel", "authNoPriv", "privProtocol", "AES"), wantErr: "only for securityLevel authPriv"},
		{name: "privCredential with authNoPriv", cfg: v3("securityLevel", "authNoPriv", "privCredential", "p"), wantErr: "only for securityLevel authPriv"},
		{name: "authProtocol with noAuthNoPriv", cfg: v3("securityLevel", "noAuthNoPriv", "authProtocol", "SHA"), wantErr: "config.authProtocol"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			asset := tc.asset
			if asset == "" {
				asset = "127.0.0.1"
			}
			c, err := parseConfig(probe.Target{AssetName: asset, Config: tc.cfg})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				// The check reports it as a HIGH error without contacting anyone.
				res := System(context.Background(), probe.Target{AssetName: asset, Config: tc.cfg}, vault{})
				wantError(t, res, model.SeverityHigh, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// brokenVault fails every lookup with an error of its own.
type brokenVault struct{}

func (brokenVault) Credential(string) (probe.Credential, error) {
	return probe.Credential{}, errors.New("the vault is sealed")
}

func TestCredentialErrors(t *testing.T) {
	cfg := map[string]any{"address": "127.0.0.1", "version": "2c", "credential": "core"}
	for _, tc := range []struct {
		name  string
		creds probe.Credentials
		want  string
	}{
		{"nil vault", nil, `credential "core": this appliance has no vault`},
		{"unknown name", vault{}, `credential "core" is not in the appliance's vault`},
		{"vault error", brokenVault{}, `looking up credential "core": the vault is sealed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Interfaces(context.Background(), target(CheckInterfaces, cfg), tc.creds)
			wantError(t, res, model.SeverityHigh, tc.want)
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	retries := func(n int) *int { return &n }
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	long, cancel3 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel3()
	short, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		cfg      Config
		min, max time.Duration
	}{
		{"configured", ctx, Config{Timeout: 0.25, Retries: retries(3)}, 250 * time.Millisecond, 250 * time.Millisecond},
		{"shared among the tries", ctx, Config{Retries: retries(1)}, 1900 * time.Millisecond, 2 * time.Second},
		{"capped", long, Config{Retries: retries(0)}, maxRequestTimeout - time.Second, maxRequestTimeout},
		{"no deadline", context.Background(), Config{Retries: retries(0)}, maxRequestTimeout, maxRequestTimeout},
		{"nearly over", short, Config{Retries: retries(0)}, 10 * time.Millisecond, 10 * time.Millisecond},
	} {
		if d := requestTimeout(tc.ctx, &tc.cfg); d < tc.min || d > tc.max {
			t.Errorf("%s: %v, want %v…%v", tc.name, d, tc.min, tc.max)
		}
	}
}

func TestScrubber(t *testing.T) {
	var s scrubber
	s.add("Pass-Word-99")
	s.add("")
	for _, text := range []string{
		"bad packet Pass-Word-99 here",
		fmt.Sprintf("bytes: % x err: truncated", []byte("..Pass-Word-99..")),
		fmt.Sprintf("%x", "Pass-Word-99"),
		fmt.Sprintf("%q", "Pass-Word-99"),
		"Pass-Word-99   split\n by  spaces",
		strings.Repeat("x", 1000) + "Pass-Word-99",
	} {
		got := s.detail(errors.New(text))
		for _, form := range s.forms {
			if strings.Contains(got, form) {
				t.Errorf("detail(%.40q…) = %q still holds a form of the secret", text, got)
			}
		}
		if len(got) > maxErrorDetail {
			t.Errorf("detail is %d bytes", len(got))
		}
	}
}

func TestCompareOIDs(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{".1.3.6", "1.3.6", 0},
		{".1.3.6.1.2.1.2.2.1.2.9", ".1.3.6.1.2.1.2.2.1.2.10", -1},
		{".1.3.6.1.2.1.2.2.1.10.1", ".1.3.6.1.2.1.2.2.1.2.1", 1},
		{".1.3.6", ".1.3.6.0", -1},
		{".1.3.6.4294967296", ".1.3.6.4294967295", 1},
		{".1.3.x", ".1.3.6", 1},
		{"", ".1", -1},
	} {
		if got := compareOIDs(tc.a, tc.b); got != tc.want {
			t.Errorf("compareOIDs(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := compareOIDs(tc.b, tc.a); got != -tc.want {
			t.Errorf("compareOIDs(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func TestSanitizeString(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		max      int
	}{
		{"plain", "plain", 100},
		{"multi\r\nline\ttab", "multi\r\nline\ttab", 100},
		{"nul padded\x00\x00\x00", "nul padded", 100},
		{"esc\x1b[31mred", "esc[31mred", 100},
		{"bad \xff utf8", "bad \ufffd utf8", 100},
		{"trailing spaces  \n", "trailing spaces", 100},
		{"ééé", "é", 3},
		{"abc", "", 0},
	} {
		if got := sanitizeString(tc.in, tc.max); got != tc.want {
			t.Errorf("sanitizeString(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
	if got := itemName("  eth0\n(uplink)\t "); got != "eth0 (uplink)" {
		t.Errorf("itemName = %q", got)
	}
	if got := itemName(strings.Repeat("x", 1000)); len(got) != maxItemNameLen {
		t.Errorf("itemName is %d bytes", len(got))
	}
}

func TestFormatMAC(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want string
		ok   bool
	}{
		{nil, "", true},
		{[]byte{0, 0x1b, 0x21, 0xaa, 0xbb, 0xcc}, "00:1b:21:aa:bb:cc", true},
		{make([]byte, maxPhysAddrLen+1), "", false},
	} {
		if got, ok := formatMAC(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("formatMAC(% x) = %q, %v, want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSpeedBits(t *testing.T) {
	u := func(v uint64) opt[uint64] { return opt[uint64]{v: v, ok: true} }
	none := opt[uint64]{}
	for _, tc := range []struct {
		name        string
		speed, high opt[uint64]
		want        uint64
		ok          bool
	}{
		{"ifSpeed only", u(100e6), none, 100e6, true},
		{"both agree", u(10e9 / 10), u(1000), 1e9, true},
		{"T1: ifSpeed is more precise", u(1_544_000), u(2), 1_544_000, true},
		{"saturated ifSpeed", u(4294967295), u(100000), 100e9, true},
		{"saturated without ifHighSpeed", u(4294967295), none, 4294967295, true},
		{"zero ifSpeed, ifHighSpeed set", u(0), u(25000), 25e9, true},
		{"both zero", u(0), u(0), 0, true},
		{"ifHighSpeed only", none, u(40000), 40e9, true},
		{"ifHighSpeed overflowing", none, u(1 << 63), 0, false},
		{"neither", none, none, 0, false},
	} {
		r := ifRow{speed: tc.speed, highSpeed: tc.high}
		if got, ok := r.speedBits(); got != tc.want || ok != tc.ok {
			t.Errorf("%s: %d, %v, want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestUniqueNames(t *testing.T) {
	s := func(v string) opt[string] { return opt[string]{v: v, ok: true} }
	rows := []*ifRow{
		{index: 1, name: s("eth0"), descr: s("Intel 1")},
		{index: 2, name: s("eth0"), descr: s("Intel 2")},
		{index: 3, name: s(""), descr: s("Serial0")},
		{index: 4},
		{index: 5, name: s("eth0#2")},
		{index: 6, name: s("4")},
		{index: 7, descr: s("\x00\x00")},
	}
	got := strings.Join(uniqueNames(rows), ",")
	want := "eth0#1,eth0#2,Serial0,4#4,eth0#2#5#2,4#6,7"
	if got != want {
		t.Errorf("names %s, want %s", got, want)
	}
}

func TestStatusName(t *testing.T) {
	for v, want := range map[int64]string{1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown", 0: "0", -3: "-3"} {
		if got := statusName(v); got != want {
			t.Errorf("statusName(%d) = %q, want %q", v, got, want)
		}
	}
}

package probe

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestDecodeConfig(t *testing.T) {
	type cfg struct {
		Address string `json:"address"`
		Ports   []int  `json:"ports"`
		Skip    string `json:"-"`
	}
	for _, tc := range []struct {
		name    string
		in      map[string]any
		wantErr string
	}{
		{"known fields", map[string]any{"address": "h", "ports": []any{int64(80)}}, ""},
		{"bookkeeping keys are ignored", map[string]any{"address": "h", "_interval": int64(60)}, ""},
		{"a field spelt in another case is unknown", map[string]any{"Ports": []any{int64(80)}}, `unknown field "Ports"`},
		{"an unknown field", map[string]any{"adress": "h"}, `unknown field "adress"`},
		{"a wrong type", map[string]any{"ports": "80"}, "cannot unmarshal"},
		{"a field without a json name", map[string]any{"Skip": "x"}, `unknown field "Skip"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c cfg
			err := DecodeConfig(tc.in, &c)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("DecodeConfig = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestParseHostPattern(t *testing.T) {
	for _, tc := range []struct {
		in, want, wantErr string
	}{
		{"10.0.0.5", "10.0.0.5", ""},
		{"2001:DB8::5", "2001:db8::5", ""},
		{"10.0.0.0/8", "10.0.0.0/8", ""},
		{"2001:db8::/32", "2001:db8::/32", ""},
		{"0.0.0.0/0", "0.0.0.0/0", ""},
		{"10.0.0.5/32", "10.0.0.5", ""},
		{"Switch1.Corp.", "switch1.corp", ""},
		{"localhost", "localhost", ""},
		{"*.Corp", "*.corp", ""},
		{"*.a_b.example.", "*.a_b.example", ""},
		{"", "", "empty"},
		{"*", "", `"*" alone is not allowed`},
		{"*.", "", `"*" alone is not allowed`},
		{"10.1.2.3/8", "", "bits are set beyond the /8 prefix; did you mean 10.0.0.0/8?"},
		{"10.0.0.0/33", "", "not a valid network"},
		{"::ffff:10.0.0.1", "", "write an IPv4 address as IPv4 (10.0.0.1)"},
		{"::ffff:10.0.0.0/104", "", "write an IPv4 network as IPv4"},
		{"fe80::1%eth0", "", "an address with a zone is not allowed"},
		{"10.0.0", "", "looks like an IP address"},
		{"10.0.0.256", "", "looks like an IP address"},
		{"a.*.corp", "", "not an IP address, a network (CIDR), a host name or *.name"},
		{"*.*.corp", "", "not an IP address"},
		{"**.corp", "", "not an IP address"},
		{"a b", "", "not an IP address"},
		{"-a.corp", "", "not an IP address"},
		{"a..corp", "", "not an IP address"},
		{"[::1]", "", "not an IP address"},
		{"10.0.0.1:80", "", "not an IP address"},
		{"https://a.corp", "", "not a valid network"},
		{strings.Repeat("a", 64) + ".corp", "", "not an IP address"},
		{strings.Repeat("a.", 128) + "corp", "", "longer than 255"},
	} {
		p, err := ParseHostPattern(tc.in)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ParseHostPattern(%q): %v", tc.in, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ParseHostPattern(%q) = %v, %v; want an error with %q", tc.in, p, err, tc.wantErr)
		case err == nil && p.String() != tc.want:
			t.Errorf("ParseHostPattern(%q) = %q, want %q", tc.in, p, tc.want)
		}
	}
}

func TestPermits(t *testing.T) {
	ip := netip.MustParseAddr
	var none netip.Addr
	for _, tc := range []struct {
		name  string
		hosts []string
		host  string
		ip    netip.Addr
		want  bool
	}{
		{"address", []string{"10.0.0.5"}, "10.0.0.5", ip("10.0.0.5"), true},
		{"other address", []string{"10.0.0.5"}, "10.0.0.6", ip("10.0.0.6"), false},
		{"CIDR", []string{"10.0.0.0/8"}, "10.200.3.4", ip("10.200.3.4"), true},
		{"outside the CIDR", []string{"10.0.0.0/8"}, "11.0.0.1", ip("11.0.0.1"), false},
		{"IPv4-mapped IPv6 dialed", []string{"10.0.0.0/8"}, "", ip("::ffff:10.0.0.1"), true},
		{"IPv6 CIDR", []string{"2001:db8::/32"}, "2001:db8:1::9", ip("2001:db8:1::9"), true},
		{"IPv6 outside", []string{"2001:db8::/32"}, "2001:db9::1", ip("2001:db9::1"), false},
		{"IPv6 zone ignored", []string{"fe80::/10"}, "", ip("fe80::1%eth0"), true},
		{"IPv4 pattern, IPv6 address", []string{"0.0.0.0/0"}, "", ip("2001:db8::1"), false},
		{"name resolved anywhere", []string{"switch1.corp"}, "switch1.corp", ip("203.0.113.9"), true},
		{"name case and trailing dot", []string{"switch1.corp"}, "SWITCH1.Corp.", ip("10.0.0.1"), true},
		{"other name", []string{"switch1.corp"}, "switch2.corp", ip("10.0.0.1"), false},
		{"name is not a suffix match", []string{"switch1.corp"}, "evilswitch1.corp", ip("10.0.0.1"), false},
		{"wildcard", []string{"*.corp"}, "a.b.corp", ip("10.0.0.1"), true},
		{"wildcard is not the domain itself", []string{"*.corp"}, "corp", ip("10.0.0.1"), false},
		{"wildcard is not a suffix of a label", []string{"*.corp"}, "evilcorp", ip("10.0.0.1"), false},
		{"wildcard and a longer domain", []string{"*.corp"}, "a.corp.attacker.example", ip("10.0.0.1"), false},
		{"IP literal never matches a name", []string{"*.corp", "127.0.0.1.corp"}, "127.0.0.1", ip("127.0.0.1"), false},
		{"name not matched, address matched", []string{"*.corp", "127.0.0.0/8"}, "attacker.example", ip("127.0.0.1"), true},
		{"name not matched, address not matched", []string{"*.corp", "10.0.0.0/8"}, "attacker.example", ip("203.0.113.9"), false},
		{"no address: nothing", []string{"0.0.0.0/0", "switch1.corp"}, "switch1.corp", none, false},
		{"no hosts", nil, "10.0.0.1", ip("10.0.0.1"), false},
		{"a stored pattern that does not parse is skipped", []string{"a b", "10.0.0.1"}, "", ip("10.0.0.2"), false},
	} {
		c := Credential{Name: "x", Kind: KindPassword, Hosts: tc.hosts}
		if got := c.Permits(tc.host, tc.ip); got != tc.want {
			t.Errorf("%s: Permits(%q, %v) = %v with hosts %q", tc.name, tc.host, tc.ip, got, tc.hosts)
		}
	}
}

func TestCheckCredential(t *testing.T) {
	web := []string{KindPassword, KindToken}
	ip := netip.MustParseAddr
	var none netip.Addr
	cred := func(kind string, hosts ...string) Credential {
		return Credential{Name: "core-switch", Kind: kind, Hosts: hosts}
	}
	for _, tc := range []struct {
		name    string
		c       Credential
		kinds   []string
		host    string
		ip      netip.Addr
		wantErr string
	}{
		{"wrong kind", cred(KindSNMPCommunity, "10.0.0.0/8"), web, "10.0.0.1", none,
			`credential "core-switch" is a snmp-community, the http probe takes password or token`},
		{"no kind", cred("", "10.0.0.0/8"), []string{KindSNMPv3Auth}, "10.0.0.1", none,
			`credential "core-switch" has no kind, the http probe takes snmpv3-auth`},
		{"three kinds listed", cred(KindToken, "10.0.0.0/8"), []string{"a", "b", "c"}, "10.0.0.1", none,
			`is a token, the http probe takes a, b or c`},
		{"no hosts", cred(KindPassword), web, "10.0.0.1", ip("10.0.0.1"),
			`credential "core-switch" has no hosts it may be sent to: on the appliance, run "sonde-appliance vault hosts core-switch LIST" with the addresses, networks or names of the devices it belongs to (e.g. 10.0.0.0/8,*.corp)`},
		{"resolved, not permitted", cred(KindPassword, "10.0.0.0/8"), web, "attacker.example", ip("203.0.113.9"),
			`credential "core-switch" may not be sent to attacker.example (203.0.113.9): its hosts are 10.0.0.0/8 (the appliance's operator sets them with "sonde-appliance vault hosts core-switch LIST")`},
		{"resolved, permitted", cred(KindPassword, "10.0.0.0/8"), web, "switch1.corp", ip("10.1.1.1"), ""},
		{"IP literal, not permitted", cred(KindPassword, "10.0.0.0/8", "*.corp"), web, "203.0.113.9", none,
			`may not be sent to 203.0.113.9: its hosts are 10.0.0.0/8, *.corp (`},
		{"IPv6 literal in brackets, permitted", cred(KindPassword, "2001:db8::/32"), web, "[2001:db8::1]", none, ""},
		{"IP literal, permitted", cred(KindPassword, "10.0.0.0/8"), web, "10.9.9.9", none, ""},
		{"IP literal and the same address", cred(KindPassword, "10.0.0.0/8"), web, "192.0.2.1", ip("192.0.2.1"),
			`may not be sent to 192.0.2.1: its hosts`},
		{"no host, an address", cred(KindPassword, "10.0.0.0/8"), web, "", ip("192.0.2.1"), `may not be sent to 192.0.2.1: its hosts`},
		{"name matched before resolution", cred(KindPassword, "*.corp"), web, "sw.corp", none, ""},
		{"name not matched, only name patterns", cred(KindPassword, "*.corp", "switch1.lan"), web, "attacker.example", none,
			`may not be sent to attacker.example: its hosts are *.corp, switch1.lan (`},
		{"name not matched, address patterns: decided after resolution", cred(KindPassword, "*.corp", "10.0.0.0/8"), web, "attacker.example", none, ""},
		{"many hosts are cut short", cred(KindPassword, "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.9", "10.0.0.10"),
			web, "192.0.2.1", none, "10.0.0.7, 10.0.0.8 and 2 more ("},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckCredential(tc.c, "the http probe", tc.kinds, tc.host, tc.ip)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckCredential: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("CheckCredential = %v, want an error with %q", err, tc.wantErr)
			}
			if !errors.Is(err, ErrCredentialNotPermitted) {
				t.Errorf("%v does not wrap ErrCredentialNotPermitted", err)
			}
			if strings.Contains(err.Error(), ErrCredentialNotPermitted.Error()) {
				t.Errorf("%q repeats the sentinel's text", err)
			}
		})
	}
}

func TestValidHost(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"example.com", true}, {"example.com.", true}, {"a-b.c_d.example", true}, {"localhost", true},
		{"192.0.2.1", true}, {"2001:db8::1", true}, {"[2001:db8::1]", true}, {"fe80::1%eth0", true},
		{"", false}, {".", false}, {"a..b", false}, {"-a.example", false}, {"a b", false},
		{"http://x", false}, {"x:80", false}, {strings.Repeat("a", 64) + ".example", false},
		{strings.Repeat("a.", 127) + "aa", false},
	}
	for _, c := range cases {
		if got := ValidHost(c.in); got != c.ok {
			t.Errorf("ValidHost(%q) = %v, want %v", c.in, got, c.ok)
		}
	}
}

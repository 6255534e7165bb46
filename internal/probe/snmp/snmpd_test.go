//go:build linux

package snmp

import (
	"context"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/testutil"
)

// Distinctive secrets: the tests assert that none of them appears in any
// result or error.
const (
	community   = "Comm-Xylophone-7319"
	authPass    = "Auth-Marmalade-5521"
	privPass    = "Priv-Quokka-8808"
	strongAuth  = "Auth-Strong-Zeppelin-1207"
	strongPriv  = "Priv-Strong-Walrus-3391"
	noPrivAuth  = "Auth-NoPriv-Tangerine-42"
	wrongSecret = "Wrong-Pumpernickel-6660"
)

// Short names for the kinds, for the tables.
const (
	kCommunity = probe.KindSNMPCommunity
	kAuth      = probe.KindSNMPv3Auth
	kPriv      = probe.KindSNMPv3Priv
)

var allSecrets = []string{community, authPass, privPass, strongAuth, strongPriv, noPrivAuth, wrongSecret}

// startAgent starts an snmpd with a v2c community and v3 users of every
// kind the tests use.
func startAgent(t *testing.T) *testutil.SNMPD {
	t.Helper()
	return testutil.StartSNMPD(t, testutil.SNMPDOptions{
		Community: community,
		Users: []testutil.SNMPv3User{
			{Name: "sonde", AuthProtocol: "SHA", AuthPass: authPass, PrivProtocol: "AES", PrivPass: privPass},
			{Name: "strong", AuthProtocol: "SHA-512", AuthPass: strongAuth, PrivProtocol: "AES-256", PrivPass: strongPriv},
			{Name: "mid", AuthProtocol: "SHA-256", AuthPass: strongAuth, PrivProtocol: "AES-192", PrivPass: strongPriv},
			{Name: "same", AuthProtocol: "SHA", AuthPass: authPass, PrivProtocol: "AES", PrivPass: authPass},
			{Name: "nopriv", AuthProtocol: "SHA", AuthPass: noPrivAuth, NoPriv: true},
		},
	})
}

// agentVault holds an entry for each way of reaching the agent.
var agentVault = vault{
	"v2":            entry("v2", kCommunity, "ignored-user", community),
	"v2-wrong":      entry("v2-wrong", kCommunity, "", wrongSecret),
	"v3":            entry("v3", kAuth, "sonde", authPass),
	"v3-priv":       entry("v3-priv", kPriv, "sonde", privPass),
	"v3-privnouser": entry("v3-privnouser", kPriv, "", privPass),
	"v3-wrong":      entry("v3-wrong", kAuth, "sonde", wrongSecret),
	"v3-priv-wrong": entry("v3-priv-wrong", kPriv, "sonde", wrongSecret),
	"v3-unknown":    entry("v3-unknown", kAuth, "nobody", authPass),
	"v3-nouser":     entry("v3-nouser", kAuth, "", authPass),
	"strong":        entry("strong", kAuth, "strong", strongAuth),
	"strong-priv":   entry("strong-priv", kPriv, "strong", strongPriv),
	"mid":           entry("mid", kAuth, "mid", strongAuth),
	"mid-priv":      entry("mid-priv", kPriv, "mid", strongPriv),
	"same":          entry("same", kAuth, "same", authPass),
	"nopriv":        entry("nopriv", kAuth, "nopriv", noPrivAuth),
	"short":         entry("short", kAuth, "sonde", "short"),
	"other-user":    entry("other-user", kPriv, "someone-else", privPass),
}

// TestAgent runs both checks against a real snmpd, with every way of
// authenticating and failing to.
func TestAgent(t *testing.T) {
	srv := startAgent(t)
	port := srv.Port
	v3 := func(kv ...any) map[string]any { return portConfig(port, append([]any{"version", "3"}, kv...)...) }

	ok := []struct {
		name string
		cfg  map[string]any
	}{
		{"v2c", portConfig(port, "version", "2c", "credential", "v2")},
		{"v2c as a number", portConfig(port, "version", 2, "credential", "v2")},
		{"v3 authPriv SHA/AES with privCredential", v3("credential", "v3", "privCredential", "v3-priv")},
		{"v3 privCredential without a user name", v3("credential", "v3", "privCredential", "v3-privnouser", "authProtocol", "sha", "privProtocol", "aes128")},
		{"v3 one passphrase for both", v3("credential", "same")},
		{"v3 SHA512/AES256", v3("credential", "strong", "privCredential", "strong-priv", "authProtocol", "SHA512", "privProtocol", "AES256")},
		{"v3 SHA256/AES192", v3("credential", "mid", "privCredential", "mid-priv", "authProtocol", "SHA-256", "privProtocol", "AES-192")},
		{"v3 authNoPriv", v3("credential", "nopriv", "securityLevel", "authNoPriv")},
		{"small maxRepetitions", portConfig(port, "version", "2c", "credential", "v2", "maxRepetitions", 1, "timeout", 2, "retries", 0)},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runCheck(t, System, target(CheckSystem, tc.cfg), agentVault, 10*time.Second)
			if res.Error != nil {
				t.Fatalf("system: %s %s\nsnmpd log:\n%s", res.Error.Severity, res.Error.Message, srv.Log())
			}
			assertValid(t, res)
			assertNoSecrets(t, res, allSecrets...)
			m := metrics(t, res, "system", "system")
			for _, k := range []string{"sysName", "sysDescr", "sysObjectID", "sysContact", "sysLocation"} {
				if m[k].Kind != model.KindString {
					t.Errorf("%s = %+v, want a string", k, m[k])
				}
			}
			if !strings.HasPrefix(m["sysObjectID"].Str, "1.3.6.1.4.1.8072.") {
				t.Errorf("sysObjectID = %q, want net-snmp's enterprise 1.3.6.1.4.1.8072", m["sysObjectID"].Str)
			}
			if m["sysDescr"].Str == "" {
				t.Error("sysDescr is empty")
			}
			if u := m["uptime"]; u.Kind != model.KindFloat || u.F < 0 || u.F > 3600 {
				t.Errorf("uptime = %+v, want a float of seconds since snmpd started", u)
			}

			res = runCheck(t, Interfaces, target(CheckInterfaces, tc.cfg), agentVault, 10*time.Second)
			if res.Error != nil {
				t.Fatalf("interfaces: %s %s\nsnmpd log:\n%s", res.Error.Severity, res.Error.Message, srv.Log())
			}
			assertValid(t, res)
			assertNoSecrets(t, res, allSecrets...)
			lo := metrics(t, res, "interfaces", "lo")
			want := map[string]model.Value{
				"descr":       model.StringValue("lo"),
				"type":        model.IntValue(24), // softwareLoopback
				"mac":         model.StringValue(""),
				"adminStatus": model.StringValue("up"),
				"operStatus":  model.StringValue("up"),
			}
			for k, v := range want {
				if !reflect.DeepEqual(lo[k], v) {
					t.Errorf("lo %s = %+v, want %+v", k, lo[k], v)
				}
			}
			for _, k := range []string{"index", "mtu", "speed", "inOctets", "outOctets", "inErrors", "outErrors", "inDiscards", "outDiscards"} {
				if lo[k].Kind != model.KindInt || lo[k].Int < 0 {
					t.Errorf("lo %s = %+v, want a non-negative int", k, lo[k])
				}
			}
			if lo["inOctets"].Int == 0 {
				t.Error("lo inOctets is 0, but this very test sent packets over lo")
			}
			if _, ok := lo["alias"]; !ok {
				t.Error("lo has no alias (ifXTable's ifAlias)")
			}
		})
	}

	fail := []struct {
		name  string
		check probe.Func
		cfg   map[string]any
		sev   model.Severity
		parts []string
	}{
		{"wrong community", System, portConfig(port, "version", "2c", "credential", "v2-wrong", "timeout", 0.3, "retries", 0),
			model.SeverityHigh, []string{"no answer", "wrong community", "127.0.0.1:" + itoa(port)}},
		{"wrong community interfaces", Interfaces, portConfig(port, "version", "2c", "credential", "v2-wrong", "timeout", 0.2, "retries", 1),
			model.SeverityHigh, []string{"walking ifDescr", "no answer", "wrong community"}},
		{"wrong v3 auth passphrase", System, v3("credential", "v3-wrong", "timeout", 1),
			model.SeverityHigh, []string{"SNMP authentication failed", `"sonde"`, `"v3-wrong"`}},
		{"wrong v3 auth passphrase interfaces", Interfaces, v3("credential", "v3-wrong", "timeout", 1),
			model.SeverityHigh, []string{"SNMP authentication failed"}},
		{"wrong v3 privacy passphrase", System, v3("credential", "v3", "privCredential", "v3-priv-wrong", "timeout", 0.3, "retries", 0),
			model.SeverityHigh, []string{"no answer", "privacy passphrase"}},
		{"wrong v3 auth protocol", System, v3("credential", "v3", "privCredential", "v3-priv", "authProtocol", "SHA256", "timeout", 1),
			model.SeverityHigh, []string{"SNMP authentication failed"}},
		{"unknown v3 user", System, v3("credential", "v3-unknown", "timeout", 1),
			model.SeverityHigh, []string{"SNMP authentication failed", `"nobody"`}},
		{"securityLevel above the user's", System, v3("credential", "nopriv", "timeout", 1),
			model.SeverityHigh, []string{"127.0.0.1:" + itoa(port)}},
		{"noAuthNoPriv for an authPriv user", System, v3("credential", "v3", "securityLevel", "noAuthNoPriv", "timeout", 1),
			model.SeverityHigh, []string{"SNMP access denied", `user "sonde" at securityLevel noAuthNoPriv`}},
		{"unknown credential", System, portConfig(port, "version", "2c", "credential", "no-such-entry"),
			model.SeverityHigh, []string{`"no-such-entry"`, "not in the appliance's vault"}},
		{"unknown privCredential", Interfaces, v3("credential", "v3", "privCredential", "no-such-priv"),
			model.SeverityHigh, []string{`"no-such-priv"`, "not in the appliance's vault"}},
		{"short passphrase", System, v3("credential", "short"),
			model.SeverityHigh, []string{`"short"`, "shorter than 8"}},
		{"privCredential of another user", System, v3("credential", "v3", "privCredential", "other-user"),
			model.SeverityHigh, []string{"different users"}},
		{"v3 credential without a user", System, v3("credential", "v3-nouser"),
			model.SeverityHigh, []string{"no user name"}},
	}
	for _, tc := range fail {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runCheck(t, tc.check, target(tc.name, tc.cfg), agentVault, 5*time.Second)
			wantError(t, res, tc.sev, tc.parts...)
			t.Logf("%s: %s", res.Error.Severity, res.Error.Message)
			if tc.sev == model.SeverityHigh && res.Types != nil {
				t.Errorf("a result with a HIGH error: %+v", res.Types)
			}
			assertNoSecrets(t, res, allSecrets...)
		})
	}
}

// TestAgentDeadline checks that a run against an agent that drops
// everything (a wrong community) ends by its deadline, with the default
// timeout and retries.
func TestAgentDeadline(t *testing.T) {
	srv := startAgent(t)
	cfg := portConfig(srv.Port, "version", "2c", "credential", "v2-wrong")
	for _, fn := range []probe.Func{System, Interfaces} {
		start := time.Now()
		res := runCheck(t, fn, target("deadline", cfg), agentVault, 700*time.Millisecond)
		if el := time.Since(start); el > 2500*time.Millisecond {
			t.Errorf("the run took %v with a deadline of 700ms", el)
		}
		wantError(t, res, model.SeverityHigh, "no answer", "wrong community")
	}
}

// TestAgentCancel checks that cancelling the run's context ends it.
func TestAgentCancel(t *testing.T) {
	srv := startAgent(t)
	cfg := portConfig(srv.Port, "version", "2c", "credential", "v2-wrong", "timeout", 30)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	start := time.Now()
	res := Interfaces(ctx, target("cancel", cfg), agentVault)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("cancelled run took %v (the request timeout is 30 s, the deadline 10 s)", el)
	}
	if res.Error == nil || res.Error.Severity != model.SeverityHigh {
		t.Fatalf("cancelled run: %+v", res)
	}
}

// TestAgentConcurrent runs many checks at once against one agent: every
// run has its own client (run with -race).
func TestAgentConcurrent(t *testing.T) {
	srv := startAgent(t)
	cfgs := []map[string]any{
		portConfig(srv.Port, "version", "2c", "credential", "v2"),
		portConfig(srv.Port, "version", "3", "credential", "v3", "privCredential", "v3-priv"),
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			fn := System
			if i%2 == 0 {
				fn = Interfaces
			}
			res := runCheck(t, fn, target("concurrent", cfgs[i%len(cfgs)]), agentVault, 10*time.Second)
			if res.Error != nil {
				t.Errorf("run %d: %s", i, res.Error.Message)
			}
		})
	}
	wg.Wait()
}

// snmpInPkts reads SNMPv2-MIB snmpInPkts.0 from the agent: the number of
// packets it received, this request included.
func snmpInPkts(t *testing.T, srv *testutil.SNMPD) uint64 {
	t.Helper()
	g := &gosnmp.GoSNMP{Target: srv.Host, Port: uint16(srv.Port), Community: community, Version: gosnmp.Version2c, Timeout: 2 * time.Second, Retries: 1}
	if err := g.Connect(); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	res, err := g.Get([]string{".1.3.6.1.2.1.11.1.0"})
	if err != nil || len(res.Variables) != 1 {
		t.Fatalf("reading snmpInPkts: %v", err)
	}
	return gosnmp.ToBigInt(res.Variables[0].Value).Uint64()
}

// udpSink counts the datagrams sent to a UDP port on 127.0.0.1.
func udpSink(t *testing.T) (port int, received func() int64) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().(*net.UDPAddr).Port, func() int64 {
		time.Sleep(100 * time.Millisecond) // let a stray datagram arrive
		return n.Load()
	}
}

// firstLocalhost returns the first address localhost resolves to, or an
// invalid address.
func firstLocalhost() netip.Addr {
	addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", "localhost")
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}
	}
	return addrs[0].Unmap()
}

// TestAgentCredentialHosts: the probe sends a credential only to an
// address its vault entry permits, and only as the kind it is. A refused
// run sends no packet at all: the configuration (which the hub sends)
// could otherwise point the check at a host of an attacker's and collect
// the community or the v3 passphrases.
func TestAgentCredentialHosts(t *testing.T) {
	srv := startAgent(t)
	port := srv.Port
	with := func(c probe.Credential, hosts ...string) probe.Credential {
		c.Hosts = hosts
		return c
	}
	v := vault{
		"lo-ip":      agentVault["v2"],
		"lo-cidr":    with(agentVault["v2"], "10.0.0.0/8", "127.0.0.0/8"),
		"lo-name":    with(agentVault["v2"], "*.corp", "localhost"),
		"far":        with(agentVault["v2"], "10.0.0.0/8"),
		"far-names":  with(agentVault["v2"], "*.corp", "switch1.lan"),
		"nowhere":    with(agentVault["v2"]),
		"web":        {Name: "web", Kind: probe.KindPassword, Username: "admin", Secret: secret.New(community), Hosts: []string{"127.0.0.1"}},
		"v3":         agentVault["v3"],
		"v3-priv":    agentVault["v3-priv"],
		"v3-far":     with(agentVault["v3"], "192.0.2.0/24"),
		"v3-priv-10": with(agentVault["v3-priv"], "10.0.0.0/8"),
	}
	// The entries' names are those of the map, whatever they were copied from.
	for name, c := range v {
		c.Name = name
		v[name] = c
	}
	v2 := func(cred string, kv ...any) map[string]any {
		return portConfig(port, append([]any{"version", "2c", "credential", cred}, kv...)...)
	}
	v3 := func(kv ...any) map[string]any { return portConfig(port, append([]any{"version", "3"}, kv...)...) }
	lo := firstLocalhost()

	t.Run("permitted", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			cfg  map[string]any
			skip bool
		}{
			{"address", v2("lo-ip"), false},
			{"network", v2("lo-cidr"), false},
			{"network, by a name that resolves into it", v2("lo-cidr", "address", "localhost"), !lo.IsValid()},
			{"name", v2("lo-name", "address", "LocalHost"), lo != netip.MustParseAddr("127.0.0.1")},
			{"v3 both permitted", v3("credential", "v3", "privCredential", "v3-priv"), false},
		} {
			if tc.skip {
				t.Logf("%s: skipped, localhost does not resolve to 127.0.0.1 first here", tc.name)
				continue
			}
			res := runCheck(t, System, target(CheckSystem, tc.cfg), v, 10*time.Second)
			if res.Error != nil {
				t.Errorf("%s: %s %s", tc.name, res.Error.Severity, res.Error.Message)
			}
			assertNoSecrets(t, res, allSecrets...)
		}
	})

	refused := []struct {
		name string
		cfg  map[string]any
		want string
		skip bool
	}{
		{"address not permitted", v2("far"),
			`credential "far" may not be sent to 127.0.0.1: its hosts are 10.0.0.0/8 (the appliance's operator sets them with "sonde-appliance vault hosts far LIST")`, false},
		{"name resolving outside the networks", v2("far", "address", "localhost"),
			`credential "far" may not be sent to localhost (`, !lo.IsValid()},
		{"address, only name patterns", v2("far-names"),
			`credential "far-names" may not be sent to 127.0.0.1: its hosts are *.corp, switch1.lan`, false},
		{"name not permitted, only name patterns", v2("far-names", "address", "localhost"),
			`credential "far-names" may not be sent to localhost: its hosts are *.corp, switch1.lan`, false},
		{"no hosts", v2("nowhere"),
			`credential "nowhere" has no hosts it may be sent to: on the appliance, run "sonde-appliance vault hosts nowhere LIST"`, false},
		{"a password as a community", v2("web"),
			`credential "web" is a password, the snmp probe with version 2c takes snmp-community`, false},
		{"a community as a v3 credential", v3("credential", "lo-ip"),
			`credential "lo-ip" is a snmp-community, the snmp probe's config.credential with version 3 takes snmpv3-auth`, false},
		{"a v3 auth passphrase as the privacy one", v3("credential", "v3", "privCredential", "v3"),
			`credential "v3" is a snmpv3-auth, the snmp probe's config.privCredential takes snmpv3-priv`, false},
		{"a privacy passphrase as the auth one", v3("credential", "v3-priv"),
			`credential "v3-priv" is a snmpv3-priv, the snmp probe's config.credential with version 3 takes snmpv3-auth`, false},
		{"v3 credential not permitted", v3("credential", "v3-far", "privCredential", "v3-priv"),
			`credential "v3-far" may not be sent to 127.0.0.1: its hosts are 192.0.2.0/24`, false},
		{"v3 privCredential not permitted", v3("credential", "v3", "privCredential", "v3-priv-10"),
			`credential "v3-priv-10" may not be sent to 127.0.0.1: its hosts are 10.0.0.0/8`, false},
	}
	t.Run("refused before sending anything", func(t *testing.T) {
		sink, received := udpSink(t)
		before := snmpInPkts(t, srv)
		for _, tc := range refused {
			if tc.skip {
				t.Logf("%s: skipped, localhost does not resolve here", tc.name)
				continue
			}
			for _, p := range []int{port, sink} {
				cfg := maps.Clone(tc.cfg)
				cfg["port"] = p
				res := runCheck(t, Interfaces, target(tc.name, cfg), v, 5*time.Second)
				if res.Error == nil || res.Error.Severity != model.SeverityHigh || !strings.Contains(res.Error.Message, tc.want) || res.Types != nil {
					t.Errorf("%s: got %+v %+v, want a HIGH error with %q", tc.name, res.Error, res.Types, tc.want)
					continue
				}
				assertNoSecrets(t, res, allSecrets...)
				if p == port {
					t.Logf("%s: %s", tc.name, res.Error.Message)
				}
			}
		}
		// The agent's own count: the second read is the only packet since
		// the first.
		if after := snmpInPkts(t, srv); after != before+1 {
			t.Errorf("snmpd received %d packets during the refused runs, want none", after-before-1)
		}
		if n := received(); n != 0 {
			t.Errorf("the UDP listener received %d datagrams from refused runs, want none", n)
		}
	})
}

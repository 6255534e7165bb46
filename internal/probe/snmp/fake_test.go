package snmp

import (
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

// The tests in this file run against a fake agent: a UDP server on
// 127.0.0.1 that answers what a broken or hostile agent would (garbage,
// truncated packets, wrong request IDs, loops, endless tables). For real
// agent behaviour, see snmpd_test.go.

const fakeCommunity = "Fake-Community-Hedgehog-9141"

var fakeVault = vault{"c": entry("c", probe.KindSNMPCommunity, "", fakeCommunity)}

// fakeAgent is a v2c agent whose answers handle decides.
type fakeAgent struct {
	port     int
	requests atomic.Int64
}

// startFake serves on 127.0.0.1 at a free port until the test ends; handle
// returns the datagrams to send back for each request gosnmp can decode.
func startFake(t *testing.T, handle func(req *gosnmp.SnmpPacket) [][]byte) *fakeAgent {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAgent{port: pc.LocalAddr().(*net.UDPAddr).Port}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			f.requests.Add(1)
			req, err := (&gosnmp.GoSNMP{Version: gosnmp.Version2c}).SnmpDecodePacket(buf[:n])
			if err != nil {
				continue
			}
			for _, out := range handle(req) {
				_, _ = pc.WriteTo(out, from)
			}
		}
	}()
	return f
}

// encode marshals an answer to req.
func encode(t testing.TB, req *gosnmp.SnmpPacket, reqID uint32, status gosnmp.SNMPError, vars []gosnmp.SnmpPDU) []byte {
	p := &gosnmp.SnmpPacket{
		Version: gosnmp.Version2c, Community: req.Community, PDUType: gosnmp.GetResponse,
		RequestID: reqID, Error: status, Variables: vars,
	}
	b, err := p.MarshalMsg()
	if err != nil {
		t.Errorf("encoding the fake answer: %v", err)
	}
	return b
}

// mib is a sorted list of objects that a fake agent serves with GET and
// GETBULK semantics.
type mib []gosnmp.SnmpPDU

func newMIB(pdus ...gosnmp.SnmpPDU) mib {
	m := mib(pdus)
	sort.Slice(m, func(i, j int) bool { return compareOIDs(m[i].Name, m[j].Name) < 0 })
	return m
}

func (m mib) get(oid string) gosnmp.SnmpPDU {
	for _, p := range m {
		if normOID(p.Name) == normOID(oid) {
			return p
		}
	}
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.NoSuchObject}
}

func (m mib) next(oid string, n int) []gosnmp.SnmpPDU {
	i := sort.Search(len(m), func(i int) bool { return compareOIDs(m[i].Name, oid) > 0 })
	out := append([]gosnmp.SnmpPDU(nil), m[i:min(i+n, len(m))]...)
	if len(out) < n {
		out = append(out, gosnmp.SnmpPDU{Name: oid, Type: gosnmp.EndOfMibView})
	}
	return out
}

// serve answers GET and GETBULK from m, only to the right community.
func (m mib) serve(t testing.TB) func(*gosnmp.SnmpPacket) [][]byte {
	return func(req *gosnmp.SnmpPacket) [][]byte {
		if req.Community != fakeCommunity {
			return nil
		}
		var vars []gosnmp.SnmpPDU
		switch req.PDUType {
		case gosnmp.GetRequest:
			for _, v := range req.Variables {
				vars = append(vars, m.get(v.Name))
			}
		case gosnmp.GetBulkRequest:
			vars = m.next(req.Variables[0].Name, int(req.MaxRepetitions))
		}
		return [][]byte{encode(t, req, req.RequestID, gosnmp.NoError, vars)}
	}
}

func str(oid, s string) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.OctetString, Value: []byte(s)}
}

func integer(oid string, i int) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.Integer, Value: i}
}

func counter32(oid string, u uint32) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.Counter32, Value: u}
}

func gauge(oid string, u uint32) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.Gauge32, Value: u}
}

func counter64(oid string, u uint64) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.Counter64, Value: u}
}

// switchMIB is a small switch: two ports named alike, one without
// ifXTable, 32-bit and 64-bit counters, a port beyond 4 Gb/s.
func switchMIB() mib {
	e, x := ifEntry, ifXEntry
	return newMIB(
		str(".1.3.6.1.2.1.1.5.0", "sw1"),
		str(".1.3.6.1.2.1.1.1.0", "Fake switch\r\nrelease 1\x00\x00"),
		gosnmp.SnmpPDU{Name: ".1.3.6.1.2.1.1.2.0", Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.4.1.9.1.1"},
		gosnmp.SnmpPDU{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.TimeTicks, Value: uint32(123456)},
		str(".1.3.6.1.2.1.1.4.0", ""),
		str(".1.3.6.1.2.1.1.6.0", "rack 4"),

		str(e+".2.1", "GigabitEthernet0/1"), str(e+".2.2", "GigabitEthernet0/2"), str(e+".2.3", "Port\x01three"),
		integer(e+".3.1", 6), integer(e+".3.2", 6), integer(e+".3.3", 6),
		integer(e+".4.1", 1500), integer(e+".4.2", 9000),
		gauge(e+".5.1", 1_000_000_000), gauge(e+".5.2", 4294967295), gauge(e+".5.3", 1_544_000),
		str(e+".6.1", "\x00\x1b\x21\xaa\xbb\xcc"), str(e+".6.2", ""),
		integer(e+".7.1", 1), integer(e+".7.2", 2), integer(e+".7.3", 3),
		integer(e+".8.1", 1), integer(e+".8.2", 7), integer(e+".8.3", 42),
		counter32(e+".10.1", 100), counter32(e+".10.2", 200), counter32(e+".10.3", 300),
		counter32(e+".13.1", 1), counter32(e+".14.1", 2), counter32(e+".16.1", 101),
		counter32(e+".16.3", 301), counter32(e+".19.1", 3), counter32(e+".20.1", 4),
		str(x+".1.1", "Gi0/1"), str(x+".1.2", "Gi0/1"),
		counter64(x+".6.1", 1<<40), counter64(x+".6.2", 1<<63+5), counter64(x+".10.1", 1<<41),
		gauge(x+".15.1", 1000), gauge(x+".15.2", 40000), gauge(x+".15.3", 2),
		str(x+".18.1", "uplink"), str(x+".18.2", ""),
	)
}

// TestFakeSwitch checks the conversion of a table with the quirks of real
// devices.
func TestFakeSwitch(t *testing.T) {
	f := startFake(t, switchMIB().serve(t))
	cfg := portConfig(f.port, "version", "2c", "credential", "c")

	res := runCheck(t, System, target(CheckSystem, cfg), fakeVault, 5*time.Second)
	if res.Error != nil {
		t.Fatal(res.Error.Message)
	}
	assertValid(t, res)
	sys := metrics(t, res, "system", "system")
	wantSys := map[string]model.Value{
		"sysName":     model.StringValue("sw1"),
		"sysDescr":    model.StringValue("Fake switch\r\nrelease 1"),
		"sysObjectID": model.StringValue("1.3.6.1.4.1.9.1.1"),
		"sysContact":  model.StringValue(""),
		"sysLocation": model.StringValue("rack 4"),
		"uptime":      model.FloatValue(1234.56),
	}
	for k, v := range wantSys {
		if sys[k].Kind != v.Kind || sys[k].Str != v.Str || sys[k].F != v.F {
			t.Errorf("%s = %+v, want %+v", k, sys[k], v)
		}
	}

	res = runCheck(t, Interfaces, target(CheckInterfaces, cfg), fakeVault, 5*time.Second)
	if res.Error != nil {
		t.Fatal(res.Error.Message)
	}
	assertValid(t, res)
	var names []string
	for _, it := range res.Types[0].Items {
		names = append(names, it.Name)
	}
	if got, want := strings.Join(names, ","), "Gi0/1#1,Gi0/1#2,Portthree"; got != want {
		t.Errorf("item names %s, want %s", got, want)
	}
	p1 := metrics(t, res, "interfaces", "Gi0/1#1")
	p2 := metrics(t, res, "interfaces", "Gi0/1#2")
	p3 := metrics(t, res, "interfaces", "Portthree")
	checks := []struct {
		m      map[string]model.Value
		metric string
		want   model.Value
	}{
		{p1, "index", model.IntValue(1)},
		{p1, "descr", model.StringValue("GigabitEthernet0/1")},
		{p1, "alias", model.StringValue("uplink")},
		{p1, "speed", model.IntValue(1_000_000_000)},
		{p1, "mac", model.StringValue("00:1b:21:aa:bb:cc")},
		{p1, "inOctets", model.IntValue(1 << 40)},
		{p1, "outOctets", model.IntValue(1 << 41)},
		{p1, "inDiscards", model.IntValue(1)},
		{p1, "inErrors", model.IntValue(2)},
		{p1, "outDiscards", model.IntValue(3)},
		{p1, "outErrors", model.IntValue(4)},
		{p1, "mtu", model.IntValue(1500)},
		{p1, "type", model.IntValue(6)},
		{p2, "speed", model.IntValue(40_000_000_000)},
		{p2, "operStatus", model.StringValue("lowerLayerDown")},
		{p2, "adminStatus", model.StringValue("down")},
		{p2, "inOctets", model.FloatValue(float64(uint64(1<<63 + 5)))},
		{p2, "outOctets", model.Value{}}, // no ifHCOutOctets nor ifOutOctets
		{p2, "mac", model.StringValue("")},
		{p3, "speed", model.IntValue(1_544_000)},
		{p3, "operStatus", model.StringValue("42")},
		{p3, "adminStatus", model.StringValue("testing")},
		{p3, "inOctets", model.IntValue(300)},
		{p3, "outOctets", model.IntValue(301)},
		{p3, "descr", model.StringValue("Portthree")},
		{p3, "alias", model.Value{}},
		{p3, "mtu", model.Value{}},
	}
	for _, c := range checks {
		got := c.m[c.metric]
		if got.Kind != c.want.Kind || got.Int != c.want.Int || got.Str != c.want.Str || got.F != c.want.F {
			t.Errorf("%s = %+v, want %+v", c.metric, got, c.want)
		}
	}
	assertNoSecrets(t, res, fakeCommunity)
}

// TestFakeBroken checks that broken answers end in an error, by the
// deadline, and never in a panic.
func TestFakeBroken(t *testing.T) {
	good := switchMIB()
	cases := []struct {
		name   string
		handle func(t testing.TB) func(*gosnmp.SnmpPacket) [][]byte
		parts  []string
	}{
		{"garbage", func(t testing.TB) func(*gosnmp.SnmpPacket) [][]byte {
			return func(*gosnmp.SnmpPacket) [][]byte { return [][]byte{[]byte("\xde\xad\xbe\xef garbage")} }
		}, []string{"SNMP request to 127.0.0.1"}},
		{"empty datagram", func(t testing.TB) func(*gosnmp.SnmpPacket) [][]byte {
			return func(*gosnmp.SnmpPacket) [][]byte { return [][]byte{{}} }
		}, []string{"127.0.0.1"}},
		{"truncated BER", func(t testing.TB) func(*gosnmp.SnmpPacket) [][]byte {
			serve := good.serve(t)
			return func(req *gosnmp.SnmpPacket) [][]byte {
				out := serve(req)
				return [][]byte{out[0][:len(out[0])*2/3]}
			}
		}, []string{"SNMP request to 127.0.0.1"}},
		{"a length beyond the packet", func(t testing.TB) func(*gosnmp.SnmpPacket) [][]byte {
			serve := good.serve(t)
			return func(req *gosnmp.SnmpPacket) [][]byte {
				out := serve(req)
				b := append([]byte(nil), out[0]...)
				b[1] = 0x84 // four length bytes follow
				return [][]byte{append(b[:2], 0x7f, 0xff, 0xff, 0xff)}
			}
		}, []string{"SNMP request to 127.0.0.1"}},
		{"wrong request ID", func(t testing.TB) func(*gosnmp.SnmpPacket) [][]byte {
			return func(req *gosnmp.SnmpPacket) [][]byte {
				return [][]byte{encode(t, req, req.RequestID+1, gosnmp.NoError, good.next(".1.3.6.1.2.1.2.2.1.2", 3))}
			}
		}, []string{"no answer"}},
		{"stops answering", func(t testing.TB) func(*gosnmp.SnmpPacket) [][]byte {
			serve := good.serve(t)
			var n atomic.Int64
			return func(req *gosnmp.SnmpPacket) [][]byte {
				if n.Add(1) > 3 {
					return nil
				}
				return serve(req)
			}
		}, []string{"walking ifSpeed", "stopped answering"}},
		{"error status", func(t testing.TB) func(*gosnmp.SnmpPacket) [][]byte {
			return func(req *gosnmp.SnmpPacket) [][]byte {
				return [][]byte{encode(t, req, req.RequestID, gosnmp.GenErr, req.Variables)}
			}
		}, []string{"error-status GenErr"}},
		{"tooBig at every size", func(t testing.TB) func(*gosnmp.SnmpPacket) [][]byte {
			return func(req *gosnmp.SnmpPacket) [][]byte {
				return [][]byte{encode(t, req, req.RequestID, gosnmp.TooBig, req.Variables)}
			}
		}, []string{"error-status TooBig"}},
		{"a loop", func(t testing.TB) func(*gosnmp.SnmpPacket) [][]byte {
			return func(req *gosnmp.SnmpPacket) [][]byte {
				// Always the same two rows, the second before the first.
				vars := []gosnmp.SnmpPDU{str(ifEntry+".2.2", "b"), str(ifEntry+".2.1", "a")}
				return [][]byte{encode(t, req, req.RequestID, gosnmp.NoError, vars)}
			}
		}, []string{"out of order"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, tc.handle(t))
			cfg := portConfig(f.port, "version", "2c", "credential", "c", "timeout", 0.3, "retries", 1)
			res := runCheck(t, Interfaces, target(CheckInterfaces, cfg), fakeVault, 3*time.Second)
			wantError(t, res, model.SeverityHigh, tc.parts...)
			t.Logf("%s", res.Error.Message)
			assertNoSecrets(t, res, fakeCommunity)
		})
	}
}

// endlessTable answers every GETBULK in ifTable or ifXTable with the next
// rows of a table that never ends.
func endlessTable(t testing.TB) func(*gosnmp.SnmpPacket) [][]byte {
	return func(req *gosnmp.SnmpPacket) [][]byte {
		name := normOID(req.Variables[0].Name)
		for _, col := range ifColumns {
			idx := 0
			if name != col.oid {
				suffix, ok := strings.CutPrefix(name, col.oid+".")
				if !ok {
					continue
				}
				idx = atoiOrZero(suffix)
			}
			vars := make([]gosnmp.SnmpPDU, 0, req.MaxRepetitions)
			for i := range int(req.MaxRepetitions) {
				oid := col.oid + "." + itoa(idx+i+1)
				switch col.name {
				case "ifDescr", "ifName", "ifAlias", "ifPhysAddress":
					vars = append(vars, str(oid, "port "+itoa(idx+i+1)))
				default:
					vars = append(vars, counter32(oid, uint32(i)))
				}
			}
			return [][]byte{encode(t, req, req.RequestID, gosnmp.NoError, vars)}
		}
		return [][]byte{encode(t, req, req.RequestID, gosnmp.NoError, []gosnmp.SnmpPDU{{Name: name, Type: gosnmp.EndOfMibView}})}
	}
}

func atoiOrZero(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' || n > 1<<40 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// TestFakeAgents checks answers that are odd but not broken.
func TestFakeAgents(t *testing.T) {
	good := switchMIB()
	oddTypes := newMIB(
		gosnmp.SnmpPDU{Name: ".1.3.6.1.2.1.1.5.0", Type: gosnmp.Counter32, Value: uint32(5)},
		str(".1.3.6.1.2.1.1.1.0", strings.Repeat("é", 20000)),
		str(".1.3.6.1.2.1.1.2.0", "1.3.6.1.4.1.9"),
		integer(".1.3.6.1.2.1.1.3.0", 100),
		gosnmp.SnmpPDU{Name: ".1.3.6.1.2.1.1.4.0", Type: gosnmp.NoSuchInstance},
		str(".1.3.6.1.2.1.1.6.0", "\xff\xfebad utf8"),
		integer(ifEntry+".2.7", 1),
		str(ifEntry+".2.7.1", "junk inside the column"),
		str(ifEntry+".5.7", "fast"),
		str(ifEntry+".8.7", "up"),
		integer(ifEntry+".10.7", -5),
		str(ifXEntry+".6.7", "many"),
		counter32(ifEntry+".16.7", 77),
		str(ifEntry+".6.7", strings.Repeat("\x01", 20)), // InfiniBand's 20 bytes
		gosnmp.SnmpPDU{Name: ifXEntry + ".1.7", Type: gosnmp.IPAddress, Value: "192.0.2.1"},
	)
	cases := []struct {
		name   string
		check  func(ctx contextT, tg targetT, c credsT) resultT
		handle func(testing.TB) func(*gosnmp.SnmpPacket) [][]byte
		cfg    []any
		verify func(t *testing.T, res resultT)
	}{
		{"endless table", Interfaces, endlessTable, []any{"maxRepetitions", 1000}, func(t *testing.T, res resultT) {
			wantError(t, res, model.SeverityMedium, "more than 3000 interfaces")
			if n := len(res.Types[0].Items); n != maxInterfaces {
				t.Errorf("%d interfaces, want %d", n, maxInterfaces)
			}
		}},
		{"tooBig until few rows", Interfaces, func(t testing.TB) func(*gosnmp.SnmpPacket) [][]byte {
			serve := good.serve(t)
			return func(req *gosnmp.SnmpPacket) [][]byte {
				if req.PDUType == gosnmp.GetBulkRequest && req.MaxRepetitions > 4 {
					return [][]byte{encode(t, req, req.RequestID, gosnmp.TooBig, req.Variables)}
				}
				return serve(req)
			}
		}, []any{"maxRepetitions", 40}, func(t *testing.T, res resultT) {
			if res.Error != nil {
				t.Fatal(res.Error.Message)
			}
			if n := len(res.Types[0].Items); n != 3 {
				t.Errorf("%d interfaces, want 3", n)
			}
		}},
		{"odd types in the system group", System, oddTypes.serve, nil, func(t *testing.T, res resultT) {
			wantError(t, res, model.SeverityLow, "sysName", "sysObjectID", "sysContact", "uptime")
			m := metrics(t, res, "system", "system")
			if d := m["sysDescr"].Str; len(d) > maxStringLen || !strings.HasPrefix(d, "éé") {
				t.Errorf("sysDescr is %d bytes, %.20q…", len(d), d)
			}
			if l := m["sysLocation"].Str; l != "\ufffd\ufffdbad utf8" {
				t.Errorf("sysLocation = %q", l)
			}
		}},
		{"odd types in the interfaces", Interfaces, oddTypes.serve, nil, func(t *testing.T, res resultT) {
			if res.Error != nil {
				t.Fatal(res.Error.Message)
			}
			m := metrics(t, res, "interfaces", "192.0.2.1")
			for _, k := range []string{"descr", "speed", "operStatus"} {
				if v, ok := m[k]; ok {
					t.Errorf("%s = %+v from a value of the wrong type", k, v)
				}
			}
			if m["outOctets"].Int != 77 {
				t.Errorf("outOctets = %+v, want 77", m["outOctets"])
			}
			if _, ok := m["inOctets"]; ok {
				t.Errorf("inOctets = %+v from a negative and a string", m["inOctets"])
			}
			if m["mac"].Str != strings.Repeat("01:", 19)+"01" {
				t.Errorf("mac = %q", m["mac"].Str)
			}
		}},
		{"no system group", System, newMIB(str(ifEntry+".2.1", "x")).serve, nil, func(t *testing.T, res resultT) {
			wantError(t, res, model.SeverityHigh, "none of the system group")
		}},
		{"no interfaces", Interfaces, newMIB(str(".1.3.6.1.2.1.1.5.0", "x")).serve, nil, func(t *testing.T, res resultT) {
			wantError(t, res, model.SeverityHigh, "no interfaces")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, tc.handle(t))
			cfg := portConfig(f.port, append([]any{"version", "2c", "credential", "c", "timeout", 1, "retries", 0}, tc.cfg...)...)
			res := runCheck(t, tc.check, target("fake", cfg), fakeVault, 10*time.Second)
			if res.Types != nil {
				assertValid(t, res)
			}
			assertNoSecrets(t, res, fakeCommunity)
			tc.verify(t, res)
		})
	}
}

// TestClosedPort checks the message when nothing listens on the port: on
// loopback the kernel answers with "port unreachable".
func TestClosedPort(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	cfg := portConfig(port, "version", "2c", "credential", "c", "timeout", 0.5, "retries", 0)
	res := runCheck(t, System, target(CheckSystem, cfg), fakeVault, 3*time.Second)
	wantError(t, res, model.SeverityHigh, "127.0.0.1:"+itoa(port))
	if !strings.Contains(res.Error.Message, "connection refused") && !strings.Contains(res.Error.Message, "no answer") {
		t.Errorf("error %q says neither that the port is closed nor that nothing answered", res.Error.Message)
	}
}

package dnsprobe

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

const distinctiveSecret = "s3cr3t-Zebra-Quartz-4242"

type creds map[string]probe.Credential

func (c creds) Credential(name string) (probe.Credential, error) {
	if cr, ok := c[name]; ok {
		return cr, nil
	}
	return probe.Credential{}, probe.ErrNoCredential
}

var vault = creds{"x": {Name: "x", Username: "admin", Secret: secret.New(distinctiveSecret)}}

// zone answers the test questions; the answer depends on the name and, for
// big.example.test., on whether it came over UDP or TCP.
func zone(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	name, qtype := q.Question[0].Name, q.Question[0].Qtype
	rr := func(s string) {
		r, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		if r.Header().Rrtype == qtype || r.Header().Rrtype == dns.TypeCNAME {
			m.Answer = append(m.Answer, r)
		}
	}
	switch strings.ToLower(name) {
	case "example.test.":
		m.Authoritative = true
		// Round robin: the order changes, the result must not.
		if time.Now().UnixNano()%2 == 0 {
			rr("example.test. 300 IN A 192.0.2.1")
			rr("example.test. 300 IN A 192.0.2.2")
		} else {
			rr("example.test. 299 IN A 192.0.2.2")
			rr("example.test. 299 IN A 192.0.2.1")
		}
		rr("example.test. 300 IN AAAA 2001:db8::1")
		rr(`example.test. 300 IN MX 10 mx.example.test.`)
		rr(`example.test. 300 IN TXT "v=spf1 " "-all"`)
		rr(`example.test. 300 IN NS ns1.example.test.`)
		rr(`example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 2026010101 3600 600 86400 300`)
		rr(`example.test. 300 IN CAA 0 issue "ca.example"`)
	case "www.example.test.":
		rr("www.example.test. 300 IN CNAME example.test.")
		rr("example.test. 300 IN A 192.0.2.1")
	case "_sip._tcp.example.test.":
		rr("_sip._tcp.example.test. 300 IN SRV 10 20 5060 sip.example.test.")
	case "1.2.0.192.in-addr.arpa.":
		rr("1.2.0.192.in-addr.arpa. 300 IN PTR host.example.test.")
	case "missing.example.test.":
		m.Rcode = dns.RcodeNameError
	case "fail.example.test.":
		m.Rcode = dns.RcodeServerFailure
	case "refused.example.test.":
		m.Rcode = dns.RcodeRefused
	case "rd.example.test.":
		rr(`rd.example.test. 300 IN TXT "rd=` + strconv.FormatBool(q.RecursionDesired) + `"`)
	case "big.example.test.":
		if w.RemoteAddr().Network() == "udp" {
			m.Truncated = true
			break
		}
		for i := range 50 {
			rr("big.example.test. 300 IN A 198.51.100." + strconv.Itoa(i+1))
		}
	case "other.example.test.":
		m.Question[0].Name = "elsewhere.example.test."
	}
	_ = w.WriteMsg(m)
}

// startServer runs a miekg/dns server with h on UDP and TCP, same port,
// 127.0.0.1, and returns its address.
func startServer(t testing.TB, h dns.HandlerFunc) string {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown(); <-done })
	}
	return pc.LocalAddr().String()
}

// rawUDP answers every packet on 127.0.0.1:0 with reply(query); a nil reply
// sends nothing.
func rawUDP(t *testing.T, reply func(q []byte) []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	wg.Go(func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := reply(buf[:n]); out != nil {
				_, _ = pc.WriteTo(out, from)
			}
		}
	})
	return pc.LocalAddr().String()
}

// rawTCP writes reply to every connection on 127.0.0.1:0 after reading the
// query, then holds the connection until the client leaves.
func rawTCP(t *testing.T, reply []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Read(make([]byte, 512))
				_, _ = c.Write(reply)
				_, _ = c.Read(make([]byte, 1))
			})
		}
	})
	return ln.Addr().String()
}

func target(cfg map[string]any) probe.Target {
	return probe.Target{AssetID: 5, AssetName: "127.0.0.1", Collector: "dns", Check: "dns", Config: cfg, Interval: time.Minute}
}

// resultStrings returns every string a result carries.
func resultStrings(res probe.Result) []string {
	var out []string
	if res.Error != nil {
		out = append(out, res.Error.Message)
	}
	for _, ty := range res.Types {
		out = append(out, ty.Name)
		for _, it := range ty.Items {
			out = append(out, it.Name)
			for _, m := range it.Metrics {
				out = append(out, m.Name, m.Value.Str)
				for _, e := range m.Value.List {
					out = append(out, e.Str)
				}
			}
		}
	}
	return out
}

func TestProbe(t *testing.T) {
	addr := startServer(t, zone)
	host, port, _ := net.SplitHostPort(addr)
	portN, _ := strconv.Atoi(port)
	high, medium := model.SeverityHigh, model.SeverityMedium

	cases := []struct {
		name      string
		cfg       map[string]any
		sev       *model.Severity
		errHas    string
		rcode     string
		answers   []string
		aa        bool
		truncated bool
		match     *bool
	}{
		{name: "A, round robin sorted", cfg: map[string]any{"name": "example.test"}, rcode: "NOERROR", answers: []string{"192.0.2.1", "192.0.2.2"}, aa: true},
		{name: "AAAA", cfg: map[string]any{"name": "example.test", "type": "aaaa"}, rcode: "NOERROR", answers: []string{"2001:db8::1"}, aa: true},
		{name: "MX", cfg: map[string]any{"name": "example.test.", "type": "MX"}, rcode: "NOERROR", answers: []string{"10 mx.example.test."}, aa: true},
		{name: "TXT joined", cfg: map[string]any{"name": "example.test", "type": "TXT"}, rcode: "NOERROR", answers: []string{"v=spf1 -all"}, aa: true},
		{name: "NS", cfg: map[string]any{"name": "example.test", "type": "NS"}, rcode: "NOERROR", answers: []string{"ns1.example.test."}, aa: true},
		{name: "SOA", cfg: map[string]any{"name": "example.test", "type": "SOA"}, rcode: "NOERROR", answers: []string{"ns1.example.test. hostmaster.example.test. 2026010101 3600 600 86400 300"}, aa: true},
		{name: "CAA", cfg: map[string]any{"name": "example.test", "type": "CAA"}, rcode: "NOERROR", answers: []string{`0 issue "ca.example"`}, aa: true},
		{name: "SRV", cfg: map[string]any{"name": "_sip._tcp.example.test", "type": "SRV"}, rcode: "NOERROR", answers: []string{"10 20 5060 sip.example.test."}},
		{name: "PTR from an IP address", cfg: map[string]any{"name": "192.0.2.1", "type": "PTR"}, rcode: "NOERROR", answers: []string{"host.example.test."}},
		{name: "CNAME chain: A records only", cfg: map[string]any{"name": "www.example.test"}, rcode: "NOERROR", answers: []string{"192.0.2.1"}},
		{name: "CNAME asked", cfg: map[string]any{"name": "www.example.test", "type": "CNAME"}, rcode: "NOERROR", answers: []string{"example.test."}},
		{name: "over TCP", cfg: map[string]any{"name": "example.test", "tcp": true}, rcode: "NOERROR", answers: []string{"192.0.2.1", "192.0.2.2"}, aa: true},
		{name: "server without port, port field", cfg: map[string]any{"server": host, "port": portN, "name": "example.test"}, rcode: "NOERROR", answers: []string{"192.0.2.1", "192.0.2.2"}, aa: true},
		{name: "recursion desired by default", cfg: map[string]any{"name": "rd.example.test", "type": "TXT"}, rcode: "NOERROR", answers: []string{"rd=true"}},
		{name: "recursion off", cfg: map[string]any{"name": "rd.example.test", "type": "TXT", "recurse": false}, rcode: "NOERROR", answers: []string{"rd=false"}},
		{
			name: "expect matches, any order and case", cfg: map[string]any{"name": "example.test", "expect": []any{"192.0.2.2", "192.0.2.1"}},
			rcode: "NOERROR", answers: []string{"192.0.2.1", "192.0.2.2"}, aa: true, match: new(true),
		},
		{
			name: "expect matches AAAA written differently", cfg: map[string]any{"name": "example.test", "type": "AAAA", "expect": []any{"2001:DB8:0::1"}},
			rcode: "NOERROR", answers: []string{"2001:db8::1"}, aa: true, match: new(true),
		},
		{
			name: "expect matches MX without the final dot", cfg: map[string]any{"name": "example.test", "type": "MX", "expect": []any{"10 MX.example.test"}},
			rcode: "NOERROR", answers: []string{"10 mx.example.test."}, aa: true, match: new(true),
		},
		{
			name: "expect TXT", cfg: map[string]any{"name": "example.test", "type": "TXT", "expect": []any{"v=spf1 -all"}},
			rcode: "NOERROR", answers: []string{"v=spf1 -all"}, aa: true, match: new(true),
		},
		{
			name: "expect mismatch", cfg: map[string]any{"name": "example.test", "expect": []any{"192.0.2.1", "192.0.2.9"}},
			sev: &medium, errHas: `expected but not answered: "192.0.2.9"`,
			rcode: "NOERROR", answers: []string{"192.0.2.1", "192.0.2.2"}, aa: true, match: new(false),
		},
		{name: "NXDOMAIN", cfg: map[string]any{"name": "missing.example.test"}, sev: &medium, errHas: "NXDOMAIN", rcode: "NXDOMAIN", answers: []string{}},
		{name: "NODATA", cfg: map[string]any{"name": "_sip._tcp.example.test", "type": "A"}, sev: &medium, errHas: "no A record (NODATA)", rcode: "NOERROR", answers: []string{}},
		{name: "SERVFAIL", cfg: map[string]any{"name": "fail.example.test"}, sev: &high, errHas: "the server answered SERVFAIL", rcode: "SERVFAIL", answers: []string{}},
		{name: "REFUSED", cfg: map[string]any{"name": "refused.example.test"}, sev: &high, errHas: "the server answered REFUSED", rcode: "REFUSED", answers: []string{}},
		{
			name: "truncated over UDP, retried over TCP", cfg: map[string]any{"name": "big.example.test", "expect": []any{"198.51.100.50"}},
			rcode: "NOERROR", answers: bigAnswers(), truncated: true, match: new(true),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, ok := c.cfg["server"]; !ok {
				c.cfg["server"] = addr
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res := Probe(ctx, target(c.cfg), vault)
			assertValid(t, res)
			switch {
			case c.sev == nil && res.Error != nil:
				t.Fatalf("unexpected error %+v", res.Error)
			case c.sev != nil && (res.Error == nil || res.Error.Severity != *c.sev || !strings.Contains(res.Error.Message, c.errHas)):
				t.Fatalf("error %+v, want %v containing %q", res.Error, *c.sev, c.errHas)
			}
			if len(res.Types) != 1 || res.Types[0].Name != "dns" || len(res.Types[0].Items) != 1 {
				t.Fatalf("types %+v", res.Types)
			}
			it := res.Types[0].Items[0]
			if it.Name != c.cfg["name"] {
				t.Errorf("item %q, want %q", it.Name, c.cfg["name"])
			}
			m := map[string]model.Value{}
			for _, x := range it.Metrics {
				m[x.Name] = x.Value
			}
			var answers []string
			for _, v := range m["answers"].List {
				answers = append(answers, v.Str)
			}
			if m["answers"].Kind != model.KindList || !slices.Equal(answers, c.answers) && len(answers)+len(c.answers) > 0 {
				t.Errorf("answers %q, want %q", answers, c.answers)
			}
			if m["answerCount"].Kind != model.KindInt || m["answerCount"].Int != int64(len(c.answers)) {
				t.Errorf("answerCount %+v, want %d", m["answerCount"], len(c.answers))
			}
			if m["rcode"].Str != c.rcode {
				t.Errorf("rcode %q, want %q", m["rcode"].Str, c.rcode)
			}
			if m["authoritative"].Kind != model.KindBool || m["authoritative"].Bool != c.aa {
				t.Errorf("authoritative %+v, want %v", m["authoritative"], c.aa)
			}
			if m["truncated"].Kind != model.KindBool || m["truncated"].Bool != c.truncated {
				t.Errorf("truncated %+v, want %v", m["truncated"], c.truncated)
			}
			if rt := m["responseTime"]; rt.Kind != model.KindFloat || rt.F <= 0 || rt.F > 5 {
				t.Errorf("responseTime %+v", rt)
			}
			em, has := m["expectMatch"]
			switch {
			case c.match == nil && has:
				t.Errorf("expectMatch without expect")
			case c.match != nil && (!has || em.Bool != *c.match):
				t.Errorf("expectMatch %+v, want %v", em, *c.match)
			}
		})
	}
}

func bigAnswers() []string {
	var out []string
	for i := range 50 {
		out = append(out, "198.51.100."+strconv.Itoa(i+1))
	}
	slices.Sort(out)
	return out
}

// TestFailures: no usable answer gives a HIGH error and no result, within
// the timeout.
func TestFailures(t *testing.T) {
	good := startServer(t, zone)
	garbage := rawUDP(t, func([]byte) []byte { return []byte("\xde\xad\xbe\xef garbage") })
	lyingHeader := rawUDP(t, func(q []byte) []byte {
		if len(q) < 2 {
			return nil
		}
		// Same ID, a response with five answers that are not there.
		return append([]byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, 5, 0, 0, 0, 0}, 0xff, 0xff, 0xff)
	})
	silent := rawUDP(t, func([]byte) []byte { return nil })
	tcpGarbage := rawTCP(t, []byte("\x00\x04junk"))
	tcpHTTP := rawTCP(t, []byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	cases := []struct {
		name   string
		cfg    map[string]any
		errHas string
	}{
		// Garbage whose first bytes do not match the query's ID is ignored
		// (it could be a late answer to another query): a timeout.
		{"UDP garbage", map[string]any{"server": garbage, "name": "example.test", "timeout": 0.5}, "asking A example.test. at " + garbage + ": no answer before the deadline"},
		{"UDP header promising answers", map[string]any{"server": lyingHeader, "name": "example.test"}, "asking A example.test. at " + lyingHeader + ": bad question name: dns:"},
		{"never answers", map[string]any{"server": silent, "name": "example.test", "timeout": 0.4}, "no answer before the deadline"},
		{"TCP garbage", map[string]any{"server": tcpGarbage, "name": "example.test", "tcp": true}, "dns: short read"},
		// Read as a DNS message of 0x4854 bytes that never come.
		{"TCP speaks HTTP", map[string]any{"server": tcpHTTP, "name": "example.test", "tcp": true, "timeout": 0.4}, "no answer before the deadline"},
		{"TCP refused", map[string]any{"server": refused, "name": "example.test", "tcp": true}, "connection refused"},
		{"answer to another question", map[string]any{"server": good, "name": "other.example.test"}, "the answer is for another question"},
		{"no name", map[string]any{"server": good}, "config.name: missing"},
		{"bad name", map[string]any{"server": good, "name": "a..b"}, "config.name: must be a domain name"},
		{"bad type", map[string]any{"server": good, "name": "x.test", "type": "ANY"}, "config.type: must be one of"},
		{"bad server", map[string]any{"server": "udp://1.2.3.4", "name": "x.test"}, "config.server: must be a host name"},
		{"bad server port", map[string]any{"server": "127.0.0.1:99999", "name": "x.test"}, "config.server: the port must be between 1 and 65535"},
		{"two ports", map[string]any{"server": "127.0.0.1:5353", "port": 53, "name": "x.test"}, "config.port: differs from the port in config.server"},
		{"bad port", map[string]any{"server": "127.0.0.1", "port": 70000, "name": "x.test"}, "config.port"},
		{"blank expect", map[string]any{"server": good, "name": "x.test", "expect": []any{" "}}, "config.expect"},
		{"timeout", map[string]any{"server": good, "name": "x.test", "timeout": -1}, "config.timeout"},
		{"unknown field", map[string]any{"server": good, "name": "x.test", "qtype": "A"}, `unknown field "qtype"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			res := Probe(ctx, target(c.cfg), vault)
			assertValid(t, res)
			if el := time.Since(start); el > 8*time.Second { // a hang, not a busy machine
				t.Errorf("took %v", el)
			}
			if res.Error == nil || res.Error.Severity != model.SeverityHigh || !strings.Contains(res.Error.Message, c.errHas) || res.Types != nil {
				t.Fatalf("got %+v %+v, want only a HIGH error containing %q", res.Error, res.Types, c.errHas)
			}
			t.Log(res.Error.Message)
		})
	}
}

// TestNoCredentialInResult: the probe takes no credentials; a vault holding
// a secret changes nothing and leaks nothing.
func TestNoCredentialInResult(t *testing.T) {
	addr := startServer(t, zone)
	res := Probe(context.Background(), target(map[string]any{"server": addr, "name": "example.test", "timeout": 10}), vault)
	if res.Error != nil {
		t.Fatal(res.Error.Message)
	}
	for _, s := range resultStrings(res) {
		if strings.Contains(s, distinctiveSecret) {
			t.Fatalf("secret in %q", s)
		}
	}
}

func BenchmarkProbe(b *testing.B) {
	addr := startServer(b, zone)
	for _, network := range []string{"udp", "tcp"} {
		b.Run(network, func(b *testing.B) {
			tg := target(map[string]any{"server": addr, "name": "example.test", "tcp": network == "tcp"})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b.ReportAllocs()
			for b.Loop() {
				if res := Probe(ctx, tg, nil); res.Error != nil {
					b.Fatal(res.Error.Message)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
		})
	}
}

package icmpprobe

import (
	"context"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

func target(cfg map[string]any) probe.Target {
	return probe.Target{AssetID: 1, AssetName: "127.0.0.1", Collector: "icmp", Check: "icmp", Config: cfg, Interval: time.Minute}
}

// metrics returns the metrics of the one item of type "icmp", by name.
func metrics(t *testing.T, res probe.Result) (string, map[string]model.Value) {
	t.Helper()
	if len(res.Types) != 1 || res.Types[0].Name != "icmp" || len(res.Types[0].Items) != 1 {
		t.Fatalf("types %+v, want one type icmp with one item", res.Types)
	}
	it := res.Types[0].Items[0]
	m := map[string]model.Value{}
	for _, x := range it.Metrics {
		m[x.Name] = x.Value
	}
	return it.Name, m
}

func TestConfig(t *testing.T) {
	size := func(n int) any { return n }
	cases := []struct {
		name  string
		asset string
		cfg   map[string]any
		want  settings // when err is empty
		err   string
	}{
		{"defaults, asset name as address", "192.0.2.1", map[string]any{},
			settings{address: "192.0.2.1", count: 5, interval: 200 * time.Millisecond, timeout: time.Second, size: 56}, ""},
		{"all set", "x", map[string]any{"address": "[2001:db8::1]", "count": 100, "intervalMs": 10, "timeoutMs": 250, "size": size(0), "_interval": 60},
			settings{address: "[2001:db8::1]", count: 100, interval: 10 * time.Millisecond, timeout: 250 * time.Millisecond, size: 0}, ""},
		{"host name", "x", map[string]any{"address": "router-1.example.net", "size": size(maxSize)},
			settings{address: "router-1.example.net", count: 5, interval: 200 * time.Millisecond, timeout: time.Second, size: maxSize}, ""},
		{"asset name not a host", "my router", map[string]any{}, settings{}, "config.address: missing"},
		{"bad address", "x", map[string]any{"address": "http://x"}, settings{}, "config.address: must be a host name or an IP address"},
		{"count too big", "x", map[string]any{"count": 101}, settings{}, "config.count: must be between 1 and 100"},
		{"count negative", "x", map[string]any{"count": -1}, settings{}, "config.count"},
		{"count not whole", "x", map[string]any{"count": 2.5}, settings{}, "config: json: cannot unmarshal"},
		{"interval too long", "x", map[string]any{"intervalMs": 60001}, settings{}, "config.intervalMs: must be between 1 and 60000 milliseconds"},
		{"timeout negative", "x", map[string]any{"timeoutMs": -5}, settings{}, "config.timeoutMs: must be between 1 and 60000 milliseconds"},
		{"size negative", "x", map[string]any{"size": -1}, settings{}, "config.size: must be between 0 and 65507 bytes"},
		{"size too big", "x", map[string]any{"size": maxSize + 1}, settings{}, "config.size"},
		{"run too long", "x", map[string]any{"count": 100, "intervalMs": 5000}, settings{}, "config: a run would take up to 8m16s"},
		{"unknown field", "x", map[string]any{"cuont": 3}, settings{}, `unknown field "cuont"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg Config
			err := probe.DecodeConfig(c.cfg, &cfg)
			var s *settings
			if err == nil {
				s, err = cfg.settings(c.asset)
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				// Probe reports it as HIGH, with no result and no socket.
				p, _ := New(Options{})
				tg := target(c.cfg)
				tg.AssetName = c.asset
				res := p.Probe(context.Background(), tg, nil)
				if res.Error == nil || res.Error.Severity != model.SeverityHigh || !strings.Contains(res.Error.Message, c.err) || res.Types != nil {
					t.Fatalf("Probe: %+v %+v", res.Error, res.Types)
				}
				if p.socks != [2]*socket{} {
					t.Fatal("a socket was opened for an invalid configuration")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *s != c.want {
				t.Fatalf("settings %+v, want %+v", *s, c.want)
			}
		})
	}
}

func TestNewMode(t *testing.T) {
	for _, m := range []Mode{"", ModeAuto, ModeRaw, ModeUnprivileged} {
		if _, err := New(Options{Mode: m}); err != nil {
			t.Errorf("mode %q: %v", m, err)
		}
	}
	if _, err := New(Options{Mode: "privileged"}); err == nil || !strings.Contains(err.Error(), `"privileged"`) {
		t.Errorf("unknown mode: %v", err)
	}
}

// Packets for the parse and handle tests.
var (
	v4Src = netip.MustParseAddr("192.0.2.7")
	v4Rtr = netip.MustParseAddr("198.51.100.1")
	v6Src = netip.MustParseAddr("2001:db8::7")
	v6Rtr = netip.MustParseAddr("2001:db8:ffff::1")
)

// reply returns an echo reply (ICMP part) for id and seq with payload.
func reply(v6 bool, id, seq uint16, payload []byte) []byte {
	b := make([]byte, icmpHeaderLen+len(payload))
	b[0] = v4EchoReply
	if v6 {
		b[0] = v6EchoReply
	}
	binary.BigEndian.PutUint16(b[4:6], id)
	binary.BigEndian.PutUint16(b[6:8], seq)
	copy(b[icmpHeaderLen:], payload)
	if !v6 {
		binary.BigEndian.PutUint16(b[2:4], checksum(b))
	}
	return b
}

// ipv4Header returns an IPv4 header from src to dst carrying n bytes of
// protocol proto.
func ipv4Header(src, dst netip.Addr, proto byte, n int) []byte {
	h := make([]byte, ipv4MinHeaderLen)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:4], uint16(ipv4MinHeaderLen+n))
	h[8] = 64
	h[9] = proto
	s, d := src.As4(), dst.As4()
	copy(h[12:16], s[:])
	copy(h[16:20], d[:])
	binary.BigEndian.PutUint16(h[10:12], checksum(h))
	return h
}

// ipv6Header returns an IPv6 header from src to dst carrying n bytes of
// ICMPv6.
func ipv6Header(src, dst netip.Addr, n int) []byte {
	h := make([]byte, ipv6HeaderLen)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:6], uint16(n))
	h[6] = protoICMPv6
	h[7] = 64
	s, d := src.As16(), dst.As16()
	copy(h[8:24], s[:])
	copy(h[24:40], d[:])
	return h
}

// icmpError returns an ICMP error of typ and code from a router quoting
// the echo request id/seq that was sent to dst.
func icmpError(v6 bool, typ, code byte, dst netip.Addr, id, seq uint16) []byte {
	req := newEcho(v6, 56)
	setEcho(req, v6, id, seq, 42)
	var quoted []byte
	if v6 {
		quoted = append(ipv6Header(netip.MustParseAddr("2001:db8::100"), dst, len(req)), req...)
	} else {
		quoted = append(ipv4Header(netip.MustParseAddr("203.0.113.5"), dst, protoICMP, len(req)), req[:icmpHeaderLen]...)
	}
	b := append([]byte{typ, code, 0, 0, 0, 0, 0x05, 0xdc}, quoted...)
	if !v6 {
		binary.BigEndian.PutUint16(b[2:4], checksum(b))
	}
	return b
}

func withIPv4(src netip.Addr, icmp []byte) []byte {
	return append(ipv4Header(src, netip.MustParseAddr("192.0.2.1"), protoICMP, len(icmp)), icmp...)
}

func TestParse(t *testing.T) {
	payload := []byte("0123456789abcdef")
	good4 := reply(false, 7, 9, payload)
	badSum := reply(false, 7, 9, payload)
	badSum[len(badSum)-1] ^= 0xff
	request := newEcho(false, 8)
	setEcho(request, false, 7, 9, 1)
	// A 24-byte IPv4 header: 4 bytes of options (NOPs).
	withOptions := append(ipv4Header(v4Src, v4Src, protoICMP, 4+len(good4)), 1, 1, 1, 1)
	withOptions[0] = 0x46
	withOptions = append(withOptions, good4...)
	padded := append(withIPv4(v4Src, good4), 0, 0, 0)
	quotedTooShort := icmpError(false, v4DestUnreach, 1, v4Src, 7, 9)
	quotedTooShort = quotedTooShort[:len(quotedTooShort)-1]
	quotedNotEcho := icmpError(false, v4DestUnreach, 1, v4Src, 7, 9)
	quotedNotEcho[icmpHeaderLen+ipv4MinHeaderLen] = v4EchoReply
	quotedUDP := icmpError(false, v4DestUnreach, 3, v4Src, 7, 9)
	quotedUDP[icmpHeaderLen+9] = 17

	cases := []struct {
		name      string
		b         []byte
		v6, raw   bool
		truncated bool
		ok        bool
		want      message
	}{
		{"v4 datagram reply", good4, false, false, false, true, message{id: 7, seq: 9, data: payload}},
		{"v4 raw reply", withIPv4(v4Src, good4), false, true, false, true, message{id: 7, seq: 9, data: payload}},
		{"v4 raw reply, IP options", withOptions, false, true, false, true, message{id: 7, seq: 9, data: payload}},
		{"v4 raw reply, padding dropped", padded, false, true, false, true, message{id: 7, seq: 9, data: payload}},
		{"v4 raw reply, bad checksum", withIPv4(v4Src, badSum), false, true, false, false, message{}},
		{"v4 raw reply, truncated: checksum not checked", withIPv4(v4Src, badSum)[:40], false, true, true, true, message{id: 7, seq: 9, data: payload[:12]}},
		{"v4 raw without IP header", good4, false, true, false, false, message{}},
		{"v4 raw, not ICMP", append(ipv4Header(v4Src, v4Src, 17, len(good4)), good4...), false, true, false, false, message{}},
		{"v4 raw, header length too short", append([]byte{0x44}, withIPv4(v4Src, good4)[1:]...), false, true, false, false, message{}},
		{"v4 raw, header length beyond packet", append([]byte{0x4f}, withIPv4(v4Src, good4)[1:24]...), false, true, false, false, message{}},
		{"v4 echo request", request, false, false, false, false, message{}},
		{"v4 short", good4[:7], false, false, false, false, message{}},
		{"empty", nil, false, false, false, false, message{}},
		{"v4 reply, empty payload", reply(false, 1, 2, nil), false, false, false, true, message{id: 1, seq: 2, data: []byte{}}},
		{"v4 host unreachable", icmpError(false, v4DestUnreach, 1, v4Src, 7, 9), false, false, false, true,
			message{isError: true, id: 7, seq: 9, dst: v4Src, reason: "host unreachable"}},
		{"v4 admin prohibited, raw", withIPv4(v4Rtr, icmpError(false, v4DestUnreach, 13, v4Src, 7, 9)), false, true, false, true,
			message{isError: true, id: 7, seq: 9, dst: v4Src, reason: "communication administratively prohibited"}},
		{"v4 unknown unreachable code", icmpError(false, v4DestUnreach, 99, v4Src, 7, 9), false, false, false, true,
			message{isError: true, id: 7, seq: 9, dst: v4Src, reason: "destination unreachable (code 99)"}},
		{"v4 ttl exceeded", icmpError(false, v4TimeExceeded, 0, v4Src, 7, 9), false, false, false, true,
			message{isError: true, id: 7, seq: 9, dst: v4Src, reason: "time to live exceeded"}},
		{"v4 error quoting too little", quotedTooShort, false, false, false, false, message{}},
		{"v4 error quoting a reply", quotedNotEcho, false, false, false, false, message{}},
		{"v4 error quoting UDP", quotedUDP, false, false, false, false, message{}},
		{"v4 redirect ignored", append([]byte{5, 1, 0, 0, 0, 0, 0, 0}, icmpError(false, 3, 1, v4Src, 7, 9)[8:]...), false, false, false, false, message{}},
		{"v6 reply", reply(true, 7, 9, payload), true, true, false, true, message{id: 7, seq: 9, data: payload}},
		{"v6 reply on a datagram socket", reply(true, 7, 9, payload), true, false, false, true, message{id: 7, seq: 9, data: payload}},
		{"v4 reply on a v6 socket", reply(false, 7, 9, payload), true, true, false, false, message{}},
		{"v6 echo request", newEcho(true, 8), true, true, false, false, message{}},
		{"v6 address unreachable", icmpError(true, v6DestUnreach, 3, v6Src, 7, 9), true, true, false, true,
			message{isError: true, id: 7, seq: 9, dst: v6Src, reason: "address unreachable"}},
		{"v6 packet too big", icmpError(true, v6PacketTooBig, 0, v6Src, 7, 9), true, true, false, true,
			message{isError: true, id: 7, seq: 9, dst: v6Src, reason: "packet too big (MTU 1500)"}},
		{"v6 hop limit", icmpError(true, v6TimeExceeded, 0, v6Src, 7, 9), true, true, false, true,
			message{isError: true, id: 7, seq: 9, dst: v6Src, reason: "hop limit exceeded"}},
		{"v6 error quoting too little", icmpError(true, v6DestUnreach, 0, v6Src, 7, 9)[:icmpHeaderLen+ipv6HeaderLen+4], true, true, false, false, message{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, ok := parse(c.b, c.v6, c.raw, c.truncated)
			if ok != c.ok {
				t.Fatalf("ok %v, want %v (%+v)", ok, c.ok, m)
			}
			if !ok {
				return
			}
			if m.isError != c.want.isError || m.id != c.want.id || m.seq != c.want.seq || string(m.data) != string(c.want.data) ||
				m.dst != c.want.dst || m.reason != c.want.reason {
				t.Fatalf("got %+v, want %+v", m, c.want)
			}
		})
	}
}

func TestEchoRequest(t *testing.T) {
	for _, size := range []int{0, 3, 8, 56, 1000} {
		b := newEcho(false, size)
		setEcho(b, false, 0x1234, 0xfedc, 0x0102030405060708)
		if len(b) != icmpHeaderLen+size || b[0] != v4Echo || b[1] != 0 || checksum(b) != 0 {
			t.Fatalf("size %d: bad request % x", size, b[:min(len(b), 24)])
		}
		if binary.BigEndian.Uint16(b[4:6]) != 0x1234 || binary.BigEndian.Uint16(b[6:8]) != 0xfedc {
			t.Fatalf("size %d: id/seq % x", size, b[4:8])
		}
		if !tokenMatches(b[icmpHeaderLen:], 0x0102030405060708, size) || (size > 0 && tokenMatches(b[icmpHeaderLen:], 0xff02030405060708, size)) {
			t.Fatalf("size %d: token", size)
		}
		// Filled in again (the next echo of a run), the checksum holds.
		setEcho(b, false, 1, 2, 3)
		if checksum(b) != 0 {
			t.Fatalf("size %d: checksum after reuse", size)
		}
	}
	b := newEcho(true, 16)
	setEcho(b, true, 1, 2, 3)
	if b[0] != v6Echo || b[2] != 0 || b[3] != 0 {
		t.Fatalf("v6 request % x: the kernel computes the checksum", b[:8])
	}
}

// testSocket is a socket without a connection, for feeding handle.
func testSocket(t *testing.T, v6, raw bool) *socket {
	t.Helper()
	return newSocket(v6, raw, nil)
}

// answers returns what r has been handed so far.
func answers(r *run) []answer {
	var out []answer
	for {
		select {
		case a := <-r.replies:
			out = append(out, a)
		default:
			return out
		}
	}
}

// TestHandle feeds the reader's dispatch with replies and errors, good
// and bad, for echoes in flight.
func TestHandle(t *testing.T) {
	type sent struct {
		seq uint16
		e   *echo
	}
	cases := []struct {
		name string
		v6   bool
		raw  bool
		// packet builds what arrives, given the two echoes in flight (to
		// src, sizes 56 and 4) and the socket.
		packet func(s *socket, a, b sent) ([]byte, netip.Addr)
		// want is the index of the echo answered (-1: none) and the
		// reason of an error.
		want   int
		reason string
	}{
		{"raw v4 reply", false, true, func(s *socket, a, _ sent) ([]byte, netip.Addr) {
			return withIPv4(v4Src, reply(false, s.id, a.seq, tokenOf(a.e.token, 56))), v4Src
		}, 0, ""},
		{"short payload carries what fits of the token", false, true, func(s *socket, _, b sent) ([]byte, netip.Addr) {
			return withIPv4(v4Src, reply(false, s.id, b.seq, tokenOf(b.e.token, 4))), v4Src
		}, 1, ""},
		{"raw v4, another process's id", false, true, func(s *socket, a, _ sent) ([]byte, netip.Addr) {
			return withIPv4(v4Src, reply(false, s.id+1, a.seq, tokenOf(a.e.token, 56))), v4Src
		}, -1, ""},
		{"datagram v4: the kernel's id is not checked", false, false, func(s *socket, a, _ sent) ([]byte, netip.Addr) {
			return reply(false, s.id+1, a.seq, tokenOf(a.e.token, 56)), v4Src
		}, 0, ""},
		{"unknown seq", false, true, func(s *socket, a, b sent) ([]byte, netip.Addr) {
			return withIPv4(v4Src, reply(false, s.id, a.seq^b.seq^0x8000, tokenOf(a.e.token, 56))), v4Src
		}, -1, ""},
		{"reply from another address", false, true, func(s *socket, a, _ sent) ([]byte, netip.Addr) {
			return withIPv4(v4Rtr, reply(false, s.id, a.seq, tokenOf(a.e.token, 56))), v4Rtr
		}, -1, ""},
		{"wrong token (a late reply to an earlier echo)", false, true, func(s *socket, a, _ sent) ([]byte, netip.Addr) {
			return withIPv4(v4Src, reply(false, s.id, a.seq, tokenOf(a.e.token-1, 56))), v4Src
		}, -1, ""},
		{"another echo's token", false, true, func(s *socket, a, b sent) ([]byte, netip.Addr) {
			return withIPv4(v4Src, reply(false, s.id, a.seq, tokenOf(b.e.token, 56))), v4Src
		}, -1, ""},
		{"payload cut before the token ends", false, true, func(s *socket, a, _ sent) ([]byte, netip.Addr) {
			return withIPv4(v4Src, reply(false, s.id, a.seq, tokenOf(a.e.token, 56)[:5])), v4Src
		}, -1, ""},
		{"host unreachable from a router", false, true, func(s *socket, a, _ sent) ([]byte, netip.Addr) {
			return withIPv4(v4Rtr, icmpError(false, v4DestUnreach, 1, v4Src, s.id, a.seq)), v4Rtr
		}, 0, "host unreachable (from 198.51.100.1)"},
		{"unreachable quoting another destination", false, true, func(s *socket, a, _ sent) ([]byte, netip.Addr) {
			return withIPv4(v4Rtr, icmpError(false, v4DestUnreach, 1, v4Rtr, s.id, a.seq)), v4Rtr
		}, -1, ""},
		{"unreachable quoting another id", false, true, func(s *socket, a, _ sent) ([]byte, netip.Addr) {
			return withIPv4(v4Rtr, icmpError(false, v4DestUnreach, 1, v4Src, s.id^1, a.seq)), v4Rtr
		}, -1, ""},
		{"garbage", false, true, func(*socket, sent, sent) ([]byte, netip.Addr) {
			return []byte{0x45, 0, 0}, v4Src
		}, -1, ""},
		{"raw v6 reply", true, true, func(s *socket, _, b sent) ([]byte, netip.Addr) {
			return reply(true, s.id, b.seq, tokenOf(b.e.token, 4)), v6Src
		}, 1, ""},
		{"datagram v6 reply", true, false, func(s *socket, a, _ sent) ([]byte, netip.Addr) {
			return reply(true, 0, a.seq, tokenOf(a.e.token, 56)), v6Src
		}, 0, ""},
		{"v6 time exceeded", true, true, func(s *socket, a, _ sent) ([]byte, netip.Addr) {
			return icmpError(true, v6TimeExceeded, 0, v6Src, s.id, a.seq), v6Rtr
		}, 0, "hop limit exceeded (from 2001:db8:ffff::1)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testSocket(t, c.v6, c.raw)
			dst := v4Src
			if c.v6 {
				dst = v6Src
			}
			ra := &run{size: 56, replies: make(chan answer, 1)}
			rb := &run{size: 4, replies: make(chan answer, 1)}
			var a, b sent
			var err error
			if a.seq, a.e, err = s.register(ra, 0, dst); err != nil {
				t.Fatal(err)
			}
			if b.seq, b.e, err = s.register(rb, 1, dst); err != nil {
				t.Fatal(err)
			}
			a.e.sent.Store(s.now())
			b.e.sent.Store(s.now())
			pkt, src := c.packet(s, a, b)
			s.handle(pkt, src, false, s.now()+int64(time.Millisecond))
			// The same packet again: an echo is answered once.
			s.handle(pkt, src, false, s.now()+int64(time.Millisecond))
			got := map[int][]answer{0: answers(ra), 1: answers(rb)}
			for i := range 2 {
				if i != c.want {
					if len(got[i]) != 0 {
						t.Fatalf("echo %d answered: %+v", i, got[i])
					}
					continue
				}
				if len(got[i]) != 1 || got[i][0].index != i || got[i][0].reason != c.reason {
					t.Fatalf("echo %d: answers %+v, want one with reason %q", i, got[i], c.reason)
				}
				if c.reason == "" && (got[i][0].rtt < time.Millisecond || got[i][0].rtt > time.Second) {
					t.Fatalf("rtt %v", got[i][0].rtt)
				}
			}
			wantInFlight := 2
			if c.want >= 0 {
				wantInFlight = 1
			}
			if n := s.inFlight(); n != wantInFlight {
				t.Fatalf("%d echoes in flight, want %d", n, wantInFlight)
			}
		})
	}
}

// tokenOf returns a payload of size bytes carrying token.
func tokenOf(token uint64, size int) []byte {
	b := newEcho(false, size)
	setEcho(b, false, 0, 0, token)
	return b[icmpHeaderLen:]
}

func TestSequenceNumbers(t *testing.T) {
	s := testSocket(t, false, true)
	r := &run{replies: make(chan answer, 1<<16)}
	dst := v4Src
	seen := map[uint16]bool{}
	var first uint16
	for i := range 1 << 16 {
		seq, _, err := s.register(r, i, dst)
		if err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		if seen[seq] {
			t.Fatalf("seq %d handed out twice while in flight", seq)
		}
		if i == 0 {
			first = seq
		}
		seen[seq] = true
	}
	if _, _, err := s.register(r, 0, dst); err != errTooManyInFlight {
		t.Fatalf("65537th echo in flight: %v", err)
	}
	// One comes back: its number is the only one free.
	s.forget(first+100, s.pending[first+100])
	seq, _, err := s.register(r, 0, dst)
	if err != nil || seq != first+100 {
		t.Fatalf("got seq %d (%v), want the freed %d", seq, err, first+100)
	}
	// Numbers go round: after a run ends, the next ones are new.
	s.forgetRun(r, func() []uint16 {
		var all []uint16
		for k := range seen {
			all = append(all, k)
		}
		return all
	}())
	if n := s.inFlight(); n != 0 {
		t.Fatalf("%d in flight after forgetRun", n)
	}
	next, _, _ := s.register(r, 0, dst)
	if next == first+100 {
		t.Fatalf("the number just freed was handed out again at once")
	}
}

func TestSummarize(t *testing.T) {
	ms := func(v ...float64) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x * float64(time.Millisecond))
		}
		return out
	}
	cases := []struct {
		name string
		rtts []time.Duration
		want rttStats
	}{
		{"none", nil, rttStats{}},
		{"one", ms(5), rttStats{min: ms(5)[0], avg: ms(5)[0], max: ms(5)[0]}},
		{"steady", ms(10, 10, 10), rttStats{min: ms(10)[0], avg: ms(10)[0], max: ms(10)[0]}},
		// |12−10| + |8−12| + |14−8| = 12, over 3 differences.
		{"varying", ms(10, 12, 8, 14), rttStats{min: ms(8)[0], avg: ms(11)[0], max: ms(14)[0], jitter: ms(4)[0]}},
	}
	for _, c := range cases {
		if got := summarize(c.rtts); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestBuildResult(t *testing.T) {
	ms := time.Millisecond
	ok := func(rtt time.Duration) outcome { return outcome{state: replied, rtt: rtt} }
	lostTo := func(reason string) outcome { return outcome{state: lost, reason: reason} }
	timeout := lostTo("no reply within 1000 ms")
	cases := []struct {
		name    string
		address string
		ip      string
		out     []outcome
		metrics map[string]float64 // the metrics, exactly
		sev     model.Severity
		errHas  []string // empty: no error
		noItem  bool
	}{
		{"all replies", "192.0.2.1", "192.0.2.1", []outcome{ok(10 * ms), ok(12 * ms), ok(8 * ms)},
			map[string]float64{"count": 3, "received": 3, "lossPercent": 0, "min": 0.008, "avg": 0.01, "max": 0.012, "jitter": 0.003}, 0, nil, false},
		{"one reply: no jitter", "192.0.2.1", "192.0.2.1", []outcome{timeout, ok(10 * ms)},
			map[string]float64{"count": 2, "received": 1, "lossPercent": 50, "min": 0.01, "avg": 0.01, "max": 0.01}, 0, nil, false},
		{"partial loss is no error", "host.example", "192.0.2.1", []outcome{ok(10 * ms), timeout, ok(10 * ms), timeout},
			map[string]float64{"count": 4, "received": 2, "lossPercent": 50, "min": 0.01, "avg": 0.01, "max": 0.01, "jitter": 0}, 0, nil, false},
		{"no reply", "host.example", "192.0.2.1", []outcome{timeout, timeout, lostTo("host unreachable (from 198.51.100.1)"), timeout},
			map[string]float64{"count": 4, "received": 0, "lossPercent": 100}, model.SeverityHigh,
			[]string{"no reply from host.example (192.0.2.1): 4 of 4 echo requests lost (3× no reply within 1000 ms, 1× host unreachable (from 198.51.100.1))"}, false},
		{"no reply, IPv6 literal in brackets", "[2001:db8::1]", "2001:db8::1", []outcome{timeout},
			map[string]float64{"count": 1, "received": 0, "lossPercent": 100}, model.SeverityHigh,
			[]string{"no reply from [2001:db8::1]: 1 of 1 echo requests lost"}, false},
		{"cut short", "192.0.2.1", "192.0.2.1", []outcome{ok(10 * ms), ok(20 * ms), {state: waiting}, {state: notSent}},
			map[string]float64{"count": 2, "received": 2, "lossPercent": 0, "min": 0.01, "avg": 0.015, "max": 0.02, "jitter": 0.01}, model.SeverityLow,
			[]string{"the run's deadline cut the ping of 192.0.2.1 short: 2 of 4 echo requests counted"}, false},
		{"cut short with no reply", "192.0.2.1", "192.0.2.1", []outcome{timeout, {state: waiting}},
			map[string]float64{"count": 1, "received": 0, "lossPercent": 100}, model.SeverityHigh,
			[]string{"no reply from 192.0.2.1: 1 of 1", "cut the ping of 192.0.2.1 short: 1 of 2"}, false},
		{"nothing counted", "192.0.2.1", "192.0.2.1", []outcome{{state: waiting}, {state: notSent}},
			nil, model.SeverityHigh, []string{"pinging 192.0.2.1: the run's deadline came before any echo request could be answered"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := &settings{address: c.address, count: len(c.out)}
			res := buildResult(cfg, netip.MustParseAddr(c.ip), c.out)
			if len(c.errHas) == 0 && res.Error != nil {
				t.Fatalf("unexpected error %+v", res.Error)
			}
			if len(c.errHas) > 0 {
				if res.Error == nil || res.Error.Severity != c.sev {
					t.Fatalf("error %+v, want %v", res.Error, c.sev)
				}
				for _, h := range c.errHas {
					if !strings.Contains(res.Error.Message, h) {
						t.Errorf("message %q lacks %q", res.Error.Message, h)
					}
				}
			}
			if c.noItem {
				if res.Types != nil {
					t.Fatalf("result %+v, want none", res.Types)
				}
				return
			}
			name, m := metrics(t, res)
			if name != c.address {
				t.Errorf("item %q, want %q", name, c.address)
			}
			if len(m) != len(c.metrics) {
				t.Errorf("metrics %v, want %v", m, c.metrics)
			}
			for k, want := range c.metrics {
				v, ok := m[k]
				kind := model.KindFloat
				if k == "count" || k == "received" {
					kind = model.KindInt
				}
				got, _ := v.Number()
				if !ok || v.Kind != kind || got < want-1e-9 || got > want+1e-9 {
					t.Errorf("%s = %+v, want %v %v", k, v, kind, want)
				}
			}
		})
	}
}

package icmpprobe

// Tests that ping 127.0.0.1 and ::1 through real sockets. Raw sockets need
// root (CAP_NET_RAW); datagram sockets need net.ipv4.ping_group_range to
// admit the test's group, which the tests set when they run as root and
// restore afterwards. Under CI=true a test that cannot do what it needs
// fails instead of skipping.

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	xicmp "golang.org/x/net/icmp"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

const (
	pingGroupRange = "/proc/sys/net/ipv4/ping_group_range"
	echoIgnoreV4   = "/proc/sys/net/ipv4/icmp_echo_ignore_all"
	echoIgnoreV6   = "/proc/sys/net/ipv6/icmp/echo_ignore_all"
)

// need skips the test, or fails it under CI=true, when ok is false.
func need(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true, and the test cannot run: "+format, args...)
	}
	t.Skipf(format, args...)
}

// canOpen reports whether an ICMP socket of network opens.
func canOpen(network, addr string) bool {
	c, err := xicmp.ListenPacket(network, addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func needRaw(t testing.TB) {
	t.Helper()
	need(t, canOpen("ip4:icmp", "0.0.0.0"), "raw ICMP sockets need root or CAP_NET_RAW")
}

func needIPv6(t testing.TB) {
	t.Helper()
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err == nil {
		c.Close()
	}
	need(t, err == nil, "no IPv6 on the loopback interface: %v", err)
}

// setSysctl writes value to a /proc/sys file and restores the old value
// when the test ends.
func setSysctl(t testing.TB, path, value string) {
	t.Helper()
	old, err := os.ReadFile(path)
	need(t, err == nil, "reading %s: %v", path, err)
	need(t, os.Geteuid() == 0, "changing %s needs root", path)
	if err := os.WriteFile(path, []byte(value), 0o600); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(path, old, 0o600); err != nil {
			t.Errorf("restoring %s to %q: %v", path, old, err)
		}
	})
}

// allowUnprivileged makes sure datagram ICMP sockets open: the sysctl
// covers IPv4 and IPv6.
func allowUnprivileged(t testing.TB) {
	t.Helper()
	if canOpen("udp4", "0.0.0.0") {
		return
	}
	setSysctl(t, pingGroupRange, "0 2147483647")
	if !canOpen("udp4", "0.0.0.0") {
		t.Fatalf("datagram ICMP sockets do not open with %s set", pingGroupRange)
	}
}

// modes are the two socket kinds, each with what it needs.
var modes = []struct {
	name  string
	mode  Mode
	setup func(testing.TB)
}{
	{"raw", ModeRaw, needRaw},
	{"unprivileged", ModeUnprivileged, allowUnprivileged},
}

func newProber(t testing.TB, mode Mode) *Prober {
	t.Helper()
	p, err := New(Options{Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func runCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLoopback(t *testing.T) {
	cases := []struct {
		name string
		cfg  map[string]any
		v6   bool
	}{
		{"IPv4", map[string]any{"address": "127.0.0.1", "count": 3, "intervalMs": 10}, false},
		{"IPv6", map[string]any{"address": "::1", "count": 3, "intervalMs": 10}, true},
		{"IPv6 in brackets", map[string]any{"address": "[::1]", "count": 2, "intervalMs": 10}, true},
		{"empty payload", map[string]any{"address": "127.0.0.1", "count": 2, "intervalMs": 10, "size": 0}, false},
		{"payload shorter than the token", map[string]any{"address": "::1", "count": 2, "intervalMs": 10, "size": 3}, true},
		{"large payload, read cut", map[string]any{"address": "127.0.0.1", "count": 2, "intervalMs": 10, "size": 9000}, false},
		{"large payload, IPv6", map[string]any{"address": "::1", "count": 2, "intervalMs": 10, "size": 9000}, true},
		{"one request: no jitter", map[string]any{"address": "127.0.0.1", "count": 1}, false},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			m.setup(t)
			p := newProber(t, m.mode)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					if c.v6 {
						needIPv6(t)
					}
					res := p.Probe(runCtx(t), target(c.cfg), nil)
					if res.Error != nil {
						t.Fatalf("error %+v", res.Error)
					}
					name, got := metrics(t, res)
					count := int64(c.cfg["count"].(int))
					if name != c.cfg["address"] || got["count"].Int != count || got["received"].Int != count || got["lossPercent"].F != 0 {
						t.Fatalf("item %q: %+v", name, got)
					}
					lo, avg, hi := got["min"].F, got["avg"].F, got["max"].F
					if !(0 < lo && lo <= avg && avg <= hi && hi < 1) {
						t.Fatalf("min %v avg %v max %v", lo, avg, hi)
					}
					if j, ok := got["jitter"]; ok != (count > 1) || j.F < 0 || j.F > hi-lo+1e-9 {
						t.Fatalf("jitter %+v (present: %v) with %d replies", j, ok, count)
					}
					i := 0
					if c.v6 {
						i = 1
					}
					if s := p.socks[i]; s == nil || s.raw != (m.mode == ModeRaw) || s.v6 != c.v6 || s.buffer < socketBuffer {
						t.Fatalf("socket %+v, want a %s one with a %d-byte buffer", s, m.mode, socketBuffer)
					}
				})
			}
		})
	}
}

// TestConcurrentRuns runs 200 checks at once through one Prober, IPv4 and
// IPv6 mixed, each with its own payload size: every run must get all its
// replies and no other run's.
func TestConcurrentRuns(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			m.setup(t)
			needIPv6(t)
			p := newProber(t, m.mode)
			ctx := runCtx(t)
			const runs, count = 200, 5
			results := make([]probe.Result, runs)
			var wg sync.WaitGroup
			for i := range runs {
				addr := "127.0.0.1"
				if i%2 == 1 {
					addr = "::1"
				}
				cfg := map[string]any{"address": addr, "count": count, "intervalMs": 5, "timeoutMs": 5000, "size": 8 + i}
				wg.Go(func() { results[i] = p.Probe(ctx, target(cfg), nil) })
			}
			wg.Wait()
			for i, res := range results {
				if res.Error != nil {
					t.Fatalf("run %d: %+v", i, res.Error)
				}
				_, got := metrics(t, res)
				if got["count"].Int != count || got["received"].Int != count {
					t.Fatalf("run %d: count %d received %d", i, got["count"].Int, got["received"].Int)
				}
			}
			for _, s := range p.socks {
				if n := s.inFlight(); n != 0 {
					t.Fatalf("%s socket: %d echoes still registered", s.kind(), n)
				}
			}
		})
	}
}

// TestGarbageOnTheWire sprays the raw socket with echo replies that carry
// its identifier and every sequence number but not the right token, with
// truncated replies, and with errors about requests to other hosts, while
// a run is in flight: the run must count only its own replies.
func TestGarbageOnTheWire(t *testing.T) {
	needRaw(t)
	p := newProber(t, ModeRaw)
	ctx := runCtx(t)
	if res := p.Probe(ctx, target(map[string]any{"address": "127.0.0.1", "count": 1}), nil); res.Error != nil {
		t.Fatal(res.Error.Message)
	}
	id := p.socks[0].id
	spray, err := xicmp.ListenPacket("ip4:icmp", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer spray.Close()
	to := &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}

	// The run takes the next sequence numbers: spray those.
	s := p.socks[0]
	s.mu.Lock()
	first := s.nextSeq
	s.mu.Unlock()
	done := make(chan probe.Result)
	go func() {
		done <- p.Probe(ctx, target(map[string]any{"address": "127.0.0.1", "count": 20, "intervalMs": 5}), nil)
	}()
	sprayed := 0
spray:
	for i := 0; ; i++ {
		select {
		case res := <-done:
			go func() { done <- res }()
			break spray
		default:
		}
		seq := first + uint16(i%40)
		var pkt []byte
		switch i % 3 {
		case 0: // right id and seq, wrong token
			pkt = reply(false, id, seq, tokenOf(uint64(i)*0x9e3779b97f4a7c15, 56))
		case 1: // truncated: no token at all
			pkt = reply(false, id, seq, []byte{1, 2})
		default: // an error about a request to another host
			pkt = icmpError(false, v4DestUnreach, 1, v4Src, id, seq)
		}
		if _, err := spray.WriteTo(pkt, to); err != nil && !errors.Is(err, syscall.ENOBUFS) {
			t.Fatal(err)
		}
		sprayed++
	}
	res := <-done
	if res.Error != nil {
		t.Fatalf("error %+v", res.Error)
	}
	if _, got := metrics(t, res); got["count"].Int != 20 || got["received"].Int != 20 {
		t.Fatalf("after %d garbage packets: %+v", sprayed, got)
	}
	t.Logf("%d garbage packets sprayed during the run", sprayed)
}

// TestNoReply makes the kernel ignore echo requests: the run reports 100 %
// loss with a HIGH error, the item still there.
func TestNoReply(t *testing.T) {
	needRaw(t)
	cases := []struct {
		addr, sysctl string
	}{
		{"127.0.0.1", echoIgnoreV4},
		{"::1", echoIgnoreV6},
	}
	p := newProber(t, ModeRaw)
	for _, c := range cases {
		t.Run(c.addr, func(t *testing.T) {
			if c.addr == "::1" {
				needIPv6(t)
			}
			_, err := os.Stat(c.sysctl)
			need(t, err == nil, "no %s: %v", c.sysctl, err)
			setSysctl(t, c.sysctl, "1")
			start := time.Now()
			res := p.Probe(runCtx(t), target(map[string]any{"address": c.addr, "count": 2, "intervalMs": 10, "timeoutMs": 200}), nil)
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("run took %v, want about 210 ms", el)
			}
			want := "no reply from " + c.addr + ": 2 of 2 echo requests lost (2× no reply within 200 ms)"
			if res.Error == nil || res.Error.Severity != model.SeverityHigh || res.Error.Message != want {
				t.Fatalf("error %+v, want HIGH %q", res.Error, want)
			}
			_, got := metrics(t, res)
			if len(got) != 3 || got["count"].Int != 2 || got["received"].Int != 0 || got["lossPercent"].F != 100 {
				t.Fatalf("metrics %+v", got)
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	needRaw(t)
	p := newProber(t, ModeRaw)
	t.Run("cut short", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		res := p.Probe(ctx, target(map[string]any{"address": "127.0.0.1", "count": 100, "intervalMs": 50}), nil)
		if el := time.Since(start); el > time.Second {
			t.Fatalf("run took %v with a 300 ms deadline", el)
		}
		if res.Error == nil || res.Error.Severity != model.SeverityLow || !strings.Contains(res.Error.Message, "cut the ping of 127.0.0.1 short") {
			t.Fatalf("error %+v", res.Error)
		}
		_, got := metrics(t, res)
		if n := got["count"].Int; n < 1 || n > 7 || got["received"].Int != n {
			t.Fatalf("metrics %+v", got)
		}
	})
	t.Run("already past", func(t *testing.T) {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		res := p.Probe(ctx, target(map[string]any{"address": "127.0.0.1"}), nil)
		if res.Error == nil || res.Error.Severity != model.SeverityHigh || res.Types != nil {
			t.Fatalf("got %+v %+v", res.Error, res.Types)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		res := p.Probe(ctx, target(map[string]any{"address": "::1", "count": 100, "intervalMs": 30}), nil)
		if el := time.Since(start); el > time.Second {
			t.Fatalf("run took %v after being cancelled at 100 ms", el)
		}
		if res.Error == nil {
			t.Fatalf("no error from a cancelled run: %+v", res.Types)
		}
	})
	if n := p.socks[0].inFlight(); n != 0 {
		t.Fatalf("%d echoes still registered", n)
	}
}

func TestClose(t *testing.T) {
	needRaw(t)
	p, err := New(Options{Mode: ModeRaw})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan probe.Result)
	go func() {
		done <- p.Probe(runCtx(t), target(map[string]any{"address": "127.0.0.1", "count": 100, "intervalMs": 20}), nil)
	}()
	time.Sleep(150 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if _, got := metrics(t, res); got["count"].Int >= 100 || got["received"].Int < 1 {
			t.Fatalf("run ended by Close: %+v", got)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a run did not end when the Prober was closed")
	}
	res := p.Probe(runCtx(t), target(map[string]any{"address": "127.0.0.1"}), nil)
	if res.Error == nil || res.Error.Severity != model.SeverityHigh || !strings.Contains(res.Error.Message, ErrClosed.Error()) {
		t.Fatalf("after Close: %+v", res.Error)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestAutoMode checks that ModeAuto takes a datagram socket where the
// sysctl allows one and a raw socket where it does not.
func TestAutoMode(t *testing.T) {
	needRaw(t)
	for _, c := range []struct {
		value string
		raw   bool
	}{{"1 0", true}, {"0 2147483647", false}} {
		t.Run(c.value, func(t *testing.T) {
			setSysctl(t, pingGroupRange, c.value)
			p := newProber(t, ModeAuto)
			if res := p.Probe(runCtx(t), target(map[string]any{"address": "127.0.0.1", "count": 1}), nil); res.Error != nil {
				t.Fatal(res.Error.Message)
			}
			if s := p.socks[0]; s.raw != c.raw {
				t.Fatalf("opened a %s socket", s.kind())
			}
		})
	}
	t.Run("unprivileged refused", func(t *testing.T) {
		setSysctl(t, pingGroupRange, "1 0")
		p := newProber(t, ModeUnprivileged)
		res := p.Probe(runCtx(t), target(map[string]any{"address": "127.0.0.1", "count": 1}), nil)
		if res.Error == nil || res.Error.Severity != model.SeverityHigh || !strings.Contains(res.Error.Message, "ping_group_range") {
			t.Fatalf("got %+v", res.Error)
		}
	})
}

func TestUnresolvable(t *testing.T) {
	// The resolver never leaves the machine: /etc/hosts, then a DNS
	// "server" that cannot be reached.
	r := &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS in tests")
	}}
	p, err := New(Options{Resolver: r})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res := p.Probe(runCtx(t), target(map[string]any{"address": "no-such-host.invalid"}), nil)
	if res.Error == nil || res.Error.Severity != model.SeverityHigh || !strings.HasPrefix(res.Error.Message, "resolving no-such-host.invalid: ") || res.Types != nil {
		t.Fatalf("got %+v %+v", res.Error, res.Types)
	}
	if p.socks != [2]*socket{} {
		t.Fatal("a socket was opened for a name that does not resolve")
	}
}

// BenchmarkEchoes runs many checks at once through one Prober, against
// 127.0.0.1 and ::1 in turn, and reports echo requests (each answered)
// per second of wall time and per second of this process's CPU time.
func BenchmarkEchoes(b *testing.B) {
	const count = 10
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			m.setup(b)
			needIPv6(b)
			p := newProber(b, m.mode)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			targets := []probe.Target{
				target(map[string]any{"address": "127.0.0.1", "count": count, "intervalMs": 1}),
				target(map[string]any{"address": "::1", "count": count, "intervalMs": 1}),
			}
			for _, tg := range targets { // open the sockets
				if res := p.Probe(ctx, tg, nil); res.Error != nil {
					b.Fatal(res.Error.Message)
				}
			}
			var next, lost atomic.Int64
			b.SetParallelism(100)
			cpu0 := cpuSeconds(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				tg := targets[next.Add(1)%2]
				for pb.Next() {
					res := p.Probe(ctx, tg, nil)
					if res.Error != nil {
						b.Error(res.Error.Message)
						return
					}
					_, got := metricsOf(res)
					lost.Add(int64(count) - got["received"].Int)
				}
			})
			b.StopTimer()
			cpu := cpuSeconds(b) - cpu0
			echoes := float64(b.N * count)
			b.ReportMetric(echoes/b.Elapsed().Seconds(), "echoes/s")
			b.ReportMetric(echoes/cpu, "echoes/cpu-s")
			b.ReportMetric(float64(lost.Load())/echoes*100, "loss%")
		})
	}
}

// metricsOf is metrics without a test to fail.
func metricsOf(res probe.Result) (string, map[string]model.Value) {
	m := map[string]model.Value{}
	if len(res.Types) != 1 || len(res.Types[0].Items) != 1 {
		return "", m
	}
	for _, x := range res.Types[0].Items[0].Metrics {
		m[x.Name] = x.Value
	}
	return res.Types[0].Items[0].Name, m
}

// cpuSeconds returns the user and system time of this process.
func cpuSeconds(t testing.TB) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func TestKernelTime(t *testing.T) {
	const at = 1_700_000_000_123_456_789
	ts := syscall.NsecToTimespec(at)
	data := make([]byte, binary.Size(ts))
	if _, err := binary.Encode(data, binary.NativeEndian, ts); err != nil {
		t.Fatal(err)
	}
	cmsg := func(level, typ int32, data []byte) []byte {
		h := syscall.Cmsghdr{Level: level, Type: typ}
		h.SetLen(syscall.CmsgLen(len(data)))
		b := make([]byte, syscall.CmsgSpace(len(data)))
		if _, err := binary.Encode(b, binary.NativeEndian, h); err != nil {
			t.Fatal(err)
		}
		copy(b[syscall.CmsgLen(0):], data)
		return b
	}
	other := cmsg(syscall.SOL_IP, syscall.IP_TTL, []byte{64, 0, 0, 0})
	stamp := cmsg(syscall.SOL_SOCKET, syscall.SCM_TIMESTAMPNS, data)
	cases := []struct {
		name string
		oob  []byte
		ok   bool
	}{
		{"timestamp", stamp, true},
		{"after another message", append(other, stamp...), true},
		{"none", nil, false},
		{"another message only", other, false},
		{"cut", stamp[:len(stamp)-4], false},
	}
	for _, c := range cases {
		got, ok := kernelTime(c.oob)
		if ok != c.ok || (ok && got != at) {
			t.Errorf("%s: %d %v", c.name, got, ok)
		}
	}
}

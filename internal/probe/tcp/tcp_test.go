package tcp

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

// listen starts a listener on 127.0.0.1:0 whose connections are handed to
// serve (nil: closed at once) and returns its port.
func listen(t testing.TB, serve func(net.Conn)) int {
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
			if serve == nil {
				c.Close()
				continue
			}
			wg.Go(func() { defer c.Close(); serve(c) })
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// closedPort returns a port on 127.0.0.1 that nothing listens on.
func closedPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// silent holds the connection open without sending anything until the
// client goes away.
func silent(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Read(make([]byte, 1))
}

func target(cfg map[string]any) probe.Target {
	return probe.Target{AssetID: 1, AssetName: "127.0.0.1", Collector: "tcp", Check: "tcp", Config: cfg, Interval: time.Minute}
}

// creds is a vault holding one entry with a distinctive secret.
type creds map[string]probe.Credential

func (c creds) Credential(name string) (probe.Credential, error) {
	if cr, ok := c[name]; ok {
		return cr, nil
	}
	return probe.Credential{}, probe.ErrNoCredential
}

const distinctiveSecret = "s3cr3t-Zebra-Quartz-4242"

var vault = creds{"x": {Name: "x", Username: "admin", Secret: secret.New(distinctiveSecret)}}

// metrics returns the metrics of item in type "tcp", by name.
func metrics(t *testing.T, res probe.Result, item string) map[string]model.Value {
	t.Helper()
	for _, ty := range res.Types {
		if ty.Name != "tcp" {
			continue
		}
		for _, it := range ty.Items {
			if it.Name == item {
				m := map[string]model.Value{}
				for _, x := range it.Metrics {
					m[x.Name] = x.Value
				}
				return m
			}
		}
	}
	t.Fatalf("no item %q in %+v", item, res.Types)
	return nil
}

// resultStrings returns every string a result carries.
func resultStrings(res probe.Result) []string {
	var out []string
	if res.Error != nil {
		out = append(out, res.Error.Message)
	}
	var value func(v model.Value)
	value = func(v model.Value) {
		out = append(out, v.Str)
		for _, e := range v.List {
			value(e)
		}
	}
	for _, ty := range res.Types {
		out = append(out, ty.Name)
		for _, it := range ty.Items {
			out = append(out, it.Name)
			for _, m := range it.Metrics {
				out = append(out, m.Name)
				value(m.Value)
			}
		}
	}
	return out
}

// assertValid checks that the hub accepts res: it is encoded the way a
// collector sends it and decoded under the hub's default limits.
func assertValid(t testing.TB, res probe.Result) {
	t.Helper()
	d := &model.CheckData{Types: res.Types, HasResult: res.Types != nil, Error: res.Error, Timestamp: time.Now().Unix()}
	if _, err := model.DecodeCheckData(bytes.NewReader(d.MarshalAgentJSON()), model.Limits{}); err != nil {
		t.Fatalf("the hub would refuse the result: %v\n%s", err, d.MarshalAgentJSON())
	}
}

func TestConfigErrors(t *testing.T) {
	ports65 := make([]any, 65)
	for i := range ports65 {
		ports65[i] = i + 1
	}
	cases := []struct {
		name  string
		asset string
		cfg   map[string]any
		want  string
	}{
		{"no ports", "127.0.0.1", map[string]any{"address": "127.0.0.1"}, "config.ports: must hold 1–64 ports between 1 and 65535"},
		{"port 0", "127.0.0.1", map[string]any{"ports": []any{0}}, "config.ports: must hold 1–64 ports"},
		{"port too big", "127.0.0.1", map[string]any{"ports": []any{65536}}, "config.ports: must hold 1–64 ports"},
		{"too many ports", "127.0.0.1", map[string]any{"ports": ports65}, "config.ports: must hold 1–64 ports"},
		{"duplicate", "127.0.0.1", map[string]any{"ports": []any{22, 22}}, "config.ports: port 22 is listed twice"},
		{"port not a number", "127.0.0.1", map[string]any{"ports": []any{"http"}}, "config: json: cannot unmarshal"},
		{"unknown field", "127.0.0.1", map[string]any{"ports": []any{22}, "prots": 1}, `unknown field "prots"`},
		{"bad address", "127.0.0.1", map[string]any{"address": "http://x", "ports": []any{22}}, "config.address: must be a host name or an IP address"},
		{"asset name not a host", "my web server", map[string]any{"ports": []any{22}}, "config.address: missing"},
		{"timeout negative", "127.0.0.1", map[string]any{"ports": []any{22}, "timeout": -1}, "config.timeout: must be between 0 and 300 seconds"},
		{"timeout too long", "127.0.0.1", map[string]any{"ports": []any{22}, "timeout": 301}, "config.timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := target(c.cfg)
			tg.AssetName = c.asset
			res := Probe(context.Background(), tg, nil)
			assertValid(t, res)
			if res.Error == nil || res.Error.Severity != model.SeverityHigh || !strings.Contains(res.Error.Message, c.want) {
				t.Fatalf("got %+v, want HIGH error containing %q", res.Error, c.want)
			}
			if res.Types != nil {
				t.Fatalf("config error with a result: %+v", res.Types)
			}
		})
	}
}

func TestProbe(t *testing.T) {
	open := listen(t, nil)
	banner := listen(t, func(c net.Conn) {
		_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n\x1b[31mred\x00\xff" + strings.Repeat("x", 400)))
		silent(c)
	})
	quiet := listen(t, silent)
	closed := closedPort(t)

	type port struct {
		state  string
		banner *string
	}
	str := func(s string) *string { return &s }
	cases := []struct {
		name    string
		cfg     map[string]any
		want    map[int]port
		sev     model.Severity
		noError bool
		errHas  string
	}{
		{
			name:    "one open port, asset name as address",
			cfg:     map[string]any{"ports": []any{open}},
			want:    map[int]port{open: {state: StateOpen}},
			noError: true,
		},
		{
			name:   "one closed port",
			cfg:    map[string]any{"address": "127.0.0.1", "ports": []any{closed}},
			want:   map[int]port{closed: {state: StateClosed}},
			sev:    model.SeverityHigh,
			errHas: "no port is open: " + strconv.Itoa(closed) + " closed",
		},
		{
			name:   "open and closed",
			cfg:    map[string]any{"address": "127.0.0.1", "ports": []any{open, closed}},
			want:   map[int]port{open: {state: StateOpen}, closed: {state: StateClosed}},
			sev:    model.SeverityMedium,
			errHas: "1 of 2 ports not open",
		},
		{
			name: "banner, sanitized and bounded",
			cfg:  map[string]any{"address": "127.0.0.1", "ports": []any{banner}, "banner": true},
			want: map[int]port{banner: {state: StateOpen, banner: str(
				"SSH-2.0-OpenSSH_9.6  .[31mred.." + strings.Repeat("x", bannerMax-len("SSH-2.0-OpenSSH_9.6\r\n\x1b[31mred\x00\xff")))}},
			noError: true,
		},
		{
			name:    "banner from a silent server is empty",
			cfg:     map[string]any{"address": "127.0.0.1", "ports": []any{quiet}, "banner": true},
			want:    map[int]port{quiet: {state: StateOpen, banner: str("")}},
			noError: true,
		},
		{
			name:    "no banner metric unless asked",
			cfg:     map[string]any{"address": "127.0.0.1", "ports": []any{banner}},
			want:    map[int]port{banner: {state: StateOpen}},
			noError: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res := Probe(ctx, target(c.cfg), vault)
			assertValid(t, res)
			if c.noError {
				if res.Error != nil {
					t.Fatalf("unexpected error %+v", res.Error)
				}
			} else if res.Error == nil || res.Error.Severity != c.sev || !strings.Contains(res.Error.Message, c.errHas) {
				t.Fatalf("error %+v, want %v containing %q", res.Error, c.sev, c.errHas)
			}
			if len(res.Types) != 1 || len(res.Types[0].Items) != len(c.want) {
				t.Fatalf("types %+v, want one type with %d items", res.Types, len(c.want))
			}
			for p, w := range c.want {
				m := metrics(t, res, strconv.Itoa(p))
				if m["state"].Str != w.state || m["open"].Bool != (w.state == StateOpen) {
					t.Errorf("port %d: state %q open %v, want %q", p, m["state"].Str, m["open"].Bool, w.state)
				}
				ct, hasCT := m["connectTime"]
				if w.state == StateOpen && (!hasCT || ct.Kind != model.KindFloat || ct.F <= 0 || ct.F > 5) {
					t.Errorf("port %d: connectTime %+v", p, ct)
				}
				if w.state != StateOpen && hasCT {
					t.Errorf("port %d: connectTime on a port that is not open", p)
				}
				b, hasB := m["banner"]
				switch {
				case w.banner == nil && hasB:
					t.Errorf("port %d: unexpected banner %q", p, b.Str)
				case w.banner != nil && (!hasB || b.Str != *w.banner):
					t.Errorf("port %d: banner %q, want %q", p, b.Str, *w.banner)
				}
			}
			for _, s := range resultStrings(res) {
				if strings.Contains(s, distinctiveSecret) {
					t.Fatalf("secret in result string %q", s)
				}
			}
		})
	}
}

// TestProbeIsConcurrent probes many silent ports asking for a banner: run
// one after another they would take ports × timeout.
func TestProbeIsConcurrent(t *testing.T) {
	var ports []any
	for range 10 {
		ports = append(ports, listen(t, silent))
	}
	start := time.Now()
	// Each port waits the whole banner wait (1 s) for nothing.
	res := Probe(context.Background(), target(map[string]any{"ports": ports, "banner": true}), nil)
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("10 ports took %v: not probed concurrently", el)
	}
	if res.Error != nil || len(res.Types[0].Items) != 10 {
		t.Fatalf("got %+v %+v", res.Error, res.Types)
	}
	for i, it := range res.Types[0].Items {
		if it.Name != strconv.Itoa(ports[i].(int)) {
			t.Fatalf("item %d is %q, want the configured order", i, it.Name)
		}
	}
}

func TestDeadlineAlreadyPassed(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	res := Probe(ctx, target(map[string]any{"ports": []any{listen(t, nil)}}), nil)
	if res.Error == nil || res.Error.Severity != model.SeverityHigh {
		t.Fatalf("got %+v", res.Error)
	}
	if m := metrics(t, res, res.Types[0].Items[0].Name); m["state"].Str != StateTimeout {
		t.Fatalf("state %q, want timeout", m["state"].Str)
	}
}

func TestSanitize(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"220 mail.example.com ESMTP\r\n", "220 mail.example.com ESMTP"},
		{"\x00\x01abc\x7f\x80", "..abc.."},
		{"a\tb\nc", "a b c"},
		{"\x1b]0;title\x07", ".]0;title."},
		{"caf\xc3\xa9", "caf.."},
	}
	for _, c := range cases {
		if got := sanitize([]byte(c.in)); got != c.want {
			t.Errorf("sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// BenchmarkProbe runs checks against loopback listeners and reports checks
// per second of wall-clock time and per second of CPU time used by the whole
// process (probe, listener and the kernel work on both sides), which is the
// throughput of one core whatever else the machine is doing.
func BenchmarkProbe(b *testing.B) {
	for _, n := range []int{1, 8} {
		b.Run(strconv.Itoa(n)+"ports", func(b *testing.B) {
			var ports []any
			for range n {
				ports = append(ports, listen(b, nil))
			}
			tg := target(map[string]any{"address": "127.0.0.1", "ports": ports})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if res := Probe(ctx, tg, nil); res.Error != nil {
					b.Fatal(res.Error.Message)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
			if used := cpuTime() - cpu; used > 0 {
				b.ReportMetric(float64(b.N)/used.Seconds(), "checks/cpu-s")
			}
		})
	}
}

// FuzzSanitize: whatever a server sends, the banner is printable ASCII, no
// longer than what was read, without surrounding spaces.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "SSH-2.0-OpenSSH_9.6\r\n", "\x1b[2J\x00\xff", " \t\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := sanitize(b)
		if len(s) > len(b) || strings.TrimSpace(s) != s {
			t.Fatalf("sanitize(%q) = %q", b, s)
		}
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] >= 0x7f {
				t.Fatalf("sanitize(%q) = %q holds byte %#x", b, s, s[i])
			}
		}
	})
}

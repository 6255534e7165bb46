package tlsprobe

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/netguard"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

func TestAddrPolicy(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	self := issue(t, spec{cn: "localhost", dns: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}, notBefore: now.Add(-day), notAfter: now.Add(90 * day)}, nil)
	var accepted atomic.Int64
	conf := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{self.cert.Raw}, PrivateKey: self.key, Leaf: self.cert}}}
	port := serve(t, func(c net.Conn) {
		accepted.Add(1)
		_ = tls.Server(c, conf).Handshake()
	})

	for _, tc := range []struct {
		name, address string
	}{
		{"literal", "127.0.0.1"},
		{"a name, checked after resolution", "localhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.address == "localhost" {
				if addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", "localhost"); err != nil || len(addrs) == 0 {
					t.Skip("localhost does not resolve here")
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res := Probe(probe.WithAddrPolicy(ctx, netguard.Check), target(map[string]any{"address": tc.address, "port": port}), nil)
			if res.Error == nil || res.Error.Severity != model.SeverityHigh || res.Types != nil {
				t.Fatalf("got %+v %+v, want a HIGH error and no result", res.Error, res.Types)
			}
			t.Logf("%s", res.Error.Message)
			want := "connecting to " + net.JoinHostPort(tc.address, strconv.Itoa(port)) + ": refused address "
			if !strings.HasPrefix(res.Error.Message, want) || !strings.Contains(res.Error.Message, "loopback") {
				t.Errorf("error %q, want it to start with %q and say loopback", res.Error.Message, want)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Errorf("the server accepted %d connections", n)
	}

	// Allowed by the policy: the usual result.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := Probe(probe.WithAddrPolicy(ctx, func(netip.Addr) error { return nil }), target(map[string]any{"port": port}), nil)
	if len(res.Types) != 1 || res.Error == nil || !strings.Contains(res.Error.Message, "certificate chain is not valid") {
		t.Errorf("got %+v %+v, want the result with the chain's error", res.Types, res.Error)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("the server accepted %d connections, want 1", n)
	}
}

package icmpprobe

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/netguard"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

func TestAddrPolicy(t *testing.T) {
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cfg := map[string]any{"address": "127.0.0.1", "count": 1, "timeoutMs": 200}

	for _, tc := range []struct{ address, want string }{
		{"127.0.0.1", "pinging 127.0.0.1: refused address 127.0.0.1: loopback address 127.0.0.0/8 (RFC 1122)"},
		// The literal is unmapped before it is checked.
		{"::ffff:127.0.0.1", "pinging ::ffff:127.0.0.1 (127.0.0.1): refused address 127.0.0.1: loopback"},
	} {
		t.Run(tc.address, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cfg["address"] = tc.address
			res := p.Probe(probe.WithAddrPolicy(ctx, netguard.Check), target(cfg), nil)
			if res.Error == nil || res.Error.Severity != model.SeverityHigh || res.Types != nil {
				t.Fatalf("got %+v %+v, want a HIGH error and no result", res.Error, res.Types)
			}
			t.Logf("%s", res.Error.Message)
			if !strings.HasPrefix(res.Error.Message, tc.want) {
				t.Errorf("error %q, want it to start with %q", res.Error.Message, tc.want)
			}
		})
	}
	// Refused before anything is sent: no socket was even opened.
	p.mu.Lock()
	socks := p.socks
	p.mu.Unlock()
	if socks[0] != nil || socks[1] != nil {
		t.Error("a refused run opened a socket")
	}

	// An allowing policy sees the address and lets the run go on (whether
	// it can ping depends on the machine: only the refusal is checked).
	var seen atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg["address"] = "127.0.0.1"
	res := p.Probe(probe.WithAddrPolicy(ctx, func(a netip.Addr) error { seen.Store(a); return nil }), target(cfg), nil)
	if res.Error != nil && strings.Contains(res.Error.Message, "refused address") {
		t.Errorf("an allowing policy refused: %s", res.Error.Message)
	}
	if a, _ := seen.Load().(netip.Addr); a != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("the policy saw %v, want 127.0.0.1", a)
	}
}

package dnsprobe

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/netguard"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

func TestAddrPolicy(t *testing.T) {
	var queries atomic.Int64
	addr := startServer(t, func(w dns.ResponseWriter, q *dns.Msg) {
		queries.Add(1)
		zone(w, q)
	})
	run := func(t *testing.T, policy func(netip.Addr) error, cfg map[string]any) probe.Result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cfg["server"] = addr
		return Probe(probe.WithAddrPolicy(ctx, policy), target(cfg), nil)
	}
	wantRefused := func(t *testing.T, res probe.Result, qname string) {
		t.Helper()
		if res.Error == nil || res.Error.Severity != model.SeverityHigh || res.Types != nil {
			t.Fatalf("got %+v %+v, want a HIGH error and no result", res.Error, res.Types)
		}
		t.Logf("%s", res.Error.Message)
		want := "asking A " + qname + " at " + addr + ": refused address 127.0.0.1: loopback address 127.0.0.0/8"
		if !strings.HasPrefix(res.Error.Message, want) {
			t.Errorf("error %q, want it to start with %q", res.Error.Message, want)
		}
	}

	t.Run("udp", func(t *testing.T) {
		wantRefused(t, run(t, netguard.Check, map[string]any{"name": "example.test"}), "example.test.")
	})
	t.Run("tcp", func(t *testing.T) {
		wantRefused(t, run(t, netguard.Check, map[string]any{"name": "example.test", "tcp": true}), "example.test.")
	})
	if n := queries.Load(); n != 0 {
		t.Errorf("the server got %d queries", n)
	}

	t.Run("the TCP retry of a truncated answer is checked too", func(t *testing.T) {
		var calls atomic.Int32
		policy := func(a netip.Addr) error {
			if calls.Add(1) == 1 { // the UDP query
				return nil
			}
			return netguard.Check(a)
		}
		wantRefused(t, run(t, policy, map[string]any{"name": "big.example.test"}), "big.example.test.")
		if n := calls.Load(); n != 2 {
			t.Errorf("the policy was asked %d times, want 2", n)
		}
	})

	t.Run("allowed", func(t *testing.T) {
		var seen atomic.Value
		res := run(t, func(a netip.Addr) error { seen.Store(a); return nil }, map[string]any{"name": "example.test"})
		if res.Error != nil || len(res.Types) != 1 {
			t.Fatalf("got %+v %+v, want the answer", res.Error, res.Types)
		}
		if a, _ := seen.Load().(netip.Addr); a != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("the policy saw %v, want 127.0.0.1", a)
		}
	})
}

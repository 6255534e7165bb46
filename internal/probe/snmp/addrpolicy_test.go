package snmp

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/netguard"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

func TestAddrPolicy(t *testing.T) {
	f := startFake(t, switchMIB().serve(t))
	cfg := portConfig(f.port, "version", "2c", "credential", "c", "timeout", 0.5, "retries", 0)
	run := func(policy func(netip.Addr) error) probe.Result {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return System(probe.WithAddrPolicy(ctx, policy), target(CheckSystem, cfg), fakeVault)
	}

	res := run(netguard.Check)
	wantError(t, res, model.SeverityHigh, "connecting to 127.0.0.1:"+itoa(f.port)+": refused address 127.0.0.1: loopback address 127.0.0.0/8 (RFC 1122)")
	if res.Types != nil {
		t.Errorf("a refused run has a result: %+v", res.Types)
	}
	assertNoSecrets(t, res, fakeCommunity)
	if n := f.requests.Load(); n != 0 {
		t.Errorf("the agent got %d requests", n)
	}

	// Allowed by the policy, the run is the usual one.
	var seen atomic.Value
	res = run(func(a netip.Addr) error { seen.Store(a); return nil })
	if res.Error != nil {
		t.Fatalf("unexpected error %+v", res.Error)
	}
	if m := metrics(t, res, "system", "system"); m["sysName"].Str != "sw1" {
		t.Errorf("sysName %+v, want sw1", m["sysName"])
	}
	if a, _ := seen.Load().(netip.Addr); a != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("the policy saw %v, want 127.0.0.1", a)
	}
}

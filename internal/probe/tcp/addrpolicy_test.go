package tcp

import (
	"context"
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
	var accepted atomic.Int64
	port := listen(t, func(net.Conn) { accepted.Add(1) })
	other := listen(t, func(net.Conn) { accepted.Add(1) })
	cfg := map[string]any{"address": "127.0.0.1", "ports": []int{port, other}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	res := Probe(probe.WithAddrPolicy(ctx, netguard.Check), target(cfg), nil)
	if res.Error == nil || res.Error.Severity != model.SeverityHigh || res.Types != nil {
		t.Fatalf("got %+v %+v, want a HIGH error and no result", res.Error, res.Types)
	}
	t.Logf("%s", res.Error.Message)
	if want := "127.0.0.1: refused address 127.0.0.1: loopback address 127.0.0.0/8"; !strings.HasPrefix(res.Error.Message, want) {
		t.Errorf("error %q, want it to start with %q", res.Error.Message, want)
	}

	// The dialer enforces the policy too, on the address it connects to,
	// whatever was checked before.
	d := &net.Dialer{KeepAlive: -1, Control: probe.DialControl(probe.WithAddrPolicy(ctx, netguard.Check), nil)}
	r := probePort(ctx, d, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), false)
	if r.state != StateError || r.err == nil || !strings.Contains(r.err.Error(), "refused address 127.0.0.1: loopback") {
		t.Errorf("probePort with the guarded dialer = %+v, want state error, refused", r)
	}

	time.Sleep(50 * time.Millisecond) // let a connection that got through be counted
	if n := accepted.Load(); n != 0 {
		t.Errorf("the listeners accepted %d connections", n)
	}

	// A policy that allows the address changes nothing.
	var seen atomic.Value
	res = Probe(probe.WithAddrPolicy(ctx, func(a netip.Addr) error { seen.Store(a); return nil }), target(cfg), nil)
	if res.Error != nil {
		t.Fatalf("unexpected error %+v", res.Error)
	}
	if a, _ := seen.Load().(netip.Addr); a != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("the policy saw %v, want 127.0.0.1", a)
	}
	for _, p := range []int{port, other} {
		if m := metrics(t, res, strconv.Itoa(p)); m["state"].Str != StateOpen {
			t.Errorf("port %d: state %v, want open", p, m["state"])
		}
	}
}

package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/netguard"
)

func TestNoAddrPolicy(t *testing.T) {
	ctx := context.Background()
	if err := CheckAddr(ctx, netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("CheckAddr without a policy = %v", err)
	}
	if c := DialControl(ctx, nil); c != nil {
		t.Error("DialControl(no policy, nil) is not nil")
	}
	called := 0
	next := func(string, string, syscall.RawConn) error { called++; return errors.New("next") }
	c := DialControl(ctx, next)
	if err := c("tcp", "127.0.0.1:1", nil); err == nil || err.Error() != "next" || called != 1 {
		t.Errorf("DialControl(no policy, next) did not return next: %v, %d calls", err, called)
	}
	if got := WithAddrPolicy(ctx, nil); got != ctx {
		t.Error("WithAddrPolicy(ctx, nil) changed ctx")
	}
}

func TestAddrPolicy(t *testing.T) {
	ctx := WithAddrPolicy(context.Background(), netguard.Check)

	err := CheckAddr(ctx, netip.MustParseAddr("127.0.0.1"))
	if err == nil || err.Error() != "refused address 127.0.0.1: loopback address 127.0.0.0/8 (RFC 1122)" {
		t.Fatalf("CheckAddr(127.0.0.1) = %v", err)
	}
	var re *netguard.RefusedError
	var are *AddrRefusedError
	if !errors.Is(err, ErrAddrRefused) || !errors.As(err, &re) || !errors.As(err, &are) || are.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("CheckAddr's error %#v does not wrap ErrAddrRefused and the policy's error", err)
	}
	if err := CheckAddr(ctx, netip.MustParseAddr("8.8.8.8")); err != nil {
		t.Errorf("CheckAddr(8.8.8.8) = %v", err)
	}

	var nextSaw []string
	next := func(_, address string, _ syscall.RawConn) error { nextSaw = append(nextSaw, address); return nil }
	c := DialControl(ctx, next)
	for _, tc := range []struct {
		address string
		refused string // "" when allowed
	}{
		{"127.0.0.1:80", "refused address 127.0.0.1: loopback"},
		{"[::1]:53", "refused address ::1: loopback"},
		{"[::ffff:169.254.169.254]:80", "IPv4-mapped"},
		{"169.254.169.254", "link-local"}, // an IP address alone
		{"[fd00:ec2::254]:80", "unique local"},
		{"localhost:80", "not an IP address and port"}, // fails closed
		{"", "not an IP address and port"},
		{"8.8.8.8:53", ""},
		{"[2001:4860:4860::8888]:443", ""},
	} {
		nextSaw = nil
		err := c("tcp", tc.address, nil)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%q: refused: %v", tc.address, err)
		case tc.refused == "" && (len(nextSaw) != 1 || nextSaw[0] != tc.address):
			t.Errorf("%q: next saw %q", tc.address, nextSaw)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused) || !errors.Is(err, ErrAddrRefused)):
			t.Errorf("%q: error %v, want one wrapping ErrAddrRefused with %q", tc.address, err, tc.refused)
		case tc.refused != "" && len(nextSaw) != 0:
			t.Errorf("%q: next was called for a refused address", tc.address)
		}
	}
	if c := DialControl(ctx, nil); c == nil || c("tcp", "8.8.8.8:53", nil) != nil || c("tcp", "10.0.0.1:53", nil) == nil {
		t.Error("DialControl(policy, nil) does not check the policy alone")
	}
}

// TestAddrPolicyNarrows: a policy added to a context that has one must
// pass both; it cannot widen the outer one.
func TestAddrPolicyNarrows(t *testing.T) {
	allowAll := func(netip.Addr) error { return nil }
	noTen := func(a netip.Addr) error {
		if netip.MustParsePrefix("10.0.0.0/8").Contains(a) {
			return errors.New("no 10/8")
		}
		return nil
	}
	ctx := WithAddrPolicy(WithAddrPolicy(context.Background(), netguard.Check), allowAll)
	if err := CheckAddr(ctx, netip.MustParseAddr("127.0.0.1")); err == nil {
		t.Error("an inner allow-all policy widened the outer one")
	}
	ctx = WithAddrPolicy(WithAddrPolicy(context.Background(), allowAll), noTen)
	if err := CheckAddr(ctx, netip.MustParseAddr("10.1.2.3")); err == nil || err.Error() != "no 10/8" {
		t.Errorf("the inner policy was not applied: %v", err)
	}
	if err := CheckAddr(ctx, netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("CheckAddr = %v", err)
	}
}

// TestDialControlDials: the Control refuses a real dial to a listener on
// loopback, over TCP and UDP, and the error wraps ErrAddrRefused.
func TestDialControlDials(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ctx = WithAddrPolicy(ctx, netguard.Check)
	d := &net.Dialer{Control: DialControl(ctx, nil)}
	for _, network := range []string{"tcp", "udp"} {
		conn, err := d.DialContext(ctx, network, ln.Addr().String())
		if err == nil {
			conn.Close()
			t.Fatalf("%s: the dial succeeded", network)
		}
		if !errors.Is(err, ErrAddrRefused) || !strings.Contains(err.Error(), "refused address 127.0.0.1: loopback") {
			t.Errorf("%s: dial error %v", network, err)
		}
	}
}

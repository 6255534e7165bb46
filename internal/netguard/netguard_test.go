package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// refusedCases is the allowlist range by range (moved here from the
// webhook notifier's tests, with the ranges its security review found).
var refusedCases = []struct {
	addr    string
	refused bool
	why     string // if set, the reason must contain it
}{
	{addr: "127.0.0.1", refused: true, why: "127.0.0.0/8"},
	{addr: "127.8.9.10", refused: true},
	{addr: "::1", refused: true, why: "::1/128"},
	{addr: "10.0.0.1", refused: true, why: "10.0.0.0/8"},
	{addr: "10.255.255.255", refused: true},
	{addr: "172.16.0.1", refused: true, why: "172.16.0.0/12"},
	{addr: "172.31.255.254", refused: true},
	{addr: "192.168.1.1", refused: true, why: "192.168.0.0/16"},
	{addr: "169.254.169.254", refused: true, why: "metadata"}, // cloud metadata
	{addr: "169.254.0.1", refused: true},
	{addr: "fe80::1", refused: true, why: "fe80::/10"},
	{addr: "fe80::1%eth0", refused: true},
	{addr: "fc00::1", refused: true, why: "fc00::/7"},
	{addr: "fd00:ec2::254", refused: true}, // AWS metadata over IPv6
	{addr: "0.0.0.0", refused: true, why: "0.0.0.0/8"},
	{addr: "0.1.2.3", refused: true},
	{addr: "::", refused: true, why: "::/128"},
	{addr: "224.0.0.1", refused: true, why: "224.0.0.0/4"},
	{addr: "239.255.255.250", refused: true},
	{addr: "ff02::1", refused: true, why: "ff00::/8"},
	{addr: "255.255.255.255", refused: true, why: "broadcast"},
	{addr: "100.64.0.1", refused: true, why: "100.64.0.0/10"},
	{addr: "100.127.255.254", refused: true},
	{addr: "::ffff:127.0.0.1", refused: true, why: "IPv4-mapped"},
	{addr: "::ffff:10.1.2.3", refused: true},
	{addr: "::ffff:169.254.169.254", refused: true},
	{addr: "::ffff:100.64.0.1", refused: true},
	{addr: "::ffff:198.18.0.1", refused: true, why: "198.18.0.0/15"},
	{addr: "64:ff9b::a9fe:a9fe", refused: true, why: "64:ff9b::/96"}, // NAT64 of 169.254.169.254
	{addr: "64:ff9b::7f00:1", refused: true},                         // NAT64 of 127.0.0.1
	{addr: "64:ff9b::c612:1", refused: true, why: "198.18.0.0/15"},   // NAT64 of 198.18.0.1

	// Found by the security review.
	{addr: "64:ff9b:1::a9fe:a9fe", refused: true, why: "64:ff9b:1::/48"}, // local-use NAT64 of 169.254.169.254
	{addr: "64:ff9b:1::a00:1", refused: true, why: "10.0.0.0/8"},         // local-use NAT64 of 10.0.0.1
	// Local-use NAT64 with other RFC 6052 layouts: which bits are the
	// IPv4 address depends on the operator's prefix length.
	{addr: "64:ff9b:1:a9fe:a9:fe00:808:808", refused: true, why: "ambiguous"},
	{addr: "64:ff9b:1:1::808:808", refused: true, why: "ambiguous"},
	{addr: "2002:a9fe:a9fe::1", refused: true, why: "2002::/16"}, // 6to4 of 169.254.169.254
	{addr: "2002:7f00:1::1", refused: true, why: "127.0.0.0/8"},
	{addr: "2002:c0a8:101:1::1", refused: true, why: "192.168.0.0/16"},
	{addr: "2002:a00:1::", refused: true, why: "10.0.0.0/8"},
	{addr: "2002::1", refused: true, why: "0.0.0.0/8"},
	{addr: "2002:c058:6301::1", refused: true, why: "192.88.99.0/24"}, // 6to4 of the relay anycast
	{addr: "fec0::1", refused: true, why: "fec0::/10"},
	{addr: "feff::1", refused: true, why: "fec0::/10"},
	{addr: "198.18.0.1", refused: true, why: "198.18.0.0/15"},
	{addr: "198.19.255.254", refused: true, why: "198.18.0.0/15"},
	{addr: "240.0.0.1", refused: true, why: "240.0.0.0/4"},
	{addr: "254.1.2.3", refused: true, why: "240.0.0.0/4"},
	{addr: "192.0.0.1", refused: true, why: "192.0.0.0/24"},
	{addr: "192.0.0.170", refused: true, why: "192.0.0.0/24"},
	{addr: "100::1", refused: true, why: "100::/64"},
	{addr: "2001:db8::1", refused: true, why: "2001:db8::/32"},
	{addr: "2001:db8:ffff::1", refused: true, why: "2001:db8::/32"},
	{addr: "2001::1", refused: true, why: "Teredo"},
	{addr: "2001:0:4136:e378:8000:63bf:3fff:fdd2", refused: true, why: "2001::/23"}, // Teredo
	{addr: "2001:10::1", refused: true, why: "2001::/23"},                           // ORCHID
	{addr: "2001:1ff:ffff::1", refused: true, why: "2001::/23"},
	// Other special-purpose ranges.
	{addr: "192.0.2.1", refused: true, why: "192.0.2.0/24"},
	{addr: "198.51.100.7", refused: true, why: "198.51.100.0/24"},
	{addr: "203.0.113.9", refused: true, why: "203.0.113.0/24"},
	{addr: "192.88.99.1", refused: true, why: "192.88.99.0/24"},
	{addr: "::a9fe:a9fe", refused: true, why: "::/96"}, // IPv4-compatible
	{addr: "::8.8.8.8", refused: true, why: "::/96"},
	{addr: "3fff::1", refused: true, why: "3fff::/20"},
	{addr: "5f00::1", refused: true, why: "5f00::/16"},
	{addr: "100:0:0:1::1", refused: true, why: "2000::/3"},
	{addr: "::ffff:0:a9fe:a9fe", refused: true, why: "2000::/3"}, // SIIT IPv4-translated
	{addr: "4000::1", refused: true, why: "2000::/3"},
	{addr: "1fff:ffff::1", refused: true, why: "2000::/3"},

	{addr: "8.8.8.8"},
	{addr: "1.1.1.1"},
	{addr: "93.184.216.34"},
	{addr: "100.63.255.255"},
	{addr: "100.128.0.0"},
	{addr: "172.15.255.255"},
	{addr: "172.32.0.0"},
	{addr: "192.169.0.1"},
	{addr: "192.0.1.1"},
	{addr: "192.0.3.1"},
	{addr: "198.17.255.255"},
	{addr: "198.20.0.0"},
	{addr: "223.255.255.254"},
	{addr: "2001:4860:4860::8888"},
	{addr: "2a00:1450:4001:80b::200e"},
	{addr: "2a00:1450:4001:82b::200e"},
	{addr: "2606:4700:4700::1111"},
	{addr: "2001:200::1"}, // just after 2001::/23
	{addr: "2001:dc8::1"}, // just before 2001:db8::/32
	{addr: "::ffff:8.8.8.8"},
	{addr: "64:ff9b::808:808"},    // NAT64 of 8.8.8.8
	{addr: "64:ff9b::5db8:d822"},  // NAT64 of 93.184.216.34
	{addr: "64:ff9b:1::808:808"},  // local-use NAT64 of 8.8.8.8
	{addr: "2002:5db8:d822::1"},   // 6to4 of 93.184.216.34
	{addr: "2002:808:808:1:2::3"}, // 6to4 of 8.8.8.8

	// Added with the move to netguard.
	{addr: "::ffff:127.0.0.1%lo", refused: true, why: "127.0.0.0/8"}, // a zone changes nothing
	{addr: "::ffff:8.8.8.8%eth0"},
	{addr: "::ffff:192.168.1.1", refused: true, why: "192.168.0.0/16"},
	{addr: "64:ff9b::a00:1", refused: true, why: "10.0.0.0/8"}, // NAT64 of 10.0.0.1
	{addr: "2002:a9fe:a9fe::", refused: true, why: "169.254.0.0/16"},
	{addr: "fd00::1", refused: true, why: "fc00::/7"},
	{addr: "ff05::2", refused: true, why: "ff00::/8"},
	{addr: "192.0.0.9", refused: true, why: "192.0.0.0/24"},
	{addr: "100.64.0.0", refused: true, why: "carrier-grade NAT"},
	{addr: "172.16.0.0", refused: true, why: "RFC 1918"},
	{addr: "169.254.170.2", refused: true, why: "link-local"}, // ECS task metadata
	{addr: "9.9.9.9"},
	{addr: "2620:fe::fe"},
}

func TestRefused(t *testing.T) {
	for _, tc := range refusedCases {
		t.Run(tc.addr, func(t *testing.T) {
			ip := netip.MustParseAddr(tc.addr)
			reason, refused := Refused(ip)
			if refused != tc.refused {
				t.Fatalf("Refused(%s) = %q, %v; want refused=%v", tc.addr, reason, refused, tc.refused)
			}
			if refused && reason == "" {
				t.Error("refused without a reason")
			}
			if !refused && reason != "" {
				t.Errorf("allowed with a reason %q", reason)
			}
			if !strings.Contains(reason, tc.why) {
				t.Errorf("reason %q does not mention %q", reason, tc.why)
			}

			err := Check(ip)
			if (err != nil) != tc.refused {
				t.Fatalf("Check = %v, want refused=%v", err, tc.refused)
			}
			if err != nil {
				var re *RefusedError
				if !errors.As(err, &re) || re.Addr != ip || re.Reason != reason {
					t.Errorf("Check error %#v, want a *RefusedError for %s with reason %q", err, ip, reason)
				}
			}

			// The dialler's Control sees "ip:port".
			err = Control("tcp", netip.AddrPortFrom(ip.WithZone(""), 443).String(), nil)
			if (err != nil) != tc.refused {
				t.Errorf("Control = %v, want refused=%v", err, tc.refused)
			}
			if err != nil && (!strings.Contains(err.Error(), reason) || !strings.Contains(err.Error(), "refused address "+ip.WithZone("").String())) {
				t.Errorf("Control error %q does not give the address and the reason", err)
			}
		})
	}
}

func TestRefusedInvalid(t *testing.T) {
	if reason, bad := Refused(netip.Addr{}); !bad || reason == "" {
		t.Errorf("Refused(invalid) = %q, %v; want refused with a reason", reason, bad)
	}
	if err := Check(netip.Addr{}); err == nil {
		t.Error("Check(invalid) = nil")
	}
}

func TestRefusedErrorMessage(t *testing.T) {
	err := Check(netip.MustParseAddr("127.0.0.1"))
	const want = "refused address 127.0.0.1: loopback address 127.0.0.0/8 (RFC 1122)"
	if err == nil || err.Error() != want {
		t.Errorf("Check(127.0.0.1) = %v, want %q", err, want)
	}
	err = Check(netip.MustParseAddr("169.254.169.254"))
	if err == nil || !strings.Contains(err.Error(), "refused address 169.254.169.254: link-local") || !strings.Contains(err.Error(), "metadata") {
		t.Errorf("Check(169.254.169.254) = %v, want it to name the address, link-local and metadata", err)
	}
}

func TestControlAddressForms(t *testing.T) {
	for _, tc := range []struct {
		address string
		refused bool
		why     string
	}{
		{address: "127.0.0.1:80", refused: true, why: "refused address 127.0.0.1: loopback"},
		{address: "[::1]:53", refused: true, why: "refused address ::1: loopback"},
		{address: "[fe80::1%eth0]:53", refused: true, why: "refused address fe80::1%eth0: link-local"},
		{address: "[::ffff:169.254.169.254]:80", refused: true, why: "IPv4-mapped"},
		{address: "127.0.0.1", refused: true, why: "loopback"}, // an IP address alone
		{address: "[::1]", refused: true, why: "loopback"},
		{address: "8.8.8.8:53"},
		{address: "[2001:4860:4860::8888]:443"},
		{address: "8.8.8.8"},
		// Fail closed: what cannot be parsed is refused.
		{address: "", refused: true, why: "cannot be checked"},
		{address: "localhost:80", refused: true, why: "cannot be checked"},
		{address: "not-an-address", refused: true, why: "cannot be checked"},
		{address: "127.0.0.1:http", refused: true, why: "cannot be checked"},
	} {
		t.Run(tc.address, func(t *testing.T) {
			err := Control("tcp", tc.address, nil)
			if (err != nil) != tc.refused {
				t.Fatalf("Control(%q) = %v, want refused=%v", tc.address, err, tc.refused)
			}
			if err == nil {
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Errorf("Control error %#v is not a *RefusedError", err)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("Control error %q does not mention %q", err, tc.why)
			}
		})
	}
}

// TestControlDial dials a real listener on loopback through a net.Dialer
// guarded by Control: the connection is never made.
func TestControlDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &net.Dialer{Control: Control}
	for _, network := range []string{"tcp", "udp"} {
		conn, err := d.DialContext(ctx, network, ln.Addr().String())
		if err == nil {
			conn.Close()
			t.Fatalf("%s: dialling %s through Control succeeded", network, ln.Addr())
		}
		var re *RefusedError
		if !errors.As(err, &re) || re.Addr != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("%s: dial error %v is not a *RefusedError for 127.0.0.1", network, err)
		}
		if !strings.Contains(err.Error(), "refused address 127.0.0.1: loopback") {
			t.Errorf("%s: dial error %q does not say why", network, err)
		}
	}

	// Unguarded, the same listener is reachable: the test is not passing
	// for another reason.
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("unguarded dial: %v", err)
	}
	conn.Close()
	deadline := time.Now().Add(2 * time.Second)
	for accepted.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("the listener accepted %d connections, want only the unguarded one", n)
	}
}

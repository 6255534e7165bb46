// Package netguard keeps the hub's own outgoing connections, made on a
// tenant's behalf (webhooks, service checks), away from the hub's own
// network: loopback, private and link-local addresses, cloud metadata
// endpoints (169.254.169.254, fd00:ec2::254) and the other special-purpose
// ranges of the IANA registries. It is a guard against server-side request
// forgery (SSRF).
//
// Refused judges one address. Control is a net.Dialer Control function that
// judges the address actually being dialled, after DNS resolution, so a
// name that resolves (or rebinds) to a refused address is refused too. A
// check made only before resolving would not be.
//
// Probes run on an appliance, in the customer's own network, must reach
// private addresses: they are not guarded. Only the callers that ask for it
// (the hub) are.
package netguard

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
)

// RefusedError is the error for an address the guard refuses.
type RefusedError struct {
	// Addr is the refused address; it is invalid when the address being
	// dialled could not be parsed (Reason then quotes it).
	Addr netip.Addr
	// Reason names the refused range, e.g. "loopback address 127.0.0.0/8
	// (RFC 1122)".
	Reason string
}

// Error names the address and why it is refused, e.g. "refused address
// 127.0.0.1: loopback address 127.0.0.0/8 (RFC 1122)".
func (e *RefusedError) Error() string {
	if !e.Addr.IsValid() {
		return "refused address: " + e.Reason
	}
	return "refused address " + e.Addr.String() + ": " + e.Reason
}

// Check returns a *RefusedError when Refused refuses ip, else nil. It has
// the signature of probe.WithAddrPolicy's check.
func Check(ip netip.Addr) error {
	if reason, bad := Refused(ip); bad {
		return &RefusedError{Addr: ip, Reason: reason}
	}
	return nil
}

// Control is a net.Dialer Control (and gosnmp Control) function: it returns
// a *RefusedError for an address Refused refuses, so the connection is
// never made. address is what the dialer passes, "ip:port" (or an IP
// address alone); anything else is refused, failing closed.
func Control(_, address string, _ syscall.RawConn) error {
	ip, err := parseDialAddr(address)
	if err != nil {
		return &RefusedError{Reason: err.Error()}
	}
	return Check(ip)
}

// parseDialAddr returns the IP address of address, "ip:port", "[ip]:port"
// or an IP address alone.
func parseDialAddr(address string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(address); err == nil {
		return ap.Addr(), nil
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(address, "["), "]")); err == nil {
		return ip, nil
	}
	return netip.Addr{}, fmt.Errorf("%q is not an IP address (and port), so it cannot be checked", address)
}

// The allowlist: an address is allowed only if it is a
// global unicast address (netip.Addr.IsGlobalUnicast), an IPv6 address lies
// in the global unicast space 2000::/3, and it is in none of the ranges of
// refusedRanges. Addresses that embed an IPv4 address a gateway or relay
// would connect to (IPv4-mapped, NAT64, 6to4) are judged by that IPv4
// address.

// specialRange is a range of the IANA IPv4 or IPv6 Special-Purpose Address
// Registry (RFC 6890) that is not globally reachable, or otherwise unfit as
// a destination the hub connects to on a tenant's behalf.
type specialRange struct {
	prefix netip.Prefix
	reason string // names the range
}

// refuse returns the entry for prefix; the reason reads "<what> <prefix>
// (<source>)", e.g. "loopback address 127.0.0.0/8 (RFC 1122)".
func refuse(prefix, what, source string) specialRange {
	p := netip.MustParsePrefix(prefix)
	return specialRange{prefix: p, reason: what + " " + p.String() + " (" + source + ")"}
}

// refusedRanges is searched in order; the first match gives the reason, so a
// narrower range comes before a wider one that contains it.
var refusedRanges = []specialRange{
	// IPv4 Special-Purpose Address Registry.
	refuse("0.0.0.0/8", "\"this network\" address", "RFC 791 and RFC 1122; Linux connects it to the local host"),
	refuse("10.0.0.0/8", "private address", "RFC 1918"),
	refuse("100.64.0.0/10", "carrier-grade NAT shared address", "RFC 6598"),
	refuse("127.0.0.0/8", "loopback address", "RFC 1122"),
	refuse("169.254.0.0/16", "link-local address", "RFC 3927; includes cloud metadata endpoints"),
	refuse("172.16.0.0/12", "private address", "RFC 1918"),
	// Refused whole, although 192.0.0.9/32 and 192.0.0.10/32 (PCP and TURN
	// anycast) are globally reachable: neither is a destination for the hub.
	refuse("192.0.0.0/24", "IETF protocol assignment", "RFC 6890; includes DS-Lite 192.0.0.0/29, RFC 7335"),
	refuse("192.0.2.0/24", "documentation address TEST-NET-1", "RFC 5737"),
	refuse("192.88.99.0/24", "deprecated 6to4 relay anycast address", "RFC 7526"),
	refuse("192.168.0.0/16", "private address", "RFC 1918"),
	refuse("198.18.0.0/15", "benchmarking address", "RFC 2544"),
	refuse("198.51.100.0/24", "documentation address TEST-NET-2", "RFC 5737"),
	refuse("203.0.113.0/24", "documentation address TEST-NET-3", "RFC 5737"),
	refuse("224.0.0.0/4", "multicast address", "RFC 5771"),
	refuse("255.255.255.255/32", "limited broadcast address", "RFC 919 and RFC 8190"),
	refuse("240.0.0.0/4", "reserved address", "RFC 1112"),

	// IPv6 Special-Purpose Address Registry. ::ffff:0:0/96 (IPv4-mapped,
	// RFC 4291), 64:ff9b::/96 and 64:ff9b:1::/48 (NAT64, RFC 6052 and RFC
	// 8215) and 2002::/16 (6to4, RFC 3056) are judged by their embedded IPv4
	// address in Refused before this table is searched.
	refuse("::/128", "unspecified address", "RFC 4291"),
	refuse("::1/128", "loopback address", "RFC 4291"),
	refuse("::/96", "deprecated IPv4-compatible address", "RFC 4291 section 2.5.5.1"),
	refuse("100::/64", "discard-only address", "RFC 6666"),
	// Refused whole, including Teredo 2001::/32 (RFC 4380), whose relays
	// reach an IPv4 address hidden in the address; the few globally
	// reachable assignments in it (anycast services, ORCHIDv2 2001:20::/28,
	// RFC 7343) are no destinations for the hub.
	refuse("2001::/23", "IETF protocol assignment", "RFC 2928; includes Teredo 2001::/32, RFC 4380"),
	refuse("2001:db8::/32", "documentation address", "RFC 3849"),
	refuse("3fff::/20", "documentation address", "RFC 9637"),
	refuse("5f00::/16", "segment routing (SRv6) SID", "RFC 9602"),
	refuse("fc00::/7", "unique local (private) address", "RFC 4193; includes cloud metadata endpoints"),
	refuse("fe80::/10", "link-local address", "RFC 4291"),
	refuse("fec0::/10", "deprecated site-local address", "RFC 3879"),
	refuse("ff00::/8", "multicast address", "RFC 4291"),
}

var (
	// globalUnicast6 is the IPv6 global unicast space (RFC 4291, IANA IPv6
	// Address Space registry); the rest of the IPv6 space is reserved by
	// the IETF or special-purpose.
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	// nat64 is the well-known NAT64 prefix (RFC 6052), whose last 32 bits
	// are an IPv4 address a NAT64 gateway would connect to.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
	// nat64Local is the local-use NAT64 prefix (RFC 8215). An operator may
	// carve NAT64 prefixes of any RFC 6052 length out of it, so the IPv4
	// address may sit at several places; only the unambiguous /96 form
	// 64:ff9b:1::a.b.c.d is judged by its last 32 bits, the rest is refused.
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	// sixToFour is the 6to4 prefix (RFC 3056): bits 16-47 are the IPv4
	// address of the relay the traffic is tunnelled to.
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Refused reports whether the guard refuses ip, and why: reason names the
// range, e.g. "loopback address 127.0.0.0/8 (RFC 1122)", and is empty when
// ip is allowed. A zone is ignored; an invalid address is refused.
func Refused(ip netip.Addr) (reason string, refused bool) {
	ip = ip.WithZone("")
	if !ip.IsValid() {
		return "invalid address", true
	}
	b := ip.As16()
	switch {
	case ip.Is4In6():
		return embeddedReason("IPv4-mapped address ::ffff:0:0/96", ip.Unmap())
	case nat64.Contains(ip):
		return embeddedReason("NAT64 address 64:ff9b::/96", netip.AddrFrom4([4]byte(b[12:])))
	case nat64Local.Contains(ip):
		for _, x := range b[6:12] {
			if x != 0 {
				return "local-use NAT64 address 64:ff9b:1::/48 (RFC 8215) whose embedded IPv4 address is ambiguous; only 64:ff9b:1::/96 is judged by its last 32 bits", true
			}
		}
		return embeddedReason("local-use NAT64 address 64:ff9b:1::/48", netip.AddrFrom4([4]byte(b[12:])))
	case sixToFour.Contains(ip):
		return embeddedReason("6to4 address 2002::/16", netip.AddrFrom4([4]byte(b[2:6])))
	}
	for _, r := range refusedRanges {
		if r.prefix.Contains(ip) {
			return r.reason, true
		}
	}
	if ip.Is6() && !globalUnicast6.Contains(ip) {
		return "IPv6 address outside the global unicast space 2000::/3 (RFC 4291), reserved by the IETF", true
	}
	if !ip.IsGlobalUnicast() {
		return "not a global unicast address", true
	}
	return "", false
}

// embeddedReason judges an address by the IPv4 address v4 it embeds, which a
// translator or relay would connect to.
func embeddedReason(kind string, v4 netip.Addr) (string, bool) {
	if reason, bad := Refused(v4); bad {
		return kind + " of " + v4.String() + ": " + reason, true
	}
	return "", false
}

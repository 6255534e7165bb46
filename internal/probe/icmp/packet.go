package icmpprobe

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// ICMP message types the probe sends and understands (RFC 792, RFC 4443).
const (
	v4EchoReply      = 0
	v4DestUnreach    = 3
	v4Echo           = 8
	v4TimeExceeded   = 11
	v4ParamProblem   = 12
	v6DestUnreach    = 1
	v6PacketTooBig   = 2
	v6TimeExceeded   = 3
	v6ParamProblem   = 4
	v6Echo           = 128
	v6EchoReply      = 129
	protoICMP        = 1
	protoICMPv6      = 58
	icmpHeaderLen    = 8
	ipv4MinHeaderLen = 20
	ipv6HeaderLen    = 40
	// tokenLen is how many payload bytes carry the echo's token.
	tokenLen = 8
)

// message is what parse found in one received ICMP packet: an echo reply,
// or an error about an echo request (destination unreachable, time
// exceeded…) quoting the request's header.
type message struct {
	isError bool
	// id and seq are the echo's, from the reply or from the request the
	// error quotes.
	id, seq uint16
	// data is the echo reply's payload.
	data []byte
	// dst is, for an error, the destination of the quoted request.
	dst netip.Addr
	// reason says, for an error, what went wrong, e.g. "host unreachable".
	reason string
}

// parse reads one received packet. b starts with the IPv4 header for raw
// IPv4 sockets (Linux hands it to raw sockets, and ReadBatch does not strip
// it) and with the ICMP header otherwise. truncated means the packet was
// longer than b, so its checksum cannot be checked. ok is false for
// anything that is neither an echo reply nor an error quoting an echo
// request: the probe ignores those.
func parse(b []byte, v6, raw, truncated bool) (m message, ok bool) {
	if !v6 && raw {
		if len(b) < ipv4MinHeaderLen || b[0]>>4 != 4 || b[9] != protoICMP {
			return m, false
		}
		hl := int(b[0]&0x0f) * 4
		if hl < ipv4MinHeaderLen || len(b) < hl {
			return m, false
		}
		if total := int(binary.BigEndian.Uint16(b[2:4])); total >= hl && total < len(b) {
			b = b[:total] // drop link-layer padding
		}
		b = b[hl:]
		// Linux hands raw sockets what arrives before it checks the ICMP
		// checksum (it does check ICMPv6 checksums for raw sockets, and
		// datagram sockets only get valid packets).
		if !truncated && len(b) >= icmpHeaderLen && checksum(b) != 0 {
			return m, false
		}
	}
	if len(b) < icmpHeaderLen {
		return m, false
	}
	typ, code := b[0], b[1]
	if v6 {
		switch typ {
		case v6EchoReply:
			return echoReply(b), true
		case v6DestUnreach, v6PacketTooBig, v6TimeExceeded, v6ParamProblem:
			return quotedV6(b[icmpHeaderLen:], reasonV6(typ, code, binary.BigEndian.Uint32(b[4:8])))
		}
		return m, false
	}
	switch typ {
	case v4EchoReply:
		return echoReply(b), true
	case v4DestUnreach, v4TimeExceeded, v4ParamProblem:
		return quotedV4(b[icmpHeaderLen:], reasonV4(typ, code))
	}
	return m, false
}

func echoReply(b []byte) message {
	return message{
		id:   binary.BigEndian.Uint16(b[4:6]),
		seq:  binary.BigEndian.Uint16(b[6:8]),
		data: b[icmpHeaderLen:],
	}
}

// quotedV4 reads the IPv4 header and the first 8 bytes of the echo request
// an ICMP error quotes (RFC 792 asks for those 8 bytes at least).
func quotedV4(q []byte, reason string) (message, bool) {
	if len(q) < ipv4MinHeaderLen || q[0]>>4 != 4 || q[9] != protoICMP {
		return message{}, false
	}
	hl := int(q[0]&0x0f) * 4
	if hl < ipv4MinHeaderLen || len(q) < hl+icmpHeaderLen || q[hl] != v4Echo {
		return message{}, false
	}
	dst := netip.AddrFrom4([4]byte(q[16:20]))
	return quotedEcho(q[hl:], dst, reason), true
}

// quotedV6 reads the IPv6 header and the echo request header an ICMPv6
// error quotes. A request the probe sent has no extension headers.
func quotedV6(q []byte, reason string) (message, bool) {
	if len(q) < ipv6HeaderLen+icmpHeaderLen || q[0]>>4 != 6 || q[6] != protoICMPv6 || q[ipv6HeaderLen] != v6Echo {
		return message{}, false
	}
	dst := netip.AddrFrom16([16]byte(q[24:40]))
	return quotedEcho(q[ipv6HeaderLen:], dst, reason), true
}

func quotedEcho(h []byte, dst netip.Addr, reason string) message {
	return message{
		isError: true,
		id:      binary.BigEndian.Uint16(h[4:6]),
		seq:     binary.BigEndian.Uint16(h[6:8]),
		dst:     dst.Unmap(),
		reason:  reason,
	}
}

// reasonV4 names an ICMP error (RFC 792, RFC 1812).
func reasonV4(typ, code byte) string {
	switch typ {
	case v4DestUnreach:
		switch code {
		case 0, 6:
			return "network unreachable"
		case 1, 7:
			return "host unreachable"
		case 2:
			return "protocol unreachable"
		case 3:
			return "port unreachable"
		case 4:
			return "fragmentation needed"
		case 5:
			return "source route failed"
		case 9, 10, 13:
			return "communication administratively prohibited"
		case 11, 12:
			return "unreachable for the type of service"
		}
		return "destination unreachable (code " + strconv.Itoa(int(code)) + ")"
	case v4TimeExceeded:
		if code == 1 {
			return "fragment reassembly time exceeded"
		}
		return "time to live exceeded"
	}
	return "parameter problem"
}

// reasonV6 names an ICMPv6 error (RFC 4443); rest is the 32 bits after
// the checksum (the MTU of a packet too big).
func reasonV6(typ, code byte, rest uint32) string {
	switch typ {
	case v6DestUnreach:
		switch code {
		case 0:
			return "no route to destination"
		case 1:
			return "communication administratively prohibited"
		case 2:
			return "beyond scope of source address"
		case 3:
			return "address unreachable"
		case 4:
			return "port unreachable"
		case 5:
			return "source address failed ingress/egress policy"
		case 6:
			return "reject route to destination"
		}
		return "destination unreachable (code " + strconv.Itoa(int(code)) + ")"
	case v6PacketTooBig:
		return "packet too big (MTU " + strconv.FormatUint(uint64(rest), 10) + ")"
	case v6TimeExceeded:
		if code == 1 {
			return "fragment reassembly time exceeded"
		}
		return "hop limit exceeded"
	}
	return "parameter problem"
}

// newEcho returns an echo request with size payload bytes, its identifier,
// sequence number, token and checksum still to be filled by setEcho. The
// payload after the token is a fixed pattern, as ping's.
func newEcho(v6 bool, size int) []byte {
	b := make([]byte, icmpHeaderLen+size)
	b[0] = v4Echo
	if v6 {
		b[0] = v6Echo
	}
	for i := icmpHeaderLen + tokenLen; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

// setEcho fills in an echo request made by newEcho. The kernel computes
// ICMPv6 checksums (they cover the IPv6 pseudo-header); IPv4 ones are
// ours to compute.
func setEcho(b []byte, v6 bool, id, seq uint16, token uint64) {
	binary.BigEndian.PutUint16(b[4:6], id)
	binary.BigEndian.PutUint16(b[6:8], seq)
	var t [tokenLen]byte
	binary.BigEndian.PutUint64(t[:], token)
	copy(b[icmpHeaderLen:], t[:])
	b[2], b[3] = 0, 0
	if !v6 {
		binary.BigEndian.PutUint16(b[2:4], checksum(b))
	}
}

// tokenMatches reports whether an echo reply's payload carries token, as
// far as a payload of size bytes can carry it.
func tokenMatches(data []byte, token uint64, size int) bool {
	n := min(size, tokenLen)
	if len(data) < n {
		return false
	}
	var t [tokenLen]byte
	binary.BigEndian.PutUint64(t[:], token)
	return string(data[:n]) == string(t[:n])
}

// checksum is the Internet checksum (RFC 1071) of b. Over a message that
// carries its checksum, it is 0 when the checksum is right.
func checksum(b []byte) uint16 {
	var sum uint32
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

//go:build !linux

package icmpprobe

import "net"

// oobSize is 0: no receive timestamps here.
const oobSize = 0

// tune asks for a receive buffer of n bytes and returns 0: the size
// granted is not known here.
func tune(c net.PacketConn, n int) int {
	if b, ok := c.(interface{ SetReadBuffer(int) error }); ok {
		_ = b.SetReadBuffer(n)
	}
	return 0
}

// kernelTime reports no receive timestamp: round-trip times end when the
// reader gets to a packet.
func kernelTime([]byte) (int64, bool) { return 0, false }

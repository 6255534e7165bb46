package icmpprobe

import (
	"encoding/binary"
	"net"
	"syscall"
)

// oobSize is the room for the kernel's receive timestamp of a packet.
const oobSize = 64

// tune asks for a receive buffer of n bytes (past the net.core.rmem_max
// limit when the process may, with CAP_NET_ADMIN; else up to it) and for a
// kernel timestamp on every packet received. It returns the buffer size
// the kernel granted (which counts its own overhead: about twice what was
// asked), 0 when unknown.
func tune(c net.PacketConn, n int) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	got := 0
	_ = rc.Control(func(fd uintptr) {
		s := int(fd)
		if syscall.SetsockoptInt(s, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n) != nil {
			_ = syscall.SetsockoptInt(s, syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}
		got, _ = syscall.GetsockoptInt(s, syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		// Without timestamps, round-trip times are taken when the
		// reader gets to a packet: still right, a little longer.
		_ = syscall.SetsockoptInt(s, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	})
	return got
}

// kernelTime returns when the kernel received a packet, in Unix
// nanoseconds, from the packet's control messages.
func kernelTime(oob []byte) (int64, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level != syscall.SOL_SOCKET || m.Header.Type != syscall.SCM_TIMESTAMPNS {
			continue
		}
		// struct timespec, laid out as syscall.Timespec on every
		// platform (32-bit fields on 32-bit ones).
		var ts syscall.Timespec
		if _, err := binary.Decode(m.Data, binary.NativeEndian, &ts); err == nil {
			return ts.Nano(), true
		}
	}
	return 0, false
}

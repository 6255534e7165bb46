package icmpprobe

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	xicmp "golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

const (
	// readBatch is how many packets the reader takes per system call
	// (recvmmsg on Linux) when replies queue up.
	readBatch = 32
	// readBufSize bounds what the reader keeps of one packet. Longer
	// replies (a large "size") are cut: the header and the token at the
	// start of the payload are all the probe looks at.
	readBufSize = 2048
	// socketBuffer is the receive buffer asked for: thousands of replies
	// that arrive together (checks started at the same moment) wait there
	// for the reader instead of being dropped. The kernel's default,
	// about 200 KiB, holds a few hundred.
	socketBuffer = 4 << 20
)

// errTooManyInFlight is returned when all 65,536 sequence numbers of a
// socket are waiting for replies.
var errTooManyInFlight = errors.New("65536 echo requests already waiting for a reply")

// socket is one ICMP socket of one address family, shared by every run to
// every target of that family. One reader goroutine hands each reply to the
// run waiting for it, by sequence number.
type socket struct {
	v6  bool
	raw bool
	// conn is nil in tests that feed handle directly.
	conn *xicmp.PacketConn
	read func([]ipv4.Message) (int, error)
	// buffer is the receive buffer the kernel granted, in bytes (0:
	// unknown).
	buffer int
	log    *slog.Logger
	base   time.Time // now() counts from here, on the monotonic clock
	done   chan struct{}
	// id is the identifier of the echo requests on a raw socket. On a
	// datagram socket the kernel replaces it with the socket's own and
	// delivers only the replies that carry it.
	id uint16
	// key is mixed into every token, so replies to an earlier socket or to
	// another process cannot pass for ours.
	key uint64

	sendMu sync.Mutex

	mu      sync.Mutex
	pending map[uint16]*echo
	nextSeq uint16
	tokens  uint64
	closed  bool
}

// echo is one echo request waiting for its reply.
type echo struct {
	run   *run
	index int
	dst   netip.Addr
	token uint64
	// sent is when it was sent, in nanoseconds of socket.now.
	sent atomic.Int64
}

// run is one check run: the echoes it sent get their answers through
// replies, which holds one slot per echo so the reader never blocks.
type run struct {
	size    int
	replies chan answer
}

// answer is what came back for echo index: a reply after rtt, or an ICMP
// error about it.
type answer struct {
	index  int
	rtt    time.Duration
	reason string // non-empty for an ICMP error
}

// openSocket opens the ICMP socket of one family: a datagram ("ping")
// socket, or a raw one.
func openSocket(v6, raw bool, log *slog.Logger) (*socket, error) {
	network, addr := "udp4", "0.0.0.0"
	switch {
	case v6 && raw:
		network, addr = "ip6:ipv6-icmp", "::"
	case v6:
		network, addr = "udp6", "::"
	case raw:
		network = "ip4:icmp"
	}
	c, err := xicmp.ListenPacket(network, addr)
	if err != nil {
		return nil, err
	}
	s := newSocket(v6, raw, log)
	s.conn = c
	if v6 {
		p := c.IPv6PacketConn()
		// p.PacketConn is the connection ListenPacket opened (a field
		// x/net's PacketConn promotes): socket options are set on it.
		s.buffer = tune(p.PacketConn, socketBuffer)
		if raw {
			// A raw socket sees every ICMPv6 packet the host receives;
			// the kernel drops what the probe does not read (our own
			// echo requests to ::1 among them).
			var f ipv6.ICMPFilter
			f.SetAll(true)
			for _, t := range []ipv6.ICMPType{ipv6.ICMPTypeEchoReply, ipv6.ICMPTypeDestinationUnreachable,
				ipv6.ICMPTypePacketTooBig, ipv6.ICMPTypeTimeExceeded, ipv6.ICMPTypeParameterProblem} {
				f.Accept(t)
			}
			if err := p.SetICMPFilter(&f); err != nil {
				log.Warn("icmp: cannot filter the raw IPv6 socket; it reads every ICMPv6 packet", "err", err)
			}
		}
		s.read = func(ms []ipv4.Message) (int, error) { return p.ReadBatch(ms, 0) }
	} else {
		p := c.IPv4PacketConn()
		s.buffer = tune(p.PacketConn, socketBuffer)
		if raw {
			var f ipv4.ICMPFilter
			f.SetAll(true)
			for _, t := range []ipv4.ICMPType{ipv4.ICMPTypeEchoReply, ipv4.ICMPTypeDestinationUnreachable,
				ipv4.ICMPTypeTimeExceeded, ipv4.ICMPTypeParameterProblem} {
				f.Accept(t)
			}
			if err := p.SetICMPFilter(&f); err != nil {
				log.Warn("icmp: cannot filter the raw IPv4 socket; it reads every ICMP packet", "err", err)
			}
		}
		s.read = func(ms []ipv4.Message) (int, error) { return p.ReadBatch(ms, 0) }
	}
	go s.readLoop()
	return s, nil
}

// newSocket returns a socket with no connection yet.
func newSocket(v6, raw bool, log *slog.Logger) *socket {
	var r [10]byte
	_, _ = rand.Read(r[:]) // never fails (crypto/rand panics rather)
	return &socket{
		v6:      v6,
		raw:     raw,
		log:     log,
		base:    time.Now(),
		done:    make(chan struct{}),
		id:      binary.BigEndian.Uint16(r[0:2]),
		key:     binary.BigEndian.Uint64(r[2:10]),
		pending: make(map[uint16]*echo),
		nextSeq: binary.BigEndian.Uint16(r[0:2]) ^ 0x5a5a,
	}
}

// kind names the socket for logs and messages.
func (s *socket) kind() string {
	fam := "IPv4"
	if s.v6 {
		fam = "IPv6"
	}
	if s.raw {
		return "raw " + fam
	}
	return "datagram " + fam
}

// now is the time on the socket's monotonic clock, in nanoseconds.
func (s *socket) now() int64 { return int64(time.Since(s.base)) }

// close closes the connection, waits for the reader to stop, and ends
// every run still waiting: their echoes are lost.
func (s *socket) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	var err error
	if s.conn != nil {
		err = s.conn.Close()
		<-s.done
	}
	s.mu.Lock()
	for seq, e := range s.pending {
		delete(s.pending, seq)
		e.run.deliver(answer{index: e.index, reason: ErrClosed.Error()})
	}
	s.mu.Unlock()
	return err
}

// send registers echo index of r, sends it to dst and returns its
// sequence number. pkt is r's request, made by newEcho; to is dst as the
// connection wants it.
func (s *socket) send(r *run, index int, dst netip.Addr, to net.Addr, pkt []byte) (uint16, error) {
	seq, e, err := s.register(r, index, dst)
	if err != nil {
		return 0, err
	}
	setEcho(pkt, s.v6, s.id, seq, e.token)
	// Writes to one socket take turns anyway; taking turns here, before
	// the clock is read, keeps the wait out of the round-trip time.
	s.sendMu.Lock()
	e.sent.Store(s.now())
	_, err = s.conn.WriteTo(pkt, to)
	s.sendMu.Unlock()
	if err != nil {
		s.forget(seq, e)
		return 0, err
	}
	return seq, nil
}

// register files echo index of r under a free sequence number, with a new
// token, before it is sent: its reply may come before WriteTo returns.
func (s *socket) register(r *run, index int, dst netip.Addr) (uint16, *echo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, nil, ErrClosed
	}
	seq, ok := s.allocSeq()
	if !ok {
		return 0, nil, errTooManyInFlight
	}
	s.tokens++
	e := &echo{run: r, index: index, dst: dst, token: s.key ^ s.tokens}
	s.pending[seq] = e
	return seq, e, nil
}

// allocSeq returns the next sequence number no echo in flight holds. The
// numbers go round all 65,536 values, so a late reply to an echo that was
// given up on rarely finds its number taken again (and then its token
// does not match).
func (s *socket) allocSeq() (uint16, bool) {
	if len(s.pending) >= 1<<16 {
		return 0, false
	}
	for {
		seq := s.nextSeq
		s.nextSeq++
		if _, used := s.pending[seq]; !used {
			return seq, true
		}
	}
}

// forget drops echo e, sent under seq, if it is still waiting.
func (s *socket) forget(seq uint16, e *echo) {
	s.mu.Lock()
	if s.pending[seq] == e {
		delete(s.pending, seq)
	}
	s.mu.Unlock()
}

// forgetRun drops every echo of r still waiting: the run is over, and a
// reply that comes later is ignored.
func (s *socket) forgetRun(r *run, seqs []uint16) {
	s.mu.Lock()
	for _, seq := range seqs {
		if e := s.pending[seq]; e != nil && e.run == r {
			delete(s.pending, seq)
		}
	}
	s.mu.Unlock()
}

// inFlight returns how many echoes wait for a reply.
func (s *socket) inFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// readLoop reads packets until the connection is closed and hands each to
// handle.
func (s *socket) readLoop() {
	defer close(s.done)
	ms := make([]ipv4.Message, readBatch)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, readBufSize)}
		ms[i].OOB = make([]byte, oobSize)
	}
	var lastWarn time.Time
	for {
		n, err := s.read(ms)
		t := time.Now()
		now, wall := int64(t.Sub(s.base)), t.UnixNano()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A socket error (e.g. one the kernel queued for an
			// earlier packet) is not the end of the socket. Warn at
			// most once a minute, and do not spin.
			if time.Since(lastWarn) > time.Minute {
				s.log.Warn("icmp: reading from the socket", "socket", s.kind(), "err", err)
				lastWarn = time.Now()
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for i := range ms[:n] {
			m := &ms[i]
			// A reply's time is when the kernel received it, if it
			// says: the reader may get to it later on a busy machine.
			at := now
			if k, ok := kernelTime(m.OOB[:m.NN]); ok {
				if queued := wall - k; queued >= 0 && queued < int64(time.Minute) {
					at = now - queued
				}
			}
			s.handle(m.Buffers[0][:m.N], addrOf(m.Addr), m.N == readBufSize, at)
		}
	}
}

// addrOf returns the IP address of a packet's source.
func addrOf(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		return netip.Addr{}
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// handle matches one received packet, from src and read at now, with the
// echo it answers, and hands the answer to that echo's run. Anything else
// (replies to other processes' pings on a raw socket, late replies, forged
// or mangled packets) is ignored.
func (s *socket) handle(b []byte, src netip.Addr, truncated bool, now int64) {
	m, ok := parse(b, s.v6, s.raw, truncated)
	if !ok || (s.raw && m.id != s.id) {
		return
	}
	s.mu.Lock()
	e := s.pending[m.seq]
	switch {
	case e == nil:
		s.mu.Unlock()
		return
	case m.isError:
		// The error comes from a router, not from the target: the
		// quoted request must have been sent to the target.
		if e.dst.WithZone("") != m.dst {
			s.mu.Unlock()
			return
		}
	case e.dst.WithZone("") != src || !tokenMatches(m.data, e.token, e.run.size):
		s.mu.Unlock()
		return
	}
	delete(s.pending, m.seq)
	s.mu.Unlock()

	if m.isError {
		e.run.deliver(answer{index: e.index, reason: fmt.Sprintf("%s (from %s)", m.reason, src)})
		return
	}
	e.run.deliver(answer{index: e.index, rtt: time.Duration(max(now-e.sent.Load(), 0))})
}

// deliver hands an answer to the run. The channel has room for one answer
// per echo and an echo is answered once, so this never blocks; the select
// is a safety net.
func (r *run) deliver(a answer) {
	select {
	case r.replies <- a:
	default:
	}
}

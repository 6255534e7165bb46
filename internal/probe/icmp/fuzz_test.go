package icmpprobe

import (
	"net/netip"
	"testing"
)

// FuzzParse feeds arbitrary packets to the parser and to the reader's
// dispatch, on every kind of socket, with echoes in flight: nothing may
// panic, and only a packet that carries an echo's sequence number and
// token, from its destination, or an error quoting it, may answer it.
func FuzzParse(f *testing.F) {
	payload := []byte("0123456789abcdef")
	for _, seed := range [][]byte{
		reply(false, 7, 9, payload),
		withIPv4(v4Src, reply(false, 7, 9, payload)),
		icmpError(false, v4DestUnreach, 1, v4Src, 7, 9),
		withIPv4(v4Rtr, icmpError(false, v4TimeExceeded, 0, v4Src, 7, 9)),
		reply(true, 7, 9, payload),
		icmpError(true, v6PacketTooBig, 0, v6Src, 7, 9),
		{0x45}, {0x4f, 0, 0, 0, 0, 0, 0, 0, 0, 1}, nil,
	} {
		f.Add(seed, uint8(0))
		f.Add(seed, uint8(3))
	}
	f.Fuzz(func(t *testing.T, b []byte, kind uint8) {
		v6, raw, truncated := kind&1 != 0, kind&2 != 0, kind&4 != 0
		m, ok := parse(b, v6, raw, truncated)
		if ok && !m.isError && len(m.data) > len(b) {
			t.Fatalf("payload of %d bytes from a %d-byte packet", len(m.data), len(b))
		}
		s := newSocket(v6, raw, nil)
		dst := v4Src
		if v6 {
			dst = v6Src
		}
		r := &run{size: 56, replies: make(chan answer, 1)}
		seq, e, err := s.register(r, 0, dst)
		if err != nil {
			t.Fatal(err)
		}
		for _, src := range []netip.Addr{dst, v4Rtr, {}} {
			s.handle(b, src, truncated, s.now())
		}
		select {
		case a := <-r.replies:
			if !ok || m.seq != seq || (raw && m.id != s.id) {
				t.Fatalf("answer %+v from a packet that is not about seq %d: %+v (ok %v)", a, seq, m, ok)
			}
			if a.reason == "" && !tokenMatches(m.data, e.token, r.size) {
				t.Fatalf("a reply without the token was taken: %+v", m)
			}
		default:
		}
	})
}

package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// TestSpecExample reproduces INFRASONAR-WIRE.md §1's example byte for byte.
func TestSpecExample(t *testing.T) {
	body, err := MarshalProbeAnnounce(ProbeAnnounce{Name: "ping", Version: "3.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	wantBody := unhex(t, "92 a4 70696e67 a5 332e302e30")
	if !bytes.Equal(body, wantBody) {
		t.Fatalf("body % x, want % x", body, wantBody)
	}
	p := Packet{PID: 1, Type: TypeAnnounce, Body: body}
	want := unhex(t, "0000000000000000 0c000000 0100 01 fe"+"92 a4 70696e67 a5 332e302e30")
	if got := AppendPacket(nil, p); !bytes.Equal(got, want) {
		t.Fatalf("packet\n% x, want\n% x", got, want)
	}
	var buf bytes.Buffer
	if err := WritePacket(&buf, p); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("WritePacket wrote\n% x, want\n% x", buf.Bytes(), want)
	}
	got, err := ReadPacket(bytes.NewReader(want), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Errorf("ReadPacket = %+v, want %+v", got, p)
	}
	a, err := UnmarshalProbeAnnounce(got.Body)
	if err != nil || a != (ProbeAnnounce{Name: "ping", Version: "3.0.0"}) {
		t.Errorf("UnmarshalProbeAnnounce = %+v, %v", a, err)
	}
}

func TestReadPacket(t *testing.T) {
	hdr := func(partID uint64, length int, pid uint16, tp Type) []byte {
		return AppendHeader(nil, partID, length, pid, tp)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	badCheckbit := hdr(0, 2, 7, TypeOK)
	badCheckbit[15] = 0x00 // 0x1e for TypeOK
	tests := []struct {
		name    string
		in      []byte
		maxBody int
		want    Packet
		err     error  // errors.Is target, nil for success
		msg     string // exact error message, when set
	}{
		{name: "ok with empty body", in: cat(hdr(0, 2, 65535, TypeOK), EmptyBody),
			want: Packet{PID: 65535, Type: TypeOK, Body: EmptyBody}},
		{name: "data with part id", in: cat(hdr(0x0102030405060708, 3, 9, TypeData), []byte{0x81, 0xa0, 0xc0}),
			want: Packet{PartID: 0x0102030405060708, PID: 9, Type: TypeData, Body: []byte{0x81, 0xa0, 0xc0}}},
		{name: "zero-length body", in: hdr(0, 0, 1, TypeInfo),
			want: Packet{PID: 1, Type: TypeInfo, Body: []byte{}}},
		{name: "unknown type is framed all the same", in: cat(hdr(0, 1, 1, Type(0x42)), []byte{0xc0}),
			want: Packet{PID: 1, Type: Type(0x42), Body: []byte{0xc0}}},
		{name: "body at the limit", in: cat(hdr(0, 4, 1, TypeData), []byte{1, 2, 3, 4}), maxBody: 4,
			want: Packet{PID: 1, Type: TypeData, Body: []byte{1, 2, 3, 4}}},
		{name: "clean end of stream", in: nil, err: io.EOF, msg: "EOF"},
		{name: "stream ends in the header", in: hdr(0, 2, 1, TypeOK)[:9], err: io.ErrUnexpectedEOF,
			msg: "reading packet header: unexpected EOF"},
		{name: "stream ends in the body", in: cat(hdr(0, 4, 1, TypeData), []byte{1, 2}), err: io.ErrUnexpectedEOF,
			msg: "reading the 4-byte body of a data packet: unexpected EOF"},
		{name: "stream ends before the body", in: hdr(0, 4, 1, TypeData), err: io.ErrUnexpectedEOF,
			msg: "reading the 4-byte body of a data packet: unexpected EOF"},
		{name: "checkbit mismatch", in: cat(badCheckbit, EmptyBody), err: ErrCheckbit,
			msg: "packet header checkbit mismatch: type 0xe1, checkbit 0x00 (want 0x1e)"},
		{name: "body over the limit", in: cat(hdr(0, 5, 1, TypeData), []byte{1, 2, 3, 4, 5}), maxBody: 4, err: ErrTooLarge,
			msg: "packet body too large: data packet of 5 bytes, more than the limit of 4"},
		{name: "default limit", in: hdr(0, DefaultMaxBody+1, 1, TypeData), err: ErrTooLarge,
			msg: "packet body too large: data packet of 500001 bytes, more than the limit of 500000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, read := range []struct {
				name string
				fn   func(io.Reader) (Packet, error)
			}{
				{"ReadPacket", func(r io.Reader) (Packet, error) { return ReadPacket(r, tc.maxBody) }},
				{"Reader", func(r io.Reader) (Packet, error) { return NewReader(r, tc.maxBody).ReadPacket() }},
			} {
				got, err := read.fn(bytes.NewReader(tc.in))
				if tc.err == nil {
					if err != nil {
						t.Fatalf("%s: %v", read.name, err)
					}
					if !reflect.DeepEqual(got, tc.want) {
						t.Errorf("%s = %+v, want %+v", read.name, got, tc.want)
					}
					continue
				}
				if !errors.Is(err, tc.err) {
					t.Fatalf("%s: error %v, want %v", read.name, err, tc.err)
				}
				if tc.msg != "" && err.Error() != tc.msg {
					t.Errorf("%s: error %q, want %q", read.name, err, tc.msg)
				}
				if !reflect.DeepEqual(got, Packet{}) {
					t.Errorf("%s: packet %+v returned with the error", read.name, got)
				}
			}
		})
	}
}

// TestReadPacketTooLargeAllocatesNothing checks that a header announcing a
// 4 GiB body is refused before anything is allocated for it.
func TestReadPacketTooLargeAllocatesNothing(t *testing.T) {
	in := AppendHeader(nil, 0, 1<<32-1, 1, TypeData)
	r := bytes.NewReader(in)
	pr := NewReader(r, 1<<20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := pr.ReadPacket()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("allocated %d bytes refusing the packet", n)
	}
	if r.Len() != 0 {
		t.Errorf("%d bytes of the header left unread", r.Len())
	}
}

// TestReaderSequence reads several packets off one buffered stream, then
// the clean end.
func TestReaderSequence(t *testing.T) {
	var stream bytes.Buffer
	var want []Packet
	for i := range 100 {
		p := Packet{PartID: uint64(i * 1000), PID: uint16(i), Type: TypeData, Body: bytes.Repeat([]byte{byte(i)}, i)}
		if i%3 == 0 {
			p = Packet{PID: uint16(i), Type: TypeOK, Body: EmptyBody}
		}
		want = append(want, p)
		if err := WritePacket(&stream, p); err != nil {
			t.Fatal(err)
		}
	}
	pr := NewReader(bufio.NewReader(&stream), 0)
	for i, w := range want {
		got, err := pr.ReadPacket()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("packet %d = %+v, want %+v", i, got, w)
		}
	}
	if _, err := pr.ReadPacket(); err != io.EOF {
		t.Fatalf("after the last packet: %v, want io.EOF", err)
	}
}

// countingWriter counts Write calls; it may fail.
type countingWriter struct {
	bytes.Buffer
	writes int
	err    error
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.err != nil {
		return 0, w.err
	}
	return w.Buffer.Write(p)
}

func TestWritePacket(t *testing.T) {
	w := &countingWriter{}
	if err := WritePacket(w, Packet{PartID: 7, PID: 2, Type: TypeData, Body: bytes.Repeat([]byte{0xc0}, 10000)}); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 || w.Len() != HeaderSize+10000 {
		t.Errorf("%d writes of %d bytes, want 1 of %d", w.writes, w.Len(), HeaderSize+10000)
	}
	broken := errors.New("connection reset")
	err := WritePacket(&countingWriter{err: broken}, Packet{Type: TypeOK, Body: EmptyBody})
	if !errors.Is(err, broken) || err.Error() != "writing a ok packet: connection reset" {
		t.Errorf("err = %v", err)
	}
}

// TestConcurrentWriters checks that writers sharing a stream under a mutex
// put whole packets on it.
func TestConcurrentWriters(t *testing.T) {
	var mu sync.Mutex
	w := &lockedWriter{mu: &mu}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				p := Packet{PartID: uint64(g), PID: uint16(i), Type: TypeData, Body: bytes.Repeat([]byte{byte(g)}, 100+i)}
				if err := WritePacket(w, p); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	pr := NewReader(bytes.NewReader(w.buf.Bytes()), 0)
	next := make([]uint16, 8)
	for range 8 * 50 {
		p, err := pr.ReadPacket()
		if err != nil {
			t.Fatal(err)
		}
		g := p.PartID
		if p.PID != next[g] || len(p.Body) != 100+int(p.PID) || bytes.Count(p.Body, []byte{byte(g)}) != len(p.Body) {
			t.Fatalf("packet %+v of writer %d interleaved", p.PID, g)
		}
		next[g]++
	}
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Written in two halves: a packet stays whole only because WritePacket
	// makes one call under the lock.
	n1, _ := w.buf.Write(p[:len(p)/2])
	n2, err := w.buf.Write(p[len(p)/2:])
	return n1 + n2, err
}

func TestAppendHeaderPanicsOnNegativeLength(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "does not fit a header") {
			t.Errorf("recover() = %v", r)
		}
	}()
	AppendHeader(nil, 0, -1, 0, TypeOK)
}

func TestTypeString(t *testing.T) {
	for tp, want := range map[Type]string{
		TypeData: "data", TypeAnnounce: "announce", TypeSetAssets: "set assets", TypeInfo: "info",
		TypeUpsertAsset: "upsert asset", TypeUnsetAssets: "unset assets", TypeAuditLog: "audit log",
		TypeAnnounceReply: "announce reply", TypeInfoReply: "info reply", TypeError: "error", TypeOK: "ok",
		TypeEnroll: "enroll", TypeEnrollReply: "enroll reply", TypeRenew: "renew", Type(0x42): "Type(0x42)", Type(0xff): "Type(0xff)",
	} {
		if got := tp.String(); got != want {
			t.Errorf("Type(%#x).String() = %q, want %q", uint8(tp), got, want)
		}
	}
	// The numbers are the spec's.
	for tp, want := range map[Type]uint8{
		TypeData: 0x00, TypeAnnounce: 0x01, TypeSetAssets: 0x02, TypeInfo: 0x03, TypeUpsertAsset: 0x04,
		TypeUnsetAssets: 0x05, TypeAuditLog: 0x60, TypeAnnounceReply: 0x81, TypeInfoReply: 0x82,
		TypeError: 0xe0, TypeOK: 0xe1,
	} {
		if uint8(tp) != want {
			t.Errorf("%s = %#x, want %#x", tp, uint8(tp), want)
		}
	}
}

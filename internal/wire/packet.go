package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// Type is a packet type, the tp byte of the header.
//
// The probe port (§3) reuses the numbers of the appliance ↔ hub stream (§2)
// with other bodies: TypeData is a probe's dump there, TypeAnnounce a
// probe's announce, TypeSetAssets and TypeAnnounceReply carry the probe's
// check list.
type Type uint8

// The packet types of INFRASONAR-WIRE.md §2 and §3.
const (
	TypeData          Type = 0x00
	TypeAnnounce      Type = 0x01
	TypeSetAssets     Type = 0x02
	TypeInfo          Type = 0x03
	TypeUpsertAsset   Type = 0x04
	TypeUnsetAssets   Type = 0x05
	TypeAuditLog      Type = 0x60
	TypeAnnounceReply Type = 0x81
	TypeInfoReply     Type = 0x82
	TypeError         Type = 0xe0
	TypeOK            Type = 0xe1
)

// String names the type for logs, e.g. "announce" or "Type(0x42)" for an
// unknown one.
func (t Type) String() string {
	switch t {
	case TypeData:
		return "data"
	case TypeAnnounce:
		return "announce"
	case TypeSetAssets:
		return "set assets"
	case TypeInfo:
		return "info"
	case TypeUpsertAsset:
		return "upsert asset"
	case TypeUnsetAssets:
		return "unset assets"
	case TypeAuditLog:
		return "audit log"
	case TypeAnnounceReply:
		return "announce reply"
	case TypeInfoReply:
		return "info reply"
	case TypeError:
		return "error"
	case TypeOK:
		return "ok"
	case TypeEnroll:
		return "enroll"
	case TypeEnrollReply:
		return "enroll reply"
	case TypeRenew:
		return "renew"
	}
	return "Type(0x" + hex2(uint8(t)) + ")"
}

func hex2(b uint8) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&0xf]})
}

// HeaderSize is the size of a packet header in bytes.
const HeaderSize = 16

// DefaultMaxBody is the body limit ReadPacket applies when given none: the
// 500 KB InfraSonar collectors allow for check data.
const DefaultMaxBody = 500 * 1000

// maxLength is the largest body the header can describe.
const maxLength = math.MaxUint32

// Packet is one framed packet.
type Packet struct {
	// PartID is the asset id of a data packet, 0 otherwise.
	PartID uint64
	// PID is the request id; a response echoes the request's.
	PID uint16
	// Type says what the body holds.
	Type Type
	// Body is the packet's MessagePack body, raw. A packet with nothing to
	// say carries EmptyBody.
	Body []byte
}

// Errors of the framing. Both leave the stream unusable: the receiver cannot
// find the next header, so it closes the connection, as InfraSonar does.
var (
	// ErrCheckbit means the header's checkbit is not its type XOR 0xFF.
	ErrCheckbit = errors.New("packet header checkbit mismatch")
	// ErrTooLarge means a body is larger than the receiver's limit (or, when
	// writing, larger than a header can describe).
	ErrTooLarge = errors.New("packet body too large")
)

// Reader reads packets from a stream, reusing its header buffer from one
// packet to the next. It does not buffer the stream itself: give it a
// *bufio.Reader over a connection. A Reader is not safe for concurrent use.
type Reader struct {
	r       io.Reader
	maxBody int
	hdr     [HeaderSize]byte
}

// NewReader returns a Reader of r refusing bodies over maxBody bytes
// (DefaultMaxBody when maxBody <= 0).
func NewReader(r io.Reader, maxBody int) *Reader {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	return &Reader{r: r, maxBody: maxBody}
}

// ReadPacket reads one packet: see the function ReadPacket.
func (pr *Reader) ReadPacket() (Packet, error) {
	return readPacket(pr.r, pr.hdr[:], pr.maxBody)
}

// ReadPacket reads one packet from r, refusing a body over maxBody bytes
// (DefaultMaxBody when maxBody <= 0) before allocating it. At a clean end of
// the stream, before any byte of a header, it returns io.EOF itself. A
// stream that ends inside a packet gives an error wrapping
// io.ErrUnexpectedEOF; a bad header one wrapping ErrCheckbit or ErrTooLarge.
// Any error leaves r at an unknown position in the stream: close it.
//
// Wrap a connection in a *bufio.Reader: ReadPacket reads the header and the
// body with separate calls.
func ReadPacket(r io.Reader, maxBody int) (Packet, error) {
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	var hdr [HeaderSize]byte
	return readPacket(r, hdr[:], maxBody)
}

func readPacket(r io.Reader, hdr []byte, maxBody int) (Packet, error) {
	if _, err := io.ReadFull(r, hdr); err != nil {
		if errors.Is(err, io.EOF) {
			return Packet{}, io.EOF
		}
		return Packet{}, fmt.Errorf("reading packet header: %w", err)
	}
	p := Packet{
		PartID: binary.LittleEndian.Uint64(hdr[0:8]),
		PID:    binary.LittleEndian.Uint16(hdr[12:14]),
		Type:   Type(hdr[14]),
	}
	length := binary.LittleEndian.Uint32(hdr[8:12])
	if hdr[15] != hdr[14]^0xff {
		return Packet{}, fmt.Errorf("%w: type 0x%02x, checkbit 0x%02x (want 0x%02x)", ErrCheckbit, hdr[14], hdr[15], hdr[14]^0xff)
	}
	if uint64(length) > uint64(maxBody) { // #nosec G115 -- maxBody is positive here
		return Packet{}, fmt.Errorf("%w: %s packet of %d bytes, more than the limit of %d", ErrTooLarge, p.Type, length, maxBody)
	}
	p.Body = make([]byte, length)
	if _, err := io.ReadFull(r, p.Body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Packet{}, fmt.Errorf("reading the %d-byte body of a %s packet: %w", length, p.Type, err)
	}
	return p, nil
}

// AppendHeader appends the 16-byte header of a packet of the given type
// whose body is bodyLen bytes long. It panics when bodyLen does not fit the
// header's uint32 (4 GiB): WritePacket returns an error instead.
func AppendHeader(dst []byte, partID uint64, bodyLen int, pid uint16, tp Type) []byte {
	if bodyLen < 0 || uint64(bodyLen) > maxLength {
		panic("wire: packet body length " + strconv.Itoa(bodyLen) + " does not fit a header")
	}
	dst = binary.LittleEndian.AppendUint64(dst, partID)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(bodyLen))
	dst = binary.LittleEndian.AppendUint16(dst, pid)
	return append(dst, byte(tp), byte(tp)^0xff)
}

// AppendPacket appends p, header and body, to dst. Like AppendHeader, it
// panics on a body of 4 GiB or more.
func AppendPacket(dst []byte, p Packet) []byte {
	dst = AppendHeader(dst, p.PartID, len(p.Body), p.PID, p.Type)
	return append(dst, p.Body...)
}

// WritePacket writes p to w in a single Write call, so that writers sharing
// w under a mutex put whole packets on the stream. A body too large for a
// header is an error wrapping ErrTooLarge.
func WritePacket(w io.Writer, p Packet) error {
	if uint64(len(p.Body)) > maxLength {
		return fmt.Errorf("%w: %s packet of %d bytes does not fit a header", ErrTooLarge, p.Type, len(p.Body))
	}
	buf := AppendPacket(make([]byte, 0, HeaderSize+len(p.Body)), p)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("writing a %s packet: %w", p.Type, err)
	}
	return nil
}

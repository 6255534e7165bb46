// Package qr encodes data as a QR code (ISO/IEC 18004:2015) and draws it as
// SVG, for the otpauth:// URI a user scans to enrol an authenticator.
//
// It supports what that needs and little more: a single byte-mode segment,
// versions 1 to 40, the four error correction levels, and automatic choice
// of the smallest version and of the mask with the lowest penalty.
package qr

import (
	"errors"
	"fmt"
)

// Level is an error correction level: the share of the symbol that may be
// damaged and still read.
type Level int

// The error correction levels, from least to most redundant.
const (
	L Level = iota // L recovers about 7% of codewords.
	M              // M recovers about 15% of codewords.
	Q              // Q recovers about 25% of codewords.
	H              // H recovers about 30% of codewords.
)

// String returns the level's letter.
func (l Level) String() string {
	if l < L || l > H {
		return fmt.Sprintf("Level(%d)", int(l))
	}
	return string("LMQH"[l])
}

// MaxVersion is the largest QR code version.
const MaxVersion = 40

// QuietZone is the width of the light border around a symbol, in modules,
// that the standard requires for a reader to find it.
const QuietZone = 4

// ErrTooLong reports data that does not fit in the largest version at the
// requested level.
var ErrTooLong = errors.New("data too long for a QR code: shorten it or use a lower error correction level")

// Code is an encoded QR code symbol.
type Code struct {
	// Version is the symbol's version, 1 to 40; it has 17+4×Version modules
	// a side.
	Version int
	// Level is the error correction level.
	Level Level
	// Mask is the data mask pattern chosen, 0 to 7.
	Mask int

	size    int
	modules []bool // row-major, true is dark
}

// Size returns the width (and height) of the symbol in modules, without the
// quiet zone.
func (c *Code) Size() int { return c.size }

// Dark reports whether the module in column x, row y is dark. Coordinates
// outside the symbol, such as the quiet zone, are light.
func (c *Code) Dark(x, y int) bool {
	if x < 0 || y < 0 || x >= c.size || y >= c.size {
		return false
	}
	return c.modules[y*c.size+x]
}

// Capacity returns how many bytes a symbol of the version and level holds.
// It returns 0 for an invalid version or level.
func Capacity(version int, level Level) int {
	if version < 1 || version > MaxVersion || level < L || level > H {
		return 0
	}
	return (dataCodewords(version, level)*8 - 4 - charCountBits(version)) / 8
}

// Encode encodes data in byte mode in the smallest version that holds it at
// the given level, with the mask the standard's penalty rules prefer.
func Encode(data []byte, level Level) (*Code, error) {
	return encode(data, level, -1)
}

// encode is Encode with a chosen mask, or -1 for the best one.
func encode(data []byte, level Level, mask int) (*Code, error) {
	if level < L || level > H {
		return nil, fmt.Errorf("encoding a QR code: unknown error correction level %d", int(level))
	}
	version := 0
	for v := 1; v <= MaxVersion; v++ {
		if len(data) <= Capacity(v, level) {
			version = v
			break
		}
	}
	if version == 0 {
		return nil, fmt.Errorf("encoding %d bytes at level %s (at most %d): %w", len(data), level, Capacity(MaxVersion, level), ErrTooLong)
	}
	codewords := interleave(dataSegment(data, version, level), version, level)

	m := newMatrix(version)
	m.placeCodewords(codewords)

	best := mask
	if best < 0 {
		bestPenalty := -1
		for mask := range 8 {
			m.applyMask(mask)
			m.drawFormat(level, mask)
			if p := m.penalty(); bestPenalty < 0 || p < bestPenalty {
				best, bestPenalty = mask, p
			}
			m.applyMask(mask) // XOR again to undo
		}
	}
	m.applyMask(best)
	m.drawFormat(level, best)

	return &Code{Version: version, Level: level, Mask: best, size: m.size, modules: m.dark}, nil
}

// dataSegment returns the data codewords: a byte-mode segment (mode 0100,
// length, bytes), the terminator, zero bits to a byte boundary and the
// alternating pad bytes 0xEC 0x11 up to the version's capacity.
func dataSegment(data []byte, version int, level Level) []byte {
	n := dataCodewords(version, level)
	var w bitWriter
	w.write(0b0100, 4)
	w.write(uint(len(data)), charCountBits(version))
	for _, b := range data {
		w.write(uint(b), 8)
	}
	w.write(0, min(4, n*8-w.n)) // terminator, shortened if the symbol is full
	w.write(0, (8-w.n%8)%8)
	for pad := byte(0xEC); len(w.buf) < n; pad ^= 0xEC ^ 0x11 {
		w.buf = append(w.buf, pad)
		w.n += 8
	}
	return w.buf
}

// bitWriter appends bits most significant first.
type bitWriter struct {
	buf []byte
	n   int // bits written
}

func (w *bitWriter) write(v uint, bits int) {
	for i := bits - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>i&1 != 0 {
			w.buf[w.n/8] |= 0x80 >> (w.n % 8)
		}
		w.n++
	}
}

// interleave splits the data codewords into the version's blocks, appends
// each block's Reed–Solomon codewords and interleaves the result: the first
// data codeword of every block, then the second, … then the error correction
// codewords the same way.
func interleave(data []byte, version int, level Level) []byte {
	nb := eccBlocks[level][version]
	ecLen := eccPerBlock[level][version]
	total := rawCodewords(version)
	short := total/nb - ecLen // data codewords in a short block
	numShort := nb - total%nb // the rest have one more

	gen := rsGenerator(ecLen)
	blocks := make([][]byte, nb)
	eccs := make([][]byte, nb)
	for i, off := 0, 0; i < nb; i++ {
		n := short
		if i >= numShort {
			n++
		}
		blocks[i] = data[off : off+n]
		eccs[i] = rsRemainder(blocks[i], gen)
		off += n
	}
	out := make([]byte, 0, total)
	for j := range short + 1 {
		for i := range blocks {
			if j < len(blocks[i]) {
				out = append(out, blocks[i][j])
			}
		}
	}
	for j := range ecLen {
		for i := range eccs {
			out = append(out, eccs[i][j])
		}
	}
	return out
}

package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// MaxDepth is how deeply Decode lets arrays and maps nest, and AppendValue
// too. InfraSonar's bodies nest five levels at most.
const MaxDepth = 64

// ErrMalformed is wrapped by every error about bytes that are not valid
// MessagePack, or not the MessagePack this package accepts (ext types,
// nesting deeper than MaxDepth, invalid UTF-8 in a str, map keys other than
// strings and integers, trailing bytes).
var ErrMalformed = errors.New("malformed MessagePack")

// SyntaxError says where MessagePack is malformed.
type SyntaxError struct {
	Offset int // the byte offset of the value in error
	Msg    string
}

// Error implements error.
func (e *SyntaxError) Error() string {
	return "malformed MessagePack at byte " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrMalformed) true.
func (e *SyntaxError) Unwrap() error { return ErrMalformed }

// kind is the kind of a decoded token.
type kind uint8

const (
	kindNil kind = iota + 1
	kindBool
	kindInt   // fits an int64: token.i
	kindUint  // a uint64 over math.MaxInt64: token.u
	kindFloat // float32 or float64: token.f
	kindStr   // token.s, valid UTF-8
	kindBin   // token.s
	kindArray // token.n elements follow
	kindMap   // token.n key/value pairs follow
)

// token is one MessagePack value, or the header of an array or map.
type token struct {
	kind kind
	b    bool
	i    int64
	u    uint64
	f    float64
	n    int    // elements of an array, pairs of a map
	s    []byte // str or bin bytes, aliasing the input
}

// describe names the token for error messages: "a string", "the integer 5".
func (t token) describe() string {
	switch t.kind {
	case kindNil:
		return "nil"
	case kindBool:
		return "a boolean"
	case kindInt:
		return "the integer " + strconv.FormatInt(t.i, 10)
	case kindUint:
		return "the integer " + strconv.FormatUint(t.u, 10)
	case kindFloat:
		return "the float " + strconv.FormatFloat(t.f, 'g', -1, 64)
	case kindStr:
		return "a string"
	case kindBin:
		return "binary data"
	case kindArray:
		return "an array"
	case kindMap:
		return "a map"
	}
	return "nothing"
}

// decoder reads tokens from a byte slice.
type decoder struct {
	b   []byte
	off int
}

func (d *decoder) errAt(off int, msg string) error {
	return &SyntaxError{Offset: off, Msg: msg}
}

// take returns the next n bytes, or an error naming what was being read.
func (d *decoder) take(start, n int, what string) ([]byte, error) {
	if n > len(d.b)-d.off {
		return nil, d.errAt(start, "truncated "+what+": "+strconv.Itoa(n)+" bytes announced, "+strconv.Itoa(len(d.b)-d.off)+" left")
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p, nil
}

// size reads the big-endian length that follows a format byte.
func (d *decoder) size(start, width int, what string) (uint64, error) {
	p, err := d.take(start, width, what+" length")
	if err != nil {
		return 0, err
	}
	switch width {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	}
	return uint64(binary.BigEndian.Uint32(p)), nil
}

// next reads one token. For an array or a map it reads only the header,
// after checking that the input left can hold that many elements (one byte
// each at least, two per map pair), so a hostile count allocates nothing.
func (d *decoder) next() (token, error) {
	start := d.off
	if d.off >= len(d.b) {
		return token{}, d.errAt(start, "unexpected end of input")
	}
	c := d.b[d.off]
	d.off++
	switch {
	case c <= 0x7f:
		return token{kind: kindInt, i: int64(c)}, nil
	case c >= 0xe0:
		return token{kind: kindInt, i: int64(int8(c))}, nil // #nosec G115 -- negative fixint is the byte's two's complement
	case c&0xf0 == 0x80:
		return d.container(start, kindMap, uint64(c&0x0f))
	case c&0xf0 == 0x90:
		return d.container(start, kindArray, uint64(c&0x0f))
	case c&0xe0 == 0xa0:
		return d.bytes(start, kindStr, uint64(c&0x1f))
	}
	switch c {
	case mpNil:
		return token{kind: kindNil}, nil
	case mpFalse:
		return token{kind: kindBool}, nil
	case mpTrue:
		return token{kind: kindBool, b: true}, nil
	case mpBin8, mpBin16, mpBin32:
		n, err := d.size(start, 1<<(c-mpBin8), "bin")
		if err != nil {
			return token{}, err
		}
		return d.bytes(start, kindBin, n)
	case mpStr8, mpStr16, mpStr32:
		n, err := d.size(start, 1<<(c-mpStr8), "str")
		if err != nil {
			return token{}, err
		}
		return d.bytes(start, kindStr, n)
	case mpArray16, mpArray32:
		n, err := d.size(start, 2<<(c-mpArray16), "array")
		if err != nil {
			return token{}, err
		}
		return d.container(start, kindArray, n)
	case mpMap16, mpMap32:
		n, err := d.size(start, 2<<(c-mpMap16), "map")
		if err != nil {
			return token{}, err
		}
		return d.container(start, kindMap, n)
	case mpFloat32:
		p, err := d.take(start, 4, "float32")
		if err != nil {
			return token{}, err
		}
		return token{kind: kindFloat, f: float64(math.Float32frombits(binary.BigEndian.Uint32(p)))}, nil
	case mpFloat64:
		p, err := d.take(start, 8, "float64")
		if err != nil {
			return token{}, err
		}
		return token{kind: kindFloat, f: math.Float64frombits(binary.BigEndian.Uint64(p))}, nil
	case mpUint8, mpUint16, mpUint32, mpUint64:
		width := 1 << (c - mpUint8)
		p, err := d.take(start, width, "uint")
		if err != nil {
			return token{}, err
		}
		var u uint64
		switch width {
		case 1:
			u = uint64(p[0])
		case 2:
			u = uint64(binary.BigEndian.Uint16(p))
		case 4:
			u = uint64(binary.BigEndian.Uint32(p))
		default:
			u = binary.BigEndian.Uint64(p)
		}
		if u > math.MaxInt64 {
			return token{kind: kindUint, u: u}, nil
		}
		return token{kind: kindInt, i: int64(u)}, nil
	case mpInt8, mpInt16, mpInt32, mpInt64:
		width := 1 << (c - mpInt8)
		p, err := d.take(start, width, "int")
		if err != nil {
			return token{}, err
		}
		var i int64
		switch width {
		case 1:
			i = int64(int8(p[0])) // #nosec G115 -- two's complement
		case 2:
			i = int64(int16(binary.BigEndian.Uint16(p))) // #nosec G115 -- two's complement
		case 4:
			i = int64(int32(binary.BigEndian.Uint32(p))) // #nosec G115 -- two's complement
		default:
			i = int64(binary.BigEndian.Uint64(p)) // #nosec G115 -- two's complement
		}
		return token{kind: kindInt, i: i}, nil
	case mpExt8, mpExt16, mpExt32:
		return token{}, d.errAt(start, "extension types are not accepted")
	case mpReserved:
		return token{}, d.errAt(start, "the reserved byte 0xc1 is not MessagePack")
	}
	if c >= mpFixExt1 && c <= mpFixExt16 {
		return token{}, d.errAt(start, "extension types are not accepted")
	}
	// Unreachable: every byte value is covered above.
	return token{}, d.errAt(start, "unknown format byte 0x"+hex2(c))
}

func (d *decoder) bytes(start int, k kind, n uint64) (token, error) {
	what := "str"
	if k == kindBin {
		what = "bin"
	}
	if n > uint64(len(d.b)-d.off) { // #nosec G115 -- len-off is not negative
		return token{}, d.errAt(start, "truncated "+what+": "+strconv.FormatUint(n, 10)+" bytes announced, "+strconv.Itoa(len(d.b)-d.off)+" left")
	}
	p := d.b[d.off : d.off+int(n) : d.off+int(n)] // #nosec G115 -- n <= len(d.b) here
	d.off += int(n)                               // #nosec G115 -- n <= len(d.b) here
	if k == kindStr && !utf8.Valid(p) {
		return token{}, d.errAt(start, "a str holds invalid UTF-8 (send binary as bin)")
	}
	return token{kind: k, s: p, n: len(p)}, nil
}

func (d *decoder) container(start int, k kind, n uint64) (token, error) {
	left := uint64(len(d.b) - d.off) // #nosec G115 -- len-off is not negative
	need := n
	what := "array of " + strconv.FormatUint(n, 10) + " elements"
	if k == kindMap {
		need = 2 * n // n < 2^32: no overflow
		what = "map of " + strconv.FormatUint(n, 10) + " pairs"
	}
	if need > left {
		return token{}, d.errAt(start, "truncated "+what+": "+strconv.FormatUint(left, 10)+" bytes left")
	}
	return token{kind: k, n: int(n)}, nil // #nosec G115 -- n <= len(d.b)
}

// skip reads and discards one value in which arrays and maps nest at most
// maxLevels deep (the value itself, when an array or a map, is level 1).
// Deeper nesting is an error wrapping errNested.
func (d *decoder) skip(maxLevels int) error {
	// Iterative: stack holds, for each open array or map but the
	// innermost, the values it still has to read.
	pending := 1
	var stack []int
	for pending > 0 || len(stack) > 0 {
		if pending == 0 {
			pending = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			continue
		}
		pending--
		t, err := d.next()
		if err != nil {
			return err
		}
		if t.kind != kindArray && t.kind != kindMap {
			continue
		}
		if len(stack)+1 > maxLevels {
			return fmt.Errorf("%w more than %d levels deep", errNested, maxLevels)
		}
		n := t.n
		if t.kind == kindMap {
			n *= 2
		}
		stack = append(stack, pending)
		pending = n
	}
	return nil
}

// errNested is the error of skip for too deep a nesting.
var errNested = errors.New("nested")

// key reads a map key: a str, or an integer written as its decimal string
// (INFRASONAR-WIRE.md §1: accept integer keys when decoding).
func (d *decoder) key() (string, error) {
	start := d.off
	t, err := d.next()
	if err != nil {
		return "", err
	}
	return t.keyString(d, start)
}

func (t token) keyString(d *decoder, start int) (string, error) {
	switch t.kind {
	case kindStr:
		return string(t.s), nil
	case kindInt:
		return strconv.FormatInt(t.i, 10), nil
	case kindUint:
		return strconv.FormatUint(t.u, 10), nil
	}
	return "", d.errAt(start, "a map key must be a string or an integer, not "+t.describe())
}

// Decode decodes one MessagePack value, which must fill b exactly, into
// generic Go values: nil, bool, int64 (uint64 only above math.MaxInt64),
// float64 (float32 is widened), string, []byte, []any and map[string]any.
// Integer map keys become their decimal strings; a key repeated in a map,
// a key of another type, an ext type, invalid UTF-8 in a str or nesting
// deeper than MaxDepth is an error wrapping ErrMalformed (a *SyntaxError).
//
// Nothing in the result aliases b. b should already be bounded by the
// framing limit: Decode allocates in proportion to len(b).
func Decode(b []byte) (any, error) {
	d := decoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.off != len(d.b) {
		return nil, d.errAt(d.off, strconv.Itoa(len(d.b)-d.off)+" bytes follow the value")
	}
	return v, nil
}

func (d *decoder) value(depth int) (any, error) {
	start := d.off
	t, err := d.next()
	if err != nil {
		return nil, err
	}
	switch t.kind {
	case kindNil:
		return nil, nil
	case kindBool:
		return t.b, nil
	case kindInt:
		return t.i, nil
	case kindUint:
		return t.u, nil
	case kindFloat:
		return t.f, nil
	case kindStr:
		return string(t.s), nil
	case kindBin:
		return append([]byte{}, t.s...), nil
	}
	if depth >= MaxDepth {
		return nil, d.errAt(start, "nested more than "+strconv.Itoa(MaxDepth)+" levels deep")
	}
	if t.kind == kindArray {
		a := make([]any, t.n)
		for i := range a {
			if a[i], err = d.value(depth + 1); err != nil {
				return nil, err
			}
		}
		return a, nil
	}
	// A hint, not t.n: a map entry costs far more than its two bytes.
	m := make(map[string]any, min(t.n, 64))
	for range t.n {
		kstart := d.off
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, d.errAt(kstart, "map key "+strconv.Quote(k)+" appears twice")
		}
		if m[k], err = d.value(depth + 1); err != nil {
			return nil, err
		}
	}
	return m, nil
}

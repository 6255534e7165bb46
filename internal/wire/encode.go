package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"unicode/utf8"
)

// MessagePack format bytes (https://github.com/msgpack/msgpack/blob/master/spec.md).
const (
	mpNil      = 0xc0
	mpReserved = 0xc1
	mpFalse    = 0xc2
	mpTrue     = 0xc3
	mpBin8     = 0xc4
	mpBin16    = 0xc5
	mpBin32    = 0xc6
	mpExt8     = 0xc7
	mpExt16    = 0xc8
	mpExt32    = 0xc9
	mpFloat32  = 0xca
	mpFloat64  = 0xcb
	mpUint8    = 0xcc
	mpUint16   = 0xcd
	mpUint32   = 0xce
	mpUint64   = 0xcf
	mpInt8     = 0xd0
	mpInt16    = 0xd1
	mpInt32    = 0xd2
	mpInt64    = 0xd3
	mpFixExt1  = 0xd4
	mpFixExt16 = 0xd8
	mpStr8     = 0xd9
	mpStr16    = 0xda
	mpStr32    = 0xdb
	mpArray16  = 0xdc
	mpArray32  = 0xdd
	mpMap16    = 0xde
	mpMap32    = 0xdf
)

// EmptyBody is the body of a packet with nothing to say: MessagePack empty
// binary (c4 00). Do not modify it.
var EmptyBody = []byte{mpBin8, 0x00}

// AppendNil appends MessagePack nil.
func AppendNil(b []byte) []byte { return append(b, mpNil) }

// AppendBool appends a MessagePack boolean.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mpTrue)
	}
	return append(b, mpFalse)
}

// AppendInt appends v in the smallest MessagePack integer format that holds
// it; a non-negative v is written as AppendUint writes it, as Python's
// msgpack does.
func AppendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return AppendUint(b, uint64(v))
	}
	switch {
	case v >= -32:
		return append(b, byte(v)) // #nosec G115 -- negative fixint: the byte is the two's complement of v
	case v >= math.MinInt8:
		return append(b, mpInt8, byte(v)) // #nosec G115 -- v fits an int8, written as its two's complement
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, mpInt16), uint16(v)) // #nosec G115 -- v fits an int16, written as its two's complement
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, mpInt32), uint32(v)) // #nosec G115 -- v fits an int32, written as its two's complement
	}
	return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(v)) // #nosec G115 -- two's complement of v
}

// AppendUint appends v in the smallest MessagePack unsigned format that
// holds it.
func AppendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpUint16), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mpUint32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
}

// AppendFloat64 appends f as a MessagePack float64, always, even when it is
// integral: a float stays a float on the wire.
func AppendFloat64(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, mpFloat64), math.Float64bits(f))
}

// AppendFloat32 appends f as a MessagePack float32.
func AppendFloat32(b []byte, f float32) []byte {
	return binary.BigEndian.AppendUint32(append(b, mpFloat32), math.Float32bits(f))
}

// AppendString appends s as a MessagePack str. Invalid UTF-8 is written as
// U+FFFD, as encoding/json does, because decoders (this package's and
// Python's) refuse a str that is not UTF-8. It panics when s is 4 GiB or
// more.
func AppendString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = toValidUTF8(s)
	}
	n := len(s)
	switch {
	case n <= 31:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, mpStr8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, mpStr16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpStr32), length32(n))
	}
	return append(b, s...)
}

// toValidUTF8 replaces each invalid byte of s by U+FFFD, one for one, as
// encoding/json does (strings.ToValidUTF8 would merge runs of them).
func toValidUTF8(s string) string {
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, s[i:i+size]...)
		}
		i += size
	}
	return string(out)
}

// AppendBytes appends p as MessagePack bin. It panics when p is 4 GiB or
// more.
func AppendBytes(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case n <= math.MaxUint8:
		b = append(b, mpBin8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, mpBin16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpBin32), length32(n))
	}
	return append(b, p...)
}

// AppendArrayHeader appends the header of an array of n elements; the caller
// appends the n elements after it. It panics when n is negative or does not
// fit 32 bits.
func AppendArrayHeader(b []byte, n int) []byte {
	switch {
	case n >= 0 && n <= 15:
		return append(b, 0x90|byte(n))
	case n > 15 && n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpArray16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, mpArray32), length32(n))
}

// AppendMapHeader appends the header of a map of n key/value pairs; the
// caller appends the 2n keys and values after it, keys as strings (Python
// probes refuse other keys). It panics when n is negative or does not fit
// 32 bits.
func AppendMapHeader(b []byte, n int) []byte {
	switch {
	case n >= 0 && n <= 15:
		return append(b, 0x80|byte(n))
	case n > 15 && n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpMap16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, mpMap32), length32(n))
}

// length32 returns n as a 32-bit length, panicking when it does not fit:
// nothing Sonde sends comes near 4 GiB, and the framing could not carry it.
func length32(n int) uint32 {
	if n < 0 || uint64(n) > math.MaxUint32 {
		panic(fmt.Sprintf("wire: length %d does not fit MessagePack's 32 bits", n))
	}
	return uint32(n)
}

// Marshal encodes v as MessagePack: see AppendValue.
func Marshal(v any) ([]byte, error) {
	return AppendValue(nil, v)
}

// AppendValue appends v as MessagePack. It encodes the values Decode returns
// (nil, bool, int64, uint64, float64, string, []byte, []any, map[string]any)
// and, for convenience, every other Go integer type, float32, []string and
// map[string]string. Maps are written with their keys sorted, so the
// encoding of a value is always the same bytes. Floats are written as
// floats (float64 as float64, float32 as float32) even when integral.
//
// Any other type, or nesting deeper than MaxDepth (e.g. a slice holding
// itself), is an error wrapping errors.ErrUnsupported; dst is then returned
// unchanged.
func AppendValue(dst []byte, v any) ([]byte, error) {
	out, err := appendValue(dst, v, 0)
	if err != nil {
		return dst, err
	}
	return out, nil
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return AppendNil(b), nil
	case bool:
		return AppendBool(b, v), nil
	case int:
		return AppendInt(b, int64(v)), nil
	case int8:
		return AppendInt(b, int64(v)), nil
	case int16:
		return AppendInt(b, int64(v)), nil
	case int32:
		return AppendInt(b, int64(v)), nil
	case int64:
		return AppendInt(b, v), nil
	case uint:
		return AppendUint(b, uint64(v)), nil
	case uint8:
		return AppendUint(b, uint64(v)), nil
	case uint16:
		return AppendUint(b, uint64(v)), nil
	case uint32:
		return AppendUint(b, uint64(v)), nil
	case uint64:
		return AppendUint(b, v), nil
	case float32:
		return AppendFloat32(b, v), nil
	case float64:
		return AppendFloat64(b, v), nil
	case string:
		return AppendString(b, v), nil
	case []byte:
		return AppendBytes(b, v), nil
	case []string:
		b = AppendArrayHeader(b, len(v))
		for _, s := range v {
			b = AppendString(b, s)
		}
		return b, nil
	case map[string]string:
		b = AppendMapHeader(b, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			b = AppendString(b, k)
			b = AppendString(b, v[k])
		}
		return b, nil
	case []any:
		if depth >= MaxDepth {
			return b, errTooDeep
		}
		b = AppendArrayHeader(b, len(v))
		var err error
		for _, e := range v {
			if b, err = appendValue(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case map[string]any:
		if depth >= MaxDepth {
			return b, errTooDeep
		}
		b = AppendMapHeader(b, len(v))
		var err error
		for _, k := range slices.Sorted(maps.Keys(v)) {
			b = AppendString(b, k)
			if b, err = appendValue(b, v[k], depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	}
	return b, fmt.Errorf("encoding a %T as MessagePack: %w", v, errors.ErrUnsupported)
}

var errTooDeep = fmt.Errorf("encoding MessagePack nested more than %d levels deep: %w", MaxDepth, errors.ErrUnsupported)

package snmp

import (
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// Bounds on what an agent's strings may put in a result.
const (
	maxStringLen   = 4096 // bytes of a string metric (DisplayString is at most 255)
	maxItemNameLen = 255  // bytes of an item name, before a "#ifIndex" suffix
	maxPhysAddrLen = 64   // bytes of ifPhysAddress formatted as a MAC
)

// The conversions below take whatever gosnmp decoded, of whatever type the
// agent claimed: a value of an unexpected type is "absent" (ok false), never
// a panic or a wrong number.

// present reports whether pdu carries a value at all.
func present(pdu gosnmp.SnmpPDU) bool {
	switch pdu.Type {
	case gosnmp.NoSuchObject, gosnmp.NoSuchInstance, gosnmp.EndOfMibView, gosnmp.Null, gosnmp.UnknownType:
		return false
	}
	return pdu.Value != nil
}

// asUint returns a non-negative integer value (Counter32, Counter64,
// Gauge32, TimeTicks, Unsigned32, or a non-negative INTEGER).
func asUint(pdu gosnmp.SnmpPDU) (uint64, bool) {
	if !present(pdu) {
		return 0, false
	}
	switch v := pdu.Value.(type) {
	case uint:
		return uint64(v), true
	case uint8:
		return uint64(v), true
	case uint16:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	case int:
		if v >= 0 {
			return uint64(v), true
		}
	case int8:
		if v >= 0 {
			return uint64(v), true
		}
	case int16:
		if v >= 0 {
			return uint64(v), true
		}
	case int32:
		if v >= 0 {
			return uint64(v), true
		}
	case int64:
		if v >= 0 {
			return uint64(v), true
		}
	}
	return 0, false
}

// asInt returns an integer value that fits an int64.
func asInt(pdu gosnmp.SnmpPDU) (int64, bool) {
	if !present(pdu) {
		return 0, false
	}
	switch v := pdu.Value.(type) {
	case int:
		return int64(v), true
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	}
	if u, ok := asUint(pdu); ok && u <= math.MaxInt64 {
		return int64(u), true
	}
	return 0, false
}

// asString returns a text value: an OCTET STRING, or what gosnmp already
// turned into a string (an OID, an IP address), sanitized.
func asString(pdu gosnmp.SnmpPDU) (string, bool) {
	if !present(pdu) {
		return "", false
	}
	switch v := pdu.Value.(type) {
	case []byte:
		return sanitizeString(string(v), maxStringLen), true
	case string:
		return sanitizeString(v, maxStringLen), true
	}
	return "", false
}

// asOID returns an OBJECT IDENTIFIER value in dotted form without the
// leading dot.
func asOID(pdu gosnmp.SnmpPDU) (string, bool) {
	if !present(pdu) || pdu.Type != gosnmp.ObjectIdentifier {
		return "", false
	}
	s, ok := pdu.Value.(string)
	if !ok {
		return "", false
	}
	return sanitizeString(strings.TrimPrefix(s, "."), maxStringLen), true
}

// asBytes returns an OCTET STRING's bytes.
func asBytes(pdu gosnmp.SnmpPDU) ([]byte, bool) {
	if !present(pdu) {
		return nil, false
	}
	b, ok := pdu.Value.([]byte)
	return b, ok
}

// uintValue is a counter as a metric value: an int, or a float in the
// (theoretical) case of a Counter64 beyond int64.
func uintValue(u uint64) model.Value {
	if u > math.MaxInt64 {
		return model.FloatValue(float64(u))
	}
	return model.IntValue(int64(u))
}

const hexDigits = "0123456789abcdef"

// formatMAC writes b as lower-case hex pairs joined by colons; empty for no
// bytes. ok is false when b is too long to be an address.
func formatMAC(b []byte) (string, bool) {
	if len(b) > maxPhysAddrLen {
		return "", false
	}
	var sb strings.Builder
	sb.Grow(3 * len(b))
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteByte(hexDigits[c>>4])
		sb.WriteByte(hexDigits[c&0xf])
	}
	return sb.String(), true
}

// sanitizeString makes an agent's text fit for a result: valid UTF-8, no
// control characters other than tab and line breaks, no trailing NULs or
// spaces, at most max bytes (cut at a character boundary).
func sanitizeString(s string, max int) string {
	s = strings.TrimRight(s, "\x00")
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || (unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r') {
			clean = false
			break
		}
	}
	if !clean {
		var sb strings.Builder
		sb.Grow(len(s))
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size <= 1:
				sb.WriteRune(utf8.RuneError)
			case unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r':
				// dropped
			default:
				sb.WriteString(s[i : i+size])
			}
			i += max1(size)
		}
		s = sb.String()
	}
	s = strings.TrimRightFunc(s, unicode.IsSpace)
	return truncate(s, max)
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// truncate cuts s to at most max bytes at a character boundary.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// itemName makes a name fit for an item: a sanitized string on one line.
func itemName(s string) string {
	s = sanitizeString(s, maxStringLen)
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	return truncate(strings.TrimSpace(s), maxItemNameLen)
}

// normOID returns an OID with its leading dot, as walks compare them.
func normOID(oid string) string {
	if strings.HasPrefix(oid, ".") {
		return oid
	}
	return "." + oid
}

// compareOIDs compares two dotted OIDs sub-identifier by sub-identifier, as
// numbers: -1, 0 or 1. A sub-identifier that is not a number (gosnmp never
// produces one) sorts after every number.
func compareOIDs(a, b string) int {
	a, b = strings.TrimPrefix(a, "."), strings.TrimPrefix(b, ".")
	for a != "" && b != "" {
		var x, y string
		x, a, _ = strings.Cut(a, ".")
		y, b, _ = strings.Cut(b, ".")
		if c := compareSubID(x, y); c != 0 {
			return c
		}
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	}
	return 1
}

func compareSubID(x, y string) int {
	nx, errx := strconv.ParseUint(x, 10, 64)
	ny, erry := strconv.ParseUint(y, 10, 64)
	switch {
	case errx == nil && erry == nil:
		switch {
		case nx < ny:
			return -1
		case nx > ny:
			return 1
		}
		return 0
	case errx == nil:
		return -1
	case erry == nil:
		return 1
	}
	return strings.Compare(x, y)
}

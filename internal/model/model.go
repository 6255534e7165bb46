// Package model is Sonde's result model, shared by the hub, the appliance and
// the agent: check data made of types, each a list of items, each item a set
// of metrics (INFRASONAR-WIRE.md §4 and §5).
package model

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Severity is how bad a check error is. The numbers are InfraSonar's.
type Severity int

// The severities, most severe first.
const (
	SeverityHigh   Severity = 0
	SeverityMedium Severity = 1
	SeverityLow    Severity = 2
)

// String returns the severity's name as agents send it.
func (s Severity) String() string {
	switch s {
	case SeverityHigh:
		return "HIGH"
	case SeverityMedium:
		return "MEDIUM"
	case SeverityLow:
		return "LOW"
	}
	return "Severity(" + strconv.Itoa(int(s)) + ")"
}

// ParseSeverity reads a severity name (HIGH, MEDIUM, LOW, any case).
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToUpper(s) {
	case "HIGH":
		return SeverityHigh, nil
	case "MEDIUM":
		return SeverityMedium, nil
	case "LOW":
		return SeverityLow, nil
	}
	return 0, fmt.Errorf("severity %q is not one of HIGH, MEDIUM, LOW", s)
}

// Kind is the type of a metric value.
type Kind uint8

// The kinds of metric values.
const (
	KindInt Kind = iota + 1
	KindFloat
	KindString
	KindBool
	KindList
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindInt:
		return "int"
	case KindFloat:
		return "float"
	case KindString:
		return "string"
	case KindBool:
		return "bool"
	case KindList:
		return "list"
	}
	return "unknown"
}

// Family groups kinds that may replace each other from one result to the
// next: an int metric may become a float (Python collectors do that with
// computed values), but a number never becomes a string.
func (k Kind) Family() string {
	if k == KindInt || k == KindFloat {
		return "number"
	}
	return k.String()
}

// Value is one metric value: an int, a float, a string, a bool, or a list of
// scalars.
type Value struct {
	Kind Kind
	Int  int64
	F    float64
	Str  string
	Bool bool
	List []Value
}

// IntValue returns an int Value.
func IntValue(i int64) Value { return Value{Kind: KindInt, Int: i} }

// FloatValue returns a float Value.
func FloatValue(f float64) Value { return Value{Kind: KindFloat, F: f} }

// StringValue returns a string Value.
func StringValue(s string) Value { return Value{Kind: KindString, Str: s} }

// BoolValue returns a bool Value.
func BoolValue(b bool) Value { return Value{Kind: KindBool, Bool: b} }

// Number returns the value as a float64 for the time-series store: ints and
// floats as they are, booleans as 0 or 1. ok is false for strings and lists.
func (v Value) Number() (f float64, ok bool) {
	switch v.Kind {
	case KindInt:
		return float64(v.Int), true
	case KindFloat:
		return v.F, true
	case KindBool:
		if v.Bool {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// AppendJSON appends the value's JSON encoding. A float always carries a
// decimal point or an exponent, so it reads back as a float.
func (v Value) AppendJSON(b []byte) []byte {
	switch v.Kind {
	case KindInt:
		return strconv.AppendInt(b, v.Int, 10)
	case KindFloat:
		return appendFloat(b, v.F)
	case KindString:
		return appendJSONString(b, v.Str)
	case KindBool:
		return strconv.AppendBool(b, v.Bool)
	case KindList:
		b = append(b, '[')
		for i, e := range v.List {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.AppendJSON(b)
		}
		return append(b, ']')
	}
	return append(b, "null"...)
}

// appendFloat writes f the way Python's json module does, as InfraSonar's
// probes send it: shortest form, positional between 1e-4 and 1e16
// (16777216.0, 0.0001), with an exponent outside (1e+16, 1e-05).
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		// Never stored: validation rejects them. Encode as null rather
		// than produce invalid JSON.
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-4 || abs >= 1e16) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	for _, c := range b[start:] {
		if c == '.' || c == 'e' || c == 'E' {
			return b
		}
	}
	return append(b, ".0"...)
}

// Metric is one named value of an item.
type Metric struct {
	Name  string
	Value Value
}

// Item is one named element of a type, e.g. one CPU or one disk.
type Item struct {
	Name    string
	Metrics []Metric
}

// Type is a named list of items, e.g. "cpu" or "memory".
type Type struct {
	Name  string
	Items []Item
}

// CheckError is the error a collector reports with a result.
type CheckError struct {
	Message  string
	Severity Severity
}

// CheckData is one result of one check: its types (or none when the check
// failed or the result is unchanged), an optional error, and bookkeeping.
type CheckData struct {
	Types []Type
	// HasResult is true when the result was sent: an error-only or an
	// unchanged result has none.
	HasResult bool
	Error     *CheckError
	// Timestamp is the scheduled time of the run, Unix seconds.
	Timestamp int64
	// Duration is how long the run took, in seconds.
	Duration float64
	// NoCount marks a result that must not reset "last seen" bookkeeping.
	NoCount bool
	// Unchanged means the result equals the last one sent.
	Unchanged bool
	// Version is the collector's version, when it said it.
	Version string
}

// SampleCount returns how many numeric values (ints, floats, bools) the
// result holds: what the time-series store receives.
func (d *CheckData) SampleCount() int {
	n := 0
	for _, t := range d.Types {
		for _, it := range t.Items {
			for _, m := range it.Metrics {
				if _, ok := m.Value.Number(); ok {
					n++
				}
			}
		}
	}
	return n
}

// ResultJSON encodes the types as InfraSonar's result object,
// {"<type>": [{"name": …, "<metric>": …}, …]}, in the order received.
func (d *CheckData) ResultJSON() []byte {
	b := make([]byte, 0, 256)
	b = append(b, '{')
	for i, t := range d.Types {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t.Name)
		b = append(b, ":["...)
		for j, it := range t.Items {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendJSONString(b, it.Name)
			for _, m := range it.Metrics {
				b = append(b, ',')
				b = appendJSONString(b, m.Name)
				b = append(b, ':')
				b = m.Value.AppendJSON(b)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Decoded strings are valid
// UTF-8; invalid bytes in strings made otherwise (e.g. a file name read by
// an agent) are written as U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				start = i + 1
			}
			i += size - 1
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

package promapi

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
)

// The encoders append JSON to a byte slice exactly as Prometheus' own
// codec (web/api/v1/json_codec.go, util/jsonutil) renders it.

// appendQueryData appends the data of a query response:
// {"resultType":"vector","result":[…]}.
func appendQueryData(b []byte, v parser.Value) ([]byte, error) {
	switch v := v.(type) {
	case promql.Vector:
		b = append(b, `{"resultType":"vector","result":[`...)
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendSample(b, s)
		}
		b = append(b, "]}"...)
	case promql.Matrix:
		b = append(b, `{"resultType":"matrix","result":[`...)
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendSeries(b, s)
		}
		b = append(b, "]}"...)
	case promql.Scalar:
		b = append(b, `{"resultType":"scalar","result":[`...)
		b = appendTimestamp(b, v.T)
		b = append(b, `,"`...)
		// Prometheus renders scalars without switching to exponents.
		b = strconv.AppendFloat(b, v.V, 'f', -1, 64)
		b = append(b, `"]}`...)
	case promql.String:
		b = append(b, `{"resultType":"string","result":[`...)
		b = appendTimestamp(b, v.T)
		b = append(b, ',')
		b = appendString(b, v.V)
		b = append(b, "]}"...)
	default:
		return nil, fmt.Errorf("encoding a query result: unexpected type %T", v)
	}
	return b, nil
}

// appendSample appends {"metric":{…},"value":[ts,"v"]} (or "histogram").
func appendSample(b []byte, s promql.Sample) []byte {
	b = append(b, `{"metric":`...)
	b = appendLabels(b, s.Metric)
	if s.H == nil {
		b = append(b, `,"value":[`...)
		b = appendTimestamp(b, s.T)
		b = append(b, ',')
		b = appendFloat(b, s.F)
	} else {
		b = append(b, `,"histogram":[`...)
		b = appendTimestamp(b, s.T)
		b = append(b, ',')
		b = appendHistogram(b, s.H)
	}
	return append(b, "]}"...)
}

// appendSeries appends {"metric":{…},"values":[[ts,"v"],…]}, with
// "histograms" too if the series has any; empty arrays are left out.
func appendSeries(b []byte, s promql.Series) []byte {
	b = append(b, `{"metric":`...)
	b = appendLabels(b, s.Metric)
	if len(s.Floats) > 0 {
		b = append(b, `,"values":[`...)
		for i, p := range s.Floats {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = appendTimestamp(b, p.T)
			b = append(b, ',')
			b = appendFloat(b, p.F)
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	if len(s.Histograms) > 0 {
		b = append(b, `,"histograms":[`...)
		for i, p := range s.Histograms {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = appendTimestamp(b, p.T)
			b = append(b, ',')
			b = appendHistogram(b, p.H)
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendLabels appends {"name":"value",…} in the labels' order.
func appendLabels(b []byte, ls labels.Labels) []byte {
	b = append(b, '{')
	first := true
	ls.Range(func(l labels.Label) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, l.Name)
		b = append(b, ':')
		b = appendString(b, l.Value)
	})
	return append(b, '}')
}

// appendTimestamp appends a millisecond timestamp as seconds, with the
// milliseconds as decimals when there are any: 1700000000.123.
func appendTimestamp(b []byte, t int64) []byte {
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, t/1000, 10)
	if frac := t % 1000; frac != 0 {
		b = append(b, '.')
		if frac < 100 {
			b = append(b, '0')
		}
		if frac < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, frac, 10)
	}
	return b
}

// appendFloat appends a sample value as a JSON string: shortest decimal
// form, exponent form below 1e-6 and from 1e21 on, "NaN", "+Inf", "-Inf".
func appendFloat(b []byte, f float64) []byte {
	b = append(b, '"')
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	return append(b, '"')
}

// appendHistogram appends a native histogram as Prometheus does:
// {"count":"…","sum":"…","buckets":[[boundaries,"lower","upper","count"],…]}.
func appendHistogram(b []byte, h *histogram.FloatHistogram) []byte {
	b = append(b, `{"count":`...)
	b = appendFloat(b, h.Count)
	b = append(b, `,"sum":`...)
	b = appendFloat(b, h.Sum)
	found := false
	it := h.AllBucketIterator()
	for it.Next() {
		bucket := it.At()
		if bucket.Count == 0 {
			continue
		}
		if found {
			b = append(b, ',')
		} else {
			b = append(b, `,"buckets":[`...)
			found = true
		}
		boundaries := 2 // Open on both sides.
		switch {
		case bucket.LowerInclusive && bucket.UpperInclusive:
			boundaries = 3
		case bucket.LowerInclusive:
			boundaries = 1
		case bucket.UpperInclusive:
			boundaries = 0
		}
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(boundaries), 10)
		b = append(b, ',')
		b = appendFloat(b, bucket.Lower)
		b = append(b, ',')
		b = appendFloat(b, bucket.Upper)
		b = append(b, ',')
		b = appendFloat(b, bucket.Count)
		b = append(b, ']')
	}
	if found {
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendStrings appends a JSON array of strings; nil is [].
func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string, escaping as encoding/json does
// (HTML characters included) and replacing invalid UTF-8 with U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
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
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

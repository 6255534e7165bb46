package remote

import (
	"errors"
	"fmt"
	"math"

	"github.com/golang/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// The remote-write 1.0 request, prometheus/prompb's WriteRequest, encoded
// by hand with protowire: prompb needs gogo/protobuf, which the module does
// not otherwise use. The field numbers are prompb's (types.proto,
// remote.proto):
//
//	WriteRequest { repeated TimeSeries timeseries = 1; }
//	TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//	Label        { string name = 1; string value = 2; }
//	Sample       { double value = 1; int64 timestamp = 2; }
const (
	fieldTimeseries = 1
	fieldLabels     = 1
	fieldSamples    = 2
	fieldName       = 1
	fieldValue      = 2
	fieldSampleV    = 1
	fieldSampleT    = 2
)

// Label is one label of a series.
type Label struct{ Name, Value string }

// WriteSample is one sample: a value at a time in milliseconds.
type WriteSample struct {
	Value float64
	T     int64
}

// WriteSeries is one series of a write request: its labels, sorted by name,
// and its samples.
type WriteSeries struct {
	Labels  []Label
	Samples []WriteSample
}

func labelSize(l Label) int {
	return protowire.SizeTag(fieldName) + protowire.SizeBytes(len(l.Name)) +
		protowire.SizeTag(fieldValue) + protowire.SizeBytes(len(l.Value))
}

// sampleSize leaves out zero fields, as proto3 encoders do.
func sampleSize(s WriteSample) int {
	n := 0
	if math.Float64bits(s.Value) != 0 {
		n += protowire.SizeTag(fieldSampleV) + protowire.SizeFixed64()
	}
	if s.T != 0 {
		n += protowire.SizeTag(fieldSampleT) + protowire.SizeVarint(uint64(s.T))
	}
	return n
}

func seriesSize(ts *WriteSeries) int {
	n := 0
	for _, l := range ts.Labels {
		n += protowire.SizeTag(fieldLabels) + protowire.SizeBytes(labelSize(l))
	}
	for _, s := range ts.Samples {
		n += protowire.SizeTag(fieldSamples) + protowire.SizeBytes(sampleSize(s))
	}
	return n
}

// AppendWriteRequest appends the protobuf encoding of a WriteRequest that
// holds series.
func AppendWriteRequest(b []byte, series []WriteSeries) []byte {
	for i := range series {
		ts := &series[i]
		b = protowire.AppendTag(b, fieldTimeseries, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(seriesSize(ts)))
		for _, l := range ts.Labels {
			b = protowire.AppendTag(b, fieldLabels, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(labelSize(l)))
			b = protowire.AppendTag(b, fieldName, protowire.BytesType)
			b = protowire.AppendString(b, l.Name)
			b = protowire.AppendTag(b, fieldValue, protowire.BytesType)
			b = protowire.AppendString(b, l.Value)
		}
		for _, s := range ts.Samples {
			b = protowire.AppendTag(b, fieldSamples, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(sampleSize(s)))
			if bits := math.Float64bits(s.Value); bits != 0 {
				b = protowire.AppendTag(b, fieldSampleV, protowire.Fixed64Type)
				b = protowire.AppendFixed64(b, bits)
			}
			if s.T != 0 {
				b = protowire.AppendTag(b, fieldSampleT, protowire.VarintType)
				b = protowire.AppendVarint(b, uint64(s.T))
			}
		}
	}
	return b
}

// EncodeWriteRequest returns the body of a remote-write 1.0 request: the
// WriteRequest, snappy block-compressed. pb is a scratch buffer it may
// reuse; dst receives the compressed body.
func EncodeWriteRequest(dst, pb []byte, series []WriteSeries) (body, scratch []byte) {
	pb = AppendWriteRequest(pb[:0], series)
	return snappy.Encode(dst[:cap(dst)], pb), pb
}

// DecodeWriteRequest reverses EncodeWriteRequest. It reads what any
// conforming encoder writes (fields in any order, zero fields left out)
// and skips fields it does not know.
func DecodeWriteRequest(body []byte) ([]WriteSeries, error) {
	pb, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	var out []WriteSeries
	err = eachField(pb, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != fieldTimeseries || typ != protowire.BytesType {
			return nil
		}
		var ts WriteSeries
		err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			switch {
			case num == fieldLabels && typ == protowire.BytesType:
				var l Label
				err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
					switch {
					case num == fieldName && typ == protowire.BytesType:
						l.Name = string(v)
					case num == fieldValue && typ == protowire.BytesType:
						l.Value = string(v)
					}
					return nil
				})
				ts.Labels = append(ts.Labels, l)
				return err
			case num == fieldSamples && typ == protowire.BytesType:
				var s WriteSample
				err := eachField(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
					switch {
					case num == fieldSampleV && typ == protowire.Fixed64Type:
						s.Value = math.Float64frombits(x)
					case num == fieldSampleT && typ == protowire.VarintType:
						s.T = int64(x)
					}
					return nil
				})
				ts.Samples = append(ts.Samples, s)
				return err
			}
			return nil
		})
		out = append(out, ts)
		return err
	})
	return out, err
}

// eachField calls fn for every field of the message b: with the bytes of
// a length-delimited field, or the number of a varint or fixed field.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("protobuf tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var (
			v []byte
			x uint64
		)
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var x32 uint32
			x32, n = protowire.ConsumeFixed32(b)
			x = uint64(x32)
		default:
			return errors.New("protobuf: unsupported wire type")
		}
		if n < 0 {
			return fmt.Errorf("protobuf field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

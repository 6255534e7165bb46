package main

import (
	"bytes"
	"encoding/hex"
	"math"
	"reflect"
	"testing"

	"github.com/golang/snappy"
)

func TestRemoteWriteGolden(t *testing.T) {
	// WriteRequest{timeseries: [{labels: [{__name__, up}], samples: [{1, 1000}]}]},
	// encoded by hand from prompb's field numbers.
	want, _ := hex.DecodeString("0a1e" + // timeseries, 30 bytes
		"0a0e" + "0a085f5f6e616d655f5f" + "12027570" + // label {__name__, up}
		"120c" + "09000000000000f03f" + "10e807") // sample {1.0, 1000}
	got := appendWriteRequest(nil, []rwSeries{{
		Labels:  []rwLabel{{"__name__", "up"}},
		Samples: []rwSample{{Value: 1, T: 1000}},
	}})
	if !bytes.Equal(got, want) {
		t.Errorf("encoding:\n got %x\nwant %x", got, want)
	}
}

func TestRemoteWriteRoundTrip(t *testing.T) {
	in := []rwSeries{
		{
			Labels:  seriesLabels(2, 17, 3, 4, 0, 5),
			Samples: []rwSample{{Value: 1234.56, T: 1_700_000_000_000}},
		},
		{
			Labels:  []rwLabel{{"__name__", "zero"}, {"empty", ""}},
			Samples: []rwSample{{Value: 0, T: 0}, {Value: -0.01, T: 1}, {Value: math.Inf(1), T: 2}},
		},
		{Labels: []rwLabel{{"__name__", "no_samples"}}},
	}
	body, _ := encodeRemoteWrite(nil, nil, in)
	if _, err := snappy.Decode(nil, body); err != nil {
		t.Fatalf("the body is not snappy block format: %v", err)
	}
	out, err := decodeRemoteWrite(body)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	// An empty label value and no samples decode as such.
	in[1].Labels[1].Value = ""
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	// Scratch buffers are reused without corrupting a second request.
	body2, pb := encodeRemoteWrite(nil, make([]byte, 0, 4), in[:1])
	out2, err := decodeRemoteWrite(body2)
	if err != nil || len(out2) != 1 || !reflect.DeepEqual(out2[0], in[0]) || len(pb) == 0 {
		t.Errorf("second encoding: %+v, %v", out2, err)
	}
}

func TestSeriesLabelsSorted(t *testing.T) {
	ls := seriesLabels(1, 2, 3, 4, 5, 6)
	for i := 1; i < len(ls); i++ {
		if ls[i-1].Name >= ls[i].Name {
			t.Fatalf("labels not sorted: %v", ls)
		}
	}
	if ls[0].Value != "sonde_bench_gauge06" {
		t.Errorf("metric name %q", ls[0].Value)
	}
}

func TestDecodeRemoteWriteRejectsGarbage(t *testing.T) {
	if _, err := decodeRemoteWrite([]byte("not snappy")); err == nil {
		t.Error("no error for a body that is not snappy")
	}
	if _, err := decodeRemoteWrite(snappy.Encode(nil, []byte{0x0a, 0x05, 0x01})); err == nil {
		t.Error("no error for truncated protobuf")
	}
}

package remote

import (
	"bytes"
	"encoding/hex"
	"math"
	"reflect"
	"testing"

	"github.com/golang/snappy"

	"github.com/sonde-monitoring/sonde/internal/tsstore"
)

func TestRemoteWriteGolden(t *testing.T) {
	// WriteRequest{timeseries: [{labels: [{__name__, up}], samples: [{1, 1000}]}]},
	// encoded by hand from prompb's field numbers.
	want, _ := hex.DecodeString("0a1e" + // timeseries, 30 bytes
		"0a0e" + "0a085f5f6e616d655f5f" + "12027570" + // label {__name__, up}
		"120c" + "09000000000000f03f" + "10e807") // sample {1.0, 1000}
	got := AppendWriteRequest(nil, []WriteSeries{{
		Labels:  []Label{{"__name__", "up"}},
		Samples: []WriteSample{{Value: 1, T: 1000}},
	}})
	if !bytes.Equal(got, want) {
		t.Errorf("encoding:\n got %x\nwant %x", got, want)
	}
}

func TestRemoteWriteRoundTrip(t *testing.T) {
	in := []WriteSeries{
		{
			Labels: []Label{{"__name__", "sonde_system_load"}, {"asset", "web 1"}, {"asset_id", "17"},
				{"check", "system"}, {"collector", "linux"}, {"container_id", "2"}, {"item", "cpu0"}},
			Samples: []WriteSample{{Value: 1234.56, T: 1_700_000_000_000}},
		},
		{
			Labels:  []Label{{"__name__", "zero"}, {"empty", ""}},
			Samples: []WriteSample{{Value: 0, T: 0}, {Value: -0.01, T: 1}, {Value: math.Inf(1), T: 2}},
		},
		{Labels: []Label{{"__name__", "no_samples"}}},
	}
	body, _ := EncodeWriteRequest(nil, nil, in)
	if _, err := snappy.Decode(nil, body); err != nil {
		t.Fatalf("the body is not snappy block format: %v", err)
	}
	out, err := DecodeWriteRequest(body)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	// An empty label value and no samples decode as such.
	in[1].Labels[1].Value = ""
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	// Scratch buffers are reused without corrupting a second request.
	body2, pb := EncodeWriteRequest(nil, make([]byte, 0, 4), in[:1])
	out2, err := DecodeWriteRequest(body2)
	if err != nil || len(out2) != 1 || !reflect.DeepEqual(out2[0], in[0]) || len(pb) == 0 {
		t.Errorf("second encoding: %+v, %v", out2, err)
	}
}

func TestDecodeRemoteWriteRejectsGarbage(t *testing.T) {
	if _, err := DecodeWriteRequest([]byte("not snappy")); err == nil {
		t.Error("no error for a body that is not snappy")
	}
	if _, err := DecodeWriteRequest(snappy.Encode(nil, []byte{0x0a, 0x05, 0x01})); err == nil {
		t.Error("no error for truncated protobuf")
	}
}

// TestRecordDecodes checks that queue records, put end to end as the
// sender does, are a WriteRequest with each sample's labels, sorted, empty
// ones left out.
func TestRecordDecodes(t *testing.T) {
	k := tsstore.SeriesKey{Metric: "sonde_if_octets", ContainerID: "7", AssetID: "9", Asset: "sw 1", Collector: "snmp", Check: "interfaces", Item: "ge-0/0/1"}
	r1 := appendRecord(nil, []tsstore.Sample{{Key: k, T: 1_700_000_000_123, V: 42.5}, {Key: tsstore.SeriesKey{Metric: "m", ContainerID: "7"}, T: 5, V: 0}})
	r2 := appendRecord(nil, []tsstore.Sample{{Key: k, T: 1_700_000_060_123, V: math.NaN()}})
	var pb []byte
	total := 0
	for _, r := range [][]byte{r1, r2} {
		n, fields, err := splitRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		pb = append(pb, fields...)
	}
	if total != 3 {
		t.Fatalf("records count %d samples, want 3", total)
	}
	got, err := DecodeWriteRequest(snappy.Encode(nil, pb))
	if err != nil {
		t.Fatal(err)
	}
	full := []Label{{"__name__", "sonde_if_octets"}, {"asset", "sw 1"}, {"asset_id", "9"}, {"check", "interfaces"},
		{"collector", "snmp"}, {"container_id", "7"}, {"item", "ge-0/0/1"}}
	if len(got) != 3 || !reflect.DeepEqual(got[0].Labels, full) || !reflect.DeepEqual(got[2].Labels, full) ||
		!reflect.DeepEqual(got[1].Labels, []Label{{"__name__", "m"}, {"container_id", "7"}}) {
		t.Fatalf("decoded %+v", got)
	}
	if got[0].Samples[0] != (WriteSample{Value: 42.5, T: 1_700_000_000_123}) || got[1].Samples[0] != (WriteSample{Value: 0, T: 5}) ||
		!math.IsNaN(got[2].Samples[0].Value) {
		t.Fatalf("decoded samples %+v %+v %+v", got[0].Samples, got[1].Samples, got[2].Samples)
	}
	if _, _, err := splitRecord([]byte{0xff}); err == nil {
		t.Error("a record without a valid count was accepted")
	}
}

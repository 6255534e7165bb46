package model

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeCheckData feeds arbitrary bodies to the decoder. It must never
// panic; an error must be a content error; and whatever it accepts must
// survive MarshalAgentJSON and a second decode unchanged.
func FuzzDecodeCheckData(f *testing.F) {
	seeds := []string{
		// Valid, both formats.
		`{"version":"1.2.3","runtime":0.12,"timestamp":1700000000,"data":{"cpu":[{"name":"cpu0","usage":12.5,"cores":4}]},"no_count":true}`,
		`{"error":{"severity":"LOW","message":"disk unreadable"}}`,
		`{"data":{"t":[{"name":"a","v":1}]},"error":{"severity":"HIGH","message":"partial"}}`,
		`{"result":{"disk":[{"name":"/","free":1024,"percentUsed":42.0}]},"framework":{"duration":0.034,"timestamp":1700000060,"no_count":true}}`,
		`{"result":null,"error":{"error":"timed out","severity":0},"framework":{"duration":10.0,"timestamp":1700000000}}`,
		`{"framework":{"duration":0.01,"timestamp":1700000000,"unchanged":true}}`,
		`{"framework":{"unchanged":true},"result":{}}`,
		`{"data":{"t":[{"name":"x","i":1,"f":1.0,"e":1e3,"neg":-0.0,"u":18446744073709551615,"n":null,"l":[1,2.5],"s":["a","\u00e9\ud83d\ude00"],"b":true}]}}`,
		`{"data":{"a":[{"name":"x","v":1},{"name":"y","v":2.5},{"name":"z"}],"b":[{"name":"x","v":"s"}]}}`,
		`{"data":{"t":[{"name":"a","v":1,"w":"s"},{"name":"b","w":"t","v":2}]}}`,
		`{"agent":{"os":["linux",{"k":[1,{"z":null}]}]},"data":{},"x":1}`,
		`{"data":{"t\u00e9":[{"name":"C:\\x\n\u0000","v":"<>&\"\\"}]}}`,
		`{"data":{"t":[{"name":"x","v":1e-400,"w":9223372036854775807,"z":-9223372036854775808}]}}`,
		// Invalid.
		``,
		`{"data":`,
		`{"data":{}} x`,
		`{"data":{},"data":{}}`,
		`{"data":{"t":[{"name":"a"},{"name":"a"}]}}`,
		`{"data":{"t":[{"name":"a","v":1},{"name":"b","v":"1"}]}}`,
		`{"data":{"t":[{"name":"x","v":[[1]]}]}}`,
		`{"data":{"t":[{"name":"x","v":[1,"a"]}]}}`,
		`{"data":{"t":[{"name":"x","v":{"a":1}}]}}`,
		`{"data":{"t":[{"v":1}]}}`,
		`{"data":{"t":[{"name":1}]}}`,
		`{"data":{"":[]}}`,
		`{"data":{"t":[{"name":"x","v":NaN}]}}`,
		`{"data":{"t":[{"name":"x","v":-Infinity}]}}`,
		`{"data":{"t":[{"name":"x","v":1e400}]}}`,
		`{"runtime":-1,"data":{}}`,
		`{"x":` + strings.Repeat("[", 100),
		`{"error":{"severity":3,"error":"e"}}`,
		`{"error":{"severity":"CRITICAL","message":"e"}}`,
		`{}`,
		`[]`,
		"{\"data\":{\"t\":[{\"name\":\"\xff\",\"v\":\"a\xc3(\"}]}}",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cd, err := DecodeCheckData(bytes.NewReader(body), Limits{})
		if err != nil {
			if cd != nil {
				t.Fatalf("data returned with error %v", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		checkInvariants(t, cd)
		again := cd.MarshalAgentJSON()
		cd2, err := DecodeCheckData(bytes.NewReader(again), Limits{})
		if err != nil {
			t.Fatalf("re-encoded body is refused: %v\nbody %q\nre-encoded %s", err, body, again)
		}
		if !reflect.DeepEqual(cd, cd2) {
			t.Fatalf("round trip differs\nbody %q\nre-encoded %s\nfirst\n%s\nsecond\n%s", body, again, dump(cd), dump(cd2))
		}
		if third := cd2.MarshalAgentJSON(); !bytes.Equal(third, again) {
			t.Fatalf("encoding is not stable:\n%s\n%s", again, third)
		}
	})
}

// checkInvariants checks what decoded data always satisfies.
func checkInvariants(t *testing.T, cd *CheckData) {
	t.Helper()
	if !cd.HasResult && cd.Error == nil && !cd.Unchanged {
		t.Fatal("accepted data with no result, error or unchanged")
	}
	if cd.HasResult && cd.Unchanged {
		t.Fatal("a result marked unchanged")
	}
	if !cd.HasResult && cd.Types != nil {
		t.Fatal("types without HasResult")
	}
	if cd.Duration < 0 || math.IsNaN(cd.Duration) || math.IsInf(cd.Duration, 0) {
		t.Fatalf("duration %v", cd.Duration)
	}
	if cd.Error != nil && (cd.Error.Message == "" || cd.Error.Severity < SeverityHigh || cd.Error.Severity > SeverityLow) {
		t.Fatalf("error %+v", cd.Error)
	}
	types := map[string]bool{}
	for _, ty := range cd.Types {
		if ty.Name == "" || types[ty.Name] {
			t.Fatalf("type name %q empty or repeated", ty.Name)
		}
		types[ty.Name] = true
		items := map[string]bool{}
		family := map[string]string{}
		for _, it := range ty.Items {
			if items[it.Name] {
				t.Fatalf("item %q repeated in %q", it.Name, ty.Name)
			}
			items[it.Name] = true
			metrics := map[string]bool{}
			for _, m := range it.Metrics {
				if m.Name == "" || m.Name == "name" || metrics[m.Name] {
					t.Fatalf("metric name %q empty, reserved or repeated", m.Name)
				}
				metrics[m.Name] = true
				if f, ok := family[m.Name]; ok && f != m.Value.Kind.Family() {
					t.Fatalf("metric %q changes family", m.Name)
				}
				family[m.Name] = m.Value.Kind.Family()
				checkValue(t, m.Value, true)
			}
		}
	}
}

func checkValue(t *testing.T, v Value, top bool) {
	t.Helper()
	switch v.Kind {
	case KindInt, KindString, KindBool:
	case KindFloat:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			t.Fatalf("float %v", v.F)
		}
	case KindList:
		if !top {
			t.Fatal("nested list")
		}
		for _, e := range v.List {
			if e.Kind.Family() != v.List[0].Kind.Family() {
				t.Fatal("list mixes families")
			}
			checkValue(t, e, false)
		}
	default:
		t.Fatalf("kind %v", v.Kind)
	}
}

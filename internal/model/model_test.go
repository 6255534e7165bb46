package model

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// richExample holds every kind of value, in shapes DecodeCheckData returns.
func richExample() *CheckData {
	return &CheckData{
		Types: []Type{
			typ("cpu",
				itm("cpu0", met("usage", fv(12.5)), met("cores", iv(4)), met("online", bv(true)),
					met("flags", lst(sv("sse"), sv("avx2"))), met("idle", fv(100))),
				itm("cpu1", met("usage", iv(3)), met("cores", iv(4)), met("online", bv(false)),
					met("flags", lst()), met("idle", fv(0.0001)))),
			typ("memInfo",
				itm("memory", met("total", iv(16_777_216)), met("free", fv(1.5e16)),
					met("bytesIn", fv(18446744073709551615)), met("min", iv(math.MinInt64)),
					met("ratio", fv(-0.25)), met("tiny", fv(5e-324)), met("huge", fv(math.MaxFloat64)),
					met("loads", lst(fv(0.5), iv(1), fv(2))), met("bits", lst(bv(true), bv(false))))),
			typ("empty"),
			typ("names",
				itm(""),
				itm("C:\\Windows\\System32", met("path", sv("/var/log/<x>&\"y\""))),
				itm("température ✓ 😀", met("s", sv("tab\tnl\nnul\x00esc\x1bdel\x7f\u2028"))),
			),
		},
		HasResult: true,
		Error:     &CheckError{Message: "partial: \"disk\" <unreadable> & \\more\\\n", Severity: SeverityLow},
		Timestamp: 1_700_000_000,
		Duration:  0.0421,
		NoCount:   true,
		Version:   "1.2.3-rc.1+<build>",
	}
}

func TestRoundTrip(t *testing.T) {
	tests := map[string]*CheckData{
		"rich":          richExample(),
		"error only":    {Error: &CheckError{Message: "timed out", Severity: SeverityHigh}, Timestamp: 1_700_000_000, Duration: 30},
		"medium error":  {Error: &CheckError{Message: "m", Severity: SeverityMedium}},
		"unchanged":     {Unchanged: true, Timestamp: 1_700_000_000, Duration: 0.01, NoCount: true},
		"unchanged err": {Unchanged: true, Error: &CheckError{Message: "m", Severity: SeverityLow}},
		"empty result":  {HasResult: true},
		"empty type":    {HasResult: true, Types: []Type{typ("t")}},
	}
	for name, cd := range tests {
		t.Run(name, func(t *testing.T) {
			body := cd.MarshalAgentJSON()
			if !json.Valid(body) {
				t.Fatalf("invalid JSON: %s", body)
			}
			got, err := DecodeCheckData(bytes.NewReader(body), Limits{})
			if err != nil {
				t.Fatalf("decoding %s: %v", body, err)
			}
			if !reflect.DeepEqual(got, cd) {
				t.Errorf("round trip of %s\ngot\n%s\nwant\n%s", body, dump(got), dump(cd))
			}
			// And again: encoding is stable.
			if again := got.MarshalAgentJSON(); !bytes.Equal(again, body) {
				t.Errorf("re-encoded\n%s\nfirst\n%s", again, body)
			}
		})
	}
}

// TestMarshalAgentJSON pins the agent body, as InfraSonar agents send it.
func TestMarshalAgentJSON(t *testing.T) {
	cd := &CheckData{
		Types:     []Type{typ("t", itm("x", met("v", fv(1)), met("i", iv(2))))},
		HasResult: true,
		Error:     &CheckError{Message: "m", Severity: SeverityLow},
		Timestamp: 1_700_000_000,
		Duration:  0.5,
		NoCount:   true,
		Version:   "1.0",
	}
	want := `{"version":"1.0","runtime":0.5,"timestamp":1700000000,"data":{"t":[{"name":"x","v":1.0,"i":2}]},` +
		`"no_count":true,"error":{"severity":"LOW","message":"m"}}`
	if got := string(cd.MarshalAgentJSON()); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	unchanged := &CheckData{Unchanged: true, Timestamp: 1_700_000_000}
	want = `{"runtime":0.0,"timestamp":1700000000,"framework":{"unchanged":true}}`
	if got := string(unchanged.MarshalAgentJSON()); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestResultJSONGolden(t *testing.T) {
	got := richExample().ResultJSON()
	var indented bytes.Buffer
	if err := json.Indent(&indented, got, "", "  "); err != nil {
		t.Fatalf("ResultJSON is not valid JSON: %v\n%s", err, got)
	}
	// The golden file holds the compact form (what is stored and sent),
	// then the indented one for reading diffs.
	out := append(append(append([]byte{}, got...), "\n\n"...), indented.Bytes()...)
	out = append(out, '\n')
	golden := filepath.Join("testdata", "result.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestResultJSONGolden -update to create it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("ResultJSON differs from %s (rerun with -update if intended):\ngot\n%s\nwant\n%s", golden, out, want)
	}
}

// TestResultJSONAgainstEncodingJSON reads ResultJSON back with
// encoding/json: same strings, ints as ints, floats with a decimal point.
func TestResultJSONAgainstEncodingJSON(t *testing.T) {
	cd := richExample()
	dec := json.NewDecoder(bytes.NewReader(cd.ResultJSON()))
	dec.UseNumber()
	var got map[string][]map[string]any
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	for _, ty := range cd.Types {
		items := got[ty.Name]
		if len(items) != len(ty.Items) {
			t.Fatalf("type %q: %d items, want %d", ty.Name, len(items), len(ty.Items))
		}
		for i, it := range ty.Items {
			if items[i]["name"] != it.Name {
				t.Errorf("item name %q, want %q", items[i]["name"], it.Name)
			}
			for _, m := range it.Metrics {
				checkJSONValue(t, m.Name, items[i][m.Name], m.Value)
			}
		}
	}
}

func checkJSONValue(t *testing.T, name string, got any, v Value) {
	t.Helper()
	switch v.Kind {
	case KindInt:
		n, ok := got.(json.Number)
		if !ok || string(n) != strings.TrimSpace(string(v.AppendJSON(nil))) || strings.ContainsAny(string(n), ".eE") {
			t.Errorf("%s: %v, want the int %d", name, got, v.Int)
		}
	case KindFloat:
		n, ok := got.(json.Number)
		if !ok || !strings.ContainsAny(string(n), ".eE") {
			t.Errorf("%s: %v, want a float literal", name, got)
			return
		}
		if f, err := n.Float64(); err != nil || f != v.F {
			t.Errorf("%s: %v, want %v", name, n, v.F)
		}
	case KindString:
		if got != v.Str {
			t.Errorf("%s: %q, want %q", name, got, v.Str)
		}
	case KindBool:
		if got != v.Bool {
			t.Errorf("%s: %v, want %v", name, got, v.Bool)
		}
	case KindList:
		l, ok := got.([]any)
		if !ok || len(l) != len(v.List) {
			t.Errorf("%s: %v, want a list of %d", name, got, len(v.List))
			return
		}
		for i, e := range v.List {
			checkJSONValue(t, name, l[i], e)
		}
	}
}

func TestSpecialCharactersRoundTrip(t *testing.T) {
	strs := []string{
		`"quoted"`, `back\slash`, `\"`, "\x00\x01\x1f\x7f", "tab\tcr\rnl\n", "<script>&amp;</script>",
		"ünïcødé ✓", "日本語", "😀 emoji", "\u2028\u2029", "\ufffd", "", " ", `\u0041`, "/", "a\x00",
	}
	for _, s := range strs {
		cd := &CheckData{
			Types: []Type{typ("t",
				itm(s, met("v", sv(s)), met("l", lst(sv(s), sv(s)))))},
			HasResult: true,
			Error:     &CheckError{Message: "m" + s, Severity: SeverityHigh},
			Version:   s,
		}
		body := cd.MarshalAgentJSON()
		if !json.Valid(body) {
			t.Errorf("%q: invalid JSON %s", s, body)
			continue
		}
		for _, c := range "<>&" {
			if bytes.ContainsRune(body, c) {
				t.Errorf("%q: %q not escaped in %s", s, c, body)
			}
		}
		got, err := DecodeCheckData(bytes.NewReader(body), Limits{})
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		if !reflect.DeepEqual(got, cd) {
			t.Errorf("%q: round trip\n%s\nwant\n%s", s, dump(got), dump(cd))
		}
		// encoding/json reads the same string.
		var std struct{ Version string }
		if err := json.Unmarshal(body, &std); err != nil || std.Version != s {
			t.Errorf("%q: encoding/json reads %q, %v", s, std.Version, err)
		}
	}
	// Names may hold the same characters but for control ones.
	for _, s := range []string{`"quoted"`, `back\slash`, "<>&", "ünï", "😀", "a.b[0]"} {
		cd := &CheckData{Types: []Type{typ(s, itm("x", met(s, iv(1))))}, HasResult: true}
		got, err := DecodeCheckData(bytes.NewReader(cd.MarshalAgentJSON()), Limits{})
		if err != nil {
			t.Errorf("%q: %v", s, err)
		} else if !reflect.DeepEqual(got, cd) {
			t.Errorf("%q: round trip\n%s\nwant\n%s", s, dump(got), dump(cd))
		}
	}
}

// TestInvalidUTF8Encoded checks that strings made outside the decoder with
// invalid UTF-8 still encode as valid JSON.
func TestInvalidUTF8Encoded(t *testing.T) {
	s := "a\xffb\xc3(c\xed\xa0\x80"
	b := appendJSONString(nil, s)
	if !json.Valid(b) {
		t.Fatalf("invalid JSON %q", b)
	}
	var got string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if want := "a\ufffdb\ufffd(c\ufffd\ufffd\ufffd"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if want := `"a\ufffdb\ufffd(c\ufffd\ufffd\ufffd"`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

func TestAppendJSON(t *testing.T) {
	point1, point2 := 0.1, 0.2 // not constants: summed at run time
	tests := []struct {
		v    Value
		want string
	}{
		{iv(0), "0"},
		{iv(-42), "-42"},
		{iv(math.MaxInt64), "9223372036854775807"},
		{fv(1), "1.0"},
		{fv(0), "0.0"},
		{fv(math.Copysign(0, -1)), "-0.0"},
		{fv(-2.5), "-2.5"},
		{fv(100), "100.0"},
		{fv(16_777_216), "16777216.0"},
		{fv(1234567.125), "1234567.125"},
		{fv(0.0001), "0.0001"},
		{fv(0.00001), "1e-05"},
		{fv(1e15), "1000000000000000.0"},
		{fv(1e16), "1e+16"},
		{fv(1.5e16), "1.5e+16"},
		{fv(18446744073709551615), "1.8446744073709552e+19"},
		{fv(5e-324), "5e-324"},
		{fv(math.MaxFloat64), "1.7976931348623157e+308"},
		{fv(point1 + point2), "0.30000000000000004"},
		{fv(math.NaN()), "null"},
		{fv(math.Inf(1)), "null"},
		{sv(`a"b\c<>&` + "\n\x00é"), `"a\"b\\c\u003c\u003e\u0026\n\u0000é"`},
		{bv(true), "true"},
		{bv(false), "false"},
		{lst(), "[]"},
		{lst(iv(1), fv(2), sv("x")), `[1,2.0,"x"]`},
		{Value{}, "null"},
	}
	for _, tc := range tests {
		if got := string(tc.v.AppendJSON(nil)); got != tc.want {
			t.Errorf("%v %#v: got %s, want %s", tc.v.Kind, tc.v, got, tc.want)
		}
		// Floats read back as floats, bit for bit.
		if tc.v.Kind == KindFloat && !math.IsNaN(tc.v.F) && !math.IsInf(tc.v.F, 0) {
			got, err := parseNumber(json.Number(tc.want))
			if err != nil || got.Kind != KindFloat || math.Float64bits(got.F) != math.Float64bits(tc.v.F) {
				t.Errorf("%s reads back as %v %v, %v", tc.want, got.Kind, got.F, err)
			}
		}
	}
}

func TestSampleCount(t *testing.T) {
	if n := (&CheckData{}).SampleCount(); n != 0 {
		t.Errorf("empty: %d", n)
	}
	// rich: cpu 2 items × (usage, cores, online, idle) = 8;
	// memInfo: total, free, bytesIn, min, ratio, tiny, huge = 7;
	// names: none (strings and lists do not count).
	if n := richExample().SampleCount(); n != 15 {
		t.Errorf("rich: %d samples, want 15", n)
	}
	cd := &CheckData{Types: []Type{
		typ("a", itm("x", met("s", sv("1")), met("l", lst(iv(1), iv(2))), met("b", bv(false)))),
		typ("b", itm("y", met("i", iv(0))), itm("z", met("f", fv(0)))),
	}}
	if n := cd.SampleCount(); n != 3 {
		t.Errorf("%d samples, want 3", n)
	}
}

func TestValueNumber(t *testing.T) {
	tests := []struct {
		v    Value
		want float64
		ok   bool
	}{
		{iv(7), 7, true},
		{iv(-1), -1, true},
		{iv(math.MaxInt64), math.MaxInt64, true},
		{fv(2.5), 2.5, true},
		{fv(0), 0, true},
		{bv(true), 1, true},
		{bv(false), 0, true},
		{sv("1"), 0, false},
		{sv(""), 0, false},
		{lst(iv(1)), 0, false},
		{lst(), 0, false},
		{Value{}, 0, false},
	}
	for _, tc := range tests {
		got, ok := tc.v.Number()
		if got != tc.want || ok != tc.ok {
			t.Errorf("%v %#v: Number() = %v, %v; want %v, %v", tc.v.Kind, tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSeverity(t *testing.T) {
	for _, s := range []Severity{SeverityHigh, SeverityMedium, SeverityLow} {
		got, err := ParseSeverity(strings.ToLower(s.String()))
		if err != nil || got != s {
			t.Errorf("ParseSeverity(%q) = %v, %v", s, got, err)
		}
	}
	if SeverityHigh != 0 || SeverityMedium != 1 || SeverityLow != 2 {
		t.Error("severity numbers differ from InfraSonar's 0 HIGH, 1 MEDIUM, 2 LOW")
	}
	if s := Severity(7).String(); s != "Severity(7)" {
		t.Errorf("Severity(7) = %q", s)
	}
	if _, err := ParseSeverity("WARN"); err == nil {
		t.Error("ParseSeverity(WARN) succeeded")
	}
}

func TestKindFamily(t *testing.T) {
	fam := map[Kind]string{KindInt: "number", KindFloat: "number", KindString: "string", KindBool: "bool", KindList: "list", 0: "unknown"}
	for k, want := range fam {
		if got := k.Family(); got != want {
			t.Errorf("%v.Family() = %q, want %q", k, got, want)
		}
	}
}

package wire

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// Helpers building check data.

func met(name string, v model.Value) model.Metric { return model.Metric{Name: name, Value: v} }

func itm(name string, ms ...model.Metric) model.Item { return model.Item{Name: name, Metrics: ms} }

func typ(name string, items ...model.Item) model.Type { return model.Type{Name: name, Items: items} }

func lst(vs ...model.Value) model.Value {
	return model.Value{Kind: model.KindList, List: append([]model.Value{}, vs...)}
}

func iv(i int64) model.Value   { return model.IntValue(i) }
func fv(f float64) model.Value { return model.FloatValue(f) }
func sv(s string) model.Value  { return model.StringValue(s) }
func bv(b bool) model.Value    { return model.BoolValue(b) }

func result(ts ...model.Type) *model.CheckData {
	return &model.CheckData{Types: ts, HasResult: true}
}

// sample is a check result with a bit of everything.
func sample() *model.CheckData {
	return &model.CheckData{
		Types: []model.Type{
			typ("cpu",
				itm("cpu0", met("usage", fv(12.5)), met("cores", iv(4)), met("online", bv(true)),
					met("flags", lst(sv("sse"), sv("avx2"))), met("idle", fv(100))),
				itm("cpu1", met("usage", fv(3)), met("cores", iv(4)), met("online", bv(false)),
					met("flags", lst()), met("idle", fv(0.0001)))),
			typ("memInfo",
				itm("memory", met("total", iv(16777216)), met("free", fv(1.5e16)), met("min", iv(math.MinInt64)),
					met("ratio", fv(-0.25)), met("loadAvg", lst(fv(0.5), fv(0.25), iv(1))))),
			typ("empty"),
		},
		HasResult: true,
		Error:     &model.CheckError{Message: "partial: swap unreadable", Severity: model.SeverityLow},
		Timestamp: 1700000000,
		Duration:  0.0421,
		NoCount:   true,
	}
}

// dump prints check data readably for failures.
func dump(cd *model.CheckData) string {
	if cd == nil {
		return "<nil>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HasResult=%v Unchanged=%v NoCount=%v Timestamp=%d Duration=%v Version=%q Error=%+v\n",
		cd.HasResult, cd.Unchanged, cd.NoCount, cd.Timestamp, cd.Duration, cd.Version, cd.Error)
	if cd.Types == nil {
		b.WriteString("  Types=nil\n")
	}
	for _, ty := range cd.Types {
		fmt.Fprintf(&b, "  type %q items-nil=%v\n", ty.Name, ty.Items == nil)
		for _, it := range ty.Items {
			fmt.Fprintf(&b, "    item %q metrics-nil=%v\n", it.Name, it.Metrics == nil)
			for _, m := range it.Metrics {
				fmt.Fprintf(&b, "      %q %s %s nil-list=%v\n", m.Name, m.Value.Kind, m.Value.AppendJSON(nil), m.Value.List == nil)
			}
		}
	}
	return b.String()
}

// sameSigns checks what DeepEqual cannot: -0.0 against 0.0.
func sameSigns(t *testing.T, got, want *model.CheckData) {
	t.Helper()
	if math.Signbit(got.Duration) != math.Signbit(want.Duration) {
		t.Errorf("duration %v, want %v", got.Duration, want.Duration)
	}
	for i, ty := range got.Types {
		for j, it := range ty.Items {
			for k, m := range it.Metrics {
				w := want.Types[i].Items[j].Metrics[k].Value
				if m.Value.Kind == model.KindFloat && math.Signbit(m.Value.F) != math.Signbit(w.F) {
					t.Errorf("%s: sign of %v, want %v", m.Name, m.Value.F, w.F)
				}
			}
		}
	}
}

func TestCheckDataRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   *model.CheckData
	}{
		{"everything", sample()},
		{"ints stay ints, floats stay floats", result(typ("t", itm("x",
			met("i", iv(1)), met("f", fv(1)), met("z", iv(0)), met("fz", fv(0)), met("neg", iv(-5)),
			met("nf", fv(math.Copysign(0, -1))), met("big", fv(1.5e300)), met("tiny", fv(5e-324)),
			met("max", iv(math.MaxInt64)), met("min", iv(math.MinInt64)), met("u64", fv(18446744073709551615)))))},
		{"lists", result(typ("t", itm("x",
			met("ints", lst(iv(1), iv(2), iv(3))), met("nums", lst(iv(1), fv(2.5))),
			met("strs", lst(sv("a"), sv(""))), met("bools", lst(bv(true), bv(false))),
			met("empty", lst()))))},
		{"bools and strings", result(typ("t",
			itm("a", met("up", bv(true)), met("host", sv("web1"))),
			itm("b", met("up", bv(false)), met("host", sv(strings.Repeat("é", 100)))),
		))},
		{"item without metrics", result(typ("t", itm("x")))},
		{"type without items", result(typ("t"))},
		{"no types", result()},
		{"odd names", result(typ("a.b", itm("C:\\x\n\x00"), itm(""), itm("ünï €", met("a[0]", iv(1)), met("100", iv(2)))))},
		{"error only, HIGH", &model.CheckData{Error: &model.CheckError{Message: "timed out", Severity: model.SeverityHigh},
			Timestamp: 1700000000, Duration: 10}},
		{"error only, MEDIUM", &model.CheckData{Error: &model.CheckError{Message: "m", Severity: model.SeverityMedium}}},
		{"error only, LOW", &model.CheckData{Error: &model.CheckError{Message: "m", Severity: model.SeverityLow}}},
		{"incomplete: result and error", &model.CheckData{Types: []model.Type{typ("t", itm("a", met("v", iv(1))))},
			HasResult: true, Error: &model.CheckError{Message: "partial", Severity: model.SeverityLow}}},
		{"unchanged", &model.CheckData{Unchanged: true, Timestamp: 1700000000, Duration: 0.01}},
		{"unchanged and no_count", &model.CheckData{Unchanged: true, NoCount: true, Timestamp: 1700000000}},
		{"no_count with result", &model.CheckData{HasResult: true, NoCount: true, Types: []model.Type{typ("t")}}},
		{"version", &model.CheckData{HasResult: true, Version: "1.2.3"}},
		{"negative zero duration", &model.CheckData{HasResult: true, Duration: math.Copysign(0, -1)}},
		{"many items and metrics", many(50, 40)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := EncodeCheckData(tc.in)
			got, err := DecodeCheckData(body, model.Limits{})
			if err != nil {
				t.Fatalf("DecodeCheckData: %v\nbody % x", err, body)
			}
			if !reflect.DeepEqual(got, tc.in) {
				t.Errorf("got\n%s\nwant\n%s", dump(got), dump(tc.in))
			}
			sameSigns(t, got, tc.in)
			// Appending to a buffer gives the same bytes after it.
			prefix := []byte{1, 2, 3}
			if again := AppendCheckData(prefix, tc.in); string(again[3:]) != string(body) {
				t.Error("AppendCheckData differs from EncodeCheckData")
			}
		})
	}
}

// many builds a result of items × metrics, floats and ints.
func many(items, metrics int) *model.CheckData {
	cd := &model.CheckData{HasResult: true, Timestamp: 1700000000, Duration: 0.5}
	var ty model.Type
	ty.Name = "disk"
	for i := range items {
		it := model.Item{Name: fmt.Sprintf("/dev/sd%d", i)}
		for m := range metrics {
			v := fv(float64(i*1000+m) + 0.25)
			if m%3 == 0 {
				v = iv(int64(i * m))
			}
			it.Metrics = append(it.Metrics, met(fmt.Sprintf("metric%d", m), v))
		}
		ty.Items = append(ty.Items, it)
	}
	cd.Types = []model.Type{ty}
	return cd
}

// TestCheckDataGolden pins the encoding of the sample, byte for byte.
func TestCheckDataGolden(t *testing.T) {
	golden(t, "checkdata.golden", EncodeCheckData(sample()))
	golden(t, "checkdata-error.golden", EncodeCheckData(&model.CheckData{
		Error: &model.CheckError{Message: "timed out", Severity: model.SeverityHigh}, Timestamp: 1700000000, Duration: 10}))
	golden(t, "checkdata-unchanged.golden", EncodeCheckData(&model.CheckData{
		Unchanged: true, NoCount: true, Timestamp: 1700000000, Duration: 0.01}))
}

// TestCheckDataLikeJSON decodes bodies in the probe's JSON format with the
// model's decoder, encodes them as MessagePack and decodes that: the result
// must be the same, so both formats hold the same data.
func TestCheckDataLikeJSON(t *testing.T) {
	for _, body := range []string{
		`{"result": {"disk": [{"name": "/", "free": 1024, "percentUsed": 42.0}]},
		  "framework": {"duration": 0.034, "timestamp": 1700000060, "no_count": true, "unchanged": false}}`,
		`{"result": null, "error": {"error": "timed out", "severity": 0}, "framework": {"duration": 10.0, "timestamp": 1700000000}}`,
		`{"framework": {"duration": 0.01, "timestamp": 1700000000, "unchanged": true}}`,
		`{"result": {"t": [{"name": "a", "v": 1, "s": "x"}, {"name": "b", "s": "y", "w": true}, {"name": "c", "w": false, "v": 2.5}]}}`,
		`{"result": {"t": [{"name": "a", "v": null}, {"name": "b", "v": "s"}]}}`,
		`{"result": {"t": [{"name": "x", "i": 1, "f": 1.0, "e": 1e3, "neg": -0.0, "u": 18446744073709551615, "n": null, "l": [1, 2.5], "b": true}]}}`,
		`{"data": {"t": []}, "version": "1.0", "runtime": 0.5, "timestamp": 1700000000.75}`,
	} {
		want, err := model.DecodeCheckData(strings.NewReader(body), model.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		got, err := DecodeCheckData(EncodeCheckData(want), model.Limits{})
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", body, dump(got), dump(want))
		}
	}
}

// TestDecodeCheckDataFromPeers decodes bodies written the way other
// encoders write them: keys in other orders, integer keys, small floats,
// wide formats for small numbers, nil for absent values.
func TestDecodeCheckDataFromPeers(t *testing.T) {
	f32 := func(f float32) raw { return raw(AppendFloat32(nil, f)) }
	tests := []struct {
		name string
		body []byte
		lim  model.Limits
		want *model.CheckData
	}{
		{
			name: "probe result, framework first",
			body: mp(m("framework", m("timestamp", 1700000060, "duration", 0.034, "no_count", true, "unchanged", false),
				"error", nil,
				"result", m("disk", a(m("name", "/", "free", 1024, "percentUsed", 42.0))))),
			want: &model.CheckData{
				Types:     []model.Type{typ("disk", itm("/", met("free", iv(1024)), met("percentUsed", fv(42))))},
				HasResult: true, Timestamp: 1700000060, Duration: 0.034, NoCount: true,
			},
		},
		{
			name: "wide integer formats read as ints",
			body: mp(m("result", m("t", a(m("name", "x",
				"a", raw{0xcd, 0x00, 0x01}, "b", raw{0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe},
				"c", raw{0xcf, 0, 0, 0, 0, 0, 0, 0, 7}, "d", raw{0xd0, 0x05}))))),
			want: result(typ("t", itm("x", met("a", iv(1)), met("b", iv(-2)), met("c", iv(7)), met("d", iv(5))))),
		},
		{
			name: "uint64 over int64 becomes a float, as in JSON",
			body: mp(m("result", m("t", a(m("name", "x", "u", uint64(math.MaxUint64)))))),
			want: result(typ("t", itm("x", met("u", fv(18446744073709551615))))),
		},
		{
			name: "float32 widened",
			body: mp(m("result", m("t", a(m("name", "x", "f", f32(1.5), "l", a(f32(0.25), 1)))))),
			want: result(typ("t", itm("x", met("f", fv(1.5)), met("l", lst(fv(0.25), iv(1)))))),
		},
		{
			name: "integer keys read as their decimal strings",
			body: mp(m("result", m(5, a(m("name", "x", 1, 10, -2, "s"))), 7, "ignored")),
			want: result(typ("5", itm("x", met("1", iv(10)), met("-2", sv("s"))))),
		},
		{
			name: "nil metric values are dropped, nil fields are absent",
			body: mp(m("result", m("t", a(m("name", "a", "v", nil, "w", 1), m("name", "b", "v", "s"))),
				"error", nil, "framework", nil, "version", nil)),
			want: result(typ("t", itm("a", met("w", iv(1))), itm("b", met("v", sv("s"))))),
		},
		{
			name: "float timestamp truncated, int duration",
			body: mp(m("error", m("message", "m"), "framework", m("timestamp", 1700000000.75, "duration", 2))),
			want: &model.CheckData{Error: &model.CheckError{Message: "m", Severity: model.SeverityMedium}, Timestamp: 1700000000, Duration: 2},
		},
		{
			name: "severity by name, any case",
			body: mp(m("error", m("error", "e", "severity", "low"))),
			want: &model.CheckData{Error: &model.CheckError{Message: "e", Severity: model.SeverityLow}},
		},
		{
			name: "nil severity is MEDIUM",
			body: mp(m("error", m("error", "e", "severity", nil, "traceback", a("x", m("y", 1))))),
			want: &model.CheckData{Error: &model.CheckError{Message: "e", Severity: model.SeverityMedium}},
		},
		{
			name: "unknown keys skipped at every level but items",
			body: mp(m("agent", m("os", a("linux", m("k", a(1, raw{0xc4, 1, 0}, m(1, nil))))), "result", m(),
				"framework", m("hostname", "h", "extra", a(a())), "x", raw{0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0})),
			want: result(),
		},
		{
			name: "agent keys",
			body: mp(m("data", m("t", a(m("name", "a"))), "runtime", 0.5, "timestamp", 1700000000, "no_count", true, "version", "1.0")),
			want: &model.CheckData{Types: []model.Type{typ("t", itm("a"))}, HasResult: true, Duration: 0.5,
				Timestamp: 1700000000, NoCount: true, Version: "1.0"},
		},
		{
			name: "a result sent overrides unchanged",
			body: mp(m("framework", m("unchanged", true), "result", m())),
			want: result(),
		},
		{
			name: "limits reached exactly",
			lim: model.Limits{MaxTypes: 2, MaxItems: 2, MaxMetrics: 2, MaxNameLen: 3, MaxItemNameLen: 3,
				MaxStringLen: 3, MaxListLen: 3, MaxMessageLen: 3, MaxVersionLen: 3, MaxValues: 5},
			body: mp(m("version", "1.0", "result", m("abc", a(m("name", "abc", "a", "abc", "b", a(1, 2, 3)), m("name", "d")), "e", a()),
				"error", m("error", "abc"))),
			want: &model.CheckData{
				Types: []model.Type{
					typ("abc", itm("abc", met("a", sv("abc")), met("b", lst(iv(1), iv(2), iv(3)))), itm("d")),
					typ("e"),
				},
				HasResult: true,
				Error:     &model.CheckError{Message: "abc", Severity: model.SeverityMedium},
				Version:   "1.0",
			},
		},
		{
			name: "metrics in other orders across items",
			body: mp(m("result", m("t", a(
				m("name", "a", "v", 1, "s", "x"),
				m("s", "y", "name", "b", "w", true),
				m("w", false, "v", 2.5, "name", "c"),
				m("name", "d", "v", 3, "s", "z"))))),
			want: result(typ("t",
				itm("a", met("v", iv(1)), met("s", sv("x"))),
				itm("b", met("s", sv("y")), met("w", bv(true))),
				itm("c", met("w", bv(false)), met("v", fv(2.5))),
				itm("d", met("v", iv(3)), met("s", sv("z"))))),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeCheckData(tc.body, tc.lim)
			if err != nil {
				t.Fatalf("DecodeCheckData: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", dump(got), dump(tc.want))
			}
		})
	}
}

func TestDecodeCheckDataErrors(t *testing.T) {
	small := model.Limits{MaxTypes: 2, MaxItems: 2, MaxMetrics: 2, MaxNameLen: 5, MaxItemNameLen: 5,
		MaxStringLen: 5, MaxListLen: 3, MaxMessageLen: 5, MaxVersionLen: 5, MaxSkippedDepth: 3}
	one := func(metrics ...any) []byte {
		return mp(m("result", m("t", a(m(append([]any{"name", "x"}, metrics...)...)))))
	}
	nan := raw(AppendFloat64(nil, math.NaN()))
	inf := raw(AppendFloat64(nil, math.Inf(1)))
	deep := raw(repeat([]byte{0x91}, 10000, 0xc0))
	deepMaps := raw(repeat([]byte{0x81, 0xa0}, 10000, 0xc0))
	tests := []struct {
		name string
		body []byte
		lim  model.Limits
		path string
		msg  string // the exact message
	}{
		// Malformed MessagePack.
		{name: "empty body", body: nil, msg: "malformed MessagePack at byte 0: unexpected end of input"},
		{name: "truncated map", body: []byte{0x81, 0xa6}, msg: "malformed MessagePack at byte 0: truncated map of 1 pairs: 1 bytes left"},
		{name: "truncated in an item", body: one("v", 1)[:20], path: "result.t[0]",
			msg: "malformed MessagePack at byte 20: unexpected end of input"},
		{name: "truncated value", body: one("v", raw{0xcb, 0x3f}), path: "result.t[0].v",
			msg: "malformed MessagePack at byte 22: truncated float64: 8 bytes announced, 1 left"},
		{name: "ext value", body: one("v", raw{0xd4, 1, 0}), path: "result.t[0].v",
			msg: "malformed MessagePack at byte 22: extension types are not accepted"},
		{name: "invalid UTF-8 string", body: one("v", raw{0xa2, 0xc3, 0x28}), path: "result.t[0].v",
			msg: "malformed MessagePack at byte 22: a str holds invalid UTF-8 (send binary as bin)"},
		{name: "trailing bytes", body: append(mp(m("result", m())), 0xc0), msg: "1 bytes follow the MessagePack map"},
		{name: "hostile item count", body: mp(m("result", m("t", raw{0xdd, 0xff, 0xff, 0xff, 0xff}))), path: "result.t",
			msg: "malformed MessagePack at byte 11: truncated array of 4294967295 elements: 0 bytes left"},
		{name: "hostile metric count", body: mp(m("result", m("t", a(raw{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1})))), path: "result.t[0]",
			msg: "malformed MessagePack at byte 12: truncated map of 4294967295 pairs: 1 bytes left"},
		{name: "map key of another type", body: mp(m("result", m("t", a(m(nil, 1))))), path: "result.t[0]",
			msg: "expected a map key (a string or an integer), got nil"},

		// Wrong types, level by level.
		{name: "top array", body: mp(a()), msg: "expected a MessagePack map, got an array"},
		{name: "top nil", body: mp(nil), msg: "expected a MessagePack map, got nil"},
		{name: "top string", body: mp("result"), msg: "expected a MessagePack map, got a string"},
		{name: "result array", body: mp(m("result", a())), path: "result", msg: "expected a map of types, got an array"},
		{name: "result binary", body: mp(m("result", []byte{})), path: "result", msg: "expected a map of types, got binary data"},
		{name: "type map", body: mp(m("result", m("t", m()))), path: "result.t", msg: "expected an array of items, got a map"},
		{name: "type nil", body: mp(m("result", m("t", nil))), path: "result.t", msg: "expected an array of items, got nil"},
		{name: "item integer", body: mp(m("result", m("t", a(1)))), path: "result.t[0]", msg: "expected an item map, got the integer 1"},
		{name: "item nil", body: mp(m("result", m("t", a(m("name", "a"), nil)))), path: "result.t[1]", msg: "expected an item map, got nil"},
		{name: "error string", body: mp(m("error", "boom")), path: "error", msg: "expected a map with error and severity, got a string"},
		{name: "message integer", body: mp(m("error", m("error", 1))), path: "error.error", msg: "expected a string, got the integer 1"},
		{name: "severity bool", body: mp(m("error", m("error", "m", "severity", true))), path: "error.severity", msg: "expected a severity, got a boolean"},
		{name: "severity name", body: mp(m("error", m("error", "m", "severity", "CRITICAL"))), path: "error.severity",
			msg: `severity "CRITICAL" is not one of HIGH, MEDIUM, LOW`},
		{name: "severity 3", body: mp(m("error", m("error", "m", "severity", 3))), path: "error.severity", msg: "3 is not 0 (HIGH), 1 (MEDIUM) or 2 (LOW)"},
		{name: "severity -1", body: mp(m("error", m("error", "m", "severity", -1))), path: "error.severity", msg: "-1 is not 0 (HIGH), 1 (MEDIUM) or 2 (LOW)"},
		{name: "severity float", body: mp(m("error", m("error", "m", "severity", 1.0))), path: "error.severity",
			msg: "the float 1 is not 0 (HIGH), 1 (MEDIUM) or 2 (LOW)"},
		{name: "severity uint64", body: mp(m("error", m("error", "m", "severity", uint64(math.MaxUint64)))), path: "error.severity",
			msg: "the integer 18446744073709551615 is not 0 (HIGH), 1 (MEDIUM) or 2 (LOW)"},
		{name: "framework array", body: mp(m("framework", a(), "result", m())), path: "framework", msg: "expected a map, got an array"},
		{name: "duration string", body: mp(m("framework", m("duration", "1"))), path: "framework.duration", msg: "expected a number, got a string"},
		{name: "duration NaN", body: mp(m("framework", m("duration", nan))), path: "framework.duration", msg: "the float NaN is out of range"},
		{name: "duration negative", body: mp(m("framework", m("duration", -2), "result", m())), path: "framework.duration", msg: "-2 seconds is negative"},
		{name: "timestamp string", body: mp(m("framework", m("timestamp", "now"))), path: "framework.timestamp", msg: "expected a number, got a string"},
		{name: "timestamp negative", body: mp(m("framework", m("timestamp", -1))), path: "framework.timestamp", msg: "-1 is not a Unix time in seconds"},
		{name: "timestamp in microseconds", body: mp(m("timestamp", 1700000000000000, "result", m())), path: "timestamp",
			msg: "1700000000000000 is not a Unix time in seconds"},
		{name: "timestamp float in milliseconds", body: mp(m("timestamp", 1.7e12, "result", m())), path: "timestamp",
			msg: "1.7e+12 is not a Unix time in seconds"},
		{name: "timestamp uint64", body: mp(m("timestamp", uint64(math.MaxUint64), "result", m())), path: "timestamp",
			msg: "18446744073709551615 is not a Unix time in seconds"},
		{name: "timestamp infinite", body: mp(m("timestamp", inf, "result", m())), path: "timestamp", msg: "the float +Inf is out of range"},
		{name: "unchanged string", body: mp(m("framework", m("unchanged", "yes"))), path: "framework.unchanged", msg: "expected true or false, got a string"},
		{name: "no_count integer", body: mp(m("framework", m("no_count", 1))), path: "framework.no_count", msg: "expected true or false, got the integer 1"},
		{name: "version float", body: mp(m("version", 1.5, "result", m())), path: "version", msg: "expected a string, got the float 1.5"},

		// Duplicates.
		{name: "duplicate item names", body: mp(m("result", m("t", a(m("name", "a"), m("name", "b"), m("name", "a"))))), path: "result.t[2]",
			msg: `item name "a" repeats item 0; item names must be unique within a type`},
		{name: "duplicate top-level key", body: mp(m("result", m(), "result", m())), path: "result", msg: "appears twice"},
		{name: "duplicate unknown key", body: mp(m("x", 1, "result", m(), "x", 2)), path: "x", msg: "appears twice"},
		{name: "integer key repeats a string key", body: mp(m("1", 1, "result", m(), 1, 2)), path: "1", msg: "appears twice"},
		{name: "data and result", body: mp(m("data", m(), "result", m())), path: "result", msg: "both data and result given; send one"},
		{name: "duplicate type", body: mp(m("result", m("t", a(), "u", a(), "t", a()))), path: "result.t", msg: "type appears twice"},
		{name: "duplicate metric", body: one("v", 1, "w", 2, "v", 1), path: "result.t[0].v", msg: "metric appears twice in the item"},
		{name: "duplicate nil metric", body: one("v", nil, "v", 1), path: "result.t[0].v", msg: "metric appears twice in the item"},
		{name: "duplicate metric among many", body: one(append(manyMetrics(30), "m17", 0)...), path: "result.t[0].m17", msg: "metric appears twice in the item"},
		{name: "duplicate metric in an aligned item", body: mp(m("result", m("t", a(m("name", "a", "v", 1, "w", 2), m("name", "b", "v", 1, "v", 2))))),
			path: "result.t[1].v", msg: "metric appears twice in the item"},
		{name: "duplicate metric after an aligned run", body: mp(m("result", m("t", a(m("name", "a", "v", 1, "w", 2), m("name", "b", "v", 1, "w", 2, "v", 3))))),
			path: "result.t[1].v", msg: "metric appears twice in the item"},
		{name: "duplicate name key", body: mp(m("result", m("t", a(m("name", "a", "name", "b"))))), path: "result.t[0].name", msg: "metric appears twice in the item"},
		{name: "duplicate framework key", body: mp(m("framework", m("unchanged", true, "unchanged", false))), path: "framework.unchanged", msg: "appears twice"},
		{name: "duplicate error key", body: mp(m("error", m("error", "a", "error", "b"))), path: "error.error", msg: "appears twice"},
		{name: "message and error keys", body: mp(m("error", m("message", "a", "error", "b"))), path: "error.error", msg: "both message and error given; send one"},

		// Item names.
		{name: "item without name", body: mp(m("result", m("t", a(m("name", "a"), m("v", 1))))), path: "result.t[1]", msg: "item has no name"},
		{name: "empty item", body: mp(m("result", m("t", a(m())))), path: "result.t[0]", msg: "item has no name"},
		{name: "integer name", body: mp(m("result", m("t", a(m("name", 1))))), path: "result.t[0].name", msg: "the item name must be a string, got the integer 1"},
		{name: "nil name", body: mp(m("result", m("t", a(m("name", nil))))), path: "result.t[0].name", msg: "the item name must be a string, got nil"},
		{name: "binary name", body: mp(m("result", m("t", a(m("name", []byte("a")))))), path: "result.t[0].name", msg: "the item name must be a string, got binary data"},

		// Kinds.
		{name: "int then string", body: mp(m("result", m("t", a(m("name", "a", "v", 1), m("name", "b", "v", "1"))))), path: "result.t[1].v",
			msg: "is a string here but an int in an earlier item; a metric keeps its type"},
		{name: "string then float", body: mp(m("result", m("t", a(m("name", "a", "v", "x"), m("name", "b", "v", 1.5))))), path: "result.t[1].v",
			msg: "is a float here but a string in an earlier item; a metric keeps its type"},
		{name: "bool then int", body: mp(m("result", m("t", a(m("name", "a", "v", true), m("name", "b", "v", 1))))), path: "result.t[1].v",
			msg: "is an int here but a bool in an earlier item; a metric keeps its type"},
		{name: "list then string", body: mp(m("result", m("t", a(m("name", "a", "v", a(1)), m("name", "b", "v", "1"))))), path: "result.t[1].v",
			msg: "is a string here but a list in an earlier item; a metric keeps its type"},
		{name: "kind change out of order", body: mp(m("result", m("t", a(m("name", "a", "v", 1, "w", 2), m("name", "b", "w", 3, "v", "x"))))),
			path: "result.t[1].v", msg: "is a string here but an int in an earlier item; a metric keeps its type"},
		{name: "kind change after a gap", body: mp(m("result", m("t", a(m("name", "a", "v", 1), m("name", "b"), m("name", "c", "v", "x"))))),
			path: "result.t[2].v", msg: "is a string here but an int in an earlier item; a metric keeps its type"},
		{name: "kind change after a nil", body: mp(m("result", m("t", a(m("name", "a", "v", 1.5), m("name", "b", "v", nil), m("name", "c", "v", false))))),
			path: "result.t[2].v", msg: "is a bool here but a float in an earlier item; a metric keeps its type"},

		// Values.
		{name: "NaN", body: one("v", nan), path: "result.t[0].v", msg: "NaN is not a value; send nil for a missing value"},
		{name: "infinity", body: one("v", inf), path: "result.t[0].v", msg: "the float +Inf is out of range"},
		{name: "-infinity in a list", body: one("v", a(1.0, raw(AppendFloat64(nil, math.Inf(-1))))), path: "result.t[0].v[1]",
			msg: "the float -Inf is out of range"},
		{name: "float32 NaN", body: one("v", raw(AppendFloat32(nil, float32(math.NaN())))), path: "result.t[0].v",
			msg: "NaN is not a value; send nil for a missing value"},
		{name: "nested list", body: one("v", a(a(1))), path: "result.t[0].v[0]", msg: "lists inside lists are not allowed"},
		{name: "deep nesting as a value", body: one("v", deep), path: "result.t[0].v[0]", msg: "lists inside lists are not allowed"},
		{name: "map value", body: one("v", m("a", 1)), path: "result.t[0].v",
			msg: "a metric value must be an int, float, string, bool or a list of those, not a map"},
		{name: "binary value", body: one("v", []byte("x")), path: "result.t[0].v",
			msg: "a metric value must be an int, float, string, bool or a list of those, not binary data"},
		{name: "map in list", body: one("v", a(m())), path: "result.t[0].v[0]",
			msg: "a metric value must be an int, float, string, bool or a list of those, not a map"},
		{name: "list mixes numbers and strings", body: one("v", a(1, "a")), path: "result.t[0].v[1]", msg: "list mixes number and string values"},
		{name: "list mixes bools and numbers", body: one("v", a(true, 1.5)), path: "result.t[0].v[1]", msg: "list mixes bool and number values"},
		{name: "nil in list", body: one("v", a(1, nil)), path: "result.t[0].v[1]", msg: "nil inside a list is not allowed"},

		// Names.
		{name: "empty type name", body: mp(m("result", m("", a()))), path: "result", msg: "type name is empty"},
		{name: "empty metric name", body: one("", 1), path: "result.t[0]", msg: "metric name is empty"},
		{name: "control character in type name", body: mp(m("result", m("a\x01b", a()))), path: "result", msg: `type name "a\x01b" holds a control or invalid character`},
		{name: "newline in metric name", body: one("a\nb", 1), path: "result.t[0]", msg: `metric name "a\nb" holds a control or invalid character`},
		{name: "C1 control in metric name", body: one("a\u0085", 1), path: "result.t[0]", msg: `metric name "a\u0085" holds a control or invalid character`},
		{name: "U+FFFD in metric name", body: one("a\ufffd", 1), path: "result.t[0]", msg: "metric name \"a\ufffd\" holds a control or invalid character"},
		{name: "odd type name quoted in paths", body: mp(m("result", m("a.b", m()))), path: `result["a.b"]`, msg: "expected an array of items, got a map"},
		{name: "odd metric name quoted in paths", body: one("a[0]", m()), path: `result.t[0]["a[0]"]`,
			msg: "a metric value must be an int, float, string, bool or a list of those, not a map"},

		// Limits.
		{name: "type name too long", lim: small, body: mp(m("result", m("abcdef", a()))), path: "result", msg: `type name "abcdef" is 6 bytes, more than 5`},
		{name: "long type name cut in the message", body: mp(m("result", m(strings.Repeat("é", 150), a()))), path: "result",
			msg: `type name "` + strings.Repeat("é", 10) + `"… is 300 bytes, more than 200`},
		{name: "metric name too long", lim: small, body: one("abcdef", 1), path: "result.t[0]", msg: `metric name "abcdef" is 6 bytes, more than 5`},
		{name: "item name too long", lim: small, body: mp(m("result", m("t", a(m("name", "abcdef"))))), path: "result.t[0].name", msg: "item name is 6 bytes, more than 5"},
		{name: "string too long", lim: small, body: one("v", "abcdef"), path: "result.t[0].v", msg: "string is 6 bytes, more than 5"},
		{name: "string in list too long", lim: small, body: one("v", a("a", "abcdef")), path: "result.t[0].v[1]", msg: "string is 6 bytes, more than 5"},
		{name: "list too long", lim: small, body: one("v", a(1, 2, 3, 4)), path: "result.t[0].v[3]", msg: "list has more than 3 elements"},
		{name: "message too long", lim: small, body: mp(m("error", m("error", "abcdef"))), path: "error.error", msg: "is 6 bytes, more than 5"},
		{name: "version too long", lim: small, body: mp(m("version", "1.2.3.4", "result", m())), path: "version", msg: "is 7 bytes, more than 5"},
		{name: "too many types", lim: small, body: mp(m("result", m("a", a(), "b", a(), "c", a()))), path: "result.c", msg: "more than 2 types in one result"},
		{name: "too many items", lim: small, body: mp(m("result", m("a", a(m("name", "1"), m("name", "2"), m("name", "3"))))), path: "result.a[2]",
			msg: "more than 2 items in one type"},
		{name: "too many metrics", lim: small, body: one("a", 1, "b", 2, "c", 3), path: "result.t[0].c", msg: "more than 2 metrics in one item"},
		{name: "nil metrics do not count", lim: small, body: one("a", nil, "b", 2, "c", nil, "d", 4, "e", 5), path: "result.t[0].e", msg: "more than 2 metrics in one item"},
		{name: "default metric limit", body: one(manyMetrics(1001)...), path: "result.t[0].m1000", msg: "more than 1000 metrics in one item"},
		{name: "too many values", lim: model.Limits{MaxValues: 5},
			body: mp(m("result", m("a", a(m("name", "1", "x", 1, "y", a(1, 2)), m("name", "2", "x", 2, "y", a(3)))))),
			path: "result.a[1].y", msg: "the result holds more than 5 values"},
		{name: "skipped nesting limit", lim: small, body: mp(m("x", a(a(a(a()))), "result", m())), path: "x", msg: "nested more than 3 levels deep"},
		{name: "skipped nesting limit in framework", lim: small, body: mp(m("framework", m("x", a(a(a()))))), path: "framework.x", msg: "nested more than 3 levels deep"},
		{name: "skipped nesting limit in error", lim: small, body: mp(m("error", m("error", "m", "x", a(a())))), path: "error.x", msg: "nested more than 3 levels deep"},
		{name: "deep nesting in an unknown key", body: mp(m("x", deep)), path: "x", msg: "nested more than 16 levels deep"},
		{name: "deep maps in an unknown key", body: mp(m("x", deepMaps)), path: "x", msg: "nested more than 16 levels deep"},
		{name: "malformed in a skipped value", body: mp(m("x", a(raw{0xc1}))), path: "x", msg: "malformed MessagePack at byte 4: the reserved byte 0xc1 is not MessagePack"},

		// Nothing to store.
		{name: "empty map", body: mp(m()), msg: "check data needs result (or data) or error"},
		{name: "only bookkeeping", body: mp(m("framework", m("duration", 0.1, "timestamp", 1700000000, "no_count", true))), msg: "check data needs result (or data) or error"},
		{name: "nil result", body: mp(m("result", nil, "error", nil)), msg: "check data needs result (or data) or error"},
		{name: "unchanged false", body: mp(m("framework", m("unchanged", false))), msg: "check data needs result (or data) or error"},
		{name: "error without message", body: mp(m("error", m("severity", 2))), path: "error", msg: "has no message"},
		{name: "error with empty message", body: mp(m("error", m("error", ""))), path: "error", msg: "has no message"},
		{name: "error with nil message", body: mp(m("error", m("error", nil, "severity", 0))), path: "error", msg: "has no message"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cd, err := DecodeCheckData(tc.body, tc.lim)
			if err == nil {
				t.Fatalf("no error; got\n%s", dump(cd))
			}
			if cd != nil {
				t.Errorf("data returned with the error %v", err)
			}
			if !errors.Is(err, model.ErrInvalid) {
				t.Errorf("error %v does not wrap model.ErrInvalid", err)
			}
			var de *model.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *model.DecodeError", err, err)
			}
			if de.Path != tc.path {
				t.Errorf("path %q, want %q (error %q)", de.Path, tc.path, err)
			}
			if de.Msg != tc.msg {
				t.Errorf("message\n%q, want\n%q", de.Msg, tc.msg)
			}
		})
	}
}

// repeat returns n copies of p, then the rest.
func repeat(p []byte, n int, rest ...byte) []byte {
	out := make([]byte, 0, n*len(p)+len(rest))
	for range n {
		out = append(out, p...)
	}
	return append(out, rest...)
}

func manyMetrics(n int) []any {
	out := make([]any, 0, 2*n)
	for i := range n {
		out = append(out, fmt.Sprintf("m%d", i), i)
	}
	return out
}

// TestDecodeCheckDataHostileAllocatesLittle checks that counts announcing
// far more than the body holds are refused before allocating.
func TestDecodeCheckDataHostileAllocatesLittle(t *testing.T) {
	body := mp(m("result", m("t", a(m("name", "x", "v", raw{0xdd, 0x00, 0xff, 0xff, 0xff}, "w", 1)))))
	// Bytes, not the number of allocations: the race detector and the
	// garbage collector add a few of those, and what matters is that the
	// claimed 4 GiB string is never allocated.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := DecodeCheckData(body, model.Limits{}); err == nil {
			t.Fatal("no error")
		}
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 10*64<<10 {
		t.Errorf("10 decodes allocated %d bytes", n)
	}
}

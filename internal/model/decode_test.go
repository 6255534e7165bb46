package model

import (
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Helpers building the values DecodeCheckData returns.

func met(name string, v Value) Metric { return Metric{Name: name, Value: v} }

func itm(name string, ms ...Metric) Item { return Item{Name: name, Metrics: ms} }

func typ(name string, items ...Item) Type { return Type{Name: name, Items: items} }

func lst(vs ...Value) Value { return Value{Kind: KindList, List: append([]Value{}, vs...)} }

func iv(i int64) Value   { return IntValue(i) }
func fv(f float64) Value { return FloatValue(f) }
func sv(s string) Value  { return StringValue(s) }
func bv(b bool) Value    { return BoolValue(b) }
func result(ts ...Type) *CheckData {
	return &CheckData{Types: ts, HasResult: true}
}

// oneItem wraps metric JSON in a body of one type "t" with one item "x".
func oneItem(metrics string) string {
	return `{"data":{"t":[{"name":"x",` + metrics + `}]}}`
}

func TestDecodeCheckData(t *testing.T) {
	tests := []struct {
		name string
		body string
		lim  Limits
		want *CheckData
	}{
		{
			name: "agent with data",
			body: `{"version": "1.2.3", "runtime": 0.12, "timestamp": 1700000000,
				"data": {
					"cpu": [{"name": "cpu0", "usage": 12.5, "cores": 4}, {"name": "cpu1", "usage": 3.0, "cores": 4}],
					"system": [{"name": "system", "hostname": "web1", "up": true, "loadAvg": [0.5, 0.25, 0.1]}]
				},
				"no_count": true}`,
			want: &CheckData{
				Types: []Type{
					typ("cpu",
						itm("cpu0", met("usage", fv(12.5)), met("cores", iv(4))),
						itm("cpu1", met("usage", fv(3)), met("cores", iv(4)))),
					typ("system",
						itm("system", met("hostname", sv("web1")), met("up", bv(true)),
							met("loadAvg", lst(fv(0.5), fv(0.25), fv(0.1))))),
				},
				HasResult: true,
				Timestamp: 1700000000,
				Duration:  0.12,
				NoCount:   true,
				Version:   "1.2.3",
			},
		},
		{
			name: "agent error only LOW",
			body: `{"version": "0.1", "runtime": 0.5, "timestamp": 1700000000, "error": {"severity": "LOW", "message": "disk unreadable"}}`,
			want: &CheckData{Error: &CheckError{Message: "disk unreadable", Severity: SeverityLow},
				Timestamp: 1700000000, Duration: 0.5, Version: "0.1"},
		},
		{
			name: "agent error only MEDIUM",
			body: `{"error": {"message": "m", "severity": "MEDIUM"}}`,
			want: &CheckData{Error: &CheckError{Message: "m", Severity: SeverityMedium}},
		},
		{
			name: "agent error only HIGH",
			body: `{"error": {"severity": "HIGH", "message": "m"}}`,
			want: &CheckData{Error: &CheckError{Message: "m", Severity: SeverityHigh}},
		},
		{
			name: "severity names in any case",
			body: `{"error": {"severity": "high", "message": "m"}}`,
			want: &CheckData{Error: &CheckError{Message: "m", Severity: SeverityHigh}},
		},
		{
			name: "error without severity is MEDIUM",
			body: `{"error": {"message": "m"}}`,
			want: &CheckData{Error: &CheckError{Message: "m", Severity: SeverityMedium}},
		},
		{
			name: "error with null severity is MEDIUM",
			body: `{"error": {"message": "m", "severity": null, "traceback": ["a", {"b": 1}]}}`,
			want: &CheckData{Error: &CheckError{Message: "m", Severity: SeverityMedium}},
		},
		{
			name: "probe result with framework",
			body: `{"result": {"disk": [{"name": "/", "free": 1024, "percentUsed": 42.0}]},
				"framework": {"duration": 0.034, "timestamp": 1700000060, "no_count": true, "unchanged": false, "extra": {"x": [1]}}}`,
			want: &CheckData{
				Types:     []Type{typ("disk", itm("/", met("free", iv(1024)), met("percentUsed", fv(42))))},
				HasResult: true,
				Timestamp: 1700000060,
				Duration:  0.034,
				NoCount:   true,
			},
		},
		{
			name: "probe error severity 0",
			body: `{"result": null, "error": {"error": "timed out", "severity": 0}, "framework": {"duration": 10.0, "timestamp": 1700000000}}`,
			want: &CheckData{Error: &CheckError{Message: "timed out", Severity: SeverityHigh}, Timestamp: 1700000000, Duration: 10},
		},
		{
			name: "probe error severity 1",
			body: `{"error": {"error": "e", "severity": 1}}`,
			want: &CheckData{Error: &CheckError{Message: "e", Severity: SeverityMedium}},
		},
		{
			name: "probe error severity 2",
			body: `{"error": {"error": "e", "severity": 2}}`,
			want: &CheckData{Error: &CheckError{Message: "e", Severity: SeverityLow}},
		},
		{
			name: "incomplete result: data and error",
			body: `{"result": {"t": [{"name": "a", "v": 1}]}, "error": {"error": "partial", "severity": 2}}`,
			want: &CheckData{
				Types:     []Type{typ("t", itm("a", met("v", iv(1))))},
				HasResult: true,
				Error:     &CheckError{Message: "partial", Severity: SeverityLow},
			},
		},
		{
			name: "unchanged without result",
			body: `{"framework": {"duration": 0.01, "timestamp": 1700000000, "unchanged": true}}`,
			want: &CheckData{Unchanged: true, Timestamp: 1700000000, Duration: 0.01},
		},
		{
			name: "unchanged with null result",
			body: `{"result": null, "error": null, "framework": {"unchanged": true, "no_count": null}}`,
			want: &CheckData{Unchanged: true},
		},
		{
			name: "a result sent overrides unchanged",
			body: `{"framework": {"unchanged": true}, "result": {}}`,
			want: &CheckData{HasResult: true},
		},
		{
			name: "ints stay ints, floats stay floats",
			body: oneItem(`"i": 1, "f": 1.0, "z": 0, "fz": 0.0, "neg": -5, "nf": -0.0, "e": 1e3, "E": 2E-2, "big": 1.5e300`),
			want: result(typ("t", itm("x",
				met("i", iv(1)), met("f", fv(1)), met("z", iv(0)), met("fz", fv(0)), met("neg", iv(-5)),
				met("nf", fv(math.Copysign(0, -1))), met("e", fv(1000)), met("E", fv(0.02)), met("big", fv(1.5e300))))),
		},
		{
			name: "int64 bounds and bigger counters",
			body: oneItem(`"max": 9223372036854775807, "min": -9223372036854775808, "over": 9223372036854775808, "u64": 18446744073709551615, "under": -9223372036854775809`),
			want: result(typ("t", itm("x",
				met("max", iv(math.MaxInt64)), met("min", iv(math.MinInt64)),
				met("over", fv(9223372036854775808)), met("u64", fv(18446744073709551615)),
				met("under", fv(-9223372036854775809))))),
		},
		{
			name: "tiny float underflows to zero",
			body: oneItem(`"v": 1e-400`),
			want: result(typ("t", itm("x", met("v", fv(0))))),
		},
		{
			name: "null metric values are dropped",
			body: oneItem(`"a": null, "b": 2, "c": null`),
			want: result(typ("t", itm("x", met("b", iv(2))))),
		},
		{
			name: "item of only nulls has no metrics",
			body: oneItem(`"a": null`),
			want: result(typ("t", itm("x"))),
		},
		{
			name: "lists of scalars",
			body: oneItem(`"ints": [1, 2, 3], "nums": [1, 2.5], "strs": ["a", ""], "bools": [true, false], "empty": []`),
			want: result(typ("t", itm("x",
				met("ints", lst(iv(1), iv(2), iv(3))), met("nums", lst(iv(1), fv(2.5))),
				met("strs", lst(sv("a"), sv(""))), met("bools", lst(bv(true), bv(false))),
				met("empty", lst())))),
		},
		{
			name: "same item name in different types",
			body: `{"data": {"a": [{"name": "x", "v": 1}], "b": [{"name": "x", "v": "s"}]}}`,
			want: result(
				typ("a", itm("x", met("v", iv(1)))),
				typ("b", itm("x", met("v", sv("s"))))),
		},
		{
			name: "same metric with other kinds in different types",
			body: `{"data": {"a": [{"name": "x", "v": 1}, {"name": "y", "v": 2}], "b": [{"name": "x", "v": "s"}, {"name": "y", "v": "t"}]}}`,
			want: result(
				typ("a", itm("x", met("v", iv(1))), itm("y", met("v", iv(2)))),
				typ("b", itm("x", met("v", sv("s"))), itm("y", met("v", sv("t"))))),
		},
		{
			name: "int and float mix across items",
			body: `{"data": {"t": [{"name": "a", "v": 1}, {"name": "b", "v": 1.5}, {"name": "c", "v": 2}]}}`,
			want: result(typ("t",
				itm("a", met("v", iv(1))), itm("b", met("v", fv(1.5))), itm("c", met("v", iv(2))))),
		},
		{
			name: "metrics in other orders and missing across items",
			body: `{"data": {"t": [{"name": "a", "v": 1, "s": "x"}, {"name": "b", "s": "y", "w": true}, {"name": "c", "w": false, "v": 2.5}]}}`,
			want: result(typ("t",
				itm("a", met("v", iv(1)), met("s", sv("x"))),
				itm("b", met("s", sv("y")), met("w", bv(true))),
				itm("c", met("w", bv(false)), met("v", fv(2.5))))),
		},
		{
			name: "null metric does not fix the kind",
			body: `{"data": {"t": [{"name": "a", "v": null}, {"name": "b", "v": "s"}]}}`,
			want: result(typ("t", itm("a"), itm("b", met("v", sv("s"))))),
		},
		{
			name: "empty data and empty type",
			body: `{"data": {"t": []}}`,
			want: result(typ("t")),
		},
		{
			name: "empty data",
			body: `{"data": {}}`,
			want: result(),
		},
		{
			name: "data null with error",
			body: `{"data": null, "error": {"message": "m", "severity": "LOW"}}`,
			want: &CheckData{Error: &CheckError{Message: "m", Severity: SeverityLow}},
		},
		{
			name: "unknown fields ignored at every level but items",
			body: `{"agent": {"os": ["linux", {"k": [1, 2, {"z": null}]}]}, "data": {}, "x": 1, "y": "s", "z": true, "n": null,
				"framework": {"hostname": "h"}, "error": null}`,
			want: result(),
		},
		{
			name: "fractional timestamp truncated",
			body: `{"timestamp": 1700000000.75, "data": {}}`,
			want: &CheckData{HasResult: true, Timestamp: 1700000000},
		},
		{
			name: "null top-level fields",
			body: `{"version": null, "runtime": null, "timestamp": null, "no_count": null, "framework": null, "data": {}}`,
			want: result(),
		},
		{
			name: "item names are free text",
			body: `{"data": {"t": [{"name": ""}, {"name": "C:\\Program Files\\x\n"}, {"name": "ünï €"}]}}`,
			want: result(typ("t", itm(""), itm("C:\\Program Files\\x\n"), itm("ünï €"))),
		},
		{
			name: "unicode names and escapes",
			body: `{"data": {"temp\u00e9rature": [{"name": "\ud83d\ude00", "\u0076": "a\u0000b"}]}}`,
			want: result(typ("température", itm("😀", met("v", sv("a\x00b"))))),
		},
		{
			name: "whitespace around",
			body: " \n\t{\"data\":{}}\r\n ",
			want: result(),
		},
		{
			name: "limits reached exactly",
			lim:  Limits{MaxTypes: 2, MaxItems: 2, MaxMetrics: 2, MaxNameLen: 3, MaxItemNameLen: 3, MaxStringLen: 3, MaxListLen: 3, MaxMessageLen: 3, MaxVersionLen: 3},
			body: `{"version": "1.0", "data": {"abc": [{"name": "abc", "a": "abc", "b": [1, 2, 3]}, {"name": "d"}], "e": []},
				"error": {"message": "abc"}}`,
			want: &CheckData{
				Types: []Type{
					typ("abc", itm("abc", met("a", sv("abc")), met("b", lst(iv(1), iv(2), iv(3)))), itm("d")),
					typ("e"),
				},
				HasResult: true,
				Error:     &CheckError{Message: "abc", Severity: SeverityMedium},
				Version:   "1.0",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeCheckData(strings.NewReader(tc.body), tc.lim)
			if err != nil {
				t.Fatalf("DecodeCheckData: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", dump(got), dump(tc.want))
			}
			// -0.0 and 0.0 are == for DeepEqual: check the sign too.
			for i, ty := range got.Types {
				for j, it := range ty.Items {
					for k, m := range it.Metrics {
						w := tc.want.Types[i].Items[j].Metrics[k].Value
						if m.Value.Kind == KindFloat && math.Signbit(m.Value.F) != math.Signbit(w.F) {
							t.Errorf("%s: sign of %v, want %v", m.Name, m.Value.F, w.F)
						}
					}
				}
			}
		})
	}
}

// dump prints check data readably for failures.
func dump(cd *CheckData) string {
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
		fmt.Fprintf(&b, "  type %q items=%v\n", ty.Name, ty.Items == nil)
		for _, it := range ty.Items {
			fmt.Fprintf(&b, "    item %q metrics-nil=%v\n", it.Name, it.Metrics == nil)
			for _, m := range it.Metrics {
				fmt.Fprintf(&b, "      %q %s %s nil-list=%v\n", m.Name, m.Value.Kind, m.Value.AppendJSON(nil), m.Value.List == nil)
			}
		}
	}
	return b.String()
}

func TestDecodeCheckDataErrors(t *testing.T) {
	small := Limits{MaxTypes: 2, MaxItems: 2, MaxMetrics: 2, MaxNameLen: 5, MaxItemNameLen: 5,
		MaxStringLen: 5, MaxListLen: 3, MaxMessageLen: 5, MaxVersionLen: 5, MaxSkippedDepth: 3}
	deep := strings.Repeat("[", 10000)
	tests := []struct {
		name string
		body string
		lim  Limits
		path string
		// msg is the exact message, or a prefix when it ends in "…".
		msg string
		// also, when set, must be in the message.
		also string
	}{
		// Malformed JSON.
		{name: "empty body", body: ``, msg: "unexpected end of JSON"},
		{name: "blank body", body: " \n ", msg: "unexpected end of JSON"},
		{name: "truncated object", body: `{"data":`, path: "data", msg: "unexpected end of JSON"},
		{name: "truncated in item", body: `{"data":{"t":[{"name":"x","v":1`, path: "data.t[0]", msg: "unexpected end of JSON"},
		{name: "truncated string", body: `{"error":{"message":"x`, path: "error.message", msg: "unexpected end of JSON"},
		{name: "truncated number", body: `{"data":{"t":[{"name":"x","v":1.`, path: "data.t[0].v", msg: "unexpected end of JSON"},
		{name: "trailing comma in item", body: oneItem(`"v": 1,`), path: "data.t[0]", msg: "malformed JSON at byte …"},
		{name: "missing colon", body: `{"data" {}}`, path: "data", msg: "malformed JSON at byte …"},
		{name: "single quotes", body: `{'data': {}}`, msg: "malformed JSON at byte …"},
		{name: "bad literal", body: oneItem(`"v": tru`), path: "data.t[0].v", msg: "malformed JSON at byte …"},
		{name: "leading zero", body: oneItem(`"v": 01`), path: "data.t[0]", msg: "malformed JSON at byte …"},
		{name: "hex number", body: oneItem(`"v": 0x10`), path: "data.t[0]", msg: "malformed JSON at byte …"},
		{name: "plus sign", body: oneItem(`"v": +1`), path: "data.t[0].v", msg: "malformed JSON at byte …"},
		{name: "bad escape", body: oneItem(`"v": "\x"`), path: "data.t[0].v", msg: "malformed JSON at byte …"},
		{name: "raw control character in string", body: oneItem("\"v\": \"a\x01b\""), path: "data.t[0].v", msg: "malformed JSON at byte …"},
		{name: "mismatched bracket", body: `{"data": {"t": [}}`, path: "data.t[0]", msg: "malformed JSON at byte …"},
		{name: "comment", body: `{"data": {} /* x */}`, msg: "malformed JSON at byte …"},

		// NaN and Infinity, as Python's json module writes them.
		{name: "NaN", body: oneItem(`"v": NaN`), path: "data.t[0].v", msg: "malformed JSON at byte …", also: "NaN and Infinity are not JSON numbers; send null for a missing value"},
		{name: "Infinity", body: oneItem(`"v": Infinity`), path: "data.t[0].v", msg: "malformed JSON at byte …", also: "NaN and Infinity are not JSON numbers"},
		{name: "-Infinity", body: oneItem(`"v": -Infinity`), path: "data.t[0].v", msg: "malformed JSON at byte …", also: "NaN and Infinity are not JSON numbers"},
		{name: "NaN in a list", body: oneItem(`"v": [1, NaN]`), path: "data.t[0].v[1]", msg: "malformed JSON at byte …", also: "NaN and Infinity"},
		{name: "NaN runtime", body: `{"runtime": NaN, "data": {}}`, path: "runtime", msg: "malformed JSON at byte …", also: "NaN and Infinity"},
		{name: "Infinity duration", body: `{"framework": {"duration": Infinity}}`, path: "framework.duration", msg: "malformed JSON at byte …", also: "NaN and Infinity"},
		{name: "1e400", body: oneItem(`"v": 1e400`), path: "data.t[0].v", msg: "the number 1e400 is out of range"},
		{name: "-1e400", body: oneItem(`"v": -1e400`), path: "data.t[0].v", msg: "the number -1e400 is out of range"},
		{name: "1e400 in a list", body: oneItem(`"v": [1.0, 1e400]`), path: "data.t[0].v[1]", msg: "the number 1e400 is out of range"},
		{name: "1e400 runtime", body: `{"runtime": 1e400, "data": {}}`, path: "runtime", msg: "the number 1e400 is out of range"},
		{name: "1e400 timestamp", body: `{"timestamp": 1e400, "data": {}}`, path: "timestamp", msg: "the number 1e400 is out of range"},

		// Trailing data.
		{name: "trailing garbage", body: `{"data": {}} x`, msg: "unexpected data after the JSON object"},
		{name: "second object", body: `{"data": {}}{"data": {}}`, msg: "unexpected data after the JSON object"},
		{name: "extra brace", body: `{"data": {}}}`, msg: "unexpected data after the JSON object"},
		{name: "trailing comma", body: `{"data": {}},`, msg: "unexpected data after the JSON object"},
		{name: "trailing number", body: `{"data": {}} 1`, msg: "unexpected data after the JSON object"},

		// Wrong types, level by level.
		{name: "top list", body: `[]`, msg: "expected a JSON object, got a list"},
		{name: "top string", body: `"data"`, msg: "expected a JSON object, got a string"},
		{name: "top number", body: `1`, msg: "expected a JSON object, got the number 1"},
		{name: "top null", body: `null`, msg: "expected a JSON object, got null"},
		{name: "top bool", body: `true`, msg: "expected a JSON object, got a boolean"},
		{name: "data list", body: `{"data": []}`, path: "data", msg: "expected an object of types, got a list"},
		{name: "result string", body: `{"result": "x"}`, path: "result", msg: "expected an object of types, got a string"},
		{name: "type object", body: `{"data": {"t": {}}}`, path: "data.t", msg: "expected a list of items, got an object"},
		{name: "type null", body: `{"data": {"t": null}}`, path: "data.t", msg: "expected a list of items, got null"},
		{name: "item number", body: `{"data": {"t": [1]}}`, path: "data.t[0]", msg: "expected an item object, got the number 1"},
		{name: "item list", body: `{"data": {"t": [{"name": "a"}, []]}}`, path: "data.t[1]", msg: "expected an item object, got a list"},
		{name: "item null", body: `{"data": {"t": [null]}}`, path: "data.t[0]", msg: "expected an item object, got null"},
		{name: "error string", body: `{"error": "boom"}`, path: "error", msg: "expected an object with message and severity, got a string"},
		{name: "error list", body: `{"error": []}`, path: "error", msg: "expected an object with message and severity, got a list"},
		{name: "message number", body: `{"error": {"message": 1}}`, path: "error.message", msg: "expected a string, got the number 1"},
		{name: "probe error object", body: `{"error": {"error": {}}}`, path: "error.error", msg: "expected a string, got an object"},
		{name: "severity bool", body: `{"error": {"message": "m", "severity": true}}`, path: "error.severity", msg: "expected a severity, got a boolean"},
		{name: "severity name", body: `{"error": {"message": "m", "severity": "CRITICAL"}}`, path: "error.severity", msg: `severity "CRITICAL" is not one of HIGH, MEDIUM, LOW`},
		{name: "severity 3", body: `{"error": {"message": "m", "severity": 3}}`, path: "error.severity", msg: "3 is not 0 (HIGH), 1 (MEDIUM) or 2 (LOW)"},
		{name: "severity -1", body: `{"error": {"message": "m", "severity": -1}}`, path: "error.severity", msg: "-1 is not 0 (HIGH), 1 (MEDIUM) or 2 (LOW)"},
		{name: "severity 1.0", body: `{"error": {"message": "m", "severity": 1.0}}`, path: "error.severity", msg: "1.0 is not 0 (HIGH), 1 (MEDIUM) or 2 (LOW)"},
		{name: "severity list", body: `{"error": {"message": "m", "severity": [0]}}`, path: "error.severity", msg: "expected a severity, got a list"},
		{name: "framework list", body: `{"framework": [], "data": {}}`, path: "framework", msg: "expected an object, got a list"},
		{name: "framework string", body: `{"framework": "x", "data": {}}`, path: "framework", msg: "expected an object, got a string"},
		{name: "duration string", body: `{"framework": {"duration": "1"}}`, path: "framework.duration", msg: "expected a number, got a string"},
		{name: "framework timestamp string", body: `{"framework": {"timestamp": "1700000000"}}`, path: "framework.timestamp", msg: "expected a number, got a string"},
		{name: "unchanged string", body: `{"framework": {"unchanged": "yes"}}`, path: "framework.unchanged", msg: "expected true or false, got a string"},
		{name: "framework no_count number", body: `{"framework": {"no_count": 1}}`, path: "framework.no_count", msg: "expected true or false, got the number 1"},
		{name: "no_count number", body: `{"no_count": 1, "data": {}}`, path: "no_count", msg: "expected true or false, got the number 1"},
		{name: "version number", body: `{"version": 1.2, "data": {}}`, path: "version", msg: "expected a string, got the number 1.2"},
		{name: "runtime string", body: `{"runtime": "0.1", "data": {}}`, path: "runtime", msg: "expected a number, got a string"},
		{name: "runtime object", body: `{"runtime": {}, "data": {}}`, path: "runtime", msg: "expected a number, got an object"},
		{name: "timestamp string", body: `{"timestamp": "now", "data": {}}`, path: "timestamp", msg: "expected a number, got a string"},
		{name: "timestamp negative", body: `{"timestamp": -1, "data": {}}`, path: "timestamp", msg: "-1 is not a Unix time in seconds"},
		{name: "timestamp in milliseconds", body: `{"timestamp": 1700000000000000, "data": {}}`, path: "timestamp", msg: "1.7e+15 is not a Unix time in seconds"},
		{name: "negative runtime", body: `{"runtime": -0.5, "data": {}}`, path: "runtime", msg: "-0.5 seconds is negative"},
		{name: "negative duration", body: `{"framework": {"duration": -2}, "data": {}}`, path: "framework.duration", msg: "-2 seconds is negative"},

		// Duplicates.
		{name: "duplicate item names", body: `{"data": {"t": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}}`, path: "data.t[2]",
			msg: `item name "a" repeats item 0; item names must be unique within a type`},
		{name: "duplicate empty item names", body: `{"data": {"t": [{"name": ""}, {"name": ""}]}}`, path: "data.t[1]",
			msg: `item name "" repeats item 0; item names must be unique within a type`},
		{name: "duplicate item names among many", body: `{"data": {"t": [` + manyItems(40) + `, {"name": "i37"}]}}`, path: "data.t[40]",
			msg: `item name "i37" repeats item 37; item names must be unique within a type`},
		{name: "duplicate top-level key", body: `{"data": {}, "data": {}}`, path: "data", msg: "appears twice"},
		{name: "duplicate unknown top-level key", body: `{"x": 1, "data": {}, "x": 2}`, path: "x", msg: "appears twice"},
		{name: "duplicate error", body: `{"error": null, "error": {"message": "m"}}`, path: "error", msg: "appears twice"},
		{name: "data and result", body: `{"data": {}, "result": {}}`, path: "result", msg: "both data and result given; send one"},
		{name: "data null and result", body: `{"data": null, "result": {}}`, path: "result", msg: "both data and result given; send one"},
		{name: "duplicate type", body: `{"data": {"t": [], "u": [], "t": []}}`, path: "data.t", msg: "type appears twice"},
		{name: "duplicate metric", body: oneItem(`"v": 1, "w": 2, "v": 1`), path: "data.t[0].v", msg: "metric appears twice in the item"},
		{name: "duplicate null metric", body: oneItem(`"v": null, "v": 1`), path: "data.t[0].v", msg: "metric appears twice in the item"},
		{name: "duplicate metric among many", body: oneItem(manyMetrics(30) + `, "m17": 0`), path: "data.t[0].m17", msg: "metric appears twice in the item"},
		{name: "duplicate name key", body: `{"data": {"t": [{"name": "a", "name": "b"}]}}`, path: "data.t[0].name", msg: "metric appears twice in the item"},
		{name: "duplicate framework key", body: `{"framework": {"unchanged": true, "unchanged": false}}`, path: "framework.unchanged", msg: "appears twice"},
		{name: "duplicate error key", body: `{"error": {"message": "a", "message": "b"}}`, path: "error.message", msg: "appears twice"},
		{name: "message and error keys", body: `{"error": {"message": "a", "error": "b"}}`, path: "error.error", msg: "both message and error given; send one"},

		// Item names.
		{name: "item without name", body: `{"data": {"t": [{"name": "a"}, {"v": 1}]}}`, path: "data.t[1]", msg: "item has no name"},
		{name: "empty item", body: `{"data": {"t": [{}]}}`, path: "data.t[0]", msg: "item has no name"},
		{name: "number name", body: `{"data": {"t": [{"name": 1}]}}`, path: "data.t[0].name", msg: "the item name must be a string, got the number 1"},
		{name: "null name", body: `{"data": {"t": [{"name": null}]}}`, path: "data.t[0].name", msg: "the item name must be a string, got null"},
		{name: "list name", body: `{"data": {"t": [{"name": ["a"]}]}}`, path: "data.t[0].name", msg: "the item name must be a string, got a list"},

		// Kinds.
		{name: "int then string", body: `{"data": {"t": [{"name": "a", "v": 1}, {"name": "b", "v": "1"}]}}`, path: "data.t[1].v",
			msg: "is a string here but an int in an earlier item; a metric keeps its type"},
		{name: "string then float", body: `{"data": {"t": [{"name": "a", "v": "x"}, {"name": "b", "v": 1.5}]}}`, path: "data.t[1].v",
			msg: "is a float here but a string in an earlier item; a metric keeps its type"},
		{name: "bool then int", body: `{"data": {"t": [{"name": "a", "v": true}, {"name": "b", "v": 1}]}}`, path: "data.t[1].v",
			msg: "is an int here but a bool in an earlier item; a metric keeps its type"},
		{name: "list then string", body: `{"data": {"t": [{"name": "a", "v": [1]}, {"name": "b", "v": "1"}]}}`, path: "data.t[1].v",
			msg: "is a string here but a list in an earlier item; a metric keeps its type"},
		{name: "kind change out of order", body: `{"data": {"t": [{"name": "a", "v": 1, "w": 2}, {"name": "b", "w": 3, "v": "x"}]}}`, path: "data.t[1].v",
			msg: "is a string here but an int in an earlier item; a metric keeps its type"},
		{name: "kind change after a gap", body: `{"data": {"t": [{"name": "a", "v": 1}, {"name": "b"}, {"name": "c", "v": "x"}]}}`, path: "data.t[2].v",
			msg: "is a string here but an int in an earlier item; a metric keeps its type"},
		{name: "kind change after a null", body: `{"data": {"t": [{"name": "a", "v": 1.5}, {"name": "b", "v": null}, {"name": "c", "v": false}]}}`, path: "data.t[2].v",
			msg: "is a bool here but a float in an earlier item; a metric keeps its type"},
		{name: "kind change in the third item", body: `{"data": {"t": [{"name": "a", "u": 0}, {"name": "b", "v": 1}, {"name": "c", "v": "x"}]}}`, path: "data.t[2].v",
			msg: "is a string here but an int in an earlier item; a metric keeps its type"},

		// Values.
		{name: "nested list", body: oneItem(`"v": [[1]]`), path: "data.t[0].v[0]", msg: "lists inside lists are not allowed"},
		{name: "nested list later", body: oneItem(`"v": [1, []]`), path: "data.t[0].v[1]", msg: "lists inside lists are not allowed"},
		{name: "object value", body: oneItem(`"v": {"a": 1}`), path: "data.t[0].v",
			msg: "a metric value must be an int, float, string, bool or a list of those, not an object"},
		{name: "object in list", body: oneItem(`"v": [{}]`), path: "data.t[0].v[0]",
			msg: "a metric value must be an int, float, string, bool or a list of those, not an object"},
		{name: "list mixes numbers and strings", body: oneItem(`"v": [1, "a"]`), path: "data.t[0].v[1]", msg: "list mixes number and string values"},
		{name: "list mixes bools and numbers", body: oneItem(`"v": [true, 1.5]`), path: "data.t[0].v[1]", msg: "list mixes bool and number values"},
		{name: "null in list", body: oneItem(`"v": [1, null]`), path: "data.t[0].v[1]", msg: "null inside a list is not allowed"},

		// Names.
		{name: "empty type name", body: `{"data": {"": []}}`, path: "data", msg: "type name is empty"},
		{name: "empty metric name", body: oneItem(`"": 1`), path: "data.t[0]", msg: "metric name is empty"},
		{name: "control character in type name", body: `{"data": {"a\u0001b": []}}`, path: "data", msg: `type name "a\x01b" holds a control or invalid character`},
		{name: "newline in metric name", body: oneItem(`"a\nb": 1`), path: "data.t[0]", msg: `metric name "a\nb" holds a control or invalid character`},
		{name: "DEL in metric name", body: oneItem(`"a\u007f": 1`), path: "data.t[0]", msg: `metric name "a\x7f" holds a control or invalid character`},
		{name: "C1 control in metric name", body: oneItem(`"a\u0085": 1`), path: "data.t[0]", msg: `metric name "a\u0085" holds a control or invalid character`},
		{name: "invalid UTF-8 in metric name", body: oneItem("\"a\xffb\": 1"), path: "data.t[0]", msg: "metric name \"a\ufffdb\" holds a control or invalid character"},
		{name: "odd type name quoted in paths", body: `{"data": {"a.b": {}}}`, path: `data["a.b"]`, msg: "expected a list of items, got an object"},
		{name: "odd metric name quoted in paths", body: oneItem(`"a[0]": {}`), path: `data.t[0]["a[0]"]`,
			msg: "a metric value must be an int, float, string, bool or a list of those, not an object"},
		{name: "odd unknown key quoted in paths", body: `{"a\nb": 1, "a\nb": 2}`, path: `["a\nb"]`, msg: "appears twice"},

		// Limits.
		{name: "type name too long", lim: small, body: `{"data": {"abcdef": []}}`, path: "data", msg: `type name "abcdef" is 6 bytes, more than 5`},
		{name: "long type name cut in the message", body: `{"data": {"` + strings.Repeat("é", 150) + `": []}}`, path: "data",
			msg: `type name "` + strings.Repeat("é", 10) + `"… is 300 bytes, more than 200`},
		{name: "metric name too long", lim: small, body: oneItem(`"abcdef": 1`), path: "data.t[0]", msg: `metric name "abcdef" is 6 bytes, more than 5`},
		{name: "item name too long", lim: small, body: `{"data": {"t": [{"name": "abcdef"}]}}`, path: "data.t[0].name", msg: "item name is 6 bytes, more than 5"},
		{name: "string too long", lim: small, body: oneItem(`"v": "abcdef"`), path: "data.t[0].v", msg: "string is 6 bytes, more than 5"},
		{name: "string in list too long", lim: small, body: oneItem(`"v": ["a", "abcdef"]`), path: "data.t[0].v[1]", msg: "string is 6 bytes, more than 5"},
		{name: "list too long", lim: small, body: oneItem(`"v": [1, 2, 3, 4]`), path: "data.t[0].v[3]", msg: "list has more than 3 elements"},
		{name: "message too long", lim: small, body: `{"error": {"message": "abcdef"}}`, path: "error.message", msg: "is 6 bytes, more than 5"},
		{name: "probe message too long", lim: small, body: `{"error": {"error": "abcdef"}}`, path: "error.error", msg: "is 6 bytes, more than 5"},
		{name: "version too long", lim: small, body: `{"version": "1.2.3.4", "data": {}}`, path: "version", msg: "is 7 bytes, more than 5"},
		{name: "too many types", lim: small, body: `{"data": {"a": [], "b": [], "c": []}}`, path: "data.c", msg: "more than 2 types in one result"},
		{name: "too many items", lim: small, body: `{"data": {"a": [{"name": "1"}, {"name": "2"}, {"name": "3"}]}}`, path: "data.a[2]", msg: "more than 2 items in one type"},
		{name: "too many metrics", lim: small, body: oneItem(`"a": 1, "b": 2, "c": 3`), path: "data.t[0].c", msg: "more than 2 metrics in one item"},
		{name: "default metric limit", body: oneItem(manyMetrics(1001)), path: "data.t[0].m1000", msg: "more than 1000 metrics in one item"},
		{name: "too many values", lim: Limits{MaxValues: 5}, body: `{"data": {"a": [{"name": "1", "x": 1, "y": [1, 2]}, {"name": "2", "x": 2, "y": [3]}]}}`, path: "data.a[1].y", msg: "the result holds more than 5 values"},
		{name: "skipped nesting limit", lim: small, body: `{"x": [[[[]]]], "data": {}}`, path: "x", msg: "nested more than 3 levels deep"},

		// Deep nesting must fail fast without deep recursion.
		{name: "deep nesting in unknown field", body: `{"x": ` + deep + strings.Repeat("]", 10000) + `, "data": {}}`, path: "x", msg: "nested more than 16 levels deep"},
		{name: "deep nesting unterminated", body: `{"x": ` + deep, path: "x", msg: "nested more than 16 levels deep"},
		{name: "deep objects in unknown field", body: `{"x": ` + strings.Repeat(`{"a":`, 10000), path: "x", msg: "nested more than 16 levels deep"},
		{name: "deep nesting in framework", body: `{"framework": {"x": ` + deep + `}}`, path: "framework.x", msg: "nested more than 16 levels deep"},
		{name: "deep nesting in error", body: `{"error": {"message": "m", "x": ` + deep + `}}`, path: "error.x", msg: "nested more than 16 levels deep"},
		{name: "deep nesting as a value", body: oneItem(`"v": ` + deep), path: "data.t[0].v[0]", msg: "lists inside lists are not allowed"},
		{name: "deep nesting as an item", body: `{"data": {"t": ` + deep + `}}`, path: "data.t[0]", msg: "expected an item object, got a list"},

		// Nothing to store.
		{name: "empty object", body: `{}`, msg: "check data needs data (or result) or error"},
		{name: "only bookkeeping", body: `{"version": "1", "runtime": 0.1, "timestamp": 1700000000, "no_count": true}`, msg: "check data needs data (or result) or error"},
		{name: "null data", body: `{"data": null}`, msg: "check data needs data (or result) or error"},
		{name: "null data and error", body: `{"data": null, "error": null}`, msg: "check data needs data (or result) or error"},
		{name: "unchanged false", body: `{"framework": {"unchanged": false}}`, msg: "check data needs data (or result) or error"},
		{name: "error without message", body: `{"error": {"severity": "LOW"}}`, path: "error", msg: "has no message"},
		{name: "error with empty message", body: `{"error": {"message": ""}}`, path: "error", msg: "has no message"},
		{name: "error with null message", body: `{"error": {"error": null, "severity": 0}}`, path: "error", msg: "has no message"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cd, err := DecodeCheckData(strings.NewReader(tc.body), tc.lim)
			if err == nil {
				t.Fatalf("no error; got\n%s", dump(cd))
			}
			if cd != nil {
				t.Errorf("data returned with the error %v", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			if de.Path != tc.path {
				t.Errorf("path %q, want %q (error %q)", de.Path, tc.path, err)
			}
			if prefix, ok := strings.CutSuffix(tc.msg, "…"); ok && !strings.HasSuffix(tc.msg, `"…`) {
				if !strings.HasPrefix(de.Msg, prefix) {
					t.Errorf("message %q, want it to start with %q", de.Msg, prefix)
				}
			} else if de.Msg != tc.msg {
				t.Errorf("message\n%q, want\n%q", de.Msg, tc.msg)
			}
			if !strings.Contains(de.Msg, tc.also) {
				t.Errorf("message %q does not say %q", de.Msg, tc.also)
			}
			want := tc.msg
			if tc.path != "" {
				want = tc.path + ": " + tc.msg
			}
			if strings.HasSuffix(want, "…") && !strings.HasSuffix(want, `"…`) {
				if !strings.HasPrefix(err.Error(), strings.TrimSuffix(want, "…")) {
					t.Errorf("Error() = %q, want it to start with %q", err, want)
				}
			} else if err.Error() != want {
				t.Errorf("Error() = %q, want %q", err, want)
			}
		})
	}
}

func manyItems(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `{"name": "i%d", "v": %d}`, i, i)
	}
	return b.String()
}

func manyMetrics(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `"m%d": %d`, i, i)
	}
	return b.String()
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestDeepNestingFailsFast checks that a hostile body nested a million
// levels deep is refused after reading a little of it.
func TestDeepNestingFailsFast(t *testing.T) {
	for _, body := range []string{
		`{"x": ` + strings.Repeat("[", 1<<20),
		`{"x": ` + strings.Repeat(`{"a": `, 1<<20),
		`{"framework": {"x": ` + strings.Repeat("[", 1<<20),
		oneItem(`"v": ` + strings.Repeat("[", 1<<20)),
	} {
		r := &countingReader{r: strings.NewReader(body)}
		start := time.Now()
		_, err := DecodeCheckData(r, Limits{})
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
		if r.n > 64<<10 {
			t.Errorf("read %d bytes of %d before failing: %v", r.n, len(body), err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %v", d)
		}
	}
}

// failingReader returns some bytes, then an error that is not about JSON.
type failingReader struct {
	data string
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.data == "" {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestDecodeCheckDataReadError(t *testing.T) {
	tooLarge := errors.New("http: request body too large")
	for _, data := range []string{``, `{"data": {"t": [{"name": "x", "v": 1`, `{"data": {}}`} {
		_, err := DecodeCheckData(&failingReader{data: data, err: tooLarge}, Limits{})
		if !errors.Is(err, tooLarge) {
			t.Errorf("%q: err = %v, want it to wrap the reader's error", data, err)
		}
		if errors.Is(err, ErrInvalid) {
			t.Errorf("%q: a read error %v wraps ErrInvalid", data, err)
		}
	}
}

func TestValidate(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		ts   int64
		lim  Limits
		want int64  // the timestamp after Validate
		err  string // the exact error, "" for none
	}{
		{name: "zero is now", ts: 0, want: now.Unix()},
		{name: "now", ts: now.Unix(), want: now.Unix()},
		{name: "a minute ago", ts: now.Unix() - 60, want: now.Unix() - 60},
		{name: "slightly ahead", ts: now.Unix() + 9*60, want: now.Unix() + 9*60},
		{name: "exactly at MaxFuture", ts: now.Unix() + 10*60, want: now.Unix() + 10*60},
		{name: "far future", ts: now.Unix() + 11*60,
			err: "timestamp: 1700000660 is 11m0s in the future (more than 10m0s); check the collector's clock"},
		{name: "a year ahead", ts: now.Unix() + 365*86400,
			err: "timestamp: 1731536000 is 365 days in the future (more than 10m0s); check the collector's clock"},
		{name: "custom MaxFuture", ts: now.Unix() + 61, lim: Limits{MaxFuture: time.Minute},
			err: "timestamp: 1700000061 is 1m1s in the future (more than 1m0s); check the collector's clock"},
		{name: "399 days old", ts: now.Unix() - 399*86400, want: now.Unix() - 399*86400},
		{name: "exactly MaxAge old", ts: now.Unix() - 400*86400, want: now.Unix() - 400*86400},
		{name: "too old", ts: now.Unix() - 401*86400, err: "timestamp: 1665353600 is older than 400 days"},
		{name: "epoch start", ts: 1, err: "timestamp: 1 is older than 400 days"},
		{name: "custom MaxAge", ts: now.Unix() - 7201, lim: Limits{MaxAge: 2 * time.Hour},
			err: "timestamp: 1699992799 is older than 2h0m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cd := &CheckData{Timestamp: tc.ts, HasResult: true}
			err := cd.Validate(now, tc.lim)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if cd.Timestamp != tc.want {
					t.Errorf("timestamp %d, want %d", cd.Timestamp, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.err)
			}
			if err.Error() != tc.err {
				t.Errorf("error\n%q, want\n%q", err, tc.err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Path != "timestamp" {
				t.Errorf("%v is not a DecodeError at timestamp", err)
			}
		})
	}
}

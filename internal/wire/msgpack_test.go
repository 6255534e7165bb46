package wire

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestAppendFormats(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"nil", AppendNil(nil), "c0"},
		{"false", AppendBool(nil, false), "c2"},
		{"true", AppendBool(nil, true), "c3"},

		{"uint 0", AppendUint(nil, 0), "00"},
		{"uint 127 fixint", AppendUint(nil, 127), "7f"},
		{"uint 128 uint8", AppendUint(nil, 128), "cc 80"},
		{"uint 255", AppendUint(nil, 255), "cc ff"},
		{"uint 256 uint16", AppendUint(nil, 256), "cd 0100"},
		{"uint 65535", AppendUint(nil, 65535), "cd ffff"},
		{"uint 65536 uint32", AppendUint(nil, 65536), "ce 00010000"},
		{"uint 2^32-1", AppendUint(nil, math.MaxUint32), "ce ffffffff"},
		{"uint 2^32 uint64", AppendUint(nil, 1<<32), "cf 0000000100000000"},
		{"uint max", AppendUint(nil, math.MaxUint64), "cf ffffffffffffffff"},

		{"int 0", AppendInt(nil, 0), "00"},
		{"int 1", AppendInt(nil, 1), "01"},
		{"int 200 as uint8", AppendInt(nil, 200), "cc c8"},
		{"int max", AppendInt(nil, math.MaxInt64), "cf 7fffffffffffffff"},
		{"int -1 fixint", AppendInt(nil, -1), "ff"},
		{"int -32 fixint", AppendInt(nil, -32), "e0"},
		{"int -33 int8", AppendInt(nil, -33), "d0 df"},
		{"int -128", AppendInt(nil, -128), "d0 80"},
		{"int -129 int16", AppendInt(nil, -129), "d1 ff7f"},
		{"int -32768", AppendInt(nil, -32768), "d1 8000"},
		{"int -32769 int32", AppendInt(nil, -32769), "d2 ffff7fff"},
		{"int min int32", AppendInt(nil, math.MinInt32), "d2 80000000"},
		{"int min int32 - 1 int64", AppendInt(nil, math.MinInt32-1), "d3 ffffffff7fffffff"},
		{"int min", AppendInt(nil, math.MinInt64), "d3 8000000000000000"},

		{"float64 integral stays a float", AppendFloat64(nil, 1), "cb 3ff0000000000000"},
		{"float64 0", AppendFloat64(nil, 0), "cb 0000000000000000"},
		{"float64 -0", AppendFloat64(nil, math.Copysign(0, -1)), "cb 8000000000000000"},
		{"float64 1.5", AppendFloat64(nil, 1.5), "cb 3ff8000000000000"},
		{"float32 1.5", AppendFloat32(nil, 1.5), "ca 3fc00000"},

		{"str empty", AppendString(nil, ""), "a0"},
		{"str fixstr", AppendString(nil, "ping"), "a4 70696e67"},
		{"str 31", AppendString(nil, strings.Repeat("a", 31)), "bf" + strings.Repeat("61", 31)},
		{"str 32 str8", AppendString(nil, strings.Repeat("a", 32)), "d9 20" + strings.Repeat("61", 32)},
		{"str 256 str16", AppendString(nil, strings.Repeat("a", 256))[:3], "da 0100"},
		{"str 65536 str32", AppendString(nil, strings.Repeat("a", 65536))[:5], "db 00010000"},
		{"str utf-8", AppendString(nil, "é"), "a2 c3a9"},
		{"str invalid utf-8 replaced", AppendString(nil, "a\xffb\xc3"), "a8 61 efbfbd 62 efbfbd"},

		{"bin empty", AppendBytes(nil, nil), "c4 00"},
		{"bin 3", AppendBytes(nil, []byte{1, 2, 3}), "c4 03 010203"},
		{"bin 256 bin16", AppendBytes(nil, make([]byte, 256))[:3], "c5 0100"},
		{"bin 65536 bin32", AppendBytes(nil, make([]byte, 65536))[:5], "c6 00010000"},

		{"array 0", AppendArrayHeader(nil, 0), "90"},
		{"array 15", AppendArrayHeader(nil, 15), "9f"},
		{"array 16 array16", AppendArrayHeader(nil, 16), "dc 0010"},
		{"array 65536 array32", AppendArrayHeader(nil, 65536), "dd 00010000"},
		{"map 0", AppendMapHeader(nil, 0), "80"},
		{"map 15", AppendMapHeader(nil, 15), "8f"},
		{"map 16 map16", AppendMapHeader(nil, 16), "de 0010"},
		{"map 65536 map32", AppendMapHeader(nil, 65536), "df 00010000"},

		{"appends to dst", AppendNil([]byte{0x91}), "91 c0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if want := unhex(t, tc.want); !bytes.Equal(tc.got, want) {
				t.Errorf("got % x, want % x", tc.got, want)
			}
		})
	}
}

func TestAppendHeaderPanics(t *testing.T) {
	for name, fn := range map[string]func(){
		"array -1": func() { AppendArrayHeader(nil, -1) },
		"map -1":   func() { AppendMapHeader(nil, -1) },
		"map 2^32": func() { AppendMapHeader(nil, 1<<32) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
	}{
		{"nil", "c0", nil},
		{"false", "c2", false},
		{"true", "c3", true},
		{"positive fixint", "7f", int64(127)},
		{"negative fixint", "e0", int64(-32)},
		{"uint8", "cc ff", int64(255)},
		{"uint16", "cd ffff", int64(65535)},
		{"uint32", "ce ffffffff", int64(math.MaxUint32)},
		{"uint64 small", "cf 0000000000000001", int64(1)},
		{"uint64 max int64", "cf 7fffffffffffffff", int64(math.MaxInt64)},
		{"uint64 over int64 stays uint64", "cf 8000000000000000", uint64(1 << 63)},
		{"uint64 max", "cf ffffffffffffffff", uint64(math.MaxUint64)},
		{"int8 positive", "d0 05", int64(5)},
		{"int8", "d0 80", int64(-128)},
		{"int16", "d1 8000", int64(-32768)},
		{"int32", "d2 80000000", int64(math.MinInt32)},
		{"int64", "d3 8000000000000000", int64(math.MinInt64)},
		{"float32 widened", "ca 3fc00000", 1.5},
		{"float64", "cb 3ff0000000000000", 1.0},
		{"fixstr", "a4 70696e67", "ping"},
		{"str8", "d9 03 616263", "abc"},
		{"str16", "da 0003 616263", "abc"},
		{"str32", "db 00000003 616263", "abc"},
		{"empty str", "a0", ""},
		{"bin8", "c4 02 0102", []byte{1, 2}},
		{"bin16", "c5 0002 0102", []byte{1, 2}},
		{"bin32", "c6 00000002 0102", []byte{1, 2}},
		{"empty bin", "c4 00", []byte{}},
		{"fixarray", "92 01 a1 61", []any{int64(1), "a"}},
		{"array16", "dc 0002 c0 c3", []any{nil, true}},
		{"array32", "dd 00000001 c2", []any{false}},
		{"empty array", "90", []any{}},
		{"fixmap", "82 a1 61 01 a1 62 92 c0 c0", map[string]any{"a": int64(1), "b": []any{nil, nil}}},
		{"map16", "de 0001 a1 61 c0", map[string]any{"a": nil}},
		{"map32", "df 00000001 a1 61 c0", map[string]any{"a": nil}},
		{"empty map", "80", map[string]any{}},
		{"integer keys read as strings", "83 01 a1 61 ff a1 62 cf ffffffffffffffff c0",
			map[string]any{"1": "a", "-1": "b", "18446744073709551615": nil}},
		{"nested", "81 a1 78 91 81 a1 79 91 90", map[string]any{"x": []any{map[string]any{"y": []any{[]any{}}}}}},
		{"spec announce", "92 a4 70696e67 a5 332e302e30", []any{"ping", "3.0.0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(unhex(t, tc.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestDecodeNestingLimit(t *testing.T) {
	deep := func(n int) []byte {
		return append(bytes.Repeat([]byte{0x91}, n), 0xc0)
	}
	if _, err := Decode(deep(MaxDepth)); err != nil {
		t.Errorf("%d levels: %v", MaxDepth, err)
	}
	_, err := Decode(deep(MaxDepth + 1))
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "nested more than 64 levels deep") {
		t.Errorf("%d levels: %v", MaxDepth+1, err)
	}
	// A million levels fail fast, without deep recursion.
	if _, err := Decode(deep(1 << 20)); !errors.Is(err, ErrMalformed) {
		t.Errorf("a million levels: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		msg  string // the exact error
	}{
		{"empty input", "", "malformed MessagePack at byte 0: unexpected end of input"},
		{"reserved byte", "c1", "malformed MessagePack at byte 0: the reserved byte 0xc1 is not MessagePack"},
		{"fixext", "d4 01 00", "malformed MessagePack at byte 0: extension types are not accepted"},
		{"fixext16", "d8 01" + strings.Repeat("00", 16), "malformed MessagePack at byte 0: extension types are not accepted"},
		{"ext8", "c7 01 01 00", "malformed MessagePack at byte 0: extension types are not accepted"},
		{"ext32 in an array", "91 c9 00000001 01 00", "malformed MessagePack at byte 1: extension types are not accepted"},
		{"truncated uint16", "cd 01", "malformed MessagePack at byte 0: truncated uint: 2 bytes announced, 1 left"},
		{"truncated int64", "d3 00", "malformed MessagePack at byte 0: truncated int: 8 bytes announced, 1 left"},
		{"truncated float64", "cb 00", "malformed MessagePack at byte 0: truncated float64: 8 bytes announced, 1 left"},
		{"truncated float32", "ca", "malformed MessagePack at byte 0: truncated float32: 4 bytes announced, 0 left"},
		{"truncated fixstr", "a4 7069", "malformed MessagePack at byte 0: truncated str: 4 bytes announced, 2 left"},
		{"truncated str32 length", "db 0000", "malformed MessagePack at byte 0: truncated str length: 4 bytes announced, 2 left"},
		{"str32 of 4 GiB", "db ffffffff 61", "malformed MessagePack at byte 0: truncated str: 4294967295 bytes announced, 1 left"},
		{"bin32 of 4 GiB", "c6 ffffffff", "malformed MessagePack at byte 0: truncated bin: 4294967295 bytes announced, 0 left"},
		{"array32 of 4 billion", "dd ffffffff c0 c0", "malformed MessagePack at byte 0: truncated array of 4294967295 elements: 2 bytes left"},
		{"map32 of 4 billion", "df ffffffff a0 c0", "malformed MessagePack at byte 0: truncated map of 4294967295 pairs: 2 bytes left"},
		{"map needs two bytes a pair", "82 a0 c0 a1", "malformed MessagePack at byte 0: truncated map of 2 pairs: 3 bytes left"},
		{"truncated array", "93 01 02", "malformed MessagePack at byte 0: truncated array of 3 elements: 2 bytes left"},
		{"invalid utf-8 in str", "a2 c328", "malformed MessagePack at byte 0: a str holds invalid UTF-8 (send binary as bin)"},
		{"invalid utf-8 in key", "81 a1 ff c0", "malformed MessagePack at byte 1: a str holds invalid UTF-8 (send binary as bin)"},
		{"trailing bytes", "c0 c0 c0", "malformed MessagePack at byte 1: 2 bytes follow the value"},
		{"duplicate key", "82 a1 61 01 a1 61 02", "malformed MessagePack at byte 4: map key \"a\" appears twice"},
		{"integer key repeats a string key", "82 a1 31 01 01 02", "malformed MessagePack at byte 4: map key \"1\" appears twice"},
		{"nil key", "81 c0 c0", "malformed MessagePack at byte 1: a map key must be a string or an integer, not nil"},
		{"float key", "81 cb 3ff0000000000000 c0", "malformed MessagePack at byte 1: a map key must be a string or an integer, not the float 1"},
		{"bin key", "81 c4 01 61 c0", "malformed MessagePack at byte 1: a map key must be a string or an integer, not binary data"},
		{"array key", "81 90 c0", "malformed MessagePack at byte 1: a map key must be a string or an integer, not an array"},
		{"bool key", "81 c3 c0", "malformed MessagePack at byte 1: a map key must be a string or an integer, not a boolean"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Decode(unhex(t, tc.in))
			if err == nil {
				t.Fatalf("no error; got %#v", v)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%v does not wrap ErrMalformed", err)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("%T is not a *SyntaxError", err)
			}
			if err.Error() != tc.msg {
				t.Errorf("error\n%q, want\n%q", err, tc.msg)
			}
		})
	}
}

// TestDecodeHostileCountsAllocateLittle checks that headers announcing
// billions of elements are refused before anything is allocated for them.
func TestDecodeHostileCountsAllocateLittle(t *testing.T) {
	for _, in := range []string{
		"dd ffffffff" + strings.Repeat("c0", 100),
		"df ffffffff" + strings.Repeat("c0", 100),
		"91 91 91 dd 7fffffff c0",
		"db ffffffff 61",
		"c6 ffffffff 61",
	} {
		b := unhex(t, in)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Decode(b)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", in, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
			t.Errorf("%s: allocated %d bytes", in, n)
		}
	}
}

// TestDecodeDoesNotAlias checks that decoded strings and bins survive the
// input being overwritten, as a reused read buffer is.
func TestDecodeDoesNotAlias(t *testing.T) {
	in := unhex(t, "92 a3 616263 c4 03 010203")
	v, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	clear(in)
	if want := []any{"abc", []byte{1, 2, 3}}; !reflect.DeepEqual(v, want) {
		t.Errorf("after clearing the input: %#v", v)
	}
}

func TestAppendValue(t *testing.T) {
	type named int
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"nil", nil, "c0"},
		{"bool", true, "c3"},
		{"int", 300, "cd 012c"},
		{"int8", int8(-5), "fb"},
		{"int16", int16(-300), "d1 fed4"},
		{"int32", int32(70000), "ce 00011170"},
		{"int64", int64(-1 << 40), "d3 ffffff0000000000"},
		{"uint", uint(1), "01"},
		{"uint8", uint8(200), "cc c8"},
		{"uint16", uint16(1), "01"},
		{"uint32", uint32(1), "01"},
		{"uint64", uint64(math.MaxUint64), "cf ffffffffffffffff"},
		{"float32", float32(0.5), "ca 3f000000"},
		{"float64 integral", 2.0, "cb 4000000000000000"},
		{"string", "ab", "a2 6162"},
		{"bytes", []byte("ab"), "c4 02 6162"},
		{"[]string", []string{"a", "b"}, "92 a1 61 a1 62"},
		{"map[string]string sorted", map[string]string{"b": "2", "a": "1"}, "82 a1 61 a1 31 a1 62 a1 32"},
		{"[]any", []any{1, "x", nil}, "93 01 a1 78 c0"},
		{"map sorted by key bytes", map[string]any{"b": 1, "a": 2, "B": 3, "": 4}, "84 a0 04 a1 42 03 a1 61 02 a1 62 01"},
		{"nested", map[string]any{"x": []any{map[string]any{}}}, "81 a1 78 91 80"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Marshal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tc.want); !bytes.Equal(got, want) {
				t.Errorf("got % x, want % x", got, want)
			}
		})
	}

	// Unsupported values leave dst as it was.
	cyclic := []any{nil}
	cyclic[0] = cyclic
	for name, v := range map[string]any{
		"struct":          struct{}{},
		"named int":       named(1),
		"map[int]any":     map[int]any{1: 1},
		"nested struct":   map[string]any{"a": []any{struct{}{}}},
		"cyclic slice":    cyclic,
		"pointer":         new(int),
		"[]int":           []int{1},
		"too deep a list": nestedList(MaxDepth + 1),
	} {
		dst := []byte{1, 2}
		out, err := AppendValue(dst, v)
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", name, err)
		}
		if !bytes.Equal(out, []byte{1, 2}) {
			t.Errorf("%s: dst changed to % x", name, out)
		}
	}
	if _, err := Marshal(nestedList(MaxDepth)); err != nil {
		t.Errorf("%d levels: %v", MaxDepth, err)
	}
}

func nestedList(levels int) any {
	var v any
	for range levels {
		v = []any{v}
	}
	return v
}

// TestValueGolden encodes one value of every kind and compares it with a
// golden file, then checks that it decodes back to the same value.
func TestValueGolden(t *testing.T) {
	v := map[string]any{
		"nil":     nil,
		"bools":   []any{true, false},
		"ints":    []any{int64(0), int64(127), int64(128), int64(-1), int64(-33), int64(math.MaxInt64), int64(math.MinInt64)},
		"uint64":  uint64(math.MaxUint64),
		"floats":  []any{1.0, -0.5, 1e300, math.Copysign(0, -1)},
		"strings": []any{"", "ping", strings.Repeat("x", 40), "ünï €"},
		"bin":     []byte{0, 1, 0xff},
		"map":     map[string]any{"z": int64(1), "a": map[string]any{}},
		"list":    []any{[]any{}, map[string]any{"k": "v"}},
	}
	got, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "value.golden", got)
	back, err := Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, v) {
		t.Errorf("decoded back as %#v", back)
	}
	again, _ := Marshal(back)
	if !bytes.Equal(again, got) {
		t.Error("encoding is not stable")
	}
}

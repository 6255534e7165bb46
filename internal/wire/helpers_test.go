package wire

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Test helpers that build MessagePack the way a peer might, with map keys in
// a chosen order and formats chosen by hand.

// kv is one map entry; its key is a string or an integer.
type kv struct {
	k any
	v any
}

// omap is a map whose entries keep their order.
type omap []kv

// raw is MessagePack bytes written as they are.
type raw []byte

// m builds an omap from alternating keys and values.
func m(kvs ...any) omap {
	if len(kvs)%2 != 0 {
		panic("m: odd number of arguments")
	}
	out := make(omap, 0, len(kvs)/2)
	for i := 0; i < len(kvs); i += 2 {
		out = append(out, kv{kvs[i], kvs[i+1]})
	}
	return out
}

// a builds an array.
func a(vs ...any) []any { return vs }

// mp encodes v, which may hold omap and raw values, for tests.
func mp(v any) []byte {
	return appendTest(nil, v)
}

func appendTest(b []byte, v any) []byte {
	switch v := v.(type) {
	case raw:
		return append(b, v...)
	case omap:
		b = AppendMapHeader(b, len(v))
		for _, e := range v {
			b = appendTest(b, e.k)
			b = appendTest(b, e.v)
		}
		return b
	case []any:
		b = AppendArrayHeader(b, len(v))
		for _, e := range v {
			b = appendTest(b, e)
		}
		return b
	}
	out, err := AppendValue(b, v)
	if err != nil {
		panic(err)
	}
	return out
}

// unhex decodes hex written with spaces, as in the spec.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// hexDump writes b as lines of 16 hex bytes, for golden files.
func hexDump(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 16 {
		end := min(i+16, len(b))
		for j := i; j < end; j++ {
			if j > i {
				sb.WriteByte(' ')
			}
			fmt.Fprintf(&sb, "%02x", b[j])
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

// golden compares got with testdata/name, a hex dump, or rewrites it under
// -update. The golden files were checked against Python's msgpack 1.0.3,
// the library InfraSonar's probes use: it decodes every one of them and
// encodes what it decoded back to the same bytes.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	dump := hexDump(got)
	if *update {
		if err := os.WriteFile(path, []byte(dump), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(unhex(t, string(want)), got) {
		t.Errorf("%s differs (rerun with -update if intended):\ngot\n%swant\n%s", path, dump, want)
	}
}

package wire

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sonde-monitoring/sonde/internal/model"
)

// addGoldenSeeds adds every golden body under testdata/ to the corpus.
func addGoldenSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		text, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(unhex(f, string(text)))
	}
}

// FuzzReadPacket reads packets off arbitrary streams: it must never panic,
// fail only with the documented errors, and every packet it returns must
// frame back to the very bytes it was read from.
func FuzzReadPacket(f *testing.F) {
	f.Add(unhex(f, "0000000000000000 0c000000 0100 01 fe 92 a4 70696e67 a5 332e302e30"))
	f.Add(AppendPacket(AppendPacket(nil, Packet{PID: 1, Type: TypeOK, Body: EmptyBody}), Packet{PartID: 12, Type: TypeData, Body: []byte{0x80}}))
	f.Add(AppendHeader(nil, 0, 1<<32-1, 0, TypeData))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0xe1, 0xe1, 0xc4, 0})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, stream []byte) {
		const maxBody = 1 << 10
		pr := NewReader(bytes.NewReader(stream), maxBody)
		off := 0
		for {
			p, err := pr.ReadPacket()
			if err != nil {
				switch {
				case err == io.EOF:
					if off != len(stream) {
						t.Fatalf("io.EOF at %d of %d bytes", off, len(stream))
					}
				case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, ErrCheckbit), errors.Is(err, ErrTooLarge):
				default:
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(p.Body) > maxBody {
				t.Fatalf("body of %d bytes over the limit", len(p.Body))
			}
			framed := AppendPacket(nil, p)
			if !bytes.Equal(framed, stream[off:off+len(framed)]) {
				t.Fatalf("packet %+v frames as % x, read from % x", p, framed, stream[off:off+len(framed)])
			}
			off += len(framed)
		}
	})
}

// FuzzMsgpackDecode decodes arbitrary bytes: Decode must never panic, and
// what it accepts must encode, decode to the same value and encode to the
// same bytes again.
func FuzzMsgpackDecode(f *testing.F) {
	addGoldenSeeds(f)
	for _, s := range []string{
		"c0", "c3", "7f", "e0", "cc ff", "cd ffff", "ce ffffffff", "cf ffffffffffffffff", "d0 80", "d1 8000", "d2 80000000",
		"d3 8000000000000000", "ca 3fc00000", "cb 7ff8000000000000", "a4 70696e67", "d9 03 616263", "da 0003 616263",
		"db 00000003 616263", "c4 02 0102", "c5 0002 0102", "c6 00000002 0102", "92 01 a1 61", "dc 0002 c0 c3",
		"dd 00000001 c2", "82 a1 61 01 a1 62 92 c0 c0", "de 0001 a1 61 c0", "df 00000001 a1 61 c0", "83 01 a1 61 ff a1 62 cf ffffffffffffffff c0",
		"82 a1 31 01 01 02", "81 c0 c0", "d4 01 00", "c7 01 01 00", "c1", "dd ffffffff c0", "a2 c328", "c0 c0",
	} {
		f.Add(unhex(f, s))
	}
	f.Add(append(bytes.Repeat([]byte{0x91}, MaxDepth), 0xc0))
	f.Add(append(bytes.Repeat([]byte{0x81, 0xa0}, MaxDepth+1), 0xc0))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if err := oneValue(b); err != nil {
			t.Fatalf("Decode accepts what skip refuses: %v", err)
		}
		enc, err := Marshal(v)
		if err != nil {
			t.Fatalf("a decoded value does not encode: %v", err)
		}
		v2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded value is refused: %v\ninput % x\nencoded % x", err, b, enc)
		}
		if !equalNaN(v, v2) {
			t.Fatalf("round trip differs: %#v then %#v", v, v2)
		}
		enc2, err := Marshal(v2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: % x then % x (%v)", enc, enc2, err)
		}
	})
}

// equalNaN is reflect.DeepEqual with NaN equal to itself.
func equalNaN(x, y any) bool {
	switch x := x.(type) {
	case float64:
		y, ok := y.(float64)
		return ok && (x == y && math.Signbit(x) == math.Signbit(y) || math.IsNaN(x) && math.IsNaN(y))
	case []any:
		y, ok := y.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalNaN(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := y.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equalNaN(xv, yv) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(x, y)
}

// FuzzDecodeCheckData decodes arbitrary data packet bodies. It must never
// panic; an error must be a *model.DecodeError; what it accepts must hold
// the model's invariants, survive EncodeCheckData unchanged, and read the
// same through the model's JSON decoder, so that both formats accept the
// same data.
func FuzzDecodeCheckData(f *testing.F) {
	addGoldenSeeds(f)
	for _, cd := range []*model.CheckData{sample(), many(3, 5), {Unchanged: true, NoCount: true}, {HasResult: true, Version: "1"}} {
		f.Add(EncodeCheckData(cd))
	}
	for _, v := range []any{
		m("result", m("t", a(m("name", "a", "v", 1), m("name", "b", "v", 1.5), m("name", "c")))),
		m("result", m("t", a(m("name", "a", "v", 1, "w", "x"), m("w", "y", "name", "b", "v", 2)))),
		m("result", m("t", a(m("name", "a", "v", 1), m("name", "a")))),
		m("result", m("t", a(m("name", "a", "v", a(1, 2.5)), m("name", "b", "v", a("x"))))),
		m("result", m(1, a(m("name", "a", 2, nil, 3, true)))),
		m("error", m("error", "e", "severity", "low"), "framework", m("timestamp", 1.5e9, "duration", 2)),
		m("data", m(), "runtime", 0.1, "timestamp", 1700000000, "version", "1", "no_count", true),
		m("x", a(a(a(m("y", nil)))), "result", m()),
		m("result", m("t", a(m("name", "a", "u", uint64(math.MaxUint64))))),
	} {
		f.Add(mp(v))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cd, err := DecodeCheckData(body, model.Limits{})
		if err != nil {
			var de *model.DecodeError
			if cd != nil || !errors.As(err, &de) || !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("error %T %v (data %v)", err, err, cd != nil)
			}
			return
		}
		checkInvariants(t, cd)
		enc := EncodeCheckData(cd)
		cd2, err := DecodeCheckData(enc, model.Limits{})
		if err != nil {
			t.Fatalf("re-encoded body is refused: %v\nbody % x\nre-encoded % x", err, body, enc)
		}
		if !reflect.DeepEqual(cd, cd2) {
			t.Fatalf("round trip differs\nfirst\n%s\nsecond\n%s", dump(cd), dump(cd2))
		}
		if enc2 := EncodeCheckData(cd2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n% x\n% x", enc, enc2)
		}
		js := cd.MarshalAgentJSON()
		fromJSON, err := model.DecodeCheckData(bytes.NewReader(js), model.Limits{})
		if err != nil {
			t.Fatalf("the JSON decoder refuses what the MessagePack one accepts: %v\nJSON %s", err, js)
		}
		if !reflect.DeepEqual(cd, fromJSON) {
			t.Fatalf("the formats differ\nMessagePack\n%s\nJSON\n%s", dump(cd), dump(fromJSON))
		}
	})
}

// checkInvariants checks what decoded check data always satisfies.
func checkInvariants(t *testing.T, cd *model.CheckData) {
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
	if cd.Error != nil && (cd.Error.Message == "" || cd.Error.Severity < model.SeverityHigh || cd.Error.Severity > model.SeverityLow) {
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
			for _, mt := range it.Metrics {
				if mt.Name == "" || mt.Name == "name" || metrics[mt.Name] {
					t.Fatalf("metric name %q empty, reserved or repeated", mt.Name)
				}
				metrics[mt.Name] = true
				if f, ok := family[mt.Name]; ok && f != mt.Value.Kind.Family() {
					t.Fatalf("metric %q changes family", mt.Name)
				}
				family[mt.Name] = mt.Value.Kind.Family()
				checkValue(t, mt.Value, true)
			}
		}
	}
}

func checkValue(t *testing.T, v model.Value, top bool) {
	t.Helper()
	switch v.Kind {
	case model.KindInt, model.KindString, model.KindBool:
	case model.KindFloat:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			t.Fatalf("float %v", v.F)
		}
	case model.KindList:
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

// FuzzUnmarshalAnnounce decodes arbitrary announce bodies: never a panic,
// only the package's errors, and what is accepted re-encodes to a body that
// reads back the same and encodes to the same bytes.
func FuzzUnmarshalAnnounce(f *testing.F) {
	addGoldenSeeds(f)
	for _, v := range []any{
		a(nil, "dc1", 0, testToken), a(7, "dc1", 9, nil), a(uint64(math.MaxUint64), "x", 1, ""), a(nil, "", 0, "t"),
		a(nil, "dc1", 10, "t"), a(-1, "dc1", 0, "t"), a(nil, "dc1", 0), m("name", "x"),
	} {
		f.Add(mp(v))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		an, err := UnmarshalAnnounce(body)
		if err != nil {
			checkBodyError(t, err)
			return
		}
		roundTrip(t, an, MarshalAnnounce, UnmarshalAnnounce)
	})
}

// FuzzUnmarshalAssets decodes arbitrary bodies as each of the bodies that
// carry assets, with the checks of FuzzUnmarshalAnnounce.
func FuzzUnmarshalAssets(f *testing.F) {
	addGoldenSeeds(f)
	for _, v := range []any{
		a(a(a(1, 0)), a(a(12, 0, "x", a(a("ping", nil, a(a(1, "ping", 60))))))),
		a(7, a(a(7, 0)), a(a(12, 0, "x", nil), a(13, 9, "y", a(a("snmp", m(1, "a"), a(a(5, "snmp", 300, m("oids", a("1.3.6"))))))))),
		a(12, 0, "x", a(a("ping", nil, a(a(1, "ping", 60, nil), a(2, "tcp", 30))))),
		a(12, 0, "x", a(a("ping", nil, a(a(1, "ping", 60)), a("ping", nil, a())))),
		a(nil, nil),
	} {
		f.Add(mp(v))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if sa, err := UnmarshalSetAssets(body); err != nil {
			checkBodyError(t, err)
		} else {
			roundTrip(t, sa, MarshalSetAssets, UnmarshalSetAssets)
		}
		if r, err := UnmarshalAnnounceReply(body); err != nil {
			checkBodyError(t, err)
		} else {
			roundTrip(t, r, MarshalAnnounceReply, UnmarshalAnnounceReply)
		}
		if as, err := UnmarshalUpsertAsset(body); err != nil {
			checkBodyError(t, err)
		} else {
			roundTrip(t, as, MarshalUpsertAsset, UnmarshalUpsertAsset)
		}
	})
}

// FuzzUnmarshalBodies decodes arbitrary bodies as every other typed body,
// Sonde's enrollment included.
func FuzzUnmarshalBodies(f *testing.F) {
	addGoldenSeeds(f)
	for _, v := range []any{
		m("rapp_connected", true, "missing", a("x"), "probes", a(m("key", "k", "timestamp", 1, "roundtrip", nil)), "buffered", 1),
		m("event_id", 1, "message", "m"),
		a(a(a(12, 1), a("x", "ping"), m("_interval", 60, "a", 1))),
		a(12, a(a(a(12, 1), a("x", "ping"), m("_interval", 60)))),
		a(a(12, 1), m("result", m())),
		a(testToken, "dc1", 0, []byte{0x30}), a(7, []byte{1}, []byte{2}),
		a(1, 2, 3),
		"error", 1.5, 17,
	} {
		f.Add(mp(v))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if r, err := UnmarshalInfoReply(body); err != nil {
			checkBodyError(t, err)
		} else {
			roundTrip(t, r, func(r InfoReply) ([]byte, error) { return MarshalInfoReply(r), nil }, UnmarshalInfoReply)
		}
		if l, err := UnmarshalAuditLog(body); err != nil {
			checkBodyError(t, err)
		} else {
			roundTrip(t, l, func(l AuditLog) ([]byte, error) { return MarshalAuditLog(l), nil }, UnmarshalAuditLog)
		}
		if s, err := UnmarshalErrorBody(body); err != nil {
			checkBodyError(t, err)
		} else {
			roundTrip(t, s, func(s string) ([]byte, error) { return MarshalErrorBody(s), nil }, UnmarshalErrorBody)
		}
		if ids, err := UnmarshalUnsetAssets(body); err != nil {
			checkBodyError(t, err)
		} else {
			roundTrip(t, ids, MarshalUnsetAssets, UnmarshalUnsetAssets)
		}
		if pa, err := UnmarshalProbeAnnounce(body); err != nil {
			checkBodyError(t, err)
		} else {
			roundTrip(t, pa, MarshalProbeAnnounce, UnmarshalProbeAnnounce)
		}
		if pc, err := UnmarshalProbeChecks(body); err != nil {
			checkBodyError(t, err)
		} else {
			roundTrip(t, pc, MarshalProbeChecks, UnmarshalProbeChecks)
		}
		if id, pc, err := UnmarshalProbeUpsert(body); err != nil {
			checkBodyError(t, err)
		} else {
			type upsert struct {
				id     uint64
				checks []ProbeCheck
			}
			roundTrip(t, upsert{id, pc},
				func(u upsert) ([]byte, error) { return MarshalProbeUpsert(u.id, u.checks) },
				func(b []byte) (upsert, error) { id, c, err := UnmarshalProbeUpsert(b); return upsert{id, c}, err })
		}
		if d, err := UnmarshalProbeDump(body); err != nil {
			checkBodyError(t, err)
		} else {
			roundTrip(t, d, MarshalProbeDump, UnmarshalProbeDump)
		}
		if e, err := UnmarshalEnroll(body); err != nil {
			checkBodyError(t, err)
		} else {
			roundTrip(t, e, MarshalEnroll, UnmarshalEnroll)
		}
		if r, err := UnmarshalEnrollReply(body); err != nil {
			checkBodyError(t, err)
		} else {
			roundTrip(t, r, MarshalEnrollReply, UnmarshalEnrollReply)
		}
		if c, err := UnmarshalProbeInfoReply(body); err != nil {
			checkBodyError(t, err)
		} else {
			roundTrip(t, c, func(c float64) ([]byte, error) { return MarshalProbeInfoReply(c), nil }, UnmarshalProbeInfoReply)
		}
	})
}

func checkBodyError(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalidBody) && !errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v wraps neither ErrInvalidBody nor ErrMalformed", err)
	}
}

// roundTrip checks that an accepted body's value encodes, reads back, and
// encodes to the same bytes again. Values are compared by their encoding:
// configs may hold NaN, which DeepEqual finds unequal to itself.
func roundTrip[T any](t *testing.T, v T, marshal func(T) ([]byte, error), unmarshal func([]byte) (T, error)) {
	t.Helper()
	enc, err := marshal(v)
	if err != nil {
		t.Fatalf("an accepted %T does not encode: %v", v, err)
	}
	v2, err := unmarshal(enc)
	if err != nil {
		t.Fatalf("a re-encoded %T is refused: %v\n% x", v, err, enc)
	}
	enc2, err := marshal(v2)
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("%T: encoding is not stable:\n% x\n% x (%v)", v, enc, enc2, err)
	}
}

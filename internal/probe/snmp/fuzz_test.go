package snmp

import (
	"encoding/binary"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/gosnmp/gosnmp"
)

// The OIDs fuzzed values are given: the ones the checks read, and a few
// around them.
var fuzzOIDs = func() []string {
	oids := []string{".1.3.6.1.2.1.1.9.1", ".1.3.6.1.2.1.2.2.1.2", ".1.3.6.1.2.1.31.1.1.1.1.2.3", "1.3.6.1.2.1.2.2.1.2.5", ""}
	for _, o := range systemObjects {
		oids = append(oids, o.oid)
	}
	for _, c := range ifColumns {
		oids = append(oids, c.oid+".1", c.oid+".2", c.oid+".2147483647", c.oid+".0")
	}
	return oids
}()

// fuzzPDUs turns bytes into a list of PDUs of any type the agent may claim
// holding any Go value gosnmp may decode (or not), in chunks of
// [oid selector, type, value kind, length, value bytes...].
func fuzzPDUs(data []byte) []gosnmp.SnmpPDU {
	var pdus []gosnmp.SnmpPDU
	for len(data) >= 4 && len(pdus) < 200 {
		oid := fuzzOIDs[int(data[0])%len(fuzzOIDs)]
		typ := gosnmp.Asn1BER(data[1])
		kind := data[2]
		n := min(int(data[3]), len(data)-4)
		raw := data[4 : 4+n]
		data = data[4+n:]
		var u uint64
		var buf [8]byte
		copy(buf[:], raw)
		u = binary.BigEndian.Uint64(buf[:])
		var v any
		switch kind % 11 {
		case 0:
			v = nil
		case 1:
			v = int(int64(u))
		case 2:
			v = uint(u)
		case 3:
			v = uint32(u)
		case 4:
			v = u
		case 5:
			v = raw
		case 6:
			v = string(raw)
		case 7:
			v = float64(int64(u))
		case 8:
			v = int64(u)
		case 9:
			v = true
		case 10:
			v = int32(u)
		}
		pdus = append(pdus, gosnmp.SnmpPDU{Name: oid, Type: typ, Value: v})
	}
	return pdus
}

// convertAll runs every conversion of this package over pdus and checks
// that the results are what the hub accepts.
func convertAll(t *testing.T, pdus []gosnmp.SnmpPDU) {
	res := systemResult(pdus)
	if res.Types != nil {
		assertValid(t, res)
	}
	table := &ifTableRows{rows: make(map[int64]*ifRow)}
	for _, col := range ifColumns {
		for _, pdu := range pdus {
			if table.add(col, pdu) != nil {
				break
			}
		}
	}
	res = interfacesResult(table)
	if res.Types != nil {
		assertValid(t, res)
	}
	for _, s := range allStrings(res) {
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 in the result: %q", s)
		}
	}
}

// FuzzConvert feeds arbitrary SNMP values, of any claimed type and any Go
// type, to the code that turns them into metrics.
func FuzzConvert(f *testing.F) {
	f.Add([]byte{0, 4, 5, 3, 'a', 'b', 'c'})
	f.Add([]byte{6, 0x43, 3, 4, 0xff, 0xff, 0xff, 0xff, 9, 0x46, 4, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{10, 0x02, 1, 1, 0x80, 11, 0x04, 5, 6, 0, 0x1b, 0x21, 1, 2, 3})
	f.Add([]byte{20, 0x80, 0, 0, 30, 0x06, 6, 5, '.', '1', '.', '3', '.'})
	f.Fuzz(func(t *testing.T, data []byte) {
		convertAll(t, fuzzPDUs(data))
	})
}

// FuzzDecode feeds arbitrary datagrams to gosnmp's decoder, as an agent
// would send them, and what it decodes to the conversions.
func FuzzDecode(f *testing.F) {
	m := switchMIB()
	req := &gosnmp.SnmpPacket{Community: fakeCommunity}
	for _, vars := range [][]gosnmp.SnmpPDU{
		m.next(".1.3.6.1.2.1.1", 6),
		m.next(ifEntry, 40),
		m.next(ifXEntry, 20),
		{{Name: ".1.3.6.1.2.1.1.1.0", Type: gosnmp.NoSuchObject}},
	} {
		f.Add(encode(f, req, 42, gosnmp.NoError, vars))
	}
	f.Add([]byte("\x30\x03\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := (&gosnmp.GoSNMP{Version: gosnmp.Version2c}).SnmpDecodePacket(data)
		if err != nil || p == nil {
			return
		}
		convertAll(t, p.Variables)
	})
}

// FuzzStrings checks the text sanitizers and the OID order on arbitrary
// input.
func FuzzStrings(f *testing.F) {
	f.Add("eth0\x00", ".1.3.6.1", 10)
	f.Add("\xff\xfe\x1b[0m", "1.3.x.6", 2)
	f.Fuzz(func(t *testing.T, s, oid string, max int) {
		max = min(max&0xffff, 5000)
		out := sanitizeString(s, max)
		if len(out) > max || !utf8.ValidString(out) {
			t.Fatalf("sanitizeString(%q, %d) = %q", s, max, out)
		}
		for _, r := range out {
			if unicode.IsControl(r) && !strings.ContainsRune("\t\r\n", r) {
				t.Fatalf("control character in %q", out)
			}
		}
		name := itemName(s)
		if len(name) > maxItemNameLen || strings.ContainsAny(name, "\t\r\n") {
			t.Fatalf("itemName(%q) = %q", s, name)
		}
		if c := compareOIDs(s, oid); c != -compareOIDs(oid, s) {
			t.Fatalf("compareOIDs(%q, %q) is not antisymmetric", s, oid)
		}
		if compareOIDs(oid, oid) != 0 {
			t.Fatalf("compareOIDs(%q, itself) != 0", oid)
		}
	})
}

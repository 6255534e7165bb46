package vault

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/secret"
)

// buildFile seals entries into a complete vault file under kek, with
// nonces derived from fill so the same arguments give the same bytes: the
// fuzzing workers rebuild the seeds and must get the coordinator's.
func buildFile(t testing.TB, h header, kek, dataKey []byte, entries map[string]entry, fill byte) []byte {
	t.Helper()
	raw := h.marshal()
	sealedKey := sealNonce(newAEAD(kek), bytes.Repeat([]byte{fill}, nonceLen), dataKey, raw)
	pt, err := encodeEntries(entries)
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{rawHeader: raw, sealedKey: sealedKey}
	sealed := sealNonce(newAEAD(subkey(dataKey, entriesInfo)), bytes.Repeat([]byte{fill + 1}, nonceLen), pt, entriesAD(p))
	b, err := assemble(raw, sealedKey, sealed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzOpen feeds arbitrary bytes to what Open does with a vault file once
// it holds the key-encryption key (parse, then unseal). The KEK is fixed for
// both kinds, so the fuzzer does not spend its time in Argon2id. It must
// never panic, and must never return entries for bytes other than the
// valid files it was seeded with: any alteration is refused.
func FuzzOpen(f *testing.F) {
	kek := bytes.Repeat([]byte{0x4b}, keyLen)
	dataKey := bytes.Repeat([]byte{0x44}, keyLen)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	entries := map[string]entry{
		"web": {EntryInfo{Name: "web", Kind: KindPassword, Username: "admin", Created: now, Rotated: now}, secret.New("pw")},
		"sw":  {EntryInfo{Name: "sw", Kind: KindSNMPCommunity, Created: now, Rotated: now.Add(time.Hour)}, secret.New("public")},
	}
	valid := [][]byte{
		buildFile(f, header{kind: kindKeyFile}, kek, dataKey, entries, 1),
		buildFile(f, header{kind: kindKeyFile}, kek, dataKey, map[string]entry{}, 3),
		buildFile(f, header{kind: kindPassphrase, kdf: *fastKDF, salt: bytes.Repeat([]byte{0x53}, saltLen)}, kek, dataKey, entries, 5),
	}
	for _, b := range valid {
		f.Add(b)
	}
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Add(append([]byte(magic), formatVersion, kindPassphrase, 0, 0, 0, 1, 0, 0, 0, 64, 1))

	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parse(b)
		if err != nil {
			return
		}
		dk, got, err := unseal(p, kek)
		if err != nil {
			if got != nil || dk != nil {
				t.Fatal("unseal returned entries with an error")
			}
			return
		}
		for _, v := range valid {
			if bytes.Equal(b, v) {
				if len(got) > len(entries) {
					t.Fatalf("%d entries from a seed", len(got))
				}
				return
			}
		}
		t.Fatalf("altered bytes opened, %d entries", len(got))
	})
}

// FuzzEntries reaches what FuzzOpen cannot get past the AEAD: decoding the
// entries' JSON. It seals arbitrary plaintext with the right key, as only a
// holder of the data key could. It must never panic, and what it accepts
// must be valid entries that encode again.
func FuzzEntries(f *testing.F) {
	kek := bytes.Repeat([]byte{0x4b}, keyLen)
	dataKey := bytes.Repeat([]byte{0x44}, keyLen)
	f.Add([]byte(`{"entries":[]}`))
	f.Add([]byte(`{"entries":[{"name":"a","kind":"password","username":"u","secret":"s","created":"2026-03-01T00:00:00Z","rotated":"2026-03-01T00:00:00Z"}]}   `))
	f.Add([]byte(`{"entries":[{"name":"a","kind":"token","secret":"s"},{"name":"a","kind":"token","secret":"t"}]}`))
	f.Add([]byte(`{"entries":[{"name":"-a","kind":"x","secret":""}],"extra":1}`))
	f.Add([]byte(`{"entries":null} {}`))
	f.Add([]byte(`{"entries":[{"name":"a","kind":"token","secret":"s","hosts":["10.0.0.0/8","*.Corp.","10.0.0.0/8","::1"]}]}`))
	f.Add([]byte(`{"entries":[{"name":"a","kind":"token","secret":"s","hosts":["10.1.0.0/8"]}]}`))

	raw := header{kind: kindKeyFile}.marshal()
	sealedKey := sealDataKey(raw, kek, dataKey)
	p := parsed{rawHeader: raw, sealedKey: sealedKey}
	aead := newAEAD(subkey(dataKey, entriesInfo))
	f.Fuzz(func(t *testing.T, pt []byte) {
		p := p
		p.entries = sealNonce(aead, make([]byte, nonceLen), pt, entriesAD(p))
		entries, err := openEntries(p, dataKey)
		if err != nil {
			return
		}
		for name, e := range entries {
			if name != e.Name {
				t.Fatalf("entry %q under %q", e.Name, name)
			}
			hosts, err := validateRecord(record{Name: e.Name, Kind: e.Kind, Username: e.Username, Secret: e.secret.Reveal(), Hosts: e.Hosts})
			if err != nil {
				t.Fatalf("accepted an invalid entry: %v", err)
			}
			if !slices.Equal(hosts, e.Hosts) {
				t.Fatalf("hosts %q are not canonical (%q)", e.Hosts, hosts)
			}
		}
		if _, err := encodeEntries(entries); err != nil {
			t.Fatalf("accepted entries do not encode: %v", err)
		}
	})
}

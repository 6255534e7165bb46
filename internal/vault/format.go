package vault

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/sonde-monitoring/sonde/internal/secret"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// The vault file, version 1. All integers are big-endian.
//
//	header (authenticated as associated data, never encrypted):
//	  magic       8 bytes  "SONDEVLT"
//	  version     1 byte   1
//	  kek kind    1 byte   1 = key file, 2 = passphrase
//	  passphrase kind only:
//	    argon2id time       4 bytes
//	    argon2id memory KiB 4 bytes
//	    argon2id threads    1 byte
//	    salt                16 bytes
//	sealed data key:  24-byte nonce ‖ XChaCha20-Poly1305(KEK, data key, AD = header)   (72 bytes)
//	entries length:   4 bytes
//	sealed entries:   24-byte nonce ‖ XChaCha20-Poly1305(entries key, JSON, AD = header ‖ sealed data key)
//
// The entries key is HKDF-SHA256(data key, info "sonde vault entries v1"),
// so it differs from every key DataSealer derives. Nothing follows the
// sealed entries. The JSON is padded with spaces to a multiple of padTo so
// the file size says little about the length of the secrets.

const (
	magic         = "SONDEVLT"
	formatVersion = 1

	kindKeyFile    byte = 1
	kindPassphrase byte = 2

	keyLen      = 32
	saltLen     = 16
	nonceLen    = chacha20poly1305.NonceSizeX
	tagLen      = chacha20poly1305.Overhead
	sealedKeyLn = nonceLen + keyLen + tagLen

	baseHeaderLen = len(magic) + 2
	kdfHeaderLen  = 4 + 4 + 1 + saltLen

	// maxFileSize bounds what is read from disk: a vault of this size
	// holds thousands of credentials.
	maxFileSize = 16 << 20
	padTo       = 512

	entriesInfo = "sonde vault entries v1"
)

// kdfParams are the Argon2id parameters that stretch a passphrase.
type kdfParams struct {
	time      uint32
	memoryKiB uint32
	threads   uint8
}

// defaultKDF is RFC 9106's second recommended option (§4): 64 MiB, three
// passes, four lanes. Opening the vault takes up to about a second on a
// small appliance, once per start, and each guess costs an attacker the
// same.
var defaultKDF = kdfParams{time: 3, memoryKiB: 64 << 10, threads: 4}

// validate bounds the parameters read from a file, so an altered header
// cannot make Open allocate gigabytes or run for minutes before the
// authentication check refuses it.
func (p kdfParams) validate() error {
	switch {
	case p.time < 1 || p.time > 16:
		return fmt.Errorf("argon2id time %d out of range 1–16", p.time)
	case p.threads < 1 || p.threads > 64:
		return fmt.Errorf("argon2id threads %d out of range 1–64", p.threads)
	case p.memoryKiB < 8*uint32(p.threads) || p.memoryKiB > 1<<20:
		return fmt.Errorf("argon2id memory %d KiB out of range %d KiB–1 GiB", p.memoryKiB, 8*uint32(p.threads))
	}
	return nil
}

func (p kdfParams) derive(passphrase, salt []byte) []byte {
	return argon2.IDKey(passphrase, salt, p.time, p.memoryKiB, p.threads, keyLen)
}

// header is the decoded plain-text header of a vault file.
type header struct {
	kind byte
	kdf  kdfParams // passphrase kind only
	salt []byte    // passphrase kind only
}

func (h header) marshal() []byte {
	b := make([]byte, 0, baseHeaderLen+kdfHeaderLen)
	b = append(b, magic...)
	b = append(b, formatVersion, h.kind)
	if h.kind == kindPassphrase {
		b = binary.BigEndian.AppendUint32(b, h.kdf.time)
		b = binary.BigEndian.AppendUint32(b, h.kdf.memoryKiB)
		b = append(b, h.kdf.threads)
		b = append(b, h.salt...)
	}
	return b
}

// parsed is a vault file split into its parts; nothing in it is
// authenticated yet.
type parsed struct {
	header    header
	rawHeader []byte
	sealedKey []byte
	entries   []byte
}

// errMalformed is wrapped by parse's errors; Open turns it into ErrMalformed
// with the file's path.
var errMalformed = errors.New("malformed")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// parse splits a vault file into its parts and checks its framing. It does
// no cryptography.
func parse(b []byte) (parsed, error) {
	var p parsed
	if len(b) < baseHeaderLen {
		return p, malformed("truncated header (%d bytes)", len(b))
	}
	if string(b[:len(magic)]) != magic {
		return p, malformed("not a Sonde vault (bad magic)")
	}
	if v := b[len(magic)]; v != formatVersion {
		return p, malformed("unsupported format version %d (this build reads version %d)", v, formatVersion)
	}
	p.header.kind = b[len(magic)+1]
	n := baseHeaderLen
	switch p.header.kind {
	case kindKeyFile:
	case kindPassphrase:
		if len(b) < n+kdfHeaderLen {
			return p, malformed("truncated passphrase parameters")
		}
		k := b[n:]
		p.header.kdf = kdfParams{
			time:      binary.BigEndian.Uint32(k[0:4]),
			memoryKiB: binary.BigEndian.Uint32(k[4:8]),
			threads:   k[8],
		}
		p.header.salt = bytes.Clone(k[9 : 9+saltLen])
		if err := p.header.kdf.validate(); err != nil {
			return p, malformed("%v", err)
		}
		n += kdfHeaderLen
	default:
		return p, malformed("unknown key kind %d", p.header.kind)
	}
	p.rawHeader = b[:n:n]
	if len(b) < n+sealedKeyLn+4 {
		return p, malformed("truncated data key")
	}
	p.sealedKey = b[n : n+sealedKeyLn : n+sealedKeyLn]
	n += sealedKeyLn
	size := binary.BigEndian.Uint32(b[n:])
	n += 4
	rest := b[n:]
	switch {
	case size < nonceLen+tagLen:
		return p, malformed("entries length %d too short", size)
	case uint64(len(rest)) < uint64(size):
		return p, malformed("truncated entries (%d of %d bytes)", len(rest), size)
	case uint64(len(rest)) > uint64(size):
		return p, malformed("%d unexpected bytes after the entries", uint64(len(rest))-uint64(size))
	}
	p.entries = rest
	return p, nil
}

// errAuth means an AEAD refused a ciphertext: the wrong key, or altered
// bytes. The two cannot be told apart, by design.
var errAuth = errors.New("authentication failed")

func newAEAD(key []byte) cipher.AEAD {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		// Only a key of the wrong length fails, and every key here is
		// keyLen bytes by construction.
		panic(fmt.Sprintf("vault: XChaCha20-Poly1305 key: %v", err))
	}
	return a
}

// seal returns nonce ‖ ciphertext with a random nonce. XChaCha20's 192-bit
// nonces make random nonces safe for any number of messages under one key.
func seal(a cipher.AEAD, plaintext, ad []byte) []byte {
	nonce := make([]byte, nonceLen)
	// crypto/rand.Read never returns an error (it crashes the program
	// instead, since Go 1.24).
	_, _ = rand.Read(nonce)
	return sealNonce(a, nonce, plaintext, ad)
}

// sealNonce returns nonce ‖ ciphertext.
func sealNonce(a cipher.AEAD, nonce, plaintext, ad []byte) []byte {
	out := make([]byte, len(nonce), len(nonce)+len(plaintext)+tagLen)
	copy(out, nonce)
	return a.Seal(out, nonce, plaintext, ad)
}

func open(a cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < nonceLen+tagLen {
		return nil, errAuth
	}
	pt, err := a.Open(nil, sealed[:nonceLen], sealed[nonceLen:], ad)
	if err != nil {
		return nil, errAuth
	}
	return pt, nil
}

// subkey derives a 32-byte key for one use of the data key.
func subkey(dataKey []byte, info string) []byte {
	k, err := hkdf.Key(sha256.New, dataKey, nil, info, keyLen)
	if err != nil {
		// hkdf.Key fails only for lengths beyond 255 hash blocks.
		panic(fmt.Sprintf("vault: hkdf: %v", err))
	}
	return k
}

func randomKey() []byte {
	k := make([]byte, keyLen)
	_, _ = rand.Read(k) // never fails since Go 1.24; see seal
	return k
}

func entriesAD(p parsed) []byte {
	ad := make([]byte, 0, len(p.rawHeader)+len(p.sealedKey))
	return append(append(ad, p.rawHeader...), p.sealedKey...)
}

// openDataKey unseals the data key with the key-encryption key.
func openDataKey(p parsed, kek []byte) ([]byte, error) {
	dk, err := open(newAEAD(kek), p.sealedKey, p.rawHeader)
	if err != nil {
		return nil, err
	}
	if len(dk) != keyLen {
		return nil, errAuth
	}
	return dk, nil
}

// entry is a credential in memory; its value redacts itself wherever it is
// printed or logged.
type entry struct {
	EntryInfo
	secret secret.Secret
}

// unseal opens the data key with kek, then the entries with the data key:
// everything Open does once it has the key-encryption key. It fails with
// errAuth or errMalformed.
func unseal(p parsed, kek []byte) ([]byte, map[string]entry, error) {
	dk, err := openDataKey(p, kek)
	if err != nil {
		return nil, nil, err
	}
	entries, err := openEntries(p, dk)
	if err != nil {
		return nil, nil, err
	}
	return dk, entries, nil
}

// record is how an entry is stored inside the sealed JSON. It holds the
// value as a plain string, so it lives only while the entries are sealed or
// opened.
type record struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Username string    `json:"username,omitempty"`
	Secret   string    `json:"secret"`
	Created  time.Time `json:"created"`
	Rotated  time.Time `json:"rotated"`
	// Hosts are the host patterns the credential may be sent to. Vaults
	// written before hosts existed have none: their entries are sent
	// nowhere until the operator sets them.
	Hosts []string `json:"hosts,omitempty"`
}

type payload struct {
	Entries []record `json:"entries"`
}

// openEntries authenticates and decodes the entries with the data key.
// Success proves the file was written by a holder of the data key.
func openEntries(p parsed, dataKey []byte) (map[string]entry, error) {
	pt, err := open(newAEAD(subkey(dataKey, entriesInfo)), p.entries, entriesAD(p))
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	dec := json.NewDecoder(bytes.NewReader(pt))
	dec.DisallowUnknownFields()
	var pl payload
	if err := dec.Decode(&pl); err != nil {
		return nil, malformed("entries: %v", err)
	}
	if len(bytes.TrimLeft(pt[dec.InputOffset():], " \n")) != 0 {
		return nil, malformed("entries: unexpected data after the JSON")
	}
	m := make(map[string]entry, len(pl.Entries))
	for _, r := range pl.Entries {
		hosts, err := validateRecord(r)
		if err != nil {
			return nil, malformed("entries: %v", err)
		}
		if _, dup := m[r.Name]; dup {
			return nil, malformed("entries: %q appears twice", r.Name)
		}
		m[r.Name] = entry{
			EntryInfo: EntryInfo{Name: r.Name, Kind: r.Kind, Username: r.Username, Hosts: hosts, Created: r.Created, Rotated: r.Rotated},
			secret:    secret.New(r.Secret),
		}
	}
	return m, nil
}

// validateRecord checks a stored entry and returns its hosts in canonical
// form.
func validateRecord(r record) ([]string, error) {
	if err := ValidateName(r.Name); err != nil {
		return nil, err
	}
	if err := validateKind(r.Kind); err != nil {
		return nil, fmt.Errorf("%q: %w", r.Name, err)
	}
	if err := validateUsername(r.Username); err != nil {
		return nil, fmt.Errorf("%q: %w", r.Name, err)
	}
	if err := validateSecret(r.Secret); err != nil {
		return nil, fmt.Errorf("%q: %w", r.Name, err)
	}
	hosts, err := ValidateHosts(r.Hosts)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", r.Name, err)
	}
	return hosts, nil
}

// marshalFile assembles a complete vault file: the header, the sealed data
// key, and the entries sealed afresh under the data key.
func marshalFile(rawHeader, sealedKey, dataKey []byte, entries map[string]entry) ([]byte, error) {
	pt, err := encodeEntries(entries)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	p := parsed{rawHeader: rawHeader, sealedKey: sealedKey}
	return assemble(rawHeader, sealedKey, seal(newAEAD(subkey(dataKey, entriesInfo)), pt, entriesAD(p)))
}

// encodeEntries returns the entries' JSON, sorted by name and padded.
func encodeEntries(entries map[string]entry) ([]byte, error) {
	pl := payload{Entries: make([]record, 0, len(entries))}
	for _, e := range entries {
		pl.Entries = append(pl.Entries, record{
			Name: e.Name, Kind: e.Kind, Username: e.Username, Secret: e.secret.Reveal(),
			Created: e.Created, Rotated: e.Rotated, Hosts: e.Hosts,
		})
	}
	sort.Slice(pl.Entries, func(i, j int) bool { return pl.Entries[i].Name < pl.Entries[j].Name })
	pt, err := json.Marshal(pl)
	if err != nil {
		return nil, fmt.Errorf("encoding entries: %w", err)
	}
	if pad := (padTo - len(pt)%padTo) % padTo; pad > 0 {
		pt = append(pt, bytes.Repeat([]byte{' '}, pad)...)
	}
	return pt, nil
}

// assemble concatenates the parts of a vault file.
func assemble(rawHeader, sealedKey, sealedEntries []byte) ([]byte, error) {
	size := len(rawHeader) + len(sealedKey) + 4 + len(sealedEntries)
	if size > maxFileSize {
		return nil, fmt.Errorf("the vault would exceed %d MiB: remove credentials first", maxFileSize>>20)
	}
	out := make([]byte, 0, size)
	out = append(out, rawHeader...)
	out = append(out, sealedKey...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(sealedEntries))) // #nosec G115 -- bounded by maxFileSize just above
	return append(out, sealedEntries...), nil
}

// sealDataKey seals the data key under a key-encryption key, bound to the
// header.
func sealDataKey(rawHeader, kek, dataKey []byte) []byte {
	return seal(newAEAD(kek), dataKey, rawHeader)
}

func equalKeys(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

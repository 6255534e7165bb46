package vault

import (
	"crypto/cipher"
	"fmt"
)

// Sealer seals data other than credentials (the disk buffer, the last known
// configuration) with a key derived from the vault's data key for one
// purpose. Ciphertexts of one purpose do not open under another, nor under
// the vault's own entries key, so they cannot be swapped for one another.
// A Sealer is safe for concurrent use; it keeps working, with the same key,
// after the vault is rekeyed.
type Sealer struct {
	purpose string
	aead    cipher.AEAD
}

// sealerInfo prefixes the HKDF info of every DataSealer key; the vault's
// entries key uses a different info, entriesInfo.
const sealerInfo = "sonde data sealer v1\x00"

// DataSealer returns the Sealer for purpose (e.g. "buffer", "config"): 1 to
// 64 characters from A–Z, a–z, 0–9, '.', '_' and '-'. It panics on an
// invalid purpose, which is a programming error, as regexp.MustCompile does.
func (v *Vault) DataSealer(purpose string) *Sealer {
	if err := ValidateName(purpose); err != nil {
		panic(fmt.Sprintf("vault: DataSealer purpose: %v", err))
	}
	return &Sealer{purpose: purpose, aead: newAEAD(subkey(v.dataKey, sealerInfo+purpose))}
}

// String names the Sealer by its purpose; it never shows the key.
func (s *Sealer) String() string { return "vault sealer " + s.purpose }

// GoString is String, so %#v shows no key either.
func (s *Sealer) GoString() string { return s.String() }

// Purpose returns the purpose the Sealer was made for.
func (s *Sealer) Purpose() string { return s.purpose }

// Overhead is how many bytes Seal adds to the plaintext (nonce and tag).
func (s *Sealer) Overhead() int { return nonceLen + tagLen }

// Seal encrypts and authenticates plaintext, and authenticates ad (e.g. a
// record's sequence number or file name, so records cannot be reordered or
// moved between files). It returns a random 24-byte nonce followed by the
// ciphertext.
func (s *Sealer) Seal(plaintext, ad []byte) []byte {
	return seal(s.aead, plaintext, ad)
}

// Open authenticates and decrypts what Seal returned for the same purpose
// and ad. Any other input fails with an error wrapping ErrCannotOpen.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	pt, err := open(s.aead, sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("sealed %s data: %w (wrong data key, or the data was altered)", s.purpose, ErrCannotOpen)
	}
	return pt, nil
}

package buffer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// gcmSealer is AES-256-GCM with a 12-byte nonce made of a random 4-byte
// prefix, chosen per sealer, and a 64-bit counter, prepended to the output.
type gcmSealer struct {
	aead    cipher.AEAD
	prefix  [4]byte
	counter atomic.Uint64
}

var _ Sealer = (*gcmSealer)(nil)

func newGCMSealer(key []byte) (*gcmSealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s := &gcmSealer{aead: aead}
	if _, err := rand.Read(s.prefix[:]); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *gcmSealer) Seal(dst, plaintext, additionalData []byte) []byte {
	var nonce [12]byte
	copy(nonce[:4], s.prefix[:])
	binary.BigEndian.PutUint64(nonce[4:], s.counter.Add(1))
	dst = append(dst, nonce[:]...)
	return s.aead.Seal(dst, nonce[:], plaintext, additionalData)
}

func (s *gcmSealer) Open(dst, ciphertext, additionalData []byte) ([]byte, error) {
	if len(ciphertext) < 12 {
		return nil, errors.New("sealed value too short")
	}
	return s.aead.Open(dst, ciphertext[:12], ciphertext[12:], additionalData)
}

// newKey returns a random AES-256 key.
func newKey(t testing.TB) []byte {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

func newSealer(t testing.TB, key []byte) *gcmSealer {
	t.Helper()
	s, err := newGCMSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testBuffer is a Buffer in t.TempDir with what reopening it needs.
type testBuffer struct {
	*Buffer
	path string
	key  []byte
	opts Options
}

func openTest(t testing.TB, opts Options) *testBuffer {
	t.Helper()
	tb := &testBuffer{path: filepath.Join(t.TempDir(), "buffer.db"), key: newKey(t), opts: opts}
	tb.reopen(t)
	return tb
}

// reopen opens tb.path with a fresh sealer for tb.key; the previous Buffer,
// if any, must be closed.
func (tb *testBuffer) reopen(t testing.TB) {
	t.Helper()
	b, err := Open(tb.path, newSealer(t, tb.key), tb.opts)
	if err != nil {
		t.Fatal(err)
	}
	tb.Buffer = b
	t.Cleanup(func() { _ = b.Close() })
}

func (tb *testBuffer) close(t testing.TB) {
	t.Helper()
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
}

package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzDecode feeds decode what a tampered file could hold under a key. It
// must return the entry that was sealed or a CorruptError, and never panic.
func FuzzDecode(f *testing.F) {
	key := make([]byte, 32)
	s, err := newGCMSealer(key)
	if err != nil {
		f.Fatal(err)
	}
	b := &Buffer{sealer: s}
	seal := func(seq uint64, pt []byte) []byte { return s.Seal(nil, pt, appendAAD(nil, seqKey(seq))) }
	f.Add(uint64(1), seal(1, []byte{7, 'a', 'b'}))
	f.Add(uint64(2), seal(1, []byte{7, 'a', 'b'}))
	f.Add(uint64(3), seal(3, nil))
	f.Add(uint64(4), seal(4, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}))
	f.Add(uint64(5), []byte{})
	f.Add(uint64(6), bytes.Repeat([]byte{0}, 40))
	f.Fuzz(func(t *testing.T, seq uint64, v []byte) {
		e, err := b.decode(seqKey(seq), v)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Seq != seq || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v is not a CorruptError for %d", err, seq)
			}
			return
		}
		// Only a value sealed for this seq opens: check it round-trips.
		pt := binary.AppendUvarint(nil, e.AssetID)
		pt = append(pt, e.Body...)
		again, err := b.decode(seqKey(seq), seal(seq, pt))
		if err != nil || again.AssetID != e.AssetID || !bytes.Equal(again.Body, e.Body) || e.Seq != seq {
			t.Fatalf("round trip: %+v, %v; first %+v", again, err, e)
		}
	})
}

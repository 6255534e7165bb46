package qr

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzEncode checks that Encode never panics, refuses only what is too long,
// and that the test decoder reads back what it encoded.
func FuzzEncode(f *testing.F) {
	f.Add([]byte(""), uint8(1))
	f.Add([]byte("otpauth://totp/Sonde:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Sonde&algorithm=SHA1&digits=6&period=30"), uint8(1))
	f.Add(bytes.Repeat([]byte{0xEC, 0x11}, 60), uint8(3))
	f.Add(make([]byte, 271), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, l uint8) {
		level := Level(l % 4)
		c, err := Encode(data, level)
		if len(data) > Capacity(MaxVersion, level) {
			if !errors.Is(err, ErrTooLong) {
				t.Fatalf("%d bytes at %s: err = %v, want ErrTooLong", len(data), level, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%d bytes at %s: %v", len(data), level, err)
		}
		if c.Version > 1 && len(data) <= Capacity(c.Version-1, level) {
			t.Fatalf("%d bytes at %s: version %d, but %d fits", len(data), level, c.Version, c.Version-1)
		}
		got, err := decode(gridOf(c))
		if err != nil {
			t.Fatalf("%d bytes at %s: decoding: %v", len(data), level, err)
		}
		if got.level != level || got.version != c.Version || got.mask != c.Mask || !bytes.Equal(got.data, data) {
			t.Fatalf("%d bytes at %s: round trip mismatch", len(data), level)
		}
	})
}

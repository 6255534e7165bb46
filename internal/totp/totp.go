// Package totp implements the time-based one-time passwords of RFC 6238
// (over the HOTP of RFC 4226) used as the web UI's second factor, and the
// single-use recovery codes that stand in for a lost authenticator.
//
// Only the parameters every authenticator app supports are offered: HMAC-SHA1,
// six digits, a 30-second step. The package keeps no state: the caller stores
// the shared secret, the last accepted step and the recovery code hashes of
// each user.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" // #nosec G505 -- RFC 6238's default HMAC, the one authenticator apps implement; HMAC-SHA1 is not broken by SHA-1 collisions
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/secret"
)

const (
	// Digits is the length of a code.
	Digits = 6
	// Period is how long one code is valid for (one time step).
	Period = 30 * time.Second
	// Skew is how many steps before and after the current one Verify accepts,
	// to allow for clock drift and a user typing slowly.
	Skew = 1
	// SecretSize is the number of random bytes in a generated secret: 160
	// bits, the HMAC-SHA1 output size RFC 4226 recommends.
	SecretSize = 20
)

// ErrBadSecret reports a shared secret that is not valid base32.
var ErrBadSecret = errors.New("the TOTP secret is not valid base32: enrol the authenticator again")

// b32 is the encoding of secrets in otpauth URIs: RFC 4648 base32, upper case,
// without padding.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// GenerateSecret returns a new random shared secret of SecretSize bytes,
// encoded in upper-case base32 without padding.
func GenerateSecret() (secret.Secret, error) {
	b := make([]byte, SecretSize)
	if _, err := rand.Read(b); err != nil {
		return secret.Secret{}, fmt.Errorf("generating a TOTP secret: %w", err)
	}
	return secret.New(b32.EncodeToString(b)), nil
}

// URI returns the otpauth:// key URI an authenticator app reads from a QR
// code. Issuer and account are percent-encoded; a colon in either is encoded
// too, so it cannot be mistaken for the label separator. An empty issuer is
// left out.
func URI(s secret.Secret, issuer, account string) string {
	label := escape(account)
	if issuer != "" {
		label = escape(issuer) + ":" + label
	}
	var b strings.Builder
	b.WriteString("otpauth://totp/")
	b.WriteString(label)
	b.WriteString("?secret=")
	b.WriteString(escape(s.Reveal()))
	if issuer != "" {
		b.WriteString("&issuer=")
		b.WriteString(escape(issuer))
	}
	fmt.Fprintf(&b, "&algorithm=SHA1&digits=%d&period=%d", Digits, int(Period/time.Second))
	return b.String()
}

// escape percent-encodes everything but RFC 3986's unreserved characters, so
// the result is safe both in the label (path) and in a query value, and a
// space becomes %20, which every authenticator understands (some show "+"
// literally).
func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// Code returns the code for the time step that contains t.
func Code(s secret.Secret, t time.Time) (string, error) {
	key, err := decodeSecret(s)
	if err != nil {
		return "", err
	}
	step := stepAt(t)
	if step < 0 {
		return "", fmt.Errorf("computing a TOTP code for %s: time is before the Unix epoch", t.UTC().Format(time.RFC3339))
	}
	return hotp(key, uint64(step), Digits), nil
}

// Verify checks code against the steps within ±Skew of now's step and
// returns the step it matched. A code whose step is at or before lastStep
// (the value Verify returned at the user's previous successful login, or 0
// for none) is refused, so a code cannot be replayed: the caller stores the
// returned step and passes it next time.
//
// Spaces in code are ignored ("123 456" as apps show it); anything but
// Digits ASCII digits is refused. The comparison takes the same time whichever
// candidate step matches, or none.
func Verify(s secret.Secret, code string, now time.Time, lastStep int64) (step int64, ok bool) {
	code = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, code)
	if len(code) != Digits || strings.Trim(code, "0123456789") != "" {
		return 0, false
	}
	key, err := decodeSecret(s)
	if err != nil {
		return 0, false
	}
	now0 := stepAt(now)
	var found int64
	matched := 0
	for st := now0 - Skew; st <= now0+Skew; st++ {
		if st < 0 {
			continue
		}
		match := subtle.ConstantTimeCompare([]byte(hotp(key, uint64(st), Digits)), []byte(code))
		if st <= lastStep {
			// A replayed or older step: compare anyway so timing does not
			// tell a stale code from a wrong one, but never accept it.
			match = 0
		}
		// Steps ascend, so the last match wins: the newest acceptable step.
		sel := -int64(match) // all ones when match is 1
		found = st&sel | found&^sel
		matched |= match
	}
	if matched != 1 {
		return 0, false
	}
	return found, true
}

// stepAt returns the RFC 6238 time step (T0 = 0) containing t.
func stepAt(t time.Time) int64 {
	u := t.Unix()
	p := int64(Period / time.Second)
	if u < 0 {
		return (u - p + 1) / p // floor, so no step straddles the epoch
	}
	return u / p
}

// decodeSecret accepts a secret as users may copy it: any case, spaces and
// padding allowed.
func decodeSecret(s secret.Secret) ([]byte, error) {
	v := strings.ToUpper(strings.NewReplacer(" ", "", "=", "").Replace(s.Reveal()))
	key, err := b32.DecodeString(v)
	if err != nil || len(key) == 0 {
		return nil, ErrBadSecret
	}
	return key, nil
}

// hotp is RFC 4226's HOTP(K, C) truncated to digits decimal digits.
func hotp(key []byte, counter uint64, digits int) string {
	mac := hmac.New(sha1.New, key)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], counter)
	mac.Write(c[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint64(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, uint64(bin)%mod)
}

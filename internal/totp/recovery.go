package totp

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const (
	// RecoveryCodeCount is how many recovery codes a user is usually given.
	RecoveryCodeCount = 10
	// recoveryLen is the number of alphabet characters in a code; with 31
	// symbols that is about 49.5 bits, far beyond what a rate-limited login
	// form lets anyone guess, and enough that a plain SHA-256 is a fine hash.
	recoveryLen = 10
	// recoveryAlphabet leaves out characters that are easy to misread or
	// mistype: 0/o, 1/l/i.
	recoveryAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"
	// recoveryHashPrefix separates these hashes from any other SHA-256 of the
	// same string.
	recoveryHashPrefix = "sonde totp recovery code\x00"
)

// ErrBadRecoveryCode reports a string that cannot be a recovery code at all.
var ErrBadRecoveryCode = errors.New("not a recovery code: it has 10 letters and digits, as in abcde-23456")

// NewRecoveryCodes returns n random recovery codes formatted for display, as
// "abcde-fghjk". Store only their hashes (HashRecoveryCode).
func NewRecoveryCodes(n int) ([]string, error) {
	if n < 1 {
		return nil, fmt.Errorf("generating recovery codes: count %d must be at least 1", n)
	}
	codes := make([]string, n)
	for i := range codes {
		c, err := randomString(recoveryLen)
		if err != nil {
			return nil, fmt.Errorf("generating recovery codes: %w", err)
		}
		codes[i] = c[:recoveryLen/2] + "-" + c[recoveryLen/2:]
	}
	return codes, nil
}

// randomString draws n characters uniformly from recoveryAlphabet, by
// rejection sampling so no character is more likely than another.
func randomString(n int) (string, error) {
	const limit = 256 - 256%len(recoveryAlphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, recoveryAlphabet[int(b)%len(recoveryAlphabet)])
			}
		}
	}
	return string(out), nil
}

// normalizeRecoveryCode accepts a code as a user may type it: any case, with
// or without the hyphen, spaces around or inside.
func normalizeRecoveryCode(code string) (string, error) {
	c := strings.ToLower(strings.NewReplacer("-", "", " ", "", "\t", "").Replace(code))
	if len(c) != recoveryLen || strings.Trim(c, recoveryAlphabet) != "" {
		return "", ErrBadRecoveryCode
	}
	return c, nil
}

// HashRecoveryCode returns the hex SHA-256 hash to store for a recovery code.
// The code is normalised first, so "ABCDE-23456", "abcde23456" and
// "abcde-23456" hash the same.
func HashRecoveryCode(code string) (string, error) {
	c, err := normalizeRecoveryCode(code)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(recoveryHashPrefix + c))
	return hex.EncodeToString(sum[:]), nil
}

// VerifyRecoveryCode reports whether code matches one of the stored hashes,
// and which one, so the caller can delete it: a recovery code is good for one
// login only. Every hash is compared, in constant time, whatever matches.
func VerifyRecoveryCode(code string, hashes []string) (index int, ok bool) {
	h, err := HashRecoveryCode(code)
	if err != nil {
		return -1, false
	}
	index = -1
	for i, stored := range hashes {
		if subtle.ConstantTimeCompare([]byte(h), []byte(strings.ToLower(stored))) == 1 {
			index = i
		}
	}
	return index, index >= 0
}

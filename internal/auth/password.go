package auth

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	_ "embed" // the common passwords list
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/sonde-monitoring/sonde/internal/secret"
)

// Password policy.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 256
)

// Argon2id parameters (RFC 9106's second recommendation: 64 MiB, 3
// passes), one lane: a login costs a few tens of milliseconds of one core.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

//go:embed common-passwords.txt
var commonPasswordsText string

// commonPasswords is the set of the embedded list, built on first use.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	m := make(map[string]struct{}, 16000)
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsText))
	for sc.Scan() {
		if l := sc.Text(); l != "" && l[0] != '#' {
			m[l] = struct{}{}
		}
	}
	return m
})

// CheckPassword says why a new password is refused, or nil: too short or
// long, the user name, a common password, or one repeated character.
func CheckPassword(username string, pw secret.Secret) error {
	p := pw.Reveal()
	n := utf8.RuneCountInString(p)
	switch {
	case !utf8.ValidString(p):
		return errors.New("the password is not valid UTF-8")
	case n < MinPasswordLength:
		return fmt.Errorf("the password must be at least %d characters; a few unrelated words make a good one", MinPasswordLength)
	case len(p) > MaxPasswordLength:
		return fmt.Errorf("the password must be at most %d bytes", MaxPasswordLength)
	case strings.EqualFold(strings.TrimSpace(p), strings.TrimSpace(username)):
		return errors.New("the password must not be the user name")
	}
	lower := strings.ToLower(p)
	if _, ok := commonPasswords()[lower]; ok {
		return errors.New("this password is on a list of common passwords that attackers try first; choose another")
	}
	if strings.Count(p, p[:1]) == len(p) {
		return errors.New("the password must not be one character repeated")
	}
	return nil
}

// HashPassword hashes a password with Argon2id and a random salt, in the
// PHC string format ($argon2id$v=19$m=…,t=…,p=…$salt$hash).
func HashPassword(pw secret.Secret) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("making a password salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw.Reveal()), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword checks a password against a hash from HashPassword, in
// constant time. A malformed hash never verifies.
func VerifyPassword(hash string, pw secret.Secret) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false
	}
	// Bound the cost a stored hash can ask for.
	if m == 0 || m > 1<<20 || t == 0 || t > 10 || p == 0 || p > 8 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(pw.Reveal()), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// DummyHash is a valid hash of no one's password: verifying against it
// takes as long as a real check, so that an unknown user name answers in
// the same time as a wrong password.
const DummyHash = "$argon2id$v=19$m=65536,t=3,p=1$c29uZGUtZHVtbXktc2FsdA$Jw5u6aIa2B+8WqWJ0pE3Yf1oKk9cQ0k8B0dWq9iJk0E"

// NewPassword makes a random password of 20 characters from an
// unambiguous alphabet, for a first login.
func NewPassword() (secret.Secret, error) {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	out := make([]byte, 0, 20)
	buf := make([]byte, 32)
	for len(out) < cap(out) {
		if _, err := rand.Read(buf); err != nil {
			return secret.Secret{}, fmt.Errorf("making a password: %w", err)
		}
		for _, c := range buf {
			// Rejection sampling: no letter more likely than another.
			if int(c) < 256/len(alphabet)*len(alphabet) && len(out) < cap(out) {
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return secret.New(string(out)), nil
}

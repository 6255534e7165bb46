package vault

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sonde-monitoring/sonde/internal/probe"
)

// Kinds of credential. The kind tells an operator (and the audit) what an
// entry is for, and a probe refuses an entry of a kind it does not take (an
// SNMP community is never sent as an HTTP password). They are the probe
// package's kinds.
const (
	// KindPassword is a password, with the user name it belongs to (HTTP
	// basic authentication, a database login, …).
	KindPassword = probe.KindPassword
	// KindToken is a bearer token or API key; the user name is usually
	// empty.
	KindToken = probe.KindToken
	// KindSNMPCommunity is an SNMP v1/v2c community string.
	KindSNMPCommunity = probe.KindSNMPCommunity
	// KindSNMPv3Auth is an SNMPv3 authentication passphrase; the user name
	// is the USM security name.
	KindSNMPv3Auth = probe.KindSNMPv3Auth
	// KindSNMPv3Priv is an SNMPv3 privacy (encryption) passphrase; the
	// user name is the USM security name. An SNMPv3 target with authPriv
	// refers to one entry of each kind.
	KindSNMPv3Priv = probe.KindSNMPv3Priv
)

// Kinds returns every kind Set accepts, in the order help texts list them.
func Kinds() []string {
	return []string{KindPassword, KindToken, KindSNMPCommunity, KindSNMPv3Auth, KindSNMPv3Priv}
}

// Limits on what an entry may hold.
const (
	// MaxNameLen is the longest credential name.
	MaxNameLen = 64
	// MaxUsernameLen is the longest user name, in bytes.
	MaxUsernameLen = 256
	// MaxSecretLen is the longest secret, in bytes; long enough for a JWT.
	MaxSecretLen = 16 << 10
	// MaxHosts is how many host patterns an entry may have.
	MaxHosts = probe.MaxHosts
)

// ErrInvalid is wrapped by the errors for a name, kind, user name, secret
// or host pattern that Set, SetHosts, Rotate or Remove refuse.
var ErrInvalid = errors.New("invalid")

// ValidateName reports whether name can name a credential: 1 to 64
// characters from A–Z, a–z, 0–9, '.', '_' and '-', starting with a letter or
// a digit (so a name is never taken for a command-line flag, "." or "..").
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w credential name: it must be 1 to %d characters long", ErrInvalid, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return fmt.Errorf("%w credential name %q: it must start with a letter or a digit", ErrInvalid, safeQuote(name))
		}
		if !alnum && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("%w credential name %q: only A-Z, a-z, 0-9, '.', '_' and '-' are allowed", ErrInvalid, safeQuote(name))
		}
	}
	return nil
}

// safeQuote keeps an invalid name printable without echoing control
// characters to a terminal.
func safeQuote(s string) string {
	if len(s) > MaxNameLen {
		s = s[:MaxNameLen] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

func validateKind(kind string) error {
	for _, k := range Kinds() {
		if kind == k {
			return nil
		}
	}
	return fmt.Errorf("%w kind %q: use one of %s", ErrInvalid, safeQuote(kind), strings.Join(Kinds(), ", "))
}

func validateUsername(u string) error {
	if len(u) > MaxUsernameLen {
		return fmt.Errorf("%w user name: longer than %d bytes", ErrInvalid, MaxUsernameLen)
	}
	if !utf8.ValidString(u) || strings.ContainsFunc(u, isControl) {
		return fmt.Errorf("%w user name: it must be valid UTF-8 without control characters", ErrInvalid)
	}
	return nil
}

// validateSecret never puts the value in its error.
func validateSecret(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w secret: it is empty", ErrInvalid)
	case len(s) > MaxSecretLen:
		return fmt.Errorf("%w secret: longer than %d bytes", ErrInvalid, MaxSecretLen)
	case strings.ContainsAny(s, "\x00\r\n"):
		return fmt.Errorf("%w secret: it contains a line break or a NUL byte", ErrInvalid)
	}
	return nil
}

// ValidateHosts checks the hosts a credential may be sent to (each an IP
// address, a network in CIDR notation, a host name or *.name; see
// probe.HostPattern; at most MaxHosts) and returns them in canonical form
// (names in lower case without a trailing dot), without duplicates, in the
// order given. No hosts is valid: the credential is then sent nowhere.
func ValidateHosts(hosts []string) ([]string, error) {
	if len(hosts) > MaxHosts {
		return nil, fmt.Errorf("%w hosts: %d given, at most %d allowed (use networks or *.name to cover many)", ErrInvalid, len(hosts), MaxHosts)
	}
	out := make([]string, 0, len(hosts))
	seen := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		if strings.ContainsFunc(h, isControl) || !utf8.ValidString(h) {
			return nil, fmt.Errorf("%w host pattern: it must be valid UTF-8 without control characters", ErrInvalid)
		}
		p, err := probe.ParseHostPattern(h)
		if err != nil {
			return nil, fmt.Errorf("%w %v", ErrInvalid, err)
		}
		if c := p.String(); !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Package auth holds Sonde's permissions and API tokens: 32 lowercase hex
// characters (InfraSonar-compatible) from crypto/rand, stored only as
// SHA-256 hashes, each with a container, permission flags and an expiry.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/sonde-monitoring/sonde/internal/secret"
)

// Permission is a set of permission flags (INFRASONAR-WIRE.md §6).
type Permission uint64

// The permission flags. Their bit positions are stored: append only.
const (
	Read Permission = 1 << iota
	API
	AssetManagement
	CheckManagement
	ContainerAdmin
	ContainerTokens
	CoreConnect
	InsertCheckData
	AlertAssign
	AlertChange
	RuleManagement
	ViewLog
	PurgeTimeSeries
	Webhooks

	// All is every flag.
	All = Webhooks<<1 - 1
	// Agent is what an agent token needs.
	Agent = Read | API | AssetManagement | InsertCheckData
)

// names maps each flag to its name in the API. It is read-only.
func names() map[Permission]string {
	return map[Permission]string{
		Read:            "READ",
		API:             "API",
		AssetManagement: "ASSET_MANAGEMENT",
		CheckManagement: "CHECK_MANAGEMENT",
		ContainerAdmin:  "CONTAINER_ADMIN",
		ContainerTokens: "CONTAINER_TOKENS",
		CoreConnect:     "CORE_CONNECT",
		InsertCheckData: "INSERT_CHECK_DATA",
		AlertAssign:     "ALERT_ASSIGN",
		AlertChange:     "ALERT_CHANGE",
		RuleManagement:  "RULE_MANAGEMENT",
		ViewLog:         "VIEW_LOG",
		PurgeTimeSeries: "PURGE_TIME_SERIES",
		Webhooks:        "WEBHOOKS",
	}
}

// Has reports whether p holds every flag of q.
func (p Permission) Has(q Permission) bool { return p&q == q }

// Names lists the flags of p in bit order.
func (p Permission) Names() []string {
	n := names()
	out := []string{}
	for f := Permission(1); f <= Webhooks; f <<= 1 {
		if p&f != 0 {
			out = append(out, n[f])
		}
	}
	return out
}

// String joins the flag names with "|".
func (p Permission) String() string { return strings.Join(p.Names(), "|") }

// ParsePermissions reads flag names (any case). An unknown name is an error
// that lists the known ones.
func ParsePermissions(list []string) (Permission, error) {
	byName := map[string]Permission{}
	for f, n := range names() {
		byName[n] = f
	}
	var p Permission
	for _, s := range list {
		f, ok := byName[strings.ToUpper(strings.TrimSpace(s))]
		if !ok {
			known := make([]string, 0, len(byName))
			for n := range byName {
				known = append(known, n)
			}
			sort.Strings(known)
			return 0, fmt.Errorf("unknown permission %q; known: %s", s, strings.Join(known, ", "))
		}
		p |= f
	}
	return p, nil
}

// TokenLen is the length of a token: 32 lowercase hex characters.
const TokenLen = 32

// NewToken returns a new random token.
func NewToken() (secret.Secret, error) {
	var b [TokenLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return secret.Secret{}, fmt.Errorf("reading random bytes for a token: %w", err)
	}
	return secret.New(hex.EncodeToString(b[:])), nil
}

// WellFormed reports whether s looks like a token (32 lowercase hex).
func WellFormed(s string) bool {
	if len(s) != TokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// HashToken returns the hex SHA-256 of a token: what the store keeps.
func HashToken(tok secret.Secret) string {
	sum := sha256.Sum256([]byte(tok.Reveal()))
	return hex.EncodeToString(sum[:])
}

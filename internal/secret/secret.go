// Package secret holds values that must never reach a log, an error message,
// an API answer or a file in plain text by accident.
package secret

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// Redacted is what a Secret prints instead of its value.
const Redacted = "[REDACTED]"

// Secret is a string that redacts itself wherever it is formatted, marshalled
// or logged. Reveal returns the value for the few places that need it.
type Secret struct {
	v string
}

// New wraps s.
func New(s string) Secret { return Secret{v: s} }

// Reveal returns the secret value. Call it only where the value must be used.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// Equal compares two secrets in constant time.
func (s Secret) Equal(o Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s.v), []byte(o.v)) == 1
}

// String returns Redacted.
func (s Secret) String() string { return Redacted }

// GoString returns Redacted, so %#v does not print the value either.
func (s Secret) GoString() string { return Redacted }

// MarshalJSON encodes Redacted.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText encodes Redacted.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Format writes Redacted for every verb, so no format string (%d, %x, %v
// with flags, …) can print the value.
func (s Secret) Format(f fmt.State, _ rune) { io.WriteString(f, Redacted) }

// LogValue makes slog print Redacted.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// UnmarshalJSON reads a secret given as a JSON string (an API request).
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return errors.New("a secret must be a JSON string")
	}
	s.v = v
	return nil
}

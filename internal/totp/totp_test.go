package totp

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/secret"
)

// rfcKey is the shared secret of RFC 4226 Appendix D and RFC 6238 Appendix B
// (for SHA1).
const rfcKey = "12345678901234567890"

var rfcSecret = secret.New(base32.StdEncoding.EncodeToString([]byte(rfcKey)))

func TestHOTPRFC4226(t *testing.T) {
	// RFC 4226 Appendix D.
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for c, w := range want {
		if got := hotp([]byte(rfcKey), uint64(c), 6); got != w {
			t.Errorf("HOTP(count=%d) = %s, want %s", c, got, w)
		}
	}
}

func TestTOTPRFC6238(t *testing.T) {
	// RFC 6238 Appendix B, SHA1 rows: the RFC gives 8-digit values; Code
	// gives 6, which is the same truncation modulo 10^6.
	tests := []struct {
		unix  int64
		step  int64
		eight string
	}{
		{59, 0x1, "94287082"},
		{1111111109, 0x23523EC, "07081804"},
		{1111111111, 0x23523ED, "14050471"},
		{1234567890, 0x273EF07, "89005924"},
		{2000000000, 0x3F940AA, "69279037"},
		{20000000000, 0x27BC86AA, "65353130"},
	}
	for _, tt := range tests {
		tm := time.Unix(tt.unix, 0)
		if s := stepAt(tm); s != tt.step {
			t.Errorf("step(%d) = %#x, want %#x", tt.unix, s, tt.step)
		}
		if got := hotp([]byte(rfcKey), uint64(tt.step), 8); got != tt.eight {
			t.Errorf("8-digit TOTP(%d) = %s, want %s", tt.unix, got, tt.eight)
		}
		got, err := Code(rfcSecret, tm)
		if err != nil {
			t.Fatal(err)
		}
		if want := tt.eight[2:]; got != want {
			t.Errorf("Code(%d) = %s, want %s", tt.unix, got, want)
		}
	}
}

func TestCodeErrors(t *testing.T) {
	if _, err := Code(secret.New("not base32!"), time.Now()); err != ErrBadSecret {
		t.Errorf("bad secret: err = %v", err)
	}
	if _, err := Code(secret.New(""), time.Now()); err != ErrBadSecret {
		t.Errorf("empty secret: err = %v", err)
	}
	if _, err := Code(rfcSecret, time.Unix(-1, 0)); err == nil {
		t.Error("time before the epoch: no error")
	}
	// Secrets copied by hand: lower case, spaces, padding.
	lax := secret.New(strings.ToLower("GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ===="))
	if c, err := Code(lax, time.Unix(59, 0)); err != nil || c != "287082" {
		t.Errorf("lax secret: %q, %v", c, err)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1111111111, 0) // step 0x23523ED, 1 s into the step
	cur := stepAt(now)
	code := func(step int64) string { return hotp([]byte(rfcKey), uint64(step), Digits) }
	tests := []struct {
		name     string
		code     string
		lastStep int64
		wantStep int64
		ok       bool
	}{
		{"current", code(cur), 0, cur, true},
		{"previous step", code(cur - 1), 0, cur - 1, true},
		{"next step", code(cur + 1), 0, cur + 1, true},
		{"two steps back", code(cur - 2), 0, 0, false},
		{"two steps ahead", code(cur + 2), 0, 0, false},
		{"replay of the current step", code(cur), cur, 0, false},
		{"older than last accepted", code(cur - 1), cur, 0, false},
		{"newer than last accepted", code(cur + 1), cur, cur + 1, true},
		{"previous step after a login one step back", code(cur), cur - 1, cur, true},
		{"spaces as apps show them", code(cur)[:3] + " " + code(cur)[3:], 0, cur, true},
		{"surrounding space", "  " + code(cur) + "\t", 0, cur, true},
		{"empty", "", 0, 0, false},
		{"too short", code(cur)[:5], 0, 0, false},
		{"too long", code(cur) + "0", 0, 0, false},
		{"8 digits", hotp([]byte(rfcKey), uint64(cur), 8), 0, 0, false},
		{"letters", "12a456", 0, 0, false},
		{"sign", "+" + code(cur)[1:], 0, 0, false},
		{"non-ASCII digits", "١٢٣٤٥٦", 0, 0, false},
		{"wrong", wrongCode(code(cur-1), code(cur), code(cur+1)), 0, 0, false},
	}
	for _, tt := range tests {
		step, ok := Verify(rfcSecret, tt.code, now, tt.lastStep)
		if ok != tt.ok || step != tt.wantStep {
			t.Errorf("%s: Verify(%q) = %d, %v; want %d, %v", tt.name, tt.code, step, ok, tt.wantStep, tt.ok)
		}
	}
	if _, ok := Verify(secret.New("!!"), code(cur), now, 0); ok {
		t.Error("accepted with an invalid secret")
	}
}

// wrongCode returns a six-digit code that is none of valid.
func wrongCode(valid ...string) string {
	for i := 0; ; i++ {
		c := fmt.Sprintf("%06d", i)
		bad := true
		for _, v := range valid {
			bad = bad && c != v
		}
		if bad {
			return c
		}
	}
}

// TestVerifyReplayAcrossLogins plays a user logging in repeatedly, the caller
// storing the step as it should.
func TestVerifyReplayAcrossLogins(t *testing.T) {
	s, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var last int64
	c, _ := Code(s, now)
	step, ok := Verify(s, c, now, last)
	if !ok {
		t.Fatal("first login refused")
	}
	last = step
	// The same code again, 10 s later, within the same step: refused.
	if _, ok := Verify(s, c, now.Add(10*time.Second), last); ok {
		t.Fatal("replayed code accepted")
	}
	// An attacker who saw the code 31 s ago tries it in the next step: the
	// window would accept it, the stored step does not.
	if _, ok := Verify(s, c, now.Add(31*time.Second), last); ok {
		t.Fatal("replayed code accepted in the next step")
	}
	// The next code works.
	later := now.Add(Period)
	c2, _ := Code(s, later)
	if step, ok := Verify(s, c2, later, last); !ok || step != last+1 {
		t.Fatalf("next code: %d, %v", step, ok)
	}
}

func TestGenerateSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		s, err := GenerateSecret()
		if err != nil {
			t.Fatal(err)
		}
		v := s.Reveal()
		if len(v) != 32 || strings.ToUpper(v) != v || strings.Contains(v, "=") {
			t.Fatalf("secret %q: want 32 upper-case base32 characters, no padding", v)
		}
		key, err := decodeSecret(s)
		if err != nil || len(key) != SecretSize {
			t.Fatalf("secret %q decodes to %d bytes, %v", v, len(key), err)
		}
		if seen[v] {
			t.Fatal("duplicate secret")
		}
		seen[v] = true
	}
}

func TestSecretRedacted(t *testing.T) {
	s, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("enrol", "secret", s)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("enrol", "secret", s)
	js, err := json.Marshal(struct{ Secret secret.Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s, s, s), string(js), logs.String()} {
		if strings.Contains(out, s.Reveal()) || !strings.Contains(out, secret.Redacted) {
			t.Errorf("secret not redacted: %s", out)
		}
	}
}

func TestURI(t *testing.T) {
	s := secret.New("JBSWY3DPEHPK3PXP")
	tests := []struct {
		issuer, account, want string
	}{
		{"Sonde", "alice@example.com",
			"otpauth://totp/Sonde:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Sonde&algorithm=SHA1&digits=6&period=30"},
		{"Sonde Hub", "bob smith",
			"otpauth://totp/Sonde%20Hub:bob%20smith?secret=JBSWY3DPEHPK3PXP&issuer=Sonde%20Hub&algorithm=SHA1&digits=6&period=30"},
		{"a:b&c", "x/y?z#1+2",
			"otpauth://totp/a%3Ab%26c:x%2Fy%3Fz%231%2B2?secret=JBSWY3DPEHPK3PXP&issuer=a%3Ab%26c&algorithm=SHA1&digits=6&period=30"},
		{"", "carol",
			"otpauth://totp/carol?secret=JBSWY3DPEHPK3PXP&algorithm=SHA1&digits=6&period=30"},
	}
	for _, tt := range tests {
		got := URI(s, tt.issuer, tt.account)
		if got != tt.want {
			t.Errorf("URI(%q, %q)\n got %s\nwant %s", tt.issuer, tt.account, got, tt.want)
		}
		// It parses back to the same fields.
		u, err := url.Parse(got)
		if err != nil {
			t.Fatal(err)
		}
		label := strings.TrimPrefix(u.Path, "/")
		wantLabel := tt.account
		if tt.issuer != "" {
			wantLabel = tt.issuer + ":" + tt.account
		}
		q := u.Query()
		if u.Scheme != "otpauth" || u.Host != "totp" || label != wantLabel ||
			q.Get("secret") != s.Reveal() || q.Get("issuer") != tt.issuer {
			t.Errorf("URI %s parses to %s %s %q %v", got, u.Scheme, u.Host, label, q)
		}
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, err := NewRecoveryCodes(RecoveryCodeCount)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != RecoveryCodeCount {
		t.Fatalf("%d codes", len(codes))
	}
	hashes := make([]string, len(codes))
	seen := map[string]bool{}
	for i, c := range codes {
		if len(c) != 11 || c[5] != '-' || strings.Trim(c[:5]+c[6:], recoveryAlphabet) != "" {
			t.Fatalf("code %q: want xxxxx-xxxxx from %q", c, recoveryAlphabet)
		}
		if seen[c] {
			t.Fatalf("duplicate code %q", c)
		}
		seen[c] = true
		if hashes[i], err = HashRecoveryCode(c); err != nil {
			t.Fatal(err)
		}
		if len(hashes[i]) != 64 || strings.Contains(hashes[i], c) {
			t.Fatalf("hash %q", hashes[i])
		}
	}
	for i, c := range codes {
		for _, typed := range []string{c, strings.ToUpper(c), strings.ReplaceAll(c, "-", ""), " " + c[:5] + " " + c[6:] + " "} {
			if idx, ok := VerifyRecoveryCode(typed, hashes); !ok || idx != i {
				t.Errorf("VerifyRecoveryCode(%q) = %d, %v; want %d", typed, idx, ok, i)
			}
		}
	}
	// Used codes are deleted by the caller; then they no longer verify.
	rest := append([]string(nil), hashes[1:]...)
	if _, ok := VerifyRecoveryCode(codes[0], rest); ok {
		t.Error("deleted code still verifies")
	}
	for _, bad := range []string{"", "abcde", "abcde-fghjk-m", "abcde-fghi1", "abcde-fghj0", "abcde_fghjk"} {
		if _, ok := VerifyRecoveryCode(bad, hashes); ok {
			t.Errorf("VerifyRecoveryCode(%q) accepted", bad)
		}
		if _, err := HashRecoveryCode(bad); err == nil {
			t.Errorf("HashRecoveryCode(%q): no error", bad)
		}
	}
	if _, err := NewRecoveryCodes(0); err == nil {
		t.Error("NewRecoveryCodes(0): no error")
	}
}

func TestRecoveryAlphabetUniform(t *testing.T) {
	// Every character of the alphabet turns up, and nothing else.
	s, err := randomString(5000)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[rune]int{}
	for _, r := range s {
		counts[r]++
	}
	if len(counts) != len(recoveryAlphabet) {
		t.Fatalf("%d distinct characters, want %d", len(counts), len(recoveryAlphabet))
	}
	for r, n := range counts {
		if !strings.ContainsRune(recoveryAlphabet, r) || n < 80 || n > 250 {
			t.Errorf("character %q: %d times in 5000", r, n)
		}
	}
}

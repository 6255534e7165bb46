package auth

import (
	"strings"
	"testing"

	"github.com/sonde-monitoring/sonde/internal/secret"
)

func TestCheckPassword(t *testing.T) {
	cases := []struct {
		user, pw, want string // want: part of the error, "" for accepted
	}{
		{"alice", "correct horse battery staple", ""},
		{"alice", "short", "at least 12"},
		{"alice", "elevenchars", "at least 12"},
		{"alice", "ALICE", "at least 12"},
		{"alicealicealice", "alicealicealice", "user name"},
		{"alice", "Qwerty123456", "common passwords"},
		{"alice", "PASSWORD1234", "common passwords"},
		{"alice", "aaaaaaaaaaaaaaaa", "repeated"},
		{"alice", strings.Repeat("x", 300), "at most"},
		{"alice", "\xff\xfe invalid utf8 password", "UTF-8"},
	}
	for _, c := range cases {
		err := CheckPassword(c.user, secret.New(c.pw))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q refused: %v", c.pw, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: error %v, want one with %q", c.pw, err, c.want)
		}
	}
}

func TestHashPassword(t *testing.T) {
	pw := secret.New("correct horse battery staple")
	h, err := HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=1$") || strings.Contains(h, pw.Reveal()) {
		t.Fatalf("hash %q", h)
	}
	h2, _ := HashPassword(pw)
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	if !VerifyPassword(h, pw) {
		t.Error("the password does not verify")
	}
	for _, bad := range []string{"correct horse battery stapl", "", "Correct horse battery staple"} {
		if VerifyPassword(h, secret.New(bad)) {
			t.Errorf("%q verifies", bad)
		}
	}
	for _, bad := range []string{"", "$argon2id$", "$argon2i$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA", "$argon2id$v=19$m=99999999,t=3,p=1$c2FsdA$aGFzaA",
		"$argon2id$v=19$m=65536,t=3,p=1$!!$aGFzaA", h + "x"} {
		if VerifyPassword(bad, pw) {
			t.Errorf("malformed hash %q verifies", bad)
		}
	}
	if VerifyPassword(DummyHash, pw) {
		t.Error("the dummy hash verifies")
	}
}

func TestNewPassword(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		p, err := NewPassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Reveal()) != 20 || seen[p.Reveal()] {
			t.Fatalf("password %q", p.Reveal())
		}
		seen[p.Reveal()] = true
		if err := CheckPassword("admin", p); err != nil {
			t.Fatalf("a generated password is refused: %v", err)
		}
	}
}

package auth

import (
	"strings"
	"testing"
)

func TestPermissions(t *testing.T) {
	p, err := ParsePermissions([]string{"read", "API", " insert_check_data "})
	if err != nil || p != Read|API|InsertCheckData {
		t.Fatalf("ParsePermissions = %v, %v", p, err)
	}
	if got := p.String(); got != "READ|API|INSERT_CHECK_DATA" {
		t.Fatalf("String = %q", got)
	}
	if _, err := ParsePermissions([]string{"ROOT"}); err == nil || !strings.Contains(err.Error(), "WEBHOOKS") {
		t.Fatalf("unknown flag: %v", err)
	}
	all, err := ParsePermissions(All.Names())
	if err != nil || all != All || len(All.Names()) != 14 {
		t.Fatalf("All round trip: %v %v %d", all, err, len(All.Names()))
	}
	if !All.Has(Agent) || Agent.Has(ContainerAdmin) {
		t.Fatal("Has is wrong")
	}
}

func TestTokens(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		tok, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if !WellFormed(tok.Reveal()) || seen[tok.Reveal()] {
			t.Fatalf("bad or repeated token %q", tok.Reveal())
		}
		seen[tok.Reveal()] = true
		if h := HashToken(tok); len(h) != 64 || strings.Contains(h, tok.Reveal()) {
			t.Fatalf("hash %q", h)
		}
	}
	for s, want := range map[string]bool{
		"0123456789abcdef0123456789abcdef":  true,
		"0123456789ABCDEF0123456789abcdef":  false,
		"0123456789abcdef0123456789abcde":   false,
		"0123456789abcdef0123456789abcdefa": false,
		"0123456789abcdeg0123456789abcdef":  false,
	} {
		if WellFormed(s) != want {
			t.Errorf("WellFormed(%q) != %v", s, want)
		}
	}
}

package state

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/secret"
)

// TestRuleSecretSealed: a rule's secret is sealed in the database file,
// opens with the key, and not with another.
func TestRuleSecretSealed(t *testing.T) {
	ctx := context.Background()
	path := location(t)
	key := bytes.Repeat([]byte{7}, 32)
	s, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UseSecretKey(key); err != nil {
		t.Fatal(err)
	}
	root, _, _ := s.EnsureRoot(ctx, "root")
	const plain = "webhook-secret-do-not-store-me"
	id, err := s.CreateRule(ctx, Rule{ContainerID: root, Name: "r", Channel: "webhook", URL: "https://x.example/", Secret: secret.New(plain)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Rule(ctx, id)
	if err != nil || r.Secret.Reveal() != plain {
		t.Fatalf("read back %v %v", r.Secret.Reveal() == plain, err)
	}
	var stored string
	if err := s.r.QueryRowContext(ctx, `SELECT secret FROM rules WHERE id = $1`, id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, sealedPrefix) || strings.Contains(stored, plain) {
		t.Fatalf("stored as %q", stored)
	}
	r.Secret = secret.New(plain + "-2")
	if err := s.UpdateRule(ctx, r, time.Now()); err != nil {
		t.Fatal(err)
	}
	var sealed string
	if err := s.r.QueryRowContext(ctx, `SELECT secret FROM rules`).Scan(&sealed); err != nil || strings.Contains(sealed, plain) || sealed == "" {
		t.Fatalf("the stored secret %q (%v)", sealed, err)
	}
	s.Close()
	files := []string{path, path + "-wal"}
	if IsPostgres(path) {
		files = nil // the column was checked
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(plain)) {
			t.Fatalf("%s holds the secret in clear", f)
		}
	}
	// Another key does not open it, and says what to do.
	s, err = Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.UseSecretKey(bytes.Repeat([]byte{8}, 32)); err != nil {
		t.Fatal(err)
	}
	// The rule reads as disabled, saying why, and the others still read.
	got, err := s.Rule(ctx, id)
	if err != nil || !got.Disabled || !got.Secret.IsZero() || !strings.Contains(got.SecretError, "secret.key") {
		t.Fatalf("wrong key: %+v %v", got, err)
	}
	if rs, err := s.Rules(ctx, 0); err != nil || len(rs) != 1 {
		t.Fatalf("rules with one unopenable: %v %v", rs, err)
	}
	if sealed, err := s.HasSealedSecrets(ctx); err != nil || !sealed {
		t.Fatalf("HasSealedSecrets: %v %v", sealed, err)
	}
}

package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sonde-monitoring/sonde/internal/state"
	"github.com/sonde-monitoring/sonde/internal/testutil/pgtest"
)

// TestMigrateState runs `sonde migrate-state` from a hub's SQLite store
// into a new PostgreSQL database (Debian's server, started here).
func TestMigrateState(t *testing.T) {
	var out, errb bytes.Buffer
	for _, args := range [][]string{{}, {"--from", "state.db", "--to", "x"}, {"--from", "sqlite:a", "--to", "mysql://x"}} {
		if code := run(append([]string{"migrate-state"}, args...), &out, &errb); code != 1 && code != 2 {
			t.Errorf("migrate-state %v: exit %d", args, code)
		}
	}
	if !strings.Contains(errb.String(), "sqlite:PATH") {
		t.Errorf("the errors do not say what to give:\n%s", errb.String())
	}
	pgtest.Require(t)
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := state.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	root, _, _ := s.EnsureRoot(context.Background(), "root")
	if _, err := s.CreateAsset(context.Background(), root, "web"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	to := srv.Database(t)
	out.Reset()
	errb.Reset()
	if code := run([]string{"migrate-state", "--from", "sqlite:" + path, "--to", to}, &out, &errb); code != 0 {
		t.Fatalf("exit %d:\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "verified") || !strings.Contains(out.String(), "assets           1") || !strings.Contains(errb.String(), "[####") {
		t.Errorf("output:\n%s\nprogress:\n%s", out.String(), errb.String())
	}
}

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDoesNotLinkHubStorage guards the binary's size and attack surface: it
// must not link the hub's storage (Prometheus, SQLite, PostgreSQL) or the
// hub's packages.
func TestDoesNotLinkHubStorage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/prometheus/", "modernc.org/sqlite", "github.com/jackc/pgx",
		"github.com/sonde-monitoring/sonde/internal/state", "github.com/sonde-monitoring/sonde/internal/tsstore",
		"github.com/sonde-monitoring/sonde/internal/hub", "github.com/sonde-monitoring/sonde/internal/api",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 5 {
		t.Fatalf("go list returned too little to judge: %q", out)
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("links %s", d)
			}
		}
	}
}

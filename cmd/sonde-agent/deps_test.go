package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies guards the agent's size and attack surface: it is
// installed on every monitored host, so it links the standard library and
// only the Sonde packages below, no third-party module at all, and in
// particular none of the hub's storage.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	allowed := map[string]bool{
		"github.com/sonde-monitoring/sonde/cmd/sonde-agent":    true,
		"github.com/sonde-monitoring/sonde/internal/agent":     true,
		"github.com/sonde-monitoring/sonde/internal/hostagent": true,
		"github.com/sonde-monitoring/sonde/internal/model":     true,
		"github.com/sonde-monitoring/sonde/internal/secret":    true,
	}
	deps := strings.Fields(string(out))
	if len(deps) < 3 {
		t.Fatalf("go list returned too little to judge: %q", out)
	}
	for _, d := range deps {
		if !allowed[d] {
			t.Errorf("the agent links %s, which is not on its allowed list", d)
		}
	}
}

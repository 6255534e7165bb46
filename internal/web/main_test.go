package web

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sonde-monitoring/sonde/internal/testutil/pgtest"
)

// With SONDE_STATE_BACKEND=postgres the web UI's tests keep their state in
// a real PostgreSQL server (`make test` runs them both ways).
var testPG *pgtest.Server

func TestMain(m *testing.M) {
	if os.Getenv("SONDE_STATE_BACKEND") == "postgres" {
		var err error
		if testPG, err = pgtest.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "starting PostgreSQL for the web tests:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if testPG != nil {
		testPG.Stop()
	}
	os.Exit(code)
}

// stateLocation is where a test's store lives.
func stateLocation(t testing.TB, dir string) string {
	if testPG != nil {
		return testPG.Database(t)
	}
	return filepath.Join(dir, "state.db")
}

// PostgresStateForTest is a new PostgreSQL database's URL in a
// SONDE_STATE_BACKEND=postgres run, "" otherwise (for the browser test's
// hub, in package web_test).
func PostgresStateForTest(t testing.TB) string {
	if testPG == nil {
		return ""
	}
	return testPG.Database(t)
}

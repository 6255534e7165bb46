package state

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sonde-monitoring/sonde/internal/testutil/pgtest"
)

// The state store's tests run on SQLite, and on a real PostgreSQL server
// (Debian's, started here) when SONDE_STATE_BACKEND=postgres: `make test`
// runs them both ways.
var pg *pgtest.Server

func TestMain(m *testing.M) {
	if os.Getenv("SONDE_STATE_BACKEND") == "postgres" {
		var err error
		pg, err = pgtest.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting PostgreSQL for the state tests:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if pg != nil {
		pg.Stop()
	}
	os.Exit(code)
}

// location is where a test's store lives: a SQLite file in a temporary
// directory, or a new PostgreSQL database.
func location(t *testing.T) string {
	t.Helper()
	if pg != nil {
		return pg.Database(t)
	}
	return filepath.Join(t.TempDir(), "state.db")
}

package state

import (
	"context"
	"testing"

	"github.com/sonde-monitoring/sonde/internal/dataclass"
)

// TestEveryColumnHasAClass: a new column fails this test until it is
// classified in internal/dataclass, and the list names no column the
// store does not have.
func TestEveryColumnHasAClass(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, location(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	have, err := s.columns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	classes := dataclass.HubColumns()
	for table, cols := range have {
		for _, c := range cols {
			if _, ok := classes[table][c]; !ok {
				t.Errorf("column %s.%s has no data class in internal/dataclass", table, c)
			}
		}
	}
	for table, cols := range classes {
		for c := range cols {
			found := false
			for _, h := range have[table] {
				found = found || h == c
			}
			if !found {
				t.Errorf("internal/dataclass classifies %s.%s, which the store does not have", table, c)
			}
		}
	}
	if _, err := s.RestrictedValues(ctx); err != nil {
		t.Fatal(err)
	}
}

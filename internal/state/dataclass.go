package state

import (
	"context"
	"fmt"
	"sort"

	"github.com/sonde-monitoring/sonde/internal/dataclass"
)

// RestrictedValues returns every non-empty value the store holds in a
// restricted column (dataclass), as stored (hashes, sealed secrets): a
// test searches a full run's answers, pages and logs for each of them.
func (s *Store) RestrictedValues(ctx context.Context) ([]string, error) {
	var cols [][2]string
	for table, cs := range dataclass.HubColumns() {
		for col, c := range cs {
			if c == dataclass.Restricted {
				cols = append(cols, [2]string{table, col})
			}
		}
	}
	sort.Slice(cols, func(i, j int) bool { return cols[i][0]+"."+cols[i][1] < cols[j][0]+"."+cols[j][1] })
	var out []string
	for _, tc := range cols {
		// The names come from the fixed list in dataclass, not from input.
		rows, err := s.r.QueryContext(ctx, fmt.Sprintf(`SELECT CAST(%q AS TEXT) FROM %q WHERE %q IS NOT NULL AND %q <> ''`, tc[1], tc[0], tc[1], tc[1])) // #nosec G201 -- identifiers from dataclass's fixed list
		if err != nil {
			return nil, fmt.Errorf("reading %s.%s: %w", tc[0], tc[1], err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// columns lists the store's tables and their columns.
func (s *Store) columns(ctx context.Context) (map[string][]string, error) {
	q := `SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid`
	if s.dialect == dialectPostgres {
		q = `SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`
	}
	rows, err := s.r.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return nil, err
		}
		out[t] = append(out[t], c)
	}
	return out, rows.Err()
}

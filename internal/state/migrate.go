package state

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/sonde-monitoring/sonde/internal/dataclass"
)

// copyOrder is the order tables are copied in: a table after those its
// foreign keys point to.
func copyOrder() []string {
	return []string{
		"containers", "users", "tokens", "appliances", "assets", "asset_collectors", "asset_checks", "check_ids",
		"check_results", "asset_labels", "conditions", "alerts", "alert_events", "maintenance", "notifications",
		"rules", "deliveries", "memberships", "sessions", "recovery_codes", "invitations", "audit_log", "leases",
	}
}

// MigrateProgress reports a migration's progress: table, rows copied so
// far, rows in the table.
type MigrateProgress func(table string, done, total int64)

// CopyTo copies every row of s into dst, an empty store of the other
// kind (or the same), keeping ids, and then compares the row counts of
// every table. Values are copied as stored: sealed secrets stay sealed
// (the hub's secret.key goes with them).
func (s *Store) CopyTo(ctx context.Context, dst *Store, progress MigrateProgress) (map[string]int64, error) {
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	cols := dataclass.HubColumns()
	if len(copyOrder()) != len(cols)-1 { // all but schema_migrations
		return nil, fmt.Errorf("the copy order names %d tables, the store has %d: update state.copyOrder", len(copyOrder()), len(cols)-1)
	}
	for _, t := range copyOrder() {
		var n int64
		if err := dst.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t).Scan(&n); err != nil { // #nosec G202 -- table names from a fixed list
			return nil, fmt.Errorf("reading the target's %s: %w", t, err)
		}
		if n > 0 {
			return nil, fmt.Errorf("the target store is not empty (%s holds %d rows): migrate into a new database, before any hub starts on it", t, n)
		}
	}
	counts := map[string]int64{}
	for _, t := range copyOrder() {
		names := make([]string, 0, len(cols[t]))
		for c := range cols[t] {
			names = append(names, c)
		}
		sort.Strings(names)
		n, err := s.copyTable(ctx, dst, t, names, progress)
		if err != nil {
			return nil, err
		}
		counts[t] = n
	}
	if dst.dialect == dialectPostgres {
		// Identity columns go on after the copied ids.
		for _, t := range copyOrder() {
			if _, ok := cols[t]["id"]; !ok {
				continue
			}
			q := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', 'id'), COALESCE((SELECT MAX(id) FROM %s), 0) + 1, false)`, t, t) // #nosec G201 -- table names from a fixed list
			if _, err := dst.w.ExecContext(ctx, q); err != nil {
				return nil, fmt.Errorf("moving the id sequence of %s on: %w", t, err)
			}
		}
	}
	for _, t := range copyOrder() {
		var n int64
		if err := dst.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t).Scan(&n); err != nil { // #nosec G202 -- table names from a fixed list
			return nil, fmt.Errorf("counting the target's %s: %w", t, err)
		}
		if n != counts[t] {
			return nil, fmt.Errorf("verification: %s holds %d rows in the target, %d were copied", t, n, counts[t])
		}
	}
	return counts, nil
}

// copyTable copies one table in transactions of 1000 rows.
func (s *Store) copyTable(ctx context.Context, dst *Store, table string, cols []string, progress MigrateProgress) (int64, error) {
	var total int64
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&total); err != nil { // #nosec G202 -- table names from a fixed list
		return 0, fmt.Errorf("counting %s: %w", table, err)
	}
	progress(table, 0, total)
	order := "1"
	if table == "containers" {
		order = "id" // parents first
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+table+` ORDER BY `+order) // #nosec G202 -- names from a fixed list
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", table, err)
	}
	defer rows.Close()
	ph := make([]string, len(cols))
	for i := range cols {
		ph[i] = fmt.Sprintf("$%d", i+1)
	}
	insert := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES (` + strings.Join(ph, ", ") + `)` // #nosec G202 -- names from a fixed list
	var done int64
	var batch [][]any
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := dst.tx(ctx, func(tx *sql.Tx) error {
			st, err := tx.PrepareContext(ctx, insert)
			if err != nil {
				return err
			}
			defer st.Close()
			for _, vals := range batch {
				if _, err := st.ExecContext(ctx, vals...); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("writing %s: %w", table, err)
		}
		done += int64(len(batch))
		batch = batch[:0]
		progress(table, done, total)
		return nil
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return 0, fmt.Errorf("reading %s: %w", table, err)
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b) // every column is text or a number
			}
		}
		batch = append(batch, vals)
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("reading %s: %w", table, err)
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return done, nil
}

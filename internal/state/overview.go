package state

import (
	"context"
	"fmt"
)

// ContainerCounts is what the overview shows of one container.
type ContainerCounts struct {
	Assets int
	// OpenAlerts counts open alerts by severity (0 = EMERGENCY … 7 =
	// DEBUG).
	OpenAlerts        [8]int
	OpenNotifications int
}

// Counts counts, for every container, its assets, open alerts by severity
// and open notifications.
func (s *Store) Counts(ctx context.Context) (map[int64]*ContainerCounts, error) {
	out := map[int64]*ContainerCounts{}
	get := func(c int64) *ContainerCounts {
		if out[c] == nil {
			out[c] = &ContainerCounts{}
		}
		return out[c]
	}
	for _, q := range []struct {
		sql string
		add func(c int64, k, n int)
	}{
		{`SELECT container_id, 0, COUNT(*) FROM assets GROUP BY container_id`, func(c int64, _, n int) { get(c).Assets = n }},
		{`SELECT container_id, severity, COUNT(*) FROM alerts WHERE status = 'open' GROUP BY container_id, severity`,
			func(c int64, sev, n int) {
				if sev >= 0 && sev < 8 {
					get(c).OpenAlerts[sev] = n
				}
			}},
		{`SELECT container_id, 0, COUNT(*) FROM notifications WHERE status = 'open' GROUP BY container_id`,
			func(c int64, _, n int) { get(c).OpenNotifications = n }},
	} {
		rows, err := s.r.QueryContext(ctx, q.sql)
		if err != nil {
			return nil, fmt.Errorf("counting for the overview: %w", err)
		}
		for rows.Next() {
			var c int64
			var k, n int
			if err := rows.Scan(&c, &k, &n); err != nil {
				rows.Close()
				return nil, err
			}
			q.add(c, k, n)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

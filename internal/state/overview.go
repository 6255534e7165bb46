package state

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
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

// AssetSummary is an asset as a container's page lists it.
type AssetSummary struct {
	Asset
	Labels     []string
	OpenAlerts int
	// WorstSeverity is the most severe open alert's (0 = EMERGENCY), -1
	// when none is open.
	WorstSeverity int
	// Errors counts the checks whose latest result carries an error.
	Errors   int
	Checks   int
	LastSeen *time.Time
}

// AssetSummaries lists the assets of a container with their state.
func (s *Store) AssetSummaries(ctx context.Context, container int64) ([]AssetSummary, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`
SELECT a.id, a.container_id, a.name, a.kind, a.zone, a.created_at,
       (SELECT COUNT(*) FROM alerts al WHERE al.asset_id = a.id AND al.status = 'open'),
       COALESCE((SELECT MIN(al.severity) FROM alerts al WHERE al.asset_id = a.id AND al.status = 'open'), -1),
       (SELECT COUNT(*) FROM check_results r WHERE r.asset_id = a.id AND r.error_message IS NOT NULL AND r.error_message <> ''),
       (SELECT COUNT(*) FROM check_results r WHERE r.asset_id = a.id),
       (SELECT MAX(r.received_at) FROM check_results r WHERE r.asset_id = a.id),
       COALESCE((SELECT GROUP_CONCAT(l.label, ',') FROM asset_labels l WHERE l.asset_id = a.id), '')
FROM assets a WHERE a.container_id = $1 ORDER BY a.name, a.id`), container)
	if err != nil {
		return nil, fmt.Errorf("listing the assets of container %d: %w", container, err)
	}
	defer rows.Close()
	var out []AssetSummary
	for rows.Next() {
		var a AssetSummary
		var created int64
		var last sql.NullInt64
		var labels string
		if err := rows.Scan(&a.ID, &a.ContainerID, &a.Name, &a.Kind, &a.Zone, &created, &a.OpenAlerts, &a.WorstSeverity,
			&a.Errors, &a.Checks, &last, &labels); err != nil {
			return nil, fmt.Errorf("listing the assets of container %d: %w", container, err)
		}
		a.CreatedAt, a.LastSeen = time.Unix(created, 0).UTC(), timePtr(last)
		if labels != "" {
			a.Labels = strings.Split(labels, ",")
			sort.Strings(a.Labels)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// LatestResults lists the latest result of every check of an asset, by
// collector and check.
func (s *Store) LatestResults(ctx context.Context, asset int64) ([]Result, error) {
	rows, err := s.r.QueryContext(ctx, `
SELECT collector, check_key, ts, received_at, changed_at, last_seen_at, result, error_message, error_severity, duration, version
FROM check_results WHERE asset_id = $1 ORDER BY collector, check_key`, asset)
	if err != nil {
		return nil, fmt.Errorf("reading the results of asset %d: %w", asset, err)
	}
	defer rows.Close()
	var out []Result
	for rows.Next() {
		r := Result{AssetID: asset}
		var received, changed int64
		var lastSeen sql.NullInt64
		var data, errMsg sql.NullString
		var errSev sql.NullInt64
		if err := rows.Scan(&r.Collector, &r.Check, &r.Timestamp, &received, &changed, &lastSeen, &data, &errMsg, &errSev,
			&r.Duration, &r.Version); err != nil {
			return nil, fmt.Errorf("reading the results of asset %d: %w", asset, err)
		}
		r.ReceivedAt, r.ChangedAt, r.LastSeenAt = time.Unix(received, 0).UTC(), time.Unix(changed, 0).UTC(), timePtr(lastSeen)
		if data.Valid {
			r.Data = []byte(data.String)
		}
		r.ErrorMessage = errMsg.String
		if errSev.Valid {
			v := int(errSev.Int64)
			r.ErrorSeverity = &v
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AssetNames returns the names of the given assets (those that exist).
func (s *Store) AssetNames(ctx context.Context, ids []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 500) // within SQLite's variable limit
		var args []any
		rows, err := s.r.QueryContext(ctx, `SELECT id, name FROM assets WHERE id IN (`+inList(&args, ids[:n])+`)`, args...) // #nosec G202 -- only $N placeholders are joined
		if err != nil {
			return nil, fmt.Errorf("reading asset names: %w", err)
		}
		for rows.Next() {
			var id int64
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = name
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
		ids = ids[n:]
	}
	return out, nil
}

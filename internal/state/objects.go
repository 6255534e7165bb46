package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Container is a node of the tenant tree (MSP → customer → environment).
type Container struct {
	ID        int64
	ParentID  *int64
	Name      string
	CreatedAt time.Time
}

// EnsureRoot returns the root container, creating it when the store is new.
func (s *Store) EnsureRoot(ctx context.Context, name string) (id int64, created bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id FROM containers WHERE parent_id IS NULL ORDER BY id LIMIT 1`).Scan(&id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		created = true
		return tx.QueryRowContext(ctx, `INSERT INTO containers (parent_id, name, created_at) VALUES (NULL, $1, $2) RETURNING id`,
			name, time.Now().Unix()).Scan(&id)
	})
	if err != nil {
		return 0, false, fmt.Errorf("creating the root container: %w", err)
	}
	return id, created, nil
}

// CreateContainer adds a child container under parent.
func (s *Store) CreateContainer(ctx context.Context, parent int64, name string) (int64, error) {
	var id int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO containers (parent_id, name, created_at) VALUES ($1, $2, $3) RETURNING id`,
		parent, name, time.Now().Unix()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("creating container %q: %w", name, err)
	}
	return id, nil
}

func scanContainer(row interface{ Scan(...any) error }) (Container, error) {
	var c Container
	var parent sql.NullInt64
	var created int64
	if err := row.Scan(&c.ID, &parent, &c.Name, &created); err != nil {
		return c, err
	}
	c.ParentID, c.CreatedAt = ptrInt(parent), time.Unix(created, 0).UTC()
	return c, nil
}

// Container reads one container.
func (s *Store) Container(ctx context.Context, id int64) (Container, error) {
	c, err := scanContainer(s.r.QueryRowContext(ctx, `SELECT id, parent_id, name, created_at FROM containers WHERE id = $1`, id))
	if err != nil {
		return c, notFound(err, fmt.Sprintf("container %d", id))
	}
	return c, nil
}

// Children lists the direct children of a container, by id.
func (s *Store) Children(ctx context.Context, id int64) ([]Container, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, parent_id, name, created_at FROM containers WHERE parent_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("listing containers under %d: %w", id, err)
	}
	defer rows.Close()
	var out []Container
	for rows.Next() {
		c, err := scanContainer(rows)
		if err != nil {
			return nil, fmt.Errorf("listing containers under %d: %w", id, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ancestorsCTE defines "up": container $1 and all its ancestors.
const ancestorsCTE = `
WITH RECURSIVE up (id, parent_id) AS (
    SELECT id, parent_id FROM containers WHERE id = $1
    UNION ALL
    SELECT c.id, c.parent_id FROM containers c JOIN up ON c.id = up.parent_id
)
`

// Within reports whether container id is root or lies below it, with no
// container between them (root excluded, id included) that stops
// inheritance: a customer that stops inheritance is out of its parents'
// reach, tokens included.
func (s *Store) Within(ctx context.Context, id, root int64) (bool, error) {
	if id == root {
		return true, nil
	}
	var n int
	err := s.r.QueryRowContext(ctx, `
WITH RECURSIVE up (id, parent_id, inherit) AS (
    SELECT id, parent_id, inherit_access FROM containers WHERE id = $1
    UNION ALL
    SELECT c.id, c.parent_id, c.inherit_access FROM containers c JOIN up ON c.id = up.parent_id WHERE up.id <> $2
)
SELECT (SELECT COUNT(*) FROM up WHERE id = $2) - (SELECT COUNT(*) FROM up WHERE id <> $2 AND inherit = 0)`, id, root).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("checking container %d against %d: %w", id, root, err)
	}
	return n > 0, nil
}

// RuleChain returns a container and the ancestors whose rules see its
// events: up to the first container (from the bottom) that stops
// inheritance, included.
func (s *Store) RuleChain(ctx context.Context, id int64) ([]int64, error) {
	rows, err := s.r.QueryContext(ctx, `
WITH RECURSIVE up (id, parent_id, inherit, depth) AS (
    SELECT id, parent_id, inherit_access, 0 FROM containers WHERE id = $1
    UNION ALL
    SELECT c.id, c.parent_id, c.inherit_access, up.depth + 1 FROM containers c JOIN up ON c.id = up.parent_id WHERE up.inherit = 1
)
SELECT id FROM up ORDER BY depth`, id)
	if err != nil {
		return nil, fmt.Errorf("listing the containers above %d: %w", id, err)
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return nil, fmt.Errorf("listing the containers above %d: %w", id, err)
	}
	return ids, nil
}

// Ancestors returns id and the ids of the containers above it, nearest
// first.
func (s *Store) Ancestors(ctx context.Context, id int64) ([]int64, error) {
	rows, err := s.r.QueryContext(ctx, ancestorsCTE+`SELECT id FROM up`, id)
	if err != nil {
		return nil, fmt.Errorf("listing the containers above %d: %w", id, err)
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return nil, fmt.Errorf("listing the containers above %d: %w", id, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("container %d: %w", id, ErrNotFound)
	}
	return ids, nil
}

// Depth returns how many ancestors a container has (the root has 0).
func (s *Store) Depth(ctx context.Context, id int64) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, ancestorsCTE+`SELECT COUNT(*) - 1 FROM up`, id).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("measuring the depth of container %d: %w", id, err)
	}
	return n, nil
}

// Subtree returns root and the ids of every container below it, sorted,
// without the containers that stop inheritance and what is below them.
func (s *Store) Subtree(ctx context.Context, root int64) ([]int64, error) {
	rows, err := s.r.QueryContext(ctx, `
WITH RECURSIVE down (id) AS (
    SELECT id FROM containers WHERE id = $1
    UNION ALL
    SELECT c.id FROM containers c JOIN down ON c.parent_id = down.id WHERE c.inherit_access = 1
)
SELECT id FROM down`, root)
	if err != nil {
		return nil, fmt.Errorf("listing containers below %d: %w", root, err)
	}
	ids, err := scanIDs(rows)
	if err != nil {
		return nil, fmt.Errorf("listing containers below %d: %w", root, err)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// Asset is a monitored thing: a host, a device, a service.
type Asset struct {
	ID          int64
	ContainerID int64
	Name        string
	Kind        string
	// Zone (0–9) says which appliances of the container may serve the
	// asset: those announced in the same zone.
	Zone      int
	CreatedAt time.Time
}

// CreateAsset adds an asset to a container.
func (s *Store) CreateAsset(ctx context.Context, container int64, name string) (int64, error) {
	var id int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO assets (container_id, name, kind, created_at) VALUES ($1, $2, '', $3) RETURNING id`,
		container, name, time.Now().Unix()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("creating asset %q: %w", name, err)
	}
	return id, nil
}

func scanAsset(row interface{ Scan(...any) error }) (Asset, error) {
	var a Asset
	var created int64
	if err := row.Scan(&a.ID, &a.ContainerID, &a.Name, &a.Kind, &a.Zone, &created); err != nil {
		return a, err
	}
	a.CreatedAt = time.Unix(created, 0).UTC()
	return a, nil
}

// Asset reads one asset.
func (s *Store) Asset(ctx context.Context, id int64) (Asset, error) {
	a, err := scanAsset(s.r.QueryRowContext(ctx, `SELECT id, container_id, name, kind, zone, created_at FROM assets WHERE id = $1`, id))
	if err != nil {
		return a, notFound(err, fmt.Sprintf("asset %d", id))
	}
	return a, nil
}

// Assets lists the assets of one container (not of its children), by id.
func (s *Store) Assets(ctx context.Context, container int64) ([]Asset, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, container_id, name, kind, zone, created_at FROM assets WHERE container_id = $1 ORDER BY id`, container)
	if err != nil {
		return nil, fmt.Errorf("listing assets of container %d: %w", container, err)
	}
	defer rows.Close()
	var out []Asset
	for rows.Next() {
		a, err := scanAsset(rows)
		if err != nil {
			return nil, fmt.Errorf("listing assets of container %d: %w", container, err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SetAssetKind sets an asset's kind (e.g. "Linux").
func (s *Store) SetAssetKind(ctx context.Context, id int64, kind string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE assets SET kind = $1 WHERE id = $2`, kind, id)
	if err != nil {
		return fmt.Errorf("setting the kind of asset %d: %w", id, err)
	}
	return mustAffect(res, fmt.Sprintf("asset %d", id))
}

// DeleteAsset removes an asset with its collectors, checks and results.
func (s *Store) DeleteAsset(ctx context.Context, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM assets WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("deleting asset %d: %w", id, err)
	}
	return mustAffect(res, fmt.Sprintf("asset %d", id))
}

func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("updating %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return nil
}

// CheckConfig is how a collector runs one check on an asset.
type CheckConfig struct {
	Interval int  `json:"interval"`
	Disabled bool `json:"disabled,omitempty"`
}

// Collector is a collector on an asset with its configuration.
type Collector struct {
	Key    string
	Config json.RawMessage
	Checks map[string]CheckConfig
	// RunBy is RunByHub for a service check the hub runs, "" otherwise.
	RunBy string
}

// AddCollector puts a collector on an asset. A nil config keeps the stored
// one (or {} for a new collector); checks are merged into the stored ones.
// created says whether the collector was new.
func (s *Store) AddCollector(ctx context.Context, asset int64, key string, config json.RawMessage, checks map[string]CheckConfig) (created bool, err error) {
	return s.AddCollectorRunBy(ctx, asset, key, config, checks, nil)
}

// AddCollectorRunBy is AddCollector that also says who runs the collector
// (runBy: "" the asset's appliance or agent, RunByHub the hub); nil keeps
// what is stored ("" for a new collector).
func (s *Store) AddCollectorRunBy(ctx context.Context, asset int64, key string, config json.RawMessage, checks map[string]CheckConfig, runBy *string) (created bool, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		cfg := "{}"
		if config != nil {
			cfg = string(config)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO asset_collectors (asset_id, collector, config, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (asset_id, collector) DO NOTHING`, asset, key, cfg, time.Now().Unix())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		created = n > 0
		if !created && config != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE asset_collectors SET config = $1 WHERE asset_id = $2 AND collector = $3`, cfg, asset, key); err != nil {
				return err
			}
		}
		if runBy != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE asset_collectors SET run_by = $1 WHERE asset_id = $2 AND collector = $3`, *runBy, asset, key); err != nil {
				return err
			}
		}
		keys := make([]string, 0, len(checks))
		for k := range checks {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			c := checks[k]
			if _, err := tx.ExecContext(ctx, `INSERT INTO asset_checks (asset_id, collector, check_key, interval_s, disabled) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (asset_id, collector, check_key) DO UPDATE SET interval_s = excluded.interval_s, disabled = excluded.disabled`,
				asset, key, k, c.Interval, boolInt(c.Disabled)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("adding collector %q to asset %d: %w", key, asset, err)
	}
	return created, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Collectors lists the collectors of an asset with their checks, by key.
func (s *Store) Collectors(ctx context.Context, asset int64) ([]Collector, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT collector, config, run_by FROM asset_collectors WHERE asset_id = $1 ORDER BY collector`, asset)
	if err != nil {
		return nil, fmt.Errorf("listing collectors of asset %d: %w", asset, err)
	}
	var out []Collector
	index := map[string]int{}
	for rows.Next() {
		var c Collector
		var cfg string
		if err := rows.Scan(&c.Key, &cfg, &c.RunBy); err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing collectors of asset %d: %w", asset, err)
		}
		c.Config = json.RawMessage(cfg)
		c.Checks = map[string]CheckConfig{}
		index[c.Key] = len(out)
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing collectors of asset %d: %w", asset, err)
	}
	rows, err = s.r.QueryContext(ctx, `SELECT collector, check_key, interval_s, disabled FROM asset_checks WHERE asset_id = $1`, asset)
	if err != nil {
		return nil, fmt.Errorf("listing checks of asset %d: %w", asset, err)
	}
	defer rows.Close()
	for rows.Next() {
		var col, check string
		var cc CheckConfig
		var disabled int
		if err := rows.Scan(&col, &check, &cc.Interval, &disabled); err != nil {
			return nil, fmt.Errorf("listing checks of asset %d: %w", asset, err)
		}
		cc.Disabled = disabled != 0
		if i, ok := index[col]; ok {
			out[i].Checks[check] = cc
		}
	}
	return out, rows.Err()
}

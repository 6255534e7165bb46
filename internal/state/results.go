package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Result is the latest result of one check on one asset.
type Result struct {
	AssetID   int64
	Collector string
	Check     string
	// Timestamp is the scheduled time of the run (Unix seconds).
	Timestamp  int64
	ReceivedAt time.Time
	// ChangedAt is when the result last differed from the one before.
	ChangedAt time.Time
	// LastSeenAt is when a counted result last arrived (no_count results
	// leave it alone); nil until one has.
	LastSeenAt *time.Time
	// Data is the result object as JSON ({"<type>": [items…]}), nil when no
	// result was ever sent (error-only).
	Data          []byte
	ErrorMessage  string
	ErrorSeverity *int
	Duration      float64
	Version       string
}

// putResultSQL is the upsert behind PutResult.
const putResultSQL = `
INSERT INTO check_results (asset_id, collector, check_key, ts, received_at, changed_at, last_seen_at, result,
                           error_message, error_severity, duration, version)
VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (asset_id, collector, check_key) DO UPDATE SET
    ts             = excluded.ts,
    received_at    = excluded.received_at,
    changed_at     = CASE WHEN $12 = 1 OR COALESCE(check_results.result, '') = COALESCE(excluded.result, '')
                          THEN check_results.changed_at ELSE excluded.changed_at END,
    last_seen_at   = COALESCE(excluded.last_seen_at, check_results.last_seen_at),
    result         = CASE WHEN $12 = 1 THEN check_results.result ELSE excluded.result END,
    error_message  = excluded.error_message,
    error_severity = excluded.error_severity,
    duration       = excluded.duration,
    version        = excluded.version,
    -- The gap between results, ignoring a gap more than twice the usual
    -- one (an outage) except to double it (the interval grew).
    observed_interval_s = CASE
        WHEN excluded.ts <= check_results.ts THEN check_results.observed_interval_s
        WHEN check_results.observed_interval_s IS NULL
          OR excluded.ts - check_results.ts <= 2 * check_results.observed_interval_s THEN excluded.ts - check_results.ts
        ELSE 2 * check_results.observed_interval_s END
WHERE excluded.ts >= check_results.ts`

// PutResult records a check result as the latest one, unless a result with a
// later timestamp is already stored (two agents posting at once, or a
// replayed old result, leave the newest). A repeated result with the same
// timestamp replaces the stored one, so retries are idempotent. unchanged
// keeps the stored data; noCount leaves last_seen_at alone.
func (s *Store) PutResult(ctx context.Context, r Result, unchanged, noCount bool) error {
	if _, err := s.hot.putResult.ExecContext(ctx, putResultArgs(r, unchanged, noCount)...); err != nil {
		return fmt.Errorf("storing the result of %s/%s on asset %d: %w", r.Collector, r.Check, r.AssetID, err)
	}
	return nil
}

// ResultPut is one result for PutResults.
type ResultPut struct {
	Result    Result
	Unchanged bool
	NoCount   bool
}

// PutResults records several results as PutResult does, in one
// transaction: all of them or none.
func (s *Store) PutResults(ctx context.Context, puts []ResultPut) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		st := tx.StmtContext(ctx, s.hot.putResult)
		defer st.Close()
		for _, p := range puts {
			if _, err := st.ExecContext(ctx, putResultArgs(p.Result, p.Unchanged, p.NoCount)...); err != nil {
				return fmt.Errorf("storing the result of %s/%s on asset %d: %w", p.Result.Collector, p.Result.Check, p.Result.AssetID, err)
			}
		}
		return nil
	})
}

func putResultArgs(r Result, unchanged, noCount bool) []any {
	var data any
	if r.Data != nil && !unchanged {
		data = string(r.Data)
	}
	var errMsg, errSev any
	if r.ErrorMessage != "" {
		errMsg = r.ErrorMessage
		if r.ErrorSeverity != nil {
			errSev = *r.ErrorSeverity
		}
	}
	var lastSeen any
	if !noCount {
		lastSeen = r.ReceivedAt.Unix()
	}
	return []any{r.AssetID, r.Collector, r.Check, r.Timestamp, r.ReceivedAt.Unix(), lastSeen, data,
		errMsg, errSev, r.Duration, r.Version, boolInt(unchanged)}
}

// LatestResult reads the latest result of one check.
func (s *Store) LatestResult(ctx context.Context, asset int64, collector, check string) (Result, error) {
	r := Result{AssetID: asset, Collector: collector, Check: check}
	var received, changed int64
	var lastSeen sql.NullInt64
	var data, errMsg sql.NullString
	var errSev sql.NullInt64
	err := s.r.QueryRowContext(ctx, `
SELECT ts, received_at, changed_at, last_seen_at, result, error_message, error_severity, duration, version
FROM check_results WHERE asset_id = $1 AND collector = $2 AND check_key = $3`, asset, collector, check).
		Scan(&r.Timestamp, &received, &changed, &lastSeen, &data, &errMsg, &errSev, &r.Duration, &r.Version)
	if err != nil {
		return r, notFound(err, fmt.Sprintf("result of %s/%s on asset %d", collector, check, asset))
	}
	r.ReceivedAt = time.Unix(received, 0).UTC()
	r.ChangedAt = time.Unix(changed, 0).UTC()
	if lastSeen.Valid {
		t := time.Unix(lastSeen.Int64, 0).UTC()
		r.LastSeenAt = &t
	}
	if data.Valid {
		r.Data = []byte(data.String)
	}
	r.ErrorMessage = errMsg.String
	if errSev.Valid {
		v := int(errSev.Int64)
		r.ErrorSeverity = &v
	}
	return r, nil
}

// Token is a stored API token. The token itself is never stored, only its
// SHA-256 hash.
type Token struct {
	ID          int64
	ContainerID int64
	Name        string
	Hash        string // hex SHA-256 of the token
	Permissions uint64
	CreatedBy   *int64
	CreatedAt   time.Time
	ExpiresAt   *time.Time
	LastUsedAt  *time.Time
	RevokedAt   *time.Time
}

func unixPtr(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	v := t.Unix()
	return &v
}

func timePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := time.Unix(n.Int64, 0).UTC()
	return &t
}

// CreateToken stores a new token and returns its id.
func (s *Store) CreateToken(ctx context.Context, t Token) (int64, error) {
	var id int64
	err := s.w.QueryRowContext(ctx, `
INSERT INTO tokens (container_id, name, hash, permissions, created_by, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		t.ContainerID, t.Name, t.Hash, int64(t.Permissions), nullInt(t.CreatedBy), time.Now().Unix(), nullInt(unixPtr(t.ExpiresAt))).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("storing token %q: %w", t.Name, err)
	}
	return id, nil
}

const tokenColumns = `id, container_id, name, hash, permissions, created_by, created_at, expires_at, last_used_at, revoked_at`

// scanToken scans tokenColumns, then any extra columns into extra.
func scanToken(row interface{ Scan(...any) error }, extra ...any) (Token, error) {
	var t Token
	var perms, created int64
	var createdBy, expires, lastUsed, revoked sql.NullInt64
	dest := append([]any{&t.ID, &t.ContainerID, &t.Name, &t.Hash, &perms, &createdBy, &created, &expires, &lastUsed, &revoked}, extra...)
	if err := row.Scan(dest...); err != nil {
		return t, err
	}
	t.Permissions = uint64(perms)
	t.CreatedBy = ptrInt(createdBy)
	t.CreatedAt = time.Unix(created, 0).UTC()
	t.ExpiresAt, t.LastUsedAt, t.RevokedAt = timePtr(expires), timePtr(lastUsed), timePtr(revoked)
	return t, nil
}

// Token reads a token by id.
func (s *Store) Token(ctx context.Context, id int64) (Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id))
	if err != nil {
		return t, notFound(err, fmt.Sprintf("token %d", id))
	}
	return t, nil
}

// TouchToken records that a token was used.
func (s *Store) TouchToken(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE tokens SET last_used_at = $1 WHERE id = $2`, at.Unix(), id); err != nil {
		return fmt.Errorf("recording the use of token %d: %w", id, err)
	}
	return nil
}

// RevokeToken marks a token revoked; it stops working at once.
func (s *Store) RevokeToken(ctx context.Context, id int64, at time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, at.Unix(), id)
	if err != nil {
		return fmt.Errorf("revoking token %d: %w", id, err)
	}
	return mustAffect(res, fmt.Sprintf("token %d", id))
}

// Tokens lists the tokens of one container, by id.
func (s *Store) Tokens(ctx context.Context, container int64) ([]Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE container_id = $1 ORDER BY id`, container)
	if err != nil {
		return nil, fmt.Errorf("listing tokens of container %d: %w", container, err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("listing tokens of container %d: %w", container, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// CreatorChain returns the ids of the tokens that created token id,
// directly or not, nearest first.
func (s *Store) CreatorChain(ctx context.Context, id int64) ([]int64, error) {
	rows, err := s.r.QueryContext(ctx, `
WITH RECURSIVE chain (id, created_by, depth) AS (
    SELECT id, created_by, 0 FROM tokens WHERE id = $1
    UNION ALL
    SELECT t.id, t.created_by, chain.depth + 1 FROM tokens t JOIN chain ON t.id = chain.created_by
    WHERE chain.depth < 1000
)
SELECT id FROM chain WHERE depth > 0 ORDER BY depth`, id)
	if err != nil {
		return nil, fmt.Errorf("listing the creators of token %d: %w", id, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("listing the creators of token %d: %w", id, err)
		}
		ids = append(ids, v)
	}
	return ids, rows.Err()
}

// authTokenSQL finds a token by hash and counts the revoked or expired
// tokens in its chain of creators, itself included, in one statement.
const authTokenSQL = `
WITH RECURSIVE chain (id, created_by, revoked_at, expires_at, depth) AS (
    SELECT id, created_by, revoked_at, expires_at, 0 FROM tokens WHERE hash = $1
    UNION ALL
    SELECT t.id, t.created_by, t.revoked_at, t.expires_at, chain.depth + 1
    FROM tokens t JOIN chain ON t.id = chain.created_by
    WHERE chain.depth < 1000
)
SELECT ` + tokenColumns + `,
       (SELECT COUNT(*) FROM chain WHERE revoked_at IS NOT NULL OR (expires_at IS NOT NULL AND expires_at <= $2))
FROM tokens WHERE hash = $1`

// AuthToken finds a token by the hex SHA-256 of its value, and says whether
// it and every token in its chain of creators is neither revoked nor
// expired at now. It is TokenByHash and TokenChainValid in one round trip,
// for the path every request takes.
func (s *Store) AuthToken(ctx context.Context, hash string, now time.Time) (t Token, valid bool, err error) {
	var bad int
	t, err = scanToken(s.hot.authToken.QueryRowContext(ctx, hash, now.Unix()), &bad)
	if err != nil {
		return t, false, notFound(err, "token")
	}
	return t, bad == 0, nil
}

// checkTargetSQL answers, in one statement, everything a check result
// needs before it is stored: its asset, whether the asset lies within the
// caller's container, whether the collector is on it, and its checks.
const checkTargetSQL = `
WITH RECURSIVE up (id, parent_id, inherit) AS (
    SELECT c.id, c.parent_id, c.inherit_access FROM containers c JOIN assets a ON a.container_id = c.id WHERE a.id = $1
    UNION ALL
    SELECT c.id, c.parent_id, c.inherit_access FROM containers c JOIN up ON c.id = up.parent_id WHERE up.id <> $2
)
SELECT a.container_id, a.name, a.kind,
       (SELECT COUNT(*) FROM up WHERE id = $2) - (SELECT COUNT(*) FROM up WHERE id <> $2 AND inherit = 0),
       (SELECT COUNT(*) FROM asset_collectors WHERE asset_id = $1 AND collector = $3),
       (SELECT COUNT(*) FROM check_results WHERE asset_id = $1),
       (SELECT COUNT(*) FROM check_results WHERE asset_id = $1 AND collector = $3 AND check_key = $4)
FROM assets a WHERE a.id = $1`

// CheckTarget is what CheckTargetOf finds.
type CheckTarget struct {
	Asset Asset
	// Within is true when the asset lies in the caller's container or
	// below it.
	Within       bool
	HasCollector bool
	// Checks is how many checks of the asset have a stored result;
	// Exists says whether this check is one of them.
	Checks int
	Exists bool
}

// CheckTargetOf looks up the asset, the caller's scope, the collector and
// the check count for one check result in one round trip. ErrNotFound
// when the asset does not exist.
func (s *Store) CheckTargetOf(ctx context.Context, asset, scope int64, collector, check string) (CheckTarget, error) {
	ct := CheckTarget{Asset: Asset{ID: asset}}
	var within, hasCol, exists int
	err := s.hot.checkTarget.QueryRowContext(ctx, asset, scope, collector, check).
		Scan(&ct.Asset.ContainerID, &ct.Asset.Name, &ct.Asset.Kind, &within, &hasCol, &ct.Checks, &exists)
	if err != nil {
		return ct, notFound(err, fmt.Sprintf("asset %d", asset))
	}
	ct.Within, ct.HasCollector, ct.Exists = within > 0, hasCol > 0, exists > 0
	return ct, nil
}

package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sonde-monitoring/sonde/internal/audit"
)

// AppendAudit adds an entry to the audit log.
func (s *Store) AppendAudit(ctx context.Context, e audit.Entry) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO audit_log (at, container_id, actor_kind, actor_id, action, object_kind, object_id, address, reason, status, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, e.At.Unix(), e.ContainerID, e.ActorKind, e.ActorID, e.Action,
		e.ObjectKind, e.ObjectID, e.Address, e.Reason, e.Status, e.Detail)
	if err != nil {
		return fmt.Errorf("writing the audit log: %w", err)
	}
	return nil
}

// AuditFilter selects audit log entries.
type AuditFilter struct {
	Containers []int64 // required: the containers whose entries to list
	Since      time.Time
	Until      time.Time
	ActorKind  string
	ActorID    int64
	Action     string // a substring of the action
	ObjectKind string
	ObjectID   int64
	Before     int64 // entries with a smaller id (paging), 0 for the newest
	Limit      int   // at most 1000; 0 means 100
}

// AuditLog lists entries of the audit log, newest first.
func (s *Store) AuditLog(ctx context.Context, f AuditFilter) ([]audit.Entry, error) {
	if len(f.Containers) == 0 {
		return nil, nil
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	q := `SELECT id, at, container_id, actor_kind, actor_id, action, object_kind, object_id, address, reason, status, detail
FROM audit_log WHERE container_id IN (` + inList(&args, f.Containers) + `)` // #nosec G202 -- only $N placeholders are joined; the ids are arguments
	if !f.Since.IsZero() {
		q += ` AND at >= ` + arg(f.Since.Unix())
	}
	if !f.Until.IsZero() {
		q += ` AND at < ` + arg(f.Until.Unix())
	}
	if f.ActorKind != "" {
		q += ` AND actor_kind = ` + arg(f.ActorKind)
	}
	if f.ActorID != 0 {
		q += ` AND actor_id = ` + arg(f.ActorID)
	}
	if f.Action != "" {
		q += ` AND instr(action, ` + arg(f.Action) + `) > 0`
	}
	if f.ObjectKind != "" {
		q += ` AND object_kind = ` + arg(f.ObjectKind)
	}
	if f.ObjectID != 0 {
		q += ` AND object_id = ` + arg(f.ObjectID)
	}
	if f.Before > 0 {
		q += ` AND id < ` + arg(f.Before)
	}
	q += ` ORDER BY id DESC LIMIT ` + arg(f.Limit)
	rows, err := s.r.QueryContext(ctx, s.q(q), args...) // #nosec G202 -- only $N placeholders are joined; values are arguments
	if err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", err)
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.ContainerID, &e.ActorKind, &e.ActorID, &e.Action, &e.ObjectKind, &e.ObjectID,
			&e.Address, &e.Reason, &e.Status, &e.Detail); err != nil {
			return nil, err
		}
		e.At = time.Unix(at, 0).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// ContainerOf returns the container an object of a kind belongs to (a
// container is its own); ErrNotFound when there is no such object.
func (s *Store) ContainerOf(ctx context.Context, kind string, id int64) (int64, error) {
	var q string
	switch kind {
	case "container":
		q = `SELECT id FROM containers WHERE id = $1`
	case "asset":
		q = `SELECT container_id FROM assets WHERE id = $1`
	case "condition":
		q = `SELECT container_id FROM conditions WHERE id = $1`
	case "alert":
		q = `SELECT container_id FROM alerts WHERE id = $1`
	case "maintenance":
		q = `SELECT container_id FROM maintenance WHERE id = $1`
	case "notification":
		q = `SELECT container_id FROM notifications WHERE id = $1`
	case "rule":
		q = `SELECT container_id FROM rules WHERE id = $1`
	case "token":
		q = `SELECT container_id FROM tokens WHERE id = $1`
	case "appliance":
		q = `SELECT container_id FROM appliances WHERE id = $1`
	case "invitation":
		q = `SELECT container_id FROM invitations WHERE id = $1`
	default:
		return 0, fmt.Errorf("objects of kind %q have no container: %w", kind, ErrNotFound)
	}
	var c int64
	err := s.r.QueryRowContext(ctx, q, id).Scan(&c)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%s %d: %w", kind, id, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("finding the container of %s %d: %w", kind, id, err)
	}
	return c, nil
}

// AuditRetention is how long audit entries are kept (the store refuses to
// delete younger ones).
const AuditRetention = 400 * 24 * time.Hour

// PruneAudit removes the entries older than the retention, up to 10,000
// at a time; it returns how many went.
func (s *Store) PruneAudit(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 ORDER BY at LIMIT 10000)`,
		now.Add(-AuditRetention-time.Hour).Unix())
	if err != nil {
		return 0, fmt.Errorf("removing old audit entries: %w", err)
	}
	return res.RowsAffected()
}

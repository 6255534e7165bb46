package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// SetTimeZone sets the zone the web UI shows a user's times in ("" is
// UTC); the caller has checked the name.
func (s *Store) SetTimeZone(ctx context.Context, user int64, zone string, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE users SET time_zone = $1, updated_at = $2 WHERE id = $3`, zone, now.Unix(), user)
	return affected(res, err, fmt.Sprintf("user %d", user))
}

// Member is a user's own grant on one container.
type Member struct {
	UserID      int64
	Username    string
	Permissions uint64
	HasTOTP     bool
	Since       time.Time
}

// ContainerMembers lists the users granted permissions on a container
// itself (not those who see it from above), by name.
func (s *Store) ContainerMembers(ctx context.Context, container int64) ([]Member, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT u.id, u.username, m.permissions, u.totp_secret <> '', m.created_at
FROM memberships m JOIN users u ON u.id = m.user_id
WHERE m.container_id = $1 AND u.disabled_at IS NULL ORDER BY u.username`, container)
	if err != nil {
		return nil, fmt.Errorf("listing the members of container %d: %w", container, err)
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		var since int64
		if err := rows.Scan(&m.UserID, &m.Username, &m.Permissions, &m.HasTOTP, &since); err != nil {
			return nil, err
		}
		m.Since = time.Unix(since, 0).UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// ErrLastAdmin is returned when a change would leave a container that
// stops inheritance without a member holding the admin flag: nobody could
// manage it any more.
var ErrLastAdmin = errors.New("the container stops inheritance and would have no admin of its own")

// keepsAdmin fails the transaction with ErrLastAdmin when the container
// stops inheritance and no member holds adminFlag. Checked inside the
// transaction of the change: two admins removing each other at once
// cannot both succeed.
func keepsAdmin(ctx context.Context, tx *sql.Tx, container int64, adminFlag uint64) error {
	var stops, admins int
	err := tx.QueryRowContext(ctx, `SELECT (SELECT CASE WHEN inherit_access = 0 THEN 1 ELSE 0 END FROM containers WHERE id = $1),
(SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id
 WHERE m.container_id = $1 AND (m.permissions & $2) = $2 AND u.disabled_at IS NULL)`, container, adminFlag).Scan(&stops, &admins)
	if err != nil {
		return err
	}
	if stops == 1 && admins == 0 {
		return ErrLastAdmin
	}
	return nil
}

// SetMembership replaces a user's grant on a container that the user
// holds already; ErrNotFound when there is none, ErrLastAdmin when it
// would leave the container without an admin (adminFlag).
func (s *Store) SetMembership(ctx context.Context, user, container int64, perms, adminFlag uint64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE memberships SET permissions = $1 WHERE user_id = $2 AND container_id = $3`, perms, user, container)
		if err := affected(res, err, fmt.Sprintf("the access of user %d to container %d", user, container)); err != nil {
			return err
		}
		return keepsAdmin(ctx, tx, container, adminFlag)
	})
}

// RemoveMembership takes a user's grant on a container away, and ends the
// user's sessions (what they see changes under them otherwise only at
// the next page; a removed user must be out at once). ErrLastAdmin when
// it would leave the container without an admin (adminFlag).
func (s *Store) RemoveMembership(ctx context.Context, user, container int64, adminFlag uint64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM memberships WHERE user_id = $1 AND container_id = $2`, user, container)
		if err := affected(res, err, fmt.Sprintf("the access of user %d to container %d", user, container)); err != nil {
			return err
		}
		if err := keepsAdmin(ctx, tx, container, adminFlag); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1`, user)
		return err
	})
}

// StopInheritance makes a container visible to its own members only;
// ErrLastAdmin when none of them holds adminFlag.
func (s *Store) StopInheritance(ctx context.Context, container int64, adminFlag uint64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE containers SET inherit_access = 0 WHERE id = $1`, container)
		if err := affected(res, err, fmt.Sprintf("container %d", container)); err != nil {
			return err
		}
		return keepsAdmin(ctx, tx, container, adminFlag)
	})
}

// Invitation is a one-time link that makes its holder a member of a
// container.
type Invitation struct {
	ID          int64
	TokenHash   string
	ContainerID int64
	Permissions uint64
	Note        string
	CreatedBy   int64
	CreatedAt   time.Time
	ExpiresAt   time.Time
	UsedAt      *time.Time
}

// CreateInvitation stores an invitation.
func (s *Store) CreateInvitation(ctx context.Context, inv Invitation) (int64, error) {
	var id int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO invitations (token_hash, container_id, permissions, note, created_by, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, inv.TokenHash, inv.ContainerID, inv.Permissions, inv.Note, inv.CreatedBy,
		inv.CreatedAt.Unix(), inv.ExpiresAt.Unix()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("creating an invitation to container %d: %w", inv.ContainerID, err)
	}
	return id, nil
}

const invitationColumns = `id, token_hash, container_id, permissions, note, COALESCE(created_by, 0), created_at, expires_at, used_at`

func scanInvitation(row interface{ Scan(...any) error }) (Invitation, error) {
	var inv Invitation
	var created, expires int64
	var used sql.NullInt64
	err := row.Scan(&inv.ID, &inv.TokenHash, &inv.ContainerID, &inv.Permissions, &inv.Note, &inv.CreatedBy, &created, &expires, &used)
	inv.CreatedAt, inv.ExpiresAt, inv.UsedAt = time.Unix(created, 0).UTC(), time.Unix(expires, 0).UTC(), timePtr(used)
	return inv, err
}

// InvitationByHash reads an unused invitation that has not expired.
func (s *Store) InvitationByHash(ctx context.Context, hash string, now time.Time) (Invitation, error) {
	inv, err := scanInvitation(s.r.QueryRowContext(ctx, `SELECT `+invitationColumns+` FROM invitations
WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2`, hash, now.Unix()))
	if err != nil {
		return inv, notFound(err, "invitation")
	}
	return inv, nil
}

// PendingInvitations lists a container's unused invitations that have not
// expired, newest first.
func (s *Store) PendingInvitations(ctx context.Context, container int64, now time.Time) ([]Invitation, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+invitationColumns+` FROM invitations
WHERE container_id = $1 AND used_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id DESC`, container, now.Unix())
	if err != nil {
		return nil, fmt.Errorf("listing the invitations of container %d: %w", container, err)
	}
	defer rows.Close()
	var out []Invitation
	for rows.Next() {
		inv, err := scanInvitation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	return out, rows.Err()
}

// DeleteInvitation withdraws an unused invitation of a container.
func (s *Store) DeleteInvitation(ctx context.Context, container, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM invitations WHERE id = $1 AND container_id = $2 AND used_at IS NULL`, id, container)
	return affected(res, err, fmt.Sprintf("invitation %d", id))
}

// ErrInvitationUsed is returned when an invitation was used or withdrawn
// meanwhile, or has expired.
var ErrInvitationUsed = errors.New("the invitation was used already, withdrawn or has expired")

// AcceptInvitation uses an invitation once: it gives user its grant on
// the container (added to what the user held there) in the same
// transaction that marks it used. When newUser is set the user is created
// first and user is ignored; the new user's id is returned.
func (s *Store) AcceptInvitation(ctx context.Context, hash string, user int64, newUser *User, now time.Time) (int64, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var id, container int64
		var perms uint64
		err := tx.QueryRowContext(ctx, `SELECT id, container_id, permissions FROM invitations
WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2`, hash, now.Unix()).Scan(&id, &container, &perms)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrInvitationUsed
		}
		if err != nil {
			return err
		}
		if newUser != nil {
			if err := tx.QueryRowContext(ctx, `INSERT INTO users (username, password_hash, must_change, created_at, updated_at, time_zone)
VALUES ($1, $2, 0, $3, $3, $4) RETURNING id`, NormalizeUsername(newUser.Username), newUser.PasswordHash, now.Unix(), newUser.TimeZone).Scan(&user); err != nil {
				if isUnique(err) {
					return ErrUserExists
				}
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE invitations SET used_at = $1, used_by = $2 WHERE id = $3 AND used_at IS NULL`, now.Unix(), user, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return ErrInvitationUsed
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO memberships (user_id, container_id, permissions, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, container_id) DO UPDATE SET permissions = memberships.permissions | excluded.permissions`, user, container, perms, now.Unix())
		return err
	})
	if err != nil {
		if errors.Is(err, ErrInvitationUsed) || errors.Is(err, ErrUserExists) {
			return 0, err
		}
		return 0, fmt.Errorf("accepting an invitation: %w", err)
	}
	return user, nil
}

// isUnique reports a broken UNIQUE constraint (SQLite's message, or
// PostgreSQL's code 23505).
func isUnique(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	return strings.Contains(err.Error(), "UNIQUE") || (errors.As(err, &pe) && pe.Code == "23505")
}

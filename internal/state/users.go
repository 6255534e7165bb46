package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/secret"
)

// User is a person who logs in to the web UI.
type User struct {
	ID           int64
	Username     string // lower case
	PasswordHash string
	// MustChange: the password was handed over (first admin, a reset) and
	// must be changed at the next login.
	MustChange   bool
	TOTPSecret   secret.Secret // zero when the user has no second factor
	TOTPLastStep int64
	CreatedAt    time.Time
	DisabledAt   *time.Time
	// TimeZone is an IANA zone name the web UI shows times in; "" is UTC.
	TimeZone string
}

const userColumns = `id, username, password_hash, must_change, totp_secret, totp_last_step, created_at, disabled_at, time_zone`

func (s *Store) scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var must int
	var totp string
	var created int64
	var disabled sql.NullInt64
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &must, &totp, &u.TOTPLastStep, &created, &disabled, &u.TimeZone); err != nil {
		return u, err
	}
	var err error
	if u.TOTPSecret, err = openSecret(s.sealer, totp, aadTOTPSecret); err != nil {
		return u, err
	}
	u.MustChange = must != 0
	u.CreatedAt, u.DisabledAt = time.Unix(created, 0).UTC(), timePtr(disabled)
	return u, nil
}

// NormalizeUsername is the form user names are stored and compared in.
func NormalizeUsername(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// ErrUserExists is returned when a user name is taken.
var ErrUserExists = errors.New("a user with that name exists")

// CreateUser adds a user; u.Username is normalised.
func (s *Store) CreateUser(ctx context.Context, u User, now time.Time) (int64, error) {
	totp, err := sealSecret(s.sealer, u.TOTPSecret, aadTOTPSecret)
	if err != nil {
		return 0, err
	}
	var id int64
	err = s.w.QueryRowContext(ctx, `INSERT INTO users (username, password_hash, must_change, totp_secret, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $5) RETURNING id`, NormalizeUsername(u.Username), u.PasswordHash, boolInt(u.MustChange), totp, now.Unix()).Scan(&id)
	if err != nil {
		if isUnique(err) {
			return 0, fmt.Errorf("creating user %q: %w", u.Username, ErrUserExists)
		}
		return 0, fmt.Errorf("creating user %q: %w", u.Username, err)
	}
	return id, nil
}

// UserByName reads a user by name (any case).
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	u, err := s.scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = $1`, NormalizeUsername(name)))
	if err != nil {
		return u, notFound(err, "user")
	}
	return u, nil
}

// UserByID reads a user.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := s.scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return u, notFound(err, fmt.Sprintf("user %d", id))
	}
	return u, nil
}

// CountUsers counts the users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting users: %w", err)
	}
	return n, nil
}

// SetPassword replaces a user's password hash.
func (s *Store) SetPassword(ctx context.Context, user int64, hash string, mustChange bool, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE users SET password_hash = $1, must_change = $2, updated_at = $3 WHERE id = $4`,
		hash, boolInt(mustChange), now.Unix(), user)
	return affected(res, err, fmt.Sprintf("user %d", user))
}

// Membership is a user's permission flags on a container (and below it).
type Membership struct {
	UserID      int64
	ContainerID int64
	Permissions uint64
}

// AddMembership gives a user permissions on a container, replacing what
// the user had there.
func (s *Store) AddMembership(ctx context.Context, m Membership, now time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO memberships (user_id, container_id, permissions, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, container_id) DO UPDATE SET permissions = excluded.permissions`, m.UserID, m.ContainerID, m.Permissions, now.Unix())
	if err != nil {
		return fmt.Errorf("giving user %d access to container %d: %w", m.UserID, m.ContainerID, err)
	}
	return nil
}

// Memberships lists a user's memberships.
func (s *Store) Memberships(ctx context.Context, user int64) ([]Membership, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT user_id, container_id, permissions FROM memberships WHERE user_id = $1 ORDER BY container_id`, user)
	if err != nil {
		return nil, fmt.Errorf("reading the memberships of user %d: %w", user, err)
	}
	defer rows.Close()
	var out []Membership
	for rows.Next() {
		var m Membership
		if err := rows.Scan(&m.UserID, &m.ContainerID, &m.Permissions); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// TreeNode is a container as the access computation needs it.
type TreeNode struct {
	ID            int64
	ParentID      *int64
	Name          string
	InheritAccess bool
	// RequireTOTP: the container's users must have a second factor.
	RequireTOTP bool
}

// Tree lists every container, by id.
func (s *Store) Tree(ctx context.Context) ([]TreeNode, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, parent_id, name, inherit_access, require_totp FROM containers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading the container tree: %w", err)
	}
	defer rows.Close()
	var out []TreeNode
	for rows.Next() {
		var n TreeNode
		var parent sql.NullInt64
		var inherit, totp int
		if err := rows.Scan(&n.ID, &parent, &n.Name, &inherit, &totp); err != nil {
			return nil, err
		}
		n.ParentID, n.InheritAccess, n.RequireTOTP = ptrInt(parent), inherit != 0, totp != 0
		out = append(out, n)
	}
	return out, rows.Err()
}

// Session is a logged-in browser.
type Session struct {
	IDHash     string
	UserID     int64
	CSRF       string
	Stage      string // "password" (second factor pending) or "full"
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
	RemoteAddr string
	UserAgent  string
}

// CreateSession stores a session.
func (s *Store) CreateSession(ctx context.Context, se Session) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO sessions (id_hash, user_id, csrf, stage, created_at, last_seen_at, expires_at, remote_addr, user_agent)
VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8)`, se.IDHash, se.UserID, se.CSRF, se.Stage, se.CreatedAt.Unix(), se.ExpiresAt.Unix(),
		se.RemoteAddr, se.UserAgent)
	if err != nil {
		return fmt.Errorf("creating a session: %w", err)
	}
	return nil
}

const sessionColumns = `id_hash, user_id, csrf, stage, created_at, last_seen_at, expires_at, remote_addr, user_agent`

func scanSession(row interface{ Scan(...any) error }) (Session, error) {
	var se Session
	var created, seen, expires int64
	err := row.Scan(&se.IDHash, &se.UserID, &se.CSRF, &se.Stage, &created, &seen, &expires, &se.RemoteAddr, &se.UserAgent)
	se.CreatedAt, se.LastSeenAt, se.ExpiresAt = time.Unix(created, 0).UTC(), time.Unix(seen, 0).UTC(), time.Unix(expires, 0).UTC()
	return se, err
}

// SessionByHash reads a session.
func (s *Store) SessionByHash(ctx context.Context, hash string) (Session, error) {
	se, err := scanSession(s.r.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id_hash = $1`, hash))
	if err != nil {
		return se, notFound(err, "session")
	}
	return se, nil
}

// TouchSession records activity on a session.
func (s *Store) TouchSession(ctx context.Context, hash string, at time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2`, at.Unix(), hash)
	if err != nil {
		return fmt.Errorf("recording session activity: %w", err)
	}
	return nil
}

// DeleteSession ends a session.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = $1`, hash); err != nil {
		return fmt.Errorf("ending a session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of a user but keep (a hash, or
// "").
func (s *Store) DeleteUserSessions(ctx context.Context, user int64, keep string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2`, user, keep); err != nil {
		return fmt.Errorf("ending the sessions of user %d: %w", user, err)
	}
	return nil
}

// UserSessions lists a user's sessions, newest first.
func (s *Store) UserSessions(ctx context.Context, user int64) ([]Session, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE user_id = $1 ORDER BY created_at DESC`, user)
	if err != nil {
		return nil, fmt.Errorf("listing the sessions of user %d: %w", user, err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		se, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, se)
	}
	return out, rows.Err()
}

// DeleteExpiredSessions removes sessions past their absolute expiry or
// idle for longer than idle.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time, idle time.Duration) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2`, now.Unix(), now.Add(-idle).Unix()); err != nil {
		return fmt.Errorf("removing expired sessions: %w", err)
	}
	return nil
}

// SetInheritAccess says whether the users of a container's ancestors see
// it (true, the default) or only its own members (false).
func (s *Store) SetInheritAccess(ctx context.Context, container int64, inherit bool) error {
	res, err := s.w.ExecContext(ctx, `UPDATE containers SET inherit_access = $1 WHERE id = $2`, boolInt(inherit), container)
	return affected(res, err, fmt.Sprintf("container %d", container))
}

// SetTOTP gives a user a second factor (sealed at rest), the step of the
// code that confirmed it, and new recovery codes (hashes); an empty
// secret removes the second factor and the codes.
func (s *Store) SetTOTP(ctx context.Context, user int64, sec secret.Secret, step int64, recoveryHashes []string, now time.Time) error {
	sealed, err := sealSecret(s.sealer, sec, aadTOTPSecret)
	if err != nil {
		return err
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET totp_secret = $1, totp_last_step = $2, updated_at = $3 WHERE id = $4`,
			sealed, step, now.Unix(), user); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, user); err != nil {
			return err
		}
		for _, h := range recoveryHashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, hash) VALUES ($1, $2)`, user, h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("setting the second factor of user %d: %w", user, err)
	}
	return nil
}

// UseTOTPStep records the step of an accepted code, only if it is later
// than the last one: ok is false when a code of that step (or later) was
// accepted meanwhile (a replay racing the first use).
func (s *Store) UseTOTPStep(ctx context.Context, user, step int64) (ok bool, err error) {
	res, err := s.w.ExecContext(ctx, `UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1`, step, user)
	if err != nil {
		return false, fmt.Errorf("recording a second-factor code: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RecoveryCodes lists the hashes of a user's unused recovery codes.
func (s *Store) RecoveryCodes(ctx context.Context, user int64) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT hash FROM recovery_codes WHERE user_id = $1 ORDER BY hash`, user)
	if err != nil {
		return nil, fmt.Errorf("reading recovery codes: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// UseRecoveryCode deletes a recovery code; ok is false when it was used
// already (by a request racing this one).
func (s *Store) UseRecoveryCode(ctx context.Context, user int64, hash string) (ok bool, err error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1 AND hash = $2`, user, hash)
	if err != nil {
		return false, fmt.Errorf("using a recovery code: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SetTOTPRequired says whether the users of a container must have a
// second factor.
func (s *Store) SetTOTPRequired(ctx context.Context, container int64, required bool) error {
	res, err := s.w.ExecContext(ctx, `UPDATE containers SET require_totp = $1 WHERE id = $2`, boolInt(required), container)
	return affected(res, err, fmt.Sprintf("container %d", container))
}

// CreateUserWith adds a user with one membership, in one transaction.
func (s *Store) CreateUserWith(ctx context.Context, u User, container int64, perms uint64, now time.Time) (int64, error) {
	totp, err := sealSecret(s.sealer, u.TOTPSecret, aadTOTPSecret)
	if err != nil {
		return 0, err
	}
	var id int64
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO users (username, password_hash, must_change, totp_secret, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $5) RETURNING id`, NormalizeUsername(u.Username), u.PasswordHash, boolInt(u.MustChange), totp, now.Unix()).Scan(&id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO memberships (user_id, container_id, permissions, created_at) VALUES ($1, $2, $3, $4)`,
			id, container, perms, now.Unix())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("creating user %q: %w", u.Username, err)
	}
	return id, nil
}

// DeleteSessionOf ends one session of a user; ok is false when the user
// has no such session.
func (s *Store) DeleteSessionOf(ctx context.Context, user int64, hash string) (ok bool, err error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1 AND id_hash = $2`, user, hash)
	if err != nil {
		return false, fmt.Errorf("ending a session: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

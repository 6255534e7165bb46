// Package state is the hub's state store: the container tree, assets,
// collectors and check configuration, the latest result of every check, and
// API tokens. It runs on SQLite (embedded, WAL mode) or on PostgreSQL (to
// scale out): one set of SQL for both ($N placeholders, RETURNING, ON
// CONFLICT), one set of migrations (PostgreSQL's types derived from
// SQLite's, a file of its own only where the two differ).
package state

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationsFS embed.FS

// ErrNotFound is returned when an object does not exist.
var ErrNotFound = errors.New("not found")

// Store is the state store.
type Store struct {
	w      *sql.DB // one connection: SQLite has one writer at a time
	r      *sql.DB // readers
	logger *slog.Logger
	hot    hotStatements
	// sealer seals rule secrets at rest; nil stores them as given.
	sealer cipher.AEAD
	// dialect is dialectSQLite or dialectPostgres.
	dialect string
}

// hotStatements are prepared once: every check result runs them, and
// parsing their SQL again each time cost more than running them.
type hotStatements struct {
	authToken   *sql.Stmt
	checkTarget *sql.Stmt
	putResult   *sql.Stmt
}

func (s *Store) prepare(ctx context.Context) error {
	for _, p := range []struct {
		db    *sql.DB
		query string
		dst   **sql.Stmt
	}{
		{s.r, authTokenSQL, &s.hot.authToken},
		{s.r, checkTargetSQL, &s.hot.checkTarget},
		{s.w, putResultSQL, &s.hot.putResult},
	} {
		st, err := p.db.PrepareContext(ctx, p.query)
		if err != nil {
			return fmt.Errorf("preparing state statements: %w", err)
		}
		*p.dst = st
	}
	return nil
}

// Open opens (creating if needed) the SQLite database at path, or the
// PostgreSQL database of a postgres:// URL, and applies the embedded
// migrations.
func Open(ctx context.Context, path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if IsPostgres(path) {
		return openPostgres(ctx, path, logger)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the state directory: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening state database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening state database %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4) // the default, two, would reopen connections under load
	s := &Store{w: w, r: r, logger: logger, dialect: dialectSQLite}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// The database holds token hashes and monitoring data: owner only.
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.Close()
			return nil, fmt.Errorf("restricting permissions of %s: %w", f, err)
		}
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.hot.authToken, s.hot.checkTarget, s.hot.putResult} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, s.r.Close(), s.w.Close())...)
}

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("creating the migrations table: %w", err)
	}
	entries, err := fs.ReadDir(migrationsFS, "migrations/sqlite")
	if err != nil {
		return fmt.Errorf("reading embedded migrations: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		num, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("migration %s: name must start with a number and an underscore", name)
		}
		var applied int
		if err := s.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, version).Scan(&applied); err != nil {
			return fmt.Errorf("reading applied migrations: %w", err)
		}
		if applied > 0 {
			continue
		}
		body, err := fs.ReadFile(migrationsFS, "migrations/sqlite/"+name)
		if err != nil {
			return fmt.Errorf("reading migration %s: %w", name, err)
		}
		if s.dialect == dialectPostgres {
			if own, err := fs.ReadFile(migrationsFS, "migrations/postgres/"+name); err == nil {
				body = own
			} else {
				body = []byte(pgTypes(string(body)))
			}
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, version, time.Now().Unix())
			return err
		})
		if err != nil {
			return fmt.Errorf("applying migration %s: %w", name, err)
		}
		s.logger.Info("applied state migration", "migration", name)
	}
	return nil
}

// tx runs fn in a write transaction. On SQLite the writer is one
// connection and transactions start IMMEDIATE, so they run one at a
// time; on PostgreSQL they are SERIALIZABLE and run again (up to 10
// times) when PostgreSQL refuses one for a conflict: either way fn sees
// the store as if alone.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	var opts *sql.TxOptions
	if s.dialect == dialectPostgres {
		opts = &sql.TxOptions{Isolation: sql.LevelSerializable}
	}
	for attempt := 1; ; attempt++ {
		err := s.tx1(ctx, opts, fn)
		if err == nil || !isSerialization(err) || attempt == 10 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt*attempt) * time.Millisecond):
		}
	}
}

func (s *Store) tx1(ctx context.Context, opts *sql.TxOptions, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// inList appends ids to args and returns their placeholders, "$3, $4, …",
// for an IN (…) list: only placeholders are ever joined into SQL.
func inList(args *[]any, ids []int64) string {
	ph := make([]string, len(ids))
	for i, id := range ids {
		*args = append(*args, id)
		ph[i] = "$" + strconv.Itoa(len(*args))
	}
	return strings.Join(ph, ", ")
}

// scanIDs reads rows of one id column and closes them.
func scanIDs(rows *sql.Rows) ([]int64, error) {
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func nullInt(v *int64) sql.NullInt64 {
	if v == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *v, Valid: true}
}

func ptrInt(n sql.NullInt64) *int64 {
	if !n.Valid {
		return nil
	}
	v := n.Int64
	return &v
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("reading %s: %w", what, err)
}

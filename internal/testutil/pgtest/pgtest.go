// Package pgtest starts a real PostgreSQL server (Debian's) on loopback
// for tests: initdb into a temporary directory, postgres on a free port,
// trust authentication on 127.0.0.1 only, durability off (tests only).
// Under CI=true a missing server fails the test; elsewhere it skips.
package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to create databases
)

// Server is a running PostgreSQL server.
type Server struct {
	dir  string
	bin  string
	port int
	cmd  *exec.Cmd
	log  bytes.Buffer

	mu sync.Mutex
	n  int
}

// bin finds Debian's PostgreSQL binaries (the newest version).
func bin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "postgres")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server under /usr/lib/postgresql/*/bin (install the Debian package postgresql)")
}

// Require skips the test (fails it under CI=true) when PostgreSQL is not
// installed.
func Require(t testing.TB) string {
	t.Helper()
	dir, err := bin()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v; make test installs it", err)
		}
		t.Skipf("%v", err)
	}
	return dir
}

// asPostgres runs a command as the postgres user when running as root
// (initdb and postgres refuse root).
func asPostgres(name string, args ...string) *exec.Cmd {
	if os.Geteuid() != 0 {
		return exec.Command(name, args...) // #nosec G204 -- test helper, fixed binaries
	}
	return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...) // #nosec G204 -- test helper, fixed binaries
}

// Start starts a server; stop it with Stop. It is meant for TestMain
// (one server per test binary); each test makes its own database.
func Start() (*Server, error) {
	binDir, err := bin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sonde-pg-")
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	s := &Server{dir: dir}
	init := asPostgres(filepath.Join(binDir, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
	if out, err := init.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.bin = binDir
	if err := s.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// start runs postgres on the server's directory and port and waits until
// it answers.
func (s *Server) start() error {
	s.cmd = asPostgres(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.dir, "data"), "-p", strconv.Itoa(s.port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	db, err := sql.Open("pgx", s.url("postgres"))
	if err != nil {
		s.stop()
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("PostgreSQL did not start: %v\n%s", err, s.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Restart stops the server (fast shutdown: every session ends) and starts
// it again on the same port with the same data, as an operator's restart
// or a failover of the database does.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.stop()
	if err := s.start(); err != nil {
		t.Fatalf("restarting PostgreSQL: %v", err)
	}
}

func (s *Server) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Database creates an empty database and returns its URL.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("sonde_test_%d", s.n)
	s.mu.Unlock()
	db, err := sql.Open("pgx", s.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	return s.url(name)
}

// Stop stops the server and removes its files.
func (s *Server) Stop() {
	s.stop()
	os.RemoveAll(s.dir)
}

// stop stops the postgres process.
func (s *Server) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	s.cmd = nil
}

// Package tsdbtest starts a real Prometheus-compatible TSDB for tests —
// Debian's prometheus (with its remote-write receiver) or victoria-metrics —
// on a free port of 127.0.0.1, its data in the test's temporary directory.
// Under CI=true a missing server fails the test; elsewhere it skips.
package tsdbtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Kind names a TSDB.
type Kind string

// The TSDBs the tests run against.
const (
	Prometheus      Kind = "prometheus"
	VictoriaMetrics Kind = "victoriametrics"
)

// Kinds are every TSDB, for tests that run against each.
var Kinds = []Kind{Prometheus, VictoriaMetrics}

func (k Kind) bin() (path, pkg string) {
	switch k {
	case Prometheus:
		return "/usr/bin/prometheus", "prometheus"
	default:
		return "/usr/bin/victoria-metrics", "victoria-metrics"
	}
}

// prometheusConfig scrapes nothing and accepts samples up to a day older
// than the newest, as Sonde's embedded store does (appliances replay their
// buffers after an outage).
const prometheusConfig = `global:
  scrape_interval: 1m
storage:
  tsdb:
    out_of_order_time_window: 24h
`

// Server is a running TSDB.
type Server struct {
	Kind     Kind
	WriteURL *url.URL // the remote-write endpoint
	QueryURL *url.URL // the base of the Prometheus HTTP API

	t    testing.TB
	dir  string
	addr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// Require fails the test under CI=true, and skips it elsewhere, when the
// TSDB is not installed.
func Require(t testing.TB, k Kind) {
	t.Helper()
	bin, pkg := k.bin()
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("no %s at %s (install the Debian package %s)", k, bin, pkg)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s; make test installs it", msg)
		}
		t.Skip(msg)
	}
}

// Start starts a TSDB of kind k for the test; it is stopped when the test
// ends.
func Start(t testing.TB, k Kind) *Server {
	t.Helper()
	Require(t, k)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{Kind: k, t: t, dir: t.TempDir(), addr: addr}
	base := &url.URL{Scheme: "http", Host: addr}
	s.QueryURL = base
	s.WriteURL = base.JoinPath("/api/v1/write") // both serve it there
	t.Cleanup(s.Stop)
	s.Restart()
	return s
}

// Restart starts the server again (after Stop) on the same address and
// data.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatalf("%s is running", s.Kind)
	}
	bin, _ := s.Kind.bin()
	var args []string
	switch s.Kind {
	case Prometheus:
		cfg := filepath.Join(s.dir, "prometheus.yml")
		if err := os.WriteFile(cfg, []byte(prometheusConfig), 0o600); err != nil {
			s.t.Fatal(err)
		}
		args = []string{
			"--config.file=" + cfg,
			"--storage.tsdb.path=" + filepath.Join(s.dir, "data"),
			"--storage.tsdb.retention.time=100y",
			"--web.listen-address=" + s.addr,
			"--web.enable-remote-write-receiver",
			"--web.enable-admin-api",
			"--log.level=warn",
		}
	default:
		args = []string{
			"-storageDataPath=" + filepath.Join(s.dir, "data"),
			"-httpListenAddr=" + s.addr,
			"-retentionPeriod=100y",
			// Answer with what was just written, as Prometheus does:
			// VictoriaMetrics otherwise leaves out the last 30 s.
			"-search.latencyOffset=0s",
			"-search.disableCache",
			"-loggerLevel=WARN",
		}
	}
	log, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(bin, args...) // #nosec G204 -- test helper, fixed binary
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		s.t.Fatalf("starting %s: %v", s.Kind, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done, s.log = cmd, done, log

	ready := s.QueryURL.JoinPath("/-/ready").String()
	if s.Kind == VictoriaMetrics {
		ready = s.QueryURL.JoinPath("/health").String()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ready, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			s.t.Fatalf("%s exited at start; its log: %s", s.Kind, s.logText())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s did not become ready in 30 s; its log: %s", s.Kind, s.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) logText() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s); Restart starts
// it again.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT) // in case it was paused
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.log.Close()
	s.cmd, s.done, s.log = nil, nil, nil
}

// Sync makes what the server accepted visible to queries. Prometheus shows
// them at once. VictoriaMetrics buffers new samples, and even after a
// forced flush makes the newest searchable only a moment later, with no
// API to wait for it: Sync flushes, then waits two seconds.
func (s *Server) Sync(ctx context.Context) error {
	if s.Kind != VictoriaMetrics {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.QueryURL.JoinPath("/internal/force_flush").String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("flushing VictoriaMetrics: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("flushing VictoriaMetrics: %s", resp.Status)
	}
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Pause freezes the server (SIGSTOP): it accepts connections and answers
// nothing, as an overloaded TSDB does. Resume lets it go on.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume undoes Pause (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("%s is not running", s.Kind)
	}
	if err := syscall.Kill(-s.cmd.Process.Pid, sig); err != nil {
		s.t.Fatalf("signalling %s: %v", s.Kind, err)
	}
}

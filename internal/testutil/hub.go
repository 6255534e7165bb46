// Package testutil starts the real peers tests need: a Sonde hub on
// loopback, and Debian's daemons (snmpd, …).
package testutil

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hub"
)

// SyncBuffer collects logs written from several goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Hub is a real hub on loopback.
type Hub struct {
	t      testing.TB
	Dir    string
	Addr   string // HTTPS
	Stream string // appliance stream, "" when not served
	CA     string // CA certificate file
	Admin  string // the admin token
	Logs   *SyncBuffer
	Client *http.Client
	cancel context.CancelFunc
	done   chan error
}

// StartHub starts a hub with cfg; DataDir, Listen ("127.0.0.1:0") and the
// logger are filled in when empty. It stops when the test ends.
func StartHub(t testing.TB, cfg hub.Config) *Hub {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	logs := &SyncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	h, err := hub.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	th := &Hub{t: t, Dir: cfg.DataDir, Addr: h.Addr().String(), CA: h.CAFile(), Logs: logs, cancel: cancel, done: make(chan error, 1)}
	if a := h.StreamAddr(); a != nil {
		th.Stream = a.String()
	}
	go func() { th.done <- h.Serve(ctx) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub log:\n%s", logs.String())
		}
		th.Stop()
	})
	admin, err := os.ReadFile(h.AdminTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	th.Admin = strings.TrimSpace(string(admin))
	pem, err := os.ReadFile(th.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	th.Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	return th
}

// Stop stops the hub and waits for it.
func (h *Hub) Stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("hub stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		h.t.Error("hub did not stop")
	}
}

// API is the agent API URL.
func (h *Hub) API() string { return "https://" + h.Addr + "/api/v1" }

// Call sends a request with the admin token, decodes a 2xx answer into
// out, and returns the status and the raw answer.
func (h *Hub) Call(method, path string, body, out any) (int, []byte) {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "https://"+h.Addr+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.Admin)
	resp, err := h.Client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode, data
}

// Must is Call that fails the test unless the status is want.
func (h *Hub) Must(want int, method, path string, body, out any) {
	h.t.Helper()
	if code, data := h.Call(method, path, body, out); code != want {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, data)
	}
}

// Token creates a token in container with the permissions and returns it.
func (h *Hub) Token(container int64, perms ...string) string {
	h.t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	h.Must(201, "POST", fmt.Sprintf("/api/v1/container/%d/token", container), map[string]any{"name": "test", "permissions": perms}, &out)
	return out.Token
}

// Samples returns every sample the hub stored for a PromQL selector over
// the last hour, as "timestamp value" strings by series.
func (h *Hub) Samples(selector string) map[string][][2]any {
	h.t.Helper()
	var out struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	q := url.Values{"query": {selector + "[1h]"}, "time": {fmt.Sprint(time.Now().Unix() + 600)}}
	h.Must(200, "GET", "/prometheus/api/v1/query?"+q.Encode(), nil, &out)
	got := map[string][][2]any{}
	for _, r := range out.Data.Result {
		got[fmt.Sprint(r.Metric)] = r.Values
	}
	return got
}

// WaitFor polls cond every 50 ms until it holds or timeout passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SetT sets the test of a Hub made by hand (for a hub running in another
// process): Call, Must and Samples report to it.
func (h *Hub) SetT(t testing.TB) { h.t = t }

// CAClient is an HTTPS client that trusts only the CA in caFile.
func CAClient(t testing.TB, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile) // #nosec G304 -- the test names the file
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", caFile)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

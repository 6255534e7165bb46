package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hostagent"
	"github.com/sonde-monitoring/sonde/internal/hub"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

// syncBuffer collects logs written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testHub is a real hub on loopback.
type testHub struct {
	t      *testing.T
	dir    string
	addr   string
	cancel context.CancelFunc
	done   chan error
	ca     string
	admin  string
	client *http.Client
}

// startHub starts a hub with its data in dir on addr ("127.0.0.1:0" for a
// free port).
func startHub(t *testing.T, dir, addr string) *testHub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h, err := hub.New(ctx, hub.Config{DataDir: dir, Listen: addr, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	th := &testHub{t: t, dir: dir, addr: h.Addr().String(), cancel: cancel, done: make(chan error, 1), ca: h.CAFile()}
	go func() { th.done <- h.Serve(ctx) }()
	t.Cleanup(th.stop)
	admin, err := os.ReadFile(h.AdminTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	th.admin = strings.TrimSpace(string(admin))
	pem, err := os.ReadFile(th.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	th.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	return th
}

func (th *testHub) stop() {
	if th.cancel == nil {
		return
	}
	th.cancel()
	th.cancel = nil
	select {
	case err := <-th.done:
		if err != nil {
			th.t.Errorf("hub stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		th.t.Error("hub did not stop")
	}
}

func (th *testHub) api() string { return "https://" + th.addr + "/api/v1" }

// call sends a request with the admin token and decodes the answer.
func (th *testHub) call(method, path string, body, out any) int {
	th.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://"+th.addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+th.admin)
	resp, err := th.client.Do(req)
	if err != nil {
		th.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			th.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

func (th *testHub) agentToken() string {
	th.t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	if code := th.call("POST", "/api/v1/container/1/token", map[string]any{
		"name": "agent", "permissions": []string{"READ", "API", "ASSET_MANAGEMENT", "INSERT_CHECK_DATA"},
	}, &out); code != 201 {
		th.t.Fatalf("creating an agent token: %d", code)
	}
	return out.Token
}

// samples returns every sample of a metric the hub stored, by timestamp.
func (th *testHub) samples(metric string) map[int64]string {
	th.t.Helper()
	var out struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	q := url.Values{"query": {metric + "[1h]"}, "time": {fmt.Sprint(time.Now().Unix() + 60)}}
	if code := th.call("GET", "/prometheus/api/v1/query?"+q.Encode(), nil, &out); code != 200 {
		th.t.Fatalf("query %s: %d", metric, code)
	}
	got := map[int64]string{}
	for _, r := range out.Data.Result {
		for _, v := range r.Values {
			got[int64(v[0].(float64))] = v[1].(string)
		}
	}
	return got
}

// counterCheck produces 1, 2, 3, … and remembers what it produced.
type counterCheck struct {
	key string
	mu  sync.Mutex
	n   int64
	// made maps each value to the round it was made in.
	made []int64
}

func (c *counterCheck) Key() string { return c.key }

func (c *counterCheck) Collect(context.Context) ([]model.Type, *model.CheckError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	c.made = append(c.made, c.n)
	return []model.Type{{Name: "counter", Items: []model.Item{{Name: "c", Metrics: []model.Metric{
		{Name: "value", Value: model.IntValue(c.n)},
	}}}}}, nil
}

func (c *counterCheck) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.made)
}

func newTestAgent(t *testing.T, cfg Config, logs io.Writer) *Agent {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	if cfg.Interval == 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.AssetName == "" {
		cfg.AssetName = "host-under-test"
	}
	cfg.Version = "test"
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHubOutage runs the agent against a real hub, stops the hub for a few
// rounds and starts it again on the same address: every result made must
// reach the hub exactly once, in its own round.
func TestHubOutage(t *testing.T) {
	dir := t.TempDir()
	h := startHub(t, dir, "127.0.0.1:0")
	addr := h.addr
	tok := h.agentToken()
	logs := &syncBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	}()
	c := &counterCheck{key: "counter"}
	a := newTestAgent(t, Config{APIURL: h.api(), Token: secret.New(tok), CAFile: h.ca, Interval: time.Second,
		Checks: []hostCheck{c}}, logs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	waitFor(t, "results on the hub", 20*time.Second, func() bool { return len(h.samples("sonde_counter_value")) >= 2 })
	h.stop()
	before := c.count()
	waitFor(t, "rounds during the outage", 20*time.Second, func() bool { return c.count() >= before+3 })
	if waiting, _ := a.spool.stats(); waiting == 0 {
		t.Error("nothing waits in the spool during the outage")
	}
	h2 := startHub(t, dir, addr)
	waitFor(t, "the spool to drain", 30*time.Second, func() bool {
		waiting, _ := a.spool.stats()
		return waiting == 0 && c.count() >= before+4
	})
	cancel()
	<-done
	done <- nil

	got := h2.samples("sonde_counter_value")
	c.mu.Lock()
	made := append([]int64(nil), c.made...)
	c.mu.Unlock()
	// Every value made reached the hub once: as many samples as values,
	// each value at its own timestamp.
	seen := map[string]bool{}
	for _, v := range got {
		if seen[v] {
			t.Errorf("value %s stored twice", v)
		}
		seen[v] = true
	}
	for _, n := range made {
		if !seen[fmt.Sprint(n)] {
			t.Errorf("value %d never reached the hub", n)
		}
	}
	if len(got) != len(made) {
		t.Errorf("hub holds %d samples, the agent made %d", len(got), len(made))
	}
	if !strings.Contains(logs.String(), "the hub takes results again") {
		t.Error("the recovery was not logged")
	}
}

// TestSetupAndDisabledChecks checks the start-up calls: the asset is
// created once and remembered, the linux collector and kind are set, and a
// check disabled on the hub is not collected.
func TestSetupAndDisabledChecks(t *testing.T) {
	h := startHub(t, t.TempDir(), "127.0.0.1:0")
	tok := h.agentToken()
	state := t.TempDir()
	logs := &syncBuffer{}
	on, off := &counterCheck{key: "on"}, &counterCheck{key: "off"}
	cfg := Config{APIURL: h.api(), Token: secret.New(tok), CAFile: h.ca, StateDir: state, Once: true,
		Checks: []hostCheck{on, off}}
	if err := newTestAgent(t, cfg, logs).Run(context.Background()); err != nil {
		t.Fatalf("first run: %v\n%s", err, logs)
	}
	idText, err := os.ReadFile(filepath.Join(state, assetIDFile))
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(string(idText))
	var asset struct {
		Kind       string `json:"kind"`
		Collectors []struct {
			Key string `json:"key"`
		} `json:"collectors"`
	}
	h.call("GET", "/api/v1/asset/"+id, nil, &asset)
	if asset.Kind != "Linux" || len(asset.Collectors) != 1 || asset.Collectors[0].Key != "linux" {
		t.Errorf("asset after start-up: %+v", asset)
	}
	// Disable "off" on the hub; the next run skips it and reuses the asset.
	if code := h.call("POST", "/api/v1/asset/"+id+"/collector/linux", map[string]any{
		"checks": map[string]any{"off": map[string]any{"interval": 60, "disabled": true}},
	}, nil); code != 204 {
		t.Fatalf("disabling a check: %d", code)
	}
	if err := newTestAgent(t, cfg, logs).Run(context.Background()); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if on.count() != 2 || off.count() != 1 {
		t.Errorf("collected on %d times and off %d times; want 2 and 1", on.count(), off.count())
	}
	var assets []struct{ ID int64 }
	h.call("GET", "/api/v1/container/1/assets", nil, &assets)
	if len(assets) != 1 {
		t.Errorf("%d assets on the hub, want 1", len(assets))
	}
	// A lost state directory finds the asset by its name.
	cfg.StateDir = t.TempDir()
	if err := newTestAgent(t, cfg, logs).Run(context.Background()); err != nil {
		t.Fatalf("run with a new state dir: %v", err)
	}
	h.call("GET", "/api/v1/container/1/assets", nil, &assets)
	if len(assets) != 1 {
		t.Errorf("%d assets on the hub after losing the state dir, want 1", len(assets))
	}
	if strings.Contains(logs.String(), tok) {
		t.Error("the token is in the log")
	}
}

// TestRefusesUnverifiableCertificate: a hub whose certificate does not
// chain to the given CA (or to the system's roots) gets nothing.
func TestRefusesUnverifiableCertificate(t *testing.T) {
	h := startHub(t, t.TempDir(), "127.0.0.1:0")
	other := startHub(t, t.TempDir(), "127.0.0.1:0")
	tok := h.agentToken()
	for name, ca := range map[string]string{"system roots": "", "another hub's CA": other.ca} {
		t.Run(name, func(t *testing.T) {
			c := &counterCheck{key: "counter"}
			a := newTestAgent(t, Config{APIURL: h.api(), Token: secret.New(tok), CAFile: ca, Once: true,
				Checks: []hostCheck{c}}, io.Discard)
			err := a.Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("Run = %v, want a certificate error", err)
			}
			if c.count() != 0 {
				t.Error("collected although the hub could not be verified")
			}
		})
	}
	if _, err := newClient("http://"+h.addr+"/api/v1", secret.New(tok), "", "t", time.Second); err == nil {
		t.Error("a plain http:// API URL was accepted")
	}
}

// TestRejectedTokenLogsOncePerInterval: a token the hub refuses gives one
// clear line per interval, and the results stay in the spool.
func TestRejectedTokenLogsOncePerInterval(t *testing.T) {
	h := startHub(t, t.TempDir(), "127.0.0.1:0")
	logs := &syncBuffer{}
	c := &counterCheck{key: "counter"}
	bad := strings.Repeat("ab", 16)
	a := newTestAgent(t, Config{APIURL: h.api(), Token: secret.New(bad), CAFile: h.ca, Interval: time.Second,
		Checks: []hostCheck{c}}, logs)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "five rounds", 20*time.Second, func() bool { return c.count() >= 5 })
	cancel()
	<-done
	lines := strings.Count(logs.String(), "the hub refuses the agent's token")
	if lines < 1 || lines > c.count() {
		t.Errorf("%d log lines about the token in %d rounds", lines, c.count())
	}
	if waiting, _ := a.spool.stats(); waiting < 4 {
		t.Errorf("only %d results kept while the token was refused", waiting)
	}
	if strings.Contains(logs.String(), bad) {
		t.Error("the token is in the log")
	}
}

// TestRefusedResultIsDropped: a result the hub refuses for good (400) is
// logged and dropped, and does not hold up the results behind it.
func TestRefusedResultIsDropped(t *testing.T) {
	h := startHub(t, t.TempDir(), "127.0.0.1:0")
	tok := h.agentToken()
	logs := &syncBuffer{}
	good := &counterCheck{key: "good"}
	a := newTestAgent(t, Config{APIURL: h.api(), Token: secret.New(tok), CAFile: h.ca, Once: true,
		Checks: []hostCheck{badCheck{}, good}}, logs)
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs)
	}
	if !strings.Contains(logs.String(), "the hub refused a result") {
		t.Errorf("the refusal was not logged:\n%s", logs)
	}
	if len(h.samples("sonde_counter_value")) != 1 {
		t.Error("the good result behind the refused one did not arrive")
	}
	if waiting, _ := a.spool.stats(); waiting != 0 {
		t.Errorf("%d results left in the spool", waiting)
	}
}

// badCheck makes a result the hub refuses: two items of one name.
type badCheck struct{}

func (badCheck) Key() string { return "bad" }
func (badCheck) Collect(context.Context) ([]model.Type, *model.CheckError) {
	item := model.Item{Name: "x", Metrics: []model.Metric{{Name: "v", Value: model.IntValue(1)}}}
	return []model.Type{{Name: "x", Items: []model.Item{item, item}}}, nil
}

// TestMisbehavingHub: garbage, 5xx, hanging answers and dropped
// connections never stop the agent collecting, and nothing is lost.
func TestMisbehavingHub(t *testing.T) {
	var mode sync.Map
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, _ := mode.Load("m")
		switch m {
		case "garbage":
			w.WriteHeader(200)
			w.Write([]byte("\x00\xffnot json at all"))
		case "5xx":
			http.Error(w, `{"error":"overloaded"}`, http.StatusServiceUnavailable)
		case "hang":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "close":
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
		}
	}))
	srv.Listener.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.EnableHTTP2 = false
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeCertPEM(t, caFile, srv.Certificate())

	for _, m := range []string{"garbage", "5xx", "hang", "close"} {
		t.Run(m, func(t *testing.T) {
			mode.Store("m", m)
			logs := &syncBuffer{}
			c := &counterCheck{key: "counter"}
			a := newTestAgent(t, Config{APIURL: srv.URL + "/api/v1", Token: secret.New(strings.Repeat("cd", 16)), CAFile: caFile,
				Interval: time.Second, AssetID: 7, HTTPTimeout: 500 * time.Millisecond, Checks: []hostCheck{c}}, logs)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			waitFor(t, "three rounds", 20*time.Second, func() bool { return c.count() >= 3 })
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			if waiting, _ := a.spool.stats(); waiting < c.count() {
				t.Errorf("%d results made, %d kept", c.count(), waiting)
			}
			if !strings.Contains(logs.String(), "cannot send results to the hub") {
				t.Errorf("the failure was not logged:\n%s", logs)
			}
		})
	}
}

type hostCheck = hostagent.Check

func writeCertPEM(t *testing.T, path string, cert *x509.Certificate) {
	t.Helper()
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRealChecksOnce runs the real host checks of this machine once
// against a real hub: every check arrives, none only as an error.
func TestRealChecksOnce(t *testing.T) {
	h := startHub(t, t.TempDir(), "127.0.0.1:0")
	tok := h.agentToken()
	state := t.TempDir()
	logs := &syncBuffer{}
	a := newTestAgent(t, Config{APIURL: h.api(), Token: secret.New(tok), CAFile: h.ca, StateDir: state, Once: true}, logs)
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs)
	}
	id, err := a.readAssetID()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range hostagent.Checks(hostagent.Options{}) {
		var res struct {
			Data  map[string]any `json:"data"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		code := h.call("GET", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/%s", id, c.Key()), nil, &res)
		if code != 200 {
			t.Errorf("check %s: %d", c.Key(), code)
			continue
		}
		if len(res.Data) == 0 {
			t.Errorf("check %s arrived without data (error %+v)", c.Key(), res.Error)
		}
	}
	if strings.Contains(logs.String(), tok) {
		t.Error("the token is in the log")
	}
}

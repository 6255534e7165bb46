package hub

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/tlsca"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// testHub is a real hub on 127.0.0.1 with TLS, and a client that trusts
// only its CA.
type testHub struct {
	t      *testing.T
	hub    *Hub
	url    string
	client *http.Client
	admin  string
	logs   *syncBuffer
	// stop shuts the hub down gracefully (once; cleanup calls it too).
	stop func()
}

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

func startHub(t *testing.T, dir string) *testHub {
	t.Helper()
	return startHubWith(t, Config{DataDir: dir})
}

// startHubWith starts a hub with cfg, filling in the listen address, the
// logger and the output.
func startHubWith(t *testing.T, cfg Config) *testHub {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	dir := cfg.DataDir
	if cfg.State == "" {
		cfg.State = stateFor(t, dir)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Out = logs
	h, err := New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("hub stopped with %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("hub did not stop")
			}
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hub log:\n%s", logs.String())
		}
		stop()
	})
	admin, err := os.ReadFile(filepath.Join(dir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return &testHub{
		t: t, hub: h, url: "https://" + h.Addr().String(), client: caClient(t, h.CAFile()),
		admin: strings.TrimSpace(string(admin)), logs: logs, stop: stop,
	}
}

func caClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no CA certificate in", caFile)
	}
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
}

// do sends a request and returns the status and body.
func (th *testHub) do(token, method, path string, body any) (int, []byte) {
	th.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			th.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, th.url+path, rd)
	if err != nil {
		th.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := th.client.Do(req)
	if err != nil {
		th.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		th.t.Fatal(err)
	}
	return resp.StatusCode, out
}

// must sends a request that must answer want, and decodes the JSON answer
// into v when v is not nil.
func (th *testHub) must(want int, token, method, path string, body, v any) []byte {
	th.t.Helper()
	code, out := th.do(token, method, path, body)
	if code != want {
		th.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, code, want, out)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			th.t.Fatalf("%s %s: decoding %s: %v", method, path, out, err)
		}
	}
	return out
}

func (th *testHub) newToken(container int64, perms ...string) string {
	th.t.Helper()
	var out struct {
		TokenID int64  `json:"tokenId"`
		Token   string `json:"token"`
	}
	th.must(201, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/token", container),
		map[string]any{"name": "test", "permissions": perms}, &out)
	return out.Token
}

func (th *testHub) newContainer(parent int64, name string) int64 {
	th.t.Helper()
	var out struct {
		ContainerID int64 `json:"containerId"`
	}
	th.must(201, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/container", parent), map[string]string{"name": name}, &out)
	return out.ContainerID
}

var agentPerms = []string{"READ", "API", "ASSET_MANAGEMENT", "INSERT_CHECK_DATA"}

// agentSetup does what an InfraSonar agent does at start-up and returns
// the asset id.
func (th *testHub) agentSetup(token, name string) int64 {
	th.t.Helper()
	var cid struct {
		ContainerID int64 `json:"containerId"`
	}
	th.must(200, token, "GET", "/api/v1/container/id", nil, &cid)
	var asset struct {
		AssetID int64 `json:"assetId"`
	}
	th.must(201, token, "POST", fmt.Sprintf("/api/v1/container/%d/asset", cid.ContainerID), map[string]string{"name": name}, &asset)
	th.must(204, token, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux", asset.AssetID), nil, nil)
	th.must(204, token, "PATCH", fmt.Sprintf("/api/v1/asset/%d/kind", asset.AssetID), map[string]string{"kind": "Linux"}, nil)
	return asset.AssetID
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot  %s\nwant %s", name, got, want)
	}
}

// TestAgentAPI walks the InfraSonar agent's calls and compares the answers
// an agent reads with golden files.
func TestAgentAPI(t *testing.T) {
	th := startHub(t, t.TempDir())
	tok := th.newToken(1, agentPerms...)

	golden(t, "container_id.json", th.must(200, tok, "GET", "/api/v1/container/id", nil, nil))
	golden(t, "create_asset.json", th.must(201, tok, "POST", "/api/v1/container/1/asset", `{"name":"web1"}`, nil))
	th.must(204, tok, "POST", "/api/v1/asset/1/collector/linux", nil, nil)
	th.must(204, tok, "POST", "/api/v1/asset/1/collector/linux", nil, nil) // idempotent
	th.must(204, tok, "PATCH", "/api/v1/asset/1/kind", `{"kind":"Linux"}`, nil)
	golden(t, "asset_fields.json", th.must(200, tok, "GET", "/api/v1/asset/1?fields=name,disabledChecks&collectors=key", nil, nil))
	golden(t, "asset_field_misspelt.json", th.must(200, tok, "GET", "/api/v1/asset/1?field=name&collectors=key", nil, nil))

	ts := time.Now().Unix()
	body := fmt.Sprintf(`{"version":"1.2.3","runtime":0.12,"timestamp":%d,
		"data":{"loadAvg":[{"name":"system","load1":0.5,"load5":1.0,"procs":42,"up":true,"kernel":"6.1"}]}}`, ts)
	th.must(204, tok, "POST", "/api/v1/asset/1/collector/linux/check/system", body, nil)

	var res struct {
		Timestamp int64           `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
		Error     any             `json:"error"`
		Version   string          `json:"version"`
	}
	th.must(200, tok, "GET", "/api/v1/asset/1/collector/linux/check/system", nil, &res)
	if res.Timestamp != ts || res.Version != "1.2.3" || res.Error != nil {
		t.Fatalf("result = %+v", res)
	}
	golden(t, "check_data.json", res.Data)

	// Error-only result with the agent's string severity.
	th.must(204, tok, "POST", "/api/v1/asset/1/collector/linux/check/disk",
		fmt.Sprintf(`{"timestamp":%d,"error":{"severity":"LOW","message":"no disks"}}`, ts), nil)
	var errRes struct {
		Data  json.RawMessage `json:"data"`
		Error struct{ Message, Severity string }
	}
	th.must(200, tok, "GET", "/api/v1/asset/1/collector/linux/check/disk", nil, &errRes)
	if string(errRes.Data) != "null" || errRes.Error.Message != "no disks" || errRes.Error.Severity != "LOW" {
		t.Fatalf("error result = %+v (%s)", errRes, errRes.Data)
	}

	// PromQL sees a posted float exactly as posted.
	th.must(204, tok, "POST", "/api/v1/asset/1/collector/linux/check/memory",
		fmt.Sprintf(`{"timestamp":%d,"data":{"memory":[{"name":"ram","percentUsed":42.5}]}}`, ts), nil)
	q := url.Values{"query": {`sonde_memory_percentUsed{item="ram"}`}, "time": {fmt.Sprint(ts)}}
	var vec struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	th.must(200, tok, "GET", "/prometheus/api/v1/query?"+q.Encode(), nil, &vec)
	if len(vec.Data.Result) != 1 || vec.Data.Result[0].Value[1] != "42.5" {
		t.Fatalf("query = %+v", vec)
	}
	m := vec.Data.Result[0].Metric
	for k, want := range map[string]string{"container_id": "1", "asset_id": "1", "asset": "web1", "collector": "linux", "check": "memory", "item": "ram"} {
		if m[k] != want {
			t.Errorf("label %s = %q, want %q", k, m[k], want)
		}
	}
	// A boolean becomes 0/1; a string is not a series.
	q = url.Values{"query": {`sonde_loadAvg_up`}, "time": {fmt.Sprint(ts)}}
	th.must(200, tok, "GET", "/prometheus/api/v1/query?"+q.Encode(), nil, &vec)
	if len(vec.Data.Result) != 1 || vec.Data.Result[0].Value[1] != "1" {
		t.Fatalf("bool query = %+v", vec)
	}
	if strings.Contains(th.logs.String(), tok) || strings.Contains(th.logs.String(), th.admin) {
		t.Fatal("a token reached the log")
	}
}

// TestBadInput sends what a careless or hostile client sends: each gets a
// clear 4xx and nothing is stored.
func TestBadInput(t *testing.T) {
	th := startHub(t, t.TempDir())
	tok := th.newToken(1, agentPerms...)
	asset := th.agentSetup(tok, "h1")
	ts := time.Now().Unix()
	check := fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset)
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	cases := []struct {
		name, method, path, body string
		token                    string
		want                     int
		msg                      string
	}{
		{"no token", "GET", "/api/v1/container/id", "", "-", 401, "Bearer"},
		{"bad token", "GET", "/api/v1/container/id", "", "0123456789abcdef0123456789abcdef", 401, "not valid"},
		{"malformed token", "GET", "/api/v1/container/id", "", "x", 401, "not valid"},
		{"malformed json", "POST", check, `{"data":`, "", 400, "JSON"},
		{"wrong type", "POST", check, `{"data":[]}`, "", 400, "expected an object"},
		{"NaN", "POST", check, fmt.Sprintf(`{"timestamp":%d,"data":{"a":[{"name":"x","v":NaN}]}}`, ts), "", 400, "malformed JSON"},
		{"huge number", "POST", check, fmt.Sprintf(`{"timestamp":%d,"data":{"a":[{"name":"x","v":1e400}]}}`, ts), "", 400, "out of range"},
		{"future", "POST", check, fmt.Sprintf(`{"timestamp":%d,"data":{"a":[{"name":"x","v":1}]}}`, ts+86400), "", 400, "future"},
		{"duplicate item", "POST", check, fmt.Sprintf(`{"timestamp":%d,"data":{"a":[{"name":"x","v":1},{"name":"x","v":2}]}}`, ts), "", 400, "unique"},
		{"type change", "POST", check, fmt.Sprintf(`{"timestamp":%d,"data":{"a":[{"name":"x","v":1},{"name":"y","v":"s"}]}}`, ts), "", 400, "keeps its type"},
		{"deep nesting", "POST", check, `{"x":` + deep + `,"data":{}}`, "", 400, "nested"},
		{"no data", "POST", check, `{"version":"1"}`, "", 400, "needs data"},
		{"huge body", "POST", check, `{"data":{"a":[{"name":"` + strings.Repeat("x", 600_000) + `"}]}}`, "", 413, "larger"},
		{"collector missing", "POST", fmt.Sprintf("/api/v1/asset/%d/collector/snmp/check/x", asset), `{"data":{}}`, "", 409, "not on asset"},
		{"bad asset id", "GET", "/api/v1/asset/abc", "", "", 400, "positive integer"},
		{"unknown asset", "GET", "/api/v1/asset/999", "", "", 404, "not found"},
		{"unknown field (management)", "POST", "/api/v1/container/1/container", `{"name":"x","extra":1}`, "admin", 400, "unknown field"},
		{"unknown permission", "POST", "/api/v1/container/1/token", `{"name":"x","permissions":["ROOT"]}`, "admin", 400, "unknown permission"},
		{"grant more than held", "POST", "/api/v1/container/1/token", `{"name":"x","permissions":["CONTAINER_ADMIN"]}`, "", 403, "lacks"},
		{"interval too short", "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux", asset), `{"checks":{"cpu":{"interval":1}}}`, "admin", 400, "interval"},
		{"config not object", "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux", asset), `{"config":[1]}`, "admin", 400, "object"},
		{"checks need CHECK_MANAGEMENT", "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux", asset), `{"checks":{"cpu":{"interval":60}}}`, "", 403, "CHECK_MANAGEMENT"},
		{"unknown route", "GET", "/api/v1/nothing", "", "", 404, "no such route"},
		{"wrong method", "PUT", "/api/v1/container/1", "", "", 405, "method not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tk := tok
			switch c.token {
			case "-":
				tk = ""
			case "admin":
				tk = th.admin
			case "":
			default:
				tk = c.token
			}
			var body any
			if c.body != "" {
				body = c.body
			}
			code, out := th.do(tk, c.method, c.path, body)
			if code != c.want || !strings.Contains(string(out), c.msg) {
				t.Fatalf("status %d body %s; want %d containing %q", code, out, c.want, c.msg)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(out, &e); err != nil || e.Error == "" {
				t.Fatalf("error body is not {\"error\":…}: %s", out)
			}
		})
	}
	// Nothing half-written: no result exists for the rejected posts.
	th.must(404, tok, "GET", check, nil, nil)
}

// TestPlainHTTPGetsNoData sends plain HTTP to the HTTPS port.
func TestPlainHTTPGetsNoData(t *testing.T) {
	th := startHub(t, t.TempDir())
	conn, err := net.DialTimeout("tcp", th.hub.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /api/v1/container/id HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", th.admin)
	out, _ := io.ReadAll(conn)
	if strings.Contains(string(out), "containerId") || strings.Contains(string(out), "200 OK") {
		t.Fatalf("plain HTTP got data: %s", out)
	}
	// And a TLS 1.1 client is refused.
	c, err := tls.Dial("tcp", th.hub.Addr().String(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}) //nolint:gosec // the test checks the refusal
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

func TestHealthAndFiles(t *testing.T) {
	dir := t.TempDir()
	th := startHub(t, dir)
	code, out := th.do("", "GET", "/healthz", nil)
	if code != 200 || !strings.Contains(string(out), "ok") {
		t.Fatalf("healthz: %d %s", code, out)
	}
	files := []string{AdminTokenFile, "tls/ca.key", "tls/server.key", "state.db"}
	if testPG != nil {
		files = files[:3] // the state is in PostgreSQL
	}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if len(th.admin) != 32 {
		t.Fatalf("admin token %d characters", len(th.admin))
	}
	if !strings.Contains(th.logs.String(), AdminTokenFile) || strings.Contains(th.logs.String(), th.admin) {
		t.Fatal("the hub must say where the admin token is, never what it is")
	}
	// /metrics needs a root-container token.
	code, out = th.do(th.admin, "GET", "/metrics", nil)
	if code != 200 || !strings.Contains(string(out), "sonde_hub_check_results_total") && !strings.Contains(string(out), "go_goroutines") {
		t.Fatalf("metrics: %d %.200s", code, out)
	}
	child := th.newContainer(1, "customer")
	code, _ = th.do(th.newToken(child, "READ", "API"), "GET", "/metrics", nil)
	if code != 403 {
		t.Fatalf("metrics with a customer token: %d", code)
	}
}

// TestOperatorCertificate runs the hub on a certificate the operator gives
// (--tls-cert/--tls-key) and checks extra SANs (--tls-san) on its own one.
func TestOperatorCertificate(t *testing.T) {
	opDir := t.TempDir()
	ca, _, err := tlsca.LoadOrCreate(opDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.EnsureServerCert(opDir, []string{"localhost", "127.0.0.1"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	th := startHubWith(t, Config{DataDir: dir,
		TLSCert: filepath.Join(opDir, tlsca.ServerCertFile), TLSKey: filepath.Join(opDir, tlsca.ServerKeyFile)})
	th.client = caClient(t, filepath.Join(opDir, tlsca.CACertFile))
	th.must(200, th.admin, "GET", "/api/v1/container/id", nil, nil)
	if _, err := os.Stat(filepath.Join(dir, "tls", tlsca.CAKeyFile)); err == nil {
		t.Error("the hub created its own CA although the operator gave a certificate")
	}

	th2 := startHubWith(t, Config{DataDir: t.TempDir(), TLSSANs: []string{"hub.example.test", "192.0.2.7"}})
	conn, err := tls.Dial("tcp", th2.hub.Addr().String(), &tls.Config{ServerName: "hub.example.test", RootCAs: th2.client.Transport.(*http.Transport).TLSClientConfig.RootCAs})
	if err != nil {
		t.Fatalf("the certificate does not name --tls-san hub.example.test: %v", err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if err := leaf.VerifyHostname("192.0.2.7"); err != nil {
		t.Errorf("the certificate does not name --tls-san 192.0.2.7: %v", err)
	}
	if _, err := New(context.Background(), Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", TLSSANs: []string{"bad name!"}}); err == nil {
		t.Error("a bad --tls-san was accepted")
	}
	if _, err := New(context.Background(), Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", TLSCert: "x"}); err == nil {
		t.Error("--tls-cert without --tls-key was accepted")
	}
}

package appliance

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hub"
	"github.com/sonde-monitoring/sonde/internal/testutil"
)

// TestMain lets the test binary run as a hub or an appliance child process,
// which the crash test kills with SIGKILL.
func TestMain(m *testing.M) {
	switch os.Getenv("SONDE_CRASH_ROLE") {
	case "hub":
		crashChildHub()
		return
	case "appliance":
		crashChildAppliance()
		return
	}
	os.Exit(m.Run())
}

func childContext() context.Context {
	ctx, _ := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	return ctx
}

func crashChildHub() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := childContext()
	h, err := hub.New(ctx, hub.Config{
		DataDir: os.Getenv("SONDE_CRASH_DIR"), Listen: os.Getenv("SONDE_CRASH_LISTEN"),
		StreamListen: os.Getenv("SONDE_CRASH_STREAM"), Heartbeat: time.Second, Logger: log,
		// Several hubs (twohubs_test.go): one PostgreSQL, one TSDB.
		State: os.Getenv("SONDE_CRASH_STATE"), TSDBRemoteWrite: os.Getenv("SONDE_CRASH_TSDB_WRITE"),
		TSDBQuery: os.Getenv("SONDE_CRASH_TSDB_QUERY"), AllowPrivateServices: os.Getenv("SONDE_CRASH_PRIVATE_SERVICES") != "",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		os.Exit(1)
	}
	if err := h.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "hub:", err)
		os.Exit(1)
	}
}

func crashChildAppliance() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := Open(Config{
		DataDir: os.Getenv("SONDE_CRASH_DIR"), Hub: os.Getenv("SONDE_CRASH_STREAM"), TokenFile: os.Getenv("SONDE_CRASH_TOKEN"),
		CAFile: os.Getenv("SONDE_CRASH_CA"), Name: "crash", Version: "test", Logger: log,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "appliance:", err)
		os.Exit(1)
	}
	if err := a.Run(childContext()); err != nil {
		fmt.Fprintln(os.Stderr, "appliance:", err)
		os.Exit(1)
	}
	a.Close()
}

// child is a hub or appliance process of the crash test.
type child struct {
	cmd *exec.Cmd
	log string
}

func startChild(t *testing.T, role, logFile string, env ...string) *child {
	t.Helper()
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "SONDE_CRASH_ROLE="+role)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, log: logFile}
	t.Cleanup(func() { c.kill() })
	return c
}

func (c *child) kill() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Kill()
		c.cmd.Wait()
	}
}

func (c *child) term(t *testing.T) {
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Error("child did not stop on SIGTERM")
		c.kill()
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var bufferedRE = regexp.MustCompile(`msg="result buffered" seq=\d+ asset_id=(\d+) check_id=\d+ ts=(\d+)`)

// TestCrash runs a hub and an appliance as processes, SIGKILLs the hub
// mid-run and restarts it, then SIGKILLs the appliance and restarts it:
// every result the appliance buffered reaches the hub exactly once.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about a minute")
	}
	dir := t.TempDir()
	hubDir, appDir := filepath.Join(dir, "hub"), filepath.Join(dir, "appliance")
	httpsAddr, streamAddr := freePort(t), freePort(t)
	hubEnv := []string{"SONDE_CRASH_DIR=" + hubDir, "SONDE_CRASH_LISTEN=" + httpsAddr, "SONDE_CRASH_STREAM=" + streamAddr}
	hubLog, appLog := filepath.Join(dir, "hub.log"), filepath.Join(dir, "appliance.log")
	defer func() {
		if t.Failed() {
			for _, f := range []string{hubLog, appLog} {
				b, _ := os.ReadFile(f)
				t.Logf("%s:\n%s", f, tail(string(b), 80))
			}
		}
	}()
	h := startChild(t, "hub", hubLog, hubEnv...)
	client := waitHub(t, hubDir, httpsAddr)
	admin, _ := os.ReadFile(filepath.Join(hubDir, hub.AdminTokenFile))
	api := &apiClient{t: t, c: client, base: "https://" + httpsAddr, token: strings.TrimSpace(string(admin))}

	var tok struct {
		Token string `json:"token"`
	}
	api.must(201, "POST", "/api/v1/container/1/token", map[string]any{"name": "appliance", "permissions": []string{"CORE_CONNECT"}}, &tok)
	tokFile := filepath.Join(dir, "token")
	os.WriteFile(tokFile, []byte(tok.Token), 0o600)
	port, _ := listenPort(t)
	var assets []int64
	for i := range 4 {
		var out struct {
			AssetID int64 `json:"assetId"`
		}
		api.must(201, "POST", "/api/v1/container/1/asset", map[string]string{"name": fmt.Sprintf("a%d", i)}, &out)
		api.must(204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/tcp", out.AssetID), map[string]any{
			"config": map[string]any{"address": "127.0.0.1", "ports": []int{port}},
			"checks": map[string]any{"tcp": map[string]any{"interval": 5}},
		}, nil)
		assets = append(assets, out.AssetID)
	}
	appEnv := []string{"SONDE_CRASH_DIR=" + appDir, "SONDE_CRASH_STREAM=" + streamAddr, "SONDE_CRASH_TOKEN=" + tokFile,
		"SONDE_CRASH_CA=" + filepath.Join(hubDir, "tls", "ca.crt")}
	app := startChild(t, "appliance", appLog, appEnv...)

	produced := func() int { return len(readProduced(t, appLog)) }
	testutil.WaitFor(t, "first results", 30*time.Second, func() bool { return produced() >= 4 })
	time.Sleep(3 * time.Second)
	h.kill() // the hub dies mid-run
	before := produced()
	testutil.WaitFor(t, "results made while the hub is down", 30*time.Second, func() bool { return produced() >= before+4 })
	h = startChild(t, "hub", hubLog, hubEnv...)
	waitHub(t, hubDir, httpsAddr)
	time.Sleep(3 * time.Second)
	app.kill() // the appliance dies mid-run
	time.Sleep(2 * time.Second)
	app = startChild(t, "appliance", appLog, appEnv...)
	before = produced()
	testutil.WaitFor(t, "results after the appliance's restart", 30*time.Second, func() bool { return produced() >= before+4 })

	// Everything buffered reaches the hub once.
	want := readProduced(t, appLog)
	var got map[string]bool
	testutil.WaitFor(t, "every result on the hub", 40*time.Second, func() bool {
		got = api.stored(assets)
		for k := range want {
			if !got[k] {
				return false
			}
		}
		return true
	})
	app.term(t)
	h.term(t)
	for k := range got {
		if !want[k] {
			t.Errorf("the hub holds %s, which the appliance never buffered", k)
		}
	}
	if len(want) < 12 {
		t.Errorf("only %d results made: the test proved little", len(want))
	}
	t.Logf("%d results buffered by the appliance, %d stored by the hub", len(want), len(got))
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// readProduced returns "asset@ts" of every result the appliance logged as
// durably buffered.
func readProduced(t *testing.T, logFile string) map[string]bool {
	t.Helper()
	f, err := os.Open(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := bufferedRE.FindStringSubmatch(sc.Text()); m != nil {
			out[m[1]+"@"+m[2]] = true
		}
	}
	return out
}

type apiClient struct {
	t     *testing.T
	c     *http.Client
	base  string
	token string
}

func waitHub(t *testing.T, hubDir, addr string) *http.Client {
	t.Helper()
	var client *http.Client
	testutil.WaitFor(t, "the hub to listen", 30*time.Second, func() bool {
		pem, err := os.ReadFile(filepath.Join(hubDir, "tls", "ca.crt"))
		if err != nil {
			return false
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
		resp, err := client.Get("https://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return client
}

func (a *apiClient) must(want int, method, path string, body, out any) {
	a.t.Helper()
	h := &testutil.Hub{Addr: strings.TrimPrefix(a.base, "https://"), Admin: a.token, Client: a.c}
	h.SetT(a.t)
	h.Must(want, method, path, body, out)
}

// stored returns "asset@ts" of every tcp result stored for the assets.
func (a *apiClient) stored(assets []int64) map[string]bool {
	h := &testutil.Hub{Addr: strings.TrimPrefix(a.base, "https://"), Admin: a.token, Client: a.c}
	h.SetT(a.t)
	ids := make([]string, len(assets))
	for i, id := range assets {
		ids[i] = strconv.FormatInt(id, 10)
	}
	sort.Strings(ids)
	out := map[string]bool{}
	for labels, values := range h.Samples(fmt.Sprintf(`sonde_tcp_open{asset_id=~"%s"}`, strings.Join(ids, "|"))) {
		m := regexp.MustCompile(`asset_id:(\d+)`).FindStringSubmatch(labels)
		if m == nil {
			continue
		}
		for _, v := range values {
			out[fmt.Sprintf("%s@%d", m[1], int64(v[0].(float64)))] = true
		}
	}
	return out
}

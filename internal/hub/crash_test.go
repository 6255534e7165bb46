package hub

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/testutil/pgtest"
)

const crashEnv = "SONDE_TEST_CRASH_HUB_DIR"

// TestMain doubles as the hub process that TestCrash kills: with crashEnv
// set, the test binary runs a hub instead of the tests.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashHub(dir)
		return
	}
	// With SONDE_STATE_BACKEND=postgres the hubs of these tests keep
	// their state in a real PostgreSQL server (`make test` runs both).
	if os.Getenv("SONDE_STATE_BACKEND") == "postgres" {
		var err error
		testPG, err = pgtest.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting PostgreSQL for the hub tests:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if testPG != nil {
		testPG.Stop()
	}
	os.Exit(code)
}

// testPG is the PostgreSQL server of a SONDE_STATE_BACKEND=postgres run;
// pgDatabases gives each data directory its database, so that a hub
// restarted on the same directory finds its state.
var (
	testPG      *pgtest.Server
	pgMu        sync.Mutex
	pgDatabases = map[string]string{}
)

func stateFor(t *testing.T, dir string) string {
	if testPG == nil || dir == "" {
		return ""
	}
	pgMu.Lock()
	defer pgMu.Unlock()
	if u, ok := pgDatabases[dir]; ok {
		return u
	}
	u := testPG.Database(t)
	pgDatabases[dir] = u
	return u
}

func crashHub(dir string) {
	h, err := New(context.Background(), Config{DataDir: dir, Listen: "127.0.0.1:0", State: os.Getenv(crashEnv + "_STATE")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash hub:", err)
		os.Exit(1)
	}
	if err := writeSecretFile(filepath.Join(dir, "addr"), []byte(h.Addr().String())); err != nil {
		fmt.Fprintln(os.Stderr, "crash hub:", err)
		os.Exit(1)
	}
	_ = h.Serve(context.Background()) // until SIGKILL
}

// TestCrash kills a hub with SIGKILL right after it answered 204 and checks
// that the result is in both stores after a restart.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashEnv+"="+dir, crashEnv+"_STATE="+stateFor(t, dir))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	var addr []byte
	for deadline := time.Now().Add(60 * time.Second); ; {
		var err error
		if addr, err = os.ReadFile(filepath.Join(dir, "addr")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hub process did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	admin, err := os.ReadFile(filepath.Join(dir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	th := &testHub{t: t, url: "https://" + string(addr), client: caClient(t, filepath.Join(dir, "tls", "ca.crt")), admin: strings.TrimSpace(string(admin))}
	asset := th.agentSetup(th.admin, "crash")
	ts := time.Now().Unix()
	th.must(204, th.admin, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/memory", asset),
		fmt.Sprintf(`{"timestamp":%d,"data":{"memory":[{"name":"ram","percentUsed":42.5}]}}`, ts), nil)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true

	th2 := startHub(t, dir)
	var res struct {
		Timestamp int64 `json:"timestamp"`
		Data      any   `json:"data"`
	}
	th2.must(200, th2.admin, "GET", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/memory", asset), nil, &res)
	if res.Timestamp != ts || res.Data == nil {
		t.Fatalf("result after SIGKILL: %+v", res)
	}
	q := url.Values{"query": {`sonde_memory_percentUsed`}, "time": {fmt.Sprint(ts)}}
	out := th2.must(200, th2.admin, "GET", "/prometheus/api/v1/query?"+q.Encode(), nil, nil)
	if !strings.Contains(string(out), `"42.5"`) {
		t.Fatalf("sample lost after SIGKILL: %s", out)
	}
}

// TestConcurrentPosts has two agents post the same check at once, each its
// own values for the same timestamps. Every post is stored (204) or refused
// as a conflict (409); each timestamp holds one agent's whole result, never
// a mix of the two; and the latest result in the state store is the one the
// time series hold for that time.
func TestConcurrentPosts(t *testing.T) {
	th := startHub(t, t.TempDir())
	tok := th.newToken(1, agentPerms...)
	asset := th.agentSetup(tok, "twins")
	base := time.Now().Unix() - 100
	var wg sync.WaitGroup
	for agent := 1; agent <= 2; agent++ {
		wg.Add(1)
		go func(agent int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				ts := base + int64(i)
				code, out := th.do(tok, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset),
					fmt.Sprintf(`{"timestamp":%d,"data":{"cpu":[{"name":"total","a":%d,"b":%d}]}}`, ts, agent, agent*10))
				if code != 204 && code != 409 {
					t.Errorf("post: %d %s", code, out)
				}
			}
		}(agent)
	}
	wg.Wait()
	var res struct {
		Timestamp int64 `json:"timestamp"`
		Data      struct {
			CPU []struct {
				A int `json:"a"`
				B int `json:"b"`
			} `json:"cpu"`
		} `json:"data"`
	}
	th.must(200, tok, "GET", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset), nil, &res)
	if res.Timestamp != base+24 || len(res.Data.CPU) != 1 || res.Data.CPU[0].B != 10*res.Data.CPU[0].A {
		t.Fatalf("latest result = %+v", res)
	}
	q := url.Values{"query": {`sonde_cpu_b / sonde_cpu_a`}, "start": {fmt.Sprint(base)}, "end": {fmt.Sprint(base + 24)}, "step": {"1"}}
	var mat struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	th.must(200, tok, "GET", "/prometheus/api/v1/query_range?"+q.Encode(), nil, &mat)
	if len(mat.Data.Result) != 1 || len(mat.Data.Result[0].Values) != 25 {
		t.Fatalf("range = %+v", mat)
	}
	for _, v := range mat.Data.Result[0].Values {
		if v[1] != "10" {
			t.Errorf("at %v the series mix two results: b/a = %v", v[0], v[1])
		}
	}
	q = url.Values{"query": {`sonde_cpu_a`}, "time": {fmt.Sprint(base + 24)}}
	out := th.must(200, tok, "GET", "/prometheus/api/v1/query?"+q.Encode(), nil, nil)
	if want := fmt.Sprintf(`"%d"]`, res.Data.CPU[0].A); !strings.Contains(string(out), want) {
		t.Errorf("state says agent %d, time series %s", res.Data.CPU[0].A, out)
	}
}

package appliance

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hub"
	"github.com/sonde-monitoring/sonde/internal/testutil"
	"github.com/sonde-monitoring/sonde/internal/testutil/pgtest"
	"github.com/sonde-monitoring/sonde/internal/testutil/tsdbtest"
	"github.com/sonde-monitoring/sonde/internal/tlsca"
)

// TestTwoHubs runs two hub processes on one PostgreSQL and one Prometheus
// (Debian's, started here), with an appliance that knows both:
//   - an asset made through the hub the appliance is not connected to
//     reaches the appliance within 2 s;
//   - a service check (run by the hubs) runs once per interval, not once
//     per hub: the port it probes counts the connections;
//   - the hub holding the appliance's stream and the cluster's work is
//     killed with SIGKILL: the appliance is on the other hub within
//     seconds, the other hub takes the work over within 30 s, and no
//     result the appliance made is lost.
func TestTwoHubs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about a minute and a half")
	}
	pgtest.Require(t)
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	dsn := pg.Database(t)
	tsdb := tsdbtest.Start(t, tsdbtest.Prometheus)

	dir := t.TempDir()
	dirA, dirB := filepath.Join(dir, "hubA"), filepath.Join(dir, "hubB")
	httpsA, streamA, httpsB, streamB := freePort(t), freePort(t), freePort(t), freePort(t)
	logA, logB := filepath.Join(dir, "hubA.log"), filepath.Join(dir, "hubB.log")
	appLogs := &testutil.SyncBuffer{}
	defer func() {
		if t.Failed() {
			for _, f := range []string{logA, logB} {
				b, _ := os.ReadFile(f)
				t.Logf("%s:\n%s", f, tail(string(b), 60))
			}
			t.Logf("appliance log:\n%s", tail(appLogs.String(), 60))
		}
	}()
	shared := []string{"SONDE_CRASH_STATE=" + dsn, "SONDE_CRASH_TSDB_WRITE=" + tsdb.WriteURL.String(),
		"SONDE_CRASH_TSDB_QUERY=" + tsdb.QueryURL.String(), "SONDE_CRASH_PRIVATE_SERVICES=1"}
	hubA := startChild(t, "hub", logA, append(shared, "SONDE_CRASH_DIR="+dirA, "SONDE_CRASH_LISTEN="+httpsA, "SONDE_CRASH_STREAM="+streamA)...)
	clientA := waitHub(t, dirA, httpsA)
	// The second hub shares the first one's CA, secret key and (for the
	// test) admin token: an operator copies them.
	for _, f := range []string{filepath.Join("tls", tlsca.CACertFile), filepath.Join("tls", tlsca.CAKeyFile), hub.SecretKeyFile, hub.AdminTokenFile} {
		b, err := os.ReadFile(filepath.Join(dirA, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dirB, f)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startChild(t, "hub", logB, append(shared, "SONDE_CRASH_DIR="+dirB, "SONDE_CRASH_LISTEN="+httpsB, "SONDE_CRASH_STREAM="+streamB)...)
	clientB := waitHub(t, dirB, httpsB)
	admin, _ := os.ReadFile(filepath.Join(dirA, hub.AdminTokenFile))
	apiA := &apiClient{t: t, c: clientA, base: "https://" + httpsA, token: strings.TrimSpace(string(admin))}
	apiB := &apiClient{t: t, c: clientB, base: "https://" + httpsB, token: strings.TrimSpace(string(admin))}

	// The service check's target counts the connections it gets.
	svc := startCounter(t)
	var svcAsset struct {
		AssetID int64 `json:"assetId"`
	}
	apiB.must(201, "POST", "/api/v1/container/1/asset", map[string]string{"name": "service"}, &svcAsset)
	apiB.must(204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/tcp", svcAsset.AssetID), map[string]any{
		"runBy":  "hub",
		"config": map[string]any{"address": "127.0.0.1", "ports": []int{svc.port()}},
		"checks": map[string]any{"tcp": map[string]any{"interval": 30}},
	}, nil)

	var tok struct {
		Token string `json:"token"`
	}
	apiA.must(201, "POST", "/api/v1/container/1/token", map[string]any{"name": "appliance", "permissions": []string{"CORE_CONNECT"}}, &tok)
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(tok.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	port, _ := listenPort(t)
	var assets []int64
	for i := range 3 {
		var out struct {
			AssetID int64 `json:"assetId"`
		}
		apiA.must(201, "POST", "/api/v1/container/1/asset", map[string]string{"name": fmt.Sprintf("a%d", i)}, &out)
		apiA.must(204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/tcp", out.AssetID), map[string]any{
			"config": map[string]any{"address": "127.0.0.1", "ports": []int{port}},
			"checks": map[string]any{"tcp": map[string]any{"interval": 5}},
		}, nil)
		assets = append(assets, out.AssetID)
	}
	a, err := Open(Config{
		DataDir: filepath.Join(dir, "appliance"), Hubs: []string{streamA, streamB}, TokenFile: tokFile,
		CAFile: filepath.Join(dirA, "tls", tlsca.CACertFile), Name: "probe-1", Version: "test",
		Logger: slog.New(slog.NewTextHandler(appLogs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	testutil.WaitFor(t, "the stream to hub A", 15*time.Second, func() bool { return a.Status().Hub == streamA })

	// A change made on hub B reaches the appliance connected to hub A.
	var moved struct {
		AssetID int64 `json:"assetId"`
	}
	apiB.must(201, "POST", "/api/v1/container/1/asset", map[string]string{"name": "made-on-b"}, &moved)
	made := time.Now()
	apiB.must(204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/tcp", moved.AssetID), map[string]any{
		"config": map[string]any{"address": "127.0.0.1", "ports": []int{port}},
		"checks": map[string]any{"tcp": map[string]any{"interval": 5}},
	}, nil)
	got := fmt.Sprintf(`msg="the hub changed an asset" asset_id=%d`, moved.AssetID)
	testutil.WaitFor(t, "the asset made on hub B at the appliance on hub A", 10*time.Second, func() bool {
		return strings.Contains(appLogs.String(), got)
	})
	if d := time.Since(made); d > 2*time.Second {
		t.Errorf("the change took %v to reach an appliance on the other hub, more than 2 s", d)
	} else {
		t.Logf("a change on hub B reached the appliance on hub A in %v", d.Round(time.Millisecond))
	}
	assets = append(assets, moved.AssetID)

	// The service check runs once per interval across both hubs.
	testutil.WaitFor(t, "the service check's first run", 40*time.Second, func() bool { return len(svc.slots()) >= 1 })
	produced := func() map[string]bool { return producedFrom(appLogs.String(), assets) }
	testutil.WaitFor(t, "results through hub A", 30*time.Second, func() bool { return len(apiA.stored(assets)) >= 4 })

	// Hub A, which holds the stream and (started first) the cluster's
	// work, dies.
	hubA.kill()
	killed := time.Now()
	testutil.WaitFor(t, "the appliance on hub B", 15*time.Second, func() bool { return a.Status().Hub == streamB })
	t.Logf("the appliance was on hub B %v after hub A was killed", time.Since(killed).Round(time.Millisecond))
	for _, lease := range []string{"health", "outbox", "services", "housekeeping"} {
		testutil.WaitFor(t, "hub B to take over "+lease, 30*time.Second, func() bool {
			return leaseTaken(t, logB, lease)
		})
	}
	t.Logf("hub B did all the cluster's work %v after hub A was killed", time.Since(killed).Round(time.Millisecond))

	// Results keep coming through hub B; none is lost.
	before := len(produced())
	testutil.WaitFor(t, "results after the failover", 30*time.Second, func() bool { return len(produced()) >= before+4 })
	// And the service check runs on, still once per interval.
	firstSlots := len(svc.slots())
	testutil.WaitFor(t, "the service check after the failover", 45*time.Second, func() bool { return len(svc.slots()) > firstSlots })
	want := produced()
	var stored map[string]bool
	testutil.WaitFor(t, "every result stored", 40*time.Second, func() bool {
		stored = apiB.stored(assets)
		for k := range want {
			if !stored[k] {
				return false
			}
		}
		return true
	})
	for k := range stored {
		if !want[k] {
			t.Errorf("the hubs hold %s, which the appliance never made", k)
		}
	}
	for slot, n := range svc.slots() {
		if n != 1 {
			t.Errorf("the service check ran %d times in the 30 s slot starting %s, want once", n, time.Unix(slot, 0).Format(time.TimeOnly))
		}
	}
	t.Logf("%d results made, %d stored; service check runs by slot: %v", len(want), len(stored), svc.slots())
}

// leaseTaken says whether the hub's log shows it took the lease.
func leaseTaken(t *testing.T, logFile, lease string) bool {
	t.Helper()
	f, err := os.Open(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, `msg="this hub now does the cluster's work"`) && strings.Contains(l, "lease="+lease+" ") {
			return true
		}
	}
	return false
}

// producedFrom returns "asset@ts" of every result of the assets the
// appliance logged as buffered.
func producedFrom(logs string, assets []int64) map[string]bool {
	ids := map[string]bool{}
	for _, id := range assets {
		ids[fmt.Sprint(id)] = true
	}
	out := map[string]bool{}
	for _, m := range bufferedRE.FindAllStringSubmatch(logs, -1) {
		if ids[m[1]] {
			out[m[1]+"@"+m[2]] = true
		}
	}
	return out
}

// counter is a TCP port on loopback that counts the connections it gets,
// by 30-second slot of the wall clock (the service check's interval).
type counter struct {
	ln net.Listener
	mu sync.Mutex
	by map[int64]int
}

func startCounter(t *testing.T) *counter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{ln: ln, by: map[int64]int{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			slot := time.Now().Unix() / 30 * 30
			c.mu.Lock()
			c.by[slot]++
			c.mu.Unlock()
			conn.Close()
		}
	}()
	return c
}

func (c *counter) port() int { return c.ln.Addr().(*net.TCPAddr).Port }

func (c *counter) slots() map[int64]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int64]int, len(c.by))
	for k, v := range c.by {
		out[k] = v
	}
	return out
}

package appliance

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hub"
	"github.com/sonde-monitoring/sonde/internal/testutil"
)

// rig is a hub with its appliance stream and the files an appliance needs.
type rig struct {
	t     *testing.T
	hub   *testutil.Hub
	token string // CORE_CONNECT, in the root container
	tokf  string
}

func newRig(t *testing.T, cfg hub.Config) *rig {
	t.Helper()
	if cfg.StreamListen == "" {
		cfg.StreamListen = "127.0.0.1:0"
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = time.Second
	}
	h := testutil.StartHub(t, cfg)
	r := &rig{t: t, hub: h, token: h.Token(1, "CORE_CONNECT")}
	r.tokf = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(r.tokf, []byte(r.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// appliance opens an appliance for the rig's hub with its data in dir.
func (r *rig) appliance(dir, name string, logs *testutil.SyncBuffer) *Appliance {
	r.t.Helper()
	a, err := Open(Config{
		DataDir: dir, Hub: r.hub.Stream, TokenFile: r.tokf, CAFile: r.hub.CA, Name: name, Version: "test",
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

// start runs a on its own; the returned function stops it and waits.
func start(t *testing.T, a *Appliance) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("appliance Run: %v", err)
			}
		case <-time.After(60 * time.Second):
			buf := make([]byte, 1<<20)
			t.Errorf("the appliance did not stop; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		}
		a.Close()
	}
	t.Cleanup(stop)
	return stop
}

// tcpAsset creates an asset in the root container with a tcp check on
// ports, every interval seconds, and returns its id.
func (r *rig) tcpAsset(name string, interval int, ports ...int) int64 {
	r.t.Helper()
	var out struct {
		AssetID int64 `json:"assetId"`
	}
	r.hub.Must(201, "POST", "/api/v1/container/1/asset", map[string]string{"name": name}, &out)
	r.setTCP(out.AssetID, interval, ports...)
	return out.AssetID
}

func (r *rig) setTCP(asset int64, interval int, ports ...int) {
	r.t.Helper()
	r.hub.Must(204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/tcp", asset), map[string]any{
		"config": map[string]any{"address": "127.0.0.1", "ports": ports},
		"checks": map[string]any{"tcp": map[string]any{"interval": interval}},
	}, nil)
}

func listenPort(t *testing.T) (int, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, ln
}

// TestEnrollAndProbe: the appliance enrolls with its token, reconnects with
// its client certificate, receives its asset, runs the tcp probe and the
// result reaches the hub's time-series store under collector "tcp". A
// configuration change made through the API reaches it within a second.
func TestEnrollAndProbe(t *testing.T) {
	r := newRig(t, hub.Config{})
	port, _ := listenPort(t)
	asset := r.tcpAsset("web", 5, port)
	dir := t.TempDir()
	logs := &testutil.SyncBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("appliance log:\n%s", logs)
		}
	}()
	a := r.appliance(dir, "probe-1", logs)
	start(t, a)

	sel := fmt.Sprintf(`sonde_tcp_open{asset_id="%d",collector="tcp",check="tcp",item="%d"}`, asset, port)
	testutil.WaitFor(t, "a tcp result on the hub", 30*time.Second, func() bool { return len(r.hub.Samples(sel)) == 1 })
	if !strings.Contains(logs.String(), "enrolled with the hub") {
		t.Error("no enrollment logged")
	}
	// The certificate is the identity now: the key is sealed, never plain.
	if _, err := os.Stat(filepath.Join(dir, certFile)); err != nil {
		t.Error(err)
	}
	key, err := os.ReadFile(filepath.Join(dir, keyFile))
	if err != nil || strings.Contains(string(key), "PRIVATE KEY") {
		t.Errorf("the private key is not sealed: %v", err)
	}

	// The appliance is listed with what it reports.
	var list []struct {
		ID        int64  `json:"id"`
		Name      string `json:"name"`
		Connected bool   `json:"connected"`
		Version   string `json:"version"`
		Assets    int    `json:"assets"`
		Probes    []struct {
			Key string `json:"key"`
		} `json:"probes"`
		Remote string `json:"remoteAddress"`
	}
	testutil.WaitFor(t, "the appliance's info", 10*time.Second, func() bool {
		r.hub.Must(200, "GET", "/api/v1/container/1/appliances", nil, &list)
		return len(list) == 1 && list[0].Version == "test"
	})
	if !list[0].Connected || list[0].Name != "probe-1" || list[0].Assets != 2 || len(list[0].Probes) == 0 || !strings.HasPrefix(list[0].Remote, "127.0.0.1:") {
		t.Errorf("appliance listed as %+v", list[0])
	}

	// A new port through the API reaches the appliance within a second.
	port2, _ := listenPort(t)
	r.setTCP(asset, 5, port, port2)
	testutil.WaitFor(t, "the configuration change", 2*time.Second, func() bool {
		return strings.Contains(logs.String(), "the hub changed an asset")
	})
	sel2 := fmt.Sprintf(`sonde_tcp_open{asset_id="%d",item="%d"}`, asset, port2)
	testutil.WaitFor(t, "a result for the new port", 15*time.Second, func() bool { return len(r.hub.Samples(sel2)) == 1 })

	// Revoked: the stream is closed and the certificate refused.
	r.hub.Must(204, "DELETE", fmt.Sprintf("/api/v1/appliance/%d", list[0].ID), nil, nil)
	testutil.WaitFor(t, "the refusal", 15*time.Second, func() bool {
		return strings.Contains(logs.String(), "this appliance was revoked on the hub")
	})
	r.hub.Must(200, "GET", "/api/v1/container/1/appliances", nil, &list)
	if list[0].Connected {
		t.Error("a revoked appliance is still connected")
	}
	// It stops probing and forgets the configuration.
	testutil.WaitFor(t, "the checks to stop", 10*time.Second, func() bool { return a.Status().Assets == 0 })
	if _, err := os.Stat(filepath.Join(dir, assetsFile)); !os.IsNotExist(err) {
		t.Errorf("the configuration of a revoked appliance is still on disk: %v", err)
	}

	// No secret in any file of either data directory, nor in any log.
	for _, root := range []string{dir, r.hub.Dir} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err == nil && strings.Contains(string(b), r.token) {
				t.Errorf("the token is in %s", path)
			}
			return nil
		})
	}
	for name, l := range map[string]string{"appliance": logs.String(), "hub": r.hub.Logs.String()} {
		if strings.Contains(l, r.token) {
			t.Errorf("the token is in the %s log", name)
		}
	}
}

// TestTokenAnnounceNeedsPermission: without --allow-token-announce the hub
// refuses InfraSonar's token-only announce, telling how to enroll.
func TestEnrollWithBadToken(t *testing.T) {
	r := newRig(t, hub.Config{})
	if err := os.WriteFile(r.tokf, []byte(strings.Repeat("0", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	a := r.appliance(t.TempDir(), "x", logs)
	defer a.Close()
	err := a.session(context.Background())
	if err == nil || !strings.Contains(err.Error(), "CORE_CONNECT") {
		t.Fatalf("session with an unknown token = %v", err)
	}
	// A token without CORE_CONNECT is refused alike.
	weak := r.hub.Token(1, "READ")
	os.WriteFile(r.tokf, []byte(weak), 0o600)
	if err := a.session(context.Background()); err == nil || !strings.Contains(err.Error(), "CORE_CONNECT") {
		t.Fatalf("session with a READ token = %v", err)
	}
}

// TestRunsFromLastConfiguration: an appliance that starts while the hub is
// away runs the checks of its last configuration (sealed on disk) and
// keeps the results until the hub is back.
func TestRunsFromLastConfiguration(t *testing.T) {
	hubDir := t.TempDir()
	streamAddr := freePort(t)
	r := newRig(t, hub.Config{DataDir: hubDir, StreamListen: streamAddr})
	port, _ := listenPort(t)
	asset := r.tcpAsset("web", 5, port)
	dir := t.TempDir()
	logs := &testutil.SyncBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("appliance log:\n%s", logs)
		}
	}()
	a := r.appliance(dir, "probe-1", logs)
	stop := start(t, a)
	// Two assets: web, and the appliance's own (its hardening audit).
	testutil.WaitFor(t, "the assets", 15*time.Second, func() bool { return a.Status().Assets == 2 })
	stop()
	httpsAddr := r.hub.Addr
	r.hub.Stop()

	// The hub is away: the appliance starts from what it knew.
	a = r.appliance(dir, "probe-1", logs)
	if st := a.Status(); st.Assets != 2 {
		t.Fatalf("after a restart without the hub the appliance serves %d assets, want 2", st.Assets)
	}
	start(t, a)
	testutil.WaitFor(t, "a result buffered while the hub is away", 20*time.Second, func() bool { return a.Status().Buffered > 0 })

	h := testutil.StartHub(t, hub.Config{DataDir: hubDir, Listen: httpsAddr, StreamListen: streamAddr, Heartbeat: time.Second})
	sel := fmt.Sprintf(`sonde_tcp_open{asset_id="%d"}`, asset)
	testutil.WaitFor(t, "the buffered result on the hub", 30*time.Second, func() bool {
		return len(h.Samples(sel)) == 1 && a.Status().Buffered == 0
	})
}

// TestCertificateRenewal: an appliance whose certificate nears its expiry
// gets a new one over its stream, for a new key. The hub accepts the
// certificate from before a renewal until the new one has been used (an
// appliance may die before it writes the new one), and refuses it after.
func TestCertificateRenewal(t *testing.T) {
	r := newRig(t, hub.Config{ApplianceCertValidity: 10 * time.Minute})
	dir := t.TempDir()
	logs := &testutil.SyncBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("appliance log:\n%s", logs)
		}
	}()
	renewals := func() int { return strings.Count(logs.String(), "renewed the appliance certificate") }
	// run connects once: a ten-minute certificate is always within its
	// renewal window, so every connection renews it.
	run := func(want int) {
		t.Helper()
		a := r.appliance(dir, "probe-1", logs)
		stop := start(t, a)
		testutil.WaitFor(t, "the renewal", 20*time.Second, func() bool { return renewals() >= want })
		stop()
	}
	read := func() (cert, key []byte) {
		cert, _ = os.ReadFile(filepath.Join(dir, certFile))
		key, _ = os.ReadFile(filepath.Join(dir, keyFile))
		return cert, key
	}
	put := func(cert, key []byte) {
		os.WriteFile(filepath.Join(dir, certFile), cert, 0o600)
		os.WriteFile(filepath.Join(dir, keyFile), key, 0o600)
	}
	session := func() error {
		t.Helper()
		a := r.appliance(dir, "probe-1", logs)
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return a.session(ctx)
	}
	run(1) // enrolls with A, renews to B
	certB, keyB := read()
	run(2) // connects with B (now confirmed), renews to C
	certC, keyC := read()
	if string(certB) == string(certC) {
		t.Fatal("the certificate did not change")
	}
	// C is not confirmed yet: B still works (the hub cannot know whether
	// the appliance kept C).
	put(certB, keyB)
	if err := session(); err != nil && strings.Contains(err.Error(), "replaced") {
		t.Fatalf("the certificate from before an unconfirmed renewal was refused: %v", err)
	}
	put(certC, keyC)
	run(3) // connects with C, which confirms it (and renews again)
	put(certB, keyB)
	if err := session(); err == nil || !strings.Contains(err.Error(), "this certificate was replaced") {
		t.Fatalf("session with a superseded certificate = %v", err)
	}
}

// TestStopsPromptly: an appliance connected to a hub that keeps talking
// (a heartbeat every 5 ms) stops as soon as it is told to.
func TestStopsPromptly(t *testing.T) {
	r := newRig(t, hub.Config{Heartbeat: 5 * time.Millisecond})
	logs := &testutil.SyncBuffer{}
	for range 10 {
		a := r.appliance(t.TempDir(), "probe-1", logs)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		testutil.WaitFor(t, "the connection", 15*time.Second, func() bool {
			return strings.Count(logs.String(), "connected to the hub") > 0
		})
		time.Sleep(300 * time.Millisecond) // heartbeats flow
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("the appliance did not stop within 5 s; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		}
		a.Close()
	}
}

// TestHardeningAudit: a Sonde appliance gets its own asset from the hub
// and sends its hardening audit as that asset's check (collector
// "appliance", check "hardening"), run on this machine for real; the
// audit never goes to another appliance of the zone.
func TestHardeningAudit(t *testing.T) {
	r := newRig(t, hub.Config{Version: "v1.2.3"})
	logs := &testutil.SyncBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("appliance log:\n%s", logs)
		}
	}()
	a := r.appliance(t.TempDir(), "edge-1", logs)
	start(t, a)
	type asset struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
		Kind string `json:"kind"`
	}
	var own asset
	testutil.WaitFor(t, "the appliance's own asset", 20*time.Second, func() bool {
		var list []asset
		r.hub.Must(200, "GET", "/api/v1/container/1/assets", nil, &list)
		for _, x := range list {
			if x.Kind == "Sonde appliance" && x.Name == "edge-1" {
				own = x
				return true
			}
		}
		return false
	})
	// Every 10 s instead of every hour, for the test.
	r.hub.Must(204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/appliance", own.ID), map[string]any{
		"checks": map[string]any{"hardening": map[string]any{"interval": 10}},
	}, nil)
	var res struct {
		Data map[string][]map[string]any `json:"data"`
	}
	var lastBody string
	defer func() {
		if t.Failed() {
			t.Logf("last answer: %s", lastBody)
		}
	}()
	testutil.WaitFor(t, "the hardening audit on the hub", 40*time.Second, func() bool {
		code, body := r.hub.Call("GET", fmt.Sprintf("/api/v1/asset/%d/collector/appliance/check/hardening", own.ID), nil, &res)
		lastBody = string(body)
		return code == 200 && len(res.Data["hardening"]) > 0
	})
	items := map[string]map[string]any{}
	for _, it := range res.Data["hardening"] {
		items[it["name"].(string)] = it
	}
	for _, name := range []string{"ssh.password_authentication", "os.reboot_required", "disk.data_encrypted", "sonde.version", "sonde.data_dir", "sonde.vault_file", "sonde.key_file"} {
		it, ok := items[name]
		if !ok {
			t.Errorf("no finding %s in %v", name, items)
			continue
		}
		if s := it["status"]; s != "pass" && s != "fail" && s != "unknown" {
			t.Errorf("%s: status %v", name, s)
		}
	}
	// The appliance's own files are as it made them; the version is the
	// hub's announced one against "test".
	for _, name := range []string{"sonde.data_dir", "sonde.vault_file", "sonde.key_file"} {
		if items[name]["status"] != "pass" {
			t.Errorf("%s: %v", name, items[name])
		}
	}
	if obs, _ := items["sonde.version"]["observed"].(string); !strings.Contains(obs, "v1.2.3") && items["sonde.version"]["status"] != "unknown" {
		t.Errorf("sonde.version: %v", items["sonde.version"])
	}
}

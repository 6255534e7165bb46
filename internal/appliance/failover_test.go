package appliance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hub"
	"github.com/sonde-monitoring/sonde/internal/testutil"
)

// TestHubList: the hubs come from Hubs, or from Hub (one address or
// several separated by commas) when Hubs is empty; a host alone gets the
// stream port, and an error names the bad address.
func TestHubList(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		want    []string
		wantErr string
	}{
		{"one hub", Config{Hub: "hub1:8730"}, []string{"hub1:8730"}, ""},
		{"hub alone gets the port", Config{Hub: "hub1"}, []string{"hub1:8730"}, ""},
		{"Hub separated by commas", Config{Hub: "hub1:9000, hub2"}, []string{"hub1:9000", "hub2:8730"}, ""},
		{"Hubs", Config{Hubs: []string{"10.0.0.1", "[::1]:9000", "::1"}}, []string{"10.0.0.1:8730", "[::1]:9000", "[::1]:8730"}, ""},
		{"none", Config{}, nil, "the hub is not set"},
		{"both", Config{Hub: "hub1", Hubs: []string{"hub2"}}, nil, "not both"},
		{"empty element", Config{Hub: "hub1,,hub2"}, nil, "an empty hub address"},
		{"bad port", Config{Hubs: []string{"hub1", "hub2:x"}}, nil, `"hub2:x": the port must be a number`},
		{"port out of range", Config{Hub: "hub1:70000"}, nil, `"hub1:70000"`},
		{"no host", Config{Hub: ":8730"}, nil, `":8730": the host is missing`},
		{"a URL", Config{Hub: "https://hub1:8730"}, nil, `"https://hub1:8730": give HOST:PORT`},
		{"twice", Config{Hub: "hub1,hub1:8730"}, nil, "hub1:8730 is listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DataDir, tc.cfg.CAFile, tc.cfg.Name = "d", "ca", "x"
			err := tc.cfg.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Validate = %v, want an error about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.cfg.hubList()
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("hubList = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestFailoverFromDeadHub: the first hub of the list is a closed port;
// the appliance enrolls with and connects to the second one at once (no
// backoff), and its results arrive there.
func TestFailoverFromDeadHub(t *testing.T) {
	r := newRig(t, hub.Config{})
	port, _ := listenPort(t)
	asset := r.tcpAsset("web", 5, port)
	dead := freePort(t) // listened on, then closed: nothing answers
	logs := &testutil.SyncBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("appliance log:\n%s", logs)
		}
	}()
	a := r.applianceFor(t.TempDir(), []string{dead, r.hub.Stream}, logs)
	began := time.Now()
	run(t, a)
	testutil.WaitFor(t, "the stream to the second hub", 10*time.Second, func() bool { return a.Status().Hub == r.hub.Stream })
	t.Logf("connected to the second hub %v after the start", time.Since(began).Round(time.Millisecond))
	if l := logs.String(); strings.Contains(l, "retry_in") {
		t.Error("the appliance waited a backoff although the second hub was up")
	} else if !strings.Contains(l, "the hub is unavailable; trying the next hub") || !strings.Contains(l, "hub="+dead) {
		t.Error("the dead hub is not logged")
	}
	sel := fmt.Sprintf(`sonde_tcp_open{asset_id="%d"}`, asset)
	testutil.WaitFor(t, "a result on the hub", 15*time.Second, func() bool { return len(r.hub.Samples(sel)) == 1 })
}

// TestFailoverOnBrokenStream: the appliance's stream goes through a relay
// (the first address of its list) to the hub; when the relay dies, the
// appliance connects to the hub directly (the list's second address)
// within seconds, and every result it buffered reaches the hub, those
// in flight when the relay died included.
func TestFailoverOnBrokenStream(t *testing.T) {
	// Heartbeats every 10 s: while the relay holds what the appliance
	// sends (its answers too), the hub must not close the stream as
	// silent (three heartbeats) before the relay dies.
	r := newRig(t, hub.Config{Heartbeat: 10 * time.Second})
	port, _ := listenPort(t)
	var assets []int64
	for i := range 4 {
		assets = append(assets, r.tcpAsset(fmt.Sprintf("a%d", i), 5, port))
	}
	rl := startRelay(t, r.hub.Stream)
	logs := &testutil.SyncBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("appliance log:\n%s", logs)
		}
	}()
	a := r.applianceFor(t.TempDir(), []string{rl.addr(), r.hub.Stream}, logs)
	run(t, a)
	testutil.WaitFor(t, "the stream through the relay", 15*time.Second, func() bool { return a.Status().Hub == rl.addr() })

	ids := map[string]bool{}
	for _, id := range assets {
		ids[fmt.Sprint(id)] = true
	}
	buffered := regexp.MustCompile(`msg="result buffered" seq=\d+ asset_id=(\d+) check_id=\d+ ts=(\d+)`)
	produced := func() map[string]bool {
		out := map[string]bool{}
		for _, m := range buffered.FindAllStringSubmatch(logs.String(), -1) {
			if ids[m[1]] {
				out[m[1]+"@"+m[2]] = true
			}
		}
		return out
	}
	api := &apiClient{t: t, c: r.hub.Client, base: "https://" + r.hub.Addr, token: r.hub.Admin}
	testutil.WaitFor(t, "results through the relay", 20*time.Second, func() bool { return len(api.stored(assets)) >= 4 })

	// The relay stops passing what the appliance sends: the next results
	// are sent into the void, in flight when the relay dies.
	rl.hold()
	held := len(produced())
	testutil.WaitFor(t, "results sent into the held relay", 20*time.Second, func() bool { return len(produced()) >= held+2 })
	time.Sleep(300 * time.Millisecond) // sent, unanswered
	if st := a.Status(); st.Buffered == 0 {
		t.Fatalf("no result awaits the hub's answer before the relay dies: %+v", st)
	}
	rl.kill()
	killed := time.Now()
	testutil.WaitFor(t, "the stream to the hub itself", 10*time.Second, func() bool { return a.Status().Hub == r.hub.Stream })
	t.Logf("failed over %v after the relay died", time.Since(killed).Round(time.Millisecond))
	if !strings.Contains(logs.String(), "the stream to the hub broke; failing over to the next hub") {
		t.Error("the failover is not logged")
	}
	if strings.Contains(logs.String(), "retry_in") {
		t.Error("the appliance waited a backoff although the hub was up")
	}

	// Results keep coming, and none made before, during or after the
	// failover is lost.
	before := len(produced())
	testutil.WaitFor(t, "results after the failover", 20*time.Second, func() bool { return len(produced()) >= before+4 })
	want := produced()
	var got map[string]bool
	testutil.WaitFor(t, "every result on the hub", 20*time.Second, func() bool {
		got = api.stored(assets)
		for k := range want {
			if !got[k] {
				return false
			}
		}
		return true
	})
	for k := range got {
		if !produced()[k] {
			t.Errorf("the hub holds %s, which the appliance never buffered", k)
		}
	}
	t.Logf("%d results buffered by the appliance, %d stored by the hub", len(want), len(got))
}

// applianceFor opens an appliance for the rig's hub that tries hubs in
// order.
func (r *rig) applianceFor(dir string, hubs []string, logs *testutil.SyncBuffer) *Appliance {
	r.t.Helper()
	a, err := Open(Config{
		DataDir: dir, Hubs: hubs, TokenFile: r.tokf, CAFile: r.hub.CA, Name: "probe-1", Version: "test",
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

// run runs a until the test ends (at most two minutes), then waits for it.
func run(t *testing.T, a *Appliance) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("appliance Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the appliance did not stop")
		}
		a.Close()
	})
}

// relay forwards TCP connections on loopback to a target, until killed.
type relay struct {
	ln    net.Listener
	held  atomic.Bool // what the client sends is dropped
	mu    sync.Mutex
	conns []net.Conn
	dead  bool
}

// hold makes the relay drop what its clients send from now on.
func (r *relay) hold() { r.held.Store(true) }

// holdReader reads from a relay's client, dropping what it reads while
// the relay holds.
type holdReader struct {
	c net.Conn
	r *relay
}

func (h holdReader) Read(p []byte) (int, error) {
	for {
		n, err := h.c.Read(p)
		if h.r.held.Load() {
			n = 0
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

func startRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln}
	t.Cleanup(r.kill)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			if !r.track(c, up) {
				return
			}
			go func() { io.Copy(up, holdReader{c, r}); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return r
}

func (r *relay) addr() string { return r.ln.Addr().String() }

// track keeps the connections to close on kill; false when killed already.
func (r *relay) track(cs ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	r.conns = append(r.conns, cs...)
	return true
}

// kill closes the listener and every connection, as a relay (or hub)
// that dies would.
func (r *relay) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dead = true
	r.ln.Close()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

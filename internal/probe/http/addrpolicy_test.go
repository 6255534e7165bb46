package httpprobe

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/netguard"
	"github.com/sonde-monitoring/sonde/internal/probe"
)

// countingServer is a plain HTTP server on 127.0.0.1 that counts the
// connections it accepts; /a redirects to /b on itself.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/a", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/b", http.StatusFound) })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") })
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func wantRefused(t *testing.T, res probe.Result, parts ...string) {
	t.Helper()
	if res.Error == nil || res.Error.Severity != model.SeverityHigh || res.Types != nil {
		t.Fatalf("got %+v %+v, want a HIGH error and no result", res.Error, res.Types)
	}
	t.Logf("%s", res.Error.Message)
	for _, p := range append([]string{"refused"}, parts...) {
		if !strings.Contains(res.Error.Message, p) {
			t.Errorf("error %q does not mention %q", res.Error.Message, p)
		}
	}
}

func TestAddrPolicy(t *testing.T) {
	srv, conns := countingServer(t)
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	run := func(ctx context.Context, url string) probe.Result {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return Probe(ctx, target(map[string]any{"url": url}), nil)
	}

	t.Run("loopback refused", func(t *testing.T) {
		c0 := conns.Load()
		res := run(probe.WithAddrPolicy(context.Background(), netguard.Check), srv.URL+"/private-path?token=tok-abc")
		wantRefused(t, res, "refused address 127.0.0.1: loopback address 127.0.0.0/8")
		assertNoSecrets(t, res)
		if n := conns.Load() - c0; n != 0 {
			t.Errorf("the server saw %d connections", n)
		}
	})

	t.Run("a name resolving to loopback refused when dialling", func(t *testing.T) {
		if !resolvesToLoopback(t) {
			t.Skip("localhost does not resolve to 127.0.0.1 here")
		}
		c0 := conns.Load()
		res := run(probe.WithAddrPolicy(context.Background(), netguard.Check), "http://localhost:"+port+"/")
		wantRefused(t, res, "loopback")
		if n := conns.Load() - c0; n != 0 {
			t.Errorf("the server saw %d connections", n)
		}
	})

	t.Run("redirect dials are checked", func(t *testing.T) {
		// The policy lets the first connection through and refuses the
		// next: the redirect's own connection.
		var calls atomic.Int32
		policy := func(a netip.Addr) error {
			if calls.Add(1) == 1 {
				return nil
			}
			return netguard.Check(a)
		}
		c0 := conns.Load()
		res := run(probe.WithAddrPolicy(context.Background(), policy), srv.URL+"/a")
		wantRefused(t, res, "following a redirect: ", "refused address 127.0.0.1")
		if n := conns.Load() - c0; n != 1 {
			t.Errorf("the server saw %d connections, want 1 (the first request's)", n)
		}
	})

	t.Run("allowed", func(t *testing.T) {
		var mu sync.Mutex
		var seen []netip.Addr
		policy := func(a netip.Addr) error {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, a)
			return nil
		}
		res := run(probe.WithAddrPolicy(context.Background(), policy), srv.URL+"/a")
		if res.Error != nil {
			t.Fatalf("unexpected error %+v", res.Error)
		}
		if m := metricsOf(t, res); m["redirects"].Int != 1 || m["statusCode"].Int != 200 {
			t.Errorf("redirects %v, status %v; want 1 and 200", m["redirects"], m["statusCode"])
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 2 || seen[0] != netip.MustParseAddr("127.0.0.1") || seen[1] != seen[0] {
			t.Errorf("the policy saw %v, want 127.0.0.1 twice (the request and the redirect)", seen)
		}
	})

	t.Run("no policy", func(t *testing.T) {
		if res := run(context.Background(), srv.URL+"/a"); res.Error != nil {
			t.Fatalf("unexpected error %+v", res.Error)
		}
	})
}

// TestAddrPolicyWithCredential: the policy and the credential's hosts are
// both enforced on every connection.
func TestAddrPolicyWithCredential(t *testing.T) {
	ca := newCA(t)
	cert := ca.leaf(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	var redirectTo string
	srv := startAuthServer(t, cert, "", &redirectTo)
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	v := creds{
		"ip":  vault["web"],
		"far": {Name: "far", Kind: probe.KindPassword, Username: "admin", Secret: vault["web"].Secret, Hosts: []string{"10.0.0.0/8"}},
	}
	run := func(ctx context.Context, url, cred string) probe.Result {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		res := Probe(ctx, target(map[string]any{"url": url, "ca": ca.pem, "credential": cred}), v)
		assertNoSecrets(t, res)
		return res
	}
	allowAll := func(netip.Addr) error { return nil }

	t.Run("the credential permits, the policy refuses", func(t *testing.T) {
		c0, a0 := srv.conns.Load(), srv.auths.Load()
		res := run(probe.WithAddrPolicy(context.Background(), netguard.Check), srv.URL, "ip")
		wantRefused(t, res, "refused address 127.0.0.1: loopback")
		if c, a := srv.conns.Load()-c0, srv.auths.Load()-a0; c != 0 || a != 0 {
			t.Errorf("the server saw %d connections and %d Authorization headers", c, a)
		}
	})
	t.Run("the policy permits, the credential refuses when dialling", func(t *testing.T) {
		if !resolvesToLoopback(t) {
			t.Skip("localhost does not resolve to 127.0.0.1 here")
		}
		c0 := srv.conns.Load()
		res := run(probe.WithAddrPolicy(context.Background(), allowAll), "https://localhost:"+port+"/", "far")
		if res.Error == nil || !strings.Contains(res.Error.Message, `credential "far" may not be sent to localhost (`) {
			t.Fatalf("got %+v, want the credential's refusal", res.Error)
		}
		if c := srv.conns.Load() - c0; c != 0 {
			t.Errorf("the server saw %d connections", c)
		}
	})
	t.Run("both permit", func(t *testing.T) {
		a0 := srv.auths.Load()
		if res := run(probe.WithAddrPolicy(context.Background(), allowAll), srv.URL, "ip"); res.Error != nil {
			t.Fatalf("unexpected error %+v", res.Error)
		}
		if a := srv.auths.Load() - a0; a != 1 {
			t.Errorf("the server saw %d Authorization headers, want 1", a)
		}
	})
}

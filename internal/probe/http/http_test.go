package httpprobe

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"log"
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
	"github.com/sonde-monitoring/sonde/internal/probe"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

const distinctiveSecret = "s3cr3t-Zebra-Quartz-4242"

// creds is a vault for tests.
type creds map[string]probe.Credential

func (c creds) Credential(name string) (probe.Credential, error) {
	if cr, ok := c[name]; ok {
		return cr, nil
	}
	return probe.Credential{}, fmt.Errorf("credential %q: %w", name, probe.ErrNoCredential)
}

var vault = creds{
	"web":   {Name: "web", Kind: probe.KindPassword, Username: "admin", Secret: secret.New(distinctiveSecret), Hosts: []string{"127.0.0.1"}},
	"token": {Name: "token", Kind: probe.KindToken, Secret: secret.New(distinctiveSecret), Hosts: []string{"127.0.0.1"}},
}

// forbidden are the strings no result may hold: the secret and the forms
// it travels in.
var forbidden = []string{
	distinctiveSecret,
	base64.StdEncoding.EncodeToString([]byte("admin:" + distinctiveSecret)),
	"tok-abc", // a token in redirect query strings
	"/private-path",
}

func target(cfg map[string]any) probe.Target {
	return probe.Target{AssetID: 7, AssetName: "web", Collector: "http", Check: "http", Config: cfg, Interval: time.Minute}
}

// resultStrings returns every string a result carries.
func resultStrings(res probe.Result) []string {
	var out []string
	if res.Error != nil {
		out = append(out, res.Error.Message)
	}
	var value func(v model.Value)
	value = func(v model.Value) {
		out = append(out, v.Str)
		for _, e := range v.List {
			value(e)
		}
	}
	for _, ty := range res.Types {
		out = append(out, ty.Name)
		for _, it := range ty.Items {
			out = append(out, it.Name)
			for _, m := range it.Metrics {
				out = append(out, m.Name)
				value(m.Value)
			}
		}
	}
	return out
}

// assertValid checks that the hub accepts res: it is encoded the way a
// collector sends it and decoded under the hub's default limits.
func assertValid(t testing.TB, res probe.Result) {
	t.Helper()
	d := &model.CheckData{Types: res.Types, HasResult: res.Types != nil, Error: res.Error, Timestamp: time.Now().Unix()}
	if _, err := model.DecodeCheckData(bytes.NewReader(d.MarshalAgentJSON()), model.Limits{}); err != nil {
		t.Fatalf("the hub would refuse the result: %v\n%s", err, d.MarshalAgentJSON())
	}
}

func assertNoSecrets(t *testing.T, res probe.Result) {
	t.Helper()
	assertValid(t, res)
	for _, s := range resultStrings(res) {
		for _, f := range forbidden {
			if strings.Contains(s, f) {
				t.Errorf("result string %q holds %q", s, f)
			}
		}
	}
}

// metricsOf returns the only item's metrics by name.
func metricsOf(t *testing.T, res probe.Result) map[string]model.Value {
	t.Helper()
	if len(res.Types) != 1 || res.Types[0].Name != "http" || len(res.Types[0].Items) != 1 {
		t.Fatalf("want one http type with one item, got %+v (error %+v)", res.Types, res.Error)
	}
	m := map[string]model.Value{}
	for _, x := range res.Types[0].Items[0].Metrics {
		m[x.Name] = x.Value
	}
	return m
}

// methods records every request the test servers receive, to check the
// probe only ever reads.
type methods struct {
	mu   sync.Mutex
	seen []string
}

func (m *methods) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1))
		m.seen = append(m.seen, r.Method+" body="+strconv.Itoa(len(body)))
		m.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (m *methods) check(t *testing.T) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.seen {
		if s != "GET body=0" && s != "HEAD body=0" {
			t.Errorf("server saw %q: the probe must only GET or HEAD without a body", s)
		}
	}
}

func newMux(other *string, sawAuthElsewhere *bool, mu *sync.Mutex) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello world") })
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
	})
	mux.HandleFunc("/r/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		to := "/ok?token=tok-abc"
		if n > 1 {
			to = "/r/" + strconv.Itoa(n-1) + "?token=tok-abc"
		}
		http.Redirect(w, r, to, http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop?token=tok-abc", http.StatusFound)
	})
	mux.HandleFunc("/big/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		io.WriteString(w, strings.Repeat("a", n))
	})
	mux.HandleFunc("/endless", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("z", 32<<10))
		for range 64 << 20 / len(chunk) { // 64 MiB at most
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			io.WriteString(w, "plain")
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, strings.Repeat("compressible ", 100))
		zw.Close()
	})
	mux.HandleFunc("/auth/basic", func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		w.Header().Set("X-Echo", r.Header.Get("Authorization"))
		if !ok || u != "admin" || p != distinctiveSecret {
			w.WriteHeader(http.StatusUnauthorized)
		}
		io.WriteString(w, "you sent "+r.Header.Get("Authorization")+" "+p)
	})
	mux.HandleFunc("/auth/bearer", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+distinctiveSecret {
			w.WriteHeader(http.StatusUnauthorized)
		}
		io.WriteString(w, "token "+r.Header.Get("Authorization"))
	})
	mux.HandleFunc("/auth/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, *other+"/seen?token=tok-abc", http.StatusFound)
	})
	mux.HandleFunc("/seen", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		*sawAuthElsewhere = *sawAuthElsewhere || r.Header.Get("Authorization") != ""
		mu.Unlock()
		io.WriteString(w, "seen")
	})
	mux.HandleFunc("/cookie", func(w http.ResponseWriter, r *http.Request) {
		if _, err := r.Cookie("session"); err == nil {
			w.WriteHeader(http.StatusConflict) // a cookie came back: the probe kept it
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "abc", Path: "/"})
		http.Redirect(w, r, "/cookie", http.StatusFound)
	})
	mux.HandleFunc("/private-path", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	return mux
}

func TestProbe(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	good := ca.leaf(t, now.Add(-time.Hour), now.Add(time.Hour))
	expired := ca.leaf(t, now.Add(-48*time.Hour), now.Add(-24*time.Hour))

	var mu sync.Mutex
	var sawAuthElsewhere bool
	var otherURL string
	var seen methods
	mux := seen.wrap(newMux(&otherURL, &sawAuthElsewhere, &mu))

	plain := httptest.NewServer(mux)
	defer plain.Close()
	secure := tlsServer(mux, good, true)
	defer secure.Close()
	other := tlsServer(mux, good, false)
	defer other.Close()
	otherURL = other.URL
	stale := tlsServer(mux, expired, false)
	defer stale.Close()

	plainHost := strings.TrimPrefix(plain.URL, "http://")
	secureHost := strings.TrimPrefix(secure.URL, "https://")
	high, medium := model.SeverityHigh, model.SeverityMedium

	cases := []struct {
		name    string
		cfg     map[string]any
		sev     *model.Severity // nil: no error
		errHas  string
		metrics map[string]model.Value // subset expected
		noTypes bool
	}{
		{
			name: "ok with body match",
			cfg:  map[string]any{"url": plain.URL + "/ok", "bodyMatch": "wor.d"},
			metrics: map[string]model.Value{
				"statusCode": model.IntValue(200), "size": model.IntValue(11), "bodyTruncated": model.BoolValue(false),
				"redirects": model.IntValue(0), "finalHost": model.StringValue(plainHost),
				"protocol": model.StringValue("HTTP/1.1"), "bodyMatch": model.BoolValue(true),
			},
		},
		{
			name:    "body does not match",
			cfg:     map[string]any{"url": plain.URL + "/ok", "bodyMatch": "^goodbye"},
			sev:     &medium,
			errHas:  "the body does not match config.bodyMatch",
			metrics: map[string]model.Value{"statusCode": model.IntValue(200), "bodyMatch": model.BoolValue(false)},
		},
		{
			name:    "404 is degraded",
			cfg:     map[string]any{"url": plain.URL + "/status/404"},
			sev:     &medium,
			errHas:  "status 404, expected 2xx",
			metrics: map[string]model.Value{"statusCode": model.IntValue(404)},
		},
		{
			name:    "503 is down",
			cfg:     map[string]any{"url": plain.URL + "/status/503"},
			sev:     &high,
			errHas:  "status 503, expected 2xx",
			metrics: map[string]model.Value{"statusCode": model.IntValue(503)},
		},
		{
			name:    "expected 404",
			cfg:     map[string]any{"url": plain.URL + "/status/404", "expectStatus": []any{404, 410}},
			metrics: map[string]model.Value{"statusCode": model.IntValue(404)},
		},
		{
			name:   "path and query stay out of messages",
			cfg:    map[string]any{"url": plain.URL + "/private-path?token=tok-abc"},
			sev:    &high,
			errHas: "GET http://" + plainHost + ": status 500",
		},
		{
			name: "redirects followed, query strings dropped",
			cfg:  map[string]any{"url": plain.URL + "/r/3?token=tok-abc"},
			metrics: map[string]model.Value{
				"statusCode": model.IntValue(200), "redirects": model.IntValue(3), "finalHost": model.StringValue(plainHost),
			},
		},
		{
			name:    "redirect loop stops after 10",
			cfg:     map[string]any{"url": plain.URL + "/loop"},
			sev:     &medium,
			errHas:  "stopped after 10 redirects",
			metrics: map[string]model.Value{"statusCode": model.IntValue(302), "redirects": model.IntValue(10)},
		},
		{
			name:    "no cookies kept",
			cfg:     map[string]any{"url": plain.URL + "/cookie"},
			sev:     &medium,
			errHas:  "stopped after 10 redirects",
			metrics: map[string]model.Value{"statusCode": model.IntValue(302), "redirects": model.IntValue(10)},
		},
		{
			name:    "redirects not followed",
			cfg:     map[string]any{"url": plain.URL + "/r/2", "followRedirects": false},
			metrics: map[string]model.Value{"statusCode": model.IntValue(302), "redirects": model.IntValue(0)},
		},
		{
			name:    "HEAD",
			cfg:     map[string]any{"url": plain.URL + "/big/100", "method": "head"},
			metrics: map[string]model.Value{"statusCode": model.IntValue(200), "size": model.IntValue(0)},
		},
		{
			name:    "maxBody bounds the read",
			cfg:     map[string]any{"url": plain.URL + "/big/100", "maxBody": 10, "bodyMatch": "^a{10}$"},
			metrics: map[string]model.Value{"size": model.IntValue(10), "bodyTruncated": model.BoolValue(true), "bodyMatch": model.BoolValue(true)},
		},
		{
			name:    "endless body stops at 1 MiB",
			cfg:     map[string]any{"url": plain.URL + "/endless"},
			metrics: map[string]model.Value{"size": model.IntValue(1 << 20), "bodyTruncated": model.BoolValue(true)},
		},
		{
			name:    "gzip is decoded",
			cfg:     map[string]any{"url": plain.URL + "/gzip", "bodyMatch": "^(compressible )+$"},
			metrics: map[string]model.Value{"size": model.IntValue(1300), "bodyMatch": model.BoolValue(true)},
		},
		{
			name:    "https with config ca, HTTP/2",
			cfg:     map[string]any{"url": secure.URL + "/ok", "ca": ca.pem},
			metrics: map[string]model.Value{"statusCode": model.IntValue(200), "protocol": model.StringValue("HTTP/2.0"), "finalHost": model.StringValue(secureHost)},
		},
		{
			name:    "https without the ca is refused",
			cfg:     map[string]any{"url": secure.URL + "/ok"},
			sev:     &high,
			errHas:  "certificate",
			noTypes: true,
		},
		{
			name:    "expired certificate",
			cfg:     map[string]any{"url": stale.URL + "/ok", "ca": ca.pem},
			sev:     &high,
			errHas:  "expired",
			noTypes: true,
		},
		{
			name:    "basic auth from the vault",
			cfg:     map[string]any{"url": secure.URL + "/auth/basic", "ca": ca.pem, "credential": "web", "bodyMatch": "you sent Basic"},
			metrics: map[string]model.Value{"statusCode": model.IntValue(200), "bodyMatch": model.BoolValue(true)},
		},
		{
			name:    "bearer auth from the vault",
			cfg:     map[string]any{"url": secure.URL + "/auth/bearer", "ca": ca.pem, "credential": "token", "auth": "bearer"},
			metrics: map[string]model.Value{"statusCode": model.IntValue(200)},
		},
		{
			name:    "wrong auth scheme is a 401",
			cfg:     map[string]any{"url": secure.URL + "/auth/bearer", "ca": ca.pem, "credential": "web", "auth": "basic"},
			sev:     &medium,
			errHas:  "status 401",
			metrics: map[string]model.Value{"statusCode": model.IntValue(401)},
		},
		{
			name:    "unknown credential",
			cfg:     map[string]any{"url": secure.URL + "/auth/basic", "ca": ca.pem, "credential": "nope"},
			sev:     &high,
			errHas:  `config.credential: the vault has no entry "nope"`,
			noTypes: true,
		},
		{
			name:    "connection refused",
			cfg:     map[string]any{"url": "http://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/x?token=tok-abc"},
			sev:     &high,
			errHas:  "connection refused",
			noTypes: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res := Probe(ctx, target(c.cfg), vault)
			assertNoSecrets(t, res)
			switch {
			case c.sev == nil && res.Error != nil:
				t.Fatalf("unexpected error %+v", res.Error)
			case c.sev != nil && (res.Error == nil || res.Error.Severity != *c.sev || !strings.Contains(res.Error.Message, c.errHas)):
				t.Fatalf("error %+v, want %v containing %q", res.Error, *c.sev, c.errHas)
			}
			if c.noTypes {
				if res.Types != nil {
					t.Fatalf("unexpected result %+v", res.Types)
				}
				return
			}
			m := metricsOf(t, res)
			for name, want := range c.metrics {
				if got, ok := m[name]; !ok || got.Kind != want.Kind || got.Int != want.Int || got.Str != want.Str || got.Bool != want.Bool {
					t.Errorf("%s = %+v, want %+v", name, got, want)
				}
			}
			for _, name := range []string{"responseTime", "timeToFirstByte"} {
				if v := m[name]; v.Kind != model.KindFloat || v.F <= 0 || v.F > 10 {
					t.Errorf("%s = %+v", name, v)
				}
			}
			if m["timeToFirstByte"].F > m["responseTime"].F {
				t.Errorf("timeToFirstByte %v after responseTime %v", m["timeToFirstByte"].F, m["responseTime"].F)
			}
		})
	}
	seen.check(t)
}

// tlsServer starts an HTTPS server on 127.0.0.1:0 with cert.
func tlsServer(h http.Handler, cert tls.Certificate, h2 bool) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.EnableHTTP2 = h2
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are the point
	srv.StartTLS()
	return srv
}

// TestAuthorizationStaysWithItsOrigin follows a redirect to another port:
// the Authorization header must not go along.
func TestAuthorizationStaysWithItsOrigin(t *testing.T) {
	ca := newCA(t)
	good := ca.leaf(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	var mu sync.Mutex
	var sawAuthElsewhere bool
	var otherURL string
	mux := newMux(&otherURL, &sawAuthElsewhere, &mu)
	other := tlsServer(mux, good, false)
	defer other.Close()
	otherURL = other.URL
	first := tlsServer(mux, good, false)
	defer first.Close()
	res := Probe(context.Background(), target(map[string]any{"url": first.URL + "/auth/away", "ca": ca.pem, "credential": "web"}), vault)
	assertNoSecrets(t, res)
	if res.Error != nil {
		t.Fatalf("unexpected error %+v", res.Error)
	}
	if m := metricsOf(t, res); m["finalHost"].Str != strings.TrimPrefix(otherURL, "https://") || m["redirects"].Int != 1 {
		t.Fatalf("metrics %+v", m)
	}
	mu.Lock()
	defer mu.Unlock()
	if sawAuthElsewhere {
		t.Fatal("the Authorization header followed a redirect to another origin")
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"no url", map[string]any{}, "config.url: missing"},
		{"unknown field", map[string]any{"url": "http://127.0.0.1/", "body": "x"}, `unknown field "body"`},
		{"bad scheme", map[string]any{"url": "ftp://127.0.0.1/"}, "config.url: the scheme must be http or https"},
		{"no host", map[string]any{"url": "https:///x"}, "config.url: has no host"},
		{"unparseable", map[string]any{"url": "https://bad host/?token=tok-abc"}, "config.url: not a valid URL"},
		{"user info", map[string]any{"url": "https://admin:" + distinctiveSecret + "@127.0.0.1/"}, "config.url: must not hold a user name or password"},
		{"method POST", map[string]any{"url": "http://127.0.0.1/", "method": "POST"}, "config.method: must be GET or HEAD"},
		{"status out of range", map[string]any{"url": "http://127.0.0.1/", "expectStatus": []any{99}}, "config.expectStatus"},
		{"bad regexp", map[string]any{"url": "http://127.0.0.1/", "bodyMatch": "(["}, "config.bodyMatch: error parsing regexp"},
		{"bodyMatch with HEAD", map[string]any{"url": "http://127.0.0.1/", "method": "HEAD", "bodyMatch": "x"}, "config.bodyMatch: a HEAD response has no body"},
		{"maxBody too big", map[string]any{"url": "http://127.0.0.1/", "maxBody": 1 << 30}, "config.maxBody"},
		{"maxBody negative", map[string]any{"url": "http://127.0.0.1/", "maxBody": -1}, "config.maxBody"},
		{"auth unknown", map[string]any{"url": "https://127.0.0.1/", "credential": "web", "auth": "digest"}, `config.auth: must be "basic" or "bearer"`},
		{"auth without credential", map[string]any{"url": "https://127.0.0.1/", "auth": "bearer"}, "config.auth: needs config.credential"},
		{"credential over http", map[string]any{"url": "http://127.0.0.1/", "credential": "web"}, "config.credential: credentials are sent over https only"},
		{"ca not PEM", map[string]any{"url": "https://127.0.0.1/", "ca": "hello"}, "config.ca: holds no PEM certificate"},
		{"timeout", map[string]any{"url": "https://127.0.0.1/", "timeout": 1000}, "config.timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := Probe(context.Background(), target(c.cfg), vault)
			assertNoSecrets(t, res)
			if res.Error == nil || res.Error.Severity != model.SeverityHigh || !strings.Contains(res.Error.Message, c.want) || res.Types != nil {
				t.Fatalf("got %+v %+v, want a HIGH error containing %q", res.Error, res.Types, c.want)
			}
		})
	}
}

// rawServer accepts connections on 127.0.0.1:0, reads each request's
// header and hands the connection to serve.
func rawServer(t *testing.T, tlsCert *tls.Certificate, serve func(c net.Conn, req *http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if tlsCert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*tlsCert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				serve(c, req)
			})
		}
	})
	return scheme + "://" + ln.Addr().String()
}

// write returns a server that writes s and closes.
func write(s string) func(net.Conn, *http.Request) {
	return func(c net.Conn, _ *http.Request) { io.WriteString(c, s) }
}

// trickle returns a server that writes head, then one byte of filler every
// 20 ms until the client goes away.
func trickle(head string) func(net.Conn, *http.Request) {
	return func(c net.Conn, _ *http.Request) {
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		for {
			time.Sleep(20 * time.Millisecond)
			if _, err := c.Write([]byte("a")); err != nil {
				return
			}
		}
	}
}

// TestMisbehavingServers: garbage, broken framing, huge headers and slow
// servers give a check error within the timeout, never a panic or a hang.
// The trickling servers send a byte every 20 ms: only the deadline stops
// them.
func TestMisbehavingServers(t *testing.T) {
	ca := newCA(t)
	cert := ca.leaf(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	high, medium := model.SeverityHigh, model.SeverityMedium
	cases := []struct {
		name    string
		tls     bool
		serve   func(net.Conn, *http.Request)
		sev     model.Severity
		errHas  string
		status  int // 0: no result expected
		extraCf map[string]any
		slow    bool // meant to run into the deadline
	}{
		{name: "not HTTP", serve: write("SSH-2.0-OpenSSH_9.6\r\n"), sev: high, errHas: "malformed HTTP"},
		{name: "binary garbage", serve: write("\x00\x01\x02\xff\xfe\r\n\r\n"), sev: high, errHas: "malformed HTTP"},
		{name: "closes at once", serve: write(""), sev: high, errHas: "the server closed the connection without answering"},
		{name: "bad status code", serve: write("HTTP/1.1 abc OK\r\n\r\n"), sev: high, errHas: "malformed HTTP status code"},
		{name: "bad header line", serve: write("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"), sev: high, errHas: "malformed MIME header"},
		{name: "huge headers", serve: write("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 200<<10) + "\r\n\r\n"), sev: high, errHas: "exceeded"},
		{name: "bad chunking", serve: write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"), sev: medium, errHas: "reading the body", status: 200},
		{name: "short body", serve: write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten.."), sev: medium, errHas: "reading the body: unexpected EOF", status: 200},
		{name: "slowloris headers", serve: trickle("HTTP/1.1 200 OK\r\nX-Slow: "), sev: high, errHas: "no response before the deadline", slow: true},
		{name: "slow body", serve: trickle("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"), sev: high, errHas: "reading the body", status: 200, slow: true},
		{name: "silent", serve: func(c net.Conn, _ *http.Request) { _, _ = c.Read(make([]byte, 1)) }, sev: high, errHas: "no response before the deadline", slow: true},
		{name: "slowloris over TLS", tls: true, serve: trickle("HTTP/1.1 200 OK\r\nX-Slow: "), sev: high, errHas: "no response before the deadline", slow: true},
		{
			name: "status line echoes the secret", tls: true,
			serve: func(c net.Conn, r *http.Request) {
				_, p, _ := r.BasicAuth()
				io.WriteString(c, "HTTP/1.1 "+p+"\r\n\r\n")
			},
			sev: high, errHas: secret.Redacted, extraCf: map[string]any{"credential": "web"},
		},
		{
			name: "status line echoes the basic token", tls: true,
			serve: func(c net.Conn, r *http.Request) {
				io.WriteString(c, "HTTP/1.1 "+strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")+"\r\n\r\n")
			},
			sev: high, errHas: secret.Redacted, extraCf: map[string]any{"credential": "web"},
		},
		{
			name: "redirect with the secret in user info, path and query", tls: true,
			serve: func(c net.Conn, r *http.Request) {
				if r.URL.Path == "/" {
					io.WriteString(c, "HTTP/1.1 302 Found\r\nLocation: https://admin:"+distinctiveSecret+"@"+r.Host+"/"+distinctiveSecret+"?token="+distinctiveSecret+"\r\nContent-Length: 0\r\n\r\n")
					return
				}
				io.WriteString(c, "HTTP/1.1 500 "+distinctiveSecret+"\r\nContent-Length: 0\r\n\r\n")
			},
			sev: high, errHas: "status 500", status: 500, extraCf: map[string]any{"credential": "web"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // the slow servers each take the whole timeout
			var cert0 *tls.Certificate
			if c.tls {
				cert0 = &cert
			}
			u := rawServer(t, cert0, c.serve)
			// A busy machine must not turn a quick failure into a timeout:
			// only the slow servers get a short deadline.
			timeout := 10.0
			if c.slow {
				timeout = 1
				if c.status != 0 {
					// The head must arrive before the deadline, even
					// on a busy machine.
					timeout = 3
				}
			}
			cfg := map[string]any{"url": u + "/", "timeout": timeout, "ca": ca.pem}
			for k, v := range c.extraCf {
				cfg[k] = v
			}
			start := time.Now()
			res := Probe(context.Background(), target(cfg), vault)
			// Generous: the bound is there to catch a hang, not to time a
			// busy machine.
			if el := time.Since(start); el > time.Duration(timeout+5)*time.Second {
				t.Errorf("took %v with a %v s timeout", el, timeout)
			}
			assertNoSecrets(t, res)
			if res.Error == nil || res.Error.Severity != c.sev || !strings.Contains(res.Error.Message, c.errHas) {
				t.Fatalf("error %+v, want %v containing %q", res.Error, c.sev, c.errHas)
			}
			t.Logf("%v: %s", res.Error.Severity, res.Error.Message)
			if c.status == 0 {
				if res.Types != nil {
					t.Fatalf("unexpected result %+v", res.Types)
				}
				return
			}
			if m := metricsOf(t, res); m["statusCode"].Int != int64(c.status) {
				t.Fatalf("statusCode %+v, want %d", m["statusCode"], c.status)
			}
		})
	}
}

func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func BenchmarkProbe(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello world") }))
	defer srv.Close()
	tg := target(map[string]any{"url": srv.URL + "/", "bodyMatch": "hello"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if res := Probe(ctx, tg, nil); res.Error != nil {
			b.Fatal(res.Error.Message)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}

// authServer is a TLS server on 127.0.0.1 (or addr) that counts the
// connections it accepts and the Authorization headers it receives.
type authServer struct {
	*httptest.Server
	conns, auths atomic.Int64
}

func startAuthServer(t *testing.T, cert tls.Certificate, addr string, redirectTo *string) *authServer {
	t.Helper()
	a := &authServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			a.auths.Add(1)
		}
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			a.auths.Add(1)
		}
		http.Redirect(w, r, *redirectTo, http.StatusFound)
	})
	srv := httptest.NewUnstartedServer(mux)
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("cannot listen on %s: %v", addr, err)
		}
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			a.conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	a.Server = srv
	return a
}

// resolvesToLoopback reports whether localhost resolves to 127.0.0.1 here.
func resolvesToLoopback(t *testing.T) bool {
	addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", "localhost")
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a.Unmap() == netip.MustParseAddr("127.0.0.1") {
			return true
		}
	}
	return false
}

// TestCredentialHosts: a credential goes only to the hosts its vault entry
// permits, and only as a kind the http probe takes. The first cases are
// the attack this guards against: a check configuration (which the hub
// sends) pointing a credential at a server of the attacker's, with the
// attacker's CA.
func TestCredentialHosts(t *testing.T) {
	ca := newCA(t)
	cert := ca.leaf(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	var redirectTo string
	srv := startAuthServer(t, cert, "", &redirectTo)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	byIP := srv.URL                                     // https://127.0.0.1:PORT
	byName := "https://localhost:" + strconv.Itoa(port) // the same server by name
	haveLocalhost := resolvesToLoopback(t)

	cred := func(name, kind string, hosts ...string) probe.Credential {
		return probe.Credential{Name: name, Kind: kind, Username: "admin", Secret: secret.New(distinctiveSecret), Hosts: hosts}
	}
	v := creds{
		"core-switch":  cred("core-switch", probe.KindSNMPCommunity, "10.0.0.0/8"),
		"far":          cred("far", probe.KindPassword, "10.0.0.0/8"),
		"far-names":    cred("far-names", probe.KindPassword, "*.corp", "switch1.lan"),
		"nowhere":      cred("nowhere", probe.KindPassword),
		"ip":           cred("ip", probe.KindPassword, "127.0.0.1"),
		"cidr":         cred("cidr", probe.KindPassword, "10.0.0.0/8", "127.0.0.0/8"),
		"name":         cred("name", probe.KindPassword, "*.corp", "localhost"),
		"token-basic":  cred("token-basic", probe.KindToken, "127.0.0.1"),
		"password-brr": cred("password-brr", probe.KindPassword, "127.0.0.1"),
		"v3":           cred("v3", probe.KindSNMPv3Auth, "127.0.0.1"),
	}

	cases := []struct {
		name      string
		url       string
		cred      string
		auth      string
		localhost bool   // needs localhost to resolve to 127.0.0.1
		wantErr   string // "" for success
		wantConns bool   // the server may see connections
	}{
		{name: "exploit: an SNMP community as HTTP basic auth", url: byIP, cred: "core-switch",
			wantErr: `credential "core-switch" is a snmp-community, the http probe takes password or token`},
		{name: "an SNMPv3 passphrase", url: byIP, cred: "v3", auth: "bearer",
			wantErr: `credential "v3" is a snmpv3-auth, the http probe takes password or token`},
		{name: "exploit: a password sent to an address it is not for", url: byIP, cred: "far",
			wantErr: `credential "far" may not be sent to 127.0.0.1: its hosts are 10.0.0.0/8 (the appliance's operator sets them with "sonde-appliance vault hosts far LIST")`},
		{name: "a name no pattern permits, only name patterns", url: byName + "/?token=tok-abc", cred: "far-names",
			wantErr: `credential "far-names" may not be sent to localhost: its hosts are *.corp, switch1.lan`},
		{name: "a name that resolves outside the networks, refused when dialling", url: byName, cred: "far", localhost: true,
			wantErr: `credential "far" may not be sent to localhost (`},
		{name: "no hosts", url: byIP, cred: "nowhere",
			wantErr: `credential "nowhere" has no hosts it may be sent to: on the appliance, run "sonde-appliance vault hosts nowhere LIST"`},
		{name: "a token with basic auth", url: byIP, cred: "token-basic",
			wantErr: `credential "token-basic" is a token, which auth "basic" does not send: set config.auth to "bearer"`},
		{name: "permitted address", url: byIP, cred: "ip", wantConns: true},
		{name: "permitted network", url: byIP, cred: "cidr", wantConns: true},
		{name: "permitted network, by a name it resolves into", url: byName, cred: "cidr", localhost: true, wantConns: true},
		{name: "permitted name", url: byName, cred: "name", localhost: true, wantConns: true},
		{name: "permitted name in capitals", url: "https://LocalHost:" + strconv.Itoa(port), cred: "name", localhost: true, wantConns: true},
		{name: "a token as bearer", url: byIP, cred: "token-basic", auth: "bearer", wantConns: true},
		{name: "a password as bearer", url: byIP, cred: "password-brr", auth: "bearer", wantConns: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.localhost && !haveLocalhost {
				t.Skip("localhost does not resolve to 127.0.0.1 here")
			}
			conns0, auths0 := srv.conns.Load(), srv.auths.Load()
			cfg := map[string]any{"url": tc.url, "ca": ca.pem, "credential": tc.cred}
			if tc.auth != "" {
				cfg["auth"] = tc.auth
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res := Probe(ctx, target(cfg), v)
			assertNoSecrets(t, res)
			conns, auths := srv.conns.Load()-conns0, srv.auths.Load()-auths0
			if tc.wantErr == "" {
				if res.Error != nil {
					t.Fatalf("unexpected error %+v", res.Error)
				}
				if auths != 1 {
					t.Errorf("the server saw %d Authorization headers, want 1", auths)
				}
				return
			}
			t.Logf("%s", res.Error.Message)
			if res.Error == nil || res.Error.Severity != model.SeverityHigh || !strings.Contains(res.Error.Message, tc.wantErr) || res.Types != nil {
				t.Fatalf("got %+v %+v, want a HIGH error with %q", res.Error, res.Types, tc.wantErr)
			}
			if conns != 0 || auths != 0 {
				t.Errorf("the server saw %d connections and %d Authorization headers, want none", conns, auths)
			}
		})
	}
}

// TestCredentialRedirects: a run with a credential does not follow a
// redirect to a host the credential may not be sent to, and checks the
// connections a redirect makes like the first.
func TestCredentialRedirects(t *testing.T) {
	ca := newCA(t)
	cert := ca.leaf(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	var redirectTo string
	srv := startAuthServer(t, cert, "", &redirectTo)
	srvPort := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	// Another server on another loopback address (Linux answers on all of
	// 127.0.0.0/8).
	other := startAuthServer(t, cert, "127.0.0.2:0", &redirectTo)
	otherPort := strconv.Itoa(other.Listener.Addr().(*net.TCPAddr).Port)
	// And one on 127.0.0.1 at another port.
	samehost := startAuthServer(t, cert, "", &redirectTo)
	haveLocalhost := resolvesToLoopback(t)

	cred := func(name string, hosts ...string) probe.Credential {
		return probe.Credential{Name: name, Kind: probe.KindPassword, Username: "admin", Secret: secret.New(distinctiveSecret), Hosts: hosts}
	}
	v := creds{
		"ip":        cred("ip", "127.0.0.1"),
		"names":     cred("names", "localhost", "*.corp"),
		"other":     cred("other", "127.0.0.2"),
		"loopbacks": cred("loopbacks", "127.0.0.1", "*.corp"),
	}
	for _, tc := range []struct {
		name, from, to, cred, wantErr string
		localhost                     bool
		target                        *authServer // the redirect's server
	}{
		{name: "to an address not permitted", from: srv.URL, to: "https://127.0.0.2:" + otherPort + "/seen?token=tok-abc", cred: "ip",
			wantErr: `GET ` + srv.URL + `: not following the redirect to https://127.0.0.2:` + otherPort + `: credential "ip" may not be sent to 127.0.0.2: its hosts are 127.0.0.1`,
			target:  other},
		{name: "to a name not permitted", from: "https://localhost:" + srvPort, to: "https://attacker.invalid/private-path?token=tok-abc", cred: "names", localhost: true,
			wantErr: `GET https://localhost:` + srvPort + `: not following the redirect to https://attacker.invalid: credential "names" may not be sent to attacker.invalid: its hosts are localhost, *.corp`},
		{name: "to a name resolving outside the addresses, refused when dialling", from: other.URL, to: "https://localhost:" + srvPort + "/private-path", cred: "other", localhost: true,
			wantErr: `GET ` + other.URL + `: following a redirect: credential "other" may not be sent to localhost (`,
			target:  srv},
		{name: "to a permitted host at another port", from: srv.URL, to: samehost.URL + "/", cred: "loopbacks", target: samehost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.localhost && !haveLocalhost {
				t.Skip("localhost does not resolve to 127.0.0.1 here")
			}
			redirectTo = tc.to
			var conns0, auths0 int64
			if tc.target != nil {
				conns0, auths0 = tc.target.conns.Load(), tc.target.auths.Load()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res := Probe(ctx, target(map[string]any{"url": tc.from + "/away", "ca": ca.pem, "credential": tc.cred}), v)
			assertNoSecrets(t, res)
			if tc.wantErr == "" {
				if res.Error != nil {
					t.Fatalf("unexpected error %+v", res.Error)
				}
				if m := metricsOf(t, res); m["redirects"].Int != 1 {
					t.Errorf("redirects = %+v", m["redirects"])
				}
				if tc.target.conns.Load() == conns0 || tc.target.auths.Load() != auths0 {
					t.Errorf("the redirect's server saw %d connections and %d Authorization headers, want some and none",
						tc.target.conns.Load()-conns0, tc.target.auths.Load()-auths0)
				}
				return
			}
			if res.Error == nil || res.Error.Severity != model.SeverityHigh || !strings.Contains(res.Error.Message, tc.wantErr) || res.Types != nil {
				t.Fatalf("got %+v %+v, want a HIGH error with %q", res.Error, res.Types, tc.wantErr)
			}
			t.Logf("%s", res.Error.Message)
			if tc.target != nil && tc.target.conns.Load() != conns0 {
				t.Errorf("the redirect's server saw %d connections, want none", tc.target.conns.Load()-conns0)
			}
		})
	}
}

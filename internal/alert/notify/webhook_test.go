package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
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

	"github.com/sonde-monitoring/sonde/internal/netguard"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

const whKeyValue = "whsec_do_not_leak_6f1c0a9e4b7d2c3e"

var (
	whKey  = secret.New(whKeyValue)
	whNow  = time.Unix(1_700_000_000, 0)
	whBody = []byte(`{"alert":"disk full","severity":"high","value":97.5}`)
)

// webhookCtx bounds every test that talks to a server, so a bug hangs nothing.
func webhookCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newTestWebhook(t *testing.T, cfg WebhookConfig) *Webhook {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return whNow }
	}
	w := NewWebhook(cfg)
	t.Cleanup(w.CloseIdleConnections)
	return w
}

// assertNoSecret fails if the key appears in err or resp, however formatted.
func assertNoSecret(t *testing.T, err error, resp Response) {
	t.Helper()
	var outs []string
	if err != nil {
		outs = append(outs, err.Error(), fmt.Sprintf("%+v %#v", err, err))
	}
	outs = append(outs, fmt.Sprintf("%+v %#v", resp, resp))
	for _, o := range outs {
		if strings.Contains(o, whKeyValue) {
			t.Fatalf("secret leaked: %s", o)
		}
	}
}

// hitCounter is a handler that counts requests and answers 200.
type hitCounter struct{ n atomic.Int32 }

func (c *hitCounter) ServeHTTP(w http.ResponseWriter, _ *http.Request) { c.n.Add(1) }

func serverCAPool(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

func TestSendDelivers(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run("tls="+strconv.FormatBool(useTLS), func(t *testing.T) {
			type received struct {
				method, contentType, userAgent, delivery string
				body                                     []byte
				verifyErr                                error
			}
			got := make(chan received, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("reading body: %v", err)
				}
				got <- received{
					method:      r.Method,
					contentType: r.Header.Get("Content-Type"),
					userAgent:   r.Header.Get("User-Agent"),
					delivery:    r.Header.Get("X-Sonde-Delivery"),
					body:        body,
					verifyErr: Verify(whKey, r.Header.Get("X-Sonde-Timestamp"), r.Header.Get("X-Sonde-Signature"),
						body, whNow.Add(3*time.Second), time.Minute),
				}
				w.WriteHeader(http.StatusAccepted)
				io.WriteString(w, "queued as 42")
			})
			var srv *httptest.Server
			cfg := WebhookConfig{AllowPrivate: true, UserAgent: "Sonde-Hub/1.2.3"}
			if useTLS {
				srv = httptest.NewTLSServer(h)
				cfg.RootCAs = serverCAPool(srv)
			} else {
				srv = httptest.NewServer(h)
			}
			defer srv.Close()

			resp, err := newTestWebhook(t, cfg).Send(webhookCtx(t), srv.URL+"/hooks/sonde?team=ops", whKey, "dlv-0001", whBody)
			assertNoSecret(t, err, resp)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if resp.Status != http.StatusAccepted || resp.Body != "queued as 42" || resp.Duration <= 0 {
				t.Errorf("Response = %+v", resp)
			}
			r := <-got
			if r.verifyErr != nil {
				t.Errorf("receiver's Verify: %v", r.verifyErr)
			}
			if r.method != http.MethodPost || r.contentType != "application/json" ||
				r.userAgent != "Sonde-Hub/1.2.3" || r.delivery != "dlv-0001" {
				t.Errorf("received %s, Content-Type %q, User-Agent %q, delivery %q", r.method, r.contentType, r.userAgent, r.delivery)
			}
			if !bytes.Equal(r.body, whBody) {
				t.Errorf("received body %q, want %q", r.body, whBody)
			}
		})
	}
}

func TestSendHeaders(t *testing.T) {
	hdr := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hdr <- r.Header.Clone() }))
	defer srv.Close()
	_, err := newTestWebhook(t, WebhookConfig{AllowPrivate: true}).Send(webhookCtx(t), srv.URL, whKey, "d-1", whBody)
	if err != nil {
		t.Fatal(err)
	}
	h := <-hdr
	if got := h.Get("X-Sonde-Timestamp"); got != "1700000000" {
		t.Errorf("X-Sonde-Timestamp = %q, want the injected clock's 1700000000", got)
	}
	if got, want := h.Get("X-Sonde-Signature"), Sign(whKey, 1_700_000_000, whBody); got != want {
		t.Errorf("X-Sonde-Signature = %q, want %q", got, want)
	}
	if got := h.Get("User-Agent"); got != "Sonde-Hub" {
		t.Errorf("default User-Agent = %q", got)
	}
}

func TestSignKnownAnswer(t *testing.T) {
	key := secret.New("whsec_known_answer_key")
	body := []byte(`{"alert":"disk full"}`)
	// Computed outside Go: python3 hmac.new(key, b"1700000000." + body, sha256).
	const want = "sha256=9490e0e56cdaa7971022acda4fbc02a1dda79aff5f0bacc595905e35b419d810"

	m := hmac.New(sha256.New, []byte("whsec_known_answer_key"))
	m.Write([]byte("1700000000." + string(body)))
	if independent := "sha256=" + hex.EncodeToString(m.Sum(nil)); independent != want {
		t.Fatalf("test vector is wrong: crypto/hmac gives %s", independent)
	}
	if got := Sign(key, 1_700_000_000, body); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	ts := strconv.FormatInt(whNow.Unix(), 10)
	sig := Sign(whKey, whNow.Unix(), whBody)
	for _, tc := range []struct {
		name      string
		key       secret.Secret
		ts, sig   string
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error // nil means valid
	}{
		{name: "valid", ts: ts, sig: sig},
		{name: "valid at the edge of tolerance", ts: ts, sig: sig, now: whNow.Add(time.Minute)},
		{name: "valid slightly in the future", ts: ts, sig: sig, now: whNow.Add(-30 * time.Second)},
		{name: "valid with default tolerance", ts: ts, sig: sig, now: whNow.Add(4 * time.Minute), tolerance: -1},
		{name: "tampered body", ts: ts, sig: sig, body: []byte(`{"alert":"disk fine","severity":"high","value":97.5}`), want: ErrBadSignature},
		{name: "empty body", ts: ts, sig: sig, body: []byte{}, want: ErrBadSignature},
		{name: "wrong key", key: secret.New("whsec_someone_else"), ts: ts, sig: sig, want: ErrBadSignature},
		{name: "timestamp changed", ts: strconv.FormatInt(whNow.Unix()+1, 10), sig: sig, want: ErrBadSignature},
		{name: "signature flipped", ts: ts, sig: sig[:len(sig)-1] + "0", want: ErrBadSignature},
		{name: "stale", ts: ts, sig: sig, now: whNow.Add(61 * time.Second), want: ErrStaleTimestamp},
		{name: "stale with default tolerance", ts: ts, sig: sig, now: whNow.Add(6 * time.Minute), tolerance: -1, want: ErrStaleTimestamp},
		{name: "from the future", ts: ts, sig: sig, now: whNow.Add(-2 * time.Minute), want: ErrStaleTimestamp},
		{name: "far future timestamp", ts: "9223372036854775807", sig: sig, want: ErrStaleTimestamp},
		{name: "empty timestamp", ts: "", sig: sig, want: ErrMalformedHeader},
		{name: "timestamp not a number", ts: "yesterday", sig: sig, want: ErrMalformedHeader},
		{name: "timestamp with plus sign", ts: "+" + ts, sig: sig, want: ErrMalformedHeader},
		{name: "timestamp with leading zero", ts: "0" + ts, sig: sig, want: ErrMalformedHeader},
		{name: "timestamp in milliseconds overflow", ts: "99999999999999999999", sig: sig, want: ErrMalformedHeader},
		{name: "empty signature", ts: ts, sig: "", want: ErrMalformedHeader},
		{name: "no prefix", ts: ts, sig: strings.TrimPrefix(sig, "sha256="), want: ErrMalformedHeader},
		{name: "other algorithm", ts: ts, sig: "sha1=" + strings.TrimPrefix(sig, "sha256="), want: ErrMalformedHeader},
		{name: "not hex", ts: ts, sig: "sha256=" + strings.Repeat("zz", 32), want: ErrMalformedHeader},
		{name: "truncated", ts: ts, sig: sig[:len(sig)-2], want: ErrMalformedHeader},
		{name: "too long", ts: ts, sig: sig + "00", want: ErrMalformedHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, body, now, tol := tc.key, tc.body, tc.now, tc.tolerance
			if key.IsZero() {
				key = whKey
			}
			if body == nil {
				body = whBody
			}
			if now.IsZero() {
				now = whNow
			}
			if tol == 0 {
				tol = time.Minute
			}
			err := Verify(key, tc.ts, tc.sig, body, now, tol)
			assertNoSecret(t, err, Response{})
			if tc.want == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if err := Verify(secret.New(""), ts, sig, whBody, whNow, time.Minute); err == nil {
		t.Error("Verify accepted an empty key")
	}
}

func TestSendStatus(t *testing.T) {
	for _, tc := range []struct {
		status         int
		wantErr        bool
		misconfigured  bool
		wantInErr      string
		redirectToPath string
	}{
		{status: 200},
		{status: 201},
		{status: 204},
		{status: 500, wantErr: true, wantInErr: "500 Internal Server Error"},
		{status: 502, wantErr: true},
		{status: 503, wantErr: true},
		{status: 408, wantErr: true},
		{status: 429, wantErr: true, wantInErr: "429"},
		{status: 400, wantErr: true, misconfigured: true},
		{status: 401, wantErr: true, misconfigured: true, wantInErr: "check the webhook URL and secret"},
		{status: 404, wantErr: true, misconfigured: true},
		{status: 410, wantErr: true, misconfigured: true, wantInErr: "410 Gone"},
		{status: 302, wantErr: true, misconfigured: true, redirectToPath: "/moved-here"},
		{status: 301, wantErr: true, misconfigured: true, redirectToPath: "/moved-here"},
		{status: 307, wantErr: true, misconfigured: true, redirectToPath: "/moved-here"},
		{status: 308, wantErr: true, misconfigured: true, redirectToPath: "/moved-here"},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			target := &hitCounter{}
			targetSrv := httptest.NewServer(target)
			defer targetSrv.Close()
			location := targetSrv.URL + tc.redirectToPath
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.redirectToPath != "" {
					w.Header().Set("Location", location)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, "answer body")
			}))
			defer srv.Close()

			resp, err := newTestWebhook(t, WebhookConfig{AllowPrivate: true}).Send(webhookCtx(t), srv.URL, whKey, "d-1", whBody)
			assertNoSecret(t, err, resp)
			if resp.Status != tc.status {
				t.Errorf("Response.Status = %d, want %d", resp.Status, tc.status)
			}
			if tc.status != 204 && resp.Body != "answer body" {
				t.Errorf("Response.Body = %q", resp.Body)
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if IsPermanent(err) {
				t.Errorf("error is permanent, the outbox would stop retrying: %v", err)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Status != tc.status {
				t.Fatalf("error %v is not a StatusError for %d", err, tc.status)
			}
			if se.Misconfigured() != tc.misconfigured {
				t.Errorf("Misconfigured() = %v, want %v", se.Misconfigured(), tc.misconfigured)
			}
			if tc.wantInErr != "" && !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantInErr)
			}
			if tc.redirectToPath != "" {
				if !strings.Contains(err.Error(), location) {
					t.Errorf("error %q does not name the redirect target %s", err, location)
				}
				if n := target.n.Load(); n != 0 {
					t.Errorf("redirect was followed: the target received %d requests", n)
				}
			}
		})
	}
}

func TestSendKeepsOnlyTheStartOfTheAnswer(t *testing.T) {
	answer := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	for _, status := range []int{200, 500} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(status)
				io.WriteString(w, answer)
			}))
			defer srv.Close()
			resp, _ := newTestWebhook(t, WebhookConfig{AllowPrivate: true}).Send(webhookCtx(t), srv.URL, whKey, "d-1", whBody)
			if resp.Body != answer[:ResponseBodyLimit] {
				t.Errorf("Response.Body has %d bytes, want the first %d", len(resp.Body), ResponseBodyLimit)
			}
		})
	}
}

func TestSendHangingEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request, release <-chan struct{})
		wantErr bool
		status  int // the answer's status, 0 if none
	}{
		{
			name: "no answer",
			handler: func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			},
			wantErr: true,
		},
		{
			name: "error status then a stalled body",
			handler: func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
				w.WriteHeader(http.StatusBadGateway)
				io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-release:
				}
			},
			wantErr: true,
			status:  http.StatusBadGateway,
		},
		{
			// The receiver accepted the delivery: a stalled answer is cut at
			// the timeout, and retrying would deliver twice.
			name: "success status then a stalled body",
			handler: func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-release:
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.handler(w, r, release) }))
			defer srv.Close()
			defer close(release) // before Close, which waits for the handlers

			const timeout = 300 * time.Millisecond
			w := newTestWebhook(t, WebhookConfig{AllowPrivate: true, Timeout: timeout})
			start := time.Now()
			resp, err := w.Send(webhookCtx(t), srv.URL, whKey, "d-1", whBody)
			elapsed := time.Since(start)
			assertNoSecret(t, err, resp)
			if elapsed > timeout+2*time.Second {
				t.Errorf("Send took %s with a %s timeout", elapsed, timeout)
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if !strings.HasPrefix(resp.Body, "partial") {
					t.Errorf("Response.Body = %q", resp.Body)
				}
				return
			}
			if err == nil {
				t.Fatal("Send succeeded against a hanging endpoint")
			}
			t.Logf("error: %v", err)
			if IsPermanent(err) {
				t.Errorf("timeout is permanent: %v", err)
			}
			if resp.Status != tc.status {
				t.Errorf("Response.Status = %d, want %d", resp.Status, tc.status)
			}
			if tc.status != 0 {
				var se *StatusError
				if !errors.As(err, &se) {
					t.Errorf("error %v is not a StatusError", err)
				}
				return
			}
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "within") {
				t.Errorf("error does not say it timed out: %v", err)
			}
		})
	}
}

func TestSendContextCancelled(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	ctx, cancel := context.WithCancel(webhookCtx(t))
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	resp, err := newTestWebhook(t, WebhookConfig{AllowPrivate: true, Timeout: 10 * time.Second}).Send(ctx, srv.URL, whKey, "d-1", whBody)
	assertNoSecret(t, err, resp)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %v, want context.Canceled", err)
	}
	if IsPermanent(err) {
		t.Errorf("cancellation is permanent: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Send took %s after cancellation", d)
	}
}

// TestGuardControl checks the webhook's dial guard: the allowlist itself
// is netguard's (internal/netguard tests it range by range), the error
// names the reason and the setting that allows the address.
func TestGuardControl(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		refused bool
	}{
		{addr: "127.0.0.1", refused: true},
		{addr: "::1", refused: true},
		{addr: "10.0.0.1", refused: true},
		{addr: "169.254.169.254", refused: true},
		{addr: "fd00:ec2::254", refused: true},
		{addr: "::ffff:127.0.0.1", refused: true},
		{addr: "64:ff9b:1::a9fe:a9fe", refused: true},
		{addr: "2002:a9fe:a9fe::1", refused: true},
		{addr: "2001:db8::1", refused: true},
		{addr: "8.8.8.8"},
		{addr: "2001:4860:4860::8888"},
		{addr: "64:ff9b::808:808"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			ip := netip.MustParseAddr(tc.addr)
			reason, refused := netguard.Refused(ip)
			if refused != tc.refused {
				t.Fatalf("netguard.Refused(%s) = %q, %v; want refused=%v", tc.addr, reason, refused, tc.refused)
			}
			// The dialler's guard sees "ip:port".
			err := guardControl("tcp", netip.AddrPortFrom(ip, 443).String(), nil)
			if (err != nil) != tc.refused {
				t.Errorf("guardControl = %v, want refused=%v", err, tc.refused)
			}
			if err == nil {
				return
			}
			var re *RefusedAddressError
			if !errors.As(err, &re) || re.Reason != reason {
				t.Errorf("guardControl error %#v is not a RefusedAddressError with reason %q", err, reason)
			}
			if !strings.Contains(err.Error(), reason) || !strings.Contains(err.Error(), "--allow-private-webhooks") {
				t.Errorf("guardControl error %q does not give the reason and the flag", err)
			}
		})
	}
	if err := guardControl("tcp", "not-an-address", nil); err == nil {
		t.Error("guardControl accepted an address it cannot parse")
	}
}

func TestSendRefusesPrivateDestinations(t *testing.T) {
	hits := &hitCounter{}
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(hits)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	pool := serverCAPool(srv)

	for _, tc := range []struct {
		name, url string
	}{
		{"literal 127.0.0.1", srv.URL},
		// A name is only resolved when dialling: this exercises the
		// dialler's guard on the resolved address, not the URL check.
		{"localhost resolved at dial time", fmt.Sprintf("https://localhost:%d/hook", port)},
		{"::1", fmt.Sprintf("https://[::1]:%d/hook", port)},
		{"IPv4-mapped loopback", fmt.Sprintf("https://[::ffff:127.0.0.1]:%d/hook", port)},
		{"10.x", "https://10.0.0.1/hook"},
		{"cloud metadata", "https://169.254.169.254/latest/meta-data/"},
		// Literal addresses the security review found the denylist let through.
		{"local-use NAT64 of cloud metadata", "https://[64:ff9b:1::a9fe:a9fe]/latest/meta-data/"},
		{"6to4 of cloud metadata", "https://[2002:a9fe:a9fe::1]/latest/meta-data/"},
		{"site-local", "https://[fec0::1]/hook"},
		{"benchmarking", "https://198.18.0.1/hook"},
		{"reserved", "https://240.0.0.1/hook"},
		{"IETF protocol assignments", "https://192.0.0.1/hook"},
		{"discard-only", "https://[100::1]/hook"},
		{"documentation", "https://[2001:db8::1]/hook"},
		{"Teredo", "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newTestWebhook(t, WebhookConfig{RootCAs: pool, Timeout: 2 * time.Second})
			resp, err := w.Send(webhookCtx(t), tc.url, whKey, "d-1", whBody)
			assertNoSecret(t, err, resp)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if !IsPermanent(err) {
				t.Errorf("refusal is not permanent: %v", err)
			}
			t.Logf("error: %v", err)
			var re *RefusedAddressError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a RefusedAddressError", err)
			}
			if !strings.Contains(err.Error(), re.Addr) || !strings.Contains(err.Error(), "AllowPrivate") {
				t.Errorf("error %q does not name the address and the flag", err)
			}
		})
	}
	if n, c := hits.n.Load(), conns.Load(); n != 0 || c != 0 {
		t.Errorf("the server received %d requests on %d connections", n, c)
	}

	// The same server is reachable once AllowPrivate is set.
	w := newTestWebhook(t, WebhookConfig{RootCAs: pool, AllowPrivate: true})
	if _, err := w.Send(webhookCtx(t), srv.URL, whKey, "d-1", whBody); err != nil {
		t.Fatalf("with AllowPrivate: %v", err)
	}
}

func TestSendRejectsBadInput(t *testing.T) {
	hits := &hitCounter{}
	srv := httptest.NewServer(hits)
	defer srv.Close()

	for _, tc := range []struct {
		name         string
		allowPrivate bool
		url          string
		noKey        bool
		deliveryID   string
		wantInErr    string
	}{
		{name: "http without AllowPrivate", url: srv.URL, wantInErr: "https://"},
		{name: "http public host", url: "http://example.com/hook", wantInErr: "https://"},
		{name: "ftp", allowPrivate: true, url: "ftp://example.com/hook", wantInErr: "https://"},
		{name: "no scheme", allowPrivate: true, url: "example.com/hook", wantInErr: "https://"},
		{name: "userinfo", allowPrivate: true, url: "https://user:" + whKeyValue + "@example.com/hook", wantInErr: "user name"},
		{name: "userinfo in http", allowPrivate: true, url: strings.Replace(srv.URL, "http://", "http://user@", 1), wantInErr: "user name"},
		{name: "no host", allowPrivate: true, url: "https:///hook", wantInErr: "no host"},
		{name: "port only", allowPrivate: true, url: "https://:443/hook", wantInErr: "no host"},
		{name: "opaque", allowPrivate: true, url: "https:example.com", wantInErr: "no host"},
		{name: "unparsable", allowPrivate: true, url: "https://exa mple.com/%zz" + whKeyValue, wantInErr: "does not parse"},
		{name: "empty", allowPrivate: true, url: "", wantInErr: "https://"},
		{name: "no key", allowPrivate: true, url: srv.URL, noKey: true, wantInErr: "signing secret"},
		{name: "empty delivery id", allowPrivate: true, url: srv.URL, deliveryID: "-", wantInErr: "delivery id"},
		{name: "delivery id with CRLF", allowPrivate: true, url: srv.URL, deliveryID: "d-1\r\nX-Evil: 1", wantInErr: "delivery id"},
		{name: "delivery id with space", allowPrivate: true, url: srv.URL, deliveryID: "d 1", wantInErr: "delivery id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := whKey
			if tc.noKey {
				key = secret.New("")
			}
			id := tc.deliveryID
			switch id {
			case "":
				id = "d-1"
			case "-":
				id = ""
			}
			w := newTestWebhook(t, WebhookConfig{AllowPrivate: tc.allowPrivate})
			resp, err := w.Send(webhookCtx(t), tc.url, key, id, whBody)
			assertNoSecret(t, err, resp)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			t.Logf("error: %v", err)
			if !IsPermanent(err) {
				t.Errorf("error is not permanent: %v", err)
			}
			if !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tc.wantInErr)
			}
		})
	}
	if n := hits.n.Load(); n != 0 {
		t.Errorf("the server received %d requests", n)
	}
}

func TestSendTransportFailuresAreRetryable(t *testing.T) {
	quiet := log.New(io.Discard, "", 0) // the handshake failures are expected
	tlsSrv := httptest.NewUnstartedServer(&hitCounter{})
	tlsSrv.Config.ErrorLog = quiet
	tlsSrv.StartTLS()
	defer tlsSrv.Close()

	oldTLS := httptest.NewUnstartedServer(&hitCounter{})
	oldTLS.Config.ErrorLog = quiet
	oldTLS.TLS = &tls.Config{MaxVersion: tls.VersionTLS11}
	oldTLS.StartTLS()
	defer oldTLS.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "https://" + ln.Addr().String() + "/hook"
	ln.Close()

	for _, tc := range []struct {
		name    string
		url     string
		rootCAs *x509.CertPool
	}{
		{"unknown certificate authority", tlsSrv.URL, nil},
		{"TLS below 1.2", oldTLS.URL, serverCAPool(oldTLS)},
		{"connection refused", closedURL, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newTestWebhook(t, WebhookConfig{AllowPrivate: true, RootCAs: tc.rootCAs, Timeout: 2 * time.Second})
			resp, err := w.Send(webhookCtx(t), tc.url, whKey, "d-1", whBody)
			assertNoSecret(t, err, resp)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			t.Logf("error: %v", err)
			if IsPermanent(err) {
				t.Errorf("error is permanent: %v", err)
			}
			if resp.Status != 0 {
				t.Errorf("Response.Status = %d without an answer", resp.Status)
			}
		})
	}
}

func TestSendErrorsNameHostNotPathOrQuery(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	const token = "T0KEN-in-the-path"
	_, err := newTestWebhook(t, WebhookConfig{AllowPrivate: true}).Send(webhookCtx(t), srv.URL+"/services/"+token+"?sig="+token, whKey, "d-1", whBody)
	if err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("error = %v, want the host and no path or query", err)
	}
}

func TestSendConcurrent(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := Verify(whKey, r.Header.Get("X-Sonde-Timestamp"), r.Header.Get("X-Sonde-Signature"), body, whNow, time.Minute); err != nil {
			t.Errorf("Verify: %v", err)
		}
		mu.Lock()
		seen[r.Header.Get("X-Sonde-Delivery")] = true
		mu.Unlock()
	}))
	defer srv.Close()

	w := newTestWebhook(t, WebhookConfig{AllowPrivate: true})
	ctx := webhookCtx(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			id := fmt.Sprintf("d-%d", i)
			if _, err := w.Send(ctx, srv.URL, whKey, id, []byte(`{"n":`+strconv.Itoa(i)+`}`)); err != nil {
				t.Errorf("Send %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	if len(seen) != 20 {
		t.Errorf("received %d distinct deliveries, want 20", len(seen))
	}
}

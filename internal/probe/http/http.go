// Package httpprobe is the http probe: one GET (or HEAD) of a URL, following
// redirects, with TLS verification always on, reporting the status, timings,
// size of the body and whether the body matches a pattern. It never sends a
// body, keeps no cookies and uses no proxy.
//
// Configuration (collector and check key "http"):
//
//	url              string  http:// or https:// URL (required); no user
//	                         name or password in it: use credential
//	method           string  "GET" (default) or "HEAD"
//	expectStatus     []int   acceptable final status codes (default: any
//	                         2xx; any 2xx or 3xx when followRedirects is false)
//	bodyMatch        string  regular expression (RE2 syntax) the body must
//	                         match (GET only)
//	followRedirects  bool    follow up to 10 redirects (default true)
//	maxBody          int     bytes of body read at most (default 1048576,
//	                         at most 67108864); the rest is not read
//	credential       string  name of a vault entry to authenticate with;
//	                         https:// only; the entry's hosts must permit
//	                         the URL's host (see below)
//	auth             string  "basic" (default: entry's user name and secret;
//	                         the entry must be of kind password) or "bearer"
//	                         (entry's secret as the token; kind token, or
//	                         password for a service that calls its API key a
//	                         password)
//	ca               string  PEM certificates trusted in addition to the
//	                         system's roots
//	timeout          float   seconds the run may take at most (0: the run's
//	                         deadline; at most 300); without a deadline on
//	                         the run, 10 s
//
// A credential goes only where the appliance's vault lets it: the hub
// configures both the URL and the credential's name, so without this
// whoever can configure checks could have any credential sent to a server
// of theirs. The entry's hosts (set on the appliance with "sonde-appliance
// vault hosts") must permit every connection the run makes, redirects
// included: a host name that a name pattern of the entry matches may be
// reached at whatever addresses it resolves to; any other host only at an
// address that an address or network pattern matches. The address is
// checked when the connection is made, against the address actually
// dialled (net.Dialer's Control), so a name that resolves to one address
// when checked and another when connecting (DNS rebinding) gains nothing.
// A host that cannot be permitted whatever it resolves to (an address
// literal, or a name when the entry has only name patterns) is refused
// before anything is sent, and so is a redirect to one: it is not followed.
//
// The Authorization header is sent to the configured URL's origin only: a
// redirect to another scheme, host or port (that the credential's hosts
// permit) drops it.
//
// Result: one type, "http", with one item named by the configured URL's host
// (and port, when given). Neither the path nor the query of any URL appears
// in the result or in an error: they may carry tokens.
//
//	metric           kind    meaning
//	statusCode       int     status code of the final response
//	responseTime     float   seconds from the start until the body was read
//	                         (redirects included)
//	timeToFirstByte  float   seconds from the start until the final
//	                         response's first byte (redirects included)
//	size             int     bytes of body read (after decompression),
//	                         at most maxBody
//	bodyTruncated    bool    the body was longer than maxBody
//	redirects        int     redirects followed
//	finalHost        string  host (and port) of the final URL
//	protocol         string  "HTTP/1.1", "HTTP/2.0", …
//	bodyMatch        bool    the body matches bodyMatch (only when set)
//
// Errors and their severities (a configuration error is HIGH: the check
// collects nothing until it is fixed):
//
//	HIGH    the configuration is invalid or the credential is not in the
//	        vault; the credential is of a kind the auth does not take, or
//	        its hosts do not permit the URL's host, an address it resolves
//	        to, or a redirect's host (the redirect is not followed); the
//	        run's address policy (see probe.WithAddrPolicy) refuses an
//	        address a connection would go to, a redirect's included; no
//	        response (name does not resolve, connection refused,
//	        TLS verification failed, not HTTP, headers over 64 KiB, timeout);
//	        the final status is an unexpected 5xx; reading the body timed out
//	MEDIUM  an unexpected status other than 5xx; the body does not match;
//	        more than 10 redirects; the body could not be read (e.g. broken
//	        chunked encoding). A result is sent with these.
package httpprobe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

const (
	defaultMaxBody   = 1 << 20
	maxMaxBody       = 64 << 20
	maxRedirects     = 10
	maxHeaderBytes   = 64 << 10
	maxTimeout       = 300 // seconds
	defaultTimeout   = 10 * time.Second
	maxPatternLen    = 4096
	maxExpectStatus  = 32
	maxMessageLength = 2048
	userAgent        = "Sonde-http-probe/1"
)

var _ probe.Func = Probe

// Config is the http check's configuration.
type Config struct {
	// URL is what to fetch: an http:// or https:// URL without user
	// information.
	URL string `json:"url"`
	// Method is GET (default) or HEAD.
	Method string `json:"method"`
	// ExpectStatus lists the acceptable status codes of the final
	// response. Empty means any 2xx (any 2xx or 3xx when redirects are not
	// followed).
	ExpectStatus []int `json:"expectStatus"`
	// BodyMatch is a regular expression the body must match.
	BodyMatch string `json:"bodyMatch"`
	// FollowRedirects follows up to 10 redirects; nil means true.
	FollowRedirects *bool `json:"followRedirects"`
	// MaxBody is how many bytes of the body are read at most; zero means
	// 1 MiB.
	MaxBody int64 `json:"maxBody"`
	// Credential names the vault entry to authenticate with.
	Credential string `json:"credential"`
	// Auth is how the credential is sent: "basic" (default) or "bearer".
	Auth string `json:"auth"`
	// CA holds PEM certificates to trust besides the system's roots.
	CA string `json:"ca"`
	// Timeout is how long the run may take at most, in seconds. Zero means
	// the run's own deadline.
	Timeout float64 `json:"timeout"`
}

// settings is a validated Config, ready to use.
type settings struct {
	url          *url.URL
	method       string
	expect       func(int) bool
	expectText   string
	pattern      *regexp.Regexp
	follow       bool
	maxBody      int64
	credential   string
	bearer       bool
	roots        *x509.CertPool
	timeout      time.Duration
	itemName     string
	redactedBase string // scheme://host, for messages
}

// Validate checks the configuration and names the field that is wrong.
func (c *Config) Validate() error {
	_, err := c.settings()
	return err
}

func (c *Config) settings() (*settings, error) {
	s := &settings{follow: c.FollowRedirects == nil || *c.FollowRedirects}
	if c.URL == "" {
		return nil, errors.New("config.url: missing")
	}
	// A url.Error repeats the whole URL, which may hold a token: report
	// only what is wrong with it.
	u, err := url.Parse(c.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("config.url: not a valid URL: %v", err)
	}
	switch u.Scheme {
	case "http", "https":
	default:
		return nil, errors.New("config.url: the scheme must be http or https")
	}
	if u.User != nil {
		return nil, errors.New("config.url: must not hold a user name or password; put them in the vault and name the entry in config.credential")
	}
	if u.Hostname() == "" {
		return nil, errors.New("config.url: has no host")
	}
	u.Fragment, u.RawFragment = "", ""
	s.url = u
	s.itemName = strings.ToLower(u.Host)
	s.redactedBase = u.Scheme + "://" + s.itemName

	switch m := strings.ToUpper(c.Method); m {
	case "", http.MethodGet:
		s.method = http.MethodGet
	case http.MethodHead:
		s.method = http.MethodHead
	default:
		return nil, errors.New("config.method: must be GET or HEAD")
	}

	if len(c.ExpectStatus) > maxExpectStatus {
		return nil, fmt.Errorf("config.expectStatus: must hold at most %d status codes", maxExpectStatus)
	}
	for _, code := range c.ExpectStatus {
		if code < 100 || code > 599 {
			return nil, errors.New("config.expectStatus: status codes must be between 100 and 599")
		}
	}
	switch {
	case len(c.ExpectStatus) > 0:
		codes := slices.Clone(c.ExpectStatus)
		s.expect = func(code int) bool { return slices.Contains(codes, code) }
		parts := make([]string, len(codes))
		for i, code := range codes {
			parts[i] = strconv.Itoa(code)
		}
		s.expectText = strings.Join(parts, ", ")
	case s.follow:
		s.expect = func(code int) bool { return code >= 200 && code < 300 }
		s.expectText = "2xx"
	default:
		s.expect = func(code int) bool { return code >= 200 && code < 400 }
		s.expectText = "2xx or 3xx"
	}

	if c.BodyMatch != "" {
		if len(c.BodyMatch) > maxPatternLen {
			return nil, fmt.Errorf("config.bodyMatch: must be at most %d bytes", maxPatternLen)
		}
		if s.method == http.MethodHead {
			return nil, errors.New("config.bodyMatch: a HEAD response has no body; use method GET")
		}
		re, err := regexp.Compile(c.BodyMatch)
		if err != nil {
			return nil, fmt.Errorf("config.bodyMatch: %w", err)
		}
		s.pattern = re
	}

	switch {
	case c.MaxBody == 0:
		s.maxBody = defaultMaxBody
	case c.MaxBody < 0 || c.MaxBody > maxMaxBody:
		return nil, fmt.Errorf("config.maxBody: must be between 1 and %d bytes", maxMaxBody)
	default:
		s.maxBody = c.MaxBody
	}

	switch c.Auth {
	case "", "basic":
	case "bearer":
		s.bearer = true
	default:
		return nil, errors.New(`config.auth: must be "basic" or "bearer"`)
	}
	if c.Auth != "" && c.Credential == "" {
		return nil, errors.New("config.auth: needs config.credential, the name of a vault entry")
	}
	if c.Credential != "" && u.Scheme != "https" {
		return nil, errors.New("config.credential: credentials are sent over https only; use an https:// URL")
	}
	s.credential = c.Credential

	if c.CA != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM([]byte(c.CA)) {
			return nil, errors.New("config.ca: holds no PEM certificate")
		}
		s.roots = pool
	}

	if c.Timeout < 0 || c.Timeout > maxTimeout {
		return nil, fmt.Errorf("config.timeout: must be between 0 and %d seconds", maxTimeout)
	}
	s.timeout = time.Duration(c.Timeout * float64(time.Second))
	return s, nil
}

// Probe fetches the configured URL and reports on the response.
func Probe(ctx context.Context, t probe.Target, creds probe.Credentials) probe.Result {
	var c Config
	if err := probe.DecodeConfig(t.Config, &c); err != nil {
		return probe.Fail(model.SeverityHigh, "%v", err)
	}
	s, err := c.settings()
	if err != nil {
		return probe.Fail(model.SeverityHigh, "%v", err)
	}
	if s.credential == "" {
		return run(ctx, s, "", nil)
	}
	if creds == nil {
		return probe.Fail(model.SeverityHigh, "config.credential: no vault is available to look up %q", s.credential)
	}
	cr, err := creds.Credential(s.credential)
	if errors.Is(err, probe.ErrNoCredential) {
		return probe.Fail(model.SeverityHigh, "config.credential: the vault has no entry %q; add it to the appliance's vault or fix the name", s.credential)
	}
	if err != nil {
		return probe.Fail(model.SeverityHigh, "looking up credential %q: %v", s.credential, err)
	}
	if cr.Name == "" {
		cr.Name = s.credential
	}
	if cr.Kind == probe.KindToken && !s.bearer {
		return probe.Fail(model.SeverityHigh, `credential %q is a token, which auth "basic" does not send: set config.auth to "bearer", or use a credential of kind password`, cr.Name)
	}
	g := &guard{cred: cr}
	if err := g.check(s.url.Hostname(), netip.Addr{}); err != nil {
		return probe.Fail(model.SeverityHigh, "%s %s: %v", s.method, s.redactedBase, err)
	}
	auth := authorization(cr, s.bearer)
	res := run(ctx, s, auth, g)
	// Whatever a server echoes back (a status line, a host name) must not
	// carry the secret into the result.
	scrub(&res, cr.Secret, auth)
	return res
}

// credentialKinds are the kinds of vault entry the http probe takes; auth
// "basic" takes only a password (a token is refused before this).
var credentialKinds = []string{probe.KindPassword, probe.KindToken}

// guard keeps a run with a credential to the hosts the credential permits.
type guard struct {
	cred probe.Credential

	mu      sync.Mutex
	refused error // the first connection refused, for the message
}

// check checks the credential for host and, when valid, ip, the address
// about to be dialled (see probe.CheckCredential).
func (g *guard) check(host string, ip netip.Addr) error {
	return probe.CheckCredential(g.cred, "the http probe", credentialKinds, host, ip)
}

// dialer returns the transport's DialContext: it connects to addr
// ("host:port"), refusing every address the run's address policy (see
// probe.WithAddrPolicy; runCtx carries it) refuses and, with g, every
// address the credential may not be sent to. The checks run in the
// dialer's Control function, on the address about to be connected, after
// resolution, for every connection of the run: redirects included.
func (g *guard) dialer(runCtx context.Context) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var credential func(network, address string, c syscall.RawConn) error
		if g != nil {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			credential = func(_, address string, _ syscall.RawConn) error { return g.control(host, address) }
		}
		// The policy is checked first, then the credential's hosts.
		d := &net.Dialer{KeepAlive: -1, Control: probe.DialControl(runCtx, credential)}
		return d.DialContext(ctx, network, addr)
	}
}

// control refuses address ("ip:port", about to be dialled for host) when
// the credential may not be sent to it, and keeps the first refusal for
// the message.
func (g *guard) control(host, address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refusing to connect to %q: not an address and port: %w", address, probe.ErrCredentialNotPermitted)
	}
	if err := g.check(host, ap.Addr()); err != nil {
		g.mu.Lock()
		if g.refused == nil {
			g.refused = err
		}
		g.mu.Unlock()
		return err
	}
	return nil
}

// refusal returns the first connection the guard refused, or nil.
func (g *guard) refusal() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused
}

// redirectRefused is CheckRedirect's error for a redirect to a host the
// credential may not be sent to.
type redirectRefused struct {
	to  string // scheme://host of the redirect
	err error
}

func (e *redirectRefused) Error() string {
	return fmt.Sprintf("not following the redirect to %s: %v", e.to, e.err)
}

func (e *redirectRefused) Unwrap() error { return e.err }

// authorization builds the Authorization header's value.
func authorization(cr probe.Credential, bearer bool) string {
	if bearer {
		return "Bearer " + cr.Secret.Reveal()
	}
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(cr.Username+":"+cr.Secret.Reveal()))
}

// run does the request; auth is the Authorization header's value or "",
// and g, when not nil, keeps every connection to the hosts the credential
// permits.
func run(ctx context.Context, s *settings, auth string, g *guard) probe.Result {
	switch {
	case s.timeout > 0:
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	default:
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
			defer cancel()
		}
	}

	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            g.dialer(ctx),
		TLSClientConfig:        &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:      true,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	defer tr.CloseIdleConnections()

	redirects, tooMany := 0, false
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !s.follow {
				return http.ErrUseLastResponse
			}
			if len(via) > maxRedirects {
				tooMany = true
				return http.ErrUseLastResponse
			}
			if g != nil {
				if err := g.check(req.URL.Hostname(), netip.Addr{}); err != nil {
					return &redirectRefused{to: req.URL.Scheme + "://" + strings.ToLower(req.URL.Host), err: err}
				}
			}
			if !sameOrigin(req.URL, s.url) {
				req.Header.Del("Authorization")
			}
			redirects++
			return nil
		},
	}

	start := time.Now()
	var firstByte atomic.Int64 // nanoseconds since start of the latest response
	trace := &httptrace.ClientTrace{
		GotFirstResponseByte: func() { firstByte.Store(int64(time.Since(start))) },
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), s.method, s.url.String(), nil)
	if err != nil {
		return probe.Fail(model.SeverityHigh, "%s %s: %v", s.method, s.redactedBase, unwrapURLError(err))
	}
	req.Header.Set("User-Agent", userAgent)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}

	resp, err := client.Do(req)
	if err != nil {
		var rr *redirectRefused
		if errors.As(err, &rr) {
			return probe.Fail(model.SeverityHigh, "%s %s: %s", s.method, s.redactedBase, shorten(rr.Error()))
		}
		if refused := g.refusal(); refused != nil && errors.Is(err, probe.ErrCredentialNotPermitted) {
			where := ""
			if redirects > 0 {
				where = "following a redirect: "
			}
			return probe.Fail(model.SeverityHigh, "%s %s: %s%s", s.method, s.redactedBase, where, shorten(refused.Error()))
		}
		if refused, ok := errors.AsType[*probe.AddrRefusedError](err); ok {
			where := ""
			if redirects > 0 {
				where = "following a redirect: "
			}
			return probe.Fail(model.SeverityHigh, "%s %s: %s%s", s.method, s.redactedBase, where, shorten(refused.Error()))
		}
		if ctx.Err() != nil || isTimeout(err) {
			return probe.Fail(model.SeverityHigh, "%s %s: no response before the deadline (%v)", s.method, s.redactedBase, shorten(unwrapURLError(err).Error()))
		}
		if errors.Is(err, io.EOF) {
			return probe.Fail(model.SeverityHigh, "%s %s: the server closed the connection without answering", s.method, s.redactedBase)
		}
		return probe.Fail(model.SeverityHigh, "%s %s: %v", s.method, s.redactedBase, shorten(unwrapURLError(err).Error()))
	}
	defer resp.Body.Close()

	var body bytes.Buffer
	var sink io.Writer = io.Discard
	if s.pattern != nil {
		sink = &body
	}
	n, readErr := io.Copy(sink, io.LimitReader(resp.Body, s.maxBody+1))
	truncated := n > s.maxBody
	if truncated {
		n = s.maxBody
		if body.Len() > int(s.maxBody) {
			body.Truncate(int(s.maxBody))
		}
	}
	elapsed := time.Since(start)
	ttfb := time.Duration(firstByte.Load())
	if ttfb <= 0 || ttfb > elapsed {
		ttfb = elapsed
	}

	metrics := []model.Metric{
		{Name: "statusCode", Value: model.IntValue(int64(resp.StatusCode))},
		{Name: "responseTime", Value: model.FloatValue(elapsed.Seconds())},
		{Name: "timeToFirstByte", Value: model.FloatValue(ttfb.Seconds())},
		{Name: "size", Value: model.IntValue(n)},
		{Name: "bodyTruncated", Value: model.BoolValue(truncated)},
		{Name: "redirects", Value: model.IntValue(int64(redirects))},
		{Name: "finalHost", Value: model.StringValue(strings.ToLower(resp.Request.URL.Host))},
		{Name: "protocol", Value: model.StringValue(resp.Proto)},
	}
	var problems []problem
	if readErr != nil {
		sev := model.SeverityMedium
		if ctx.Err() != nil || isTimeout(readErr) {
			sev = model.SeverityHigh
		}
		problems = append(problems, problem{sev, fmt.Sprintf("reading the body: %s", shorten(readErr.Error()))})
	}
	if s.pattern != nil {
		matched := readErr == nil && s.pattern.Match(body.Bytes())
		metrics = append(metrics, model.Metric{Name: "bodyMatch", Value: model.BoolValue(matched)})
		if !matched && readErr == nil {
			problems = append(problems, problem{model.SeverityMedium, "the body does not match config.bodyMatch"})
		}
	}
	if tooMany {
		problems = append(problems, problem{model.SeverityMedium, fmt.Sprintf("stopped after %d redirects", maxRedirects)})
	} else if !s.expect(resp.StatusCode) {
		sev := model.SeverityMedium
		if resp.StatusCode >= 500 {
			sev = model.SeverityHigh
		}
		problems = append(problems, problem{sev, fmt.Sprintf("status %d, expected %s", resp.StatusCode, s.expectText)})
	}

	res := probe.Result{Types: []model.Type{{Name: "http", Items: []model.Item{{Name: s.itemName, Metrics: metrics}}}}}
	if len(problems) > 0 {
		sev := model.SeverityLow
		msgs := make([]string, len(problems))
		for i, p := range problems {
			sev = min(sev, p.sev)
			msgs[i] = p.msg
		}
		res.Error = &model.CheckError{Severity: sev, Message: fmt.Sprintf("%s %s: %s", s.method, s.redactedBase, strings.Join(msgs, "; "))}
	}
	return res
}

// problem is one thing wrong with a response.
type problem struct {
	sev model.Severity
	msg string
}

// sameOrigin reports whether u has a's scheme, host and port.
func sameOrigin(u, a *url.URL) bool {
	return u.Scheme == a.Scheme && strings.EqualFold(u.Hostname(), a.Hostname()) && port(u) == port(a)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// unwrapURLError drops the *url.Error wrapper net/http puts around every
// error: it repeats the whole URL, query and all.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// shorten bounds a message that may quote what a server sent.
func shorten(s string) string {
	if len(s) <= maxMessageLength {
		return s
	}
	return s[:maxMessageLength] + "…"
}

// scrub replaces every occurrence of the credential's secret, and of the
// Authorization value built from it, in the result's strings.
func scrub(res *probe.Result, sec secret.Secret, auth string) {
	needles := []string{auth, strings.TrimPrefix(strings.TrimPrefix(auth, "Basic "), "Bearer "), sec.Reveal()}
	clean := func(s string) string {
		for _, n := range needles {
			if n != "" {
				s = strings.ReplaceAll(s, n, secret.Redacted)
			}
		}
		return s
	}
	if res.Error != nil {
		res.Error.Message = clean(res.Error.Message)
	}
	var value func(v *model.Value)
	value = func(v *model.Value) {
		v.Str = clean(v.Str)
		for i := range v.List {
			value(&v.List[i])
		}
	}
	for ti := range res.Types {
		for ii := range res.Types[ti].Items {
			it := &res.Types[ti].Items[ii]
			it.Name = clean(it.Name)
			for mi := range it.Metrics {
				value(&it.Metrics[mi].Value)
			}
		}
	}
}

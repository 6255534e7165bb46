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
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sonde-monitoring/sonde/internal/netguard"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

// The webhook contract. Receivers rely on these names and formats exactly.
const (
	// HeaderTimestamp carries the Unix time (seconds, decimal) the delivery
	// was signed at.
	HeaderTimestamp = "X-Sonde-Timestamp"
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256, keyed by the
	// webhook secret, of "<timestamp>." followed by the body.
	HeaderSignature = "X-Sonde-Signature"
	// HeaderDelivery carries the delivery id, the same on every retry of one
	// delivery, so receivers can deduplicate.
	HeaderDelivery = "X-Sonde-Delivery"
)

// DefaultWebhookTimeout bounds one delivery attempt when WebhookConfig.Timeout is zero.
const DefaultWebhookTimeout = 10 * time.Second

// DefaultVerifyTolerance is the clock skew Verify accepts when given no tolerance.
const DefaultVerifyTolerance = 5 * time.Minute

// ResponseBodyLimit is how much of the receiver's answer Send keeps for the delivery log.
const ResponseBodyLimit = 1 << 10

const (
	// drainLimit is how much more of an answer Send reads, and discards, so
	// the connection can be reused; a longer answer costs a new connection.
	drainLimit = 64 << 10
	// maxHeaderBytes bounds the response headers a receiver can send.
	maxHeaderBytes  = 64 << 10
	signaturePrefix = "sha256="
)

// Sentinel errors of Verify.
var (
	// ErrMalformedHeader: a header is missing or not in the contract's format.
	ErrMalformedHeader = errors.New("malformed webhook signature header")
	// ErrStaleTimestamp: the delivery was signed too long ago (or ahead), a possible replay.
	ErrStaleTimestamp = errors.New("webhook timestamp outside the accepted window")
	// ErrBadSignature: the body, timestamp or key differ from what was signed.
	ErrBadSignature = errors.New("webhook signature does not match")
)

// WebhookConfig configures a Webhook.
type WebhookConfig struct {
	// Timeout bounds one attempt: connecting, TLS, sending, waiting for the
	// headers and reading the answer. Zero means DefaultWebhookTimeout.
	Timeout time.Duration
	// AllowPrivate lets the hub call loopback, private, link-local and
	// similar addresses, and plain http:// URLs. It is meant for tests on
	// loopback and lab setups; left false, a webhook cannot be used to probe
	// the hub's own network or a cloud metadata endpoint.
	AllowPrivate bool
	// RootCAs verifies the receivers' certificates; nil means the system roots.
	RootCAs *x509.CertPool
	// Now gives the signing time; nil means time.Now.
	Now func() time.Time
	// UserAgent is sent as User-Agent, e.g. "Sonde-Hub/1.4.0"; empty means "Sonde-Hub".
	UserAgent string
}

// Webhook delivers signed JSON payloads with HTTP POST, one attempt per
// Send. It is safe for concurrent use and reuses connections.
type Webhook struct {
	client       *http.Client
	timeout      time.Duration
	allowPrivate bool
	now          func() time.Time
	userAgent    string
}

// Response is what the receiver answered, for the delivery log.
type Response struct {
	// Status is the HTTP status code, 0 if no answer was received.
	Status int
	// Body is the first ResponseBodyLimit bytes of the answer, with invalid
	// UTF-8 replaced.
	Body string
	// Duration is the time the attempt took.
	Duration time.Duration
}

// StatusError is the error Send returns for an answer that is not 2xx. It
// is not permanent: see Misconfigured.
type StatusError struct {
	Status int
	// Location is the redirect target of a 3xx answer; Send does not follow it.
	Location string
}

// Error says what the receiver answered and, for a redirect, where to.
func (e *StatusError) Error() string {
	switch {
	case e.Status >= 300 && e.Status < 400:
		loc := e.Location
		if loc == "" {
			loc = "(no Location header)"
		}
		return fmt.Sprintf("receiver answered %d %s, redirecting to %s: redirects are not followed, set the webhook URL to the final address",
			e.Status, http.StatusText(e.Status), loc)
	case e.Misconfigured():
		return fmt.Sprintf("receiver answered %d %s: check the webhook URL and secret", e.Status, http.StatusText(e.Status))
	default:
		return fmt.Sprintf("receiver answered %d %s", e.Status, http.StatusText(e.Status))
	}
}

// Misconfigured reports whether the answer points at a problem the user
// must fix (a redirect, or a 4xx other than 408 and 429: wrong URL, the
// receiver rejecting the signature, an endpoint that is gone).
//
// Such answers are still not Permanent: the outbox retries failures with
// backoff for 24 hours, and a receiver that is being redeployed or
// reconfigured often answers 401, 404 or 410 for a while. Stopping early
// would lose alerts the user fixes within the retry window. The outbox can
// use Misconfigured to flag the webhook to the user instead.
func (e *StatusError) Misconfigured() bool {
	switch {
	case e.Status >= 300 && e.Status < 400:
		return true
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests:
		return false
	default:
		return e.Status >= 400 && e.Status < 500
	}
}

// RefusedAddressError is the (permanent) error for a destination the SSRF
// guard refuses.
type RefusedAddressError struct {
	Addr   string // the address that was about to be dialled, or the URL's host
	Reason string // names the refused range, e.g. "loopback address 127.0.0.0/8 (RFC 1122)"
}

// Error names the address, the reason and the setting that allows it.
func (e *RefusedAddressError) Error() string {
	return fmt.Sprintf("refusing to connect to %s: %s (allowed only with AllowPrivate, the hub's --allow-private-webhooks, for tests and lab setups)", e.Addr, e.Reason)
}

// NewWebhook returns a Webhook for cfg.
func NewWebhook(cfg WebhookConfig) *Webhook {
	w := &Webhook{
		timeout:      cfg.Timeout,
		allowPrivate: cfg.AllowPrivate,
		now:          cfg.Now,
		userAgent:    cfg.UserAgent,
	}
	if w.timeout <= 0 {
		w.timeout = DefaultWebhookTimeout
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.userAgent == "" {
		w.userAgent = "Sonde-Hub"
	}
	dialer := &net.Dialer{Timeout: w.timeout, KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivate {
		// The check runs on the address actually being dialled, after DNS
		// resolution, so a name that resolves (or rebinds) to a private
		// address is refused too.
		dialer.Control = guardControl
	}
	transport := &http.Transport{
		// No proxy from the environment: through a proxy, the dialled
		// address would be the proxy's and the guard would check nothing.
		Proxy:       nil,
		DialContext: dialer.DialContext,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			RootCAs:    cfg.RootCAs,
		},
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    w.timeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
	}
	w.client = &http.Client{
		Transport: transport,
		// A 3xx is returned to Send, which reports it as a failure: following
		// it would sign and send the payload to an address the user never
		// configured (and that the URL checks never saw).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w
}

// CloseIdleConnections closes the connections kept for reuse.
func (w *Webhook) CloseIdleConnections() { w.client.CloseIdleConnections() }

// Send makes one delivery attempt: it POSTs body to endpoint, signed with
// key, and returns what the receiver answered. Any 2xx is success. Errors
// that retrying cannot fix (an invalid or refused URL, a missing key) are
// Permanent; the others, including a StatusError, are worth retrying. The
// Response is filled as far as the attempt got, errors included.
func (w *Webhook) Send(ctx context.Context, endpoint string, key secret.Secret, deliveryID string, body []byte) (Response, error) {
	u, err := w.checkURL(endpoint)
	if err != nil {
		return Response{}, Permanent(err)
	}
	// Errors below name scheme and host only: paths and queries of webhook
	// URLs often hold tokens of their own.
	where := u.Scheme + "://" + u.Host
	if key.IsZero() {
		return Response{}, Permanent(fmt.Errorf("sending webhook to %s: the webhook has no signing secret", where))
	}
	if err := checkDeliveryID(deliveryID); err != nil {
		return Response{}, Permanent(fmt.Errorf("sending webhook to %s: %w", where, err))
	}

	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return Response{}, Permanent(fmt.Errorf("sending webhook to %s: %w", where, err))
	}
	ts := w.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", w.userAgent)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(key, ts, body))
	req.Header.Set(HeaderDelivery, deliveryID)

	start := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		return Response{Duration: time.Since(start)}, w.transportError(ctx, where, err)
	}
	r := Response{Status: resp.StatusCode}
	head, readErr := io.ReadAll(io.LimitReader(resp.Body, ResponseBodyLimit))
	if readErr == nil {
		_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	}
	resp.Body.Close()
	r.Body = strings.ToValidUTF8(string(head), "\uFFFD")
	r.Duration = time.Since(start)

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return r, fmt.Errorf("sending webhook to %s: %w", where, &StatusError{
			Status:   resp.StatusCode,
			Location: resp.Header.Get("Location"),
		})
	}
	if readErr != nil {
		// The receiver accepted the delivery; a broken answer body does not
		// undo that, and retrying would deliver twice.
		r.Body += " [answer truncated: " + w.transportError(ctx, where, readErr).Error() + "]"
	}
	return r, nil
}

// transportError turns an error from the HTTP client into Send's error:
// refused addresses are permanent, the rest (timeouts, resets, TLS
// failures, cancellation) are worth retrying.
func (w *Webhook) transportError(ctx context.Context, where string, err error) error {
	var refused *RefusedAddressError
	if errors.As(err, &refused) {
		return Permanent(fmt.Errorf("sending webhook to %s: %w", where, refused))
	}
	// url.Error repeats the full URL; keep only its cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("sending webhook to %s: no complete answer within %s: %w", where, w.timeout, err)
	}
	return fmt.Errorf("sending webhook to %s: %w", where, err)
}

// checkURL parses endpoint and applies the scheme and host rules.
func (w *Webhook) checkURL(endpoint string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		// url.Parse's error quotes the whole URL; do not repeat it.
		return nil, errors.New("invalid webhook URL: it does not parse, expected https://host/path")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && w.allowPrivate:
		// Plain http is for tests on loopback and lab setups only: the
		// signature protects integrity, but the payload would travel in clear.
	case u.Scheme == "http":
		return nil, errors.New("invalid webhook URL: it must start with https:// (http:// is allowed only with AllowPrivate)")
	default:
		return nil, fmt.Errorf("invalid webhook URL: scheme %q, it must start with https://", u.Scheme)
	}
	if u.User != nil {
		return nil, errors.New("invalid webhook URL: it must not contain a user name or password, authenticate receivers with the signature")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, errors.New("invalid webhook URL: it has no host, expected https://host/path")
	}
	if !w.allowPrivate {
		// Early, clearer error for literal addresses; the dialler checks
		// every address again, whatever the host.
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
			if reason, bad := netguard.Refused(ip); bad {
				return nil, &RefusedAddressError{Addr: u.Hostname(), Reason: reason}
			}
		}
	}
	return u, nil
}

// checkDeliveryID rejects ids that cannot travel in a header unchanged.
func checkDeliveryID(id string) error {
	if id == "" || len(id) > 200 {
		return errors.New("delivery id must be 1 to 200 characters")
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return fmt.Errorf("delivery id %q: only printable ASCII without spaces is allowed", id)
		}
	}
	return nil
}

// guardControl is the net.Dialer Control function of the SSRF guard. It
// sees the resolved address of each connection attempt. The allowlist is
// netguard's (see netguard.Refused); the error is a RefusedAddressError,
// which names the setting that allows the address.
func guardControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		// Fail closed: an address that cannot be classified is not dialled.
		return &RefusedAddressError{Addr: address, Reason: "address cannot be checked"}
	}
	if reason, bad := netguard.Refused(ap.Addr()); bad {
		return &RefusedAddressError{Addr: address, Reason: reason}
	}
	return nil
}

// Sign returns the X-Sonde-Signature value for body sent at timestamp:
// "sha256=" and the hex HMAC-SHA256, keyed by key, of "<timestamp>." + body.
func Sign(key secret.Secret, timestamp int64, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(key, strconv.FormatInt(timestamp, 10), body))
}

func mac(key secret.Secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(key.Reveal()))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery as a receiver does: timestampHeader and
// signatureHeader are the X-Sonde-Timestamp and X-Sonde-Signature values,
// body the exact bytes received. It rejects a timestamp further than
// tolerance from now, in either direction (tolerance <= 0 means
// DefaultVerifyTolerance), so a captured delivery cannot be replayed later.
// The errors wrap ErrMalformedHeader, ErrStaleTimestamp or ErrBadSignature.
func Verify(key secret.Secret, timestampHeader, signatureHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	if key.IsZero() {
		return errors.New("verifying webhook signature: no key")
	}
	if tolerance <= 0 {
		tolerance = DefaultVerifyTolerance
	}
	ts, err := strconv.ParseInt(timestampHeader, 10, 64)
	// The MAC covers the header as sent, so only its canonical form is valid.
	if err != nil || strconv.FormatInt(ts, 10) != timestampHeader {
		return fmt.Errorf("%w: %s is not a Unix time in seconds", ErrMalformedHeader, HeaderTimestamp)
	}
	hexSig, ok := strings.CutPrefix(signatureHeader, signaturePrefix)
	if !ok {
		return fmt.Errorf("%w: %s does not start with %q", ErrMalformedHeader, HeaderSignature, signaturePrefix)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: %s is not a hex SHA-256 HMAC", ErrMalformedHeader, HeaderSignature)
	}
	skew := now.Sub(time.Unix(ts, 0))
	if skew > tolerance || skew < -tolerance {
		return fmt.Errorf("%w: signed at %s, %s from now (tolerance %s)",
			ErrStaleTimestamp, time.Unix(ts, 0).UTC().Format(time.RFC3339), skew.Round(time.Second), tolerance)
	}
	if !hmac.Equal(got, mac(key, timestampHeader, body)) {
		return ErrBadSignature
	}
	return nil
}

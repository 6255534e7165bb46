package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/secret"
)

// client speaks the InfraSonar agent REST API (INFRASONAR-WIRE.md §5) to
// the hub, over HTTPS only, verifying the hub's certificate.
type client struct {
	base      string // e.g. https://hub:8443/api/v1, without a trailing slash
	token     secret.Secret
	http      *http.Client
	userAgent string
}

// maxAnswer bounds what the agent reads of any answer from the hub.
const maxAnswer = 1 << 20

// newClient checks the API URL and builds a client that trusts the CA in
// caFile, or the system's roots when caFile is empty.
func newClient(apiURL string, token secret.Secret, caFile, userAgent string, timeout time.Duration) (*client, error) {
	u, err := url.Parse(apiURL)
	if err != nil {
		return nil, fmt.Errorf("API URL %q: %w", apiURL, err)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("API URL %q: the agent talks to the hub over HTTPS only: use https://HOST:PORT/api/v1", apiURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("API URL %q has no host: use https://HOST:PORT/api/v1", apiURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("API URL %q: give only scheme, host, port and path (the token goes in --token-file)", u.Redacted())
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile) // #nosec G304 -- the operator names the CA file
		if err != nil {
			return nil, fmt.Errorf("reading the hub's CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the CA file %s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	tr := &http.Transport{
		TLSClientConfig:       tc,
		Proxy:                 http.ProxyFromEnvironment,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &client{
		base:      strings.TrimRight(u.String(), "/"),
		token:     token,
		http:      &http.Client{Transport: tr, Timeout: timeout},
		userAgent: userAgent,
	}, nil
}

// statusError is an answer from the hub other than 200, 201 or 204.
type statusError struct {
	method, path string
	code         int
	message      string
}

func (e *statusError) Error() string {
	msg := e.message
	if msg == "" {
		msg = http.StatusText(e.code)
	}
	return fmt.Sprintf("%s %s: the hub answered %d: %s", e.method, e.path, e.code, msg)
}

// retryable reports whether a failed call may succeed later unchanged:
// transport errors, 5xx, 408 and 429 may; other 4xx answers will not.
func retryable(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.code >= 500 || se.code == http.StatusTooManyRequests || se.code == http.StatusRequestTimeout
	}
	return err != nil
}

// rejected reports whether the hub refused the token itself.
func rejected(err error) bool {
	var se *statusError
	return errors.As(err, &se) && (se.code == http.StatusUnauthorized || se.code == http.StatusForbidden)
}

// do sends one request and decodes a JSON answer into out when out is not
// nil. Only 200, 201 and 204 count as success.
func (c *client) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
	default:
		var e struct {
			Error string `json:"error"`
		}
		msg := ""
		if json.Unmarshal(data, &e) == nil {
			msg = e.Error
		}
		return &statusError{method: method, path: path, code: resp.StatusCode, message: shorten(msg)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: the hub's answer is not the JSON expected: %w", method, path, err)
	}
	return nil
}

// shorten keeps a hub's error message readable in one log line.
func shorten(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func (c *client) containerID(ctx context.Context) (int64, error) {
	var out struct {
		ContainerID int64 `json:"containerId"`
	}
	if err := c.do(ctx, http.MethodGet, "/container/id", nil, &out); err != nil {
		return 0, err
	}
	if out.ContainerID <= 0 {
		return 0, errors.New("GET /container/id: the hub's answer holds no container id")
	}
	return out.ContainerID, nil
}

type assetInfo struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

func (c *client) assets(ctx context.Context, container int64) ([]assetInfo, error) {
	var out []assetInfo
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/container/%d/assets", container), nil, &out)
	return out, err
}

func (c *client) createAsset(ctx context.Context, container int64, name string) (int64, error) {
	body, err := json.Marshal(map[string]string{"name": name})
	if err != nil {
		return 0, err
	}
	var out struct {
		AssetID int64 `json:"assetId"`
	}
	if err := c.do(ctx, http.MethodPost, fmt.Sprintf("/container/%d/asset", container), body, &out); err != nil {
		return 0, err
	}
	if out.AssetID <= 0 {
		return 0, errors.New("creating the asset: the hub's answer holds no asset id")
	}
	return out.AssetID, nil
}

func (c *client) addCollector(ctx context.Context, asset int64, key string) error {
	return c.do(ctx, http.MethodPost, fmt.Sprintf("/asset/%d/collector/%s", asset, key), nil, nil)
}

func (c *client) setKind(ctx context.Context, asset int64, kind string) error {
	body, err := json.Marshal(map[string]string{"kind": kind})
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPatch, fmt.Sprintf("/asset/%d/kind", asset), body, nil)
}

// assetState is what the agent needs to know about its asset.
type assetState struct {
	Name           string `json:"name"`
	DisabledChecks []struct {
		Collector string `json:"collector"`
		Check     string `json:"check"`
	} `json:"disabledChecks"`
	Collectors []struct {
		Key string `json:"key"`
	} `json:"collectors"`
}

func (c *client) asset(ctx context.Context, asset int64) (assetState, error) {
	var out assetState
	err := c.do(ctx, http.MethodGet, fmt.Sprintf("/asset/%d?fields=name,disabledChecks&collectors=key", asset), nil, &out)
	return out, err
}

func (c *client) postCheck(ctx context.Context, asset int64, collector, check string, body []byte) error {
	return c.do(ctx, http.MethodPost, fmt.Sprintf("/asset/%d/collector/%s/check/%s", asset, collector, check), body, nil)
}

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/agent"
	"github.com/sonde-monitoring/sonde/internal/appliance"
	"github.com/sonde-monitoring/sonde/internal/hub"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

// upAdmin calls the hub's API with the admin token, as an operator would:
// `sonde up` sets itself up through the same front door.
type upAdmin struct {
	base  string
	admin string
	http  *http.Client
	root  int64 // the container tokens and assets are made in
}

func newUpAdmin(ctx context.Context, h *hub.Hub, base string) (*upAdmin, error) {
	admin, err := os.ReadFile(h.AdminTokenPath())
	if err != nil {
		return nil, fmt.Errorf("reading the admin token: %w", err)
	}
	pem, err := os.ReadFile(h.CAFile())
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	u := &upAdmin{base: base, admin: strings.TrimSpace(string(admin)),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
	var cid struct {
		ContainerID int64 `json:"containerId"`
	}
	if err := u.call(ctx, "GET", "/api/v1/container/id", nil, &cid); err != nil {
		return nil, err
	}
	u.root = cid.ContainerID
	return u, nil
}

// localContainer returns the container `sonde up` keeps this machine's
// agent, appliance and sample checks in, creating it once: their tokens
// then reach nothing of other tenants.
func (u *upAdmin) localContainer(ctx context.Context, file string) (int64, error) {
	if b, err := os.ReadFile(file); err == nil { // #nosec G304 -- a fixed file in sonde up's own data dir
		id, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && id > 0 {
			return id, nil
		}
	}
	var out struct {
		ContainerID int64 `json:"containerId"`
	}
	if err := u.call(ctx, "POST", fmt.Sprintf("/api/v1/container/%d/container", u.root), map[string]string{"name": "this machine (sonde up)"}, &out); err != nil {
		return 0, err
	}
	if err := os.WriteFile(file, []byte(strconv.FormatInt(out.ContainerID, 10)+"\n"), 0o600); err != nil {
		return 0, err
	}
	return out.ContainerID, nil
}

func (u *upAdmin) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+u.admin)
	resp, err := u.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// token returns the token kept in file, or creates one in the root
// container and keeps it (0600).
func (u *upAdmin) token(ctx context.Context, file, name string, perms []string) (secret.Secret, error) {
	if b, err := os.ReadFile(file); err == nil { // #nosec G304 -- a fixed file in sonde up's own data dir
		return secret.New(strings.TrimSpace(string(b))), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return secret.Secret{}, err
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := u.call(ctx, "POST", fmt.Sprintf("/api/v1/container/%d/token", u.root), map[string]any{"name": name, "permissions": perms}, &out); err != nil {
		return secret.Secret{}, err
	}
	if err := os.WriteFile(file, []byte(out.Token+"\n"), 0o600); err != nil {
		return secret.Secret{}, err
	}
	return secret.New(out.Token), nil
}

// upParts starts, inside `sonde up`, what an operator would run beside the
// hub: an appliance enrolled over the real TLS stream with sample checks of
// this machine, and the host agent. Each talks to the hub over TLS on
// loopback like any other.
func upParts(ctx context.Context, h *hub.Hub, dataDir string, logger *slog.Logger, stdout io.Writer) error {
	upDir := filepath.Join(dataDir, "up")
	if err := os.MkdirAll(upDir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", upDir, err)
	}
	_, port, err := net.SplitHostPort(h.Addr().String())
	if err != nil {
		return err
	}
	u, err := newUpAdmin(ctx, h, "https://localhost:"+port)
	if err != nil {
		return err
	}
	// The web UI's first user, while its one-time password is unchanged:
	// this is the operator's own terminal.
	if b, err := os.ReadFile(h.AdminPasswordPath()); err == nil { // #nosec G304 -- the hub's own <data>/admin-password
		user, pw, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		fmt.Fprintf(stdout, "  Web UI:          https://localhost:%s/ — log in as %q with the one-time password %s (you choose your own at the first login)\n", port, user, strings.TrimSpace(pw))
	}
	// Everything below lives in a container of its own.
	if u.root, err = u.localContainer(ctx, filepath.Join(upDir, "container-id")); err != nil {
		return fmt.Errorf("creating the local container: %w", err)
	}
	if err := upAgent(ctx, h, u, upDir, logger); err != nil {
		return fmt.Errorf("starting the local agent: %w", err)
	}
	fmt.Fprintf(stdout, "  Local agent:     reports this machine every 30 s as asset %q (collector linux)\n", hostname())
	if h.StreamAddr() == nil {
		return nil
	}
	if err := upAppliance(ctx, h, u, upDir, port, logger); err != nil {
		return fmt.Errorf("starting the local appliance: %w", err)
	}
	fmt.Fprintf(stdout, "  Local appliance: enrolled over the TLS stream; asset \"sonde-hub (sample)\" has tcp, tls and icmp checks\n")
	fmt.Fprintf(stdout, "  Conditions:      port not open, certificate expires soon, filesystem almost full (alerts: GET /api/v1/container/1/alerts)\n")
	return nil
}

func upAgent(ctx context.Context, h *hub.Hub, u *upAdmin, upDir string, logger *slog.Logger) error {
	tok, err := u.token(ctx, filepath.Join(upDir, "agent-token"), "local agent", []string{"READ", "API", "ASSET_MANAGEMENT", "INSERT_CHECK_DATA"})
	if err != nil {
		return err
	}
	a, err := agent.New(agent.Config{
		APIURL: u.base + "/api/v1", Token: tok, CAFile: h.CAFile(), AssetName: hostname(),
		StateDir: filepath.Join(upDir, "agent"), Interval: 30 * time.Second, Version: version,
		Logger: logger.With("part", "agent"),
	})
	if err != nil {
		return err
	}
	go func() {
		if err := a.Run(ctx); err != nil {
			logger.Error("the local agent stopped", "err", err)
		}
	}()
	return nil
}

const sampleAsset = "sonde-hub (sample)"

func upAppliance(ctx context.Context, h *hub.Hub, u *upAdmin, upDir, httpsPort string, logger *slog.Logger) error {
	tokFile := filepath.Join(upDir, "appliance-token")
	if _, err := u.token(ctx, tokFile, "local appliance", []string{"CORE_CONNECT"}); err != nil {
		return err
	}
	if err := upSamples(ctx, h, u, httpsPort); err != nil {
		return fmt.Errorf("creating the sample checks: %w", err)
	}
	_, streamPort, err := net.SplitHostPort(h.StreamAddr().String())
	if err != nil {
		return err
	}
	a, err := appliance.Open(appliance.Config{
		DataDir: filepath.Join(upDir, "appliance"), Hub: "localhost:" + streamPort, TokenFile: tokFile,
		CAFile: h.CAFile(), Name: hostname(), Version: version, Logger: logger.With("part", "appliance"),
	})
	if err != nil {
		return err
	}
	go func() {
		defer a.Close()
		if err := a.Run(ctx); err != nil {
			logger.Error("the local appliance stopped", "err", err)
		}
	}()
	return nil
}

// upSamples creates, once, an asset for the hub itself with probe checks
// (TCP on the hub's ports, TLS of its certificate, ICMP to 127.0.0.1) and
// sample conditions.
func upSamples(ctx context.Context, h *hub.Hub, u *upAdmin, httpsPort string) error {
	var assets []struct {
		Name string `json:"name"`
	}
	if err := u.call(ctx, "GET", fmt.Sprintf("/api/v1/container/%d/assets", u.root), nil, &assets); err != nil {
		return err
	}
	for _, a := range assets {
		if a.Name == sampleAsset {
			return nil
		}
	}
	ca, err := os.ReadFile(h.CAFile())
	if err != nil {
		return err
	}
	hp, _ := strconv.Atoi(httpsPort)
	_, sp, _ := net.SplitHostPort(h.StreamAddr().String())
	streamPort, _ := strconv.Atoi(sp)
	var out struct {
		AssetID int64 `json:"assetId"`
	}
	if err := u.call(ctx, "POST", fmt.Sprintf("/api/v1/container/%d/asset", u.root), map[string]string{"name": sampleAsset}, &out); err != nil {
		return err
	}
	collectors := map[string]map[string]any{
		"tcp":  {"config": map[string]any{"address": "127.0.0.1", "ports": []int{hp, streamPort}}, "checks": map[string]any{"tcp": map[string]any{"interval": 30}}},
		"tls":  {"config": map[string]any{"address": "localhost", "port": hp, "ca": string(ca)}, "checks": map[string]any{"tls": map[string]any{"interval": 30}}},
		"icmp": {"config": map[string]any{"address": "127.0.0.1"}, "checks": map[string]any{"icmp": map[string]any{"interval": 30}}},
	}
	for key, body := range collectors {
		if err := u.call(ctx, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/%s", out.AssetID, key), body, nil); err != nil {
			return err
		}
	}
	// Sample conditions on the root container: they apply to every asset
	// (docs/CONDITIONS.md).
	for _, c := range []map[string]any{
		{"name": "port not open", "type": "tcp", "expression": "not item.open", "severity": "ERROR", "message": "{item} is {item.state}", "ticks": 2},
		{"name": "certificate expires soon", "type": "tls", "expression": "item.daysLeft < 30", "severity": "WARNING",
			"message": "the certificate of {item} expires in {item.daysLeft} days"},
		{"name": "filesystem almost full", "type": "filesystem", "expression": "item.percentUsed > 90", "severity": "WARNING",
			"message": "{item} is {item.percentUsed}% full", "ticks": 3},
	} {
		if err := u.call(ctx, "POST", fmt.Sprintf("/api/v1/container/%d/condition", u.root), c, nil); err != nil {
			return err
		}
	}
	return nil
}

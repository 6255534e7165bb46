package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// adminClient calls the hub's management API with the admin token.
type adminClient struct {
	base   string // https://host:port
	token  string
	client *http.Client
}

// call sends a JSON request (no body when in is nil) and decodes a JSON
// answer into out (when not nil). Any status outside 2xx is an error.
func (c *adminClient) call(ctx context.Context, method, path string, in, out any) error {
	var body bytes.Buffer
	if in != nil {
		if err := json.NewEncoder(&body).Encode(in); err != nil {
			return fmt.Errorf("%s %s: encoding: %w", method, path, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, &body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, drain(resp))
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	drain(resp)
	return nil
}

// setupFleet creates, under the admin token's container, a container for
// the benchmark, an agent token in it, and one asset with the linux
// collector per agent.
func setupFleet(ctx context.Context, c *adminClient, agents int) (fleet, error) {
	var f fleet
	var root struct {
		ContainerID int64 `json:"containerId"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/v1/container/id", nil, &root); err != nil {
		return f, fmt.Errorf("finding the admin token's container: %w", err)
	}
	var cont struct {
		ContainerID int64 `json:"containerId"`
	}
	name := fmt.Sprintf("sonde-bench-%d", time.Now().Unix())
	if err := c.call(ctx, http.MethodPost, fmt.Sprintf("/api/v1/container/%d/container", root.ContainerID),
		map[string]string{"name": name}, &cont); err != nil {
		return f, fmt.Errorf("creating the benchmark's container: %w", err)
	}
	f.ContainerID = cont.ContainerID
	var tok struct {
		Token string `json:"token"`
	}
	if err := c.call(ctx, http.MethodPost, fmt.Sprintf("/api/v1/container/%d/token", f.ContainerID),
		map[string]any{"name": "sonde-bench agents", "permissions": []string{"READ", "API", "ASSET_MANAGEMENT", "INSERT_CHECK_DATA"}},
		&tok); err != nil {
		return f, fmt.Errorf("creating the agents' token: %w", err)
	}
	f.AgentToken = tok.Token

	f.AssetIDs = make([]int64, agents)
	const parallel = 8
	next := make(chan int)
	errc := make(chan error, parallel)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for a := range next {
				if err := createAsset(ctx, c, f.ContainerID, a, &f.AssetIDs[a]); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	var err error
feed:
	for a := range agents {
		select {
		case next <- a:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	if err != nil {
		return f, fmt.Errorf("creating the agents' assets: %w", err)
	}
	return f, nil
}

func createAsset(ctx context.Context, c *adminClient, containerID int64, agent int, id *int64) error {
	var as struct {
		AssetID int64 `json:"assetId"`
	}
	if err := c.call(ctx, http.MethodPost, fmt.Sprintf("/api/v1/container/%d/asset", containerID),
		map[string]string{"name": assetName(agent)}, &as); err != nil {
		return err
	}
	if err := c.call(ctx, http.MethodPost, fmt.Sprintf("/api/v1/asset/%d/collector/%s", as.AssetID, collectorKey), nil, nil); err != nil {
		return err
	}
	*id = as.AssetID
	return nil
}

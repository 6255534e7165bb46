package service_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hub"
	"github.com/sonde-monitoring/sonde/internal/testutil"
)

type checkResult struct {
	Data  map[string][]map[string]any `json:"data"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// serviceAsset makes an asset with an http service check of url, every
// 5 s, run by the hub.
func serviceAsset(t *testing.T, h *testutil.Hub, url string) int64 {
	t.Helper()
	var a struct {
		AssetID int64 `json:"assetId"`
	}
	h.Must(201, "POST", "/api/v1/container/1/asset", map[string]string{"name": "website"}, &a)
	h.Must(204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/http", a.AssetID), map[string]any{
		"config": map[string]any{"url": url}, "checks": map[string]any{"http": map[string]any{"interval": 30}}, "runBy": "hub",
	}, nil)
	return a.AssetID
}

// waitResult waits for the hub to hold a result of the asset's http check.
func waitResult(t *testing.T, h *testutil.Hub, asset int64) checkResult {
	t.Helper()
	var res checkResult
	// The first run falls somewhere in the 30 s interval.
	testutil.WaitFor(t, "the service check's result", 45*time.Second, func() bool {
		code, _ := h.Call("GET", fmt.Sprintf("/api/v1/asset/%d/collector/http/check/http", asset), nil, &res)
		return code == 200
	})
	return res
}

// TestServiceCheck: an http check with runBy "hub" is run by the hub
// itself (no appliance anywhere) and its result stored like any other.
func TestServiceCheck(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") }))
	t.Cleanup(srv.Close)
	h := testutil.StartHub(t, hub.Config{AllowPrivateServices: true})
	asset := serviceAsset(t, h, srv.URL)
	res := waitResult(t, h, asset)
	if res.Error != nil || len(res.Data) == 0 {
		t.Fatalf("the service check's result: %+v", res)
	}
	var got struct {
		Collectors []struct {
			Key   string `json:"key"`
			RunBy string `json:"runBy"`
		} `json:"collectors"`
	}
	h.Must(200, "GET", fmt.Sprintf("/api/v1/asset/%d", asset), nil, &got)
	if len(got.Collectors) != 1 || got.Collectors[0].RunBy != "hub" {
		t.Errorf("the asset's collectors: %+v", got.Collectors)
	}
	// Given back to the appliance, the hub stops running it.
	h.Must(204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/http", asset), map[string]any{"runBy": "appliance"}, nil)
	h.Must(200, "GET", fmt.Sprintf("/api/v1/asset/%d", asset), nil, &got)
	if got.Collectors[0].RunBy != "appliance" {
		t.Errorf("after giving it back: %+v", got.Collectors)
	}
}

// TestServiceCheckRefusesPrivateAddresses: by default a service check
// cannot reach the hub's own network; the result says why.
func TestServiceCheckRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	h := testutil.StartHub(t, hub.Config{})
	asset := serviceAsset(t, h, srv.URL)
	res := waitResult(t, h, asset)
	if res.Error == nil || !strings.Contains(res.Error.Message, "refused") || !strings.Contains(res.Error.Message, "127.0.0.1") {
		t.Errorf("a service check of a loopback address: %+v", res)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback server was reached %d times", n)
	}
}

// TestServiceCheckValidation: only the probes the hub runs can be
// service checks.
func TestServiceCheckValidation(t *testing.T) {
	h := testutil.StartHub(t, hub.Config{})
	var a struct {
		AssetID int64 `json:"assetId"`
	}
	h.Must(201, "POST", "/api/v1/container/1/asset", map[string]string{"name": "switch"}, &a)
	for _, tc := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"runBy": "hub", "checks": map[string]any{"system": map[string]any{"interval": 60}}}, "the hub runs only the collectors"},
		{map[string]any{"runBy": "somewhere"}, `runBy must be \"hub\"`},
		{map[string]any{"runBy": "hub", "checks": map[string]any{"http": map[string]any{"interval": 10}}}, "at most every 30 seconds"},
	} {
		key := "snmp"
		if tc.body["checks"] != nil && tc.body["checks"].(map[string]any)["http"] != nil {
			key = "http"
		}
		code, out := h.Call("POST", fmt.Sprintf("/api/v1/asset/%d/collector/%s", a.AssetID, key), tc.body, nil)
		if code != 400 || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: %d %s", tc.body, code, out)
		}
	}
}

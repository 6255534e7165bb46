package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/tsstore/remote"
)

// fleet is what the setup created on the hub: the agents' assets.
type fleet struct {
	ContainerID int64
	AgentToken  string
	AssetIDs    []int64 // one per agent
}

// collectorKey is the collector every benchmark asset carries.
const collectorKey = "linux"

// hubSender posts each result to the hub's REST API as an InfraSonar agent
// does: POST /api/v1/asset/{id}/collector/linux/check/{check}, agent JSON.
// hubSender posts each agent's results to its hub: bases[a % len(bases)].
func hubSender(bases []string, tlsConf *tls.Config, http1 bool, timeout time.Duration, s shape, f fleet) sendFunc {
	clients := make([]*http.Client, s.Agents)
	data := make([]*model.CheckData, s.Agents)
	for a := range s.Agents {
		clients[a] = newClient(tlsConf, http1, timeout)
		data[a] = newCheckData(s)
	}
	auth := "Bearer " + f.AgentToken
	checkURL := make([]string, s.Checks)
	for c := range checkURL {
		checkURL[c] = "/collector/" + collectorKey + "/check/" + checkName(c)
	}
	return func(ctx context.Context, a int, r result) (int, string, string, error) {
		body := agentBody(data[a], s, r)
		u := bases[a%len(bases)] + "/api/v1/asset/" + strconv.FormatInt(f.AssetIDs[a], 10) + checkURL[r.Check]
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return 0, "", "", fmt.Errorf("building the request: %w", err)
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := clients[a].Do(req)
		if err != nil {
			return 0, "", "", err
		}
		msg := drain(resp)
		return resp.StatusCode, resp.Proto, msg, nil
	}
}

// newCheckData returns the check data of a result of shape s, for
// agentBody to fill in: one type, Items items of Metrics float metrics.
func newCheckData(s shape) *model.CheckData {
	cd := &model.CheckData{HasResult: true, Duration: 0.042, Version: "sonde-bench"}
	typ := model.Type{Name: typeName, Items: make([]model.Item, s.Items)}
	for i := range typ.Items {
		typ.Items[i] = model.Item{Name: itemName(i), Metrics: make([]model.Metric, s.Metrics)}
		for m := range typ.Items[i].Metrics {
			typ.Items[i].Metrics[m].Name = metricName(m)
		}
	}
	cd.Types = []model.Type{typ}
	return cd
}

// agentBody puts r into cd and encodes it as an InfraSonar agent posts it.
func agentBody(cd *model.CheckData, s shape, r result) []byte {
	cd.Timestamp = r.TS
	items := cd.Types[0].Items
	for i := range items {
		for m := range items[i].Metrics {
			items[i].Metrics[m].Value = model.FloatValue(r.Values[i*s.Metrics+m])
		}
	}
	return cd.MarshalAgentJSON()
}

// seriesLabels are the labels the hub gives a series (internal/ingest and
// tsstore/local), sorted by name as remote write requires.
func seriesLabels(containerID, assetID int64, agent, check, item, metric int) []remote.Label {
	return []remote.Label{
		{Name: "__name__", Value: "sonde_" + typeName + "_" + metricName(metric)},
		{Name: "asset", Value: assetName(agent)},
		{Name: "asset_id", Value: strconv.FormatInt(assetID, 10)},
		{Name: "check", Value: checkName(check)},
		{Name: "collector", Value: collectorKey},
		{Name: "container_id", Value: strconv.FormatInt(containerID, 10)},
		{Name: "item", Value: itemName(item)},
	}
}

// promSender sends each result as one remote-write 1.0 request of its
// samples, labelled as the hub labels them.
func promSender(base string, tlsConf *tls.Config, http1 bool, timeout time.Duration, s shape, f fleet) sendFunc {
	type agentState struct {
		client  *http.Client
		labels  [][]remote.Label // per check: Items × Metrics label sets, filled lazily
		series  []remote.WriteSeries
		samples []remote.WriteSample
		pb      []byte
	}
	agents := make([]*agentState, s.Agents)
	n := s.SamplesPerResult()
	for a := range agents {
		st := &agentState{
			client:  newClient(tlsConf, http1, timeout),
			labels:  make([][]remote.Label, s.Checks*n),
			series:  make([]remote.WriteSeries, n),
			samples: make([]remote.WriteSample, n),
		}
		agents[a] = st
	}
	u := base + "/api/v1/write"
	return func(ctx context.Context, a int, r result) (int, string, string, error) {
		st := agents[a]
		for k := range n {
			li := r.Check*n + k
			if st.labels[li] == nil {
				st.labels[li] = seriesLabels(f.ContainerID, f.AssetIDs[a], a, r.Check, k/s.Metrics, k%s.Metrics)
			}
			st.samples[k] = remote.WriteSample{Value: r.Values[k], T: r.TS * 1000}
			st.series[k] = remote.WriteSeries{Labels: st.labels[li], Samples: st.samples[k : k+1]}
		}
		// A fresh body each time: the transport may still read the last
		// one after Do returned.
		var body []byte
		body, st.pb = remote.EncodeWriteRequest(nil, st.pb, st.series)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return 0, "", "", fmt.Errorf("building the request: %w", err)
		}
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		req.Header.Set("User-Agent", "sonde-bench")
		resp, err := st.client.Do(req)
		if err != nil {
			return 0, "", "", err
		}
		msg := drain(resp)
		return resp.StatusCode, resp.Proto, msg, nil
	}
}

package appliance

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/buffer"
	"github.com/sonde-monitoring/sonde/internal/hub"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/testutil"
	"github.com/sonde-monitoring/sonde/internal/wire"
)

// BenchmarkReplay drains b.N buffered packets into an in-process hub: the
// figure is the hub's and the appliance's cost per packet together
// (cmd/sonde-bench replay measures them as separate processes).
func BenchmarkReplay(b *testing.B) {
	h := testutil.StartHub(b, hub.Config{StreamListen: "127.0.0.1:0"})
	r := &rig{hub: h}
	r.token = h.Token(1, "CORE_CONNECT")
	r.tokf = b.TempDir() + "/token"
	writeFile(b, r.tokf, r.token)
	const assets = 20
	for i := range assets {
		var out struct {
			AssetID int64 `json:"assetId"`
		}
		h.Must(201, "POST", "/api/v1/container/1/asset", map[string]string{"name": fmt.Sprint("a", i)}, &out)
		h.Must(204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/tcp", out.AssetID), map[string]any{
			"config": map[string]any{"address": "127.0.0.1", "ports": []int{1}},
			"checks": map[string]any{"tcp": map[string]any{"interval": 86400}},
		}, nil)
	}
	dir := b.TempDir()
	a, err := Open(Config{DataDir: dir, Hub: h.Stream, TokenFile: r.tokf, CAFile: h.CA, Name: "bench", Probes: Registry{}, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for len(a.Assets()) < assets {
		time.Sleep(20 * time.Millisecond)
	}
	var targets [][2]uint64
	for _, as := range a.Assets() {
		targets = append(targets, [2]uint64{as.ID, as.Probes[0].Checks[0].ID})
	}
	start := time.Now().Add(-20 * time.Hour).Unix()
	var batch []buffer.Packet
	for i := range b.N {
		tg := targets[i%len(targets)]
		cd := model.CheckData{HasResult: true, Timestamp: start + int64(i/len(targets)), Duration: 0.001}
		typ := model.Type{Name: "tcp"}
		for k := range 4 {
			typ.Items = append(typ.Items, model.Item{Name: strconv.Itoa(8000 + k), Metrics: []model.Metric{
				{Name: "open", Value: model.BoolValue(true)},
				{Name: "state", Value: model.StringValue("open")},
				{Name: "connectTime", Value: model.FloatValue(0.0001 * float64(1+i%97))},
			}})
		}
		cd.Types = []model.Type{typ}
		body, _ := wire.MarshalProbeDump(wire.ProbeDump{AssetID: tg[0], CheckID: tg[1], CheckData: wire.EncodeCheckData(&cd)})
		batch = append(batch, buffer.Packet{AssetID: tg[0], Body: body})
	}
	b.ResetTimer()
	for len(batch) > 0 {
		n := min(len(batch), 1000)
		if _, err := a.buf.PutBatch(batch[:n]); err != nil {
			b.Fatal(err)
		}
		batch = batch[n:]
	}
	for a.Status().Buffered > 0 {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	if st := a.Status(); st.Refused > 0 {
		b.Fatalf("%d refused", st.Refused)
	}
	cancel()
	<-done
	a.Close()
}

func writeFile(b *testing.B, path, s string) {
	b.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		b.Fatal(err)
	}
}

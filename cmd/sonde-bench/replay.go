package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sonde-monitoring/sonde/internal/appliance"
	"github.com/sonde-monitoring/sonde/internal/buffer"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/vault"
	"github.com/sonde-monitoring/sonde/internal/wire"
)

// runReplay measures how fast an appliance's disk buffer drains into the
// hub after an outage: it fills the buffer of a real appliance (sealed with
// its vault, as the appliance does) with check data for assets the hub
// assigned it, starts the appliance, and times until the hub has
// acknowledged every packet. The hub runs as its own process (bin/sonde).
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sonde-bench replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	packets := fs.Int("packets", 1_000_000, "check data packets to buffer and replay")
	assets := fs.Int("assets", 100, "assets (each with one tcp check) the packets are spread over")
	items := fs.Int("items", 4, "items per result (each a port with 3 metrics)")
	bin := fs.String("sonde", "bin/sonde", "the sonde binary to run the hub with")
	keep := fs.Bool("keep", false, "keep the temporary directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *packets < 1 || *assets < 1 || *items < 1 {
		return usageErr("-packets, -assets and -items must be positive")
	}
	dir, err := os.MkdirTemp("", "sonde-bench-replay-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	fmt.Fprintf(stdout, "sonde-bench replay: %d packets over %d assets, data in %s\n", *packets, *assets, dir)

	h, err := spawnHub(ctx, *bin, dir, true)
	if err != nil {
		return err
	}
	streamAddr := h.stream
	defer h.stop()
	admin := &adminClient{base: h.base, token: h.token, client: newClient(h.tlsConf, false, time.Minute)}
	var tok struct {
		Token string `json:"token"`
	}
	if err := admin.call(ctx, "POST", "/api/v1/container/1/token", map[string]any{"name": "bench appliance", "permissions": []string{"CORE_CONNECT"}}, &tok); err != nil {
		return err
	}
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(tok.Token), 0o600); err != nil {
		return err
	}
	for i := range *assets {
		var out struct {
			AssetID int64 `json:"assetId"`
		}
		if err := admin.call(ctx, "POST", "/api/v1/container/1/asset", map[string]string{"name": fmt.Sprintf("replay-%d", i)}, &out); err != nil {
			return err
		}
		// A day's interval: the appliance runs (almost) nothing itself
		// while the bench measures.
		if err := admin.call(ctx, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/tcp", out.AssetID), map[string]any{
			"config": map[string]any{"address": "127.0.0.1", "ports": []int{1}},
			"checks": map[string]any{"tcp": map[string]any{"interval": 86400}},
		}, nil); err != nil {
			return err
		}
	}

	appDir := filepath.Join(dir, "appliance")
	cfg := appliance.Config{DataDir: appDir, Hub: streamAddr, TokenFile: tokFile, CAFile: filepath.Join(dir, "hub-data", "tls", "ca.crt"),
		Name: "bench", Version: "bench", Probes: appliance.Registry{}, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	// 1. Enroll and learn the assets (and their check ids).
	targets, err := learnAssets(ctx, cfg, *assets)
	if err != nil {
		return err
	}
	// 2. Fill the buffer as an outage would.
	raw, fileSize, err := fillBuffer(appDir, targets, *packets, *items)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "buffered:   %d packets, %.1f MiB of packet bodies, buffer file %.1f MiB (%.2f× the bodies)\n",
		*packets, float64(raw)/(1<<20), float64(fileSize)/(1<<20), float64(fileSize)/float64(raw))
	// 3. Replay.
	a, err := appliance.Open(cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	before, err := readProc(h.pid)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- a.Run(rctx) }()
	last := *packets
	for {
		st := a.Status()
		if st.Buffered == 0 {
			break
		}
		if st.Refused > 0 {
			cancel()
			<-done
			return fmt.Errorf("the hub refused %d packets", st.Refused)
		}
		select {
		case <-ctx.Done():
			cancel()
			<-done
			return ctx.Err()
		case err := <-done:
			cancel()
			return fmt.Errorf("the appliance stopped: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
		if st.Buffered != last && time.Since(start) > 5*time.Second && int(time.Since(start).Seconds())%10 == 0 {
			fmt.Fprintf(stderr, "  %d left after %s\n", st.Buffered, time.Since(start).Round(time.Second))
		}
		last = st.Buffered
	}
	elapsed := time.Since(start)
	after, err := readProc(h.pid)
	cancel()
	if rerr := <-done; rerr != nil && !errors.Is(rerr, context.Canceled) {
		return rerr
	}
	if err != nil {
		return err
	}
	hubCPU := after.CPUSeconds - before.CPUSeconds
	fmt.Fprintf(stdout, "replayed:   %d packets in %.1f s = %.0f packets/s; hub CPU %.1f s (%.1f µs per packet), hub RSS %.0f MiB\n",
		*packets, elapsed.Seconds(), float64(*packets)/elapsed.Seconds(), hubCPU, hubCPU/float64(*packets)*1e6, float64(after.RSSBytes)/(1<<20))
	return nil
}

// target is one (asset, check) of the appliance.
type target struct{ asset, check uint64 }

// learnAssets runs the appliance until the hub has sent it all its assets.
func learnAssets(ctx context.Context, cfg appliance.Config, want int) ([]target, error) {
	a, err := appliance.Open(cfg)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(rctx) }()
	defer func() {
		cancel()
		<-done
	}()
	deadline := time.Now().Add(time.Minute)
	for len(a.Assets()) < want {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the hub sent %d of %d assets within a minute", len(a.Assets()), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var out []target
	for _, as := range a.Assets() {
		for _, p := range as.Probes {
			for _, c := range p.Checks {
				out = append(out, target{as.ID, c.ID})
			}
		}
	}
	return out, nil
}

// fillBuffer writes n packets into the appliance's buffer, sealed with its
// vault, with distinct timestamps per check over the last 20 hours.
func fillBuffer(appDir string, targets []target, n, items int) (raw, fileSize int64, err error) {
	v, err := vault.Open(appDir, vault.Options{MustExist: true})
	if err != nil {
		return 0, 0, err
	}
	path := filepath.Join(appDir, "buffer.db")
	b, err := buffer.Open(path, vaultSealer{v.DataSealer("buffer")}, buffer.Options{MaxBytes: 1 << 40})
	if err != nil {
		return 0, 0, err
	}
	per := (n + len(targets) - 1) / len(targets)
	step := max(1, int64(20*3600/per))
	start := time.Now().Add(-20 * time.Hour).Unix()
	batch := make([]buffer.Packet, 0, 1000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := b.PutBatch(batch)
		batch = batch[:0]
		return err
	}
	for i := range n {
		t := targets[i%len(targets)]
		round := int64(i / len(targets))
		cd := model.CheckData{HasResult: true, Timestamp: start + round*step, Duration: 0.0012, Version: "bench"}
		typ := model.Type{Name: "tcp"}
		for k := range items {
			typ.Items = append(typ.Items, model.Item{Name: strconv.Itoa(8000 + k), Metrics: []model.Metric{
				{Name: "open", Value: model.BoolValue(true)},
				{Name: "state", Value: model.StringValue("open")},
				{Name: "connectTime", Value: model.FloatValue(0.000123 * float64(1+(i+k)%97))},
			}})
		}
		cd.Types = []model.Type{typ}
		body, err := wire.MarshalProbeDump(wire.ProbeDump{AssetID: t.asset, CheckID: t.check, CheckData: wire.EncodeCheckData(&cd)})
		if err != nil {
			return 0, 0, err
		}
		raw += int64(len(body))
		batch = append(batch, buffer.Packet{AssetID: t.asset, Body: body})
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return 0, 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, 0, err
	}
	if err := b.Close(); err != nil {
		return 0, 0, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	return raw, st.Size(), nil
}

// vaultSealer gives the vault's Sealer the buffer's interface, as the
// appliance does.
type vaultSealer struct{ s *vault.Sealer }

func (v vaultSealer) Seal(dst, plaintext, ad []byte) []byte {
	return append(dst, v.s.Seal(plaintext, ad)...)
}

func (v vaultSealer) Open(dst, ciphertext, ad []byte) ([]byte, error) {
	pt, err := v.s.Open(ciphertext, ad)
	if err != nil {
		return nil, err
	}
	return append(dst, pt...), nil
}

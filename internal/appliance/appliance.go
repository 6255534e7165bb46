// Package appliance runs Sonde's monitoring appliance: it connects out to
// the hub over mutual TLS (enrolling with a token the first time), receives
// the assets it serves, runs their checks with the agentless probes at
// their intervals, keeps every result in an encrypted disk buffer until the
// hub has acknowledged it, and keeps its credentials in a vault that never
// leaves it.
package appliance

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sonde-monitoring/sonde/internal/buffer"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
	"github.com/sonde-monitoring/sonde/internal/schedule"
	"github.com/sonde-monitoring/sonde/internal/vault"
	"github.com/sonde-monitoring/sonde/internal/wire"
)

// Files in the data directory besides the vault's and the identity's.
const (
	bufferFile = "buffer.db"
	// assetsFile is the last configuration the hub sent, sealed: the
	// appliance runs from it when the hub is unreachable at start.
	assetsFile = "assets.sealed"
)

// requestTimeout is how long the appliance waits for the hub's answer to
// an announce, an enroll, or a data packet.
const requestTimeout = 10 * time.Second

// DefaultHubPort is the hub's stream port, used for a hub address given
// without one.
const DefaultHubPort = "8730"

// stableStream is how long a stream must have been up for its hub to count
// as working: a hub that accepts the appliance and drops it at once counts
// as failed, so that a list of such hubs is retried with backoff, not in a
// tight loop.
const stableStream = 10 * time.Second

// Config configures an appliance.
type Config struct {
	DataDir string
	// Hubs are the hubs' stream addresses, HOST:PORT (a HOST alone means
	// port DefaultHubPort), in the order the appliance tries them: it
	// stays on the hub that works, fails over to the next one at once when
	// it cannot be reached or its stream breaks, and waits with backoff
	// only after every hub of the list failed in a row. The hubs must be
	// processes of one hub (one CA, one state store).
	Hubs []string
	// Hub is the hubs' list as one string: one address, or several
	// separated by commas. It is used when Hubs is empty; setting both is
	// an error.
	Hub string
	// TokenFile holds the token (CORE_CONNECT) used to enroll once.
	TokenFile string
	// CAFile is the hub's CA certificate (PEM).
	CAFile string
	Name   string
	Zone   int
	// PassphraseFile seals the vault with a passphrase instead of the key
	// file.
	PassphraseFile string
	// BufferBytes bounds the disk buffer; 0 means 1 GiB.
	BufferBytes int64
	// Window is how many data packets may await the hub's answer; 0
	// means 64.
	Window  int
	Logger  *slog.Logger
	Version string
	// Clock drives the scheduler; nil means the real clock.
	Clock schedule.Clock
	// Probes replaces the probe registry (tests); nil means the
	// appliance's own probes.
	Probes Registry
	// NoSync skips the buffer's fsync: for benchmarks only.
	NoSync bool
	// MaxConcurrent bounds the checks running at once; 0 means the
	// scheduler's default.
	MaxConcurrent int
	// PinnedVersion is the version the operator pinned this appliance at
	// ("" when not pinned): the hardening audit reports it.
	PinnedVersion string
	// RotationDays is the credential rotation policy the hardening audit
	// checks the vault against; 0 means 90.
	RotationDays int
}

// Validate checks the configuration and names the flag to fix.
func (c *Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("the data directory is not set: give --data DIR")
	case c.Hub == "" && len(c.Hubs) == 0:
		return errors.New("the hub is not set: give --hub HOST:PORT (the hub's stream port, 8730 by default)")
	case c.Hub != "" && len(c.Hubs) > 0:
		return errors.New("the hubs are given twice: set Hub or Hubs, not both")
	case c.CAFile == "":
		return errors.New("the hub's CA certificate is not set: give --ca FILE (the hub prints where it is)")
	case c.Name == "":
		return errors.New("the appliance has no name: give --name NAME")
	case c.Zone < 0 || c.Zone > 9:
		return fmt.Errorf("--zone %d: give a zone from 0 to 9", c.Zone)
	}
	_, err := c.hubList()
	return err
}

// hubList returns the hubs' addresses, each HOST:PORT.
func (c *Config) hubList() ([]string, error) {
	list := c.Hubs
	if len(list) == 0 {
		list = strings.Split(c.Hub, ",")
	}
	out := make([]string, 0, len(list))
	seen := map[string]bool{}
	for _, s := range list {
		addr, err := HubAddress(s)
		if err != nil {
			return nil, fmt.Errorf("--hub: %w", err)
		}
		if seen[addr] {
			return nil, fmt.Errorf("--hub: the hub %s is listed twice", addr)
		}
		seen[addr] = true
		out = append(out, addr)
	}
	return out, nil
}

// HubAddress checks one hub stream address and returns it as HOST:PORT,
// with port DefaultHubPort when it has none. Its error names the address.
func HubAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("an empty hub address: give HOST:PORT, several separated by commas")
	}
	if strings.Contains(s, "/") {
		return "", fmt.Errorf("hub address %q: give HOST:PORT (the stream port, not a URL)", s)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// A host alone: a name, an IPv4 address, or an IPv6 address with
		// or without its brackets.
		host, port = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), DefaultHubPort
		if (strings.Contains(host, ":") && net.ParseIP(host) == nil) || strings.ContainsAny(host, "[]") {
			return "", fmt.Errorf("hub address %q: give HOST:PORT, with an IPv6 address in brackets", s)
		}
	}
	if host == "" {
		return "", fmt.Errorf("hub address %q: the host is missing", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("hub address %q: the port must be a number from 1 to 65535", s)
	}
	return net.JoinHostPort(host, port), nil
}

// Appliance is an opened appliance.
type Appliance struct {
	cfg       Config
	log       *slog.Logger
	vault     *vault.Vault
	keySealer *vault.Sealer
	cfgSealer *vault.Sealer
	buf       *buffer.Buffer
	sched     *schedule.Scheduler
	probes    Registry
	closers   []func() error
	hubCA     *x509.CertPool
	clock     schedule.Clock
	hubs      []string // HOST:PORT, in the order they are tried

	mu         sync.Mutex
	assets     map[uint64]wire.Asset
	appliances []wire.ApplianceZone
	refused    uint64    // data packets the hub refused for good
	hubAt      int       // index in hubs of the hub dialled next, or in use
	connected  string    // the hub the stream is up with, "" when none
	upSince    time.Time // when the last stream came up
}

// Open opens the appliance's data directory: the vault (creating the key
// file on first start), the disk buffer, and the last known configuration.
func Open(cfg Config) (*Appliance, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hubs, err := cfg.hubList()
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Window <= 0 {
		cfg.Window = 64
	}
	if cfg.Clock == nil {
		cfg.Clock = schedule.RealClock()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory %s: %w", cfg.DataDir, err)
	}
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil { // #nosec G302 -- a directory needs its x bit
		return nil, fmt.Errorf("restricting data directory %s to its owner: %w", cfg.DataDir, err)
	}
	caPEM, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading the hub's CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("the CA file %s holds no PEM certificate", cfg.CAFile)
	}
	v, err := vault.Open(cfg.DataDir, vault.Options{PassphraseFile: cfg.PassphraseFile, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	a := &Appliance{
		cfg: cfg, log: cfg.Logger, vault: v, hubCA: pool, clock: cfg.Clock,
		keySealer: v.DataSealer("client-key"), cfgSealer: v.DataSealer("assets"),
		assets: map[uint64]wire.Asset{}, hubs: hubs,
	}
	a.buf, err = buffer.Open(filepath.Join(cfg.DataDir, bufferFile), sealAdapter{v.DataSealer("buffer")},
		buffer.Options{MaxBytes: cfg.BufferBytes, NoSync: cfg.NoSync, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.buf.Close)
	a.probes = cfg.Probes
	if a.probes == nil {
		reg, closeProbes, err := DefaultProbes(cfg.Logger)
		if err != nil {
			a.Close()
			return nil, err
		}
		a.probes = reg
		a.closers = append(a.closers, closeProbes)
	}
	a.probes = a.withHardening(a.probes)
	a.sched = schedule.New(a.runCheck, schedule.Options{Clock: cfg.Clock, MaxConcurrent: cfg.MaxConcurrent, Logger: cfg.Logger})
	if err := a.loadAssets(); err != nil {
		a.log.Warn("the last known configuration cannot be read; waiting for the hub's", "err", err)
	}
	return a, nil
}

// Close releases the buffer and the probes' sockets.
func (a *Appliance) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// Run runs the checks and the stream to the hub until ctx ends.
func (a *Appliance) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	var schedErr error
	go func() {
		defer wg.Done()
		schedErr = a.sched.Run(ctx)
		cancel()
	}()
	a.connectLoop(ctx)
	cancel()
	wg.Wait()
	if schedErr != nil && !errors.Is(schedErr, context.Canceled) {
		return schedErr
	}
	return nil
}

// connectLoop keeps a stream to one of the hubs. It stays on the hub that
// works. When a hub cannot be reached, does not take the announce, or its
// stream breaks, the next hub of the list is tried at once; only after
// every hub failed in a row does it wait, with backoff from 2 s to 128 s
// with jitter, before the next round. A hub that disowns the appliance
// speaks for all of them (they share one state): the appliance forgets its
// configuration and waits the longest backoff. The buffer is untouched:
// what no hub acknowledged is sent again on the next stream.
func (a *Appliance) connectLoop(ctx context.Context) {
	backoff := 2 * time.Second
	failed := 0 // hubs that failed in a row
	for ctx.Err() == nil {
		hub := a.currentHub()
		start := time.Now()
		err := a.session(ctx)
		if ctx.Err() != nil {
			return
		}
		a.mu.Lock()
		up := a.upSince
		a.mu.Unlock()
		wasUp := up.After(start)
		if wasUp && time.Since(up) >= stableStream {
			failed = 0 // the hub worked: its failure starts a new round
		}
		if time.Since(start) > time.Minute {
			backoff = 2 * time.Second
		}
		failed++
		next := a.nextHub()
		var re *refusedError
		disowned := errors.As(err, &re) && re.disowned()
		if disowned {
			// Revoked or unknown: stop probing with the vault's
			// credentials for a hub that no longer wants it.
			if a.Status().Assets > 0 {
				a.log.Error("the hub no longer accepts this appliance; stopped every check and forgot the configuration", "hub", hub, "reason", re.msg)
			}
			a.forgetAssets()
			backoff = 128 * time.Second
		}
		if !disowned && failed < len(a.hubs) {
			if wasUp {
				a.log.Warn("the stream to the hub broke; failing over to the next hub", "hub", hub, "next", next, "err", err,
					"buffered", a.buf.Len())
			} else {
				a.log.Warn("the hub is unavailable; trying the next hub", "hub", hub, "next", next, "err", err)
			}
			continue
		}
		failed = 0
		wait := backoff/2 + rand.N(backoff/2+1) // #nosec G404 -- jitter needs no secrecy
		a.log.Warn("no stream to the hub; results stay in the buffer", "hub", hub, "hubs", len(a.hubs), "err", err,
			"retry_in", wait.Round(time.Millisecond), "next", next, "buffered", a.buf.Len())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 128*time.Second)
	}
}

// currentHub is the hub the next session dials.
func (a *Appliance) currentHub() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hubs[a.hubAt]
}

// nextHub moves on to the next hub of the list and returns it.
func (a *Appliance) nextHub() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hubAt = (a.hubAt + 1) % len(a.hubs)
	return a.hubs[a.hubAt]
}

// setConnected records the hub the stream is up with ("" once it is
// down).
func (a *Appliance) setConnected(hub string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.connected = hub
	if hub != "" {
		a.upSince = time.Now()
	}
}

// sealAdapter gives the vault's Sealer the buffer's interface.
type sealAdapter struct{ s *vault.Sealer }

func (a sealAdapter) Seal(dst, plaintext, ad []byte) []byte {
	return append(dst, a.s.Seal(plaintext, ad)...)
}

func (a sealAdapter) Open(dst, ciphertext, ad []byte) ([]byte, error) {
	pt, err := a.s.Open(ciphertext, ad)
	if err != nil {
		return nil, err
	}
	return append(dst, pt...), nil
}

// setAssets replaces the assets served and reschedules.
func (a *Appliance) setAssets(appliances []wire.ApplianceZone, assets []wire.Asset) {
	a.mu.Lock()
	a.appliances = appliances
	a.assets = make(map[uint64]wire.Asset, len(assets))
	for _, as := range assets {
		a.assets[as.ID] = as
	}
	a.mu.Unlock()
	a.assetsChanged()
}

// forgetAssets stops every check and removes the configuration, on disk
// and then in memory: once the appliance reports no asset, nothing of the
// configuration is left.
func (a *Appliance) forgetAssets() {
	if err := a.sched.Set(nil); err != nil {
		a.log.Error("stopping the checks failed", "err", err)
	}
	if err := os.Remove(filepath.Join(a.cfg.DataDir, assetsFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.log.Error("removing the configuration failed", "err", err)
	}
	a.mu.Lock()
	a.appliances = nil
	a.assets = map[uint64]wire.Asset{}
	a.mu.Unlock()
}

// upsertAsset adds or replaces one asset.
func (a *Appliance) upsertAsset(as wire.Asset) {
	a.mu.Lock()
	a.assets[as.ID] = as
	a.mu.Unlock()
	a.assetsChanged()
}

// unsetAssets removes assets.
func (a *Appliance) unsetAssets(ids []uint64) {
	a.mu.Lock()
	for _, id := range ids {
		delete(a.assets, id)
	}
	a.mu.Unlock()
	a.assetsChanged()
}

// assetsChanged reschedules the checks and keeps the configuration.
func (a *Appliance) assetsChanged() {
	a.mu.Lock()
	list := make([]wire.Asset, 0, len(a.assets))
	for _, as := range a.assets {
		list = append(list, as)
	}
	appliances := a.appliances
	a.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	var jobs []schedule.Job
	for _, as := range list {
		for _, p := range as.Probes {
			for _, c := range p.Checks {
				if c.Interval <= 0 {
					continue
				}
				cfg := make(map[string]any, len(p.Config)+len(c.Config))
				for k, v := range p.Config {
					cfg[k] = v
				}
				for k, v := range c.Config {
					cfg[k] = v
				}
				iv := time.Duration(c.Interval) * time.Second
				jobs = append(jobs, schedule.Job{
					ID:       schedule.JobID{AssetID: as.ID, CheckID: c.ID},
					Interval: iv,
					Payload: probe.Target{AssetID: as.ID, AssetName: as.Name, Collector: p.Key, Check: c.Key,
						Config: cfg, Interval: iv},
				})
			}
		}
	}
	if err := a.sched.Set(jobs); err != nil {
		a.log.Error("scheduling the checks failed", "err", err)
	}
	if err := a.saveAssets(appliances, list); err != nil {
		a.log.Error("keeping the configuration on disk failed", "err", err)
	}
}

func (a *Appliance) saveAssets(appliances []wire.ApplianceZone, assets []wire.Asset) error {
	body, err := wire.MarshalSetAssets(wire.SetAssets{Appliances: appliances, Assets: assets})
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(a.cfg.DataDir, assetsFile), a.cfgSealer.Seal(body, []byte(assetsFile)))
}

func (a *Appliance) loadAssets() error {
	sealed, err := os.ReadFile(filepath.Join(a.cfg.DataDir, assetsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	body, err := a.cfgSealer.Open(sealed, []byte(assetsFile))
	if err != nil {
		return err
	}
	sa, err := wire.UnmarshalSetAssets(body)
	if err != nil {
		return err
	}
	a.log.Info("running the last known configuration until the hub answers", "assets", len(sa.Assets))
	a.setAssets(sa.Appliances, sa.Assets)
	return nil
}

// missingProbes lists the collector keys of served assets this appliance
// has no probe for.
func (a *Appliance) missingProbes() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, as := range a.assets {
		for _, p := range as.Probes {
			if _, ok := a.probes[p.Key]; !ok && !seen[p.Key] {
				seen[p.Key] = true
				out = append(out, p.Key)
			}
		}
	}
	sort.Strings(out)
	return out
}

// runCheck runs one check and buffers its result (durably) for the hub.
func (a *Appliance) runCheck(ctx context.Context, job schedule.Job, scheduled time.Time) {
	t, ok := job.Payload.(probe.Target)
	if !ok {
		return
	}
	begin := a.clock.Now()
	var res probe.Result
	if fn := a.probes[t.Collector][t.Check]; fn != nil {
		res = fn(ctx, t, a.vault)
	} else {
		res = probe.Fail(model.SeverityHigh, "this appliance has no probe for %s/%s", t.Collector, t.Check)
	}
	if res.Types == nil && res.Error == nil {
		return // the probe ignored this run
	}
	cd := model.CheckData{
		Types: res.Types, HasResult: res.Types != nil, Error: res.Error,
		Timestamp: scheduled.Unix(), Duration: a.clock.Now().Sub(begin).Seconds(), Version: a.cfg.Version,
	}
	if err := cd.Validate(a.clock.Now(), model.Limits{}); err != nil {
		a.log.Error("a probe produced an invalid result", "collector", t.Collector, "check", t.Check, "err", err)
		cd = model.CheckData{Timestamp: cd.Timestamp, Duration: cd.Duration, Version: cd.Version,
			Error: &model.CheckError{Severity: model.SeverityHigh, Message: "the probe produced an invalid result: " + err.Error()}}
	}
	body, err := wire.MarshalProbeDump(wire.ProbeDump{AssetID: t.AssetID, CheckID: job.ID.CheckID, CheckData: wire.EncodeCheckData(&cd)})
	if err != nil {
		a.log.Error("encoding a result failed", "asset_id", t.AssetID, "check", t.Check, "err", err)
		return
	}
	seq, err := a.buf.Put(t.AssetID, body)
	if err != nil {
		a.log.Error("buffering a result failed; it is lost", "asset_id", t.AssetID, "check", t.Check, "err", err)
		return
	}
	a.log.Debug("result buffered", "seq", seq, "asset_id", t.AssetID, "check_id", job.ID.CheckID, "ts", cd.Timestamp)
}

// Status is what the appliance can tell about itself.
type Status struct {
	// Assets is how many assets it serves.
	Assets int
	// Buffered is how many results wait for the hub's answer.
	Buffered int
	// Dropped is how many results the full buffer dropped.
	Dropped uint64
	// Refused is how many results the hub refused for good.
	Refused uint64
	// Hub is the hub the stream is up with, HOST:PORT; "" when there is
	// no stream.
	Hub string
}

// Status reports on the appliance.
func (a *Appliance) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Status{Assets: len(a.assets), Buffered: a.buf.Len(), Dropped: a.buf.Dropped(), Refused: a.refused, Hub: a.connected}
}

// Assets returns the assets the appliance serves, by id.
func (a *Appliance) Assets() []wire.Asset {
	a.mu.Lock()
	out := make([]wire.Asset, 0, len(a.assets))
	for _, as := range a.assets {
		out = append(out, as)
	}
	a.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

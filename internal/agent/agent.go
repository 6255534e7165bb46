// Package agent runs Sonde's host agent: it finds or creates its asset on
// the hub with the InfraSonar agent API, collects the host checks of
// package hostagent every interval, keeps each result in an on-disk spool
// until the hub has taken it, and sends the spool in order, retrying
// transport errors with backoff.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hostagent"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

// Collector is the collector key the agent's checks are posted under.
const Collector = "linux"

// Kind is the asset kind the agent sets.
const Kind = "Linux"

// assetIDFile holds the asset id in the state directory.
const assetIDFile = "asset-id"

// Config configures an agent.
type Config struct {
	// APIURL is the hub's agent API, e.g. https://hub:8443/api/v1.
	APIURL string
	Token  secret.Secret
	// CAFile is the hub's CA certificate (PEM); empty means the system's
	// roots.
	CAFile    string
	AssetName string
	// AssetID is the asset to report on; 0 means the one remembered in
	// the state directory, or a new one.
	AssetID  int64
	StateDir string
	Interval time.Duration
	// Once collects and sends one round, then returns.
	Once bool
	// Root is where /proc and /sys are read from: "/" on a host.
	Root string
	// SpoolBytes bounds the on-disk spool; 0 means 64 MiB.
	SpoolBytes int64
	Version    string
	Logger     *slog.Logger
	// Checks replaces the host checks (tests); nil means hostagent.Checks.
	Checks []hostagent.Check
	// HTTPTimeout bounds each call to the hub; 0 means 30 s.
	HTTPTimeout time.Duration
}

// Validate checks the configuration and names the flag to fix.
func (c *Config) Validate() error {
	switch {
	case c.APIURL == "":
		return errors.New("the hub's API URL is not set: give --api https://HOST:8443/api/v1 or API_URI")
	case c.Token.IsZero():
		return errors.New("no token: give --token-file FILE or TOKEN (a token with READ, API, ASSET_MANAGEMENT and INSERT_CHECK_DATA)")
	case c.StateDir == "":
		return errors.New("the state directory is not set: give --state-dir DIR")
	case c.Interval < time.Second || c.Interval > 24*time.Hour:
		return fmt.Errorf("--interval %s: give between 1s and 24h", c.Interval)
	case c.AssetID < 0:
		return fmt.Errorf("--asset-id %d: give a positive asset id, or none", c.AssetID)
	case c.AssetID == 0 && c.AssetName == "":
		return errors.New("the asset name is not set: give --asset-name NAME or ASSET_NAME")
	}
	if len(c.Token.Reveal()) != 32 || strings.Trim(c.Token.Reveal(), "0123456789abcdef") != "" {
		return errors.New("the token must be 32 lowercase hexadecimal characters: check --token-file or TOKEN")
	}
	return nil
}

// Agent is a running host agent.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	client *client
	spool  *spool
	checks []hostagent.Check

	// kick wakes the sender when a new result is spooled.
	kick chan struct{}

	mu        sync.Mutex
	assetID   int64
	disabled  map[string]bool
	refreshed time.Time
	busy      map[string]bool // checks whose last collection has not returned
	sendErr   error           // the last send failure, logged once per interval
}

// New prepares an agent: it validates cfg, opens the spool and builds the
// hub client. Nothing is sent before Run.
func New(cfg Config) (*Agent, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	if cfg.SpoolBytes == 0 {
		cfg.SpoolBytes = 64 << 20
	}
	if cfg.HTTPTimeout == 0 {
		cfg.HTTPTimeout = 30 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory %s: %w", cfg.StateDir, err)
	}
	c, err := newClient(cfg.APIURL, cfg.Token, cfg.CAFile, "sonde-agent/"+cfg.Version, cfg.HTTPTimeout)
	if err != nil {
		return nil, err
	}
	sp, err := openSpool(filepath.Join(cfg.StateDir, "spool"), cfg.SpoolBytes)
	if err != nil {
		return nil, err
	}
	checks := cfg.Checks
	if checks == nil {
		checks = hostagent.Checks(hostagent.Options{Root: cfg.Root, Now: time.Now})
	}
	return &Agent{
		cfg: cfg, log: cfg.Logger, client: c, spool: sp, checks: checks,
		kick: make(chan struct{}, 1), assetID: cfg.AssetID, busy: map[string]bool{},
	}, nil
}

// Run collects every interval and sends until ctx ends. With Config.Once
// it collects one round, sends everything spooled and returns nil only if
// the hub took it all.
func (a *Agent) Run(ctx context.Context) error {
	if a.cfg.Once {
		if err := a.setup(ctx); err != nil {
			return err
		}
		a.collect(ctx, time.Now())
		return a.flush(ctx)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.sender(ctx)
	}()
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	a.collect(ctx, time.Now())
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case now := <-t.C:
			a.reportSendError()
			a.collect(ctx, now)
		}
	}
}

// setup finds or creates the asset, makes sure the linux collector is on
// it with kind Linux, and reads the disabled checks.
func (a *Agent) setup(ctx context.Context) error {
	a.mu.Lock()
	id := a.assetID
	a.mu.Unlock()
	fromFile := false
	if id == 0 {
		var err error
		if id, err = a.readAssetID(); err != nil {
			return err
		}
		fromFile = id != 0
	}
	if id == 0 {
		cid, err := a.client.containerID(ctx)
		if err != nil {
			return fmt.Errorf("finding the agent's container: %w", err)
		}
		if id, err = a.findOrCreate(ctx, cid); err != nil {
			return err
		}
	}
	if err := a.client.addCollector(ctx, id, Collector); err != nil {
		var se *statusError
		if fromFile && errors.As(err, &se) && se.code == 404 {
			// The asset was deleted on the hub: start over with a new one.
			a.log.Warn("the remembered asset no longer exists on the hub; creating a new one", "asset_id", id)
			if err := os.Remove(filepath.Join(a.cfg.StateDir, assetIDFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("forgetting the deleted asset: %w", err)
			}
			return a.setup(ctx)
		}
		return fmt.Errorf("adding the %s collector to asset %d: %w", Collector, id, err)
	}
	if err := a.client.setKind(ctx, id, Kind); err != nil {
		return fmt.Errorf("setting the kind of asset %d: %w", id, err)
	}
	a.mu.Lock()
	a.assetID = id
	a.mu.Unlock()
	return a.refresh(ctx)
}

// findOrCreate returns the container's one asset with the configured name,
// or creates it, and remembers the id in the state directory.
func (a *Agent) findOrCreate(ctx context.Context, container int64) (int64, error) {
	list, err := a.client.assets(ctx, container)
	if err != nil {
		return 0, fmt.Errorf("listing the assets of container %d: %w", container, err)
	}
	var id int64
	n := 0
	for _, as := range list {
		if as.Name == a.cfg.AssetName {
			id = as.ID
			n++
		}
	}
	switch n {
	case 0:
		if id, err = a.client.createAsset(ctx, container, a.cfg.AssetName); err != nil {
			return 0, fmt.Errorf("creating asset %q: %w", a.cfg.AssetName, err)
		}
		a.log.Info("created the asset on the hub", "asset", a.cfg.AssetName, "asset_id", id)
	case 1:
		a.log.Info("found the asset on the hub", "asset", a.cfg.AssetName, "asset_id", id)
	default:
		return 0, fmt.Errorf("container %d has %d assets named %q: give --asset-id to say which one is this host", container, n, a.cfg.AssetName)
	}
	if err := writeFileSync(a.cfg.StateDir, assetIDFile, []byte(strconv.FormatInt(id, 10)+"\n")); err != nil {
		return 0, fmt.Errorf("remembering the asset id: %w", err)
	}
	return id, nil
}

func (a *Agent) readAssetID() (int64, error) {
	path := filepath.Join(a.cfg.StateDir, assetIDFile)
	b, err := os.ReadFile(path) // #nosec G304 -- a fixed name in the agent's own state dir
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the remembered asset id: %w", err)
	}
	id, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s does not hold an asset id: remove it, or give --asset-id", path)
	}
	return id, nil
}

// refresh reads the checks disabled on the hub.
func (a *Agent) refresh(ctx context.Context) error {
	a.mu.Lock()
	id := a.assetID
	a.mu.Unlock()
	st, err := a.client.asset(ctx, id)
	if err != nil {
		return fmt.Errorf("reading the disabled checks of asset %d: %w", id, err)
	}
	disabled := map[string]bool{}
	for _, d := range st.DisabledChecks {
		if d.Collector == Collector {
			disabled[d.Check] = true
		}
	}
	a.mu.Lock()
	a.disabled = disabled
	a.refreshed = time.Now()
	a.mu.Unlock()
	return nil
}

// refreshEvery is how often the agent re-reads its disabled checks.
const refreshEvery = 5 * time.Minute

// collect runs every enabled check at once, each under its own deadline,
// and spools the results. A check that has not returned from an earlier
// round is not started again; it is reported as an error instead.
func (a *Agent) collect(ctx context.Context, now time.Time) {
	ts := now.Unix()
	timeout := min(a.cfg.Interval*8/10, time.Minute)
	type done struct {
		check string
		data  model.CheckData
	}
	results := make(chan done, len(a.checks))
	a.mu.Lock()
	disabled := a.disabled
	a.mu.Unlock()
	var started []string
	for _, c := range a.checks {
		key := c.Key()
		if disabled[key] {
			continue
		}
		a.mu.Lock()
		busy := a.busy[key]
		if !busy {
			a.busy[key] = true
		}
		a.mu.Unlock()
		if busy {
			a.spoolResult(key, model.CheckData{
				Timestamp: ts, Version: a.cfg.Version,
				Error: &model.CheckError{Severity: model.SeverityMedium,
					Message: fmt.Sprintf("the %s check from an earlier round has still not returned; skipped this round", key)},
			})
			continue
		}
		started = append(started, key)
		go func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			begin := time.Now()
			types, cerr := c.Collect(cctx)
			a.mu.Lock()
			delete(a.busy, key)
			a.mu.Unlock()
			d := model.CheckData{Types: types, HasResult: types != nil || cerr == nil, Error: cerr,
				Timestamp: ts, Duration: time.Since(begin).Seconds(), Version: a.cfg.Version}
			results <- done{key, d}
		}()
	}
	deadline := time.NewTimer(timeout + time.Second)
	defer deadline.Stop()
	got := map[string]bool{}
	for range started {
		select {
		case r := <-results:
			got[r.check] = true
			if r.check == "system" {
				r.data.Types = append(r.data.Types, a.selfType())
				r.data.HasResult = true
			}
			a.spoolResult(r.check, r.data)
		case <-deadline.C:
			for _, k := range started {
				if !got[k] {
					a.spoolResult(k, model.CheckData{
						Timestamp: ts, Version: a.cfg.Version, Duration: timeout.Seconds(),
						Error: &model.CheckError{Severity: model.SeverityMedium,
							Message: fmt.Sprintf("the %s check did not finish within %s", k, timeout)},
					})
				}
			}
			a.wake()
			return
		case <-ctx.Done():
			return
		}
	}
	a.wake()
}

// selfType reports the agent itself: its version and its spool, so that a
// hub outage that cost results shows on the hub afterwards.
func (a *Agent) selfType() model.Type {
	waiting, dropped := a.spool.stats()
	return model.Type{Name: "agent", Items: []model.Item{{Name: "sonde-agent", Metrics: []model.Metric{
		{Name: "version", Value: model.StringValue(a.cfg.Version)},
		{Name: "spooled", Value: model.IntValue(int64(waiting))},
		{Name: "spoolDropped", Value: model.IntValue(int64(min(dropped, 1<<62)))},
	}}}}
}

func (a *Agent) spoolResult(check string, d model.CheckData) {
	if err := a.spool.put(check, d.MarshalAgentJSON()); err != nil {
		a.log.Error("keeping a result for the hub failed; it is lost", "check", check, "err", err)
	}
}

func (a *Agent) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// sender sends the spool whenever a result arrives, retrying failures with
// backoff (2 s doubling, at most the interval or 128 s, with jitter).
func (a *Agent) sender(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		if !a.waitToSend(ctx, backoff) {
			return
		}
		err := a.flush(ctx)
		switch {
		case err == nil:
			backoff = 0
		case ctx.Err() != nil:
			return
		case rejected(err):
			backoff = 0 // wait for the next round; the token will not heal by retrying
		default:
			backoff = min(max(2*backoff, 2*time.Second), 128*time.Second, a.cfg.Interval)
		}
	}
}

// waitToSend waits for a new result, or for the backoff to pass after a
// failure; it returns false when ctx ends.
func (a *Agent) waitToSend(ctx context.Context, backoff time.Duration) bool {
	if backoff == 0 {
		select {
		case <-ctx.Done():
			return false
		case <-a.kick:
			return true
		}
	}
	// A new result is no sign the hub is back: keep to the backoff.
	t := time.NewTimer(backoff/2 + rand.N(backoff/2+1)) // #nosec G404 -- jitter needs no secrecy
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// flush sends spooled results oldest first until the spool is empty or a
// send fails in a way worth retrying. A result the hub refuses for good
// (4xx other than 401, 403, 408, 429) is logged and dropped.
func (a *Agent) flush(ctx context.Context) error {
	err := a.flushOnce(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.log.Debug("sending results failed; they stay in the spool", "err", err)
		a.sendErr = err
		return err
	}
	if a.sendErr != nil {
		waiting, _ := a.spool.stats()
		a.log.Info("the hub takes results again", "waiting", waiting)
		a.sendErr = nil
	}
	return nil
}

// reportSendError logs the last send failure at most once per interval.
func (a *Agent) reportSendError() {
	a.mu.Lock()
	err := a.sendErr
	a.mu.Unlock()
	if err == nil {
		return
	}
	waiting, dropped := a.spool.stats()
	if rejected(err) {
		a.log.Error("the hub refuses the agent's token: check --token-file / TOKEN and the token's permissions (READ, API, ASSET_MANAGEMENT, INSERT_CHECK_DATA); results stay in the spool",
			"err", err, "waiting", waiting, "dropped", dropped)
		return
	}
	a.log.Warn("cannot send results to the hub; they stay in the spool and are retried", "err", err, "waiting", waiting, "dropped", dropped)
}

func (a *Agent) flushOnce(ctx context.Context) error {
	a.mu.Lock()
	id, refreshed := a.assetID, a.refreshed
	a.mu.Unlock()
	if id == 0 || refreshed.IsZero() {
		if err := a.setup(ctx); err != nil {
			return err
		}
	} else if time.Since(refreshed) > refreshEvery {
		if err := a.refresh(ctx); err != nil {
			return err
		}
	}
	a.mu.Lock()
	id = a.assetID
	a.mu.Unlock()
	for {
		e, body, ok, err := a.spool.oldest()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		err = a.client.postCheck(ctx, id, Collector, e.check, body)
		var se *statusError
		if errors.As(err, &se) && se.code == 409 {
			// The collector was removed from the asset: put it back once.
			if err = a.client.addCollector(ctx, id, Collector); err == nil {
				err = a.client.postCheck(ctx, id, Collector, e.check, body)
			}
		}
		if err != nil && (retryable(err) || rejected(err)) {
			return err
		}
		if err != nil {
			a.log.Warn("the hub refused a result; it is dropped", "check", e.check, "err", err)
		}
		if err := a.spool.remove(e); err != nil {
			return err
		}
	}
}

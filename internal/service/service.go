// Package service runs the hub's own checks ("services" in the seed's
// words): collectors an asset carries with runBy "hub" — http, tls, dns,
// tcp, icmp, the same probe code as the appliance's — seen from the hub,
// outside the customer's network. Results take the path of every other
// result (the ingester). The hub holds no credentials, so a service check
// that names one fails with a clear error, and by default a service check
// may reach only public addresses: a tenant cannot point the hub at its
// own network (127.0.0.1, 10.0.0.0/8, a cloud's metadata address).
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sonde-monitoring/sonde/internal/ingest"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/netguard"
	"github.com/sonde-monitoring/sonde/internal/probe"
	dnsprobe "github.com/sonde-monitoring/sonde/internal/probe/dns"
	httpprobe "github.com/sonde-monitoring/sonde/internal/probe/http"
	icmpprobe "github.com/sonde-monitoring/sonde/internal/probe/icmp"
	"github.com/sonde-monitoring/sonde/internal/probe/tcp"
	tlsprobe "github.com/sonde-monitoring/sonde/internal/probe/tls"
	"github.com/sonde-monitoring/sonde/internal/schedule"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// Registry maps a collector key and a check key to a probe.
type Registry map[string]map[string]probe.Func

// Ingester stores results.
type Ingester interface {
	IngestBatch(ctx context.Context, items []ingest.Item) []error
}

// Config configures the runner.
type Config struct {
	State  *state.Store
	Ingest Ingester
	Logger *slog.Logger
	// AllowPrivate lets service checks reach loopback, private and other
	// special-purpose addresses: tests and labs only.
	AllowPrivate bool
	// Reload is how often the checks are read again besides Changed;
	// 0 means 30 s.
	Reload time.Duration
	// Probes replaces the probes (tests); nil means the hub's own.
	Probes  Registry
	Version string
	Clock   schedule.Clock
}

// Runner runs the service checks.
type Runner struct {
	cfg     Config
	log     *slog.Logger
	probes  Registry
	sched   *schedule.Scheduler
	changed chan struct{}
	closers []func() error

	mu      sync.Mutex
	targets map[schedule.JobID]target
}

// target is one service check with the container it belongs to.
type target struct {
	probe.Target
	Container int64
}

// New builds a runner. ICMP needs unprivileged ping sockets or raw
// sockets; without them icmp service checks fail with the reason.
func New(cfg Config) *Runner {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Reload <= 0 {
		cfg.Reload = 30 * time.Second
	}
	r := &Runner{cfg: cfg, log: cfg.Logger, changed: make(chan struct{}, 1), targets: map[schedule.JobID]target{}}
	r.probes = cfg.Probes
	if r.probes == nil {
		r.probes = Registry{
			"tcp":  {"tcp": tcp.Probe},
			"http": {"http": httpprobe.Probe},
			"tls":  {"tls": tlsprobe.Probe},
			"dns":  {"dns": dnsprobe.Probe},
		}
		icmp, err := icmpprobe.New(icmpprobe.Options{Logger: cfg.Logger})
		if err != nil {
			r.log.Warn("icmp service checks are not available on this hub", "err", err)
		} else {
			r.probes["icmp"] = map[string]probe.Func{"icmp": icmp.Probe}
			r.closers = append(r.closers, icmp.Close)
		}
	}
	r.sched = schedule.New(r.run, schedule.Options{Clock: cfg.Clock, Logger: cfg.Logger})
	return r
}

// Changed says that service checks may have changed: they are read again
// at once.
func (r *Runner) Changed() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Run runs the checks until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	defer func() {
		for _, c := range r.closers {
			if err := c(); err != nil {
				r.log.Warn("closing a probe failed", "err", err)
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- r.sched.Run(ctx) }()
	t := time.NewTicker(r.cfg.Reload)
	defer t.Stop()
	for {
		if err := r.load(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("reading the service checks failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return <-done
		case <-t.C:
		case <-r.changed:
		}
	}
}

// load reads the service checks and schedules them.
func (r *Runner) load(ctx context.Context) error {
	assets, err := r.cfg.State.ServiceAssets(ctx, Collectors())
	if err != nil {
		return err
	}
	var jobs []schedule.Job
	targets := map[schedule.JobID]target{}
	for _, a := range assets {
		for _, c := range a.Collectors {
			cfg, err := configMap(c.Config)
			if err != nil {
				r.log.Warn("a service check's configuration is not a JSON object", "asset_id", a.ID, "collector", c.Key, "err", err)
				continue
			}
			for _, k := range c.Checks {
				if k.Disabled || k.Interval <= 0 {
					continue
				}
				iv := time.Duration(k.Interval) * time.Second
				id := schedule.JobID{AssetID: uint64(a.ID), CheckID: uint64(k.ID)}                                   // #nosec G115 -- ids are positive
				t := target{Container: a.ContainerID, Target: probe.Target{AssetID: uint64(a.ID), AssetName: a.Name, // #nosec G115 -- ids are positive
					Collector: c.Key, Check: k.Key, Config: cfg, Interval: iv}}
				targets[id] = t
				jobs = append(jobs, schedule.Job{ID: id, Interval: iv, Payload: t})
			}
		}
	}
	r.mu.Lock()
	r.targets = targets
	r.mu.Unlock()
	return r.sched.Set(jobs)
}

// Bounds of the service checks: the hub's checks go out from the hub.
const (
	MaxPerContainer = 200
	MinInterval     = 30 // seconds
)

// Collectors are the collectors a service check may have (a hub that
// cannot run one, icmp without ping sockets, answers with an error result,
// never silence).
func Collectors() []string { return []string{"http", "tls", "dns", "tcp", "icmp"} }

// configMap decodes a collector's configuration keeping numbers exact.
func configMap(raw json.RawMessage) (map[string]any, error) {
	out := map[string]any{}
	if len(raw) == 0 {
		return out, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// noCredentials is the hub's vault: it has none.
type noCredentials struct{}

func (noCredentials) Credential(name string) (probe.Credential, error) {
	return probe.Credential{}, fmt.Errorf("credential %q: the hub holds no credentials (they stay on appliances); run this check on an appliance: %w", name, probe.ErrNoCredential)
}

// run runs one service check and stores its result.
func (r *Runner) run(ctx context.Context, job schedule.Job, scheduled time.Time) {
	t, ok := job.Payload.(target)
	if !ok {
		return
	}
	if !r.cfg.AllowPrivate {
		ctx = probe.WithAddrPolicy(ctx, netguard.Check)
	}
	begin := time.Now()
	var res probe.Result
	if fn := r.probes[t.Collector][t.Check]; fn != nil {
		res = fn(ctx, t.Target, noCredentials{})
	} else {
		res = probe.Fail(model.SeverityHigh, "the hub cannot run %s/%s as a service check", t.Collector, t.Check)
	}
	if res.Types == nil && res.Error == nil {
		return
	}
	cd := model.CheckData{Types: res.Types, HasResult: res.Types != nil, Error: res.Error,
		Timestamp: scheduled.Unix(), Duration: time.Since(begin).Seconds(), Version: r.cfg.Version}
	if err := cd.Validate(time.Now(), model.Limits{}); err != nil {
		cd = model.CheckData{Timestamp: cd.Timestamp, Duration: cd.Duration, Version: cd.Version,
			Error: &model.CheckError{Severity: model.SeverityHigh, Message: "the probe produced an invalid result: " + err.Error()}}
	}
	item := ingest.Item{Target: ingest.Target{ContainerID: t.Container, AssetID: int64(t.AssetID), AssetName: t.AssetName, // #nosec G115 -- ids are positive
		Collector: t.Collector, Check: t.Check}, Data: &cd}
	if errs := r.cfg.Ingest.IngestBatch(ctx, []ingest.Item{item}); len(errs) > 0 && errs[0] != nil && !errors.Is(errs[0], context.Canceled) {
		r.log.Error("storing a service check's result failed", "asset_id", t.AssetID, "collector", t.Collector, "check", t.Check, "err", errs[0])
	}
}

package appliance

import (
	"context"
	"path/filepath"

	"github.com/sonde-monitoring/sonde/internal/hardening"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
	"github.com/sonde-monitoring/sonde/internal/vault"
)

// HardeningOptions are the audit's options for an appliance with this
// configuration and vault (nil when it could not be opened: vaultErr says
// why). latest is the version the hub announces ("" when unknown).
func HardeningOptions(cfg Config, v *vault.Vault, vaultErr error, latest string) hardening.Options {
	o := hardening.Options{
		Root:          "/",
		DataDir:       cfg.DataDir,
		VaultFile:     filepath.Join(cfg.DataDir, vault.FileName),
		Version:       cfg.Version,
		LatestVersion: latest,
		PinnedVersion: cfg.PinnedVersion,
		RotationDays:  cfg.RotationDays,
	}
	if cfg.PassphraseFile == "" {
		o.KeyFile = filepath.Join(cfg.DataDir, vault.KeyFileName)
	}
	switch {
	case v != nil:
		for _, e := range v.List() {
			o.Credentials = append(o.Credentials, hardening.CredentialAge{Name: e.Name, RotatedAt: e.Rotated})
		}
	case vaultErr != nil:
		o.CredentialsErr = vaultErr
	}
	return o
}

// HardeningType shapes findings as the check's result: type "hardening",
// one item per finding.
func HardeningType(fs []hardening.Finding) model.Type {
	t := model.Type{Name: hardening.Type, Items: make([]model.Item, 0, len(fs))}
	for _, f := range fs {
		ok, failed := int64(0), int64(0)
		switch f.Status {
		case hardening.Pass:
			ok = 1
		case hardening.Fail:
			failed = 1
		}
		t.Items = append(t.Items, model.Item{Name: f.Name, Metrics: []model.Metric{
			{Name: "status", Value: model.StringValue(string(f.Status))},
			{Name: "severity", Value: model.StringValue(f.Severity)},
			{Name: "observed", Value: model.StringValue(f.Observed)},
			{Name: "expected", Value: model.StringValue(f.Expected)},
			{Name: "advice", Value: model.StringValue(f.Advice)},
			{Name: "source", Value: model.StringValue(f.Source)},
			{Name: "ok", Value: model.IntValue(ok)},
			{Name: "failed", Value: model.IntValue(failed)},
		}})
	}
	return t
}

// hardeningProbe runs the audit as the appliance's own check (collector
// "appliance", check "hardening"): the hub's conditions alert on it.
func (a *Appliance) hardeningProbe(ctx context.Context, t probe.Target, _ probe.Credentials) probe.Result {
	latest, _ := t.Config["latestVersion"].(string)
	fs := hardening.Audit(ctx, HardeningOptions(a.cfg, a.vault, nil, latest))
	return probe.Result{Types: []model.Type{HardeningType(fs)}}
}

// withHardening adds the hardening audit to a registry that lacks it.
func (a *Appliance) withHardening(r Registry) Registry {
	if _, ok := r[hardening.Collector]; ok {
		return r
	}
	out := make(Registry, len(r)+1)
	for k, v := range r {
		out[k] = v
	}
	out[hardening.Collector] = map[string]probe.Func{hardening.Check: a.hardeningProbe}
	return out
}

package snmp

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/probe"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

// vault is a map of vault entries by name.
type vault map[string]probe.Credential

func (v vault) Credential(name string) (probe.Credential, error) {
	if c, ok := v[name]; ok {
		return c, nil
	}
	return probe.Credential{}, probe.ErrNoCredential
}

// entry returns a vault entry of the kind that may be sent to 127.0.0.1.
func entry(name, kind, user, value string) probe.Credential {
	return probe.Credential{Name: name, Kind: kind, Username: user, Secret: secret.New(value), Hosts: []string{"127.0.0.1"}}
}

func target(check string, cfg map[string]any) probe.Target {
	return probe.Target{AssetID: 1, AssetName: "127.0.0.1", Collector: CollectorKey, Check: check, Config: cfg, Interval: time.Minute}
}

// runCheck runs fn with a deadline of d.
func runCheck(t testing.TB, fn probe.Func, tg probe.Target, creds probe.Credentials, d time.Duration) probe.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	res := fn(ctx, tg, creds)
	if el := time.Since(start); el > d+2*time.Second {
		t.Errorf("the run took %v with a deadline of %v", el, d)
	}
	return res
}

// allStrings returns every string a result holds: names, string values,
// the error message.
func allStrings(res probe.Result) []string {
	var out []string
	for _, ty := range res.Types {
		out = append(out, ty.Name)
		for _, it := range ty.Items {
			out = append(out, it.Name)
			for _, m := range it.Metrics {
				out = append(out, m.Name)
				if m.Value.Kind == model.KindString {
					out = append(out, m.Value.Str)
				}
			}
		}
	}
	if res.Error != nil {
		out = append(out, res.Error.Message)
	}
	return out
}

// assertNoSecrets fails when any string of res, or its JSON encoding,
// holds one of the secrets.
func assertNoSecrets(t testing.TB, res probe.Result, secrets ...string) {
	t.Helper()
	d := &model.CheckData{Types: res.Types, HasResult: res.Types != nil, Error: res.Error, Timestamp: time.Now().Unix()}
	texts := append(allStrings(res), string(d.MarshalAgentJSON()))
	for _, s := range secrets {
		for _, text := range texts {
			if strings.Contains(text, s) {
				t.Fatalf("a secret appears in the result: %q", text)
			}
		}
	}
}

// assertValid checks that the hub accepts res: it is encoded the way a
// collector sends it and decoded under the hub's default limits.
func assertValid(t testing.TB, res probe.Result) {
	t.Helper()
	d := &model.CheckData{Types: res.Types, HasResult: res.Types != nil, Error: res.Error, Timestamp: time.Now().Unix()}
	if _, err := model.DecodeCheckData(bytes.NewReader(d.MarshalAgentJSON()), model.Limits{}); err != nil {
		t.Fatalf("the hub would refuse the result: %v\n%.2000s", err, d.MarshalAgentJSON())
	}
}

// wantError fails unless res has an error of severity sev whose message
// holds every one of parts.
func wantError(t testing.TB, res probe.Result, sev model.Severity, parts ...string) {
	t.Helper()
	if res.Error == nil {
		t.Fatalf("no error, want %s with %q; result %+v", sev, parts, res.Types)
	}
	if res.Error.Severity != sev {
		t.Errorf("severity %s, want %s (%s)", res.Error.Severity, sev, res.Error.Message)
	}
	for _, p := range parts {
		if !strings.Contains(res.Error.Message, p) {
			t.Errorf("error %q does not say %q", res.Error.Message, p)
		}
	}
}

// metrics returns the metrics of the named item of type typ, by name.
func metrics(t testing.TB, res probe.Result, typ, item string) map[string]model.Value {
	t.Helper()
	for _, ty := range res.Types {
		if ty.Name != typ {
			continue
		}
		for _, it := range ty.Items {
			if it.Name == item {
				m := make(map[string]model.Value, len(it.Metrics))
				for _, x := range it.Metrics {
					m[x.Name] = x.Value
				}
				return m
			}
		}
	}
	t.Fatalf("no item %q in type %q: %+v", item, typ, res.Types)
	return nil
}

func portConfig(port int, kv ...any) map[string]any {
	cfg := map[string]any{"address": "127.0.0.1", "port": port}
	for i := 0; i+1 < len(kv); i += 2 {
		cfg[kv[i].(string)] = kv[i+1]
	}
	return cfg
}

func itoa(i int) string { return strconv.Itoa(i) }

// Short names for the probe.Func signature in tables.
type (
	contextT = context.Context
	targetT  = probe.Target
	credsT   = probe.Credentials
	resultT  = probe.Result
)

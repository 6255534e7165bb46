// Package probe holds what every agentless probe shares: the target a
// probe runs against, the credentials it may look up, the result it returns
// and strict decoding of its configuration. The probes themselves live in
// the sub-packages (icmp, tcp, http, tls, dns, snmp); the appliance keeps
// the explicit registry that maps collector and check keys to them.
package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

// Target is one (asset, check) a probe runs against.
type Target struct {
	AssetID   uint64
	AssetName string
	// Collector and Check are the keys the check is configured under,
	// e.g. "snmp" and "interfaces".
	Collector string
	Check     string
	// Config is the collector's configuration merged with the check's (the
	// check's keys win). Keys starting with "_" are InfraSonar bookkeeping
	// (e.g. "_interval") and are ignored by DecodeConfig.
	Config map[string]any
	// Interval is how often the check runs; the run's context carries the
	// deadline (min(0.8 × interval, 300 s)).
	Interval time.Duration
}

// Credential is one entry of the appliance's vault.
type Credential struct {
	Name     string
	Username string
	Secret   secret.Secret
}

// Credentials looks up vault entries by name. An unknown name returns an
// error wrapping ErrNoCredential.
type Credentials interface {
	Credential(name string) (Credential, error)
}

// ErrNoCredential is returned by Credentials for a name the vault does not
// hold.
var ErrNoCredential = errors.New("no such credential in the vault")

// Result is what one run of a probe produces: the result types, an error
// with its severity, or both (an incomplete result). A Result with neither
// means the run is ignored and nothing is sent.
type Result struct {
	Types []model.Type
	Error *model.CheckError
}

// Func runs one check against one target. It must honour ctx's deadline,
// never change the target, and never put a credential's value in the result
// or the error message.
type Func func(ctx context.Context, t Target, creds Credentials) Result

// Fail returns a Result holding only an error of the given severity.
func Fail(sev model.Severity, format string, args ...any) Result {
	return Result{Error: &model.CheckError{Message: fmt.Sprintf(format, args...), Severity: sev}}
}

// DecodeConfig decodes a target's configuration into dst (a pointer to a
// struct with json tags) strictly: a key dst does not know, spelt exactly
// as its json tag, is an error that names it, except keys starting with
// "_". (encoding/json alone would take "Ports" or "intervalms" for a field
// and quietly ignore what the user meant.)
func DecodeConfig(cfg map[string]any, dst any) error {
	known := jsonNames(dst)
	clean := make(map[string]any, len(cfg))
	for k, v := range cfg {
		if strings.HasPrefix(k, "_") {
			continue
		}
		if known != nil && !known[k] {
			return fmt.Errorf("config: unknown field %q", k)
		}
		clean[k] = v
	}
	raw, err := json.Marshal(clean)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// jsonNames returns the json names of the fields of the struct dst points
// to, or nil when dst is not a pointer to a struct.
func jsonNames(dst any) map[string]bool {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	t = t.Elem()
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names[name] = true
	}
	return names
}

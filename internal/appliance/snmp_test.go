package appliance

import (
	"encoding/pem"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hub"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/testutil"
	"github.com/sonde-monitoring/sonde/internal/vault"
)

// TestSNMPWithVaultCredentials runs the snmp probe through the whole
// system against a real snmpd: the v3 passphrase and the v2c community are
// in the appliance's vault, the hub only knows their names. Afterwards no
// file of either data directory and no log holds a plain-text credential.
func TestSNMPWithVaultCredentials(t *testing.T) {
	agent := testutil.StartSNMPD(t, testutil.SNMPDOptions{})
	r := newRig(t, hub.Config{})
	dir := t.TempDir()
	// The operator stores the credentials on the appliance, before or
	// while it runs (the CLI is another process; a second vault handle
	// stands in for it).
	v, err := vault.Open(dir, vault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Set("switch-v2", "", secret.New(agent.Community), vault.KindSNMPCommunity, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := v.Set("switch-v3", agent.V3User.Name, secret.New(agent.V3User.AuthPass), vault.KindSNMPv3Auth, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if err := v.Set("switch-v3-priv", agent.V3User.Name, secret.New(agent.V3User.PrivPass), vault.KindSNMPv3Priv, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.SyncBuffer{}
	defer func() {
		if t.Failed() {
			t.Logf("appliance log:\n%s\nsnmpd log:\n%s", logs, agent.Log())
		}
	}()
	a := r.appliance(dir, "probe-snmp", logs)
	start(t, a)

	ids := map[string]int64{}
	for name, cfg := range map[string]map[string]any{
		"v2": {"address": agent.Host, "port": agent.Port, "version": "2c", "credential": "switch-v2"},
		"v3": {"address": agent.Host, "port": agent.Port, "version": "3", "credential": "switch-v3", "privCredential": "switch-v3-priv"},
	} {
		var out struct {
			AssetID int64 `json:"assetId"`
		}
		r.hub.Must(201, "POST", "/api/v1/container/1/asset", map[string]string{"name": "switch-" + name}, &out)
		r.hub.Must(204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/snmp", out.AssetID), map[string]any{
			"config": cfg,
			"checks": map[string]any{"system": map[string]any{"interval": 5}, "interfaces": map[string]any{"interval": 5}},
		}, nil)
		ids[name] = out.AssetID
	}
	for name, id := range ids {
		for _, sel := range []string{
			fmt.Sprintf(`sonde_system_uptime{asset_id="%d",collector="snmp",check="system"}`, id),
			fmt.Sprintf(`sonde_interfaces_inOctets{asset_id="%d",collector="snmp",check="interfaces",item="lo"}`, id),
		} {
			testutil.WaitFor(t, name+": "+sel, 30*time.Second, func() bool { return len(r.hub.Samples(sel)) == 1 })
		}
	}
	var sys struct {
		Data map[string][]map[string]any `json:"data"`
	}
	r.hub.Must(200, "GET", fmt.Sprintf("/api/v1/asset/%d/collector/snmp/check/system", ids["v3"]), nil, &sys)
	if len(sys.Data["system"]) != 1 || sys.Data["system"][0]["sysName"] == "" {
		t.Errorf("system result: %+v", sys.Data)
	}

	// Whoever configures checks on the hub cannot send a credential
	// elsewhere: an http check aimed at a server of theirs with the SNMP
	// community gets nothing from the appliance.
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			hits.Add(1)
		}
	}))
	defer srv.Close()
	var thief struct {
		AssetID int64 `json:"assetId"`
	}
	r.hub.Must(201, "POST", "/api/v1/container/1/asset", map[string]string{"name": "exfiltration"}, &thief)
	r.hub.Must(204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/http", thief.AssetID), map[string]any{
		"config": map[string]any{"url": srv.URL + "/", "credential": "switch-v2",
			"ca": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))},
		"checks": map[string]any{"http": map[string]any{"interval": 5}},
	}, nil)
	var res struct {
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	testutil.WaitFor(t, "the refused http check", 30*time.Second, func() bool {
		code, _ := r.hub.Call("GET", fmt.Sprintf("/api/v1/asset/%d/collector/http/check/http", thief.AssetID), nil, &res)
		return code == 200 && res.Error != nil
	})
	if !strings.Contains(res.Error.Message, "snmp-community") || hits.Load() != 0 {
		t.Errorf("the http check with an SNMP credential: %q, %d requests with credentials", res.Error.Message, hits.Load())
	}

	secrets := []string{agent.Community, agent.V3User.AuthPass, agent.V3User.PrivPass, r.token}
	for _, root := range []string{dir, r.hub.Dir} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, s := range secrets {
				if strings.Contains(string(b), s) {
					t.Errorf("a plain-text credential is in %s", path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, l := range map[string]string{"appliance": logs.String(), "hub": r.hub.Logs.String()} {
		for _, s := range secrets {
			if strings.Contains(l, s) {
				t.Errorf("a plain-text credential is in the %s log", name)
			}
		}
	}
}

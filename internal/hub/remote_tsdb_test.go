package hub

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/testutil/tsdbtest"
)

// TestRemoteTSDB runs a hub on a real remote TSDB (Prometheus, then
// VictoriaMetrics, started on loopback): results posted by agents of two
// customers come back through the hub's Prometheus API, each customer's
// only to its own tokens.
func TestRemoteTSDB(t *testing.T) {
	for _, k := range tsdbtest.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			srv := tsdbtest.Start(t, k)
			dir := t.TempDir()
			th := startHubWith(t, Config{DataDir: dir, TSDBRemoteWrite: srv.WriteURL.String(), TSDBQuery: srv.QueryURL.String()})

			acme, globex := th.newContainer(1, "Acme"), th.newContainer(1, "Globex")
			tokA, tokG := th.newToken(acme, agentPerms...), th.newToken(globex, agentPerms...)
			assetA, assetG := th.agentSetup(tokA, "acme-web"), th.agentSetup(tokG, "globex-db")
			ts := time.Now().Unix()
			for _, p := range []struct {
				tok   string
				asset int64
				v     float64
			}{{tokA, assetA, 42.5}, {tokG, assetG, 99.25}} {
				th.must(204, p.tok, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/memory", p.asset),
					fmt.Sprintf(`{"timestamp":%d,"data":{"memory":[{"name":"ram","percentUsed":%g}]}}`, ts, p.v), nil)
			}

			q := url.Values{"query": {`sonde_memory_percentUsed`}, "time": {fmt.Sprint(ts)}}.Encode()
			var body string
			deadline := time.Now().Add(30 * time.Second)
			for {
				body = string(th.must(200, tokA, "GET", "/prometheus/api/v1/query?"+q, nil, nil))
				if strings.Contains(body, `"42.5"`) || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if !strings.Contains(body, `"42.5"`) || !strings.Contains(body, `"asset":"acme-web"`) {
				t.Fatalf("Acme's query on the remote TSDB: %s", body)
			}
			for _, leak := range []string{"globex", "99.25", fmt.Sprintf(`"container_id":"%d"`, globex)} {
				if strings.Contains(body, leak) {
					t.Errorf("Acme's query shows %q: %s", leak, body)
				}
			}
			for _, path := range []string{
				"/prometheus/api/v1/query?" + url.Values{"query": {`{container_id="` + fmt.Sprint(globex) + `"}`}, "time": {fmt.Sprint(ts)}}.Encode(),
				"/prometheus/api/v1/label/asset/values",
				"/prometheus/api/v1/series?match[]=" + url.QueryEscape(`{__name__=~"sonde_.+"}`),
			} {
				b := string(th.must(200, tokA, "GET", path, nil, nil))
				if strings.Contains(b, "globex") || strings.Contains(b, "99.25") {
					t.Errorf("%s in Acme's scope shows Globex: %s", path, b)
				}
			}
			// Globex sees its own: the checks above are not vacuous.
			b := string(th.must(200, tokG, "GET", "/prometheus/api/v1/label/asset/values", nil, nil))
			if !strings.Contains(b, "globex-db") {
				t.Errorf("Globex's asset names: %s", b)
			}
		})
	}
}

func TestTSDBFlags(t *testing.T) {
	for _, tc := range []struct {
		name         string
		write, query string
		want         string // part of the error; "" for none
	}{
		{"local http", "http://127.0.0.1:9090/api/v1/write", "http://localhost:9090", ""},
		{"https", "https://vm.example:8480/insert/0/prometheus/api/v1/write", "https://vm.example:8481/select/0/prometheus", ""},
		{"remote http", "http://vm.example:8428/api/v1/write", "https://vm.example:8428", "must use https://"},
		{"credentials", "https://user:pw@vm.example/api/v1/write", "https://vm.example", "holds credentials"},
		{"no scheme", "vm.example:8428", "https://vm.example", "http(s):// URL"},
		{"write only", "https://vm.example/api/v1/write", "", "needs both"},
		{"query only", "", "https://vm.example", "needs both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &Hub{cfg: Config{DataDir: t.TempDir(), TSDBRemoteWrite: tc.write, TSDBQuery: tc.query, Logger: slog.New(slog.DiscardHandler)}}
			s, err := h.openSeries(nil)
			if s != nil {
				defer s.Close()
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("the error repeats the password: %v", err)
			}
		})
	}
}

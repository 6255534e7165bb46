package hub

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/state"
)

// TestTenancyEveryRoute walks every token-authenticated route with a token
// of a sibling container that holds every permission, aimed at the other
// tenant's objects: each answer must be 403 or 404 (or, for reads of the
// Prometheus API, empty), and nothing of the other tenant may change.
func TestTenancyEveryRoute(t *testing.T) {
	th := startHub(t, t.TempDir())
	msp := th.newContainer(1, "msp")
	a := th.newContainer(msp, "customer-a")
	b := th.newContainer(msp, "customer-b")
	aChild := th.newContainer(a, "a-prod")

	// Customer A's objects, with a marker that must never show up.
	const marker = "tenantAsecret"
	aTok := th.newToken(a, agentPerms...)
	var aTokInfo []struct {
		TokenID int64 `json:"tokenId"`
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/tokens", a), nil, &aTokInfo)
	var asset struct {
		AssetID int64 `json:"assetId"`
	}
	th.must(201, aTok, "POST", fmt.Sprintf("/api/v1/container/%d/asset", aChild), map[string]string{"name": marker}, &asset)
	th.must(204, aTok, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux", asset.AssetID), nil, nil)
	// A's condition, rule, maintenance window (of another asset) and
	// labels; the result below opens an alert.
	var cond struct {
		ConditionID int64 `json:"conditionId"`
	}
	th.must(201, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/condition", a), map[string]any{
		"name": marker, "type": "cpu", "expression": "item.usage > 50", "severity": "CRITICAL", "message": marker + " {item}",
	}, &cond)
	var rule struct {
		RuleID int64 `json:"ruleId"`
	}
	th.must(201, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/rule", a), map[string]any{
		"name": marker, "channel": "webhook", "url": "https://" + marker + ".invalid/hook", "secret": marker + "-0123456789", "minSeverity": "ERROR",
	}, &rule)
	var other struct {
		AssetID int64 `json:"assetId"`
	}
	th.must(201, aTok, "POST", fmt.Sprintf("/api/v1/container/%d/asset", aChild), map[string]string{"name": "other"}, &other)
	var maint struct {
		MaintenanceID int64 `json:"maintenanceId"`
	}
	th.must(201, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/maintenance", aChild), map[string]any{
		"assetId": other.AssetID, "duration": "1h", "reason": marker,
	}, &maint)
	th.must(204, th.admin, "PUT", fmt.Sprintf("/api/v1/asset/%d/labels", asset.AssetID), map[string]any{"labels": []string{marker}}, nil)
	ts := time.Now().Unix()
	th.must(204, aTok, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset.AssetID),
		fmt.Sprintf(`{"timestamp":%d,"data":{"cpu":[{"name":"%s","usage":77.25}]}}`, ts, marker), nil)

	var alerts []struct {
		AlertID int64  `json:"alertId"`
		Message string `json:"message"`
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/alerts?status=open", a), nil, &alerts)
	if len(alerts) != 1 || alerts[0].Message != marker+" "+marker {
		t.Fatalf("customer A's alerts: %+v", alerts)
	}
	alertID := alerts[0].AlertID

	// An appliance of customer A.
	appID, err := th.hub.st.CreateAppliance(context.Background(), state.Appliance{ContainerID: aChild, Name: marker})
	if err != nil {
		t.Fatal(err)
	}

	// Customer B's token holds every permission, on B only.
	bTok := th.newToken(b, "READ", "API", "ASSET_MANAGEMENT", "CHECK_MANAGEMENT", "CONTAINER_ADMIN", "CONTAINER_TOKENS",
		"CORE_CONNECT", "INSERT_CHECK_DATA", "ALERT_ASSIGN", "ALERT_CHANGE", "RULE_MANAGEMENT", "VIEW_LOG", "PURGE_TIME_SERIES", "WEBHOOKS")

	params := map[string]string{
		"{cid}": fmt.Sprint(aChild), "{id}": "", "{key}": "linux", "{check}": "cpu", "{tokenId}": fmt.Sprint(aTokInfo[0].TokenID),
	}
	bodies := map[string]string{
		"POST /api/v1/container/{cid}/asset":                    `{"name":"intruder"}`,
		"PATCH /api/v1/asset/{id}/kind":                         `{"kind":"Hacked"}`,
		"POST /api/v1/container/{id}/container":                 `{"name":"intruder"}`,
		"POST /api/v1/container/{id}/token":                     `{"name":"intruder","permissions":["READ"]}`,
		"POST /api/v1/asset/{id}/collector/{key}/check/{check}": fmt.Sprintf(`{"timestamp":%d,"data":{"cpu":[{"name":"x","usage":1.0}]}}`, ts),
		"POST /api/v1/asset/{id}/collector/{key}":               `{"config":{"x":1}}`,
		"PATCH /api/v1/asset/{id}/zone":                         `{"zone":3}`,
		"PATCH /api/v1/appliance/{id}/zone":                     `{"zone":3}`,
		"POST /api/v1/container/{id}/condition":                 `{"name":"intruder","type":"cpu","expression":"true"}`,
		"PATCH /api/v1/condition/{id}":                          `{"name":"intruder","disabled":true}`,
		"POST /api/v1/alert/{id}/assign":                        `{"to":"intruder"}`,
		"POST /api/v1/alert/{id}/message":                       `{"text":"intruder"}`,
		"POST /api/v1/alert/{id}/close":                         `{"reason":"intruder"}`,
		"PUT /api/v1/asset/{id}/labels":                         `{"labels":["intruder"]}`,
		"POST /api/v1/container/{id}/maintenance":               `{"duration":"1h","reason":"intruder"}`,
		"POST /api/v1/container/{id}/rule":                      `{"name":"intruder","channel":"webhook","url":"https://x.invalid/","secret":"0123456789abcdef0"}`,
		"PATCH /api/v1/rule/{id}":                               `{"name":"intruder","disabled":true}`,
	}
	objects := map[string]int64{
		"/api/v1/appliance/": appID, "/api/v1/condition/": cond.ConditionID, "/api/v1/alert/": alertID,
		"/api/v1/rule/": rule.RuleID, "/api/v1/maintenance/": maint.MaintenanceID,
	}
	walked := 0
	for _, r := range th.hub.Routes() {
		method, path, ok := strings.Cut(r.Pattern, " ")
		if !ok {
			method, path = "GET", r.Pattern
		}
		switch {
		case path == "/api/v1/container/id":
			// Answers the caller's own container: nothing to aim at A.
			var out struct {
				ContainerID int64 `json:"containerId"`
			}
			th.must(200, bTok, method, path, nil, &out)
			if out.ContainerID != b {
				t.Errorf("container/id = %d, want %d", out.ContainerID, b)
			}
			walked++
			continue
		case strings.HasPrefix(path, "/prometheus/"):
			checkPrometheusIsolation(t, th, bTok, marker, ts)
			walked++
			continue
		}
		// {id} is a container for container routes, an asset otherwise.
		p := params
		p["{id}"] = fmt.Sprint(asset.AssetID)
		if strings.HasPrefix(path, "/api/v1/container/") {
			p["{id}"] = fmt.Sprint(a)
		}
		for prefix, id := range objects {
			if strings.HasPrefix(path, prefix) {
				p["{id}"] = fmt.Sprint(id)
			}
		}
		for k, v := range p {
			path = strings.ReplaceAll(path, k, v)
		}
		if strings.Contains(path, "{") {
			t.Fatalf("route %s has a parameter the test does not fill", r.Pattern)
		}
		var body any
		if s, ok := bodies[r.Pattern]; ok {
			body = s
		}
		code, out := th.do(bTok, method, path, body)
		if code != 403 && code != 404 {
			t.Errorf("%s %s with a sibling's token: status %d body %s", method, path, code, out)
		}
		if strings.Contains(string(out), marker) {
			t.Errorf("%s %s leaked the other tenant's data: %s", method, path, out)
		}
		walked++
	}
	if walked != len(th.hub.Routes()) || walked < 15 {
		t.Fatalf("walked %d of %d routes", walked, len(th.hub.Routes()))
	}
	// Nothing of A changed: the asset, its kind, its result, its token.
	var got struct {
		Name string `json:"name"`
		Kind string `json:"kind"`
	}
	th.must(200, aTok, "GET", fmt.Sprintf("/api/v1/asset/%d", asset.AssetID), nil, &got)
	if got.Name != marker || got.Kind != "" {
		t.Fatalf("asset changed: %+v", got)
	}
	if ap, err := th.hub.st.ApplianceByID(context.Background(), appID); err != nil || ap.RevokedAt != nil || ap.Zone != 0 {
		t.Fatalf("appliance changed: %+v %v", ap, err)
	}
	var c struct {
		Name     string `json:"name"`
		Disabled bool   `json:"disabled"`
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/condition/%d", cond.ConditionID), nil, &c)
	if c.Name != marker || c.Disabled {
		t.Fatalf("condition changed: %+v", c)
	}
	var al struct {
		Status     string `json:"status"`
		AssignedTo string `json:"assignedTo"`
		History    []any  `json:"history"`
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/alert/%d", alertID), nil, &al)
	if al.Status != "open" || al.AssignedTo != "" || len(al.History) != 1 {
		t.Fatalf("alert changed: %+v", al)
	}
	var ru struct {
		Name     string `json:"name"`
		Disabled bool   `json:"disabled"`
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/rule/%d", rule.RuleID), nil, &ru)
	if ru.Name != marker || ru.Disabled {
		t.Fatalf("rule changed: %+v", ru)
	}
	var ws []struct {
		MaintenanceID int64 `json:"maintenanceId"`
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/maintenance", a), nil, &ws)
	if len(ws) != 1 || ws[0].MaintenanceID != maint.MaintenanceID {
		t.Fatalf("maintenance changed: %+v", ws)
	}
	var labels struct {
		Labels []string `json:"labels"`
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/asset/%d/labels", asset.AssetID), nil, &labels)
	if len(labels.Labels) != 1 || labels.Labels[0] != marker {
		t.Fatalf("labels changed: %+v", labels)
	}
	var res struct {
		Timestamp int64 `json:"timestamp"`
	}
	th.must(200, aTok, "GET", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset.AssetID), nil, &res)
	if res.Timestamp != ts {
		t.Fatalf("result changed: %+v", res)
	}
	// A token of a parent container (the MSP) does see A.
	mspTok := th.newToken(msp, "READ", "API")
	th.must(200, mspTok, "GET", fmt.Sprintf("/api/v1/asset/%d", asset.AssetID), nil, nil)
	// A child's token never sees its parent.
	childTok := th.newToken(aChild, "READ", "API")
	th.must(404, childTok, "GET", fmt.Sprintf("/api/v1/container/%d", a), nil, nil)
}

func checkPrometheusIsolation(t *testing.T, th *testHub, tok, marker string, ts int64) {
	t.Helper()
	at := fmt.Sprint(ts)
	queries := []string{
		"query?" + url.Values{"query": {`{__name__=~".+"}`}, "time": {at}}.Encode(),
		"query?" + url.Values{"query": {`sonde_cpu_usage{container_id!="0"}`}, "time": {at}}.Encode(),
		"query?" + url.Values{"query": {`count by (asset) ({__name__=~"sonde_.*"})`}, "time": {at}}.Encode(),
		"query?" + url.Values{"query": {`label_replace(sonde_cpu_usage, "x", "$1", "item", "(.*)")`}, "time": {at}}.Encode(),
		"query_range?" + url.Values{"query": {`sonde_cpu_usage`}, "start": {fmt.Sprint(ts - 60)}, "end": {fmt.Sprint(ts + 60)}, "step": {"15"}}.Encode(),
		"series?" + url.Values{"match[]": {`{__name__=~".+"}`}, "start": {fmt.Sprint(ts - 60)}, "end": {fmt.Sprint(ts + 60)}}.Encode(),
		"labels?" + url.Values{"start": {fmt.Sprint(ts - 60)}, "end": {fmt.Sprint(ts + 60)}}.Encode(),
		"label/asset/values?" + url.Values{"start": {fmt.Sprint(ts - 60)}, "end": {fmt.Sprint(ts + 60)}}.Encode(),
		"label/item/values",
	}
	for _, q := range queries {
		code, out := th.do(tok, "GET", "/prometheus/api/v1/"+q, nil)
		if code != 200 {
			t.Errorf("prometheus %s: status %d %s", q, code, out)
		}
		if strings.Contains(string(out), marker) || strings.Contains(string(out), "77.25") {
			t.Errorf("prometheus %s leaked the other tenant's series: %s", q, out)
		}
	}
	// The same query with the admin token does see it: the test can fail.
	code, out := th.do(th.admin, "GET", "/prometheus/api/v1/"+queries[0], nil)
	if code != 200 || !strings.Contains(string(out), marker) {
		t.Errorf("admin query does not see the series: %d %s", code, out)
	}
}

// TestStopInheritanceAPI: a customer container that stops inheritance is
// out of reach of its MSP's tokens too (the web UI hides it from the MSP's
// users): assets, results, series and alerts.
func TestStopInheritanceAPI(t *testing.T) {
	th := startHub(t, t.TempDir())
	msp := th.newContainer(1, "msp")
	acme := th.newContainer(msp, "acme")
	mspTok := th.newToken(msp, "READ", "API", "ASSET_MANAGEMENT", "CONTAINER_ADMIN", "CONTAINER_TOKENS", "INSERT_CHECK_DATA")
	acmeTok := th.newToken(acme, agentPerms...)
	asset := th.agentSetup(acmeTok, "acme-db")
	ts := time.Now().Unix()
	th.must(204, acmeTok, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset),
		fmt.Sprintf(`{"timestamp":%d,"data":{"cpu":[{"name":"c","usage":12.5}]}}`, ts), nil)
	th.must(200, mspTok, "GET", fmt.Sprintf("/api/v1/asset/%d", asset), nil, nil)

	if err := th.hub.st.SetInheritAccess(context.Background(), acme, false); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		fmt.Sprintf("/api/v1/asset/%d", asset),
		fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset),
		fmt.Sprintf("/api/v1/container/%d", acme),
		fmt.Sprintf("/api/v1/container/%d/assets", acme),
	} {
		if code, out := th.do(mspTok, "GET", p, nil); code != 404 {
			t.Errorf("the MSP's token reads %s of a customer that stopped inheritance: %d %s", p, code, out)
		}
	}
	if code, _ := th.do(mspTok, "POST", fmt.Sprintf("/api/v1/container/%d/token", acme), map[string]any{"name": "x", "permissions": []string{"READ"}}); code != 404 {
		t.Errorf("the MSP's token makes a token in the customer's container: %d", code)
	}
	code, out := th.do(mspTok, "GET", "/prometheus/api/v1/query?"+url.Values{"query": {"sonde_cpu_usage"}, "time": {fmt.Sprint(ts)}}.Encode(), nil)
	if code != 200 || strings.Contains(string(out), "acme-db") {
		t.Errorf("the MSP's token queries the customer's series: %d %s", code, out)
	}
	var assets []map[string]any
	th.must(200, mspTok, "GET", fmt.Sprintf("/api/v1/container/%d/assets", msp), nil, &assets)
	// The customer's own token still works.
	th.must(200, acmeTok, "GET", fmt.Sprintf("/api/v1/asset/%d", asset), nil, nil)
	code, out = th.do(acmeTok, "GET", "/prometheus/api/v1/query?"+url.Values{"query": {"sonde_cpu_usage"}, "time": {fmt.Sprint(ts)}}.Encode(), nil)
	if code != 200 || !strings.Contains(string(out), "acme-db") {
		t.Errorf("the customer's own token does not see its series: %d %s", code, out)
	}
}

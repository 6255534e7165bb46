package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/api"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// TestAuditEveryMutatingRoute calls every mutating API route once, in a
// customer container, and finds each call in the audit log: the token,
// the route, the object and the container, the address and the reason.
// A new mutating route fails this test until it has a case here (or is
// listed in the API as not audited, with the reason).
func TestAuditEveryMutatingRoute(t *testing.T) {
	th := startHub(t, t.TempDir())
	msp := th.newContainer(1, "msp")
	c := th.newContainer(msp, "customer")
	tok := th.newToken(c, "READ", "API", "ASSET_MANAGEMENT", "CHECK_MANAGEMENT", "CONTAINER_ADMIN", "CONTAINER_TOKENS",
		"INSERT_CHECK_DATA", "ALERT_ASSIGN", "ALERT_CHANGE", "RULE_MANAGEMENT", "VIEW_LOG", "WEBHOOKS")
	var toks []struct {
		TokenID int64 `json:"tokenId"`
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/tokens", c), nil, &toks)
	tokID := toks[0].TokenID
	appID, err := th.hub.st.CreateAppliance(context.Background(), state.Appliance{ContainerID: c, Name: "edge"})
	if err != nil {
		t.Fatal(err)
	}
	const ruleSecret = "rule-secret-never-logged-0123456789"

	ids := map[string]int64{"container": c, "appliance": appID}
	type step struct {
		pattern string
		path    func() string
		body    any
		want    int
		object  string // the object kind the entry names
		reason  string
	}
	id := func(kind string) string { return fmt.Sprint(ids[kind]) }
	steps := []step{
		{"POST /api/v1/container/{cid}/asset", func() string { return "/api/v1/container/" + id("container") + "/asset" }, map[string]string{"name": "web-1"}, 201, "asset", ""},
		{"POST /api/v1/asset/{id}/collector/{key}", func() string { return "/api/v1/asset/" + id("asset") + "/collector/linux" }, nil, 204, "asset", ""},
		{"PATCH /api/v1/asset/{id}/kind", func() string { return "/api/v1/asset/" + id("asset") + "/kind" }, map[string]string{"kind": "Linux"}, 204, "asset", ""},
		{"PATCH /api/v1/asset/{id}/zone", func() string { return "/api/v1/asset/" + id("asset") + "/zone" }, map[string]int{"zone": 2}, 204, "asset", ""},
		{"PUT /api/v1/asset/{id}/labels", func() string { return "/api/v1/asset/" + id("asset") + "/labels" }, map[string]any{"labels": []string{"prod"}}, 204, "asset", ""},
		{"POST /api/v1/container/{id}/condition", func() string { return "/api/v1/container/" + id("container") + "/condition" }, map[string]any{
			"name": "cpu", "kind": "expression", "collector": "linux", "check": "cpu", "type": "cpu", "expression": "item.usage > 90", "severity": "CRITICAL", "ticks": 1}, 201, "condition", ""},
		{"PATCH /api/v1/condition/{id}", func() string { return "/api/v1/condition/" + id("condition") }, map[string]any{"name": "cpu high"}, 200, "condition", ""},
		{"POST /api/v1/container/{id}/rule", func() string { return "/api/v1/container/" + id("container") + "/rule" }, map[string]any{
			"name": "hook", "channel": "webhook", "url": "https://hooks.example.com/x", "secret": ruleSecret, "minSeverity": "ERROR"}, 201, "rule", ""},
		{"PATCH /api/v1/rule/{id}", func() string { return "/api/v1/rule/" + id("rule") }, map[string]any{"name": "ops hook"}, 200, "rule", ""},
		{"POST /api/v1/alert/{id}/assign", func() string { return "/api/v1/alert/" + id("alert") + "/assign" }, map[string]string{"to": "alice"}, 204, "alert", ""},
		{"POST /api/v1/alert/{id}/message", func() string { return "/api/v1/alert/" + id("alert") + "/message" }, map[string]string{"text": "looking into it"}, 204, "alert", "looking into it"},
		{"POST /api/v1/alert/{id}/close", func() string { return "/api/v1/alert/" + id("alert") + "/close" }, map[string]string{"reason": "fixed"}, 204, "alert", "fixed"},
		{"POST /api/v1/container/{id}/maintenance", func() string { return "/api/v1/container/" + id("container") + "/maintenance" }, map[string]any{
			"duration": "1h", "reason": "patching the\nkernel"}, 201, "maintenance", "patching the kernel"},
		{"DELETE /api/v1/maintenance/{id}", func() string { return "/api/v1/maintenance/" + id("maintenance") }, nil, 204, "maintenance", ""},
		{"DELETE /api/v1/rule/{id}", func() string { return "/api/v1/rule/" + id("rule") }, nil, 204, "rule", ""},
		{"DELETE /api/v1/condition/{id}", func() string { return "/api/v1/condition/" + id("condition") }, nil, 204, "condition", ""},
		{"POST /api/v1/container/{id}/container", func() string { return "/api/v1/container/" + id("container") + "/container" }, map[string]string{"name": "prod"}, 201, "container", ""},
		{"POST /api/v1/container/{id}/token", func() string { return "/api/v1/container/" + id("container") + "/token" }, map[string]any{"name": "ci", "permissions": []string{"READ"}}, 201, "token", ""},
		{"DELETE /api/v1/token/{tokenId}", func() string { return "/api/v1/token/" + id("token") }, nil, 204, "token", ""},
		{"PATCH /api/v1/appliance/{id}/zone", func() string { return "/api/v1/appliance/" + id("appliance") + "/zone" }, map[string]int{"zone": 1}, 204, "appliance", ""},
		{"DELETE /api/v1/appliance/{id}", func() string { return "/api/v1/appliance/" + id("appliance") }, nil, 204, "appliance", ""},
		{"DELETE /api/v1/asset/{id}", func() string { return "/api/v1/asset/" + id("asset") }, nil, 204, "asset", ""},
	}
	covered := map[string]bool{}
	for _, s := range steps {
		covered[s.pattern] = true
	}
	for _, r := range th.hub.Routes() {
		method, _, _ := strings.Cut(r.Pattern, " ")
		if api.Audited(r.Pattern) && !covered[r.Pattern] {
			t.Errorf("the mutating route %s has no case in this test", r.Pattern)
		}
		if !api.Audited(r.Pattern) && covered[r.Pattern] {
			t.Errorf("%s is not audited", r.Pattern)
		}
		_ = method
	}

	for _, s := range steps {
		if s.pattern == "POST /api/v1/alert/{id}/assign" {
			// A result opens an alert to act on.
			th.must(204, tok, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", ids["asset"]),
				fmt.Sprintf(`{"timestamp":%d,"data":{"cpu":[{"name":"cpu0","usage":99.5}]}}`, time.Now().Unix()), nil)
			var alerts []struct {
				AlertID int64 `json:"alertId"`
			}
			th.must(200, tok, "GET", fmt.Sprintf("/api/v1/container/%d/alerts?status=open", c), nil, &alerts)
			if len(alerts) != 1 {
				t.Fatalf("open alerts: %+v", alerts)
			}
			ids["alert"] = alerts[0].AlertID
		}
		method, _, _ := strings.Cut(s.pattern, " ")
		out := th.must(s.want, tok, method, s.path(), s.body, nil)
		if s.want == 201 {
			var created map[string]any
			if err := json.Unmarshal(out, &created); err != nil {
				t.Fatal(err)
			}
			key := s.object
			if key == "container" {
				key = "child" // the customer container stays "container"
			}
			ids[key] = int64(created[s.object+"Id"].(float64))
		}
		wantID := ids[s.object]
		if s.want == 201 && s.object == "container" {
			wantID = ids["child"]
		}
		var log []struct {
			ContainerID int64  `json:"containerId"`
			ActorKind   string `json:"actorKind"`
			ActorID     int64  `json:"actorId"`
			Action      string `json:"action"`
			ObjectKind  string `json:"objectKind"`
			ObjectID    int64  `json:"objectId"`
			Address     string `json:"address"`
			Reason      string `json:"reason"`
			Status      int    `json:"status"`
		}
		th.must(200, tok, "GET", fmt.Sprintf("/api/v1/container/%d/log?limit=1", c), nil, &log)
		if len(log) != 1 {
			t.Fatalf("%s: no audit entry", s.pattern)
		}
		e := log[0]
		if e.Action != s.pattern || e.ActorKind != "token" || e.ActorID != tokID || e.ObjectKind != s.object ||
			e.ObjectID != wantID || e.Address != "127.0.0.1" || e.Reason != s.reason || e.Status != s.want {
			t.Errorf("%s: audit entry %+v; want object %s %d, reason %q", s.pattern, e, s.object, wantID, s.reason)
		}
		if e.ContainerID != c {
			t.Errorf("%s: entry in container %d, want %d", s.pattern, e.ContainerID, c)
		}
	}

	// Check results are not changes: no entry.
	var before []struct {
		ID int64 `json:"id"`
	}
	th.must(200, tok, "GET", fmt.Sprintf("/api/v1/container/%d/log", c), nil, &before)
	asset := th.agentSetup(th.newToken(c, agentPerms...), "db-1")
	th.must(200, tok, "GET", fmt.Sprintf("/api/v1/container/%d/log?limit=1000", c), nil, &before)
	n := len(before)
	th.must(204, th.admin, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset),
		fmt.Sprintf(`{"timestamp":%d,"data":{"cpu":[{"name":"cpu0","usage":1}]}}`, time.Now().Unix()), nil)
	th.must(200, tok, "GET", fmt.Sprintf("/api/v1/container/%d/log?limit=1000", c), nil, &before)
	if len(before) != n {
		t.Errorf("a check result made an audit entry")
	}

	// Never a secret; another tenant sees nothing; VIEW_LOG is needed.
	_, all := th.do(th.admin, "GET", "/api/v1/container/1/log?limit=1000", nil)
	if strings.Contains(string(all), ruleSecret) || strings.Contains(string(all), tok) {
		t.Errorf("the audit log holds a secret: %s", all)
	}
	other := th.newContainer(msp, "other")
	oTok := th.newToken(other, "READ", "API", "VIEW_LOG")
	if code, out := th.do(oTok, "GET", fmt.Sprintf("/api/v1/container/%d/log", c), nil); code != 404 {
		t.Errorf("another tenant reads the log: %d %s", code, out)
	}
	var mine []struct {
		Action string `json:"action"`
	}
	th.must(200, oTok, "GET", fmt.Sprintf("/api/v1/container/%d/log", other), nil, &mine)
	if len(mine) != 1 || mine[0].Action != "POST /api/v1/container/{id}/token" {
		t.Errorf("a new container's log: %+v, want its token's creation only", mine)
	}
	if code, _ := th.do(th.newToken(c, "READ", "API"), "GET", fmt.Sprintf("/api/v1/container/%d/log", c), nil); code != 403 {
		t.Errorf("reading the log without VIEW_LOG: %d", code)
	}
	// Filters.
	var filtered []struct {
		Action string `json:"action"`
	}
	th.must(200, tok, "GET", fmt.Sprintf("/api/v1/container/%d/log?objectKind=rule", c), nil, &filtered)
	if len(filtered) != 3 {
		t.Errorf("entries on rules: %d, want 3", len(filtered))
	}
	if code, _ := th.do(tok, "GET", fmt.Sprintf("/api/v1/container/%d/log?since=yesterday", c), nil); code != 400 {
		t.Errorf("a bad since: %d", code)
	}
}

// TestExternalURLChecked: --external-url must be an https origin.
func TestExternalURLChecked(t *testing.T) {
	for _, bad := range []string{"http://sonde.example.com", "https://", "https://sonde.example.com/path", "https://u:p@sonde.example.com", "sonde.example.com"} {
		_, err := New(context.Background(), Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", ExternalURL: bad})
		if err == nil || !strings.Contains(err.Error(), "--external-url") {
			t.Errorf("--external-url %q: %v", bad, err)
		}
	}
}

package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/alert/notify"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

// hookReceiver is a webhook endpoint on 127.0.0.1 that checks every
// request's signature and records the events it accepts. fail makes it
// answer 500 (the hub must retry).
type hookReceiver struct {
	t      *testing.T
	srv    *httptest.Server
	key    secret.Secret
	mu     sync.Mutex
	fail   int // answer 500 to this many more requests
	tries  int
	events []hookEvent
	ids    map[string]int // delivery id → times accepted
}

type hookEvent struct {
	Event      string `json:"event"`
	DeliveryID string `json:"deliveryId"`
	Alert      *struct {
		AlertID int64  `json:"alertId"`
		Item    string `json:"item"`
		Status  string `json:"status"`
		Asset   string `json:"asset"`
		Message string `json:"message"`
	} `json:"alert"`
	Notification *struct {
		Kind string `json:"kind"`
	} `json:"notification"`
}

func newHookReceiver(t *testing.T, key string) *hookReceiver {
	h := &hookReceiver{t: t, key: secret.New(key), ids: map[string]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	if err := notify.Verify(h.key, r.Header.Get("X-Sonde-Timestamp"), r.Header.Get("X-Sonde-Signature"), body, time.Now(), time.Minute); err != nil {
		h.t.Errorf("webhook signature: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tries++
	if h.fail > 0 {
		h.fail--
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	var ev hookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		h.t.Errorf("webhook body %s: %v", body, err)
	}
	if got := r.Header.Get("X-Sonde-Delivery"); got != ev.DeliveryID {
		h.t.Errorf("X-Sonde-Delivery %q, body says %q", got, ev.DeliveryID)
	}
	h.ids[ev.DeliveryID]++
	h.events = append(h.events, ev)
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) snapshot() (events []hookEvent, tries int, dup string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, n := range h.ids {
		if n > 1 {
			dup = id
		}
	}
	return append([]hookEvent(nil), h.events...), h.tries, dup
}

// waitEvents waits until the receiver accepted n events.
func (h *hookReceiver) waitEvents(n int) []hookEvent {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		evs, _, dup := h.snapshot()
		if dup != "" {
			h.t.Fatalf("delivery %s accepted twice", dup)
		}
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("the webhook received %d events, want %d", len(evs), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alertSetup makes a customer container with an agent-style asset, a
// condition on cpu usage and a webhook rule to rec; it returns the
// container, the agent token and the asset.
func alertSetup(t *testing.T, th *testHub, rec *hookReceiver, key string) (int64, string, int64) {
	t.Helper()
	c := th.newContainer(1, "customer")
	tok := th.newToken(c, agentPerms...)
	asset := th.agentSetup(tok, "web <b>1</b>")
	th.must(201, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/condition", c), map[string]any{
		"name": "cpu high", "kind": "expression", "collector": "linux", "check": "cpu", "type": "cpu",
		"expression": "item.usage > 90", "severity": "CRITICAL", "message": "{item} at {item.usage}%", "ticks": 1,
	}, nil)
	th.must(201, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/rule", c), map[string]any{
		"name": "ops hook", "channel": "webhook", "url": rec.srv.URL + "/hook", "secret": key, "minSeverity": "ERROR",
	}, nil)
	return c, tok, asset
}

func postCPU(th *testHub, tok string, asset int64, ts int64, usage float64) {
	th.t.Helper()
	th.must(204, tok, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset),
		fmt.Sprintf(`{"timestamp":%d,"data":{"cpu":[{"name":"cpu0","usage":%v},{"name":"cpu1","usage":1.5}]}}`, ts, usage), nil)
}

// TestAlertWebhook follows one alert from a result through the API to a
// signed webhook, with a failed first attempt retried, and its close.
func TestAlertWebhook(t *testing.T) {
	const key = "hook-secret-0123456789"
	rec := newHookReceiver(t, key)
	rec.fail = 1
	th := startHubWith(t, Config{DataDir: t.TempDir(), AllowPrivateWebhooks: true, NotifyMinBackoff: 50 * time.Millisecond})
	c, tok, asset := alertSetup(t, th, rec, key)
	now := time.Now().Unix()

	postCPU(th, tok, asset, now-60, 95.5)
	var alerts []map[string]any
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/alerts?status=open", c), nil, &alerts)
	if len(alerts) != 1 {
		t.Fatalf("open alerts: %v", alerts)
	}
	for _, k := range []string{"alertId", "assetId", "conditionId", "item", "severity", "status", "message", "openedAt", "closedAt"} {
		if _, ok := alerts[0][k]; !ok {
			t.Errorf("alert lacks %q: %v", k, alerts[0])
		}
	}
	if alerts[0]["severity"] != "CRITICAL" || alerts[0]["item"] != "cpu0" || alerts[0]["message"] != "cpu0 at 95.5%" {
		t.Errorf("alert: %v", alerts[0])
	}
	evs := rec.waitEvents(1)
	if evs[0].Event != "alert.open" || evs[0].Alert == nil || evs[0].Alert.Item != "cpu0" || evs[0].Alert.Asset != "web <b>1</b>" {
		t.Fatalf("webhook event: %+v", evs[0])
	}
	if _, tries, _ := rec.snapshot(); tries != 2 {
		t.Errorf("the receiver saw %d attempts, want 2 (a 500, then the retry)", tries)
	}

	// The same result again changes nothing; a low one closes.
	postCPU(th, tok, asset, now-30, 97)
	postCPU(th, tok, asset, now, 10)
	evs = rec.waitEvents(2)
	if evs[1].Event != "alert.close" || evs[1].Alert.Status != "closed" {
		t.Fatalf("second event: %+v", evs[1])
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/asset/%d/alerts?status=closed", asset), nil, &alerts)
	if len(alerts) != 1 || alerts[0]["closedAt"] == nil {
		t.Fatalf("closed alerts: %v", alerts)
	}

	// The delivery log shows both, delivered, the first after 2 attempts.
	var rules []struct {
		RuleID    int64 `json:"ruleId"`
		HasSecret bool  `json:"hasSecret"`
	}
	out := th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/rules", c), nil, &rules)
	if strings.Contains(string(out), key) || len(rules) != 1 || !rules[0].HasSecret {
		t.Fatalf("rules answer %s", out)
	}
	var log []struct {
		Event    string `json:"event"`
		Status   string `json:"status"`
		Attempts int    `json:"attempts"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/rule/%d/deliveries", rules[0].RuleID), nil, &log)
		if len(log) == 2 && log[0].Status == "delivered" && log[1].Status == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery log: %+v", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if log[1].Event != "alert.open" || log[1].Attempts != 2 || log[0].Event != "alert.close" || log[0].Attempts != 1 {
		t.Errorf("delivery log: %+v", log)
	}
	if strings.Contains(th.logs.String(), key) {
		t.Error("the hub's log holds the webhook secret")
	}
	// Sealed at rest: the database files do not hold it.
	for _, f := range []string{"state.db", "state.db-wal"} {
		b, err := os.ReadFile(filepath.Join(th.hub.cfg.DataDir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if strings.Contains(string(b), key) {
			t.Errorf("%s holds the webhook secret in clear", f)
		}
	}
}

// TestAlertRestart stops the hub between an alert opening and its
// delivery, and between its closing and the close's delivery: each event
// arrives once, and a result after the restart does not open the alert
// again.
func TestAlertRestart(t *testing.T) {
	const key = "hook-secret-restart-01"
	rec := newHookReceiver(t, key)
	// Down at first: nothing answers on this address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	realURL := rec.srv.URL
	deadURL := "http://" + ln.Addr().String()
	ln.Close()
	rec.srv.URL = deadURL
	dir := t.TempDir()
	cfg := Config{DataDir: dir, AllowPrivateWebhooks: true, NotifyMinBackoff: 50 * time.Millisecond}
	th := startHubWith(t, cfg)
	c, tok, asset := alertSetup(t, th, rec, key)
	now := time.Now().Unix()
	postCPU(th, tok, asset, now-120, 99)
	waitDelivery(t, th, c, func(attempts int, status string) bool { return attempts >= 1 && status == "pending" })
	th.stop()

	// Point the rule at the live receiver while the hub is down (the
	// receiver's address is fixed when it starts).
	rec.srv.URL = realURL
	th = startHubWith(t, cfg)
	var rules []struct {
		RuleID int64 `json:"ruleId"`
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/rules", c), nil, &rules)
	th.must(200, th.admin, "PATCH", fmt.Sprintf("/api/v1/rule/%d", rules[0].RuleID), map[string]any{"url": realURL + "/hook"}, nil)
	evs := rec.waitEvents(1)
	if evs[0].Event != "alert.open" {
		t.Fatalf("event %+v", evs[0])
	}
	// Still above: the open alert, loaded from the store, stays the one.
	postCPU(th, tok, asset, now-60, 98)
	postCPU(th, tok, asset, now-30, 3)
	rec.waitEvents(2)
	th.stop()

	th = startHubWith(t, cfg)
	postCPU(th, tok, asset, now, 4)
	time.Sleep(500 * time.Millisecond) // the outbox would resend within this
	evs, _, dup := rec.snapshot()
	if len(evs) != 2 || dup != "" || evs[1].Event != "alert.close" {
		t.Fatalf("after two restarts the receiver has %+v (duplicate %q)", evs, dup)
	}
	var alerts []map[string]any
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/alerts", c), nil, &alerts)
	if len(alerts) != 1 {
		t.Fatalf("alerts: %v", alerts)
	}
}

// waitDelivery waits until the container's only rule has a delivery for
// which ok holds.
func waitDelivery(t *testing.T, th *testHub, c int64, ok func(attempts int, status string) bool) {
	t.Helper()
	var rules []struct {
		RuleID int64 `json:"ruleId"`
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/rules", c), nil, &rules)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var log []struct {
			Status   string `json:"status"`
			Attempts int    `json:"attempts"`
		}
		th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/rule/%d/deliveries", rules[0].RuleID), nil, &log)
		if len(log) > 0 && ok(log[0].Attempts, log[0].Status) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery log: %+v", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConditionValidation: a bad expression is refused with its position.
func TestConditionValidation(t *testing.T) {
	th := startHub(t, t.TempDir())
	cases := []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"name": "x", "type": "cpu", "expression": "item.usage >"}, "position 12"},
		{map[string]any{"name": "x", "type": "cpu", "expression": "\"a\" > 5"}, "position 6 (line 1, column 7): cannot compare a string with a number"},
		{map[string]any{"name": "x", "type": "cpu", "expression": "item.a / 0 > 1"}, "division by zero"},
		{map[string]any{"name": "x", "type": "cpu", "expression": strings.Repeat("(", 5000) + "true" + strings.Repeat(")", 5000)}, "4096"},
		{map[string]any{"name": "x", "type": "cpu", "expression": "true", "severity": "SEVERE"}, "severity"},
		{map[string]any{"name": "x", "type": "cpu", "kind": "items_must_exist"}, "items"},
		{map[string]any{"name": "x", "type": "cpu", "expression": "true", "bogus": 1}, "bogus"},
	}
	for _, tc := range cases {
		code, out := th.do(th.admin, "POST", "/api/v1/container/1/condition", tc.body)
		if code != 400 || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: %d %s, want 400 naming %q", tc.body, code, out, tc.want)
		}
	}
	// Rules: a webhook over http is refused without --allow-private-webhooks,
	// and a token without WEBHOOKS may not make one.
	code, out := th.do(th.admin, "POST", "/api/v1/container/1/rule", map[string]any{
		"name": "r", "channel": "webhook", "url": "http://127.0.0.1:1/", "secret": "0123456789abcdef",
	})
	if code != 400 || !strings.Contains(string(out), "https") {
		t.Errorf("http webhook: %d %s", code, out)
	}
	tok := th.newToken(1, "API", "READ", "RULE_MANAGEMENT")
	code, out = th.do(tok, "POST", "/api/v1/container/1/rule", map[string]any{
		"name": "r", "channel": "webhook", "url": "https://hooks.example.org/x", "secret": "0123456789abcdef",
	})
	if code != 403 || !strings.Contains(string(out), "WEBHOOKS") {
		t.Errorf("webhook without WEBHOOKS: %d %s", code, out)
	}
	code, out = th.do(th.admin, "POST", "/api/v1/container/1/rule", map[string]any{"name": "m", "channel": "email", "to": []string{"ops@example.org"}})
	if code != 400 || !strings.Contains(string(out), "smtp") {
		t.Errorf("email rule without SMTP: %d %s", code, out)
	}
}

// TestHealthNotifications: a failing check and refused data raise
// monitoring-health notifications, listed through the API, and a good
// result closes them.
func TestHealthNotifications(t *testing.T) {
	th := startHub(t, t.TempDir())
	c := th.newContainer(1, "customer")
	tok := th.newToken(c, agentPerms...)
	asset := th.agentSetup(tok, "db")
	now := time.Now().Unix()
	path := fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/disk", asset)
	th.must(204, tok, "POST", path, fmt.Sprintf(`{"timestamp":%d,"error":{"message":"cannot read /proc/diskstats","severity":"HIGH"}}`, now-60), nil)
	code, out := th.do(tok, "POST", path, `{"timestamp":"soon","data":{}}`)
	if code != 400 {
		t.Fatalf("invalid data: %d %s", code, out)
	}
	var notes []struct {
		Kind     string `json:"kind"`
		Severity string `json:"severity"`
		Status   string `json:"status"`
		Message  string `json:"message"`
		AssetID  *int64 `json:"assetId"`
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/notifications?status=open", c), nil, &notes)
	kinds := map[string]string{}
	for _, n := range notes {
		kinds[n.Kind] = n.Severity
		if n.AssetID == nil || *n.AssetID != asset {
			t.Errorf("notification %+v is not about asset %d", n, asset)
		}
	}
	if kinds["check_error"] != "HIGH" || kinds["invalid_data"] != "LOW" || len(notes) != 2 {
		t.Fatalf("open notifications: %+v", notes)
	}
	th.must(204, tok, "POST", path, fmt.Sprintf(`{"timestamp":%d,"data":{"disk":[{"name":"sda","reads":1}]}}`, now), nil)
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/notifications?status=open", c), nil, &notes)
	if len(notes) != 0 {
		t.Fatalf("still open: %+v", notes)
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/notifications?status=closed", c), nil, &notes)
	if len(notes) != 2 {
		t.Fatalf("closed: %+v", notes)
	}
	// Another customer sees none of them.
	other := th.newContainer(1, "other")
	otherTok := th.newToken(other, "READ", "API")
	th.must(404, otherTok, "GET", fmt.Sprintf("/api/v1/container/%d/notifications", c), nil, nil)
	th.must(200, otherTok, "GET", fmt.Sprintf("/api/v1/container/%d/notifications", other), nil, &notes)
	if len(notes) != 0 {
		t.Fatalf("the other customer sees %+v", notes)
	}
}

// TestEmailRules: e-mail rules need WEBHOOKS (they send from the
// operator's mail account) and go only to the allowed domains.
func TestEmailRules(t *testing.T) {
	th := startHubWith(t, Config{DataDir: t.TempDir(), SMTPAddr: "127.0.0.1:1", SMTPFrom: "sonde@example.org",
		SMTPAllowedDomains: []string{"example.org"}})
	rule := func(to string) map[string]any {
		return map[string]any{"name": "mail", "channel": "email", "to": []string{to}, "minSeverity": "ERROR"}
	}
	for _, tc := range []struct {
		to   string
		code int
	}{
		{"ops@example.org", 201},
		{"ops@Mail.Example.org", 201},
		{"ops@example.org.evil.test", 400},
		{"ops@notexample.org", 400},
		{"Ops <ops@example.org>", 400},
		{"ops@example.org\r\nBcc: x@evil.test", 400},
	} {
		if code, out := th.do(th.admin, "POST", "/api/v1/container/1/rule", rule(tc.to)); code != tc.code {
			t.Errorf("to %q: %d %s, want %d", tc.to, code, out, tc.code)
		}
	}
	tok := th.newToken(1, "API", "READ", "RULE_MANAGEMENT")
	if code, out := th.do(tok, "POST", "/api/v1/container/1/rule", rule("ops@example.org")); code != 403 || !strings.Contains(string(out), "WEBHOOKS") {
		t.Errorf("e-mail rule without WEBHOOKS: %d %s", code, out)
	}
}

// TestSecretKeyMissing: a hub whose secret key went missing, while its
// state store holds secrets sealed with it, refuses to start and says to
// restore the file; it does not make a new key that opens nothing.
func TestSecretKeyMissing(t *testing.T) {
	dir := t.TempDir()
	th := startHubWith(t, Config{DataDir: dir})
	th.must(201, th.admin, "POST", "/api/v1/container/1/rule", map[string]any{
		"name": "hook", "channel": "webhook", "url": "https://hooks.example.org/x", "secret": "0123456789abcdef-key",
	}, nil)
	th.stop()
	if err := os.Remove(filepath.Join(dir, SecretKeyFile)); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), Config{DataDir: dir, Listen: "127.0.0.1:0", State: stateFor(t, dir)})
	if err == nil || !strings.Contains(err.Error(), "restore the file") {
		t.Fatalf("start without the key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, SecretKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a new key was made: %v", err)
	}
}

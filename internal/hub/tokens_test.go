package hub

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for expiry and rate limits.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestTokenLifecycle(t *testing.T) {
	clk := &clock{now: time.Now()}
	th := startHubWith(t, Config{DataDir: t.TempDir(), Now: clk.Now})
	child := th.newContainer(1, "customer")

	// A token with an expiry works until it expires.
	exp := clk.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var created struct {
		TokenID int64  `json:"tokenId"`
		Token   string `json:"token"`
	}
	th.must(201, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/token", child),
		fmt.Sprintf(`{"name":"short","permissions":["READ","API","CONTAINER_TOKENS"],"expiresAt":%q}`, exp), &created)
	if len(created.Token) != 32 || strings.Trim(created.Token, "0123456789abcdef") != "" {
		t.Fatalf("token %q is not 32 lowercase hex", created.Token)
	}
	th.must(200, created.Token, "GET", "/api/v1/container/id", nil, nil)

	// It cannot create a token that outlives it, nor one above its container.
	th.must(403, created.Token, "POST", fmt.Sprintf("/api/v1/container/%d/token", child), `{"name":"x","permissions":["READ"]}`, nil)
	th.must(404, created.Token, "POST", "/api/v1/container/1/token",
		fmt.Sprintf(`{"name":"x","permissions":["READ"],"expiresAt":%q}`, exp), nil)
	th.must(400, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/token", child),
		`{"name":"x","permissions":["READ"],"expiresAt":"2001-01-01T00:00:00Z"}`, nil)

	// The list shows the token without its value, with its last use.
	out := th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/tokens", child), nil, nil)
	if strings.Contains(string(out), created.Token) || !strings.Contains(string(out), `"lastUsedAt":"`) {
		t.Fatalf("token list: %s", out)
	}

	clk.Add(time.Hour)
	th.must(401, created.Token, "GET", "/api/v1/container/id", nil, nil)

	// Revocation takes effect at once.
	tok := th.newToken(child, "READ", "API")
	th.must(200, tok, "GET", "/api/v1/container/id", nil, nil)
	var list []struct {
		TokenID int64 `json:"tokenId"`
	}
	th.must(200, th.admin, "GET", fmt.Sprintf("/api/v1/container/%d/tokens", child), nil, &list)
	last := list[len(list)-1].TokenID
	th.must(204, th.admin, "DELETE", fmt.Sprintf("/api/v1/token/%d", last), nil, nil)
	th.must(401, tok, "GET", "/api/v1/container/id", nil, nil)
	th.must(404, th.admin, "DELETE", fmt.Sprintf("/api/v1/token/%d", last), nil, nil)
}

func TestThrottling(t *testing.T) {
	clk := &clock{now: time.Now()}
	th := startHubWith(t, Config{DataDir: t.TempDir(), Now: clk.Now, RequestsPerSecond: 1, Burst: 3})
	codes := []int{}
	for i := 0; i < 5; i++ {
		code, _ := th.do(th.admin, "GET", "/api/v1/container/id", nil)
		codes = append(codes, code)
	}
	if fmt.Sprint(codes) != "[200 200 200 429 429]" {
		t.Fatalf("per-token limit: %v", codes)
	}
	clk.Add(time.Second)
	th.must(200, th.admin, "GET", "/api/v1/container/id", nil, nil)

	// Guessing tokens from one address is throttled; a valid token from
	// the same address (a NAT, a load balancer) keeps working.
	for i := 0; i < 30; i++ {
		th.must(401, fmt.Sprintf("%032x", i), "GET", "/api/v1/container/id", nil, nil)
	}
	clk.Add(time.Second)
	th.must(429, fmt.Sprintf("%032x", 99), "GET", "/api/v1/container/id", nil, nil)
	th.must(200, th.admin, "GET", "/api/v1/container/id", nil, nil)
	clk.Add(2 * time.Minute)
	th.must(401, fmt.Sprintf("%032x", 99), "GET", "/api/v1/container/id", nil, nil)

	// Tokens of one container share a budget: minting tokens buys nothing.
	th2 := startHubWith(t, Config{DataDir: t.TempDir(), Now: clk.Now, RequestsPerSecond: 1, Burst: 1})
	child := th2.newContainer(1, "c")
	var toks []string
	for i := 0; i < 7; i++ {
		clk.Add(time.Second) // the admin's own budget: one request a second
		toks = append(toks, th2.newToken(child, "READ", "API"))
	}
	var got []int
	for _, tok := range toks {
		code, _ := th2.do(tok, "GET", "/api/v1/container/id", nil)
		got = append(got, code)
	}
	// The container's budget is five times a token's: a burst of 5.
	if fmt.Sprint(got) != "[200 200 200 200 200 429 429]" {
		t.Fatalf("per-container limit over fresh tokens: %v", got)
	}
}

// TestRevocationChain: revoking a token revokes what it created; a token
// cannot revoke its creator or a stronger token.
func TestRevocationChain(t *testing.T) {
	th := startHub(t, t.TempDir())
	child := th.newContainer(1, "c")
	type created struct {
		TokenID int64  `json:"tokenId"`
		Token   string `json:"token"`
	}
	var parent, kid, strong created
	th.must(201, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/token", child),
		`{"name":"parent","permissions":["READ","API","CONTAINER_TOKENS"]}`, &parent)
	th.must(201, parent.Token, "POST", fmt.Sprintf("/api/v1/container/%d/token", child),
		`{"name":"kid","permissions":["READ","API","CONTAINER_TOKENS"]}`, &kid)
	th.must(201, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/token", child),
		`{"name":"strong","permissions":["READ","API","CONTAINER_TOKENS","CONTAINER_ADMIN"]}`, &strong)
	th.must(403, kid.Token, "DELETE", fmt.Sprintf("/api/v1/token/%d", parent.TokenID), nil, nil)
	th.must(403, kid.Token, "DELETE", fmt.Sprintf("/api/v1/token/%d", strong.TokenID), nil, nil)
	th.must(200, kid.Token, "GET", "/api/v1/container/id", nil, nil)
	th.must(204, th.admin, "DELETE", fmt.Sprintf("/api/v1/token/%d", parent.TokenID), nil, nil)
	th.must(401, kid.Token, "GET", "/api/v1/container/id", nil, nil)
	th.must(200, strong.Token, "GET", "/api/v1/container/id", nil, nil)
}

func TestContainerDepthAndAssetDeletion(t *testing.T) {
	th := startHub(t, t.TempDir())
	parent := int64(1)
	for i := 1; i <= 16; i++ {
		parent = th.newContainer(parent, fmt.Sprint("level", i))
	}
	th.must(400, th.admin, "POST", fmt.Sprintf("/api/v1/container/%d/container", parent), `{"name":"too deep"}`, nil)

	asset := th.agentSetup(th.admin, "gone")
	ts := time.Now().Unix()
	th.must(204, th.admin, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset),
		fmt.Sprintf(`{"timestamp":%d,"data":{"cpu":[{"name":"total","usage":3.5}]}}`, ts), nil)
	q := "/prometheus/api/v1/query?query=sonde_cpu_usage&time=" + fmt.Sprint(ts)
	if out := th.must(200, th.admin, "GET", q, nil, nil); !strings.Contains(string(out), `"3.5"`) {
		t.Fatalf("series missing before deletion: %s", out)
	}
	th.must(204, th.admin, "DELETE", fmt.Sprintf("/api/v1/asset/%d", asset), nil, nil)
	th.must(404, th.admin, "GET", fmt.Sprintf("/api/v1/asset/%d", asset), nil, nil)
	if out := th.must(200, th.admin, "GET", q, nil, nil); strings.Contains(string(out), `"3.5"`) {
		t.Fatalf("series of a deleted asset still readable: %s", out)
	}
	// Ids are not reused.
	next := th.agentSetup(th.admin, "next")
	if next <= asset {
		t.Fatalf("asset id %d reused (deleted %d)", next, asset)
	}
}

func TestSeriesQuota(t *testing.T) {
	th := startHubWith(t, Config{DataDir: t.TempDir(), MaxSeriesPerContainer: 3})
	asset := th.agentSetup(th.admin, "q")
	ts := time.Now().Unix()
	path := fmt.Sprintf("/api/v1/asset/%d/collector/linux/check/cpu", asset)
	th.must(204, th.admin, "POST", path, fmt.Sprintf(`{"timestamp":%d,"data":{"cpu":[{"name":"a","u":1.0},{"name":"b","u":1.0}]}}`, ts), nil)
	out := th.must(429, th.admin, "POST", path, fmt.Sprintf(`{"timestamp":%d,"data":{"cpu":[{"name":"c","u":1.0},{"name":"d","u":1.0}]}}`, ts+1), nil)
	if !strings.Contains(string(out), "quota") {
		t.Fatalf("429 body: %s", out)
	}
	var res struct {
		Timestamp int64 `json:"timestamp"`
	}
	th.must(200, th.admin, "GET", path, nil, &res)
	if res.Timestamp != ts {
		t.Fatalf("the refused result was stored: %+v", res)
	}
}

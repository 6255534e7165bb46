package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/auth"
	"github.com/sonde-monitoring/sonde/internal/state"
)

// benchUI is a web UI over a store with a user of the root container.
func benchUI(b *testing.B) (*Server, *state.Store, sessionInfo, int64) {
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(b.TempDir(), "state.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	root, _, _ := st.EnsureRoot(ctx, "root")
	s, err := New(Config{State: st})
	if err != nil {
		b.Fatal(err)
	}
	id, err := st.CreateUser(ctx, state.User{Username: "bench", PasswordHash: auth.DummyHash}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if err := st.AddMembership(ctx, state.Membership{UserID: id, ContainerID: root, Permissions: uint64(auth.All)}, time.Now()); err != nil {
		b.Fatal(err)
	}
	u, _ := st.UserByID(ctx, id)
	return s, st, sessionInfo{user: u, session: state.Session{CSRF: "x", Stage: stageFull}}, root
}

// BenchmarkAssetPage renders an asset with 20 checks of 500 items each
// (10 metrics per item), from the store to HTML.
func BenchmarkAssetPage(b *testing.B) {
	s, st, si, root := benchUI(b)
	ctx := context.Background()
	asset, _ := st.CreateAsset(ctx, root, "big")
	if _, err := st.AddCollector(ctx, asset, "snmp", nil, nil); err != nil {
		b.Fatal(err)
	}
	for c := range 20 {
		var sb strings.Builder
		sb.WriteString(`{"interface":[`)
		for i := range 500 {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"name":"eth%d","inOctets":%d,"outOctets":%d,"inErrors":0,"outErrors":1,"speed":1000000000,"mtu":1500,"operStatus":"up","adminStatus":"up","usage":%d.5,"alias":"port %d"}`,
				i, i*1000, i*900, i%100, i)
		}
		sb.WriteString(`]}`)
		if err := st.PutResult(ctx, state.Result{AssetID: asset, Collector: "snmp", Check: fmt.Sprint("check", c), Timestamp: time.Now().Unix(),
			ReceivedAt: time.Now(), Data: []byte(sb.String())}, false, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := httptest.NewRequest("GET", "/asset/"+strconv.FormatInt(asset, 10), nil)
		r.SetPathValue("id", strconv.FormatInt(asset, 10))
		w := httptest.NewRecorder()
		s.assetPage(w, r, si)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkOverview renders the overview of 2,000 assets in 200
// containers (below 20 customers of one MSP).
func BenchmarkOverview(b *testing.B) {
	s, st, si, root := benchUI(b)
	ctx := context.Background()
	msp, _ := st.CreateContainer(ctx, root, "msp")
	for c := range 20 {
		cust, _ := st.CreateContainer(ctx, msp, fmt.Sprint("customer ", c))
		for e := range 10 {
			env, _ := st.CreateContainer(ctx, cust, fmt.Sprint("env ", e))
			for a := range 10 {
				if _, err := st.CreateAsset(ctx, env, fmt.Sprint("host-", c, "-", e, "-", a)); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.overview(w, httptest.NewRequest("GET", "/", nil), si)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

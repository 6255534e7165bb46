package state

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/audit"
	"github.com/sonde-monitoring/sonde/internal/secret"
	"github.com/sonde-monitoring/sonde/internal/testutil/pgtest"
)

// TestCopyToPostgres moves a SQLite store into a new PostgreSQL database
// (Debian's server, started here) and back: every row, ids kept, sealed
// secrets still open with the key, new ids after the copied ones.
func TestCopyToPostgres(t *testing.T) {
	pgtest.Require(t)
	srv := pg
	if srv == nil {
		var err error
		if srv, err = pgtest.Start(); err != nil {
			t.Fatal(err)
		}
		defer srv.Stop()
	}
	ctx := context.Background()
	key := bytes.Repeat([]byte{9}, 32)
	src, err := Open(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.UseSecretKey(key); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	root, _, _ := src.EnsureRoot(ctx, "root")
	msp, _ := src.CreateContainer(ctx, root, "msp")
	acme, _ := src.CreateContainer(ctx, msp, "acme")
	asset, _ := src.CreateAsset(ctx, acme, "web-1")
	if _, err := src.AddCollector(ctx, asset, "linux", []byte(`{"a":1}`), map[string]CheckConfig{"cpu": {Interval: 60}}); err != nil {
		t.Fatal(err)
	}
	if err := src.PutResult(ctx, Result{AssetID: asset, Collector: "linux", Check: "cpu", Timestamp: now.Unix(), ReceivedAt: now,
		Data: []byte(`{"cpu":[{"name":"cpu0","usage":1.5}]}`)}, false, false); err != nil {
		t.Fatal(err)
	}
	rule, err := src.CreateRule(ctx, Rule{ContainerID: acme, Name: "hook", Channel: "webhook", URL: "https://x.example/", Secret: secret.New("sealed-secret-0123456789")}, now)
	if err != nil {
		t.Fatal(err)
	}
	uid, err := src.CreateUserWith(ctx, User{Username: "ops", PasswordHash: "$argon2id$x"}, acme, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.AppendAudit(ctx, audit.Entry{At: now, ContainerID: acme, ActorKind: audit.ActorUser, ActorID: uid, Action: "login"}); err != nil {
		t.Fatal(err)
	}

	dst, err := Open(ctx, srv.Database(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := dst.UseSecretKey(key); err != nil {
		t.Fatal(err)
	}
	var seen []string
	counts, err := src.CopyTo(ctx, dst, func(table string, done, total int64) {
		if done == total {
			seen = append(seen, table)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if counts["containers"] != 3 || counts["assets"] != 1 || counts["check_results"] != 1 || counts["rules"] != 1 || counts["audit_log"] != 1 || len(seen) != len(copyOrder()) {
		t.Fatalf("counts %v, progress %v", counts, seen)
	}
	tree, err := dst.Tree(ctx)
	if err != nil || len(tree) != 3 || tree[2].ID != acme || *tree[2].ParentID != msp {
		t.Errorf("the tree on PostgreSQL: %+v %v", tree, err)
	}
	r, err := dst.Rule(ctx, rule)
	if err != nil || r.Secret.Reveal() != "sealed-secret-0123456789" {
		t.Errorf("the rule's sealed secret on PostgreSQL: %v", err)
	}
	res, err := dst.LatestResult(ctx, asset, "linux", "cpu")
	if err != nil || string(res.Data) != `{"cpu":[{"name":"cpu0","usage":1.5}]}` {
		t.Errorf("the result on PostgreSQL: %s %v", res.Data, err)
	}
	if u, err := dst.UserByName(ctx, "ops"); err != nil || u.ID != uid {
		t.Errorf("the user: %+v %v", u, err)
	}
	// New rows continue after the copied ids.
	if c, err := dst.CreateContainer(ctx, root, "next"); err != nil || c <= acme {
		t.Errorf("a new container got id %d (%v), want > %d", c, err, acme)
	}
	// Not into a store that holds data.
	if _, err := src.CopyTo(ctx, dst, nil); err == nil {
		t.Error("copying into a store that is not empty worked")
	}
	// And back to SQLite.
	back, err := Open(ctx, filepath.Join(t.TempDir(), "back.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if counts, err := dst.CopyTo(ctx, back, nil); err != nil || counts["containers"] != 4 {
		t.Errorf("back to SQLite: %v %v", counts, err)
	}
}

package state

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/audit"
)

// TestAuditAppendOnly: entries cannot be changed, and only entries older
// than the retention can be removed.
func TestAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, location(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	for _, at := range []time.Time{now, now.Add(-401 * 24 * time.Hour)} {
		if err := s.AppendAudit(ctx, audit.Entry{At: at, ContainerID: 1, ActorKind: audit.ActorUser, ActorID: 1, Action: "login"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE audit_log SET reason = 'x'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("updating the audit log: %v", err)
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM audit_log WHERE at > $1`, now.Add(-time.Hour).Unix()); err == nil {
		t.Errorf("deleting a recent entry worked")
	}
	n, err := s.PruneAudit(ctx, now)
	if err != nil {
		t.Fatalf("pruning entries past the retention: %v", err)
	}
	if n != 1 {
		t.Errorf("pruned %d entries past the retention, want 1", n)
	}
	got, err := s.AuditLog(ctx, AuditFilter{Containers: []int64{1}})
	if err != nil || len(got) != 1 || got[0].Action != "login" {
		t.Errorf("the log: %+v %v", got, err)
	}
}

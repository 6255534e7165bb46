package stream_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hub"
	"github.com/sonde-monitoring/sonde/internal/testutil"
	"github.com/sonde-monitoring/sonde/internal/wire"
)

// TestApplianceAuditEvents: an appliance's audit events (0x60) land in the
// hub's audit log, under the appliance, at most 20 a minute.
func TestApplianceAuditEvents(t *testing.T) {
	h := testutil.StartHub(t, hub.Config{StreamListen: "127.0.0.1:0", AllowTokenAnnounce: true})
	tok := h.Token(1, "CORE_CONNECT")
	c := dialStream(t, h)
	body, err := wire.MarshalAnnounce(wire.Announce{Name: "edge-1", Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.WritePacket(c, wire.Packet{PID: 1, Type: wire.TypeAnnounce, Body: body}); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := wire.ReadPacket(c, 1<<20)
	if err != nil || p.Type != wire.TypeAnnounceReply {
		t.Fatalf("announce: %v %v", p.Type, err)
	}
	r, err := wire.UnmarshalAnnounceReply(p.Body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		ev := wire.MarshalAuditLog(wire.AuditLog{EventID: int64(i), Message: fmt.Sprintf("vault rotated credential %d", i)})
		if err := wire.WritePacket(c, wire.Packet{PID: uint16(2 + i), Type: wire.TypeAuditLog, Body: ev}); err != nil {
			t.Fatal(err)
		}
	}
	type entry struct {
		ActorKind string `json:"actorKind"`
		ActorID   int64  `json:"actorId"`
		Action    string `json:"action"`
		Address   string `json:"address"`
		Detail    string `json:"detail"`
	}
	var log []entry
	testutil.WaitFor(t, "20 audit events", 10*time.Second, func() bool {
		h.Must(200, "GET", "/api/v1/container/1/log?actorKind=appliance&limit=100", nil, &log)
		return len(log) >= 20
	})
	time.Sleep(200 * time.Millisecond)
	h.Must(200, "GET", "/api/v1/container/1/log?actorKind=appliance&limit=100", nil, &log)
	if len(log) != 20 {
		t.Errorf("%d events in the audit log, want the 20 a minute allows", len(log))
	}
	// A new stream of the same appliance does not reset the limit.
	c.Close()
	c2 := dialStream(t, h)
	body, err = wire.MarshalAnnounce(wire.Announce{ApplianceID: r.ApplianceID, Name: "edge-1", Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.WritePacket(c2, wire.Packet{PID: 1, Type: wire.TypeAnnounce, Body: body}); err != nil {
		t.Fatal(err)
	}
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if p, err := wire.ReadPacket(c2, 1<<20); err != nil || p.Type != wire.TypeAnnounceReply {
		t.Fatalf("announce again: %v %v", p.Type, err)
	}
	for i := range 10 {
		ev := wire.MarshalAuditLog(wire.AuditLog{EventID: int64(100 + i), Message: "again"})
		if err := wire.WritePacket(c2, wire.Packet{PID: uint16(2 + i), Type: wire.TypeAuditLog, Body: ev}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	h.Must(200, "GET", "/api/v1/container/1/log?actorKind=appliance&limit=100", nil, &log)
	if len(log) != 20 {
		t.Errorf("%d events after a reconnection, want still 20 in the minute", len(log))
	}
	last := log[len(log)-1]
	if last.ActorID != int64(r.ApplianceID) || last.Action != "appliance audit event" || last.Address != "127.0.0.1" ||
		last.Detail != "event 0: vault rotated credential 0" {
		t.Errorf("the first event: %+v", last)
	}
}

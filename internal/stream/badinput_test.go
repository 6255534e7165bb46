package stream_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/hub"
	"github.com/sonde-monitoring/sonde/internal/model"
	"github.com/sonde-monitoring/sonde/internal/testutil"
	"github.com/sonde-monitoring/sonde/internal/wire"
)

func dialStream(t *testing.T, h *testutil.Hub) *tls.Conn {
	t.Helper()
	pem, err := os.ReadFile(h.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", h.Stream,
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func header(partID uint64, length uint32, pid uint16, tp, checkbit byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, partID)
	b = binary.LittleEndian.AppendUint32(b, length)
	b = binary.LittleEndian.AppendUint16(b, pid)
	return append(b, tp, checkbit)
}

// TestBadAppliance: whatever a client sends, the hub answers at most an
// error, closes the stream promptly, allocates nothing the header claims,
// and keeps serving.
func TestBadAppliance(t *testing.T) {
	h := testutil.StartHub(t, hub.Config{StreamListen: "127.0.0.1:0"})
	announce, _ := wire.MarshalAnnounce(wire.Announce{Name: "x", Token: strings.Repeat("a", 32)})
	for _, tc := range []struct {
		name    string
		send    []byte
		wantErr string // the error packet expected before the close, if any
	}{
		{"wrong checkbit", header(0, 2, 1, byte(wire.TypeAnnounce), 0x00), ""},
		{"length over the limit", header(0, 0xffffffff, 1, byte(wire.TypeAnnounce), byte(wire.TypeAnnounce)^0xff), ""},
		{"unknown type first", append(header(0, 2, 1, 0x42, 0x42^0xff), 0xc4, 0x00), ""},
		{"data before announcing", append(header(7, 2, 1, byte(wire.TypeData), 0xff), 0xc4, 0x00), ""},
		{"announce that is not MessagePack", append(header(0, 3, 1, byte(wire.TypeAnnounce), byte(wire.TypeAnnounce)^0xff), 0xc1, 0xc1, 0xc1), "malformed announce"},
		{"token announce without --allow-token-announce", wire.AppendPacket(nil, wire.Packet{PID: 1, Type: wire.TypeAnnounce, Body: announce}), "accepts enrolled appliances only"},
		{"enroll with garbage", append(header(0, 1, 1, byte(wire.TypeEnroll), byte(wire.TypeEnroll)^0xff), 0x90), "malformed enroll"},
		{"half a header, then silence", []byte{1, 2, 3}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialStream(t, h)
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(15 * time.Second))
			p, err := wire.ReadPacket(c, 1<<20)
			if tc.wantErr != "" {
				if err != nil || p.Type != wire.TypeError {
					t.Fatalf("got %v %v, want an error packet", p.Type, err)
				}
				msg, _ := wire.UnmarshalErrorBody(p.Body)
				if !strings.Contains(msg, tc.wantErr) {
					t.Errorf("error %q, want %q", msg, tc.wantErr)
				}
				_, err = wire.ReadPacket(c, 1<<20)
			}
			var ne net.Error
			if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
				t.Fatalf("the hub did not close the stream: %v", err)
			}
		})
	}
	// The hub still serves.
	resp, err := h.Client.Get("https://" + h.Addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz %d", resp.StatusCode)
	}
}

// TestFailedAttemptsAreThrottled: an address that keeps failing is
// refused for a while before the TLS handshake.
func TestFailedAttemptsAreThrottled(t *testing.T) {
	h := testutil.StartHub(t, hub.Config{StreamListen: "127.0.0.1:0"})
	bad := append(header(0, 3, 1, byte(wire.TypeAnnounce), byte(wire.TypeAnnounce)^0xff), 0xc1, 0xc1, 0xc1)
	for range 10 {
		c := dialStream(t, h)
		c.Write(bad)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		wire.ReadPacket(c, 1<<20)
		c.Close()
	}
	// A client without a certificate from that address is dropped after
	// the handshake, before anything it sends is read.
	c := dialStream(t, h)
	c.Write(bad)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if p, err := wire.ReadPacket(c, 1<<20); err == nil {
		t.Errorf("got a %v packet after ten failures from this address", p.Type)
	}
	testutil.WaitFor(t, "the refusal in the log", 5*time.Second, func() bool {
		return strings.Contains(h.Logs.String(), "too many failed attempts")
	})
}

// TestTokenAnnounce: with --allow-token-announce an unchanged InfraSonar
// appliance announces with its token, gets an id, its own entry in the
// appliance list and its assets; without a token it gets nothing.
func TestTokenAnnounce(t *testing.T) {
	h := testutil.StartHub(t, hub.Config{StreamListen: "127.0.0.1:0", AllowTokenAnnounce: true})
	tok := h.Token(1, "CORE_CONNECT")
	var asset struct {
		AssetID int64 `json:"assetId"`
	}
	h.Must(201, "POST", "/api/v1/container/1/asset", map[string]string{"name": "web"}, &asset)
	h.Must(204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/tcp", asset.AssetID), map[string]any{
		"config": map[string]any{"address": "127.0.0.1", "ports": []int{443}},
		"checks": map[string]any{"tcp": map[string]any{"interval": 60}},
	}, nil)
	announce := func(a wire.Announce) (wire.Packet, *tls.Conn) {
		c := dialStream(t, h)
		body, err := wire.MarshalAnnounce(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := wire.WritePacket(c, wire.Packet{PID: 9, Type: wire.TypeAnnounce, Body: body}); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		p, err := wire.ReadPacket(c, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return p, c
	}
	p, c := announce(wire.Announce{Name: "infrasonar-1", Zone: 0, Token: tok})
	if p.Type != wire.TypeAnnounceReply || p.PID != 9 {
		t.Fatalf("got %v pid %d", p.Type, p.PID)
	}
	r, err := wire.UnmarshalAnnounceReply(p.Body)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Appliances) != 1 || r.Appliances[0].ID != r.ApplianceID || len(r.Assets) != 1 || r.Assets[0].ID != uint64(asset.AssetID) {
		t.Fatalf("reply %+v", r)
	}
	if pr := r.Assets[0].Probes; len(pr) != 1 || pr[0].Key != "tcp" || pr[0].Config["ports"].([]any)[0] != int64(443) {
		t.Errorf("probes %+v: the port must stay an integer", pr)
	}
	c.Close()
	// The same appliance again, by its id; a wrong token is refused.
	if p, _ := announce(wire.Announce{ApplianceID: r.ApplianceID, Name: "infrasonar-1", Token: tok}); p.Type != wire.TypeAnnounceReply {
		t.Errorf("re-announce: %v", p.Type)
	}
	if p, _ := announce(wire.Announce{ApplianceID: r.ApplianceID, Name: "infrasonar-1", Token: strings.Repeat("f", 32)}); p.Type != wire.TypeError {
		t.Errorf("wrong token: %v", p.Type)
	}
}

// TestDataOnlyForServedAssets: an appliance may send results only for the
// assets the hub gave it, not for any check id of its container.
func TestDataOnlyForServedAssets(t *testing.T) {
	h := testutil.StartHub(t, hub.Config{StreamListen: "127.0.0.1:0", AllowTokenAnnounce: true})
	tok := h.Token(1, "CORE_CONNECT")
	var asset struct {
		AssetID int64 `json:"assetId"`
	}
	h.Must(201, "POST", "/api/v1/container/1/asset", map[string]string{"name": "web"}, &asset)
	h.Must(204, "POST", fmt.Sprintf("/api/v1/asset/%d/collector/tcp", asset.AssetID), map[string]any{
		"config": map[string]any{"address": "127.0.0.1", "ports": []int{443}},
		"checks": map[string]any{"tcp": map[string]any{"interval": 60}},
	}, nil)
	announce := func(zone int) (*tls.Conn, wire.AnnounceReply) {
		c := dialStream(t, h)
		body, _ := wire.MarshalAnnounce(wire.Announce{Name: fmt.Sprint("zone-", zone), Zone: zone, Token: tok})
		wire.WritePacket(c, wire.Packet{PID: 1, Type: wire.TypeAnnounce, Body: body})
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		p, err := wire.ReadPacket(c, 1<<20)
		if err != nil || p.Type != wire.TypeAnnounceReply {
			t.Fatalf("announce: %v %v", p.Type, err)
		}
		r, err := wire.UnmarshalAnnounceReply(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		return c, r
	}
	_, r0 := announce(0)
	if len(r0.Assets) != 1 {
		t.Fatalf("the zone-0 appliance got %d assets", len(r0.Assets))
	}
	checkID := r0.Assets[0].Probes[0].Checks[0].ID
	c5, r5 := announce(5)
	if len(r5.Assets) != 0 {
		t.Fatalf("the zone-5 appliance got %d assets", len(r5.Assets))
	}
	cd := wire.EncodeCheckData(&model.CheckData{HasResult: true, Timestamp: time.Now().Unix(), Types: []model.Type{{Name: "tcp", Items: []model.Item{
		{Name: "443", Metrics: []model.Metric{{Name: "open", Value: model.BoolValue(true)}}}}}}})
	dump, _ := wire.MarshalProbeDump(wire.ProbeDump{AssetID: uint64(asset.AssetID), CheckID: checkID, CheckData: cd})
	wire.WritePacket(c5, wire.Packet{PartID: uint64(asset.AssetID), PID: 7, Type: wire.TypeData, Body: dump})
	for {
		p, err := wire.ReadPacket(c5, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if p.Type == wire.TypeInfo {
			continue // the heartbeat
		}
		msg, _ := wire.UnmarshalErrorBody(p.Body)
		if p.Type != wire.TypeError || p.PID != 7 || !strings.Contains(msg, "not served by this appliance") {
			t.Fatalf("got %v pid %d %q, want a refusal", p.Type, p.PID, msg)
		}
		break
	}
	if n := len(h.Samples(fmt.Sprintf(`sonde_tcp_open{asset_id="%d"}`, asset.AssetID))); n != 0 {
		t.Errorf("the hub stored %d series from an appliance that does not serve the asset", n)
	}
}

// TestPreAuthLimitPerAddress: idle connections from one address hold at
// most a few of the slots for authenticating, and the handshake deadline
// frees them.
func TestPreAuthLimitPerAddress(t *testing.T) {
	h := testutil.StartHub(t, hub.Config{StreamListen: "127.0.0.1:0"})
	var idle []net.Conn
	for range 4 {
		c, err := net.DialTimeout("tcp", h.Stream, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	time.Sleep(200 * time.Millisecond)
	extra, err := net.DialTimeout("tcp", h.Stream, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil {
		t.Error("a fifth idle connection from one address was served")
	}
	testutil.WaitFor(t, "the refusal in the log", 5*time.Second, func() bool {
		return strings.Contains(h.Logs.String(), "too many connections are authenticating")
	})
	// The idle ones are dropped after the handshake deadline.
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("an idle connection was answered")
		}
	}
	start := time.Now()
	dialStream(t, h) // a handshake works again
	if time.Since(start) > 5*time.Second {
		t.Error("the handshake waited for a slot too long")
	}
}

// TestApplianceLimitPerContainer: a container cannot connect more
// appliances than the hub allows; one that reconnects is not counted twice.
func TestApplianceLimitPerContainer(t *testing.T) {
	h := testutil.StartHub(t, hub.Config{StreamListen: "127.0.0.1:0", AllowTokenAnnounce: true, MaxAppliancesPerContainer: 2})
	tok := h.Token(1, "CORE_CONNECT")
	announce := func(name string, id uint64) wire.Packet {
		c := dialStream(t, h)
		body, _ := wire.MarshalAnnounce(wire.Announce{ApplianceID: id, Name: name, Token: tok})
		wire.WritePacket(c, wire.Packet{PID: 1, Type: wire.TypeAnnounce, Body: body})
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		p, err := wire.ReadPacket(c, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := announce("a", 0)
	if first.Type != wire.TypeAnnounceReply || announce("b", 0).Type != wire.TypeAnnounceReply {
		t.Fatal("the first two appliances were refused")
	}
	p := announce("c", 0)
	msg, _ := wire.UnmarshalErrorBody(p.Body)
	if p.Type != wire.TypeError || !strings.Contains(msg, "2 appliances connected already") {
		t.Fatalf("the third appliance got %v %q", p.Type, msg)
	}
	r, _ := wire.UnmarshalAnnounceReply(first.Body)
	if announce("a", r.ApplianceID).Type != wire.TypeAnnounceReply {
		t.Error("an appliance reconnecting was counted twice")
	}
}

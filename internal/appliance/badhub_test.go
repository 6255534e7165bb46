package appliance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/testutil"
	"github.com/sonde-monitoring/sonde/internal/tlsca"
	"github.com/sonde-monitoring/sonde/internal/wire"
)

// TestBadHub: a hub that sends garbage (a wrong checkbit, a length over the
// limit, unknown packet types, bodies of the wrong shape) gets the
// connection dropped with an error, never a crash or a hang. The peer here
// is a TLS server of the test's own that plays a broken or hostile hub: no
// real hub sends these.
func TestBadHub(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := tlsca.LoadOrCreate(filepath.Join(dir, "ca"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.EnsureServerCert(filepath.Join(dir, "ca"), []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(length uint32, tp, checkbit byte) []byte {
		b := binary.LittleEndian.AppendUint64(nil, 0)
		b = binary.LittleEndian.AppendUint32(b, length)
		b = binary.LittleEndian.AppendUint16(b, 0)
		return append(b, tp, checkbit)
	}
	reply, err := wire.MarshalAnnounceReply(wire.AnnounceReply{ApplianceID: 1, Appliances: []wire.ApplianceZone{{ID: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	good := wire.AppendPacket(nil, wire.Packet{Type: wire.TypeAnnounceReply, Body: reply})
	for _, tc := range []struct {
		name, wantErr string
		send          []byte
	}{
		{"wrong checkbit", "checkbit", hdr(2, byte(wire.TypeAnnounceReply), 0)},
		{"length over the limit", "too large", hdr(0xffffffff, byte(wire.TypeAnnounceReply), byte(wire.TypeAnnounceReply)^0xff)},
		{"unknown type as the reply", "answered a Type(0x42)", append(hdr(2, 0x42, 0x42^0xff), 0xc4, 0)},
		{"reply of the wrong shape", "announce reply", append(hdr(1, byte(wire.TypeAnnounceReply), byte(wire.TypeAnnounceReply)^0xff), 0x90)},
		{"refusal", "the hub refused the appliance: revoked", wire.AppendPacket(nil, wire.Packet{Type: wire.TypeError, Body: wire.MarshalErrorBody("revoked")})},
		{"unknown type after the reply", "unexpected Type(0x42)", append(append([]byte(nil), good...), append(hdr(2, 0x42, 0x42^0xff), 0xc4, 0)...)},
		{"set assets of the wrong shape", "set assets", append(append([]byte(nil), good...), append(hdr(1, byte(wire.TypeSetAssets), byte(wire.TypeSetAssets)^0xff), 0xc0)...)},
		{"silence", "no answer", nil},
		{"closed mid-packet", "reading", append(append([]byte(nil), good...), hdr(100, byte(wire.TypeUpsertAsset), byte(wire.TypeUpsertAsset)^0xff)[:10]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS12})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				wire.ReadPacket(c, 1<<20) // the announce
				c.Write(tc.send)
				if tc.name == "silence" {
					time.Sleep(12 * time.Second)
				}
			}()
			logs := &testutil.SyncBuffer{}
			a, err := Open(Config{DataDir: filepath.Join(t.TempDir(), "app"), Hub: ln.Addr().String(), CAFile: filepath.Join(dir, "ca", tlsca.CACertFile),
				Name: "x", Probes: Registry{}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			enrolled(t, a, ca)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = a.session(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("session = %v, want an error about %q", err, tc.wantErr)
			}
			if ctx.Err() != nil {
				t.Fatal("the session hung until the test's deadline")
			}
		})
	}
}

// enrolled gives the appliance an identity signed by ca, as enrollment
// would have.
func enrolled(t *testing.T, a *Appliance, ca *tlsca.CA) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.SignClientCSR(csr, "sonde-appliance-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.cfg.DataDir, keyFile), a.keySealer.Seal(pk, []byte(keyFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.cfg.DataDir, certFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

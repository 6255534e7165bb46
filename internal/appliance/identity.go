package appliance

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sonde-monitoring/sonde/internal/vault"
	"github.com/sonde-monitoring/sonde/internal/wire"
)

// Files of the appliance's identity in its data directory.
const (
	certFile = "client.crt"
	// keyFile holds the client certificate's private key sealed with the
	// vault's data key: it never leaves the appliance, and a copy of the
	// data directory without the key file (or passphrase) is useless.
	keyFile = "client.key.sealed"
)

// identity is the appliance's client certificate and key.
type identity struct {
	id   int64
	cert tls.Certificate
	leaf *x509.Certificate
}

// loadIdentity reads the enrolled identity; ok is false before enrollment.
func loadIdentity(dir string, sealer *vault.Sealer) (id identity, ok bool, err error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, certFile)) // #nosec G304 -- a fixed name in the appliance's data dir
	if errors.Is(err, os.ErrNotExist) {
		return id, false, nil
	}
	if err != nil {
		return id, false, fmt.Errorf("reading the appliance certificate: %w", err)
	}
	sealed, err := os.ReadFile(filepath.Join(dir, keyFile)) // #nosec G304 -- a fixed name in the appliance's data dir
	if err != nil {
		return id, false, fmt.Errorf("reading the appliance's private key (%s): %w; remove %s to enroll again", keyFile, err, certFile)
	}
	der, err := sealer.Open(sealed, []byte(keyFile))
	if err != nil {
		return id, false, fmt.Errorf("opening the appliance's private key: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return id, false, fmt.Errorf("parsing the appliance's private key: %w", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return id, false, fmt.Errorf("%s holds no certificate: remove it to enroll again", filepath.Join(dir, certFile))
	}
	return newIdentity(block.Bytes, key)
}

func newIdentity(certDER []byte, key any) (identity, bool, error) {
	leaf, err := x509.ParseCertificate(certDER)
	if err != nil {
		return identity{}, false, fmt.Errorf("parsing the appliance certificate: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return identity{}, false, errors.New("the appliance's private key cannot sign")
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return identity{}, false, errors.New("the appliance certificate does not belong to its private key")
	}
	rest, ok := strings.CutPrefix(leaf.Subject.CommonName, "sonde-appliance-")
	n, err := strconv.ParseInt(rest, 10, 64)
	if !ok || err != nil || n <= 0 {
		return identity{}, false, fmt.Errorf("the appliance certificate names %q, not an appliance", leaf.Subject.CommonName)
	}
	return identity{id: n, cert: tls.Certificate{Certificate: [][]byte{certDER}, PrivateKey: signer, Leaf: leaf}, leaf: leaf}, true, nil
}

// tlsConfig is how the appliance reaches the hub at addr (HOST:PORT):
// only the hub's CA is trusted, and the hub's certificate must name the
// host dialled.
func (a *Appliance) tlsConfig(id *identity, addr string) *tls.Config {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: a.hubCA, ServerName: host}
	if id != nil {
		c.Certificates = []tls.Certificate{id.cert}
	}
	return c
}

// dial opens a TLS connection to the hub at addr.
func (a *Appliance) dial(ctx context.Context, id *identity, addr string) (*tls.Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}, Config: a.tlsConfig(id, addr)}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to the hub at %s: %w", addr, err)
	}
	return c.(*tls.Conn), nil
}

// enroll asks the hub at addr for a client certificate with the token, for
// a key made here, and keeps both (the key sealed).
func (a *Appliance) enroll(ctx context.Context, addr string) (identity, error) {
	if a.cfg.TokenFile == "" {
		return identity{}, errors.New("the appliance is not enrolled yet: give --token-file with a token that has CORE_CONNECT")
	}
	tokText, err := os.ReadFile(a.cfg.TokenFile)
	if err != nil {
		return identity{}, fmt.Errorf("reading the token file: %w", err)
	}
	token := strings.TrimSpace(string(tokText))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return identity{}, fmt.Errorf("making the appliance's key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: a.cfg.Name}}, key)
	if err != nil {
		return identity{}, fmt.Errorf("making the certificate request: %w", err)
	}
	body, err := wire.MarshalEnroll(wire.Enroll{Token: token, Name: a.cfg.Name, Zone: a.cfg.Zone, CSR: csr})
	if err != nil {
		return identity{}, err
	}
	conn, err := a.dial(ctx, nil, addr)
	if err != nil {
		return identity{}, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(requestTimeout)); err != nil {
		return identity{}, err
	}
	if err := wire.WritePacket(conn, wire.Packet{PID: 1, Type: wire.TypeEnroll, Body: body}); err != nil {
		return identity{}, fmt.Errorf("enrolling: %w", err)
	}
	p, err := wire.ReadPacket(conn, 64<<10)
	if err != nil {
		return identity{}, fmt.Errorf("enrolling: no answer from the hub: %w", err)
	}
	switch p.Type {
	case wire.TypeEnrollReply:
	case wire.TypeError:
		msg, _ := wire.UnmarshalErrorBody(p.Body)
		return identity{}, fmt.Errorf("the hub refused the enrollment: %s", msg)
	default:
		return identity{}, fmt.Errorf("enrolling: the hub answered a %s packet", p.Type)
	}
	r, err := wire.UnmarshalEnrollReply(p.Body)
	if err != nil {
		return identity{}, fmt.Errorf("enrolling: %w", err)
	}
	id, err := a.keepIdentity(r, key)
	if err != nil {
		return identity{}, fmt.Errorf("enrolling: %w", err)
	}
	a.log.Warn("enrolled with the hub: delete the token file now (the certificate is the appliance's identity; the token could enroll another appliance)",
		"hub", addr, "appliance_id", id.id, "token_file", a.cfg.TokenFile, "not_after", id.leaf.NotAfter)
	return id, nil
}

// renewBefore is how long before its expiry an appliance renews its
// certificate: a third of its lifetime, at most 30 days.
func renewBefore(leaf *x509.Certificate) time.Duration {
	return min(leaf.NotAfter.Sub(leaf.NotBefore)/3, 30*24*time.Hour)
}

// renewRequest makes a new key and the renew packet asking for its
// certificate.
func (a *Appliance) renewRequest() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("making a new key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: a.cfg.Name}}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("making the certificate request: %w", err)
	}
	body, err := wire.MarshalRenew(csr)
	return key, body, err
}

// keepIdentity checks a certificate the hub signed for key and writes
// both (the key sealed, first).
func (a *Appliance) keepIdentity(r wire.EnrollReply, key *ecdsa.PrivateKey) (identity, error) {
	id, _, err := newIdentity(r.Certificate, key)
	if err != nil {
		return identity{}, err
	}
	if _, err := id.leaf.Verify(x509.VerifyOptions{Roots: a.hubCA, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return identity{}, fmt.Errorf("the certificate the hub gave is not signed by the hub's CA: %w", err)
	}
	if id.id != int64(r.ApplianceID) { // #nosec G115 -- compared, not used
		return identity{}, fmt.Errorf("the certificate names appliance %d, the hub said %d", id.id, r.ApplianceID)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return identity{}, err
	}
	// The key first: a certificate without its key would be useless.
	if err := writeFileAtomic(filepath.Join(a.cfg.DataDir, keyFile), a.keySealer.Seal(der, []byte(keyFile))); err != nil {
		return identity{}, fmt.Errorf("keeping the appliance's key: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(a.cfg.DataDir, certFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})); err != nil {
		return identity{}, fmt.Errorf("keeping the appliance certificate: %w", err)
	}
	return id, nil
}

// writeFileAtomic writes a file (0600) through a synced temporary file and
// a rename, then syncs the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return werr
	}
	d, err := os.Open(dir) // #nosec G304 -- the appliance's own data dir
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

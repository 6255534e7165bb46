// Package tlsca is the hub's own certificate authority: on first start it
// creates a CA and a server certificate under <data>/tls/, reissues the
// server certificate when it nears expiry or its names change, signs client
// certificates for appliances from their CSRs, and builds the server's TLS
// configuration. Operators can bring their own server certificate instead
// (LoadKeyPair).
package tlsca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

// File names under the TLS directory (<data>/tls).
const (
	// CACertFile is the CA certificate (PEM) that clients must trust.
	CACertFile = "ca.crt"
	// CAKeyFile is the CA private key (PEM, mode 0600).
	CAKeyFile = "ca.key"
	// ServerCertFile is the hub's server certificate (PEM).
	ServerCertFile = "server.crt"
	// ServerKeyFile is the server certificate's private key (PEM, mode 0600).
	ServerKeyFile = "server.key"
)

const (
	caValidityYears = 10
	// clockSkew is how far NotBefore is back-dated, so that peers whose
	// clocks lag a little still accept a freshly issued certificate.
	clockSkew = time.Hour
	// caExpiryWarning is how long before the CA expires LoadOrCreate starts
	// warning about it.
	caExpiryWarning = 365 * 24 * time.Hour
	// maxCommonNameLen is the X.520 upper bound of a common name.
	maxCommonNameLen = 64
)

// CA is the hub's certificate authority: its certificate and private key.
// It is immutable and safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	logger  *slog.Logger
}

// LoadOrCreate loads the CA from dir (normally <data>/tls), or creates it
// there when it does not exist yet, and reports whether it was created. The
// directory is created, or tightened, to mode 0700.
//
// A ca.crt without its ca.key is an error: the certificate may already be
// trusted by clients, so it is never replaced silently. A ca.key without its
// ca.crt (a crash between the two writes; the key is written first) means the
// CA was never handed out, and a new one is created. A nil logger discards.
func LoadOrCreate(dir string, logger *slog.Logger) (*CA, bool, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := ensureDir(dir); err != nil {
		return nil, false, err
	}
	certFile := filepath.Join(dir, CACertFile)
	keyFile := filepath.Join(dir, CAKeyFile)
	haveCert, err := exists(certFile)
	if err != nil {
		return nil, false, err
	}
	haveKey, err := exists(keyFile)
	if err != nil {
		return nil, false, err
	}
	switch {
	case haveCert && haveKey:
		ca, err := loadCA(certFile, keyFile, logger)
		if err != nil {
			return nil, false, err
		}
		return ca, false, nil
	case haveCert:
		return nil, false, fmt.Errorf("loading CA: %s exists but %s does not; restore the key, or remove %s to create a new CA (every client will then have to trust the new one)",
			certFile, keyFile, certFile)
	case haveKey:
		logger.Warn("CA key without certificate (interrupted creation?); creating a new CA", "key", keyFile)
	}
	ca, err := createCA(certFile, keyFile, logger, time.Now())
	if err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

func loadCA(certFile, keyFile string, logger *slog.Logger) (*CA, error) {
	if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logger.Warn("CA key is readable by group or others; it should have mode 0600", "key", keyFile, "mode", fi.Mode().Perm().String())
	}
	certs, key, err := readCertAndKey(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading CA: %w", err)
	}
	cert := certs[0]
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("loading CA: certificate %s is not a CA certificate", certFile)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("loading CA: certificate %s may not sign certificates (no certSign key usage)", certFile)
	}
	now := time.Now()
	switch {
	case !now.Before(cert.NotAfter):
		logger.Error("CA certificate has expired; remove ca.crt and ca.key to create a new CA, which every client will then have to trust",
			"cert", certFile, "not_after", cert.NotAfter)
	case cert.NotAfter.Sub(now) < caExpiryWarning:
		logger.Warn("CA certificate expires soon; plan to replace it", "cert", certFile, "not_after", cert.NotAfter)
	}
	ca := &CA{cert: cert, key: key, certPEM: encodeCert(cert.Raw), logger: logger}
	logger.Debug("loaded TLS CA", "cert", certFile, "fingerprint_sha256", ca.Fingerprint())
	return ca, nil
}

func createCA(certFile, keyFile string, logger *slog.Logger, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	cn := "Sonde hub CA"
	if h := hostName(); h != "" {
		cn += " (" + h + ")"
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Sonde"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.AddDate(caValidityYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true, // it signs leaves only, never sub-CAs
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing new CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("writing CA key %s: %w", keyFile, err)
	}
	// Key first: a crash before the certificate is written leaves a key
	// alone, which LoadOrCreate knows it may replace.
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("writing CA key: %w", err)
	}
	certPEM := encodeCert(der)
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("writing CA certificate: %w", err)
	}
	ca := &CA{cert: cert, key: key, certPEM: certPEM, logger: logger}
	logger.Info("created TLS CA", "cert", certFile, "not_after", cert.NotAfter, "fingerprint_sha256", ca.Fingerprint())
	return ca, nil
}

// Fingerprint returns the SHA-256 fingerprint of the CA certificate, in the
// form `openssl x509 -noout -fingerprint -sha256` prints.
func (ca *CA) Fingerprint() string {
	return Fingerprint(ca.cert.Raw)
}

// CertPEM returns the CA certificate in PEM form, as in ca.crt.
func (ca *CA) CertPEM() []byte {
	return bytes.Clone(ca.certPEM)
}

// Certificate returns the parsed CA certificate. The caller must not modify it.
func (ca *CA) Certificate() *x509.Certificate {
	return ca.cert
}

// Pool returns a new certificate pool holding only the CA certificate, for
// verifying the hub's server certificate or the client certificates it signed.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// SignClientCSR issues a client certificate for the public key of the
// DER-encoded certificate signing request csrDER, after checking the CSR's
// signature. The certificate's subject is commonName alone and its only
// extended key usage is client authentication: any names or extensions the
// CSR asks for are ignored. It is valid for validity from now (back-dated by
// an hour for clock skew), but never beyond the CA's own expiry. It returns
// the certificate in DER form.
func (ca *CA) SignClientCSR(csrDER []byte, commonName string, validity time.Duration) ([]byte, error) {
	if err := checkCommonName(commonName); err != nil {
		return nil, fmt.Errorf("signing client certificate: %w", err)
	}
	if validity <= 0 {
		return nil, fmt.Errorf("signing client certificate for %q: validity %v is not positive", commonName, validity)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("signing client certificate for %q: parsing CSR: %w", commonName, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("signing client certificate for %q: checking CSR signature: %w", commonName, err)
	}
	if err := checkClientKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("signing client certificate for %q: %w", commonName, err)
	}
	now := time.Now()
	if !now.Before(ca.cert.NotAfter) {
		return nil, fmt.Errorf("signing client certificate for %q: the CA expired at %s", commonName, ca.cert.NotAfter.Format(time.RFC3339))
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("signing client certificate for %q: %w", commonName, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing client certificate for %q: %w", commonName, err)
	}
	ca.logger.Info("signed client certificate", "cn", commonName, "serial", fmt.Sprintf("%X", serial), "not_after", notAfter)
	return der, nil
}

func checkCommonName(cn string) error {
	switch {
	case cn == "":
		return errors.New("empty common name")
	case len(cn) > maxCommonNameLen:
		return fmt.Errorf("common name %q is longer than %d bytes", cn, maxCommonNameLen)
	case strings.IndexFunc(cn, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("common name %q contains unprintable characters", cn)
	}
	return nil
}

// checkClientKey accepts the public key types and sizes TLS clients use and
// rejects weak or unknown ones.
func checkClientKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("unsupported ECDSA curve %s in CSR", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits in CSR is too small (minimum 2048)", k.N.BitLen())
		}
		return nil
	case ed25519.PublicKey:
		return nil
	default:
		return fmt.Errorf("unsupported public key type %T in CSR", pub)
	}
}

// randomSerial returns a random, positive 128-bit certificate serial number.
func randomSerial() (*big.Int, error) {
	b := make([]byte, 16)
	for {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("generating serial number: %w", err)
		}
		if n := new(big.Int).SetBytes(b); n.Sign() > 0 {
			return n, nil
		}
	}
}

// Fingerprint returns the SHA-256 digest of a DER-encoded certificate as
// uppercase hex bytes separated by colons ("AB:CD:..."), as
// `openssl x509 -noout -fingerprint -sha256` prints it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	const hexDigits = "0123456789ABCDEF"
	out := make([]byte, 0, len(sum)*3-1)
	for i, b := range sum {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, hexDigits[b>>4], hexDigits[b&0x0f])
	}
	return string(out)
}

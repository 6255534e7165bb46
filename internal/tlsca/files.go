package tlsca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// writeFileAtomic replaces path with data: it writes a temporary file in the
// same directory (created with mode 0600, then set to perm), syncs it, renames
// it over path and syncs the directory, so a crash leaves either the old or the
// new content, never a torn or world-readable file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("setting mode of %s: %w", tmp, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmp, path, err)
	}
	if d, derr := os.Open(dir); derr == nil { // #nosec G304 -- the directory of a file the hub itself writes
		// Best effort: not every platform can sync a directory.
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// ensureDir creates dir with mode 0700, or tightens an existing one to 0700.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating TLS directory %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("checking TLS directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("checking TLS directory %s: not a directory", dir)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil { // #nosec G302 -- a directory needs its x bit; 0700 is owner only
			return fmt.Errorf("setting mode 0700 on TLS directory %s: %w", dir, err)
		}
	}
	return nil
}

// exists reports whether path exists. Errors other than "does not exist"
// (permissions, I/O) are returned rather than treated as absence, so a file
// that merely could not be read is never overwritten.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("checking %s: %w", path, err)
	}
}

// encodeKey returns key as a PKCS #8 "PRIVATE KEY" PEM block.
func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// encodeCert returns der as a "CERTIFICATE" PEM block.
func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// parseCertsPEM returns every CERTIFICATE block of data, in order, and
// ignores other blocks.
func parseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block found")
	}
	return certs, nil
}

// parseKeyPEM returns the first private key of data: PKCS #8 ("PRIVATE KEY"),
// SEC 1 ("EC PRIVATE KEY") or PKCS #1 ("RSA PRIVATE KEY"). Other blocks, such
// as the "EC PARAMETERS" that openssl ecparam writes first, are skipped.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no private key PEM block found")
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
			return nil, errors.New("the private key is encrypted; give an unencrypted key")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s block: %w", block.Type, err)
		}
		switch k := key.(type) {
		case *ecdsa.PrivateKey:
			return k, nil
		case *rsa.PrivateKey:
			return k, nil
		case ed25519.PrivateKey:
			return k, nil
		default:
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
	}
}

// keyMatches reports whether priv is the private key of cert.
func keyMatches(cert *x509.Certificate, priv crypto.Signer) bool {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(priv.Public())
}

// readCertAndKey reads and parses a certificate file (leaf first) and its
// key file, and checks that the key belongs to the leaf.
func readCertAndKey(certFile, keyFile string) ([]*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certFile) // #nosec G304 -- the operator names this file (--tls-cert) or it is under the data directory
	if err != nil {
		return nil, nil, fmt.Errorf("reading certificate %s: %w", certFile, err)
	}
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing certificate %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile) // #nosec G304 -- the operator names this file (--tls-key) or it is under the data directory
	if err != nil {
		return nil, nil, fmt.Errorf("reading private key %s: %w", keyFile, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing private key %s: %w", keyFile, err)
	}
	if !keyMatches(certs[0], key) {
		return nil, nil, fmt.Errorf("private key %s does not match certificate %s", keyFile, certFile)
	}
	return certs, key, nil
}

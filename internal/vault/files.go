package vault

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// readLimited reads a small file whole, refusing one larger than limit
// bytes, and returns what Stat said about the very file it read.
func readLimited(path string, limit int64) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path) // #nosec G304 -- the path is the operator's data dir or passphrase file
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(b)) > limit {
		return nil, nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, fi, nil
}

// readPrivate reads a key or passphrase file, refusing one that other users
// may read or write, as ssh does for private keys.
func readPrivate(path, what string, limit int64) ([]byte, error) {
	b, fi, err := readLimited(path, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the %s: %w", what, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		clear(b)
		return nil, fmt.Errorf("the %s %s is accessible to other users (mode %04o); run chmod 600 %s", what, path, perm, path)
	}
	return b, nil
}

// readKeyFile reads a key file: exactly keyLen bytes.
func readKeyFile(path string) ([]byte, error) {
	b, err := readPrivate(path, "key file", 1024)
	if err != nil {
		return nil, err
	}
	if len(b) != keyLen {
		clear(b)
		return nil, fmt.Errorf("the key file %s holds %d bytes, not %d: it is not a Sonde vault key", path, len(b), keyLen)
	}
	return b, nil
}

// minPassphraseLen is the shortest passphrase accepted. Argon2id slows
// guessing down; it cannot make a four-letter word safe.
const minPassphraseLen = 8

// readPassphrase reads a passphrase file, dropping one trailing line break.
func readPassphrase(path string) ([]byte, error) {
	b, err := readPrivate(path, "passphrase file", 4096)
	if err != nil {
		return nil, err
	}
	if bytes.HasSuffix(b, []byte("\r\n")) {
		b = b[:len(b)-2]
	} else if bytes.HasSuffix(b, []byte("\n")) {
		b = b[:len(b)-1]
	}
	if len(b) < minPassphraseLen {
		clear(b)
		return nil, fmt.Errorf("the passphrase in %s is shorter than %d characters", path, minPassphraseLen)
	}
	return b, nil
}

// writeAtomic replaces path with data: a temporary file (0600) in the same
// directory, written and synced, renamed over path, then the directory
// synced, so a crash leaves either the old file or the new one.
func writeAtomic(path string, data []byte) (err error) {
	dir, name := filepath.Split(path)
	f, err := os.CreateTemp(dir, "."+name+"-*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := matchDirOwner(f, dir); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir) // #nosec G304 -- the operator's data dir
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// ensureDir creates the data dir (0700) if it does not exist.
func ensureDir(dir string, create bool) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return fmt.Errorf("data dir %s is not a directory", dir)
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist) && create:
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("creating data dir: %w", err)
		}
		return nil
	default:
		return fmt.Errorf("data dir: %w", err)
	}
}

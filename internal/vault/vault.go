// Package vault keeps the appliance's credentials (SNMP communities and
// passphrases, HTTP passwords, bearer tokens) sealed on the appliance. The
// hub never receives them: checks refer to credentials by name.
//
// A random per-appliance data key seals the entries; the data key is in turn
// sealed by a key-encryption key (KEK): either a random key file created on
// first start, or a passphrase stretched with Argon2id. The data key also
// seals other data the appliance keeps on disk (the disk buffer, the last
// known configuration) through DataSealer, under keys derived per purpose.
//
// The cipher is XChaCha20-Poly1305. Its 192-bit nonces can be drawn at
// random for any number of messages under one key, which matters because the
// data key lives as long as the appliance and DataSealer users seal many
// records with it (AES-GCM's 96-bit random nonces allow about 2^32 messages
// per key). It also runs in constant time in software, on appliances
// without AES instructions.
package vault

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/sonde-monitoring/sonde/internal/probe"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

// File names inside the data dir.
const (
	// FileName is the sealed vault.
	FileName = "vault"
	// KeyFileName is the key-encryption key file, when no passphrase is used.
	KeyFileName = "key"
	// newKeyFileName holds a new key file during Rekey until the vault
	// sealed with it is in place.
	newKeyFileName = "key.new"
	lockFileName   = "vault.lock"
)

// DefaultDir is the appliance's default data dir.
const DefaultDir = "/var/lib/sonde-appliance"

// ErrCannotOpen is wrapped when authentication of a vault fails: the key file
// or passphrase is not the one the vault was sealed with, or the file was
// altered. The two cannot be told apart, by design.
var ErrCannotOpen = errors.New("cannot be opened")

// ErrMalformed is wrapped when a vault file is not a well-formed vault
// (truncated, wrong magic, unknown version, bytes appended).
var ErrMalformed = errors.New("not a valid vault file")

// Options say how to open a vault.
type Options struct {
	// PassphraseFile, when set, names a file (mode 0600 or stricter) whose
	// content, less one trailing line break, is the passphrase that seals
	// the data key through Argon2id. When empty, the key file in the data
	// dir seals it (created on first start).
	PassphraseFile string
	// MustExist makes Open fail with an error wrapping fs.ErrNotExist
	// instead of creating a vault (and key file) when none exists.
	MustExist bool
	// Logger receives warnings (never a value). Nil discards them.
	Logger *slog.Logger

	// kdf overrides the Argon2id parameters of a new passphrase vault;
	// tests set it to keep fast.
	kdf *kdfParams
	// now overrides the clock for the created and rotated dates.
	now func() time.Time
}

// EntryInfo describes one credential without its value.
type EntryInfo struct {
	Name     string
	Kind     string
	Username string
	// Hosts are the host patterns the credential may be sent to, in
	// canonical form; none means it is sent nowhere.
	Hosts   []string
	Created time.Time
	// Rotated is when the value was last set (equal to Created until the
	// first rotation).
	Rotated time.Time
}

// Vault is an opened vault. It is safe for concurrent use, and notices
// changes another process (the CLI) makes to the file: every lookup checks
// the file's identity, size and modification time with one stat and reloads
// it when they changed.
type Vault struct {
	dir, path string
	log       *slog.Logger
	now       func() time.Time
	kdf       kdfParams

	// writeMu serialises changes within this process; lockDir serialises
	// them between processes.
	writeMu sync.Mutex
	// kek and dataKey never change after Open, except kek in Rekey (under
	// writeMu, which every reader of kek holds).
	kek     []byte
	kind    byte
	dataKey []byte

	// reloadMu lets one goroutine reload while the others keep reading.
	reloadMu sync.Mutex

	mu       sync.RWMutex
	entries  map[string]entry
	loaded   fs.FileInfo // the file entries came from
	failed   fs.FileInfo // the last file that could not be loaded
	failErr  error
	lastWarn string
}

// Vault satisfies probe.Credentials, so every probe can look credentials up.
var _ probe.Credentials = (*Vault)(nil)

// Open opens the vault in dir. On first start (no vault file) it creates
// dir (0700), a key file (0600) unless opts.PassphraseFile is set, a random
// data key, and an empty vault, unless opts.MustExist is set. A vault that
// cannot be authenticated is refused and left untouched.
func Open(dir string, opts Options) (*Vault, error) {
	v := &Vault{
		dir:  dir,
		path: filepath.Join(dir, FileName),
		log:  opts.Logger,
		now:  opts.now,
		kdf:  defaultKDF,
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if opts.kdf != nil {
		v.kdf = *opts.kdf
	}
	if err := ensureDir(dir, !opts.MustExist); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("vault %s does not exist: %w", v.path, err)
		}
		return nil, err
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o022 != 0 {
		v.log.Warn("the vault's data dir is writable by other users; run chmod 700 on it", "dir", dir, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}

	b, fi, err := readLimited(v.path, maxFileSize)
	switch {
	case err == nil:
		if err := v.load(b, fi, opts); err != nil {
			return nil, err
		}
		return v, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("opening vault %s: %w", v.path, err)
	case opts.MustExist:
		return nil, fmt.Errorf("vault %s does not exist (it is created by the first \"vault set\" or the appliance's first start): %w", v.path, err)
	}
	return v, v.create(opts)
}

// load opens an existing vault file with the KEK opts name.
func (v *Vault) load(b []byte, fi fs.FileInfo, opts Options) error {
	p, err := parse(b)
	if err != nil {
		return v.malformedErr(err)
	}
	switch {
	case p.header.kind == kindKeyFile && opts.PassphraseFile != "":
		return fmt.Errorf("vault %s is sealed with the key file %s, not a passphrase: open it without a passphrase file", v.path, v.keyPath())
	case p.header.kind == kindPassphrase && opts.PassphraseFile == "":
		return fmt.Errorf("vault %s is sealed with a passphrase: give the passphrase file", v.path)
	}

	var kek []byte
	if p.header.kind == kindPassphrase {
		pass, err := readPassphrase(opts.PassphraseFile)
		if err != nil {
			return fmt.Errorf("opening vault %s: %w", v.path, err)
		}
		kek = p.header.kdf.derive(pass, p.header.salt)
		clear(pass)
	} else {
		kek, err = readKeyFile(v.keyPath())
		if errors.Is(err, fs.ErrNotExist) {
			if _, nerr := os.Stat(v.newKeyPath()); nerr != nil {
				return fmt.Errorf("opening vault %s: the key file %s is missing; restore it from a backup (without it the vault cannot be opened)", v.path, v.keyPath())
			}
			kek = nil // a Rekey was interrupted: recoverKeyFile below
		} else if err != nil {
			return fmt.Errorf("opening vault %s: %w", v.path, err)
		}
	}

	var dk []byte
	var entries map[string]entry
	err = errAuth
	if kek != nil {
		dk, entries, err = unseal(p, kek)
	}
	if errors.Is(err, errAuth) && p.header.kind == kindKeyFile {
		kek, dk, entries, err = v.recoverKeyFile(p)
	}
	switch {
	case errors.Is(err, errAuth):
		return v.authErr(p.header.kind)
	case errors.Is(err, errMalformed):
		return v.malformedErr(err)
	case err != nil:
		return err
	}
	v.kek, v.kind, v.dataKey = kek, p.header.kind, dk
	v.entries, v.loaded = entries, fi
	if p.header.kind == kindKeyFile {
		v.removeStaleNewKey()
	}
	return nil
}

// recoverKeyFile finishes a Rekey to a new key file that was interrupted
// after the vault sealed with key.new was in place but before key.new was
// renamed to key. It returns errAuth when key.new does not open the vault
// either.
func (v *Vault) recoverKeyFile(p parsed) (kek, dk []byte, entries map[string]entry, err error) {
	kek, err = readKeyFile(v.newKeyPath())
	if err != nil {
		return nil, nil, nil, errAuth
	}
	dk, entries, err = unseal(p, kek)
	if err != nil {
		return nil, nil, nil, err
	}
	unlock, err := lockDir(v.dir)
	if err != nil {
		return nil, nil, nil, err
	}
	defer unlock()
	if err := os.Rename(v.newKeyPath(), v.keyPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, fmt.Errorf("opening vault %s: finishing an interrupted rekey: %w", v.path, err)
	}
	if err := syncDir(v.dir); err != nil {
		return nil, nil, nil, err
	}
	v.log.Warn("finished an interrupted vault rekey: the new key file is now in place", "key_file", v.keyPath())
	return kek, dk, entries, nil
}

// removeStaleNewKey removes a key.new left by a Rekey that was interrupted
// before its vault was written (the current key file opened the vault). It
// holds the lock, so it never races a Rekey in progress.
func (v *Vault) removeStaleNewKey() {
	if _, err := os.Stat(v.newKeyPath()); err != nil {
		return
	}
	unlock, err := lockDir(v.dir)
	if err != nil {
		return
	}
	defer unlock()
	b, _, err := readLimited(v.path, maxFileSize)
	if err != nil {
		return
	}
	p, err := parse(b)
	if err != nil || p.header.kind != kindKeyFile {
		return
	}
	if _, err := openDataKey(p, v.kek); err != nil {
		return // sealed with key.new after all: leave it to the next Open
	}
	if err := os.Remove(v.newKeyPath()); err == nil {
		v.log.Warn("removed the key file of an interrupted vault rekey", "file", v.newKeyPath())
	}
}

// create makes a new vault, under the lock so two first starts cannot race.
func (v *Vault) create(opts Options) error {
	unlock, err := lockDir(v.dir)
	if err != nil {
		return err
	}
	// Another process may have created it while this one waited. load
	// may take the lock itself, so release it first.
	if b, fi, err := readLimited(v.path, maxFileSize); err == nil {
		unlock()
		return v.load(b, fi, opts)
	} else if !errors.Is(err, fs.ErrNotExist) {
		unlock()
		return fmt.Errorf("opening vault %s: %w", v.path, err)
	}
	defer unlock()

	var h header
	var kek []byte
	if opts.PassphraseFile != "" {
		h, kek, err = v.passphraseKEK(opts.PassphraseFile, v.kdf)
		if err != nil {
			return fmt.Errorf("creating vault %s: %w", v.path, err)
		}
	} else {
		h = header{kind: kindKeyFile}
		kek, err = readKeyFile(v.keyPath())
		switch {
		case errors.Is(err, fs.ErrNotExist):
			kek = randomKey()
			if err := createKeyFile(v.keyPath(), kek); err != nil {
				return fmt.Errorf("creating vault %s: %w", v.path, err)
			}
			v.log.Info("created a vault key file; back it up: without it the vault cannot be opened", "key_file", v.keyPath())
		case err != nil:
			return fmt.Errorf("creating vault %s: %w", v.path, err)
		}
	}
	dk := randomKey()
	raw := h.marshal()
	entries := map[string]entry{}
	file, err := marshalFile(raw, sealDataKey(raw, kek, dk), dk, entries)
	if err != nil {
		return err
	}
	if err := writeAtomic(v.path, file); err != nil {
		return fmt.Errorf("creating vault: %w", err)
	}
	fi, err := os.Stat(v.path)
	if err != nil {
		return fmt.Errorf("creating vault: %w", err)
	}
	v.kek, v.kind, v.dataKey = kek, h.kind, dk
	v.entries, v.loaded = entries, fi
	return nil
}

// createKeyFile writes a new key file, refusing to replace one.
func createKeyFile(path string, key []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // #nosec G304 -- the operator's data dir
	if err != nil {
		return fmt.Errorf("creating the key file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	if err := matchDirOwner(f, filepath.Dir(path)); err != nil {
		return fmt.Errorf("creating the key file: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		return fmt.Errorf("creating the key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("creating the key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("creating the key file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// passphraseKEK derives a new KEK from a passphrase file with a fresh salt.
func (v *Vault) passphraseKEK(file string, params kdfParams) (header, []byte, error) {
	pass, err := readPassphrase(file)
	if err != nil {
		return header{}, nil, err
	}
	defer clear(pass)
	h := header{kind: kindPassphrase, kdf: params, salt: randomKey()[:saltLen]}
	return h, params.derive(pass, h.salt), nil
}

func (v *Vault) keyPath() string    { return filepath.Join(v.dir, KeyFileName) }
func (v *Vault) newKeyPath() string { return filepath.Join(v.dir, newKeyFileName) }

func (v *Vault) authErr(kind byte) error {
	what := "key file " + v.keyPath() + " (wrong key"
	if kind == kindPassphrase {
		what = "passphrase (wrong passphrase"
	}
	return fmt.Errorf("vault %s: %w with this %s, or the file was altered); nothing was changed", v.path, ErrCannotOpen, what)
}

func (v *Vault) malformedErr(err error) error {
	return fmt.Errorf("vault %s: %w (%v); restore it from a backup; nothing was changed", v.path, ErrMalformed, err)
}

// String describes the vault by its path; it never shows keys or values.
func (v *Vault) String() string { return "vault " + v.path }

// GoString is String, so %#v shows no key either.
func (v *Vault) GoString() string { return v.String() }

// LogValue makes slog print String.
func (v *Vault) LogValue() slog.Value { return slog.StringValue(v.String()) }

// Path returns the vault file's path.
func (v *Vault) Path() string { return v.path }

// UsesPassphrase reports whether a passphrase (rather than a key file) seals
// the data key.
func (v *Vault) UsesPassphrase() bool {
	v.writeMu.Lock()
	defer v.writeMu.Unlock()
	return v.kind == kindPassphrase
}

// Credential returns the credential called name, satisfying
// probe.Credentials. An unknown name returns an error wrapping
// probe.ErrNoCredential.
func (v *Vault) Credential(name string) (probe.Credential, error) {
	_ = v.Reload() // a failure is logged, and the entries loaded before are kept
	v.mu.RLock()
	e, ok := v.entries[name]
	v.mu.RUnlock()
	if !ok {
		return probe.Credential{}, fmt.Errorf("credential %q: %w", safeQuote(name), probe.ErrNoCredential)
	}
	return probe.Credential{Name: e.Name, Kind: e.Kind, Username: e.Username, Secret: e.secret, Hosts: slices.Clone(e.Hosts)}, nil
}

// List describes every credential, sorted by name, without values.
func (v *Vault) List() []EntryInfo {
	_ = v.Reload()
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]EntryInfo, 0, len(v.entries))
	for _, e := range v.entries {
		info := e.EntryInfo
		info.Hosts = slices.Clone(info.Hosts)
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Reload rereads the vault file if it changed since it was last read (one
// stat when it did not: a change is a different file, size or modification
// time, which every writer of this package produces by renaming a new file
// into place). The new entries must open with this vault's data
// key, which proves a holder of the data key wrote them; this also follows a
// Rekey made by another process. When the file cannot be read or opened,
// the entries loaded before are kept, a warning is logged once per change,
// and the error is returned.
func (v *Vault) Reload() error {
	fi, err := os.Stat(v.path)
	if err != nil {
		return v.reloadFailed(nil, fmt.Errorf("reloading vault %s: %w", v.path, err))
	}
	if done, err := v.unchanged(fi); done {
		return err
	}
	v.reloadMu.Lock()
	defer v.reloadMu.Unlock()
	b, fi, err := readLimited(v.path, maxFileSize)
	if err != nil {
		return v.reloadFailed(nil, fmt.Errorf("reloading vault %s: %w", v.path, err))
	}
	if done, err := v.unchanged(fi); done {
		return err
	}
	p, err := parse(b)
	if err != nil {
		return v.reloadFailed(fi, v.malformedErr(err))
	}
	entries, err := openEntries(p, v.dataKey)
	if errors.Is(err, errAuth) {
		return v.reloadFailed(fi, fmt.Errorf("vault %s: %w with this appliance's data key (the file was altered, or replaced by another vault); keeping the credentials loaded before", v.path, ErrCannotOpen))
	} else if err != nil {
		return v.reloadFailed(fi, v.malformedErr(err))
	}
	v.mu.Lock()
	v.entries, v.loaded, v.failed, v.failErr, v.lastWarn = entries, fi, nil, nil, ""
	v.mu.Unlock()
	return nil
}

// unchanged reports whether fi is the file already loaded (or already found
// unusable, with that error).
func (v *Vault) unchanged(fi fs.FileInfo) (bool, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	switch {
	case sameFile(fi, v.loaded):
		return true, nil
	case sameFile(fi, v.failed):
		return true, v.failErr
	}
	return false, nil
}

func sameFile(a, b fs.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

func (v *Vault) reloadFailed(fi fs.FileInfo, err error) error {
	v.mu.Lock()
	v.failed, v.failErr = fi, err
	warn := err.Error() != v.lastWarn
	v.lastWarn = err.Error()
	v.mu.Unlock()
	if warn {
		v.log.Warn("cannot reload the vault; the credentials loaded before stay in use", "err", err)
	}
	return err
}

// Set stores a credential, replacing one of the same name (whose created
// date is kept; its rotated date becomes now). hosts, when given, are the
// hosts it may be sent to (see ValidateHosts); when none are given, a
// replaced entry keeps its hosts and a new one has none, so that no probe
// uses it until SetHosts gives it some.
func (v *Vault) Set(name, username string, value secret.Secret, kind string, hosts ...string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := validateKind(kind); err != nil {
		return err
	}
	if err := validateUsername(username); err != nil {
		return err
	}
	if err := validateSecret(value.Reveal()); err != nil {
		return err
	}
	canonical, err := ValidateHosts(hosts)
	if err != nil {
		return err
	}
	return v.update(func(entries map[string]entry) error {
		now := v.now().UTC()
		e := entry{EntryInfo: EntryInfo{Name: name, Kind: kind, Username: username, Hosts: canonical, Created: now, Rotated: now}, secret: value}
		if old, ok := entries[name]; ok {
			e.Created = old.Created
			if len(hosts) == 0 {
				e.Hosts = old.Hosts
			}
		}
		entries[name] = e
		return nil
	})
}

// Rotate gives an existing credential a new value and records when.
func (v *Vault) Rotate(name string, value secret.Secret) error {
	if err := validateSecret(value.Reveal()); err != nil {
		return err
	}
	return v.update(func(entries map[string]entry) error {
		e, ok := entries[name]
		if !ok {
			return fmt.Errorf("rotating credential %q: %w", safeQuote(name), probe.ErrNoCredential)
		}
		e.secret, e.Rotated = value, v.now().UTC()
		entries[name] = e
		return nil
	})
}

// SetHosts replaces the hosts an existing credential may be sent to (see
// ValidateHosts); no hosts means it is sent nowhere. Its value and dates
// stay as they are.
func (v *Vault) SetHosts(name string, hosts []string) error {
	canonical, err := ValidateHosts(hosts)
	if err != nil {
		return err
	}
	return v.update(func(entries map[string]entry) error {
		e, ok := entries[name]
		if !ok {
			return fmt.Errorf("setting the hosts of credential %q: %w", safeQuote(name), probe.ErrNoCredential)
		}
		e.Hosts = canonical
		entries[name] = e
		return nil
	})
}

// Remove deletes a credential.
func (v *Vault) Remove(name string) error {
	return v.update(func(entries map[string]entry) error {
		if _, ok := entries[name]; !ok {
			return fmt.Errorf("removing credential %q: %w", safeQuote(name), probe.ErrNoCredential)
		}
		delete(entries, name)
		return nil
	})
}

// current is the vault file as a writer found it under the lock.
type current struct {
	parsed  parsed
	entries map[string]entry
}

// readCurrent rereads the file for a change. Unlike Reload it insists on
// the KEK: a writer must be able to reseal the data key.
func (v *Vault) readCurrent() (current, error) {
	b, _, err := readLimited(v.path, maxFileSize)
	if err != nil {
		return current{}, fmt.Errorf("opening vault %s: %w", v.path, err)
	}
	p, err := parse(b)
	if err != nil {
		return current{}, v.malformedErr(err)
	}
	dk, err := openDataKey(p, v.kek)
	if err != nil {
		if _, eerr := openEntries(p, v.dataKey); eerr == nil {
			return current{}, fmt.Errorf("vault %s was rekeyed by another process since it was opened; open it again with the new key or passphrase; nothing was changed", v.path)
		}
		return current{}, v.authErr(p.header.kind)
	}
	if !equalKeys(dk, v.dataKey) {
		return current{}, fmt.Errorf("vault %s was replaced by another vault since it was opened; open it again; nothing was changed", v.path)
	}
	entries, err := openEntries(p, dk)
	switch {
	case errors.Is(err, errAuth):
		return current{}, v.authErr(p.header.kind)
	case err != nil:
		return current{}, v.malformedErr(err)
	}
	return current{parsed: p, entries: entries}, nil
}

// update applies change to the entries as they are on disk now, and writes
// the result. If the file on disk cannot be opened nothing is written.
func (v *Vault) update(change func(map[string]entry) error) error {
	v.writeMu.Lock()
	defer v.writeMu.Unlock()
	unlock, err := lockDir(v.dir)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := v.readCurrent()
	if err != nil {
		return err
	}
	if err := change(cur.entries); err != nil {
		return err
	}
	file, err := marshalFile(cur.parsed.rawHeader, cur.parsed.sealedKey, v.dataKey, cur.entries)
	if err != nil {
		return err
	}
	return v.commit(file, cur.entries)
}

func (v *Vault) commit(file []byte, entries map[string]entry) error {
	if err := writeAtomic(v.path, file); err != nil {
		return err
	}
	fi, err := os.Stat(v.path)
	if err != nil {
		return fmt.Errorf("writing vault: %w", err)
	}
	v.mu.Lock()
	v.entries, v.loaded, v.failed, v.failErr, v.lastWarn = entries, fi, nil, nil, ""
	v.mu.Unlock()
	return nil
}

// Rekey seals the vault under a new key-encryption key: a fresh passphrase
// salt when to.PassphraseFile is set (the file may hold the same or a new
// passphrase), else a newly generated key file; the other fields of to are
// ignored. Switching from a key file to a passphrase removes the old key
// file. A new key file is written as key.new first and renamed to key once
// the vault sealed with it is in place; Open finishes the rename if the
// process died in between.
//
// The data key stays the same, on purpose: the disk buffer and the sealed
// configuration are sealed with keys derived from it (DataSealer) and must
// stay readable. A leaked key file or passphrase is dealt with by Rekey as
// long as the vault file itself did not leak with it; if both leaked, remove
// the vault, the disk buffer and the sealed configuration, and set the
// credentials again (rotating them at their source).
//
// A running appliance keeps reading the vault after another process rekeys
// it, since Reload only needs the data key; it must be given the new key or
// passphrase before its next start.
func (v *Vault) Rekey(to Options) error {
	v.writeMu.Lock()
	defer v.writeMu.Unlock()
	unlock, err := lockDir(v.dir)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := v.readCurrent()
	if err != nil {
		return err
	}

	var h header
	var kek []byte
	if to.PassphraseFile != "" {
		params := defaultKDF
		if to.kdf != nil {
			params = *to.kdf
		}
		h, kek, err = v.passphraseKEK(to.PassphraseFile, params)
		if err != nil {
			return fmt.Errorf("rekeying vault %s: %w", v.path, err)
		}
	} else {
		h, kek = header{kind: kindKeyFile}, randomKey()
		// key.new first: should the process die once the vault below is
		// in place, Open finds the key that opens it (recoverKeyFile).
		if err := writeAtomic(v.newKeyPath(), kek); err != nil {
			return fmt.Errorf("rekeying vault %s: %w", v.path, err)
		}
	}
	raw := h.marshal()
	file, err := marshalFile(raw, sealDataKey(raw, kek, v.dataKey), v.dataKey, cur.entries)
	if err == nil {
		err = v.commit(file, cur.entries)
	}
	if err != nil {
		if h.kind == kindKeyFile {
			os.Remove(v.newKeyPath())
		}
		return fmt.Errorf("rekeying vault %s: %w", v.path, err)
	}
	oldKind := v.kind
	v.kek, v.kind = kek, h.kind
	switch {
	case h.kind == kindKeyFile:
		if err := os.Rename(v.newKeyPath(), v.keyPath()); err != nil {
			return fmt.Errorf("rekeying vault %s: the vault is sealed with %s but renaming it to %s failed (rename it by hand): %w", v.path, v.newKeyPath(), v.keyPath(), err)
		}
	case oldKind == kindKeyFile:
		if err := os.Remove(v.keyPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rekeying vault %s: the vault is now sealed with the passphrase, but removing the old key file failed: %w", v.path, err)
		}
	}
	return syncDir(v.dir)
}

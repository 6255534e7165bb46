package vault

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sonde-monitoring/sonde/internal/probe"
	"github.com/sonde-monitoring/sonde/internal/secret"
)

// fastKDF keeps passphrase tests fast; the header records whatever
// parameters sealed the vault.
var fastKDF = &kdfParams{time: 1, memoryKiB: 64, threads: 1}

// syncBuffer is a bytes.Buffer safe for a logger shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeClock hands out times one minute apart.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Minute)
	return c.t
}

func writePassphrase(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func keyOpts() Options { return Options{} }

func passOpts(file string) Options { return Options{PassphraseFile: file, kdf: fastKDF} }

func mustOpen(t *testing.T, dir string, opts Options) *Vault {
	t.Helper()
	v, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return v
}

func mustSet(t *testing.T, v *Vault, name, user, value, kind string) {
	t.Helper()
	if err := v.Set(name, user, secret.New(value), kind); err != nil {
		t.Fatalf("Set(%s): %v", name, err)
	}
}

// manyHosts returns n distinct host patterns.
func manyHosts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.%d.0.0/16", i)
	}
	return out
}

// snapshot returns every file in dir with its content and mode.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[d.Name()] = fmt.Sprintf("%v %x", fi.Mode(), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameSnapshot(t *testing.T, before, after map[string]string) {
	t.Helper()
	delete(before, lockFileName) // the lock file carries no data
	delete(after, lockFileName)
	if len(before) != len(after) {
		t.Fatalf("files changed: before %d, after %d", len(before), len(after))
	}
	for name, b := range before {
		if after[name] != b {
			t.Errorf("%s changed", name)
		}
	}
}

func TestOpenFirstStart(t *testing.T) {
	tests := []struct {
		name     string
		opts     func(t *testing.T) Options
		wantKey  bool
		wantKind byte
	}{
		{"key file", func(*testing.T) Options { return keyOpts() }, true, kindKeyFile},
		{"passphrase", func(t *testing.T) Options { return passOpts(writePassphrase(t, "correct horse battery\n")) }, false, kindPassphrase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data", "appliance")
			opts := tt.opts(t)
			v := mustOpen(t, dir, opts)
			if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("data dir: %v, %v; want mode 0700", fi.Mode(), err)
			}
			fi, err := os.Stat(filepath.Join(dir, FileName))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("vault file: %v; want mode 0600", err)
			}
			key, err := os.ReadFile(filepath.Join(dir, KeyFileName))
			if tt.wantKey {
				kfi, _ := os.Stat(filepath.Join(dir, KeyFileName))
				if err != nil || len(key) != keyLen || kfi.Mode().Perm() != 0o600 {
					t.Errorf("key file: %d bytes, %v", len(key), err)
				}
			} else if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a passphrase vault created a key file: %v", err)
			}
			if v.UsesPassphrase() != (tt.wantKind == kindPassphrase) {
				t.Errorf("UsesPassphrase() = %v", v.UsesPassphrase())
			}
			if got := v.List(); len(got) != 0 {
				t.Errorf("new vault lists %v", got)
			}
			b, _ := os.ReadFile(v.Path())
			p, err := parse(b)
			if err != nil || p.header.kind != tt.wantKind {
				t.Fatalf("parse: kind %d, %v", p.header.kind, err)
			}
			if tt.wantKind == kindPassphrase && p.header.kdf != *fastKDF {
				t.Errorf("header records %+v, want %+v", p.header.kdf, *fastKDF)
			}

			// A second start reuses the same data key.
			sealed := v.DataSealer("buffer").Seal([]byte("record"), nil)
			v2 := mustOpen(t, dir, opts)
			if pt, err := v2.DataSealer("buffer").Open(sealed, nil); err != nil || string(pt) != "record" {
				t.Errorf("reopened vault's sealer: %q, %v", pt, err)
			}
		})
	}
}

func TestOpenMustExist(t *testing.T) {
	for _, dir := range []string{filepath.Join(t.TempDir(), "missing"), t.TempDir()} {
		_, err := Open(dir, Options{MustExist: true})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open(%s, MustExist) = %v, want fs.ErrNotExist", dir, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("MustExist created %v", entries)
		}
	}
}

func TestEntries(t *testing.T) {
	clock := newFakeClock()
	v := mustOpen(t, t.TempDir(), Options{now: clock.now})
	t0 := clock.t.Add(time.Minute)
	at := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }

	steps := []struct {
		desc    string
		do      func() error
		wantErr error
		want    []EntryInfo
	}{
		{"set a password", func() error { return v.Set("web-admin", "admin", secret.New("pw1"), KindPassword) }, nil,
			[]EntryInfo{{"web-admin", KindPassword, "admin", nil, at(0), at(0)}}},
		{"set a community", func() error { return v.Set("core.switches", "", secret.New("public2"), KindSNMPCommunity) }, nil,
			[]EntryInfo{{"core.switches", KindSNMPCommunity, "", nil, at(1), at(1)}, {"web-admin", KindPassword, "admin", nil, at(0), at(0)}}},
		{"rotate keeps created", func() error { return v.Rotate("web-admin", secret.New("pw2")) }, nil,
			[]EntryInfo{{"core.switches", KindSNMPCommunity, "", nil, at(1), at(1)}, {"web-admin", KindPassword, "admin", nil, at(0), at(2)}}},
		{"set again replaces, keeps created", func() error { return v.Set("web-admin", "root", secret.New("pw3"), KindToken) }, nil,
			[]EntryInfo{{"core.switches", KindSNMPCommunity, "", nil, at(1), at(1)}, {"web-admin", KindToken, "root", nil, at(0), at(3)}}},
		{"rotate unknown", func() error { return v.Rotate("nope", secret.New("x")) }, probe.ErrNoCredential, nil},
		{"remove unknown", func() error { return v.Remove("nope") }, probe.ErrNoCredential, nil},
		{"remove", func() error { return v.Remove("core.switches") }, nil,
			[]EntryInfo{{"web-admin", KindToken, "root", nil, at(0), at(3)}}},
		{"bad name", func() error { return v.Set("-x", "", secret.New("x"), KindPassword) }, ErrInvalid, nil},
		{"bad kind", func() error { return v.Set("x", "", secret.New("x"), "ssh-key") }, ErrInvalid, nil},
		{"empty kind", func() error { return v.Set("x", "", secret.New("x"), "") }, ErrInvalid, nil},
		{"empty secret", func() error { return v.Set("x", "", secret.New(""), KindPassword) }, ErrInvalid, nil},
		{"secret with a newline", func() error { return v.Set("x", "", secret.New("a\nb"), KindPassword) }, ErrInvalid, nil},
		{"secret too long", func() error { return v.Set("x", "", secret.New(strings.Repeat("a", MaxSecretLen+1)), KindPassword) }, ErrInvalid, nil},
		{"rotate to empty", func() error { return v.Rotate("web-admin", secret.New("")) }, ErrInvalid, nil},
		{"user name with a control character", func() error { return v.Set("x", "a\tb", secret.New("x"), KindPassword) }, ErrInvalid, nil},
		{"user name too long", func() error { return v.Set("x", strings.Repeat("u", MaxUsernameLen+1), secret.New("x"), KindPassword) }, ErrInvalid, nil},

		// Hosts: given with Set, replaced by SetHosts, kept by Rotate and
		// by a Set without hosts.
		{"set with hosts", func() error {
			return v.Set("sw", "", secret.New("c1"), KindSNMPCommunity, "10.0.0.0/8", "Switch1.Corp.", "*.corp", "10.0.0.0/8", "2001:DB8::/32")
		}, nil, []EntryInfo{
			{"sw", KindSNMPCommunity, "", []string{"10.0.0.0/8", "switch1.corp", "*.corp", "2001:db8::/32"}, at(4), at(4)},
			{"web-admin", KindToken, "root", nil, at(0), at(3)}}},
		{"rotate keeps the hosts", func() error { return v.Rotate("sw", secret.New("c2")) }, nil, []EntryInfo{
			{"sw", KindSNMPCommunity, "", []string{"10.0.0.0/8", "switch1.corp", "*.corp", "2001:db8::/32"}, at(4), at(5)},
			{"web-admin", KindToken, "root", nil, at(0), at(3)}}},
		{"set without hosts keeps them", func() error { return v.Set("sw", "", secret.New("c3"), KindSNMPCommunity) }, nil, []EntryInfo{
			{"sw", KindSNMPCommunity, "", []string{"10.0.0.0/8", "switch1.corp", "*.corp", "2001:db8::/32"}, at(4), at(6)},
			{"web-admin", KindToken, "root", nil, at(0), at(3)}}},
		{"set with hosts replaces them", func() error { return v.Set("sw", "", secret.New("c4"), KindSNMPCommunity, "192.0.2.7") }, nil, []EntryInfo{
			{"sw", KindSNMPCommunity, "", []string{"192.0.2.7"}, at(4), at(7)},
			{"web-admin", KindToken, "root", nil, at(0), at(3)}}},
		{"SetHosts", func() error { return v.SetHosts("web-admin", []string{"web.corp", "192.0.2.0/24"}) }, nil, []EntryInfo{
			{"sw", KindSNMPCommunity, "", []string{"192.0.2.7"}, at(4), at(7)},
			{"web-admin", KindToken, "root", []string{"web.corp", "192.0.2.0/24"}, at(0), at(3)}}},
		{"SetHosts clears", func() error { return v.SetHosts("sw", nil) }, nil, []EntryInfo{
			{"sw", KindSNMPCommunity, "", nil, at(4), at(7)},
			{"web-admin", KindToken, "root", []string{"web.corp", "192.0.2.0/24"}, at(0), at(3)}}},
		{"SetHosts of an unknown credential", func() error { return v.SetHosts("nope", []string{"10.0.0.1"}) }, probe.ErrNoCredential, nil},
		{"SetHosts with a bad pattern", func() error { return v.SetHosts("sw", []string{"10.0.0.1", "a b"}) }, ErrInvalid, nil},
		{"SetHosts with a host part in a CIDR", func() error { return v.SetHosts("sw", []string{"10.1.2.3/8"}) }, ErrInvalid, nil},
		{"SetHosts with a lone star", func() error { return v.SetHosts("sw", []string{"*"}) }, ErrInvalid, nil},
		{"SetHosts with a control character", func() error { return v.SetHosts("sw", []string{"a\x1b.corp"}) }, ErrInvalid, nil},
		{"SetHosts with too many", func() error { return v.SetHosts("sw", manyHosts(MaxHosts+1)) }, ErrInvalid, nil},
		{"Set with a bad pattern", func() error { return v.Set("sw", "", secret.New("c5"), KindSNMPCommunity, "10.0.0") }, ErrInvalid, nil},
		{"SetHosts with the most allowed", func() error { return v.SetHosts("sw", manyHosts(MaxHosts)) }, nil, []EntryInfo{
			{"sw", KindSNMPCommunity, "", manyHosts(MaxHosts), at(4), at(7)},
			{"web-admin", KindToken, "root", []string{"web.corp", "192.0.2.0/24"}, at(0), at(3)}}},
	}
	for _, st := range steps {
		err := st.do()
		if st.wantErr != nil {
			if !errors.Is(err, st.wantErr) {
				t.Fatalf("%s: err = %v, want %v", st.desc, err, st.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.desc, err)
		}
		got := v.List()
		if fmt.Sprint(got) != fmt.Sprint(st.want) {
			t.Fatalf("%s: List() =\n%v\nwant\n%v", st.desc, got, st.want)
		}
		// What is on disk matches.
		if fresh := mustOpen(t, v.dir, keyOpts()).List(); fmt.Sprint(fresh) != fmt.Sprint(st.want) {
			t.Fatalf("%s: reopened List() = %v", st.desc, fresh)
		}
	}
	c, err := v.Credential("web-admin")
	if err != nil || c.Name != "web-admin" || c.Kind != KindToken || c.Username != "root" || c.Secret.Reveal() != "pw3" ||
		fmt.Sprint(c.Hosts) != "[web.corp 192.0.2.0/24]" {
		t.Errorf("Credential = %+v, %v", c, err)
	}
	// What Credential and List return are copies.
	c.Hosts[0] = "evil.example"
	v.List()[1].Hosts[0] = "evil.example"
	if c, _ := v.Credential("web-admin"); c.Hosts[0] != "web.corp" {
		t.Errorf("changing a returned credential changed the vault: %q", c.Hosts)
	}
	if _, err := v.Credential("core.switches"); !errors.Is(err, probe.ErrNoCredential) {
		t.Errorf("removed credential: %v", err)
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"core-switch_01.v3", true},
		{"0abc", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"-flag", false},
		{".hidden", false},
		{"..", false},
		{"a/b", false},
		{"a b", false},
		{"naïve", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateName(%q) = %v, not ErrInvalid", tt.name, err)
		}
	}
}

// newVaultFile creates a vault with two entries and returns its dir, the
// options that open it and its bytes.
func newVaultFile(t *testing.T, passphrase bool) (string, Options, []byte) {
	t.Helper()
	dir := t.TempDir()
	opts := keyOpts()
	if passphrase {
		opts = passOpts(writePassphrase(t, "a long enough passphrase"))
	}
	v := mustOpen(t, dir, opts)
	mustSet(t, v, "a", "u", "value-a", KindPassword)
	mustSet(t, v, "b", "", "value-b", KindToken)
	b, err := os.ReadFile(v.Path())
	if err != nil {
		t.Fatal(err)
	}
	return dir, opts, b
}

// TestOpenRefusesAlteredVault flips a bit of every byte (every bit of the
// header and the sealed data key), truncates the file at many lengths and
// appends a byte: each is refused, with a clear message, and nothing in the
// data dir changes.
func TestOpenRefusesAlteredVault(t *testing.T) {
	for _, passphrase := range []bool{false, true} {
		t.Run(fmt.Sprintf("passphrase=%v", passphrase), func(t *testing.T) {
			t.Parallel()
			dir, opts, orig := newVaultFile(t, passphrase)
			path := filepath.Join(dir, FileName)
			var variants [][]byte
			framing := baseHeaderLen + sealedKeyLn + 4
			if passphrase {
				framing += kdfHeaderLen
			}
			for i := range orig {
				for bit := range 8 {
					if i < framing || bit == i%8 {
						b := bytes.Clone(orig)
						b[i] ^= 1 << bit
						variants = append(variants, b)
					}
				}
			}
			for n := range len(orig) {
				if n < framing+nonceLen+tagLen || n%37 == 0 || n == len(orig)-1 {
					variants = append(variants, orig[:n])
				}
			}
			variants = append(variants, append(bytes.Clone(orig), 0))
			for i, b := range variants {
				if q, err := parse(b); err == nil && q.header.kdf.memoryKiB > 1<<10 {
					continue // valid parameters, but too costly to try thousands of times
				}
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
				before := snapshot(t, dir)
				_, err := Open(dir, opts)
				if err == nil {
					t.Fatalf("variant %d opened", i)
				}
				if !errors.Is(err, ErrCannotOpen) && !errors.Is(err, ErrMalformed) {
					// A changed kind byte asks for the other kind of KEK.
					if !strings.Contains(err.Error(), "is sealed with") {
						t.Fatalf("variant %d: unexpected error %v", i, err)
					}
				}
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("variant %d: error does not name the file: %v", i, err)
				}
				sameSnapshot(t, before, snapshot(t, dir))
			}
		})
	}
}

func TestOpenRefusals(t *testing.T) {
	tests := []struct {
		name       string
		passphrase bool
		// break changes the setup and returns the options to open with.
		breakIt func(t *testing.T, dir string, opts Options) Options
		want    string
		is      error
	}{
		{"wrong key file", false, func(t *testing.T, dir string, opts Options) Options {
			writeFile(t, filepath.Join(dir, KeyFileName), randomKey(), 0o600)
			return opts
		}, "cannot be opened with this key file " + "%DIR%/key (wrong key, or the file was altered)", ErrCannotOpen},
		{"missing key file", false, func(t *testing.T, dir string, opts Options) Options {
			os.Remove(filepath.Join(dir, KeyFileName))
			return opts
		}, "key file %DIR%/key is missing; restore it from a backup", nil},
		{"key file readable by others", false, func(t *testing.T, dir string, opts Options) Options {
			os.Chmod(filepath.Join(dir, KeyFileName), 0o644)
			return opts
		}, "accessible to other users (mode 0644); run chmod 600", nil},
		{"short key file", false, func(t *testing.T, dir string, opts Options) Options {
			writeFile(t, filepath.Join(dir, KeyFileName), []byte("short"), 0o600)
			return opts
		}, "holds 5 bytes, not 32", nil},
		{"passphrase for a key-file vault", false, func(t *testing.T, dir string, opts Options) Options {
			return passOpts(writePassphrase(t, "a long enough passphrase"))
		}, "is sealed with the key file", nil},
		{"wrong passphrase", true, func(t *testing.T, dir string, opts Options) Options {
			return passOpts(writePassphrase(t, "another long passphrase"))
		}, "vault %DIR%/vault: cannot be opened with this passphrase (wrong passphrase, or the file was altered)", ErrCannotOpen},
		{"no passphrase for a passphrase vault", true, func(t *testing.T, dir string, opts Options) Options {
			return keyOpts()
		}, "is sealed with a passphrase: give the passphrase file", nil},
		{"passphrase file readable by others", true, func(t *testing.T, dir string, opts Options) Options {
			os.Chmod(opts.PassphraseFile, 0o640)
			return opts
		}, "accessible to other users (mode 0640)", nil},
		{"short passphrase", true, func(t *testing.T, dir string, opts Options) Options {
			return passOpts(writePassphrase(t, "short\n"))
		}, "shorter than 8 characters", nil},
		{"garbage", false, func(t *testing.T, dir string, opts Options) Options {
			writeFile(t, filepath.Join(dir, FileName), []byte("hello, world"), 0o600)
			return opts
		}, "not a valid vault file (malformed: not a Sonde vault (bad magic))", ErrMalformed},
		{"future version", false, func(t *testing.T, dir string, opts Options) Options {
			b, _ := os.ReadFile(filepath.Join(dir, FileName))
			b[len(magic)] = 9
			writeFile(t, filepath.Join(dir, FileName), b, 0o600)
			return opts
		}, "unsupported format version 9", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, opts, _ := newVaultFile(t, tt.passphrase)
			opts = tt.breakIt(t, dir, opts)
			before := snapshot(t, dir)
			_, err := Open(dir, opts)
			want := strings.ReplaceAll(tt.want, "%DIR%", dir)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Open = %v\nwant an error containing %q", err, want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Open = %v, want errors.Is %v", err, tt.is)
			}
			sameSnapshot(t, before, snapshot(t, dir))
		})
	}
}

// writeFile replaces path through a rename, as every writer of the vault
// does: an in-place rewrite of the same size within one clock tick would
// look unchanged to Reload's stat.
func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	tmp := path + ".test-tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestChangeRefusedAfterTampering alters the file under an open vault: every
// change is refused and leaves the file byte-identical, while lookups keep
// the credentials loaded before and log one warning.
func TestChangeRefusedAfterTampering(t *testing.T) {
	tests := []struct {
		name   string
		change func(v *Vault) error
	}{
		{"set", func(v *Vault) error { return v.Set("c", "", secret.New("value-c"), KindPassword) }},
		{"rotate", func(v *Vault) error { return v.Rotate("a", secret.New("value-a2")) }},
		{"remove", func(v *Vault) error { return v.Remove("a") }},
		{"rekey to a key file", func(v *Vault) error { return v.Rekey(keyOpts()) }},
		{"rekey to a passphrase", func(v *Vault) error {
			return v.Rekey(passOpts(writePassphrase(t, "a long enough passphrase")))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var logs syncBuffer
			v := mustOpen(t, dir, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			mustSet(t, v, "a", "u", "value-a", KindPassword)
			b, _ := os.ReadFile(v.Path())
			b[len(b)-5] ^= 0x40
			writeFile(t, v.Path(), b, 0o600)
			before := snapshot(t, dir)

			err := tt.change(v)
			if !errors.Is(err, ErrCannotOpen) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("change after tampering = %v", err)
			}
			sameSnapshot(t, before, snapshot(t, dir))

			for range 3 {
				c, err := v.Credential("a")
				if err != nil || c.Secret.Reveal() != "value-a" {
					t.Fatalf("Credential after tampering = %v, %v", c, err)
				}
			}
			if err := v.Reload(); !errors.Is(err, ErrCannotOpen) {
				t.Errorf("Reload = %v", err)
			}
			if n := strings.Count(logs.String(), "cannot reload the vault"); n != 1 {
				t.Errorf("%d reload warnings, want 1:\n%s", n, logs.String())
			}
		})
	}
}

func TestRekey(t *testing.T) {
	for _, from := range []string{"key file", "passphrase"} {
		for _, to := range []string{"key file", "passphrase"} {
			t.Run(from+" to "+to, func(t *testing.T) {
				dir, opts, _ := newVaultFile(t, from == "passphrase")
				v := mustOpen(t, dir, opts)
				oldKey, _ := os.ReadFile(filepath.Join(dir, KeyFileName))
				oldVault, _ := os.ReadFile(v.Path())
				listBefore := v.List()
				sealed := v.DataSealer("config").Seal([]byte("last config"), []byte("ad"))

				newOpts := keyOpts()
				if to == "passphrase" {
					newOpts = passOpts(writePassphrase(t, "the new passphrase, long"))
				}
				if err := v.Rekey(newOpts); err != nil {
					t.Fatalf("Rekey: %v", err)
				}
				if v.UsesPassphrase() != (to == "passphrase") {
					t.Errorf("UsesPassphrase() = %v", v.UsesPassphrase())
				}
				newKey, keyErr := os.ReadFile(filepath.Join(dir, KeyFileName))
				switch {
				case to == "passphrase" && !errors.Is(keyErr, fs.ErrNotExist):
					t.Errorf("the old key file is still there: %v", keyErr)
				case to == "key file" && (keyErr != nil || len(newKey) != keyLen || bytes.Equal(newKey, oldKey)):
					t.Errorf("key file after rekey: %d bytes, %v, same as before: %v", len(newKey), keyErr, bytes.Equal(newKey, oldKey))
				}
				if _, err := os.Stat(filepath.Join(dir, newKeyFileName)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("key.new left behind: %v", err)
				}

				v2 := mustOpen(t, dir, newOpts)
				if got := v2.List(); fmt.Sprint(got) != fmt.Sprint(listBefore) {
					t.Errorf("entries after rekey %v, want %v", got, listBefore)
				}
				if c, err := v2.Credential("a"); err != nil || c.Secret.Reveal() != "value-a" {
					t.Errorf("Credential after rekey: %v", err)
				}
				if pt, err := v2.DataSealer("config").Open(sealed, []byte("ad")); err != nil || string(pt) != "last config" {
					t.Errorf("data sealed before the rekey: %q, %v", pt, err)
				}
				// The rekeyed vault still takes changes.
				mustSet(t, v, "c", "", "value-c", KindPassword)
				mustSet(t, v2, "d", "", "value-d", KindPassword)

				// The old KEK no longer opens the new file.
				if from == to {
					old := t.TempDir()
					if from == "key file" {
						writeFile(t, filepath.Join(old, KeyFileName), oldKey, 0o600)
					}
					newVault, _ := os.ReadFile(v.Path())
					writeFile(t, filepath.Join(old, FileName), newVault, 0o600)
					if _, err := Open(old, opts); !errors.Is(err, ErrCannotOpen) {
						t.Errorf("old KEK opens the rekeyed vault: %v", err)
					}
					// And the old file was sealed differently.
					if bytes.Equal(oldVault[:len(oldVault)/2], newVault[:len(newVault)/2]) {
						t.Error("the rekeyed vault starts with the same bytes")
					}
				}
			})
		}
	}
}

func TestRekeyInterrupted(t *testing.T) {
	tests := []struct {
		name string
		// crash leaves dir as a crash at some point of a Rekey would.
		crash func(t *testing.T, dir string, oldKey, newKey []byte)
	}{
		{"after the vault, before renaming key.new", func(t *testing.T, dir string, oldKey, newKey []byte) {
			writeFile(t, filepath.Join(dir, newKeyFileName), newKey, 0o600)
			writeFile(t, filepath.Join(dir, KeyFileName), oldKey, 0o600)
		}},
		{"after the vault, key file gone", func(t *testing.T, dir string, oldKey, newKey []byte) {
			writeFile(t, filepath.Join(dir, newKeyFileName), newKey, 0o600)
			os.Remove(filepath.Join(dir, KeyFileName))
		}},
		{"before the vault was written", func(t *testing.T, dir string, oldKey, newKey []byte) {
			// Undo: the new key opens the vault, a stray key.new does not.
			writeFile(t, filepath.Join(dir, newKeyFileName), randomKey(), 0o600)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, opts, _ := newVaultFile(t, false)
			v := mustOpen(t, dir, opts)
			oldKey, _ := os.ReadFile(filepath.Join(dir, KeyFileName))
			if err := v.Rekey(keyOpts()); err != nil {
				t.Fatal(err)
			}
			newKey, _ := os.ReadFile(filepath.Join(dir, KeyFileName))
			tt.crash(t, dir, oldKey, newKey)

			v2 := mustOpen(t, dir, opts)
			if c, err := v2.Credential("b"); err != nil || c.Secret.Reveal() != "value-b" {
				t.Fatalf("Credential: %v", err)
			}
			if got, _ := os.ReadFile(filepath.Join(dir, KeyFileName)); !bytes.Equal(got, newKey) {
				t.Error("the key file is not the new key")
			}
			if _, err := os.Stat(filepath.Join(dir, newKeyFileName)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("key.new left behind: %v", err)
			}
		})
	}
}

// TestFollowsOtherProcess plays the running appliance (reader) and the CLI
// (writer) with two Vault values on one data dir.
func TestFollowsOtherProcess(t *testing.T) {
	dir := t.TempDir()
	appliance := mustOpen(t, dir, keyOpts())
	cli := mustOpen(t, dir, keyOpts())

	mustSet(t, cli, "a", "", "value-a", KindPassword)
	if c, err := appliance.Credential("a"); err != nil || c.Secret.Reveal() != "value-a" {
		t.Fatalf("appliance does not see a new credential: %v", err)
	}
	if err := cli.Rotate("a", secret.New("value-a2")); err != nil {
		t.Fatal(err)
	}
	if c, _ := appliance.Credential("a"); c.Secret.Reveal() != "value-a2" {
		t.Fatalf("appliance does not see a rotation")
	}

	// The appliance's own change is seen by the CLI, and neither loses
	// the other's.
	mustSet(t, appliance, "b", "", "value-b", KindPassword)
	mustSet(t, cli, "c", "", "value-c", KindPassword)
	if got := len(appliance.List()); got != 3 {
		t.Fatalf("appliance lists %d entries, want 3", got)
	}

	// After the CLI rekeys, the appliance keeps following through its data
	// key, but cannot write with its old key file.
	if err := cli.Rekey(passOpts(writePassphrase(t, "a long enough passphrase"))); err != nil {
		t.Fatal(err)
	}
	if err := cli.Remove("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := appliance.Credential("b"); !errors.Is(err, probe.ErrNoCredential) {
		t.Errorf("appliance after rekey and remove: %v", err)
	}
	before := snapshot(t, dir)
	err := appliance.Set("d", "", secret.New("value-d"), KindPassword)
	if err == nil || !strings.Contains(err.Error(), "was rekeyed by another process") {
		t.Errorf("write with the old KEK: %v", err)
	}
	sameSnapshot(t, before, snapshot(t, dir))

	// A vault replaced by an unrelated one is not followed.
	other := t.TempDir()
	mustSet(t, mustOpen(t, other, keyOpts()), "evil", "", "value-evil", KindPassword)
	b, _ := os.ReadFile(filepath.Join(other, FileName))
	writeFile(t, cli.Path(), b, 0o600)
	if err := appliance.Reload(); !errors.Is(err, ErrCannotOpen) {
		t.Errorf("Reload of a foreign vault = %v", err)
	}
	if _, err := appliance.Credential("evil"); !errors.Is(err, probe.ErrNoCredential) {
		t.Errorf("foreign vault's entry served: %v", err)
	}
	if _, err := appliance.Credential("a"); err != nil {
		t.Errorf("entries loaded before dropped: %v", err)
	}
}

// TestConcurrentUse runs lookups while two vaults on one dir write; run it
// with -race. No write may be lost.
func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	a := mustOpen(t, dir, keyOpts())
	b := mustOpen(t, dir, keyOpts())
	mustSet(t, a, "fixed", "", "value-fixed", KindPassword)

	const writes = 10
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 100)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c, err := a.Credential("fixed"); err != nil || c.Secret.Reveal() != "value-fixed" {
					errs <- fmt.Errorf("lookup: %v", err)
					return
				}
				a.List()
				a.DataSealer("buffer").Seal([]byte("x"), nil)
			}
		}()
	}
	var writers sync.WaitGroup
	for i, v := range []*Vault{a, b, a, b} {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for j := range writes {
				if err := v.Set(fmt.Sprintf("w%d-%d", i, j), "", secret.New("v"), KindPassword); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(mustOpen(t, dir, keyOpts()).List()); got != 1+4*writes {
		t.Errorf("%d entries, want %d", got, 1+4*writes)
	}
}

func TestDataSealer(t *testing.T) {
	v := mustOpen(t, t.TempDir(), keyOpts())
	other := mustOpen(t, t.TempDir(), keyOpts())
	buf := v.DataSealer("buffer")
	sealed := buf.Seal([]byte("check data"), []byte("seq 1"))
	if len(sealed) != len("check data")+buf.Overhead() {
		t.Errorf("sealed length %d", len(sealed))
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1

	tests := []struct {
		name   string
		sealer *Sealer
		in, ad []byte
		ok     bool
	}{
		{"same purpose and ad", v.DataSealer("buffer"), sealed, []byte("seq 1"), true},
		{"other ad", buf, sealed, []byte("seq 2"), false},
		{"other purpose", v.DataSealer("config"), sealed, []byte("seq 1"), false},
		{"other appliance", other.DataSealer("buffer"), sealed, []byte("seq 1"), false},
		{"tampered", buf, tampered, []byte("seq 1"), false},
		{"truncated", buf, sealed[:20], []byte("seq 1"), false},
		{"empty", buf, nil, nil, false},
	}
	for _, tt := range tests {
		pt, err := tt.sealer.Open(tt.in, tt.ad)
		if tt.ok != (err == nil) {
			t.Errorf("%s: Open = %q, %v", tt.name, pt, err)
		}
		if err != nil && !errors.Is(err, ErrCannotOpen) {
			t.Errorf("%s: error %v does not wrap ErrCannotOpen", tt.name, err)
		}
	}

	// The vault's own entries do not open with any sealer, nor sealer
	// output as entries.
	b, _ := os.ReadFile(v.Path())
	p, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, purpose := range []string{"buffer", "config", "vault", "entries"} {
		if _, err := v.DataSealer(purpose).Open(p.entries, entriesAD(p)); err == nil {
			t.Errorf("DataSealer(%q) opens the vault's entries", purpose)
		}
	}
	p.entries = v.DataSealer("vault").Seal([]byte(`{"entries":[]}`), entriesAD(p))
	if _, err := openEntries(p, v.dataKey); err == nil {
		t.Error("sealer output opens as vault entries")
	}

	defer func() {
		if recover() == nil {
			t.Error("DataSealer(\"\") did not panic")
		}
	}()
	v.DataSealer("")
}

// TestNoPlaintext looks for the values in every file of the data dir, in the
// logs and in every way the vault and its sealers print.
func TestNoPlaintext(t *testing.T) {
	dir := t.TempDir()
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	values := []string{"Plain-Secret-Alpha-7741", "Rotated-Secret-Beta-9152", "Community-Gamma-3318"}
	v := mustOpen(t, dir, Options{Logger: logger})
	mustSet(t, v, "alpha", "operator", values[0], KindPassword)
	if err := v.Rotate("alpha", secret.New(values[1])); err != nil {
		t.Fatal(err)
	}
	mustSet(t, v, "gamma", "", values[2], KindSNMPCommunity)
	if err := v.Rekey(passOpts(writePassphrase(t, "a long enough passphrase"))); err != nil {
		t.Fatal(err)
	}
	if err := v.Rekey(keyOpts()); err != nil {
		t.Fatal(err)
	}
	c, _ := v.Credential("alpha")
	logger.Info("looked up", "credential", c, "secret", c.Secret, "vault", v, "sealer", v.DataSealer("buffer"))
	// Provoke a reload warning too.
	b, _ := os.ReadFile(v.Path())
	b[len(b)-1] ^= 1
	writeFile(t, v.Path(), b, 0o600)
	v.Credential("gamma")

	printed := fmt.Sprintf("%v %+v %#v %s %v %+v %#v %v", v, v, v, v, c, c, c, v.DataSealer("x"))
	haystacks := map[string]string{"logs": logs.String(), "printed": printed}
	for name, content := range snapshot(t, dir) {
		haystacks[name] = content
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		raw, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		haystacks[e.Name()+" (raw)"] = string(raw)
	}
	if len(haystacks) < 4 {
		t.Fatalf("only %d places to look in", len(haystacks))
	}
	for where, hay := range haystacks {
		for _, val := range values {
			if strings.Contains(hay, val) || strings.Contains(strings.ToLower(hay), fmt.Sprintf("%x", val)) {
				t.Errorf("%s holds a value in plain text", where)
			}
		}
		if strings.Contains(hay, fmt.Sprintf("%x", v.dataKey)) || strings.Contains(printed, fmt.Sprint(v.dataKey)) {
			t.Errorf("%s holds the data key", where)
		}
	}
}

// TestHostsFormat: a vault written before entries had hosts loads, its
// entries permit nothing until hosts are set, and an entry without hosts
// is still written without the field (so older builds keep reading vaults
// in which no hosts were set).
func TestHostsFormat(t *testing.T) {
	dir := t.TempDir()
	v := mustOpen(t, dir, keyOpts())
	decrypt := func() string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, FileName))
		if err != nil {
			t.Fatal(err)
		}
		p, err := parse(b)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := open(newAEAD(subkey(v.dataKey, entriesInfo)), p.entries, entriesAD(p))
		if err != nil {
			t.Fatal(err)
		}
		return string(pt)
	}

	// Replace the entries with JSON as the first version wrote it.
	old := `{"entries":[{"name":"sw","kind":"snmp-community","secret":"Old-Community-1","created":"2026-01-01T00:00:00Z","rotated":"2026-01-01T00:00:00Z"}]}`
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	p, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	file, err := assemble(p.rawHeader, p.sealedKey, seal(newAEAD(subkey(v.dataKey, entriesInfo)), []byte(old), entriesAD(p)))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, FileName), file, 0o600)

	v = mustOpen(t, dir, keyOpts())
	c, err := v.Credential("sw")
	if err != nil || c.Kind != KindSNMPCommunity || len(c.Hosts) != 0 || c.Secret.Reveal() != "Old-Community-1" {
		t.Fatalf("old entry = %+v, %v", c, err)
	}
	err = probe.CheckCredential(c, "the snmp probe", []string{KindSNMPCommunity}, "10.0.0.1", netip.Addr{})
	if !errors.Is(err, probe.ErrCredentialNotPermitted) || !strings.Contains(err.Error(), `has no hosts it may be sent to: on the appliance, run "sonde-appliance vault hosts sw LIST"`) {
		t.Fatalf("an old entry without hosts: %v", err)
	}

	mustSet(t, v, "web", "admin", "pw", KindPassword)
	if pt := decrypt(); strings.Contains(pt, `"hosts"`) {
		t.Fatalf("entries without hosts are written with the field: %s", pt)
	}
	if err := v.SetHosts("sw", []string{"10.0.0.0/8"}); err != nil {
		t.Fatal(err)
	}
	if pt := decrypt(); !strings.Contains(pt, `"hosts":["10.0.0.0/8"]`) {
		t.Fatalf("the hosts are not stored: %s", pt)
	}
	c, err = mustOpen(t, dir, keyOpts()).Credential("sw")
	if err != nil || fmt.Sprint(c.Hosts) != "[10.0.0.0/8]" {
		t.Fatalf("reopened: %+v, %v", c, err)
	}
	if err := probe.CheckCredential(c, "the snmp probe", []string{KindSNMPCommunity}, "10.0.0.1", netip.Addr{}); err != nil {
		t.Fatalf("a permitted host: %v", err)
	}
}

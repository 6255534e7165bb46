package hardening

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tree writes files (content "->target" makes a symbolic link; a path
// ending in "/" a directory) under a new root.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(c, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestThrottling(t *testing.T) {
	jail := "[DEFAULT]\nenabled = false\n[sshd]\nport = ssh\n"
	tests := []struct {
		name   string
		files  map[string]string
		ports  string
		want   Status
		source string
		note   string
	}{
		{name: "nothing", want: Fail},
		{name: "fail2ban debian", files: map[string]string{"/etc/fail2ban/jail.conf": jail, "/etc/fail2ban/jail.d/defaults-debian.conf": "[sshd]\nenabled = true\n", "/usr/bin/fail2ban-server": ""},
			want: Pass, source: "/etc/fail2ban/jail.d/defaults-debian.conf:2"},
		{name: "fail2ban jail.local disables", files: map[string]string{"/etc/fail2ban/jail.conf": jail, "/etc/fail2ban/jail.d/defaults-debian.conf": "[sshd]\nenabled = true\n",
			"/etc/fail2ban/jail.local": "[sshd]\nenabled: false\n", "/usr/bin/fail2ban-server": ""}, want: Fail, note: "not enabled"},
		{name: "fail2ban jail.d local wins over jail.local", files: map[string]string{"/etc/fail2ban/jail.local": "[sshd]\nenabled = false\n",
			"/etc/fail2ban/jail.d/z.local": "[sshd]\n  # indented comment\nenabled = On\n", "/usr/bin/fail2ban-server": ""}, want: Pass, source: "/etc/fail2ban/jail.d/z.local:3"},
		{name: "fail2ban DEFAULT enabled", files: map[string]string{"/etc/fail2ban/jail.conf": "[DEFAULT]\nenabled = true\n[sshd]\nport = ssh\n", "/usr/bin/fail2ban-server": ""},
			want: Pass, source: "/etc/fail2ban/jail.conf:2"},
		{name: "fail2ban removed", files: map[string]string{"/etc/fail2ban/jail.local": "[sshd]\nenabled = true\n"}, want: Fail, note: "package removed"},
		{name: "sshguard binary", files: map[string]string{"/usr/sbin/sshguard": ""}, want: Pass, source: "/usr/sbin/sshguard"},
		{name: "sshguard config", files: map[string]string{"/etc/sshguard/sshguard.conf": ""}, want: Pass, source: "/etc/sshguard"},
		{name: "nftables", files: map[string]string{"/etc/nftables.conf": "table inet filter {\n  chain input {\n    tcp dport ssh ct state new limit rate 10/minute accept\n  }\n}\n"},
			want: Pass, source: "/etc/nftables.conf:3"},
		{name: "nftables set and continuation", files: map[string]string{"/etc/nftables.conf": "tcp dport { 80, 22 } \\\n  ct state new limit rate over 5/minute drop\n"},
			want: Pass, source: "/etc/nftables.conf:1"},
		{name: "nftables commented out", files: map[string]string{"/etc/nftables.conf": "# tcp dport 22 limit rate 10/minute accept\n"}, want: Fail},
		{name: "nftables other port", files: map[string]string{"/etc/nftables.conf": "tcp dport 80 limit rate 10/second accept\n"}, want: Fail},
		{name: "nftables on sshd's own port", files: map[string]string{"/etc/nftables.conf": "tcp dport 2200-2300 limit rate 10/minute accept\n"}, ports: "2222", want: Pass, source: "/etc/nftables.conf:1"},
		{name: "iptables recent", files: map[string]string{"/etc/iptables/rules.v4": "-A INPUT -p tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 -j DROP\n"},
			want: Pass, source: "/etc/iptables/rules.v4:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuditor(Options{Root: tree(t, tt.files)})
			v := newSSHView()
			if tt.ports != "" {
				v.add("port", sshSetting{Args: []string{tt.ports}})
			}
			f := a.throttling(v, true)
			if f.Status != tt.want || f.Source != tt.source || !strings.Contains(f.Observed, tt.note) {
				t.Errorf("got %s from %q (%s), want %s from %q noting %q", f.Status, f.Source, f.Observed, tt.want, tt.source, tt.note)
			}
		})
	}
}

func TestParseUpdatesAvailable(t *testing.T) {
	tests := []struct {
		in                   string
		total, security, esm int
		err                  bool
	}{
		{in: "", total: 0},
		{in: "\n0 updates can be applied immediately.\n\n", total: 0},
		{in: "\n12 packages can be updated.\n5 updates are security updates.\n", total: 12, security: 5},
		{in: "Expanded Security Maintenance for Applications is not enabled.\n\n7 updates can be applied immediately.\n3 of these updates are standard security updates.\nTo see these additional updates run: apt list --upgradable\n\n2 additional security updates can be applied with ESM Apps.\nLearn more about enabling ESM Apps service at https://ubuntu.com/esm\n",
			total: 7, security: 3, esm: 2},
		{in: "1 update can be applied immediately.\n1 of these updates is a standard security update.\n", total: 1, security: 1},
		{in: "Des mises à jour sont disponibles\n", err: true},
	}
	for _, tt := range tests {
		total, security, esm, err := parseUpdatesAvailable(tt.in)
		if (err != nil) != tt.err || total != tt.total || security != tt.security || esm != tt.esm {
			t.Errorf("parseUpdatesAvailable(%q) = %d, %d, %d, %v", tt.in, total, security, esm, err)
		}
	}
}

func TestParseAptSimulate(t *testing.T) {
	out := `NOTE: This is only a simulation!
Reading package lists...
The following packages will be upgraded:
  libc6 openssh-server tzdata
Inst libc6 [2.36-9+deb12u7] (2.36-9+deb12u9 Debian-Security:12/stable-security [amd64])
Inst openssh-server [1:9.2p1-2+deb12u3] (1:9.2p1-2+deb12u5 Debian:12.9/stable, Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2025a-0+deb12u1 Debian:12.9/stable [all])
Conf libc6 (2.36-9+deb12u9 Debian-Security:12/stable-security [amd64])
`
	if total, sec := parseAptSimulate([]byte(out)); total != 3 || sec != 2 {
		t.Errorf("got %d, %d; want 3, 2", total, sec)
	}
}

func TestOSChecks(t *testing.T) {
	deb := map[string]string{"/etc/debian_version": "12.9\n"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range deb {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name  string
		files map[string]string
		check string
		want  Status
		note  string
	}{
		{"security updates pending", with(map[string]string{updatesStampPath: "4 updates can be applied immediately.\n2 of these updates are standard security updates.\n"}), "os.security_updates", Fail, "2 of them security"},
		{"stamp unreadable", with(map[string]string{updatesStampPath + "/": ""}), "os.security_updates", Unknown, "directory"},
		{"unattended on", with(map[string]string{aptConfDir + "/20auto-upgrades": "APT::Periodic::Unattended-Upgrade \"1\";\n", unattendedConfPath: ""}), "os.unattended_upgrades", Pass, ""},
		{"unattended later file turns it off", with(map[string]string{aptConfDir + "/20auto-upgrades": "APT::Periodic::Unattended-Upgrade \"1\";\n",
			aptConfDir + "/99local": "apt::periodic::unattended-upgrade \"0\";\n", unattendedConfPath: ""}), "os.unattended_upgrades", Fail, "are off"},
		{"unattended ignored file", with(map[string]string{aptConfDir + "/20auto-upgrades.dpkg-old": "APT::Periodic::Unattended-Upgrade \"1\";\n", unattendedConfPath: ""}), "os.unattended_upgrades", Fail, "not set"},
		{"unattended commented", with(map[string]string{aptConfDir + "/20auto-upgrades": "// APT::Periodic::Unattended-Upgrade \"1\";\n", unattendedConfPath: ""}), "os.unattended_upgrades", Fail, "not set"},
		{"unattended without the package", with(map[string]string{aptConfDir + "/20auto-upgrades": "APT::Periodic::Unattended-Upgrade \"1\";\n"}), "os.unattended_upgrades", Fail, "not installed"},
		{"reboot via /var/run", with(map[string]string{rebootRequiredOld: ""}), "os.reboot_required", Fail, "/var/run/reboot-required"},
		{"not debian", nil, "os.reboot_required", Unknown, "not a Debian"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuditor(Options{Root: tree(t, tt.files), Run: noCommands(t)})
			f := byName(a.osFindings(context.Background()))[tt.check]
			if f.Status != tt.want || !strings.Contains(f.Observed, tt.note) {
				t.Errorf("got %s (%s), want %s noting %q", f.Status, f.Observed, tt.want, tt.note)
			}
		})
	}
}

// TestAptOnRunningSystem covers the apt-get path, which only runs for the
// running system; the runner is a fake returning apt-get's output.
func TestAptOnRunningSystem(t *testing.T) {
	root := tree(t, map[string]string{"/etc/debian_version": "12.9\n"})
	var ran string
	a := newAuditor(Options{Root: root, Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
		ran = name + " " + strings.Join(args, " ")
		return []byte("Inst libc6 [1] (2 Debian-Security:12/stable-security [amd64])\n"), nil
	}})
	a.live = true
	f := a.securityUpdates(context.Background(), true)
	if ran != "apt-get -s -o Debug::NoLocking=1 upgrade" || f.Status != Fail || !strings.Contains(f.Observed, "1 of them") {
		t.Errorf("ran %q, got %+v", ran, f)
	}
	a.run = func(context.Context, string, ...string) ([]byte, error) { return nil, errors.New("exit status 100") }
	if f := a.securityUpdates(context.Background(), true); f.Status != Unknown || !strings.Contains(f.Observed, "exit status 100") {
		t.Errorf("got %+v", f)
	}
}

func TestDiskEncryption(t *testing.T) {
	mounts := func(lines ...string) string { return strings.Join(lines, "\n") + "\n" }
	luks := func(dm, name, kind string) map[string]string {
		return map[string]string{"/sys/class/block/" + dm + "/dm/name": name + "\n", "/sys/class/block/" + dm + "/dm/uuid": "CRYPT-" + kind + "-0123-" + name + "\n"}
	}
	merge := func(ms ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	tests := []struct {
		name    string
		dataDir string
		files   map[string]string
		want    Status
		note    string
	}{
		{name: "LUKS directly, /dev/mapper name via sysfs", dataDir: "/srv/sonde",
			files: merge(luks("dm-0", "data", "LUKS2"), map[string]string{"/proc/mounts": mounts("/dev/sda1 / ext4 rw 0 0", "/dev/mapper/data /srv xfs rw 0 0")}),
			want:  Pass, note: "dm-0 (data) is LUKS2"},
		{name: "plain partition", dataDir: "/var/lib/x",
			files: map[string]string{"/proc/mounts": mounts("/dev/nvme0n1p2 / ext4 rw 0 0"), "/sys/class/block/nvme0n1p2/dev": "259:2"},
			want:  Fail, note: "nvme0n1p2 is a plain device"},
		{name: "LVM on a plain disk", dataDir: "/data",
			files: map[string]string{"/proc/mounts": mounts("/dev/dm-1 /data ext4 rw 0 0"), "/sys/class/block/dm-1/dm/uuid": "LVM-abc", "/sys/class/block/dm-1/slaves/sda3": "", "/sys/class/block/sda3/dev": "8:3"},
			want:  Fail, note: "dm-1 on sda3 is a plain device"},
		{name: "RAID over one encrypted and one plain device", dataDir: "/data",
			files: merge(luks("dm-0", "c0", "LUKS2"), map[string]string{"/proc/mounts": mounts("/dev/md0 /data ext4 rw 0 0"),
				"/sys/class/block/md0/slaves/dm-0": "", "/sys/class/block/md0/slaves/sdb1": "", "/sys/class/block/sdb1/dev": "8:17"}),
			want: Fail, note: "md0 on dm-0 (c0) is LUKS2, sdb1 is a plain device"},
		{name: "verity is not encryption", dataDir: "/data",
			files: map[string]string{"/proc/mounts": mounts("/dev/dm-0 / ext4 ro 0 0"), "/sys/class/block/dm-0/dm/uuid": "CRYPT-VERITY-abc-root"},
			want:  Fail},
		{name: "overmount: the last line wins", dataDir: "/data/x",
			files: merge(luks("dm-0", "c0", "PLAIN"), map[string]string{"/proc/mounts": mounts("/dev/sda1 /data ext4 rw 0 0", "/dev/dm-0 /data ext4 rw 0 0"), "/sys/class/block/sda1/dev": "8:1"}),
			want:  Pass, note: "plain dm-crypt"},
		{name: "escaped mount point", dataDir: "/mnt/my data/sonde",
			files: merge(luks("dm-0", "c0", "LUKS1"), map[string]string{"/proc/mounts": mounts("/dev/sda1 / ext4 rw 0 0", `/dev/dm-0 /mnt/my\040data ext4 rw 0 0`), "/sys/class/block/sda1/dev": "8:1"}),
			want:  Pass},
		{name: "data dir through a symbolic link", dataDir: "/var/lib/sonde",
			files: merge(luks("dm-0", "c0", "LUKS2"), map[string]string{"/proc/mounts": mounts("/dev/sda1 / ext4 rw 0 0", "/dev/dm-0 /srv ext4 rw 0 0"),
				"/sys/class/block/sda1/dev": "8:1", "/var/lib/sonde": "->/srv/sonde", "/srv/sonde/": ""}),
			want: Pass, note: "/srv/sonde is on /dev/dm-0"},
		{name: "tmpfs", dataDir: "/run/sonde", files: map[string]string{"/proc/mounts": mounts("/dev/sda1 / ext4 rw 0 0", "tmpfs /run tmpfs rw 0 0")}, want: Unknown, note: "data on tmpfs"},
		{name: "/dev/root", dataDir: "/x", files: map[string]string{"/proc/mounts": mounts("/dev/root / ext4 rw 0 0")}, want: Unknown, note: "cannot find /dev/root"},
		{name: "no /proc/mounts", dataDir: "/x", want: Unknown, note: "cannot list the mounts"},
		{name: "no data dir", want: Unknown, note: "no data directory"},
		{name: "slave loop", dataDir: "/x",
			files: map[string]string{"/proc/mounts": mounts("/dev/dm-0 / ext4 rw 0 0"), "/sys/class/block/dm-0/slaves/dm-0": ""},
			want:  Unknown, note: "stacked more than 16 deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuditor(Options{Root: tree(t, tt.files), DataDir: tt.dataDir})
			f := a.diskEncryption()
			if f.Status != tt.want || !strings.Contains(f.Observed, tt.note) {
				t.Errorf("got %s (%s), want %s noting %q", f.Status, f.Observed, tt.want, tt.note)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	tests := []struct {
		running, latest, pinned string
		want                    Status
		severity, note          string
	}{
		{"1.2.3", "1.2.3", "", Pass, SeverityWarning, ""},
		{"v1.2.3", "1.2.4", "", Fail, SeverityWarning, "upgrade sonde-appliance to 1.2.4"},
		{"1.10.0", "1.9.9", "", Pass, SeverityWarning, ""},
		{"1.3.0-rc.2", "1.3.0-rc.10", "", Fail, SeverityWarning, ""},
		{"1.3.0-rc.1", "1.3.0-beta", "", Pass, SeverityWarning, ""},
		{"1.3.0+build5", "1.3.0", "", Pass, SeverityWarning, ""},
		{"dev", "1.3.0", "", Unknown, SeverityWarning, "not a release"},
		{"1.3.0", "", "", Unknown, SeverityWarning, "not announced"},
		{"1.3.0", "latest", "", Unknown, SeverityWarning, "not a version"},
		{"01.2.3", "1.2.3", "", Unknown, SeverityWarning, ""},
		{"1.2.0", "1.3.0", "1.2.0", Pass, SeverityNotice, "review the pin"},
		{"dev", "", "1.2.0", Pass, SeverityNotice, ""},
	}
	for _, tt := range tests {
		a := newAuditor(Options{Version: tt.running, LatestVersion: tt.latest, PinnedVersion: tt.pinned})
		f := a.versionFinding()
		if f.Status != tt.want || f.Severity != tt.severity || !strings.Contains(f.Observed+" "+f.Advice, tt.note) {
			t.Errorf("%s vs %s pinned %q: got %+v", tt.running, tt.latest, tt.pinned, f)
		}
	}
}

func TestSondeFiles(t *testing.T) {
	me := os.Getuid()
	tests := []struct {
		name      string
		file      string // vault file, relative to the data dir
		mode      os.FileMode
		dirMode   os.FileMode
		passwdUID int
		user      string
		vault     Status
		dir       Status
		note      string
	}{
		{name: "0600 and 0700", file: "vault", mode: 0o600, dirMode: 0o700, passwdUID: me, user: "sonde", vault: Pass, dir: Pass},
		{name: "0400 and 0750", file: "vault", mode: 0o400, dirMode: 0o750, passwdUID: me, user: "sonde", vault: Pass, dir: Pass},
		{name: "current user", file: "vault", mode: 0o600, dirMode: 0o700, vault: Pass, dir: Pass},
		{name: "group readable", file: "vault", mode: 0o640, dirMode: 0o770, passwdUID: me, user: "sonde", vault: Fail, dir: Fail, note: "mode 0640 lets its group access it"},
		{name: "world readable", file: "vault", mode: 0o604, dirMode: 0o701, passwdUID: me, user: "sonde", vault: Fail, dir: Fail, note: "`chmod 600"},
		{name: "wrong owner", file: "vault", mode: 0o600, dirMode: 0o700, passwdUID: me + 1, user: "sonde", vault: Fail, dir: Fail,
			note: fmt.Sprintf("owned by uid %d, not sonde (uid %d)", me, me+1)},
		{name: "unknown user", file: "vault", mode: 0o600, dirMode: 0o700, passwdUID: me, user: "nobody-here", vault: Unknown, dir: Unknown, note: "not in /etc/passwd"},
		{name: "missing vault", file: "", dirMode: 0o700, vault: Unknown, dir: Pass, note: "cannot stat /var/lib/sonde-appliance/vault"},
		{name: "vault is a directory", file: "vault/", dirMode: 0o700, vault: Fail, dir: Pass, note: "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{dataDir + "/": "", "/etc/passwd": fmt.Sprintf("sonde:x:%d:%d::/:/bin/false\n", tt.passwdUID, tt.passwdUID)}
			if tt.file != "" {
				files[dataDir+"/"+tt.file] = "x"
			}
			root := tree(t, files)
			if tt.mode != 0 {
				chmod(t, root, dataDir+"/vault", tt.mode)
			}
			chmod(t, root, dataDir, tt.dirMode)
			a := newAuditor(Options{Root: root, DataDir: dataDir, VaultFile: dataDir + "/vault", ApplianceUser: tt.user})
			own := a.expectedOwner()
			v := a.privateFile("sonde.vault_file", "vault", dataDir+"/vault", SeverityError, own)
			d := a.dataDirFinding(own)
			if v.Status != tt.vault || d.Status != tt.dir || !strings.Contains(v.Observed+" "+v.Advice, tt.note) {
				t.Errorf("vault %s (%s / %s), dir %s (%s); want %s, %s noting %q", v.Status, v.Observed, v.Advice, d.Status, d.Observed, tt.vault, tt.dir, tt.note)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	tests := []struct {
		name  string
		creds []CredentialAge
		days  int
		err   error
		want  map[string]Status
	}{
		{name: "none", want: map[string]Status{"sonde.credentials_rotated": Pass}},
		{name: "all fresh", creds: []CredentialAge{{Name: "a", RotatedAt: now.AddDate(0, 0, -90)}, {Name: "b", RotatedAt: now.Add(time.Hour)}},
			want: map[string]Status{"sonde.credentials_rotated": Pass}},
		{name: "stale under a custom policy", days: 30, creds: []CredentialAge{{Name: "a", RotatedAt: now.AddDate(0, 0, -31)}, {Name: "b", RotatedAt: now}},
			want: map[string]Status{"sonde.credential_rotation.a": Fail}},
		{name: "odd name", creds: []CredentialAge{{Name: "host 10.0.0.1/x", RotatedAt: now.AddDate(-1, 0, 0)}},
			want: map[string]Status{"sonde.credential_rotation.host_10.0.0.1_x": Fail}},
		{name: "vault closed", err: errors.New("cannot be opened"), creds: []CredentialAge{{Name: "a"}},
			want: map[string]Status{"sonde.credentials_rotated": Unknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuditor(Options{Credentials: tt.creds, RotationDays: tt.days, CredentialsErr: tt.err, Now: now})
			got := a.credentialFindings()
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %v", got, tt.want)
			}
			for _, f := range got {
				if f.Status != tt.want[f.Name] {
					t.Errorf("%s: %s (%s)", f.Name, f.Status, f.Observed)
				}
			}
		})
	}
}

func TestResolve(t *testing.T) {
	root := tree(t, map[string]string{
		"/a/b/c": "", "/abs": "->/a/b", "/rel": "->a/b", "/up": "->../../a", "/loop1": "->/loop2", "/loop2": "->/loop1",
	})
	a := newAuditor(Options{Root: root})
	tests := map[string]string{"/abs/c": "/a/b/c", "/rel/c": "/a/b/c", "/up/b": "/a/b", "/a/./b/../b/c": "/a/b/c"}
	for in, want := range tests {
		if got, err := a.resolve(in); err != nil || got != want {
			t.Errorf("resolve(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := a.resolve("/loop1/x"); err == nil || !strings.Contains(err.Error(), "too many") {
		t.Errorf("loop: %v", err)
	}
}
